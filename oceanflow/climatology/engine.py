"""Reducing (time, ...) data to per-group statistics, in memory or on dask.

In memory, threads share the pixels of one array.  On dask (the graphs are
built by :mod:`oceanflow._blockwise`; this module holds the climatology's
block functions), statistics made of partials (mean, std, ...): a
time-contiguous chunk is one task; time-chunked data are folded, in time
order, into one partial per spatial block (:func:`oceanflow._blockwise.fold`),
or combined in a tree with ``split_every``.  A tree of per-chunk partials
writes, copies and re-adds partials, for a day of year several times the size
of the data (366 groups x 2 float64 per pixel for a year of float32); the fold
keeps one partial per spatial block and adds each time chunk to it, memory
bounded by the partials whatever the number of years.  With ``window=`` they
accumulate partials per window key and merge them into groups when
finalizing (see :mod:`.pooling`).  Order statistics (median, quantiles): one
task per spatial block (or row piece of one) gathers the block's whole series
from its time chunks (:func:`oceanflow._blockwise.gather`), a pixel range at
a time, and runs the order-statistic kernel on it: tasks = chunks + spatial
blocks, memory per task = one spatial block's series.  Months or seasons of
many years (selected on the time chunks, :func:`streamed`) instead count each
chunk as it arrives, in a chain of one task per chunk, and select once the
last one is in (:func:`_stream_dask`): the counting overlaps the reading.  The block functions
are module-level so that dask pickles them by name and workers compile each
kernel once.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from functools import partial
from typing import Any

import numpy as np
from dask.sizeof import sizeof

from .._arrays import unmasked
from .._blockwise import combine_tree, fold, gather, map_blocks
from .._memory import held_elsewhere, kept_block
from .._parallel import run_sliced
from ..kernels.climatology import AGGREGATIONS
from ..kernels.quantiles import (
    LANES,
    STREAM_SAMPLE,
    STREAM_THRESHOLDS,
    finish_networks,
    quantile_params,
    stream_bounds,
    stream_collect,
    stream_count,
    stream_finish,
    stream_sample,
    stream_thresholds,
)
from ..kernels.quantiles import grouped_quantiles as ORDER_KERNEL
from ..kernels.sorting import sorting_network
from .pooling import merged_finalized, order_layout, window_keys

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
    keys = window_keys(plan.groups.codes, plan.options.window, ngroups)
    return keys.codes, keys.nkeys, keys


def reduce_dask(data, plan, dtype):
    """On dask: (group, ...), or (quantile, group, ...) for an order statistic."""
    import dask.array as dsa

    if plan.statistic.kind == "order":
        return _order_dask(data, plan, dtype)
    ngroups = plan.groups.labels.size
    group_codes, nkeys, merge = partial_groups(plan)
    space = "".join(chr(ord("a") + i) for i in range(data.ndim - 1))
    common = {"stat": plan.kernel, "ngroups": nkeys, "work": dtype}
    finish = {"stat": plan.kernel, "params": plan.params(), "work": dtype, "merge": merge}
    if data.numblocks[0] > 1 and plan.split_every is None:
        return fold(
            partial(_fold_block, **common),
            partial(_finish_fold, **finish),
            data,
            group_codes,
            plan.weights,
            lead=[ngroups],
            dtype=dtype,
            name="climatology",
        )
    codes = dsa.from_array(group_codes, chunks=(data.chunks[0],))
    weights = dsa.from_array(plan.weights, chunks=(data.chunks[0],))
    inputs = (data, "T" + space, codes, "T", weights, "T")
    if data.numblocks[0] == 1:
        return map_blocks(
            _climatology_block,
            "G" + space,
            *inputs,
            new_axes={"G": ngroups},
            dtype=dtype,
            name="climatology_block",
            params=plan.params(),
            merge=merge,
            **common,
        )
    nparts = len(plan.aggregation.init)
    parts = map_blocks(
        _chunk_block,
        "TQG" + space,
        *inputs,
        new_axes={"Q": nparts, "G": nkeys},
        adjust_chunks={"T": 1},
        dtype=np.float64,
        name="climatology-partials",
        **common,
    )
    combined = combine_tree(
        partial(_combine_block, stat=plan.kernel), parts, split_every=plan.split_every, dtype=np.float64
    )
    return map_blocks(
        _finalize_block,
        "G" + space,
        combined,
        "TQG" + space,
        adjust_chunks={"G": ngroups},
        dtype=dtype,
        name="climatology-finalize",
        **finish,
    )


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


_CLAIM = threading.Lock()


def _claim_spare(state, shape):
    """The state's spare when no one else holds it (then the caller does), else None."""
    if state is None:
        return None
    with _CLAIM:
        if state.spare is None or state.spare.shape != shape or held_elsewhere(state.spare):
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
    if out is None:  # kept by the chain: small pages (see oceanflow._memory.kept_block)
        out = kept_block(shape, np.float64)
    start_from = None if previous is None else previous.partials
    out = _partials(block, codes, weights, stat, ngroups, work, start_from=start_from, pixels=pixels, out=out)
    return FoldState(out, start_from)


@sizeof.register(FoldState)
def _sizeof_fold_state(state):
    return sum(a.nbytes for a in (state.partials, state.spare) if a is not None)


def _combine_block(parts, *, stat):
    """Partials stacked on axis 0 (k, quantity, group, ...) -> (1, quantity, group, ...)."""
    flat = np.ascontiguousarray(parts).reshape(parts.shape[:3] + (-1,))
    combined = AGGREGATIONS[stat].combine.for_dtype(np.float64)(flat)
    return combined.reshape((1,) + parts.shape[1:])


def _finalized(stat, parts, params, work, merge=None):
    """The statistic from its partials (quantity, group or key, pixel); with
    ``merge`` (:class:`.pooling.WindowKeys`) the keys' partials are merged into
    groups first.  A group with no valid value is NaN, silently (as xarray)."""
    agg = AGGREGATIONS[stat]
    with np.errstate(invalid="ignore", divide="ignore"):
        if merge is not None:
            return merged_finalized(agg, parts, merge, params, work)
        return agg.finalize.for_dtype(work)(parts, params)


def _finalize_block(parts, *, stat, params, work, merge):
    """Partials (1, quantity, group, ...) -> statistic (group, ...)."""
    flat = np.ascontiguousarray(parts[0]).reshape(parts.shape[1:3] + (-1,))
    result = _finalized(stat, flat, params, work, merge)
    return result.reshape(result.shape[:1] + parts.shape[3:])


def _finish_fold(state, pixels, shape, *, stat, params, work, merge):
    """Folded partials (quantity, group, pixel) -> statistic (group, *shape)."""
    result = _finalized(stat, state.partials, params, work, merge)
    return result.reshape(result.shape[:1] + tuple(shape))


# ---------------------------------------------------------------- order statistics


def order_arguments(plan):
    """The kernel's pixel-independent arguments: the keys (steps of each key, keys
    of each group), the sorting network of their runs and the plan of their
    merges (with a window), qs and params."""
    keys, ops = order_layout(plan.groups.codes, plan.groups.labels.size, plan.options.window)
    network = sorting_network(keys.run_length)
    params = quantile_params(plan.options.method, plan.min_count, keys.run_length)
    layout = (keys.steps, keys.key_starts, keys.key_stops, keys.keys, keys.group_starts, keys.group_stops)
    return (*layout, *network, ops, plan.options.q, params)


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
    if streamed(arguments, ntime):
        with np.errstate(invalid="ignore"):  # NaN compared with the bins' bounds
            for lo in range(start, stop, STREAM_PIXELS):
                hi = min(lo + STREAM_PIXELS, stop)
                _streamed(blocks, arguments, lo, hi, work, out[:, :, lo - start : hi - start])
        return out
    width = stop - start
    if len(blocks) > 1:
        width = max(LANES, GATHER_BYTES // (ntime * np.dtype(work).itemsize) // LANES * LANES)
    for lo in range(start, stop, width):
        hi = min(lo + width, stop)
        if len(blocks) == 1:
            x, first = blocks[0], lo
        else:
            x, first = np.concatenate([b[:, lo:hi] for b in blocks], axis=0), 0
        shape = np.broadcast_to(np.float64(0), (qs.size, ngroups, hi - lo))
        kernel(x, *arguments[:-2], qs, arguments[-1], first, shape, out=out[:, :, lo - start : hi - start])
    return out


#: Pixels selected at once by the streamed selection (its counts: about 40 bytes per pixel and group).
STREAM_PIXELS = 2048


def streamed(arguments, ntime):
    """Whether the order statistics are selected on the time-major blocks (:func:`_streamed`):
    without a window, when the per-pixel state of the groups (thresholds, counts, bins: about
    ``2 * STREAM_THRESHOLDS + 10`` numbers per group and quantile) is less than the series."""
    qs, params, key_starts = arguments[-2], arguments[-1], arguments[1]
    return params[4] == 0 and key_starts.size * qs.size * (2 * STREAM_THRESHOLDS + 10) <= ntime


def _streamed(blocks, arguments, start, stop, work, out):
    """The order statistics (quantile, group, pixel) of pixels ``start .. stop`` into ``out``, selected
    on the time-major ``blocks`` in a few passes over their rows (see :mod:`oceanflow.kernels.quantiles`,
    streamed selection): no series gathered, no copy of the blocks."""
    ngroups, qs = arguments[1].size, arguments[-2]
    codes = _step_codes(arguments, sum(b.shape[0] for b in blocks))
    block_codes = _split(codes, blocks)
    thresholds = _sampled_thresholds(blocks, block_codes, ngroups, qs, start, stop, work)
    counts = np.empty((ngroups, 1 + qs.size * STREAM_THRESHOLDS, stop - start), np.int32)
    for k, block in enumerate(blocks):
        _count(block, block_codes[k], thresholds, start, counts, reset=k == 0)
    _selected(blocks, block_codes, thresholds, counts, arguments, start, work, out)


def _step_codes(arguments, ntime):
    """The group of each time step (-1: none) of an order statistic without a window."""
    steps, key_starts, key_stops = arguments[0], arguments[1], arguments[2]
    codes = np.full(ntime, -1, np.int64)
    codes[steps] = np.repeat(np.arange(key_starts.size), key_stops - key_starts)
    return codes


def _split(codes, blocks):
    """``codes`` cut along the blocks that follow each other in time."""
    edges = np.cumsum([0] + [b.shape[0] for b in blocks])
    return [codes[a:b] for a, b in itertools.pairwise(edges)]


def _sampled_thresholds(blocks, block_codes, ngroups, qs, start, stop, work):
    """The thresholds (group, quantile x threshold, pixel) of pixels ``start .. stop`` from up to
    :data:`STREAM_SAMPLE` evenly spaced steps of each group in ``blocks``."""
    codes = np.concatenate(block_codes)
    valid = np.flatnonzero(codes >= 0)
    steps = valid[np.argsort(codes[valid], kind="stable")]
    sizes = np.bincount(codes[valid], minlength=ngroups)
    key_starts = np.cumsum(sizes) - sizes
    taken = np.minimum(sizes, STREAM_SAMPLE)  # evenly spaced steps of each group
    rank = np.arange(taken.sum()) - np.repeat(np.cumsum(taken) - taken, taken)
    group = np.repeat(np.arange(ngroups), taken)
    rows = steps[key_starts[group] + rank * sizes[group] // taken[group]]
    slots = group * STREAM_SAMPLE + rank
    sample = np.full((ngroups * STREAM_SAMPLE, stop - start), np.inf, work)
    edges = np.cumsum([0] + [b.shape[0] for b in blocks])
    for k, block in enumerate(blocks):
        inside = (rows >= edges[k]) & (rows < edges[k + 1])
        block_rows, block_slots = (np.ascontiguousarray(a[inside]) for a in (rows - edges[k], slots))
        stream_sample.for_dtype(work)(block, block_rows, block_slots, start, _shape(sample), out=sample)
    thresholds = np.empty((ngroups, qs.size * STREAM_THRESHOLDS, stop - start), work)
    stream_thresholds.for_dtype(work)(sample, *_network(), qs, _shape(thresholds), out=thresholds)
    return thresholds


def _count(block, codes, thresholds, start, counts, *, reset):
    """Add the counts of one time-major ``block`` (pixels ``start ..``) to ``counts`` (zeroed first when ``reset``)."""
    kernel = stream_count.for_dtype(block.dtype)
    with np.errstate(invalid="ignore"):  # NaN compared with the thresholds
        kernel(block, codes, thresholds, start, int(reset), _shape(counts), out=counts)


def _selected(blocks, block_codes, thresholds, counts, arguments, start, work, out):
    """From the counts of every block, the bins that hold the order statistics; their values collected
    from the blocks, and the order statistics selected in them into ``out`` (quantile, group, pixel)."""
    qs, params = arguments[-2], arguments[-1]
    low, high, base, size = stream_bounds.for_dtype(work)(counts, thresholds, qs, params)
    collect = stream_collect.for_dtype(work)
    for g0, g1 in _batches(size):
        span = slice(g0, g1)
        slots = size[:, span] + 1
        first = np.ascontiguousarray(np.cumsum(slots).reshape(slots.shape) - slots, np.int64)
        position = first.copy()
        values = np.empty(int(slots.sum()), work)
        for k, block in enumerate(blocks):
            codes = block_codes[k]
            batch_codes = np.where((codes >= g0) & (codes < g1), codes - g0, -1)
            collect(
                block,
                batch_codes,
                np.ascontiguousarray(low[:, span]),
                np.ascontiguousarray(high[:, span]),
                start,
                _shape(position),
                _shape(values),
                out=(position, values),
            )
        stream_finish.for_dtype(work)(
            values,
            first,
            np.ascontiguousarray(base[:, span]),
            np.ascontiguousarray(size[:, span]),
            np.ascontiguousarray(counts[span]),
            qs,
            params,
            *finish_networks(),
            _shape(out[:, span]),
            out=out[:, span],
        )


def _shape(array):
    """A stand-in of ``array``'s shape and dtype for a kernel's shape argument: no memory, and
    none shared with the output (NumPy would copy an input that overlaps an output at every call)."""
    return np.broadcast_to(array.dtype.type(0), array.shape)


@functools.cache
def _network():
    """The sorting network of a group's sample."""
    return sorting_network(STREAM_SAMPLE)


def _batches(size):
    """Group ranges whose collected bins together stay within :data:`GATHER_BYTES`-ish
    (one range unless the samples missed badly)."""
    per_group = (size + 1).sum(axis=(0, 2))
    limit = max(GATHER_BYTES // 4, int(per_group.max(initial=0)))  # no group: nothing to gather
    ranges, first, total = [], 0, 0
    for g, n in enumerate(per_group.tolist()):
        if total + n > limit and g > first:
            ranges.append((first, g))
            first, total = g, 0
        total += n
    ranges.append((first, per_group.size))
    return ranges


def _order_dask(data, plan, dtype):
    """One task per spatial block (or row piece of it): its series from every time chunk; or, selected
    on time chunks (:func:`streamed`), a chain of one task per chunk that counts it as it arrives."""
    check_series_memory(data, dtype)
    arguments = order_arguments(plan)
    lead = [arguments[-2].size, plan.groups.labels.size]
    if data.numblocks[0] > 1 and streamed(arguments, data.shape[0]):
        return _stream_dask(data, arguments, lead, dtype)
    return gather(partial(_order_block, work=dtype), data, arguments, lead=lead, dtype=dtype, name="climatology-order")


#: Steps of each group sampled before the time chunks are counted (the thresholds come from the first chunks).
STREAM_FIRST_SAMPLE = 48


class StreamState:
    """What one step of a streamed order statistic's chain (:func:`_stream_dask`) hands to the next, for
    one spatial block: the time chunks so far as (time, pixels) ``blocks`` (held, never copied: the final
    tasks collect from them), their group ``codes``, and once sampled, for each pixel range of
    ``ranges``, the ``thresholds`` and the ``counts`` of the chunks so far (None before).

    A value: no task writes it once returned (a step copies the counts it adds to)."""

    __slots__ = ("blocks", "codes", "counts", "ranges", "thresholds")

    def __init__(self, blocks, codes, ranges, thresholds=None, counts=None):
        self.blocks, self.codes, self.ranges = blocks, codes, ranges
        self.thresholds, self.counts = thresholds, counts


@sizeof.register(StreamState)
def _sizeof_stream_state(state):
    held = [*state.blocks, *(state.thresholds or ()), *(state.counts or ())]
    return sum(a.nbytes for a in held)


def _stream_dask(data, arguments, lead, dtype):
    """Per spatial block, a chain of one task per time chunk (:func:`_stream_step`: the chunk's counts,
    made while the next chunk is read), then one task per row piece (:func:`_stream_finish`: the bins
    collected and selected): :func:`oceanflow._blockwise.fold` with a chain per spatial block.
    Tasks = time chunks x spatial blocks + row pieces; memory per task = one spatial block's series, as
    :func:`oceanflow._blockwise.gather`."""
    codes = _step_codes(arguments, data.shape[0])
    step = partial(_stream_step, work=dtype)
    return fold(
        step,
        _stream_finish,
        data,
        codes,
        lead=lead,
        dtype=dtype,
        name="climatology-order",
        per_block=True,
        shared=arguments,
    )


def _stream_ranges(pieces):
    """The pixel ranges (of at most :data:`STREAM_PIXELS`) of a spatial block, within its row ``pieces``."""
    return tuple((lo, min(lo + STREAM_PIXELS, p.stop)) for p in pieces for lo in range(p.start, p.stop, STREAM_PIXELS))


def _stream_step(previous, block, codes, pieces, arguments, *, work):
    """The state (:class:`StreamState`) after one more time chunk ``block`` (time, ...) with group
    ``codes`` (pixel ranges within the block's row ``pieces``): held; counted, once
    :data:`STREAM_FIRST_SAMPLE` steps of every group (or all of them) have arrived to place the
    thresholds, with the chunks held so far counted then.  Pure: ``previous`` is only read."""
    x = as_pixels(unmasked(block), work)
    if previous is None:
        previous = StreamState((), (), _stream_ranges(pieces))
    ranges = previous.ranges
    blocks, block_codes = previous.blocks + (x,), previous.codes + (np.ascontiguousarray(codes, np.int64),)
    if previous.thresholds is not None:  # counted so far: add this chunk
        counts = tuple(c.copy() for c in previous.counts)
        for (lo, _), held, thresholds in zip(ranges, counts, previous.thresholds, strict=True):
            _count(x, block_codes[-1], thresholds, lo, held, reset=False)
        return StreamState(blocks, block_codes, ranges, previous.thresholds, counts)
    key_starts, key_stops = arguments[1], arguments[2]
    seen = np.bincount(np.concatenate(block_codes) + 1, minlength=key_starts.size + 1)[1:]
    if np.any(seen < np.minimum(key_stops - key_starts, STREAM_FIRST_SAMPLE)):
        return StreamState(blocks, block_codes, ranges)  # too few steps to sample yet
    ngroups, qs = key_starts.size, arguments[-2]
    thresholds = tuple(_sampled_thresholds(blocks, block_codes, ngroups, qs, lo, hi, work) for lo, hi in ranges)
    counts = tuple(np.empty((ngroups, 1 + qs.size * STREAM_THRESHOLDS, hi - lo), np.int32) for lo, hi in ranges)
    for (lo, _), held, limits in zip(ranges, counts, thresholds, strict=True):
        for k, b in enumerate(blocks):
            _count(b, block_codes[k], limits, lo, held, reset=k == 0)
    return StreamState(blocks, block_codes, ranges, thresholds, counts)


def _stream_finish(state, pixels, shape, arguments):
    """The order statistics (quantile, group, *shape) of the row piece ``pixels`` from the last state of
    its spatial block's chain: its ranges' bins collected and selected."""
    qs, ngroups = arguments[-2], arguments[1].size
    work = state.blocks[0].dtype
    out = np.empty((qs.size, ngroups, pixels.stop - pixels.start), work)
    with np.errstate(invalid="ignore"):  # NaN compared with the bins' bounds
        for (lo, hi), thresholds, counts in zip(state.ranges, state.thresholds, state.counts, strict=True):
            if pixels.start <= lo < pixels.stop:
                part = out[:, :, lo - pixels.start : hi - pixels.start]
                _selected(state.blocks, state.codes, thresholds, counts, arguments, lo, work, part)
    return out.reshape(out.shape[:2] + tuple(shape))


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
