"""Mapping a block function over the spatial blocks of a ``(time, *space)`` array, each
block's series whole in one task (:func:`_map_series`), and the blocks chosen for it
(:func:`_time_whole`): joined from the held time chunks, passed through a scratch file
(:func:`_spilled`), or rechunked."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import errno
import functools
import logging
import math
import os
import tempfile
import threading

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import map_blocks
from .._client import active_client
from .._memory import empty_block
from ..chunking import checked_bytes, chunked_for, memory_per_thread, plan_chunks, worker_threads
from ..io.direct import _pread_into
from ..io.uncached import PAGE, _pwrite_all, direct_file_writes, scratch, write_direct

logger = logging.getLogger("oceanflow.mhw")


def _map_series(func, data, extras, *, length, dim, dtypes, name, **kwargs):
    """Map ``func`` over the spatial blocks of ``data`` with its time axis whole in each (one task per block).

    ``func(x, *extras, **kwargs)`` gets C-ordered 2-D views: ``x`` as
    ``(time, pixel)`` and each extra as ``(row, pixel)`` (every row; its one
    dimension not in ``data``'s space, wherever it stands), and
    returns one ``(length, pixel)`` array per entry of ``dtypes``.  ``length``
    and ``dim`` are one int and one name for every output, or one per output.
    Returns DataArrays ``(dim, *space)`` with the spatial coordinates of
    ``data`` (and ``time`` on outputs along it): no transposed copies, no
    rechunking of the blocks' time pieces outside the task (the task
    concatenates them).
    """
    lengths = tuple(length) if isinstance(length, (tuple, list)) else (length,) * len(dtypes)
    out_dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,) * len(dtypes)
    space = [d for d in data.dims if d != "time"]
    data = _time_whole(_grid_loaded(data).transpose("time", *space))
    extras = [e.transpose(*(d for d in e.dims if d not in space), *space) for e in extras]  # by name, any order
    if is_dask(data.data):
        extras = [e.chunk({e.dims[0]: -1, **{d: data.chunksizes[d] for d in space}}) for e in extras]
    labels = [f"space{i}" for i in range(len(space))]
    args = [data.data, ("time", *labels)]
    for k, extra in enumerate(extras):
        args += [extra.data, (f"row{k}", *labels)]
    results = map_blocks(
        _series_call,
        ("out", *labels),
        *args,
        dtype=tuple(dtypes) if len(dtypes) > 1 else dtypes[0],
        new_axes={"out": lengths[0]},
        adjust_chunks=[{"out": n} for n in lengths] if len(set(lengths)) > 1 else None,
        name=name,
        series_func=func,
        **kwargs,
    )
    results = results if isinstance(results, tuple) else (results,)
    spatial = {k: v for k, v in data.coords.items() if set(v.dims) <= set(space)}
    return tuple(
        xr.DataArray(r, dims=(d, *space), coords={**spatial, "time": data["time"]} if d == "time" else spatial)
        for r, d in zip(results, out_dims, strict=True)
    )


def _grid_loaded(data):
    """``data`` with its lazy coordinates off the time axis (a curvilinear grid's 2-D lat/lon) in memory.

    They are small, and chunked as stored they would not match the blocks the
    series are split into (xarray then refuses the outputs' chunks).
    """
    lazy = {k: v.compute() for k, v in data.coords.items() if "time" not in v.dims and is_dask(v.data)}
    return data.assign_coords(lazy) if lazy else data


def _series_call(x, *extras, series_func, **kwargs):
    """One block: ``(time, *space)`` and ``(row, *space)`` arrays -> ``(length, *space)`` arrays
    (``series_func`` run within :func:`computing_at_once`'s bound, where one is set)."""
    space = x.shape[1:]
    flat = [np.ascontiguousarray(a).reshape(a.shape[0], -1) for a in (x, *extras)]  # views when C-ordered
    gate = _GATE["semaphore"]
    with gate if gate is not None else contextlib.nullcontext():
        results = tuple(r.reshape(r.shape[:1] + space) for r in series_func(*flat, **kwargs))
    return results if len(results) > 1 else results[0]


_GATE: dict = {"semaphore": None, "users": 0}  # computing_at_once's bound, and the callers inside it
_GATE_LOCK = threading.Lock()


@contextlib.contextmanager
def computing_at_once(n):
    """Inside: at most ``n`` blocks' series functions (:func:`_series_call`) run at once in this
    process (concurrent callers share the first one's ``n``).

    ``mhw.save`` runs its tasks on :func:`io_threads` more threads than it computes on: while a
    task waits on a file (its series read back from the scratch file, its chunks written past the
    page cache, its event table put aside), another task reads or writes, or computes on the core it
    left, with no more blocks computing at once than cores (each computed as fast as before)."""
    with _GATE_LOCK:
        if not _GATE["users"]:
            _GATE["semaphore"] = threading.Semaphore(n)
        _GATE["users"] += 1
    try:
        yield
    finally:
        with _GATE_LOCK:
            _GATE["users"] -= 1
            if not _GATE["users"]:
                _GATE["semaphore"] = None  # (a task running still releases the one it holds)


def io_threads(threads):
    """Threads beyond ``threads`` computing that read and write while they compute
    (:func:`computing_at_once`): one per two.  On the 2-core benchmark machine, ``mhw.save``'s
    30-year 1-degree pipeline with one had both cores wanted 95-98 % of its blocks' phase, 81-92 %
    without, for the same CPU; with two, no better than with one, for a block more in memory."""
    return -(-threads // 2)


def _time_whole(data):
    """``data`` ((time, *space)) in spatial blocks whose series fit a task
    (:func:`~oceanflow.chunking.plan_chunks`), at least one per thread, when
    its time axis is chunked: rechunked in space only, its time chunks left as they are
    (each task concatenates its own), or, where :func:`_join_fits`, split by one joining
    task per block (:func:`_joined`).  Blocks whose time axis is whole are kept."""
    data = chunked_for(data, core_dims="time", operation="mhw")
    if not is_dask(data.data) or len(data.chunks[0]) == 1:  # time already whole: the blocks as they are
        return data  # (splitting them for more tasks than threads would copy every block once more)
    # blocks whose whole series fit a task's share (the order statistics' rule), not storage-aligned
    # blocks: time-chunked storage has whole-grid chunks, which would make one block of the whole input
    plan = plan_chunks(data, core_dims="time", operation="quantile")
    chunks = {d: c if isinstance(c, int) else max(c) for d, c in plan.chunks.items()}
    space = [d for d in data.dims if d != "time"]
    blocks = math.prod(math.ceil(data.sizes[d] / chunks[d]) for d in space)
    threads = worker_threads()
    if space and blocks < threads:  # a task per thread at least
        widest = max(space, key=lambda d: data.sizes[d] // chunks[d])
        parts = math.ceil(threads / (blocks / math.ceil(data.sizes[widest] / chunks[widest])))
        chunks[widest] = max(1, math.ceil(data.sizes[widest] / parts))
    wanted = {d: chunks[d] for d in space if data.chunksizes[d] != _even(data.sizes[d], chunks[d])}
    logger.info("mhw: time whole in each task, spatial chunks %s", {d: chunks[d] for d in space})
    if not wanted:
        return data
    blocks = {d: _even(data.sizes[d], chunks[d]) if d in wanted else data.chunksizes[d] for d in space}
    if all(_within(data.chunksizes[d], blocks[d]) for d in space) and _join_fits(data):
        return data.copy(data=_joined(data.data, [blocks[d] for d in space]))
    if _spill_fits():
        sizes = _within_budget({d: max(blocks[d]) for d in space}, data, threads)
        logger.info("mhw: the input (%d bytes) passes through a scratch file, blocks %s", data.nbytes, sizes)
        refined = [_refined(data.chunksizes[d], _even(data.sizes[d], sizes[d])) for d in space]
        return data.copy(data=_spilled(data.data, refined, _scratch_directory()))
    return data.chunk(wanted)


#: dask config key: the most bytes of input :func:`_joined` holds (the whole input, until its
#: last block is joined), and of a whole table ``mhw.save`` pads in memory; a size such as
#: ``"1GiB"``, at most :func:`~oceanflow.chunking.memory_per_thread`.
HELD_KEY = "oceanflow.mhw.held-bytes"
#: :data:`HELD_KEY`'s default: the issue's target is a whole pipeline under 2 GB of memory.
HELD_DEFAULT = 1 << 30


def held_bytes():
    """Bytes ``oceanflow.mhw`` may hold at once of its input or of a whole table (:data:`HELD_KEY`).

    Example
    -------
    >>> import dask
    >>> with dask.config.set({HELD_KEY: "64MiB"}):
    ...     held_bytes() == 64 << 20
    True
    """
    import dask

    given = checked_bytes(dask.config.get(HELD_KEY, None), HELD_KEY)
    return min(given or HELD_DEFAULT, memory_per_thread())


def _join_fits(data):
    """Whether :func:`_joined` may split ``data`` into its blocks: on the local scheduler, when
    the whole input fits :func:`held_bytes`.

    Each joining task depends on every time chunk of its stored chunk (the whole grid, for
    time-sliced storage): all of them are held until the last block is joined, and on a
    ``distributed`` cluster each worker would fetch the whole input, where a rechunk's split
    tasks send each worker only its blocks' pieces."""
    return active_client() is None and data.nbytes <= held_bytes()


def _spill_fits():
    """Whether :func:`_spilled` may pass the input through a scratch file: on dask's threaded or
    synchronous scheduler (the tasks share this process and its descriptor), where an open file
    can be unlinked (POSIX).  On a ``distributed`` cluster, dask's rechunk (its p2p method
    spills to the workers' disks itself)."""
    from dask import threaded
    from dask.base import get_scheduler
    from dask.local import get_sync

    return active_client() is None and os.name == "posix" and get_scheduler() in (None, threaded.get, get_sync)


#: Bytes a spilled block's task holds, over its series' bytes: the series, the detection's three outputs
#: (as many bytes as the series again, a quarter, again), the event table, the Zarr writes' buffers.
SPILLED_COPIES = 8


def _within_budget(sizes, data, threads):
    """Block ``sizes`` (per spatial dimension) halved along their longest dimension until ``threads``
    blocks in flight, :data:`SPILLED_COPIES` times their series, fit :func:`held_bytes`."""
    sizes, budget = dict(sizes), held_bytes()
    series = data.sizes["time"] * data.dtype.itemsize
    while SPILLED_COPIES * threads * series * math.prod(sizes.values()) > budget and max(sizes.values()) > 1:
        longest = max(sizes, key=sizes.get)
        sizes[longest] = -(-sizes[longest] // 2)
    return sizes


def _scratch_directory():
    """dask's ``temporary-directory``, else the system's temporary directory."""
    import dask

    return dask.config.get("temporary-directory", None) or tempfile.gettempdir()


def _even(size, chunk):
    return (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())


def _within(stored, blocks):
    """Whether every block of ``blocks`` (chunk sizes along one axis) lies within one chunk of ``stored``."""
    ends = set(np.cumsum(stored).tolist())
    return ends <= set(np.cumsum(blocks).tolist())


def _joined(array, blocks):
    """The dask ``array`` ``(time, *space)`` with its time axis whole and ``blocks`` (chunk sizes per
    spatial axis, each block within one of its chunks): one task per block joins the block's piece
    of every time chunk, where ``array.rechunk`` makes a split and a merge task per piece."""
    import itertools

    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"mhw-series-{tokenize(array, blocks)}"
    keys = array.__dask_keys__()
    starts = [np.cumsum((0,) + tuple(c)) for c in array.chunks[1:]]  # each stored chunk's first index
    graph: dict = {}
    for index in itertools.product(*(range(len(b)) for b in blocks)):
        where, slices = [], []
        for axis, k in enumerate(index):
            lo = sum(blocks[axis][:k])
            chunk = int(np.searchsorted(starts[axis], lo, side="right")) - 1
            first = lo - int(starts[axis][chunk])
            where.append(chunk)
            slices.append(slice(first, first + blocks[axis][k]))
        pieces = [_key(keys[t], where) for t in range(len(array.chunks[0]))]
        graph[(name, 0) + index] = (_join_pieces, pieces, tuple(slices))
    layer = HighLevelGraph.from_collections(name, graph, dependencies=[array])
    return da.Array(layer, name, chunks=((array.shape[0],), *blocks), dtype=array.dtype, meta=array._meta)


def _key(keys, where):
    for k in where:
        keys = keys[k]
    return keys


def _join_pieces(pieces, slices):
    """One block's series: its ``slices`` of each time chunk in ``pieces``, joined along time."""
    return np.concatenate([piece[(slice(None),) + slices] for piece in pieces])


def _refined(stored, blocks):
    """Chunk sizes along one axis cut at the ends of both ``stored`` and ``blocks``: each within one stored chunk."""
    ends = sorted(set(np.cumsum(stored).tolist()) | set(np.cumsum(blocks).tolist()))
    return tuple(np.diff([0, *ends]).tolist())


def _spilled(array, blocks, directory):
    """The dask ``array`` ``(time, *space)`` with its time axis whole and ``blocks`` (chunk sizes per
    spatial axis, each block within one stored chunk), passed through a scratch file in ``directory``.

    One task per group of consecutive stored chunks along time (:func:`_put_group`) writes each
    block's pieces of them where that block's series lies in the file (:class:`_Spill`: adjacent
    slots, one write), and the chunks are freed; one task per block, after all of them,
    reads its series back: this process holds the chunks and the blocks in flight, not the input
    (the file is written and read back past the page cache where :class:`_Spill` can, else its pages are
    the kernel's page cache, written back to disk as memory is needed).
    Tasks: one per group of stored chunks, one per block, and one between them.
    """
    import itertools

    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(array, blocks, directory)
    name, put, done = f"mhw-spill-{token}", f"mhw-spill-put-{token}", f"mhw-spill-done-{token}"
    spill = _Spill(array.shape[0], array.chunks[0], array.dtype, blocks, directory)
    group = _put_group(array, spill)
    starts = [np.cumsum((0,) + tuple(c)) for c in array.chunks]  # each stored chunk's first index, per axis
    ends = [np.cumsum(b) for b in blocks]  # each block's end, per spatial axis
    keys, times = array.__dask_keys__(), len(array.chunks[0])
    graph: dict = {}
    for where in itertools.product(*(range(len(c)) for c in array.chunks[1:])):
        # the blocks within this stored chunk in space, with their slices of it
        ranges = []
        for axis, k in enumerate(where):
            lo, hi = int(starts[axis + 1][k]), int(starts[axis + 1][k + 1])
            first, last = int(np.searchsorted(ends[axis], lo, side="right")), int(np.searchsorted(ends[axis], hi))
            ranges.append(
                [
                    (b, slice(int(ends[axis][b]) - blocks[axis][b] - lo, int(ends[axis][b]) - lo))
                    for b in range(first, last + 1)
                ]
            )
        pieces = [(tuple(b for b, _ in combo), tuple(s for _, s in combo)) for combo in itertools.product(*ranges)]
        # (pieces in the function: dask's graph conversion would search its slices for keys)
        write = functools.partial(spill.put, pieces=pieces)
        for g, t in enumerate(range(0, times, group)):
            chunks = [_key(keys, (u, *where)) for u in range(t, min(t + group, times))]
            graph[(put, g) + where] = (write, chunks, int(starts[0][t]))
    graph[done] = (_all_written, list(graph))  # (each read after every write: edges per group, not per pair)
    for index in itertools.product(*(range(len(b)) for b in blocks)):
        graph[(name, 0) + index] = (spill.get, index, done)
    layer = HighLevelGraph.from_collections(name, graph, dependencies=[array])
    return da.Array(layer, name, chunks=((array.shape[0],), *blocks), dtype=array.dtype, meta=array._meta)


#: Bytes of each block's pieces a put task of :func:`_spilled` writes at once, at least (where its group of
#: stored chunks fits :func:`_put_group`'s share of memory): ``O_DIRECT`` writes of 128 KiB ran at a third
#: of the speed of 1 MiB ones on the benchmark's machine.
SPILL_WRITE_BYTES = 1 << 20


def _put_group(array, spill):
    """Consecutive time chunks of ``array`` per put task of ``spill``: enough for :data:`SPILL_WRITE_BYTES`
    of the smallest block's pieces, as many as fit a quarter of :func:`held_bytes` per thread, at least one."""
    steps = max(array.chunks[0])
    piece = min(math.prod(shape) for shape in spill.shapes.values()) * steps * array.dtype.itemsize
    chunk = math.prod(max(c) for c in array.chunks) * array.dtype.itemsize
    wanted = -(-SPILL_WRITE_BYTES // _slot(piece))
    return max(1, min(wanted, held_bytes() // (4 * worker_threads() * chunk), len(array.chunks[0])))


def _all_written(written):
    """The task between a spill's writes and its reads (``written``: the writes' results, dependencies only)."""
    return None


#: Bytes of a spilled block read back at a time (whole pieces' slots, at least one).
SPILL_READ_BYTES = 4 << 20


#: Writes a spill's put task keeps in flight (:meth:`_Spill.put`): queued for the device while it copies.
SPILL_WRITES_IN_FLIGHT = 2
#: Reads of :data:`SPILL_READ_BYTES` a spilled block's task keeps in flight (:meth:`_Spill._read`).
SPILL_READS_IN_FLIGHT = 2
#: Threads writing and reading spills' pieces for their tasks, shared by all spills.
SPILL_THREADS = 4


@functools.cache
def _spill_threads():
    """The threads writing and reading spills' pieces for their tasks (started at the first put, kept)."""
    return concurrent.futures.ThreadPoolExecutor(SPILL_THREADS, thread_name_prefix="oceanflow-spill-io")


def _slot(nbytes):
    """Bytes of a piece's slot in a scratch file: ``nbytes`` rounded up to a :data:`~oceanflow.io.uncached.PAGE`."""
    return -(-nbytes // PAGE) * PAGE


class _Spill:
    """A scratch file holding each spatial block's whole series: ``(block, time chunk, slot)``, each time
    chunk's piece ``(steps, *block)`` in a slot of whole pages (:func:`_slot`).

    Where :func:`~oceanflow.io.uncached.direct_file_writes` allows it, the slots are written and read
    back with ``O_DIRECT``: through the page cache each page of the file is a fresh page of memory filled
    by a copy, which on the benchmark's virtual machine cost more CPU than decoding the input (a
    device that refuses an ``O_DIRECT`` write or read sends it, and those after it, through the page cache).

    The file is created (in ``directory``) by the first piece written and unlinked at once, so
    it never outlives its descriptor: closed, once no task is writing or reading it, when every
    block written has been read as many times as its pieces were written (a graph computed again
    writes and reads them again, two computes at once share the file), or a write failed (a full
    disk: its space freed at once), else when this object (held by the graph) is collected.  A
    block read before all its pieces are written is refused (never zeros read as data).
    """

    def __init__(self, length, steps, dtype, blocks, directory):
        import itertools

        self.length, self.dtype, self.directory = length, np.dtype(dtype), directory
        self.steps, self.time_chunks = tuple(int(n) for n in steps), len(steps)  # each time chunk's steps
        self.chunk_of = {t0: k for k, t0 in enumerate(np.cumsum((0, *self.steps[:-1])).tolist())}
        self.shapes = {
            index: tuple(b[k] for b, k in zip(blocks, index, strict=True))
            for index in itertools.product(*(range(len(b)) for b in blocks))
        }
        self.slots = {}  # each block's pieces' offsets within its region
        sizes = []
        for index, shape in self.shapes.items():
            slots = [_slot(n * math.prod(shape) * self.dtype.itemsize) for n in self.steps]
            self.slots[index] = np.cumsum([0, *slots]).tolist()
            sizes.append(self.slots[index][-1])
        self.offsets = dict(zip(self.shapes, np.cumsum([0, *sizes[:-1]]).tolist(), strict=True))
        self.direct: int | None = None  # the file's O_DIRECT descriptor, where used
        self.refused = False  # the device refused an O_DIRECT write or read: the page cache from then on
        self.pieces = dict.fromkeys(self.shapes, 0)  # pieces written and not yet read back, per block
        self.fd: int | None = None
        self.users = 0  # tasks writing or reading through fd now: it is closed only between them
        self.failed = False  # a write failed: fd closed once its users are done
        self.lock = threading.Lock()

    def __repr__(self):  # (dask's graph reprs and tokens)
        return f"_Spill({len(self.shapes)} blocks of {self.length} steps in {self.directory})"

    def __dask_tokenize__(self):
        return ("mhw-spill", self.length, str(self.dtype), tuple(self.shapes.items()), self.directory)

    def _used(self, create):
        """The descriptor (opened, and the file unlinked, when ``create``), one more user on it."""
        with self.lock:
            if self.fd is None and create:
                self.fd, self.direct = _unlinked_file(self.directory, ".spill", direct=True)
            self.users += self.fd is not None
            return self.fd

    def _done(self, pieces, failed=False):
        """A user of the descriptor done: ``pieces`` (block index: count) written (or, negative, read
        back); the descriptor closed when no user is left and nothing is left to read, or a write failed."""
        with self.lock:
            self.users -= 1
            self.failed |= failed
            for index, n in pieces.items():
                self.pieces[index] += n
            if self.fd is not None and not self.users and (self.failed or not any(self.pieces.values())):
                self._close()
                self.failed, self.pieces = False, dict.fromkeys(self.pieces, 0)

    def _close(self):
        for fd in (self.fd, self.direct):
            if fd is not None:
                os.close(fd)
        self.fd = self.direct = None
        self.refused = False

    def put(self, chunks, t0, pieces):
        """Write each ``(block index, slices)`` of ``pieces`` of ``chunks`` (consecutive time chunks, the
        first from step ``t0``) in place: a block's pieces of them, adjacent slots, in one write, up to
        :data:`SPILL_WRITES_IN_FLIGHT` of them on :func:`_spill_threads` while the next are copied;
        every one of them done (or failed) when this returns."""
        fd = self._used(create=True)
        written = dict.fromkeys((index for index, _ in pieces), 0)
        pending: collections.deque = collections.deque()  # (write, block index) in flight, oldest first
        try:
            chunks = [np.asarray(chunk) for chunk in chunks]
            first = self.chunk_of[t0]
            for n, (index, slices) in enumerate(pieces):
                if len(pending) == SPILL_WRITES_IN_FLIGHT:  # (its buffer is the one filled next)
                    write, done = pending.popleft()
                    write.result()
                    written[done] += len(chunks)
                slots = self.slots[index][first : first + len(chunks) + 1]
                buffer = scratch(f"mhw spill {n % SPILL_WRITES_IN_FLIGHT}", slots[-1] - slots[0])
                for chunk, at in zip(chunks, slots, strict=False):  # (each slot's last page's tail: not read)
                    piece = chunk[(slice(None),) + slices]
                    start = at - slots[0]
                    np.copyto(buffer[start : start + piece.nbytes].view(self.dtype).reshape(piece.shape), piece)
                pending.append(
                    (_spill_threads().submit(self._write, fd, buffer.data, self.offsets[index] + slots[0]), index)
                )
            while pending:
                pending[0][0].result()
                written[pending.popleft()[1]] += len(chunks)
        except BaseException:
            concurrent.futures.wait([write for write, _ in pending])  # none left writing into fd
            self._done(written, failed=True)
            raise
        self._done(written)

    def get(self, index, written):
        """Block ``index``'s whole series ``(time, *block)``, read back once every piece is written
        (``written``: the result of the task after every write, a dependency only)."""
        out = empty_block((self.length, *self.shapes[index]), self.dtype)
        fd = self._used(create=False)
        with self.lock:
            ready = self.pieces[index]
        if fd is None or ready < self.time_chunks:
            if fd is not None:
                self._done({})
            raise RuntimeError(
                f"mhw scratch file: block {index} read with {ready} of its {self.time_chunks} pieces written"
            )
        try:
            self._read(fd, index, out)
        except BaseException:
            self._done({}, failed=True)
            raise
        self._done({index: -self.time_chunks})
        return out

    def _write(self, fd, view, offset):
        """``view`` (whole pages) written at ``offset``: with ``O_DIRECT`` where used."""
        if self.direct is not None and not self.refused:
            try:
                return _write_at(self.direct, view, offset, self.directory)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                self.refused = True  # (the descriptor stays open until fd is closed: other tasks may use it)
        _write_at(fd, view, offset, self.directory)

    def _read(self, fd, index, out):
        """Block ``index``'s pieces read into ``out`` ``(time, *block)``, :data:`SPILL_READ_BYTES` of whole
        slots at a time (with ``O_DIRECT`` where used) into page-aligned buffers, up to
        :data:`SPILL_READS_IN_FLIGHT` reads on :func:`_spill_threads` while the oldest is copied out; none
        left reading when this returns."""
        slots, steps = self.slots[index], self.steps
        ranges, k = [], 0  # (first, end) time chunks of each read
        while k < len(steps):
            last = k + 1
            while last < len(steps) and slots[last + 1] - slots[k] <= SPILL_READ_BYTES:
                last += 1
            ranges.append((k, last))
            k = last
        pending: collections.deque = collections.deque()  # (read, stage, first, end) in flight, oldest first
        try:
            for n, (k, last) in enumerate(ranges):
                stage = scratch(f"mhw spill read {n % SPILL_READS_IN_FLIGHT}", slots[last] - slots[k])
                offset = self.offsets[index] + slots[k]
                pending.append((_spill_threads().submit(self._read_at, fd, stage, offset), stage, k, last))
                if len(pending) == SPILL_READS_IN_FLIGHT:  # (the oldest's stage is filled next)
                    self._copy_out(pending.popleft(), index, out)
            while pending:
                self._copy_out(pending.popleft(), index, out)
        except BaseException:
            concurrent.futures.wait([read for read, *_ in pending])  # none left reading into a stage
            raise

    def _copy_out(self, pending, index, out):
        """Once its read has ended, time chunks ``first`` to ``end`` of block ``index`` copied from ``stage``
        (their slots) into ``out``; ``pending``: ``(read, stage, first, end)``."""
        read, stage, first, end = pending
        read.result()
        slots, row = self.slots[index], math.prod(self.shapes[index]) * self.dtype.itemsize
        flat, t0 = out.reshape(-1).view(np.uint8), sum(self.steps[:first]) * row
        for j in range(first, end):
            n = self.steps[j] * row
            flat[t0 : t0 + n] = stage[slots[j] - slots[first] : slots[j] - slots[first] + n]
            t0 += n

    def _read_at(self, fd, stage, offset):
        """``stage`` (whole pages) read from ``offset``: with ``O_DIRECT`` where used; a refused read (``EINVAL``)
        sends it, and the spill's later reads and writes, through the page cache (as a refused write does)."""
        if self.direct is not None and not self.refused:
            try:
                return _pread_into(self.direct, stage, offset)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                self.refused = True
        _pread_into(fd, stage, offset)

    def __del__(self):
        self._close()


def _unlinked_file(directory, suffix, direct=False):
    """The descriptor of a new scratch file in ``directory``, unlinked at once: gone with its
    descriptor, whatever happens next.  With ``direct``: and a second descriptor opened with
    ``O_DIRECT`` where :func:`~oceanflow.io.uncached.direct_file_writes` allows it (else None)."""
    try:
        fd, path = tempfile.mkstemp(prefix="oceanflow-mhw-", suffix=suffix, dir=directory)
    except OSError as err:
        raise _scratch_error(err, directory) from err
    extra = None
    try:
        if direct and direct_file_writes(directory):
            with contextlib.suppress(OSError):
                extra = os.open(path, os.O_RDWR | os.O_DIRECT | os.O_CLOEXEC)
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.unlink(path)
    return (fd, extra) if direct else fd


def _write_at(fd, view, offset, directory):
    """``view`` written whole at ``offset`` of the scratch file ``fd`` in ``directory``; its errors say what to do."""
    try:
        _pwrite_all(fd, view, offset)
    except OSError as err:
        raise _scratch_error(err, directory) from err


def _scratch_error(err, directory):
    """``err`` (an OSError of the scratch file in ``directory``) with what to do, its errno kept."""
    return OSError(
        err.errno,
        f"mhw's scratch file in {directory}: {err.strerror or err}.  Time-chunked input and mhw.save's event "
        f"tables beyond dask config {HELD_KEY!r} pass through it on the local scheduler: set dask config "
        f"'temporary-directory' to a directory with room for the input, or raise {HELD_KEY!r} to hold it in memory",
    )


class _Stash:
    """Arrays put aside by tasks in a scratch file (unlinked at once) and read back one at a time:
    the blocks' event tables of a save beyond :func:`held_bytes` (:func:`stash_for`). Closed, and
    its space freed, when the ``with`` block ends, whatever happens in it: at once, or, while a
    ``put`` or ``load`` is still using the file (a task of a failed compute still running on a
    dask worker thread), when the last of them ends; a ``put`` or ``load`` begun after that is
    refused.

    Each array starts on a unit of the file (:attr:`unit`: a page, or the file system's block if
    larger); its whole units are written and read back with ``O_DIRECT`` where
    :func:`~oceanflow.io.uncached.direct_file_writes` allows it (through the page cache each page
    written is a fresh page of memory filled by a copy: 1.8 s of system CPU for the 0.96 GB of
    tables of the full-size benchmark), its last partial unit through the page cache; a device that
    refuses ``O_DIRECT`` (``EINVAL``) sends it, and the arrays after it, through the page cache."""

    def __init__(self, directory):
        self.directory = directory
        fd, direct = _unlinked_file(directory, ".tables", direct=True)
        self.fd: int | None = fd
        self.direct: int | None = direct
        try:
            self.unit = max(PAGE, os.fstatvfs(fd).f_bsize)
        except BaseException:
            self._close()
            raise
        self.refused = False  # the device refused an O_DIRECT write or read: the page cache from then on
        self.end = 0
        self.users = 0  # puts and loads using fd now: it is closed only between them
        self.closed = False  # the with block ended: fd closed once its users are done
        self.lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.closed = True
            self._close_unused()

    def __dask_tokenize__(self):
        return ("mhw-stash", id(self))

    def _close_unused(self):
        if self.closed and not self.users and self.fd is not None:
            self._close()

    def _close(self):
        for fd in (self.fd, self.direct):
            if fd is not None:
                os.close(fd)
        self.fd = self.direct = None

    def _used(self, nbytes):
        """The descriptors (ordinary, ``O_DIRECT`` or None) and ``nbytes`` reserved at the file's end, rounded
        up to whole units; one more user on them (refused when closed)."""
        with self.lock:
            if self.closed:
                raise RuntimeError("mhw scratch file: closed")
            self.users += 1
            offset, self.end = self.end, self.end + -(-nbytes // self.unit) * self.unit
            return self.fd, None if self.refused else self.direct, offset

    def _done(self):
        with self.lock:
            self.users -= 1
            self._close_unused()

    def put(self, array, probe):
        """Write ``array`` at the file's end; its handle, with ``probe(array)`` as its ``info``."""
        array = np.ascontiguousarray(array)
        fd, direct, offset = self._used(array.nbytes)
        try:
            info = probe(array)
            view = array.reshape(-1).view(np.uint8).data
            body = array.nbytes // self.unit * self.unit if direct is not None else 0
            if body and not write_direct(direct, fd, view[:body], offset, self.unit):
                self.refused = True  # (the descriptor stays open until fd is closed: other tasks may use it)
            _pwrite_all(fd, view[body:], offset + body)
        except OSError as err:
            raise _scratch_error(err, self.directory) from err
        finally:
            self._done()
        return _Stashed(self, offset, array.shape, array.dtype, info)


#: Bytes of a stashed array read back with ``O_DIRECT`` at a time, into a page-aligned buffer copied out.
STASH_READ_BYTES = 4 << 20


class _Stashed:
    """An array in a :class:`_Stash`: ``load()`` reads it back; ``info`` is what its probe said."""

    def __init__(self, stash, offset, shape, dtype, info):
        self.stash, self.offset, self.shape, self.dtype, self.info = stash, offset, shape, dtype, info

    def load(self, into=None):
        """The array read back, into ``into`` when given (returned): its shape and dtype, the
        array in ``len(into)`` C-contiguous pieces (``into[i]``: the rows of a padded table)."""
        out = np.empty(self.shape, self.dtype) if into is None else into
        pieces = [out] if out.flags.c_contiguous else list(out)
        contiguous = all(piece.flags.c_contiguous for piece in pieces)
        if out.size != math.prod(self.shape) or out.dtype != self.dtype or not contiguous:
            raise ValueError(f"{out.shape} {out.dtype} cannot hold the stashed {self.shape} {self.dtype}")
        stash = self.stash
        fd, direct, _ = stash._used(0)
        try:
            targets = [piece.reshape(-1).view(np.uint8) for piece in pieces]  # (rows of one size)
            body = out.nbytes // stash.unit * stash.unit if direct is not None else 0
            done = self._read_direct(direct, body, targets) if body else 0
            if done < out.nbytes:
                _read_into(fd, self.offset + done, targets, done)
        except OSError as err:
            raise _scratch_error(err, stash.directory) from err
        finally:
            stash._done()
        return out

    def _read_direct(self, direct, body, targets):
        """The array's first ``body`` bytes (whole units) read with ``O_DIRECT`` into a page-aligned buffer,
        :data:`STASH_READ_BYTES` at a time, each copied into ``targets`` (the array's bytes in pieces of one
        size); stops where refused (``EINVAL``: the stash's later arrays through the page cache).  Returns
        the bytes read."""
        for start in range(0, body, STASH_READ_BYTES):
            stage = scratch("mhw stash read", min(STASH_READ_BYTES, body - start))
            try:
                _pread_into(direct, stage, self.offset + start)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                self.stash.refused = True
                return start
            _copy_into(targets, start, stage)
        return body


def _pieces_from(targets, start):
    """``targets`` (bytes, pieces of one size, in order) from byte ``start`` on: (piece, first byte in it)."""
    k, at = divmod(start, targets[0].nbytes)
    return [(k, at)] + [(j, 0) for j in range(k + 1, len(targets))]


def _read_into(fd, offset, targets, start):
    """Read ``targets`` (bytes, pieces of one size) from their byte ``start`` on, from ``offset`` of ``fd``."""
    for k, at in _pieces_from(targets, start):
        _pread_into(fd, targets[k][at:], offset)
        offset += targets[k].nbytes - at


def _copy_into(targets, start, stage):
    """``stage`` (bytes) copied into ``targets`` (bytes, pieces of one size) from their byte ``start`` on."""
    done = 0
    for k, at in _pieces_from(targets, start):
        n = min(targets[k].nbytes - at, stage.nbytes - done)
        targets[k][at : at + n] = stage[done : done + n]
        done += n
        if done == stage.nbytes:
            return


def stash_for(data):
    """A :class:`_Stash` for the event tables of a save of ``data``, or None: on the local scheduler
    (:func:`_spill_fits`) when ``data`` exceeds :func:`held_bytes` (its tables, a third of it at 30
    years, would be held until the last block is done)."""
    if is_dask(data.data) and data.nbytes > held_bytes() and _spill_fits():
        return _Stash(_scratch_directory())
    return None
