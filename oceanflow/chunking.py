"""Chunk layouts that oceanflow's kernels need.

A kernel with a core dimension (a fit along ``time``, an integral over depth)
sees each series whole, so that dimension must be one dask chunk.
:func:`whole_core_dims` makes it so when that is cheap, and says what it cost.

Example
-------
>>> import warnings, numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros((10, 4)), dims=("time", "x")).chunk({"time": 5})
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     whole = whole_core_dims(da, "time", operation="polyfit")
>>> whole.chunks, caught[0].category.__name__
(((10,), (4,)), 'RechunkWarning')
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import xarray as xr

logger = logging.getLogger("oceanflow.chunking")

__all__ = [
    "GROWTH_LIMIT",
    "SMALL_CHUNK_BYTES",
    "ChunkPlan",
    "TooManyTasksError",
    "chunked_for",
    "check_task_count",
    "checked_bytes",
    "checked_chunks",
    "RechunkWarning",
    "default_target",
    "explain_chunks",
    "memory_per_thread",
    "series_target",
    "plan_chunks",
    "storage_chunks",
    "suggest_chunks",
    "whole_core_dims",
]

#: A DataArray or Dataset, returned as the same type.
XarrayObj = TypeVar("XarrayObj", bound="xr.DataArray | xr.Dataset")

#: A rechunk is done for you when each new chunk holds at most this many times
#: the bytes of the variable's largest chunk before (or at most
#: :data:`SMALL_CHUNK_BYTES`); beyond, you are asked to rechunk yourself.
GROWTH_LIMIT = 4

#: New chunks this small are always acceptable, whatever the old ones were.
SMALL_CHUNK_BYTES = 1 << 20


class RechunkWarning(UserWarning):
    """oceanflow rechunked an input so that its core dimensions are whole."""


def whole_core_dims(obj: XarrayObj, dims: str | Sequence[Hashable], *, operation: str) -> XarrayObj:
    """``obj`` with every dimension of ``dims`` in one dask chunk.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        NumPy-backed variables, and dask-backed ones whose ``dims`` are
        already whole, are returned untouched (no warning).
    dims : str or sequence of str
        The core dimensions of the operation.
    operation : str
        Name used in the warning and error messages, e.g. ``"polyfit"``.

    Returns
    -------
    Same type as ``obj``.  Each data variable with a split core dimension is
    rechunked with ``dims`` whole, keeping its other chunks when the new
    chunks hold at most :data:`GROWTH_LIMIT` times the bytes of its largest
    chunk (or :data:`SMALL_CHUNK_BYTES`), else with smaller (``"auto"``)
    chunks along its other dimensions.
    One :class:`RechunkWarning` per call reports the new chunks and their
    size.  Coordinates are left alone.

    Raises
    ------
    ValueError
        When even the smallest chunks with ``dims`` whole would hold more
        than :data:`GROWTH_LIMIT` times the current largest chunk (and more
        than :data:`SMALL_CHUNK_BYTES`): rechunking
        would then be expensive, so it is left to you.
    """
    dims = [dims] if isinstance(dims, str) else list(dims)
    is_array = isinstance(obj, xr.DataArray)
    variables = {None: obj.variable} if is_array else dict(obj.data_vars.items())
    plans, notes = {}, []
    for name, var in variables.items():
        var = getattr(var, "variable", var)
        if var.chunks is None or not any(len(var.chunks[var.get_axis_num(d)]) > 1 for d in dims if d in var.dims):
            continue
        plans[name], note = _plan(var, dims, operation, name)
        notes.append(note)
    if not plans:
        return obj
    warnings.warn(
        f"{operation} needs {_names(dims)} in one chunk: rechunked "
        + "; ".join(notes)
        + f". Rechunk beforehand, e.g. obj.chunk({{{dims[0]!r}: -1}}), to choose the chunks yourself "
        "and silence this warning.",
        RechunkWarning,
        stacklevel=3,
    )
    if is_array:
        return obj.copy(data=obj.variable.chunk(plans[None]).data)
    return obj.assign({name: obj[name].variable.chunk(chunks) for name, chunks in plans.items()})


def _plan(var, dims, operation, name):
    """New chunks (dim -> tuple) for ``var``, and a note on what they cost."""
    from dask.array.core import normalize_chunks
    from dask.utils import format_bytes

    itemsize = var.dtype.itemsize
    old_bytes = _chunk_bytes(var.chunks, itemsize)
    limit = max(GROWTH_LIMIT * old_bytes, SMALL_CHUNK_BYTES)
    core = [d in dims for d in var.dims]
    keep = tuple(
        (size,) if is_core else chunks for size, chunks, is_core in zip(var.shape, var.chunks, core, strict=True)
    )
    new = keep
    if _chunk_bytes(keep, itemsize) > limit:
        spec = tuple(size if is_core else "auto" for size, is_core in zip(var.shape, core, strict=True))
        target = max(old_bytes, SMALL_CHUNK_BYTES)
        new = normalize_chunks(spec, var.shape, limit=target, dtype=var.dtype, previous_chunks=var.chunks)
    new_bytes = _chunk_bytes(new, itemsize)
    label = "the DataArray" if name is None else f"variable {name!r}"
    if new_bytes > limit:
        smallest = itemsize * math.prod(size for size, is_core in zip(var.shape, core, strict=True) if is_core)
        raise ValueError(
            f"{operation} needs {_names(dims)} of {label} in one chunk, but it is split into chunks of "
            f"{format_bytes(old_bytes)} at most, and one whole series along {_names(dims)} alone takes "
            f"{format_bytes(smallest)} (more than {GROWTH_LIMIT} times that, and more than "
            f"{format_bytes(SMALL_CHUNK_BYTES)}), so oceanflow does not "
            f"rechunk it for you. Rechunk it yourself, e.g. obj.chunk({{{dims[0]!r}: -1}}) with "
            "larger chunks or fewer dimensions chunked elsewhere, or open the data with "
            f"chunks={{{dims[0]!r}: -1}}."
        )
    shape = "x".join(str(max(c)) for c in new)
    note = f"{label} to chunks of {shape} ({format_bytes(new_bytes)} each, was {format_bytes(old_bytes)})"
    return dict(zip(var.dims, new, strict=True)), note


def _chunk_bytes(chunks, itemsize) -> int:
    return itemsize * math.prod(max(c) if len(c) else 0 for c in chunks)


def _names(dims) -> str:
    return ", ".join(repr(d) for d in dims)


# ---------------------------------------------------------------- choosing chunks

#: Largest default target (bytes per chunk).  Reading and reducing a Zarr store
#: is fastest with chunks of one to a few storage chunks: bigger chunks leave
#: cores idle at the start and end of a computation and fall out of cache;
#: ``python benchmarks/bench_chunks.py`` measures it on your machine.
PREFERRED_MAX_BYTES = 32 * 2**20

#: Chunks held in memory per thread: the input block, the output block and
#: temporaries, with a second task queued behind each running one.
CHUNKS_IN_MEMORY_PER_THREAD = 8

#: Operations whose tasks hold the whole series of a spatial block (the order
#: statistics of ``oceanflow.climatology``), and the dimension they hold whole.
WHOLE_SERIES_OPERATIONS = {"quantile": "time"}

#: Copies of each storage chunk a read holds while it decodes: its compressed bytes (at most
#: about the decoded size) and the decoded chunk, of which it keeps the part it needs.
READ_COPIES = 2

#: Largest series of one spatial block such a task holds by default (also at
#: most a quarter of a thread's share of worker memory): with two such tasks
#: per core in flight, peak memory stays well under 1 GB per core whatever the
#: number of years.
SERIES_MAX_BYTES = 128 * 2**20


class ChunkPlan:
    """Dask chunks chosen by :func:`plan_chunks`, with the reason for each size."""

    def __init__(
        self,
        sizes: Mapping[Hashable, int],
        chunks: Mapping[Hashable, int],
        reasons: Mapping[Hashable, str],
        itemsize: int,
        target: int,
        max_tasks: int | None,
        tasks_per_chunk: int,
        whole: tuple[Hashable, int, int] | None = None,
        decoded: int = 0,
    ) -> None:
        self.sizes = dict(sizes)
        self.chunks = dict(chunks)
        self.reasons = dict(reasons)
        self.itemsize = itemsize
        self.target = target
        self.max_tasks = max_tasks
        self.tasks_per_chunk = tasks_per_chunk
        #: (dimension, series target, thread's memory share) of a whole-series operation
        self.whole = whole
        #: bytes of whole storage chunks a read of one chunk decodes (0: not planned)
        self.decoded = decoded

    @property
    def task_bytes(self) -> int:
        """Bytes one task holds: a chunk, or for a whole-series operation the whole
        series of a spatial block (its time chunks, until the task has run)."""
        if self.whole is None:
            return self.bytes_per_chunk
        return self.bytes_per_chunk // max(self.chunks[self.whole[0]], 1) * self.sizes[self.whole[0]]

    @property
    def bytes_per_chunk(self) -> int:
        return self.itemsize * math.prod(self.chunks.values())

    @property
    def n_chunks(self) -> int:
        return math.prod(math.ceil(self.sizes[d] / self.chunks[d]) if self.chunks[d] else 1 for d in self.sizes)

    @property
    def tasks(self) -> int:
        """Estimated tasks: reading each chunk plus ``tasks_per_chunk`` operations on it."""
        return self.n_chunks * (1 + self.tasks_per_chunk)

    @property
    def use_dask(self) -> bool:
        """False when the whole input fits in one target chunk: NumPy is faster then."""
        return self.n_chunks > 1 or self.itemsize * math.prod(self.sizes.values()) > self.target

    def explain(self) -> str:
        from dask.utils import format_bytes

        lines = [
            f"target {format_bytes(self.target)} per chunk; chosen chunks hold "
            f"{format_bytes(self.bytes_per_chunk)} each, {self.n_chunks:,} chunks, "
            f"about {self.tasks:,} tasks (cap {self.max_tasks:,})"
        ]
        for dim, size in self.chunks.items():
            lines.append(f"  {dim}: {size} of {self.sizes[dim]} ({self.reasons[dim]})")
        if self.whole is not None:
            dim, series, share = self.whole
            lines.append(
                f"  each task holds the whole series along {dim!r} of one spatial block: "
                f"{format_bytes(self.task_bytes)} (target {format_bytes(series)}, "
                f"a thread's share of worker memory {format_bytes(share)})"
            )
        if self.decoded > self.bytes_per_chunk:
            lines.append(
                f"  reading a chunk decodes the whole storage chunks it overlaps: {format_bytes(self.decoded)} "
                f"decoded and their compressed bytes held while it is read (the chunk itself "
                f"{format_bytes(self.bytes_per_chunk)})"
            )
        if not self.use_dask:
            lines.append(
                "  the whole input is smaller than one target chunk: dask is not worth it, "
                "compute eagerly with NumPy (oceanflow does so)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ChunkPlan({self.chunks})"


def storage_chunks(obj: xr.DataArray | xr.Dataset) -> dict[Hashable, int]:
    """Storage chunk size per dimension, read from the variables' encoding.

    Several variables with different storage chunks along a dimension give
    their least common multiple (capped at the dimension's size), so a dask
    chunk that is a multiple of it never splits a storage chunk of any of them.
    """
    found: dict = {}
    variables = [obj.variable] if isinstance(obj, xr.DataArray) else obj.data_vars.values()
    for var in variables:
        for dim, size in _encoded_chunks(var).items():
            found[dim] = min(math.lcm(found.get(dim, size), size), obj.sizes[dim])
    return found


def _encoded_chunks(var) -> dict:
    encoding = var.encoding
    if "preferred_chunks" in encoding:
        return dict(encoding["preferred_chunks"])
    sizes = encoding.get("chunksizes") or encoding.get("chunks")
    if sizes and len(sizes) == var.ndim:
        return dict(zip(var.dims, sizes, strict=True))
    return {}


def default_target(memory_per_worker: int | None = None, threads_per_worker: int | None = None) -> int:
    """Bytes per chunk: worker memory / (threads x chunks in memory per thread),
    capped at :data:`PREFERRED_MAX_BYTES` (see there why).

    Defaults come from the active ``distributed`` cluster's workers, else from
    this machine (total memory and cores), else dask's ``array.chunk-size``.
    """
    memory, threads = _worker_resources()
    memory = memory_per_worker or memory
    threads = threads_per_worker or threads
    if not memory:
        return min(_dask_chunk_size(), PREFERRED_MAX_BYTES)
    return int(max(1 << 20, min(memory / (threads * CHUNKS_IN_MEMORY_PER_THREAD), PREFERRED_MAX_BYTES)))


def memory_per_thread(memory_per_worker: int | None = None, threads_per_worker: int | None = None) -> int:
    """A worker's memory over its threads (of the active cluster, else of this
    machine; dask's ``array.chunk-size`` times :data:`CHUNKS_IN_MEMORY_PER_THREAD`
    when unknown): what one task may hold at most."""
    memory, threads = _worker_resources()
    memory = memory_per_worker or memory
    threads = threads_per_worker or threads
    if not memory:
        return _dask_chunk_size() * CHUNKS_IN_MEMORY_PER_THREAD
    return int(memory / threads)


def series_target(memory_per_worker: int | None = None, threads_per_worker: int | None = None) -> int:
    """Bytes of series a whole-series task holds: a quarter of :func:`memory_per_thread`,
    at most :data:`SERIES_MAX_BYTES`."""
    return int(min(memory_per_thread(memory_per_worker, threads_per_worker) / 4, SERIES_MAX_BYTES))


def worker_threads() -> int:
    """Threads of one worker of the active cluster (the one :func:`default_target`
    sizes chunks for), else of the local scheduler (dask's ``num_workers`` or the cores)."""
    from ._client import active_client

    if active_client() is not None:
        return _worker_resources()[1]
    import dask

    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _worker_resources():
    """(memory limit, threads) of a worker of the active cluster, else of this machine.

    With workers of different sizes, the one with the least memory per thread;
    workers without a memory limit count with this machine's memory.
    """
    from ._client import active_client

    client = active_client()
    workers = client.scheduler_info(n_workers=-1).get("workers", {}) if client is not None else {}
    limited = [(w["memory_limit"], w.get("nthreads") or 1) for w in workers.values() if w.get("memory_limit")]
    if limited:  # the worker with the least memory per thread decides
        return min(limited, key=lambda pair: pair[0] / pair[1])
    if workers:  # no memory limit: this machine's memory, the workers' threads
        return _machine_memory(), max(w.get("nthreads") or 1 for w in workers.values())
    return _machine_memory(), os.cpu_count() or 1


def _machine_memory():
    try:
        import psutil

        return psutil.virtual_memory().total
    except ImportError:
        return None


def _dask_chunk_size() -> int:
    import dask
    from dask.utils import parse_bytes

    return parse_bytes(dask.config.get("array.chunk-size"))


def plan_chunks(
    obj: xr.Dataset | xr.DataArray,
    *,
    core_dims: str | Sequence[Hashable] = (),
    target: int | str | None = None,
    memory_per_worker: int | str | None = None,
    threads_per_worker: int | None = None,
    max_tasks: int = 100_000,
    tasks_per_chunk: int = 1,
    reduce_dims: Sequence[Hashable] = (),
    sizes: Mapping[Hashable, int] | None = None,
    operation: str | None = None,
) -> ChunkPlan:
    """Choose dask chunks for ``obj`` and say why (see :func:`suggest_chunks`).

    ``sizes`` overrides dimension sizes, e.g. the total length of time over
    several files of which ``obj`` is the first.  ``operation="quantile"``
    (see :data:`WHOLE_SERIES_OPERATIONS`) plans for tasks that hold whole
    series: spatial blocks whose series fit :func:`series_target`.
    """
    given = checked_bytes(target, "target")
    memory_per_worker = checked_bytes(memory_per_worker, "memory_per_worker")
    threads_per_worker = _checked_count(threads_per_worker, "threads_per_worker")
    max_tasks = _checked_count(max_tasks, "max_tasks") or 100_000
    if operation in WHOLE_SERIES_OPERATIONS and WHOLE_SERIES_OPERATIONS[operation] in obj.dims:
        return _plan_whole_series(
            obj, WHOLE_SERIES_OPERATIONS[operation], given, memory_per_worker, threads_per_worker, max_tasks, sizes
        )
    core_dims = [core_dims] if isinstance(core_dims, str) else list(core_dims)
    missing = [d for d in core_dims if d not in obj.dims]
    if missing:
        raise ValueError(f"core dimension(s) {missing} not in the data's dimensions {tuple(obj.dims)}")
    variables = [obj.variable] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    itemsize = max((v.dtype.itemsize for v in variables), default=8)
    target = int(given or default_target(memory_per_worker, threads_per_worker))
    sizes = {**obj.sizes, **(sizes or {})}
    storage = storage_chunks(obj)
    chunks, reasons = {}, {}
    for dim, size in sizes.items():
        if dim in core_dims:
            chunks[dim], reasons[dim] = size, "core dimension, kept whole"
        elif dim in storage:
            chunks[dim], reasons[dim] = storage[dim], f"storage chunk {storage[dim]}"
        else:
            chunks[dim], reasons[dim] = 1, "not chunked on disk"
        if size == 0:  # as dask: one empty chunk
            chunks[dim], reasons[dim] = 0, "empty (length 0): one empty chunk"
    order = [d for d in _growth_order(obj, core_dims, reduce_dims) if sizes[d] > 0]
    for dim in order:  # grow by whole storage chunks while the chunk stays within the target
        others = itemsize * math.prod(size for d, size in chunks.items() if d != dim)
        step = chunks[dim]
        grown = min(sizes[dim], max(step, target // max(others, 1) // step * step))
        grown = _rounded(grown, step) if dim == "time" and grown < sizes[dim] else grown
        if grown > chunks[dim]:
            chunks[dim] = grown
            reasons[dim] += "; grown towards the target" if grown < sizes[dim] else "; whole (fits the target)"
        if grown < sizes[dim]:
            break
    plan = ChunkPlan(sizes, chunks, reasons, itemsize, target, max_tasks, tasks_per_chunk)
    for dim in order:  # too many tasks: grow further, past the target
        while plan.tasks > max_tasks and chunks[dim] < sizes[dim]:
            chunks[dim] = min(sizes[dim], 2 * chunks[dim])
            reasons[dim] = reasons[dim].split(";")[0] + f"; grown past the target to stay under {max_tasks:,} tasks"
            plan = ChunkPlan(sizes, chunks, reasons, itemsize, target, max_tasks, tasks_per_chunk)
    return plan


def _rounded(length: int, step: int) -> int:
    """``length``, a multiple of ``step``, down to a multiple of ``step`` times the largest power of two that
    loses at most an eighth of it (129 -> 128): blocks whose lengths have many divisors, so that an output's
    storage chunks (NetCDF's 32 maps, say) divide them and none straddles two blocks."""
    pieces = length // step
    for power in (1 << k for k in range(pieces.bit_length() - 1, 0, -1)):
        if pieces - pieces // power * power <= pieces // 8:
            return pieces // power * power * step
    return length


def _plan_whole_series(obj, dim, target, memory_per_worker, threads_per_worker, max_tasks, sizes):
    """Spatial blocks whose whole series along ``dim`` fit :func:`series_target`
    (storage chunks split when one of them is too long), then ``dim`` in storage
    chunks grown while the storage chunks a read fetches and decodes whole stay
    within the chunk target (:func:`_decoded_per_step`, :data:`READ_COPIES`)."""
    from dask.utils import format_bytes

    series = series_target(memory_per_worker, threads_per_worker)
    share = memory_per_thread(memory_per_worker, threads_per_worker)
    resources = {"memory_per_worker": memory_per_worker, "threads_per_worker": threads_per_worker}
    plan = plan_chunks(obj, core_dims=dim, target=series, max_tasks=max_tasks, sizes=sizes, **resources)
    chunks, reasons, ntime = dict(plan.chunks), dict(plan.reasons), plan.sizes[dim]
    space = [d for d in obj.dims if d != dim]  # outermost first: inner rows stay contiguous

    def held():
        return plan.itemsize * ntime * math.prod(chunks[d] for d in space)

    for d in space:
        while held() > series and chunks[d] > 1:
            chunks[d] = -(-chunks[d] // 2)
            reasons[d] = "split below the storage chunk so that a block's whole series fits the target"
    if held() > share:
        raise ValueError(
            f"one pixel's series along {dim!r} ({ntime:,} steps, {format_bytes(held())}) is more than a "
            f"worker thread's share of memory ({format_bytes(share)}): an order statistic cannot hold it. "
            "Use workers with more memory per thread, or a shorter period (base=)"
        )
    storage = storage_chunks(obj)
    step = storage.get(dim, 1)
    decoded = _decoded_per_step(plan.itemsize, {d: chunks[d] for d in space}, storage, plan.sizes)
    target = int(target or default_target(**resources))
    chunks[dim] = min(ntime, max(step, target // (READ_COPIES * decoded) // step * step))
    reasons[dim] = f"storage chunk {step}, grown towards the target" if step > 1 else "grown towards the target"
    whole = (dim, series, share)
    return ChunkPlan(
        plan.sizes,
        chunks,
        reasons,
        plan.itemsize,
        target,
        max_tasks,
        plan.tasks_per_chunk,
        whole,
        decoded * chunks[dim],
    )


def _decoded_per_step(
    itemsize: int, blocks: Mapping[Hashable, int], storage: Mapping[Hashable, int], sizes: Mapping[Hashable, int]
) -> int:
    """Bytes per time step that reading one spatial block of sizes ``blocks`` decodes: a storage
    chunk is decoded whole, so a block that splits storage chunks decodes every storage chunk it
    overlaps (the most that any block overlaps); dimensions not chunked on disk: the block's own.

    >>> _decoded_per_step(4, {"y": 12, "x": 90}, {"y": 90, "x": 90}, {"y": 180, "x": 180})  # rows 84-96: 2 chunks
    64800
    """
    total = itemsize
    for d, block in blocks.items():
        if block == 0:
            return 1  # a zero-length dimension: no data
        size = sizes[d]
        chunk = min(storage.get(d, block), size)
        total *= chunk * max((min(size, s + block) - 1) // chunk - s // chunk + 1 for s in range(0, size, block))
    return max(total, 1)


def _growth_order(obj, core_dims, reduce_dims):
    """Dimensions to grow: not reduced before reduced, innermost (contiguous) first."""
    free = [d for d in reversed(list(obj.dims)) if d not in core_dims]
    return [d for d in free if d not in reduce_dims] + [d for d in free if d in reduce_dims]


def suggest_chunks(
    obj: xr.Dataset | xr.DataArray,
    *,
    core_dims: str | Sequence[Hashable] = (),
    target: int | str | None = None,
    memory_per_worker: int | str | None = None,
    threads_per_worker: int | None = None,
    max_tasks: int = 100_000,
    **kwargs: Any,
) -> dict:
    """Dask chunk sizes for ``obj``: a dict ``{dim: size}``.

    Rules: core dimensions whole; every size a multiple of the storage chunk
    (read from the encoding), so no storage chunk is split; chunks grown,
    innermost dimension first and dimensions the operation reduces last,
    towards a target in bytes (:func:`default_target`: worker memory and
    threads, or this machine's; ``target`` and ``memory_per_worker`` may be
    given as ints or strings such as ``"64MiB"``, and must be positive),
    a ``time`` length short of the whole dimension rounded down to a
    power-of-two multiple of the storage chunk where that loses at most an
    eighth (129 maps -> 128, so that an output's storage chunks divide the
    blocks);
    grown further if the graph would exceed ``max_tasks``.

    Example
    -------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"sst": (("time", "lat", "lon"), np.zeros((7300, 180, 360), "f4"))})
    >>> suggest_chunks(ds, core_dims="time", target=32 * 2**20)
    {'time': 7300, 'lat': 3, 'lon': 360}
    """
    return plan_chunks(
        obj,
        core_dims=core_dims,
        target=target,
        memory_per_worker=memory_per_worker,
        threads_per_worker=threads_per_worker,
        max_tasks=max_tasks,
        **kwargs,
    ).chunks


def explain_chunks(obj: xr.Dataset | xr.DataArray, **kwargs: Any) -> str:
    """A human-readable account of :func:`suggest_chunks`: each size and why,
    bytes per chunk, number of chunks, estimated tasks, and whether dask is worth it."""
    return plan_chunks(obj, **kwargs).explain()


def chunked_for(obj: XarrayObj, *, core_dims: str | Sequence[Hashable] = (), operation: str = "oceanflow") -> XarrayObj:
    """``obj`` ready for a kernel: dask chunks from :func:`suggest_chunks` when its
    data are still on disk (opened without ``chunks``) and bigger than one
    target chunk; unchanged when it is in memory (NumPy is faster then) or
    already dask-backed (the caller chose the chunks).

    Example
    -------
    >>> ds = xr.open_dataset("sst.nc")                    # doctest: +SKIP
    >>> chunked_for(ds.sst, core_dims="time").chunks      # doctest: +SKIP
    """
    variables = [obj.variable] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    on_disk = [v for v in variables if v.chunks is None and not getattr(v, "_in_memory", True)]
    if not on_disk:
        return obj
    plan = plan_chunks(obj, core_dims=core_dims, operation=operation)
    if not plan.use_dask:
        return obj
    from dask.utils import format_bytes

    logger.info(
        "%s: data on disk chunked as %s (%s per chunk, %d chunks)",
        operation,
        plan.chunks,
        format_bytes(plan.bytes_per_chunk),
        plan.n_chunks,
    )
    return obj.chunk(plan.chunks)


# ---------------------------------------------------------------- checking requests


class TooManyTasksError(ValueError):
    """The task graph of a request would exceed ``oceanflow.set_options(max_tasks=...)``."""


def checked_chunks(chunks: Any, sizes: Mapping[Hashable, int]) -> Any:
    """``chunks`` for data with dimension ``sizes``, refused with the fix when it makes no sense.

    Accepts ``"auto"``, ``None`` and a dict ``{dim: size}`` whose sizes are whole
    numbers from 1 to the dimension's length, ``-1`` or ``None`` (the whole
    dimension) or ``"auto"``.  Returns ``chunks`` unchanged.

    Example
    -------
    >>> checked_chunks({"time": 100, "lat": -1}, {"time": 365, "lat": 180})
    {'time': 100, 'lat': -1}
    >>> checked_chunks({"time": 0}, {"time": 365})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: chunk size 0 for dimension 'time' is not allowed: give a whole number from 1 to 365, ...
    """
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        return chunks
    if not isinstance(chunks, Mapping):
        raise TypeError(f"chunks must be 'auto', None or a dict such as {{'time': 365, 'lat': -1}}, not {chunks!r}")
    unknown = [dim for dim in chunks if dim not in sizes]
    if unknown:
        raise ValueError(
            f"chunks name {', '.join(map(repr, unknown))}, which the data do not have; "
            f"its dimensions are {', '.join(map(repr, sizes)) or 'none'}"
        )
    for dim, size in chunks.items():
        length = sizes[dim]
        fix = f"give a whole number from 1 to {length}, -1 for the whole dimension, or 'auto'"
        if size is None or size == -1 or (isinstance(size, str) and size == "auto"):
            continue
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ValueError(f"chunk size {size!r} for dimension {dim!r} is not a whole number: {fix}")
        if size < 1:
            raise ValueError(f"chunk size {size} for dimension {dim!r} is not allowed: {fix}")
        if size > length:
            raise ValueError(f"chunk size {size} for dimension {dim!r} is larger than the dimension ({length}): {fix}")
    return chunks


def checked_bytes(value: int | float | str | None, name: str) -> int | None:
    """A positive size in bytes from an int or a string such as ``"64MB"`` (None stays None).

    Example
    -------
    >>> checked_bytes("64MiB", "target")
    67108864
    """
    if value is None:
        return None
    from dask.utils import parse_bytes

    example = f"e.g. {name}='64MiB' or {name}=2**26"
    if isinstance(value, str):
        try:
            value = parse_bytes(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a size in bytes; {example}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or value != value:
        raise TypeError(f"{name} must be a size in bytes, not {value!r}; {example}")
    if value < 1:
        raise ValueError(f"{name}={value!r} bytes: a size must be positive; {example}, or None for the default")
    return int(value)


def _checked_count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


def check_task_count(
    *arrays: Any, operation: str, tasks_per_chunk: float = 1, dims: Sequence[Hashable] | None = None
) -> None:
    """Refuse, before it is built, a graph of more tasks than ``set_options(max_tasks=)`` allows.

    The estimate is the tasks already in the inputs' graphs plus
    ``tasks_per_chunk`` per chunk of the largest input.  The message names the
    chunks that would fit (grown along the dimensions with most chunks).

    Parameters
    ----------
    *arrays : dask arrays or xarray DataArrays
        The operation's inputs (others are ignored).
    operation : str
        Name in the message, e.g. ``"climatology"``.
    tasks_per_chunk : float
        Tasks the operation adds per input chunk.
    dims : sequence of str, optional
        Dimension names of the largest input (taken from a DataArray).

    Raises
    ------
    TooManyTasksError
    """
    from .options import OPTIONS

    limit = OPTIONS["max_tasks"]
    inputs = [(getattr(a, "data", a), getattr(a, "dims", dims)) for a in arrays]
    inputs = [(data, names) for data, names in inputs if hasattr(data, "__dask_graph__") and hasattr(data, "numblocks")]
    if not inputs:
        return
    layers: dict = {}
    for data, _ in inputs:
        graph = data.__dask_graph__()
        for name, layer in getattr(graph, "layers", {data.name: graph}).items():
            layers[name] = len(layer)
    data, names = max(inputs, key=lambda pair: math.prod(pair[0].numblocks))
    chunks = math.prod(data.numblocks)
    tasks = sum(layers.values()) + int(chunks * tasks_per_chunk)
    if tasks <= limit:
        return
    per_chunk = tasks / chunks  # tasks per chunk along the whole graph
    fitting = _fitting_chunks(data.shape, [max(c) if c else 1 for c in data.chunks], per_chunk, limit // 2)
    if names is not None:
        chunking = ".chunk({" + ", ".join(f"{n!r}: {size}" for n, size in zip(names, fitting, strict=True)) + "})"
    else:
        chunking = f"chunks of {tuple(fitting)}"
    from dask.utils import format_bytes

    new_bytes = format_bytes(data.dtype.itemsize * math.prod(fitting))
    raise TooManyTasksError(
        f"{operation} would build a graph of about {tasks:,} tasks ({chunks:,} chunks), more than the "
        f"limit of {limit:,}: dask would spend a long time only scheduling it. Use larger chunks, e.g. "
        f"{chunking} ({new_bytes} per chunk, about {limit // 2:,} tasks at most), or open the data "
        f"with chunks='auto'; or raise the limit with oceanflow.set_options(max_tasks={tasks})"
    )


def _fitting_chunks(shape, chunks, tasks_per_chunk, budget):
    """Chunk sizes grown (doubling the axis with most chunks) until the graph fits ``budget``."""
    chunks = list(chunks)

    def count():
        return math.prod(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True) if c)

    while count() * tasks_per_chunk > budget:
        axis = max(range(len(shape)), key=lambda i: math.ceil(shape[i] / chunks[i]) if chunks[i] else 0)
        if chunks[axis] >= shape[axis]:
            break
        chunks[axis] = min(shape[axis], 2 * chunks[axis])
    return chunks
