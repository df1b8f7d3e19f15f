"""Mapping a block function over the spatial blocks of a ``(time, *space)`` array, each
block's series whole in one task (:func:`_map_series`), and the blocks chosen for it
(:func:`_time_whole`)."""

from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import map_blocks
from .._client import active_client
from ..chunking import chunked_for, memory_per_thread, plan_chunks, worker_threads

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
    """One block: ``(time, *space)`` and ``(row, *space)`` arrays -> ``(length, *space)`` arrays."""
    space = x.shape[1:]
    flat = [np.ascontiguousarray(a).reshape(a.shape[0], -1) for a in (x, *extras)]  # views when C-ordered
    results = tuple(r.reshape(r.shape[:1] + space) for r in series_func(*flat, **kwargs))
    return results if len(results) > 1 else results[0]


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
    return data.chunk(wanted)


def _join_fits(data):
    """Whether :func:`_joined` may split ``data`` into its blocks: on the local scheduler, when
    the whole input fits what one task may hold (:func:`~oceanflow.chunking.memory_per_thread`).

    Each joining task depends on every time chunk of its stored chunk (the whole grid, for
    time-sliced storage): all of them are held until the last block is joined, and on a
    ``distributed`` cluster each worker would fetch the whole input, where a rechunk's split
    tasks send each worker only its blocks' pieces."""
    return active_client() is None and data.nbytes <= memory_per_thread()


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
