"""Mapping a block function over the spatial blocks of a ``(time, *space)`` array, each
block's series whole in one task (:func:`_map_series`), and the blocks chosen for it: row
pieces of time-sliced chunks (:func:`_gathered_pieces`), else a rechunk (:func:`_time_whole`)."""

from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import gather, map_blocks, row_pieces
from ..chunking import chunked_for, plan_chunks, worker_threads

logger = logging.getLogger("oceanflow.mhw")


def _map_series(func, data, extras, *, length, dim, dtypes, name, **kwargs):
    """Map ``func`` over the spatial blocks of ``data`` with its time axis whole in each (one task per block).

    ``func(x, *extras, **kwargs)`` gets C-ordered 2-D views: ``x`` as
    ``(time, pixel)`` and each extra as ``(row, pixel)`` (every row), and
    returns one ``(length, pixel)`` array per entry of ``dtypes``.  ``length``
    and ``dim`` are one int and one name for every output, or one per output.
    Returns DataArrays ``(dim, *space)`` with the spatial coordinates of
    ``data`` (and ``time`` on outputs along it): no transposed copies, no
    rechunking of the blocks' time pieces outside the task (the task
    concatenates them); time-sliced chunks (whole grids) are read by row
    pieces, each task taking its rows of every chunk (no rechunk at all).
    """
    lengths = tuple(length) if isinstance(length, (tuple, list)) else (length,) * len(dtypes)
    out_dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,) * len(dtypes)
    space = [d for d in data.dims if d != "time"]
    data = chunked_for(data.transpose("time", *space), core_dims="time", operation="mhw")
    extras = [e.transpose(e.dims[0], *space) for e in extras]
    pieces = None if any(is_dask(e.data) for e in extras) else _gathered_pieces(data)
    if pieces:  # time-chunked blocks holding several tasks' pixels: each task takes its rows, no rechunk
        shared = (func, tuple(np.asarray(e.values).reshape(e.shape[0], -1) for e in extras), kwargs)
        leads = [[n] for n in lengths]
        results = gather(_gathered_series, data.data, shared, lead=leads, dtype=tuple(dtypes), name=name, pieces=pieces)
        return _series_arrays(results, data, space, out_dims)
    data = _time_whole(data)
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
    return _series_arrays(results if isinstance(results, tuple) else (results,), data, space, out_dims)


def _series_arrays(results, data, space, out_dims):
    """The block outputs as DataArrays ``(dim, *space)`` with the spatial coordinates of ``data``."""
    spatial = {k: v for k, v in data.coords.items() if set(v.dims) <= set(space)}
    return tuple(
        xr.DataArray(r, dims=(d, *space), coords={**spatial, "time": data["time"]} if d == "time" else spatial)
        for r, d in zip(results, out_dims, strict=True)
    )


def _gathered_pieces(data):
    """The number of row pieces (:func:`oceanflow._blockwise.row_pieces`) of ``data``'s spatial
    blocks, each at most the pixels of a block :func:`_time_whole` would make, when ``data`` is
    time-chunked and its spatial blocks are that large or larger (time-sliced storage: whole-grid
    chunks); else None (:func:`_time_whole` rechunks)."""
    space = data.dims[1:]
    if not space or not is_dask(data.data) or len(data.chunks[0]) == 1:
        return None
    plan = plan_chunks(data, core_dims="time", operation="quantile")
    block = math.prod(c if isinstance(c, int) else max(c) for d, c in plan.chunks.items() if d in space)
    pieces = max(worker_threads(), math.ceil(math.prod(data.shape[1:]) / max(block, 1)))
    if math.prod(len(c) for c in data.chunks[1:]) > pieces:  # smaller storage blocks: merged by a rechunk
        return None
    _, parts = row_pieces(data.chunks[1:], pieces)
    if max(math.prod(shape) for *_, shape in parts) > block:  # rows too wide for a task's share
        return None
    logger.info("mhw: time whole in each task, %d row pieces of the time chunks' spatial blocks", len(parts))
    return pieces


def _gathered_series(blocks, shared, pixels, shape):
    """One row piece (:func:`oceanflow._blockwise.gather`): its pixels' series joined from the time
    chunks ``blocks`` into one C-ordered ``(time, pixel)`` array; ``shared = (func, extras, kwargs)``,
    each extra ``(row, pixel)`` over the whole grid, sliced to the piece -> ``func``'s outputs,
    ``(length, *shape)`` each."""
    func, extras, kwargs = shared
    x = np.empty((sum(b.shape[0] for b in blocks), pixels.stop - pixels.start), blocks[0].dtype)
    t = 0
    for b in blocks:
        x[t : t + b.shape[0]] = b.reshape(b.shape[0], -1)[:, pixels]
        t += b.shape[0]
    results = func(x, *(np.ascontiguousarray(e[:, pixels]) for e in extras), **kwargs)
    results = results if isinstance(results, tuple) else (results,)
    return tuple(r.reshape(r.shape[:1] + shape) for r in results)


def _series_call(x, *extras, series_func, **kwargs):
    """One block: ``(time, *space)`` and ``(row, *space)`` arrays -> ``(length, *space)`` arrays."""
    space = x.shape[1:]
    flat = [np.ascontiguousarray(a).reshape(a.shape[0], -1) for a in (x, *extras)]  # views when C-ordered
    results = tuple(r.reshape(r.shape[:1] + space) for r in series_func(*flat, **kwargs))
    return results if len(results) > 1 else results[0]


def _time_whole(data):
    """``data`` ((time, *space), as :func:`~oceanflow.chunking.chunked_for` gives it) in
    spatial blocks whose series fit a task (:func:`~oceanflow.chunking.plan_chunks`), at least one per thread, when
    its time axis is chunked; its time chunks are left as they are (each task
    concatenates its own).  Blocks whose time axis is whole are kept."""
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
    return data.chunk(wanted) if wanted else data


def _even(size, chunk):
    return (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())
