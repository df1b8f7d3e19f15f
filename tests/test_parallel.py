"""The package's compute pool (:mod:`oceanflow._parallel`): whole calls shared among its threads."""

import threading
import time

import pytest

import oceanflow
from oceanflow._parallel import run_each, run_sliced


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_run_each_returns_each_calls_result_in_order_on_at_most_num_threads_threads(threads, n):
    items = [f"item {i}" for i in range(n)]
    running, most, seen = [0], [0], set()
    lock = threading.Lock()

    def call(item):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            seen.add(threading.get_ident())
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item.upper()

    with oceanflow.set_options(num_threads=threads):
        found = run_each(call, items)
    assert found == [item.upper() for item in items]  # (the plain loop's)
    assert most[0] <= threads and len(seen) <= max(1, min(threads, n))


def test_run_each_raises_the_first_error_in_order_once_every_call_has_ended():
    ended = []

    def call(i):
        time.sleep(0.1 if i == 3 else 0.0)  # (the last to end: after the first error)
        ended.append(i)
        if i in (1, 2):
            raise ValueError(f"call {i}")
        return i

    with oceanflow.set_options(num_threads=4), pytest.raises(ValueError, match="call 1"):
        run_each(call, [0, 1, 2, 3])
    assert sorted(ended) == [0, 1, 2, 3]


def test_run_sliced_raises_the_first_error_once_every_slice_has_ended():
    ended = []

    def call(part):
        time.sleep(0.1 if part.start else 0.0)  # (the later slices end after the first one's error)
        ended.append(part.start)
        if part.start == 0:
            raise ValueError("first slice")

    with (
        oceanflow.set_options(num_threads=3, min_elements_per_thread=1),
        pytest.raises(ValueError, match="first slice"),
    ):
        run_sliced(call, 9)
    assert sorted(ended) == [0, 3, 6]
