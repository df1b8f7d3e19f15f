"""Large blocks given back to the operating system while a whole input streams through (glibc's malloc).

oceanflow streams data through dask in blocks of up to 32 MiB.  glibc's
malloc adapts its mmap threshold to the largest block freed (up to 32 MiB)
and its trim threshold to twice that, so once a block has been freed every
later block comes from the heaps, and each heap keeps up to 64 MiB of freed
memory: a long write held 100-200 MiB more than its blocks in flight, more
the longer it ran (the peak RSS of an anomaly saved to NetCDF grew by 10 %
for four times the years).

:func:`returning_freed_blocks` fixes the mmap threshold at 8 MiB (the trim
threshold at 16 MiB, :data:`WHILE_WRITING`) while
:func:`oceanflow.save` or :func:`oceanflow.mhw.save` computes and writes on
the local scheduler (both through :func:`oceanflow.io.write.writing`), and
while :func:`oceanflow.anomaly` reads the input for its climatology: a block
is then mapped on its own and unmapped when freed, so the memory is bounded
by the blocks in flight.  Each fresh block costs page faults, which slowed
order statistics computed in memory by up to 2x, so afterwards the
thresholds are set to the values glibc's adaptive ones reach anyway (32 and
64 MiB), with which freed blocks are reused.  Nothing is changed where the C
library is not glibc, or when the environment the process started with sets
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` (the user's choice,
as ``distributed``'s nanny sets for its workers; the nanny also puts it in its
own ``os.environ``, too late for its own malloc, which is therefore not read).

While a save runs, :func:`empty_block` also keeps freed blocks' buffers for
reuse: at most :data:`POOL_BYTES` (512 MiB), all given back when it ends.
:func:`kept_block` maps a block that a chain of tasks keeps (a fold's
partials) in small pages.

Example
-------
>>> from oceanflow._memory import returning_freed_blocks
>>> with returning_freed_blocks() as fixed:
...     fixed in (True, False)
True
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np

__all__ = [
    "AFTER",
    "POOL_BYTES",
    "WHILE_WRITING",
    "empty_block",
    "held_elsewhere",
    "kept_block",
    "returning_freed_blocks",
]

#: (mmap, trim) thresholds in bytes while a file is written: blocks of 8 MiB or more given back when freed;
#: a heap trimmed beyond 16 MiB free at its top, not 8: a stored chunk of just under 8 MiB (a Zarr chunk
#: decoded, 30 days of a 1-degree grid), freed at the top, would otherwise be trimmed and the next chunk's
#: memory faulted in afresh: as many fresh pages as bytes read (each zeroed by the kernel, see empty_block)
WHILE_WRITING = (8 << 20, 16 << 20)
#: (mmap, trim) thresholds afterwards: glibc's adaptive ceilings on 64-bit systems.
AFTER = (32 << 20, 64 << 20)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_LOCK = threading.Lock()
_writers = [0]  # saves in progress in this process


def _startup_environment() -> frozenset[str]:
    """Names in the environment this process started with, which is what glibc read its settings from.

    ``os.environ`` can differ: ``distributed``'s Nanny puts ``MALLOC_TRIM_THRESHOLD_``
    in its own process's ``os.environ`` before it spawns a worker, which changes
    nothing for this process's malloc.  Read from ``/proc/self/environ`` (Linux,
    where glibc is), once per process; ``os.environ`` (at this call) elsewhere, or
    when the read fails (e.g. no descriptor left), which is tried again next time.
    A tool rewriting the process title (``setproctitle``) overwrites that memory,
    and ``GLIBC_TUNABLES`` is not read.
    """
    try:
        return _proc_environment()
    except OSError:
        return frozenset(os.environ)


@functools.cache
def _proc_environment() -> frozenset[str]:
    """The names in ``/proc/self/environ``, read once per process (it does not change, and a
    forked child started with the same); an ``OSError`` is raised, not cached."""
    with open("/proc/self/environ", "rb") as f:
        entries = f.read().split(b"\0")
    return frozenset(entry.split(b"=", 1)[0].decode(errors="replace") for entry in entries if entry)


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None (another C library, or thresholds chosen by the environment
    the process started with)."""
    started = _startup_environment()  # once: a failed read falls back to os.environ for this call only
    if any(name in started for name in _ENVIRONMENT):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (not musl, macOS, Windows)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def _set(mallopt: Callable[[int, int], int], thresholds: tuple[int, int]) -> bool:
    mmap, trim = thresholds
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap)) and bool(mallopt(_M_TRIM_THRESHOLD, trim))


@contextlib.contextmanager
def returning_freed_blocks() -> Iterator[bool]:
    """Thresholds :data:`WHILE_WRITING` inside, :data:`AFTER` once the last writer leaves; yields whether set."""
    mallopt = _glibc_mallopt()
    with _LOCK:
        _writers[0] += 1
        fixed = mallopt is not None and (_set(mallopt, WHILE_WRITING) if _writers[0] == 1 else True)
    try:
        yield fixed
    finally:
        with _LOCK:
            _writers[0] -= 1
            with _POOL_LOCK:  # not while another thread looks through the pool (IndexError) or adds to it
                if not _writers[0]:
                    _POOL.clear()
            if not _writers[0] and mallopt is not None:
                _set(mallopt, AFTER)


#: Most bytes of freed blocks :func:`empty_block` keeps for reuse.
POOL_BYTES = 512 << 20
#: Blocks smaller than this come from malloc as usual.
POOL_MIN_BYTES = 1 << 20

_POOL: list[np.ndarray] = []  # buffers (uint8) that blocks were cut from; free when only the pool holds them
_POOL_LOCK = threading.Lock()


def held_elsewhere(item: object) -> bool:
    """Whether anything refers to ``item`` besides the one holder it is read from in the call.

    Call it as ``held_elsewhere(pool[i])`` or ``held_elsewhere(state.spare)``:
    the holder (a list, an attribute) and the call itself account for the
    references of an item held nowhere else, measured once at import by
    :func:`_references_alone` rather than assumed.  True wherever references
    are not counted (a free-threaded interpreter), so nothing in use looks free.
    """
    return not COUNTS_REFERENCES or sys.getrefcount(item) != _ALONE


def _references_alone(item: object) -> int:
    """``sys.getrefcount`` counted as :func:`held_elsewhere` counts it: one argument, nothing else in the frame."""
    return sys.getrefcount(item)


def _measure_alone() -> int:
    holder = [np.empty(1, np.uint8)]
    return _references_alone(holder[0])


# references of an item only its holder refers to (the holder's and the call's in CPython 3.11), measured rather
# than assumed: where getrefcount counts fewer, an item in use must not look free
_ALONE = _measure_alone()
#: Whether :func:`held_elsewhere` can count references (not where the GIL is off).
COUNTS_REFERENCES = getattr(sys, "_is_gil_enabled", lambda: True)()


def _sized(shape: tuple[int, ...], dtype: np.dtype | type) -> tuple[np.dtype, int]:
    """``dtype`` as a dtype, and the bytes of a block of ``shape``."""
    dtype = np.dtype(dtype)
    return dtype, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def empty_block(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """``np.empty(shape, dtype)``, in the memory of a freed block of the same size while a save streams data.

    A fresh block of many MiB is mapped on its own (see above), and the kernel
    zeroes every page of it when first touched: on the virtual machine the
    benchmarks run on, about 0.6 s of CPU per GB, more than reading the same
    bytes.  Within :func:`returning_freed_blocks`, blocks of at least
    :data:`POOL_MIN_BYTES` are cut from buffers kept in a pool (up to
    :data:`POOL_BYTES`, 512 MiB, held while a save runs), each reused as soon
    as no array uses it any more (no reference left but the pool's); when the
    pool is full, free buffers of other sizes are dropped to make room, and it
    is emptied when the last :func:`returning_freed_blocks` exits.  The pool's
    buffers are mapped in small pages (:func:`_small_page_buffer`), unless the
    user chose NumPy's huge-page advice.  Elsewhere,
    or for small blocks, plain ``np.empty``.

    Example
    -------
    >>> empty_block((2, 3), np.float32).shape
    (2, 3)
    """
    dtype, nbytes = _sized(shape, dtype)
    if nbytes < POOL_MIN_BYTES or nbytes > POOL_BYTES or not _writers[0] or not COUNTS_REFERENCES:
        return np.empty(shape, dtype)
    with _POOL_LOCK:
        buffer = None
        for i in range(len(_POOL)):
            if _POOL[i].nbytes == nbytes and not held_elsewhere(_POOL[i]):
                buffer = _POOL[i]
                break
        if buffer is None:
            if not _writers[0]:
                return np.empty(shape, dtype)
            # full: drop free buffers (of other sizes, as none of this size is free) to make room,
            # unless the buffers in use alone leave none
            in_use = sum(_POOL[i].nbytes for i in range(len(_POOL)) if held_elsewhere(_POOL[i]))
            if in_use + nbytes > POOL_BYTES:
                return np.empty(shape, dtype)
            total = sum(b.nbytes for b in _POOL)
            for i in reversed(range(len(_POOL))):
                if total + nbytes <= POOL_BYTES:
                    break
                if not held_elsewhere(_POOL[i]):
                    total -= _POOL[i].nbytes
                    del _POOL[i]
            if total + nbytes > POOL_BYTES:
                return np.empty(shape, dtype)
            buffer = _small_page_buffer(nbytes)
            _POOL.append(buffer)
        return buffer.view(dtype).reshape(shape)


#: NumPy advises huge pages for arrays of this many bytes or more.
HUGE_ADVICE_BYTES = 4 << 20


def _advice_in(value: str | None) -> bool:
    """Whether ``NUMPY_MADVISE_HUGEPAGE=value`` switches NumPy's huge-page advice on, read as NumPy reads it
    (``numpy/__init__.py``: ``int(value)``, on unless 0): ``"0"`` and ``" 00 "`` switch it off; unset, or a
    value that is no whole number (which NumPy's import refuses: set after it, NumPy never read it), choose
    nothing.

    >>> [_advice_in(v) for v in ("1", " 2 ", "0", "-0", None, "yes")]
    [True, True, False, False, False, False]
    """
    try:
        return value is not None and int(value) != 0
    except ValueError:
        return False


# NUMPY_MADVISE_HUGEPAGE in os.environ as this module is imported, NumPy having just been imported (see below)
_ADVICE_CHOSEN = _advice_in(os.environ.get("NUMPY_MADVISE_HUGEPAGE"))


def huge_page_advice_chosen() -> bool:
    """Whether the user chose NumPy's huge-page advice with ``NUMPY_MADVISE_HUGEPAGE`` (a whole number but 0,
    as NumPy reads it: :func:`_advice_in`): then it is kept, and neither :func:`small_pages_while` nor the
    small-page blocks (:func:`_small_page_region`) override it.  ``NUMPY_MADVISE_HUGEPAGE=0`` chooses small
    pages, which both then take too.

    NumPy reads the variable once, from ``os.environ``, when it is imported, and never again: that is
    the environment that counts.  It is read here at the same moment, as this module is imported (it
    imports NumPy first), so a value set in ``os.environ`` before NumPy's import counts (unlike the
    environment the process started with, ``/proc/self/environ``) and one set later does not, as for
    NumPy.  (A value set between NumPy's import and this module's counts too: then nothing is changed.)
    """
    return _ADVICE_CHOSEN


def kept_block(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """``np.empty(shape, dtype)`` for a block that a chain of tasks keeps from step to step (a fold's
    partials): from :data:`HUGE_ADVICE_BYTES` on, mapped on its own in small pages.

    NumPy advises huge pages for such a block; on the benchmarks' virtual
    machine the first touch of a fresh huge page costs from a little to many
    times what small pages cost, from one run to the next (see
    :func:`_small_page_region`).  A kept block is fresh memory in every run, so
    it takes small pages: more faults, each at a steady cost.  Unlike
    :func:`empty_block`, any time, not only while a save runs; the mapping is
    returned when no array uses it any more.  Plain ``np.empty`` when the
    user chose NumPy's advice (:func:`huge_page_advice_chosen`).

    Example
    -------
    >>> kept_block((2, 3), np.float32).shape
    (2, 3)
    """
    dtype, nbytes = _sized(shape, dtype)
    if nbytes < HUGE_ADVICE_BYTES:
        return np.empty(shape, dtype)
    region = _small_page_region(nbytes)
    if region is None:  # NumPy's allocation, whose MemoryError names this shape and dtype
        return np.empty(shape, dtype)
    # the array over the mapping itself, not a view of another array: a view of it then refers to it,
    # so held_elsewhere sees that view (a fold's spare is reused only when nothing reads it)
    return np.ndarray(shape, dtype, buffer=region)


def _small_page_buffer(nbytes: int) -> np.ndarray:
    """``nbytes`` of fresh memory in small pages (:func:`_small_page_region`), as uint8; ``np.empty`` where
    it cannot be mapped, so that a failure is NumPy's ``MemoryError``."""
    region = _small_page_region(nbytes)
    return np.empty(nbytes, np.uint8) if region is None else np.frombuffer(region, np.uint8)


def _small_page_region(nbytes: int):
    """``nbytes`` of fresh private memory mapped on its own in small pages (``MADV_NOHUGEPAGE``), or None.

    NumPy advises huge pages for arrays of 4 MiB or more; on the benchmarks'
    virtual machine a fresh huge page cost 0.2 to 7 ms per MiB at its first
    touch from one run to the next, small pages a steady 0.7 ms (see
    :func:`small_pages_while`, which switches the advice off for a whole
    process).  Two kinds of block take small pages per allocation, with
    nothing process-wide changed: the pool's buffers (:func:`empty_block`),
    touched once and then reused, and the blocks a chain of tasks keeps
    (:func:`kept_block`).  The mapping is returned to the system once no
    array uses it.  None where the user chose NumPy's huge-page advice
    (:func:`huge_page_advice_chosen`), where the system has no such mapping
    (not POSIX), for 0 bytes, or where it refuses it (``OSError``: out of
    memory or address space): the caller then allocates with NumPy.
    """
    import mmap

    private = getattr(mmap, "MAP_PRIVATE", None)
    if private is None or not nbytes or huge_page_advice_chosen():
        return None
    try:  # fileno -1: CPython adds MAP_ANONYMOUS itself (where the system has it)
        region = mmap.mmap(-1, nbytes, flags=private)
    except OSError:  # no room (ENOMEM, RLIMIT_AS)
        return None
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advice is not None:
        with contextlib.suppress(OSError):  # a kernel without transparent huge pages
            region.madvise(advice)
    return region


_PAGES_LOCK = threading.Lock()
_page_users: list[object] = []  # a token per save inside _small_pages
_page_advice: list[bool] = []  # NumPy's huge-page advice before the first of them, while it is off


def _madvise_switch():
    """NumPy's huge-page switch (``_set_madvise_hugepage(bool)``, returns the advice it replaces), or None.

    ``numpy._core.multiarray`` on NumPy 2 and 1.26 (imported by name: 1.26 does
    not import ``numpy._core`` itself), ``numpy.core.multiarray`` on 1.24-1.25
    (on NumPy 2 that name is deprecated, so it is only tried second)."""
    import importlib

    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        switch = getattr(module, "_set_madvise_hugepage", None)
        if switch is not None:
            return switch
    return None


@contextlib.contextmanager
def small_pages_while(enabled: bool = True):
    """NumPy's huge-page advice (``madvise(MADV_HUGEPAGE)`` on arrays of 4 MiB or more) off inside.

    Every block a save (``mhw.save``) allocates (joined series, outputs) is
    fresh memory touched once.  With transparent huge pages on ``madvise`` (the common
    default), each advised 2 MiB page is found at the first touch, with
    direct compaction when memory is fragmented: on the benchmarks' virtual
    machine 0.2 to 7 ms per MiB from one run to the next, against a steady
    0.7 ms per MiB for small pages.  The advice is process-wide: off from the
    first save in to the last out, then set back to what it was before the
    first.  Nothing is changed when ``enabled`` is False, the user chose the
    advice (:func:`huge_page_advice_chosen`) or NumPy has no such switch.
    Entry and exit are safe from an exception (KeyboardInterrupt) at any point:
    the advice is switched and recorded in one C call, and a save is counted
    only inside the ``try``.
    """
    switch = _madvise_switch() if enabled and not huge_page_advice_chosen() else None
    if switch is None:
        yield
        return
    token = object()
    try:
        with _PAGES_LOCK:
            if not _page_advice:  # the first save in: off, and what it was, recorded in the same C call
                _page_advice[:] = map(switch, [False])
            _page_users.append(token)
        yield
    finally:
        with _PAGES_LOCK:
            if any(user is token for user in _page_users):
                _page_users.remove(token)
            if not _page_users and _page_advice:  # the last save out
                switch(_page_advice[0])
                _page_advice.clear()
