"""Reducing (time, ...) data to per-group statistics, in memory or on dask.

In memory, threads share the pixels of one array.  On dask, statistics made
of partials (mean, std, ...): a time-contiguous chunk is one task;
time-chunked data are folded, in time order, into one partial per spatial
block (or combined in a tree with ``split_every``).  With ``window=`` they
accumulate partials per window key and merge them into groups when
finalizing (see :mod:`.pooling`).  Order statistics (median, quantiles):
one task per spatial block (or row piece of one) gathers the block's whole
series from its time chunks, a pixel range at a time, and runs the
order-statistic kernel on it: tasks = chunks + spatial blocks, memory per
task = one spatial block's series.  The block functions are module-level so
that dask pickles them by name and workers compile each kernel once.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading
from functools import partial
from typing import Any

import numpy as np
from dask.sizeof import sizeof

from .._parallel import run_sliced
from ..chunking import worker_threads
from ..kernels.climatology import AGGREGATIONS
from ..kernels.quantiles import TILE, quantile_params, sorting_network
from ..kernels.quantiles import grouped_quantiles as ORDER_KERNEL
from .pooling import order_keys, window_keys

#: Bytes of series an order-statistic task gathers at once from its time chunks.
GATHER_BYTES = 8 * 2**20


def reduce_in_memory(data, plan, dtype):
    """In memory: each thread reduces its own range of pixels (read in place).

    Returns (group, ...), or (quantile, group, ...) for an order statistic."""
    x = as_pixels(data, dtype)
    if plan.statistic.kind == "order":
        return _order_in_memory(x, data.shape[1:], plan, dtype)
    ngroups = plan.groups.labels.size
    codes, nparts, merge = partial_groups(plan)
    result = np.empty((ngroups, x.shape[1]), dtype)

    def run(part):
        parts = _partials(x, codes, plan.weights, plan.kernel, nparts, dtype, pixels=part)
        result[:, part] = _finalized(plan.kernel, parts, plan.params(), dtype, merge)

    run_sliced(run, x.shape[1])
    return result.reshape((ngroups,) + data.shape[1:])


def partial_groups(plan):
    """(codes, number of partial groups, merge) for the chunk kernels: the groups
    themselves, or with ``window=`` the window keys and how they merge into groups."""
    ngroups = plan.groups.labels.size
    if plan.options.window is None:
        return plan.groups.codes, ngroups, None
    keys = window_keys(plan.groups.codes, plan.options.window)
    return keys.codes, keys.nkeys, (keys.src, keys.dst, keys.mult, ngroups)


def reduce_dask(data, plan, dtype):
    """On dask: (group, ...), or (quantile, group, ...) for an order statistic."""
    import dask.array as dsa

    if plan.statistic.kind == "order":
        return _order_dask(data, plan, dtype)
    agg = plan.aggregation
    ngroups = plan.groups.labels.size
    group_codes, nkeys, merge = partial_groups(plan)
    nparts = len(agg.init)
    space = "".join(chr(ord("a") + i) for i in range(data.ndim - 1))
    codes = dsa.from_array(group_codes, chunks=(data.chunks[0],))
    weights = dsa.from_array(plan.weights, chunks=(data.chunks[0],))
    common = {"stat": plan.kernel, "ngroups": nkeys, "work": dtype}
    if data.numblocks[0] == 1:
        return dsa.blockwise(
            _climatology_block,
            "G" + space,
            data,
            "T" + space,
            codes,
            "T",
            weights,
            "T",
            new_axes={"G": ngroups},
            dtype=dtype,
            concatenate=True,
            params=plan.params(),
            merge=merge,
            **common,
        )
    if plan.split_every is None:
        return _fold_dask(data, plan, dtype, common, group_codes, merge)
    parts = dsa.blockwise(
        _chunk_block,
        "TQG" + space,
        data,
        "T" + space,
        codes,
        "T",
        weights,
        "T",
        new_axes={"Q": nparts, "G": nkeys},
        adjust_chunks={"T": 1},
        dtype=np.float64,
        **common,
    )
    combined = dsa.reduction(
        parts,
        _identity,
        partial(_combine_block, stat=plan.kernel),
        axis=0,
        keepdims=True,
        combine=partial(_combine_block, stat=plan.kernel),
        dtype=np.float64,
        concatenate=True,
        split_every=plan.split_every,
        meta=np.empty((0,) * parts.ndim, np.float64),
    )
    return combined.map_blocks(
        _finalize_block,
        drop_axis=[0, 1],
        chunks=((ngroups,),) + data.chunks[1:],
        dtype=dtype,
        stat=plan.kernel,
        params=plan.params(),
        work=dtype,
        merge=merge,
        meta=np.empty((0,) * (data.ndim), dtype),
    )


def _fold_dask(data, plan, dtype, common, codes, merge):
    """Time-chunked data: fold the time chunks of each spatial block, in order, into
    one partial, then finalize.

    A tree of per-chunk partials writes, copies and re-adds partials, for a day
    of year several times the size of the data (366 groups x 2 float64 per
    pixel for a year of float32), and 0.4-0.65 s of 1.4 s of CPU even for a
    monthly climatology of time-sliced NetCDF.  The fold keeps one partial per
    spatial block and adds each time chunk to it (each task reads the partial
    of the task before and writes a new one, so that tasks stay pure): tasks =
    chunks + spatial blocks, memory bounded by the partials of the blocks,
    whatever the number of years.  To use every thread when there are few spatial blocks,
    the folds of one block take disjoint row ranges of it (read in place, no
    rechunk copy).  Every pixel adds its values in time order, so the result
    does not depend on the number of threads.
    """
    import dask.array as dsa
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(data, plan.kernel, codes, plan.weights, plan.params(), dtype, merge)
    fold, final = f"climatology-fold-{token}", f"climatology-{token}"
    bounds = np.cumsum((0,) + data.chunks[0])
    step = partial(_fold_block, **common)
    finish = partial(_finish_fold, stat=plan.kernel, params=plan.params(), work=dtype, merge=merge)
    out_chunks, pieces = _row_pieces(data.chunks[1:])
    graph: dict = {}
    for space_out, space_in, pixels, shape in pieces:
        previous = None
        for k in range(data.numblocks[0]):
            time = slice(bounds[k], bounds[k + 1])
            graph[(fold, k) + space_out] = (
                step,
                previous,
                (data.name, k) + space_in,
                codes[time],
                plan.weights[time],
                pixels,
            )
            previous = (fold, k) + space_out
        graph[(final, 0) + space_out] = (finish, previous, shape)
    layers = HighLevelGraph.from_collections(final, graph, dependencies=[data])
    chunks = ((plan.groups.labels.size,),) + out_chunks
    return dsa.Array(layers, final, chunks, meta=np.empty((0,) * data.ndim, dtype))


def _row_pieces(space_chunks, pieces=None):
    """Split the spatial blocks along their first axis until there are ``pieces``
    (default: the threads of one worker), so the folds, sequential in time, run
    on every thread.  Every piece of a block needs the whole block: on a
    cluster, more pieces than one worker's threads would ship a block to
    several workers.

    Rows of a C-ordered block are a contiguous pixel range, which the kernels
    read in place.  Returns the output's spatial chunks and, per output block,
    (its index, the input block's index, its pixel range, its shape).
    """
    if not space_chunks:  # a time series: one pixel
        return (), [((), (), slice(0, 1), ())]
    pieces = pieces or worker_threads()
    blocks = math.prod(len(c) for c in space_chunks)
    split = math.ceil(pieces / blocks)
    rows: list[tuple[int, int, int]] = []  # (input block index along axis 1, first row, last row + 1)
    for i, size in enumerate(space_chunks[0]):
        parts = max(1, min(split, size))
        edges = [size * j // parts for j in range(parts + 1)]
        rows.extend((i, lo, hi) for lo, hi in itertools.pairwise(edges))
    out_chunks = (tuple(hi - lo for _, lo, hi in rows),) + tuple(space_chunks[1:])
    result = []
    for o, (i, lo, hi) in enumerate(rows):
        for rest in itertools.product(*(range(len(c)) for c in space_chunks[1:])):
            tail = tuple(c[j] for c, j in zip(space_chunks[1:], rest, strict=True))
            width = math.prod(tail)
            result.append(((o,) + rest, (i,) + rest, slice(lo * width, hi * width), (hi - lo,) + tail))
    return out_chunks, result


def as_pixels(block, dtype):
    """A (time, ...) block as a C-ordered (time, pixels) array of ``dtype``."""
    return np.ascontiguousarray(block, dtype=dtype).reshape(block.shape[0], -1)


def _init(agg, ngroups, pixels):
    """The starting partials (quantity, group, pixel): a broadcast view, no memory."""
    return np.broadcast_to(np.asarray(agg.init, np.float64)[:, None, None], (len(agg.init), ngroups, pixels))


def _partials(block, codes, weights, stat, ngroups, work, start_from=None, pixels=slice(None), out=None):
    """Partials (quantity, group, pixel) of the pixel range ``pixels`` of one
    (time, ...) block, read in place, written into ``out`` (a new array when
    not given); starting from the partials ``start_from`` when given, which
    are read, never written."""
    agg = AGGREGATIONS[stat]
    x = as_pixels(block, work)
    start, stop, _ = pixels.indices(x.shape[1])
    if out is None:
        out = np.empty((len(agg.init), ngroups, stop - start))
    with np.errstate(invalid="ignore"):
        agg.chunk.for_dtype(work)(
            x,
            np.ascontiguousarray(codes, np.int64),
            np.ascontiguousarray(weights, np.float64),
            _init(agg, ngroups, stop - start) if start_from is None else start_from,
            1,
            start,
            out=out,
        )
    return out


def _climatology_block(block, codes, weights, *, stat, ngroups, work, params, merge):
    """One time-contiguous chunk (time, ...) -> its climatology (group, ...)."""
    parts = _partials(block, codes, weights, stat, ngroups, work)
    result = _finalized(stat, parts, params, work, merge)
    return result.reshape(result.shape[:1] + block.shape[1:])


def _chunk_block(block, codes, weights, *, stat, ngroups, work):
    """One time chunk (time, ...) -> partials (1, quantity, group, ...)."""
    parts = _partials(block, codes, weights, stat, ngroups, work)
    return parts.reshape((1,) + parts.shape[:2] + block.shape[1:])


class FoldState:
    """What one fold task hands to the next: ``partials``, the partials
    (quantity, group, pixel) of the time chunks folded so far, and ``spare``,
    the buffer of the partials one step further back.

    ``partials`` is a value: no task writes it once returned.  The next task
    writes its result into ``spare`` only when nothing but this state refers
    to it any more (dask has released the step that returned it), so that a
    fold cycles through two buffers instead of fresh memory at every step
    (page faults: for day-of-year partials, four times the chunk's size, they
    cost as much as the step itself).  The spare is never pickled.
    """

    __slots__ = ("partials", "spare")

    def __init__(self, partials, spare=None):
        self.partials = partials
        self.spare = spare

    def __reduce__(self):
        return FoldState, (self.partials,)


def _spare_references(state):
    return sys.getrefcount(state.spare)


#: References to a spare held by its state alone (measured, so that it holds on any interpreter).
_UNSHARED = _spare_references(FoldState(None, np.empty(0)))
_CLAIM = threading.Lock()


def _claim_spare(state, shape):
    """The state's spare when no one else holds it (then the caller does), else None."""
    if state is None:
        return None
    with _CLAIM:
        if state.spare is None or state.spare.shape != shape or _spare_references(state) > _UNSHARED:
            return None
        return state.spare


def _fold_block(previous, block, codes, weights, pixels, *, stat, ngroups, work):
    """The partials of the chunks before this one (``previous``, a
    :class:`FoldState`; None for the first) plus the pixels ``pixels`` of
    this time chunk, as a new state.

    A pure task: ``previous.partials`` is only read (the kernel starts its
    output from it, the copy fused into its pass), so a task re-run by dask (a
    retry, a recomputation while its input is still held) gives the same
    partials.
    """
    start, stop, _ = pixels.indices(math.prod(block.shape[1:]))
    shape = (len(AGGREGATIONS[stat].init), ngroups, stop - start)
    out = _claim_spare(previous, shape)
    start_from = None if previous is None else previous.partials
    out = _partials(block, codes, weights, stat, ngroups, work, start_from=start_from, pixels=pixels, out=out)
    return FoldState(out, start_from)


@sizeof.register(FoldState)
def _sizeof_fold_state(state):
    return sum(a.nbytes for a in (state.partials, state.spare) if a is not None)


def _identity(parts, axis=None, keepdims=True):
    return parts


def _combine_block(parts, axis=None, keepdims=True, *, stat):
    """Partials stacked on axis 0 (k, quantity, group, ...) -> (1, quantity, group, ...)."""
    flat = np.ascontiguousarray(parts).reshape(parts.shape[:3] + (-1,))
    combined = AGGREGATIONS[stat].combine.for_dtype(np.float64)(flat)
    return combined.reshape((1,) + parts.shape[1:])


def _finalized(stat, parts, params, work, merge=None):
    """The statistic from its partials (quantity, group or key, pixel); with
    ``merge`` (src, dst, mult, ngroups) the keys' partials are merged into
    groups first.  A group with no valid value is NaN, silently (as xarray)."""
    agg = AGGREGATIONS[stat]
    if merge is not None:
        src, dst, mult, ngroups = merge
        init = _init(agg, ngroups, parts.shape[2])
        parts = agg.merge.for_dtype(np.float64)(np.ascontiguousarray(parts), src, dst, mult, init)
    with np.errstate(invalid="ignore", divide="ignore"):
        return agg.finalize.for_dtype(work)(parts, params)


def _finalize_block(parts, *, stat, params, work, merge):
    """Partials (1, quantity, group, ...) -> statistic (group, ...)."""
    flat = np.ascontiguousarray(parts[0]).reshape(parts.shape[1:3] + (-1,))
    result = _finalized(stat, flat, params, work, merge)
    return result.reshape(result.shape[:1] + parts.shape[3:])


def _finish_fold(state, shape, *, stat, params, work, merge):
    """Folded partials (quantity, group, pixel) -> statistic (group, *shape)."""
    result = _finalized(stat, state.partials, params, work, merge)
    return result.reshape(result.shape[:1] + tuple(shape))


# ---------------------------------------------------------------- order statistics


def order_arguments(plan):
    """The kernel's pixel-independent arguments: the keys (steps of each key, keys
    of each group), the sorting network of their runs, qs and params."""
    keys = order_keys(plan.groups.codes, plan.groups.labels.size, plan.options.window)
    network = sorting_network(keys.run_length)
    params = quantile_params(plan.options.method, plan.min_count, keys.run_length)
    layout = (keys.steps, keys.key_starts, keys.key_stops, keys.keys, keys.group_starts, keys.group_stops)
    return (*layout, *network, plan.options.q, params)


def _order_in_memory(x, space_shape, plan, dtype):
    arguments = order_arguments(plan)
    ngroups = plan.groups.labels.size
    result = np.empty((arguments[-2].size, ngroups, x.shape[1]), dtype)

    def run(part):
        result[:, :, part] = _order_statistics([x], arguments, part, dtype)

    run_sliced(run, x.shape[1])
    return result.reshape(result.shape[:2] + space_shape)


def _order_statistics(blocks, arguments, pixels, work):
    """Order statistics (quantile, group, pixel) of the pixel range ``pixels`` of
    the (time, pixels) ``blocks`` that follow each other in time.

    One block is read in place; several are gathered into one series a few
    pixels at a time (:data:`GATHER_BYTES`), never all at once.
    """
    qs, ngroups = arguments[-2], arguments[4].size
    kernel = ORDER_KERNEL.for_dtype(work)
    start, stop, _ = pixels.indices(blocks[0].shape[1])
    ntime = sum(b.shape[0] for b in blocks)
    out = np.empty((qs.size, ngroups, stop - start), work)
    width = stop - start
    if len(blocks) > 1:
        width = max(TILE, GATHER_BYTES // (ntime * np.dtype(work).itemsize) // TILE * TILE)
    for lo in range(start, stop, width):
        hi = min(lo + width, stop)
        if len(blocks) == 1:
            x, first = blocks[0], lo
        else:
            x, first = np.concatenate([b[:, lo:hi] for b in blocks], axis=0), 0
        shape = np.broadcast_to(np.float64(0), (qs.size, ngroups, hi - lo))
        kernel(x, *arguments[:-2], qs, arguments[-1], first, shape, out=out[:, :, lo - start : hi - start])
    return out


def _order_dask(data, plan, dtype):
    """One task per spatial block (or row piece of it): its series from every time chunk."""
    import dask.array as dsa
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    check_series_memory(data, dtype)
    arguments = order_arguments(plan)
    nq, ngroups = arguments[-2].size, plan.groups.labels.size
    token = tokenize(data, arguments, dtype)
    name, shared = f"climatology-order-{token}", f"climatology-order-pooled-{token}"
    graph: dict[Any, Any] = {shared: arguments}  # once in the graph, not once per task
    task = partial(_order_block, work=dtype)
    out_chunks, pieces = _row_pieces(data.chunks[1:])
    for space_out, space_in, pixels, shape in pieces:
        blocks = [(data.name, k) + space_in for k in range(data.numblocks[0])]
        graph[(name, 0, 0) + space_out] = (task, blocks, shared, pixels, shape)
    layers = HighLevelGraph.from_collections(name, graph, dependencies=[data])
    chunks = ((nq,), (ngroups,)) + out_chunks
    return dsa.Array(layers, name, chunks, meta=np.empty((0,) * (data.ndim + 1), dtype))


def check_series_memory(data: Any, dtype: np.dtype | type) -> None:
    """A clear error, before anything runs, when a task of an order statistic
    cannot hold the whole series of its spatial block (its time chunks stay in
    memory until it has run) within a worker thread's share of memory."""
    from dask.utils import format_bytes

    from ..chunking import memory_per_thread, series_target

    share, itemsize, ntime = memory_per_thread(), np.dtype(dtype).itemsize, data.shape[0]
    pixels = math.prod(max(c) for c in data.chunks[1:])
    if ntime * itemsize > share:
        raise ValueError(
            f"one pixel's series ({ntime:,} time steps, {format_bytes(ntime * itemsize)}) is more than a worker "
            f"thread's share of memory ({format_bytes(share)}): an order statistic cannot hold it. Use workers "
            "with more memory per thread, or a shorter period (base=)"
        )
    held = ntime * pixels * itemsize
    if held > share:
        rows = max(1, int(series_target() // (ntime * itemsize * pixels / max(data.chunks[1]))))
        raise ValueError(
            f"a median or quantile holds the whole series of a spatial block in one task: with these chunks "
            f"{format_bytes(held)} ({ntime:,} time steps x {pixels:,} pixels), more than a worker thread's share "
            f"of memory ({format_bytes(share)}). Open the data with smaller spatial chunks (e.g. {rows} along the "
            "first spatial dimension) or without chunks, so that oceanflow picks them "
            "(see explain_chunks(obj, operation='quantile'))"
        )


def _order_block(blocks, arguments, pixels, shape, *, work):
    """The time chunks (time, ...) of one spatial block -> the order statistics
    (quantile, group, *shape) of its pixels ``pixels``."""
    flat = [as_pixels(b, work) for b in blocks]
    result = _order_statistics(flat, arguments, pixels, work)
    return result.reshape(result.shape[:2] + tuple(shape))
