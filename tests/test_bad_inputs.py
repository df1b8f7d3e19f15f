"""Every bad input of tests/bad_inputs.py gets a clear error: the expected exception (or exit
status and one line) with a message that names the problem and the fix, fast."""

import time

import pytest
from bad_inputs import CASES, TIMEOUT, Case, run_case, tally


@pytest.mark.parametrize("item", CASES, ids=[f"{c.area}: {c.input}" for c in CASES])
def test_a_bad_input_gets_a_clear_error(tmp_path, item):
    outcome = run_case(item, tmp_path)
    assert outcome.kind == "clear", outcome.message
    assert outcome.seconds < TIMEOUT


def test_the_table_is_large_and_covers_python_and_the_command_line():
    areas = {c.area for c in CASES}
    assert {"chunks", "graph size", "reading", "time axes", "writing"} <= areas
    assert len(CASES) >= 40 and any(isinstance(c.error, int) for c in CASES)


def test_the_runner_tells_silent_results_unclear_errors_and_hangs_apart(tmp_path, monkeypatch):
    monkeypatch.setattr("bad_inputs.TIMEOUT", 1)
    silent = Case("t", "returns", lambda files: 42, ValueError, "x")
    wrong_type = Case("t", "KeyError", lambda files: {}["time"], ValueError, "time")
    wrong_text = Case("t", "other message", lambda files: int("x"), ValueError, "chunk size")
    hangs = Case("t", "sleeps", lambda files: time.sleep(5), ValueError, "x")
    outcomes = [run_case(c, tmp_path) for c in (silent, wrong_type, wrong_text, hangs)]
    assert [o.kind for o in outcomes] == ["silent", "unclear", "unclear", "hang"]
    assert tally(outcomes) == {
        "inputs tried": 4,
        "clear errors": 0,
        "silent results": 1,
        "hangs": 1,
        "unclear errors": 2,
    }
