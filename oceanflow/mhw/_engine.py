"""The block functions: what one task runs on one spatial block's series, in memory
(NumPy in, NumPy out), around the kernels of :mod:`oceanflow.kernels.mhw`: the
thresholds, the detection, the event table and the summary's block averages.

The other modules call them through this module (``_engine._mhw_block``), so that
a function replaced here (a benchmark's clock, a test's probe) is the one every
caller runs."""

from __future__ import annotations

import numpy as np

from .._dtypes import working_dtype
from .._memory import empty_block
from .._parallel import run_sliced
from ..climatology.pooling import order_layout
from ..kernels import mhw as kernels
from ..kernels.sorting import sorting_network
from ._definitions import _FEB29

#: ``tables=`` of :func:`_mhw_block` for tables put aside as their tasks end (``mhw.save``'s scratch file):
#: each in a block of the pool (:func:`_pooled_table`), not fresh memory.
POOLED = "pooled"
#: Bytes a pooled table's block is rounded up to: tables of a few more or fewer slots share blocks.
TABLE_STEP = 4 << 20


def _mhw_block(x, *clim, day, params, thresholds=None, period_of_step=None, tables=False):
    """One block's (time, pixel) series -> [seas, thresh (without ``clim``)], intensity,
    category, event, [the summary's rows (with ``period_of_step``)], [the event
    table, (rows * slots, pixel) with the block's own slots (with ``tables``; with
    :data:`POOLED`, in the pool's memory)]: every kernel on the block in memory."""
    seas, thresh = clim if clim else _thresholds_block(x, **thresholds)
    intensity, category, event = _detect_block(x, seas, thresh, day, params)
    out = [intensity, category, event] if clim else [seas, thresh, intensity, category, event]
    cold = np.array([params[kernels.P_COLD]])
    valid = None if period_of_step is None else (thresh == thresh).any(axis=0).astype(np.float64)[None]
    if tables:  # the summary from the same pass over the events
        slots = max(int(event.max(initial=0)), 1)
        into = _pooled_table(len(kernels.EVENT_ROWS), slots, x.shape[1]) if tables == POOLED else None
        args = (intensity, event, category, seas, thresh, day, cold, slots)
        table, summary = _event_table(*args, period_of_step=period_of_step, valid=valid, out=into)
        if period_of_step is not None:
            out += [summary[i] for i in range(summary.shape[0])]
        out.append(table.reshape(-1, x.shape[1]))  # (a view)
    elif period_of_step is not None:
        out += _summary_block(intensity, event, valid, period_of_step, cold)
    return tuple(out)


def _detect_block(x, seas, thresh, day, params):
    n, p = x.shape
    dtype = working_dtype(x.dtype)
    x = x.astype(dtype, copy=False)
    # (from the block pool while a save runs: each reused once its chunks are written, not faulted in afresh)
    outs = (empty_block((n, p), dtype), empty_block((n, p), np.int8), empty_block((n, p), np.int32))
    kernel = kernels.detect_events.for_dtype(dtype)

    def run(part):
        own = params.copy()
        own[kernels.P_FIRST], own[kernels.P_STOP] = part.start, part.stop
        kernel(x, seas, thresh, day, own, *outs)

    run_sliced(run, p)
    return outs


def _pools(days, first, last, window):
    """The pools of the days of the year (pixel-independent), by key: for each
    of a day's days in the base period (``first .. last``; 29 February is no
    centre), the ``window`` steps centred on it, cut at the ends of the
    series; steps pooled by the same days are one key
    (:func:`oceanflow.climatology.pooling.order_layout`).

    Returns (steps, key_starts, key_stops, keys, group_starts, group_stops, lo,
    hi, ops): key ``k`` is ``steps[key_starts[k]:key_stops[k]]``, day ``g`` pools
    the keys ``keys[group_starts[g]:group_stops[g]]``; ``lo``/``hi`` sort a key
    (:func:`oceanflow.kernels.sorting.sorting_network`), ``ops`` merge the
    keys into the pools (:func:`oceanflow.kernels.sorting.merge_plan`).
    """
    codes = days.row.astype(np.int64)
    if days.days == 366:
        codes[days.feb29] = -1
    codes[:first] = -1
    codes[last + 1 :] = -1
    keys, ops = order_layout(codes, days.days, window)
    layout = (keys.steps, keys.key_starts, keys.key_stops, keys.keys, keys.group_starts, keys.group_stops)
    return (*layout, *sorting_network(keys.run_length), ops)


def _thresholds_block(x, pools, pctile, sign, smooth, feb29):
    """One block's (time, pixel) series -> its climatological year (``seas``,
    ``thresh``: (day, pixel), float64): the pools' means and percentiles
    (:func:`_pools`; exact, in float64, on ``sign * x``), 29 February filled,
    smoothed, as the reference computes them."""
    dtype = working_dtype(x.dtype)
    x = x.astype(dtype, copy=False)  # (the kernel reads it in float64, a few pixels at a time: no copy)
    p, ngroups = x.shape[1], pools[4].size
    seas, thresh = np.empty((ngroups, p)), np.empty((ngroups, p))
    kernel = kernels.pooled_climatology.for_dtype(dtype)

    def run(part):
        params = np.zeros(6)
        params[kernels.C_FIRST], params[kernels.C_STOP] = part.start, part.stop
        params[kernels.C_SMOOTH], params[kernels.C_FEB29] = smooth, _FEB29 if feb29 else -1
        params[kernels.C_SIGN], params[kernels.C_FRACTION] = sign, pctile / 100
        kernel(x, *pools, params, seas, thresh)

    run_sliced(run, p)
    return seas, thresh


def _events_block(intensity, event, category, seas, thresh, day, params, slots):
    table, _ = _event_table(intensity, event, category, seas, thresh, day, params, slots)
    return tuple(table[i] for i in range(table.shape[0]))  # views: no copy per property


def _pooled_table(rows, slots, pixels):
    """An empty (rows, slots, pixels) float64 table in a block of the pool while a save runs
    (:func:`~oceanflow._memory.empty_block`: no fresh pages to fault in, about 0.6 s of CPU per GB; its
    start on a page, written with ``O_DIRECT`` without a copy), the block's bytes rounded up to
    :data:`TABLE_STEP`."""
    nbytes = rows * slots * pixels * 8
    block = empty_block((-(-nbytes // TABLE_STEP) * TABLE_STEP,), np.uint8)
    return block[:nbytes].view(np.float64).reshape(rows, slots, pixels)


def _event_table(
    intensity, event, category, seas, thresh, day, params, slots, period_of_step=None, valid=None, out=None
):
    """(rows, slots, pixel): :func:`oceanflow.kernels.mhw.event_properties` of one block (into ``out`` when
    given), and the summary's (row, period, pixel) as :func:`_summary_block` (with ``period_of_step`` and
    ``valid``; else one period of all steps)."""
    kernel = kernels.event_properties.for_dtype(working_dtype(intensity.dtype))
    rows = len(kernels.EVENT_ROWS)
    n, p = event.shape
    if period_of_step is None:
        period_of_step, valid = np.zeros(n, np.int64), np.ones((1, p))
    return kernel(
        intensity.astype(working_dtype(intensity.dtype), copy=False),
        event.astype(np.int32, copy=False),
        category.astype(np.int8, copy=False),
        seas.astype(np.float64, copy=False),
        thresh.astype(np.float64, copy=False),
        day,
        period_of_step,
        valid[0].astype(np.float64, copy=False),
        params,
        np.zeros(rows),
        np.zeros(slots),
        np.zeros(int(period_of_step[-1]) + 1),
        np.zeros(len(kernels.SUMMARY_ROWS)),
        out=(out, None),
    )


def _summary_block(intensity, event, valid, period_of_step, params):
    nblocks = int(period_of_step[-1]) + 1
    result = kernels.period_summary.for_dtype(working_dtype(intensity.dtype))(
        intensity.astype(working_dtype(intensity.dtype), copy=False),
        event.astype(np.int32, copy=False),
        period_of_step,
        valid[0].astype(np.float64, copy=False),
        params,
        np.zeros(nblocks),
        np.zeros(len(kernels.SUMMARY_ROWS)),
    )
    return tuple(result[i] for i in range(result.shape[0]))
