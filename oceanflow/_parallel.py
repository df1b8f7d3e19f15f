"""Split one in-memory call over threads (dask inputs never come here).

numba gufuncs release the GIL, so plain Python threads calling the serial
kernel on disjoint slices use every core without numba's ``parallel`` target
(whose workqueue layer aborts when entered from several threads).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from .options import OPTIONS

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(thread_name_prefix="oceanflow")
    return _POOL


def thread_slices(n: int) -> list[slice]:
    """Contiguous slices of ``range(n)``, one per thread worth using."""
    threads = max(1, min(OPTIONS["num_threads"], n // OPTIONS["min_elements_per_thread"]))
    bounds = [n * i // threads for i in range(threads + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def run_sliced(func, n: int) -> None:
    """Call ``func(slice)`` for each of :func:`thread_slices` ``(n)``, in parallel."""
    slices = thread_slices(n)
    if len(slices) == 1:
        func(slices[0])
        return
    for future in [_pool().submit(func, part) for part in slices]:
        future.result()
