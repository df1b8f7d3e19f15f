"""Global options, set for a block of code with :func:`set_options`.

Example
-------
>>> import numpy as np, oceanflow
>>> with oceanflow.set_options(num_threads=1):
...     oceanflow.polyval(np.arange(3.0), [1, 0, 0])
array([0., 1., 4.])
"""

from __future__ import annotations

import os

OPTIONS = {
    # Threads for one in-memory (NumPy) call; dask inputs use dask's own
    # scheduler and run every kernel serially inside its tasks.
    "num_threads": os.cpu_count() or 1,
    # Below this many elements per thread an in-memory call stays on one thread.
    "min_elements_per_thread": 1 << 20,
    # Graphs estimated above this many tasks are refused before they are built.
    "max_tasks": 1_000_000,
}


class set_options:
    """Set oceanflow options globally or, as a context manager, for a block.

    Parameters
    ----------
    num_threads : int
        Threads used by one call on in-memory NumPy data (default: all cores).
    min_elements_per_thread : int
        Smallest share of elements worth a thread of its own (default 2**20).
    max_tasks : int
        Largest task graph an operation may build (default 1,000,000); a
        request above it is refused with chunks that would fit
        (:func:`oceanflow.chunking.check_task_count`).
    """

    def __init__(self, **kwargs: int) -> None:
        unknown = set(kwargs) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown oceanflow option(s) {sorted(unknown)}; valid: {sorted(OPTIONS)}")
        for key, value in kwargs.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"option {key} must be a positive integer, got {value!r}")
        self._previous = {key: OPTIONS[key] for key in kwargs}
        OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        OPTIONS.update(self._previous)
