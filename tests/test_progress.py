"""Progress on stderr: a bar on a terminal, a line per 10 % in a log file (a batch job's output)."""

import io
import re
import sys

import dask
import dask.array as da
import numpy as np
import pytest

from oceanflow import _progress

LINE = re.compile(r" *(\d+)% Completed \| (\d+) of (\d+) tasks \| [\d.]+ (s|ms|us)")


def work(n_chunks=40):
    x = da.ones((n_chunks, 10), chunks=(1, 10))
    return (x + 1).sum(axis=1)


def assert_log_lines(text):
    """A line per tenth done at most, percentages rising in tens to 100, no carriage returns."""
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    percents = [int(m.group(1)) for m in matches]
    assert 1 <= len(lines) <= 10 and percents == sorted(set(percents)) and percents[-1] == 100
    assert all(p % 10 == 0 for p in percents)
    for m in matches:
        done, total = int(m.group(2)), int(m.group(3))
        assert int(m.group(1)) == 10 * (10 * done // total)
    return matches


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_local_scheduler_writes_a_line_per_tenth_into_a_log(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with dask.config.set(scheduler="threads"):
        result = _progress.compute(work(), progress=True)
    np.testing.assert_array_equal(result, np.full(40, 20.0))
    matches = assert_log_lines(log.getvalue())
    assert len(matches) == 10  # 40 chunks of several tasks: every tenth is reached one at a time
    assert matches[-1].group(2) == matches[-1].group(3)


def test_a_terminal_gets_dask_s_bar_and_no_progress_asked_gets_nothing(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with dask.config.set(scheduler="threads"):
        _progress.compute(work(), progress=None)
    assert "\r[" in terminal.getvalue() and "100% Completed" in terminal.getvalue()
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with dask.config.set(scheduler="threads"):
        _progress.compute(work(), progress=None)
        _progress.compute(work(), progress=False)
    assert log.getvalue() == ""


def test_distributed_writes_a_line_per_tenth_into_a_log(monkeypatch):
    from distributed import Client, LocalCluster

    log = io.StringIO()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster):
            monkeypatch.setattr(sys, "stderr", log)
            result = _progress.compute(work(200), progress=True)
            monkeypatch.undo()
    np.testing.assert_array_equal(result, np.full(200, 20.0))
    matches = assert_log_lines(log.getvalue())
    assert matches[-1].group(2) == matches[-1].group(3)


@pytest.mark.parametrize("errored", [False, True])
def test_no_final_line_after_an_error(monkeypatch, errored):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)

    def fail(block):
        raise ZeroDivisionError

    x = work() if not errored else da.ones(4, chunks=1).map_blocks(fail, dtype=float)
    with dask.config.set(scheduler="sync"):
        if errored:
            with pytest.raises(ZeroDivisionError):
                _progress.compute(x, progress=True)
        else:
            _progress.compute(x, progress=True)
    assert ("100%" in log.getvalue()) is not errored
