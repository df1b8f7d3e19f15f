"""Split one in-memory call over threads (dask inputs never come here), on the package's one compute pool.

numba gufuncs release the GIL, so plain Python threads calling the serial
kernel on disjoint slices use every core without numba's ``parallel`` target
(whose workqueue layer aborts when entered from several threads).

Threads
-------
The pool here (threads ``oceanflow_*``, made at the first use and kept) runs computations on
in-memory arrays for a calling thread that waits for them: :func:`run_sliced` (a kernel on slices
of one call's arrays) and :func:`run_each` (whole calls, such as ``mhw.summary``'s trend fits), each
at most ``num_threads`` at once (:func:`oceanflow.set_options`).  Its jobs never wait on work they
submit to it, which could deadlock a bounded pool.  The other pools stay apart, each for a reason:

* I/O that waits for the device, sized by the device's queue, not the cores, so that computations
  never queue behind writes nor writes behind computations: the mhw spill's reads and writes
  (``mhw._blocks._spill_threads``, ``SPILL_THREADS`` threads, kept) and a NetCDF file's chunk writers
  (``io.uncached.ChunkFile``, ``WRITERS`` threads per file, joined by its ``close()`` before its
  descriptors are freed);
* pools made per call, whose ``with`` block waits for every job before an error goes up, so that a
  failed save removes its temporaries only once nothing writes into them, and whose jobs start
  computations and pools of their own and wait for them: ``mhw._save._together`` (the save's tables
  written side by side), ``mhw._save._write_events_by_region`` (the event table's blocks) and
  ``io.write``'s pool of a save's dask compute.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .options import OPTIONS

T = TypeVar("T")
R = TypeVar("R")

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(thread_name_prefix="oceanflow")
    return _POOL


def _slices(n: int, threads: int) -> list[slice]:
    """``range(n)`` cut in ``threads`` contiguous slices."""
    bounds = [n * i // threads for i in range(threads + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def thread_slices(n: int) -> list[slice]:
    """Contiguous slices of ``range(n)``, one per thread worth using."""
    return _slices(n, max(1, min(OPTIONS["num_threads"], n // OPTIONS["min_elements_per_thread"])))


def run_sliced(func, n: int) -> None:
    """Call ``func(slice)`` for each of :func:`thread_slices` ``(n)``, in parallel; returns once every
    call has ended, else raises the first error in the slices' order (no slice still writes into the
    caller's arrays, which an error may free or reuse, as a save's block pool does)."""
    run_each(func, thread_slices(n))  # (a slice per thread)


def run_each(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[func(item) for item in items]``, contiguous runs of the items on up to ``num_threads`` threads
    (each call worth a thread: whole arrays, not elements); returns once every call has ended, else
    raises the first error in the items' order."""
    slices = _slices(len(items), max(1, min(OPTIONS["num_threads"], len(items))))

    def run(part: slice) -> list[R]:
        return [func(item) for item in items[part]]

    if len(slices) == 1:
        return run(slices[0])
    futures = [_pool().submit(run, part) for part in slices]
    concurrent.futures.wait(futures)
    return [result for future in futures for result in future.result()]
