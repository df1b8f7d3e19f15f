"""Large blocks given back to the operating system when freed (glibc's malloc).

oceanflow streams data through dask in blocks of up to 32 MiB.  glibc's
malloc adapts its mmap threshold to the largest block freed (up to 32 MiB)
and its trim threshold to twice that, so once a block has been freed every
later block comes from the heaps, and each heap keeps up to 64 MiB of freed
memory: the process held 100-200 MiB more than the blocks in flight, more
the longer it ran (the peak RSS of an anomaly saved to NetCDF grew by 10 %
for four times the years).  Fixing the thresholds (allocations of
:data:`MMAP_THRESHOLD` or more are mapped on their own and unmapped when
freed; heaps trimmed beyond :data:`TRIM_THRESHOLD`) bounds the memory by the
blocks in flight.

It is set once, when oceanflow is imported, in a process whose C library is
glibc; not when the environment sets ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` (the user's choice, as ``distributed``'s nanny
sets for its workers).

Example
-------
>>> from oceanflow._memory import return_freed_blocks
>>> return_freed_blocks() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "return_freed_blocks"]

#: Allocations of this many bytes or more are mapped on their own and given back when freed.
MMAP_THRESHOLD = 8 << 20
#: Free memory at the top of a heap beyond this many bytes is given back.
TRIM_THRESHOLD = 8 << 20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_DONE: list[bool] = []


def return_freed_blocks() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module); whether they were set (once per process)."""
    if _DONE:
        return _DONE[0]
    _DONE.append(False)
    if any(name in os.environ for name in _ENVIRONMENT):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (not musl, macOS, Windows)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _DONE[0] = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _DONE[0]
