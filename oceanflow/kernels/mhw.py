"""Marine heatwave kernels (Hobday et al. 2016, 2018): one pass over each pixel's series.

Every kernel takes a C-ordered ``(time, pixel)`` block (``(n,p)``) whose time
axis is whole, and loops time outside and pixels inside, so that it reads the
block row by row, in place; a kernel that serves a range of pixels gets the
range in ``params`` and writes only those columns of full-width outputs (the
threads of an in-memory call share one block).  The definitions are those of
the reference implementation (ecjoliver/marineHeatWaves ``detect``), see
:mod:`oceanflow.mhw`.

* :func:`pooled_climatology`: the mean and the percentile of each day of
  the year's pool (the order statistics of
  :func:`oceanflow.kernels.quantiles.grouped_quantiles`: keys sorted and
  merged a few hundred pixels at a time), 29 February filled, smoothed by
  the reference's circular running mean: ``seas`` and ``thresh``;
* :func:`detect_events`: daily intensity, category and event number;
* :func:`event_properties`: the reference's per-event properties;
* :func:`period_summary`: per-period counts, days and means of the events,
  from the daily detection.
"""

from __future__ import annotations

import math

import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from ._declare import gufunc, njit
from .sorting import LOAD, MERGE, load_sorted, merge_smallest

#: Rows of :func:`event_properties`' output, in order.
EVENT_ROWS = (
    "index_start",
    "index_end",
    "index_peak",
    "duration",
    "intensity_max",
    "intensity_mean",
    "intensity_var",
    "intensity_cumulative",
    "intensity_max_relThresh",
    "intensity_mean_relThresh",
    "intensity_var_relThresh",
    "intensity_cumulative_relThresh",
    "intensity_max_abs",
    "intensity_mean_abs",
    "intensity_var_abs",
    "intensity_cumulative_abs",
    "rate_onset",
    "rate_decline",
    "category",
    "duration_moderate",
    "duration_strong",
    "duration_severe",
    "duration_extreme",
)

#: Rows of :func:`period_summary`' output, in order.
SUMMARY_ROWS = (
    "count",
    "total_days",
    "duration",
    "intensity_max",
    "intensity_max_max",
    "intensity_mean",
    "intensity_cumulative",
    "total_icum",
)

# params of detect_events
P_MIN_DURATION, P_JOIN, P_MAX_GAP, P_COLD, P_FIRST, P_STOP = range(6)
_INF_BITS = 0x7FF0000000000000  # float64 +inf's bits: a positive margin's bits lie in 1 .. _INF_BITS
# params of pooled_climatology
C_FIRST, C_STOP, C_SMOOTH, C_FEB29, C_SIGN, C_FRACTION = range(6)
#: Most pixels whose pools :func:`pooled_climatology` sorts and merges together: the pixels are cut in
#: tiles of equal width (a multiple of 16) up to it (a 1080-pixel block: 5 tiles of 224, where tiles of 128
#: were 8 and one of 56, padded to 128; 15 % less kernel CPU on a 30-year block, 35-row merges).
LANES = 256


@gufunc(
    "(n,p),(e),(h),(h),(f),(g),(g),(c),(c),(o,s),(k)->(g,p),(g,p)",
    "void({t}[:, ::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], "
    "int64[::1], int64[:, ::1], float64[::1], float64[:, ::1], float64[:, ::1])",
    fastmath=False,  # NumPy's virtual index (n - 1) * q and its lerp, no fused multiply-add
)
def pooled_climatology(
    x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, ops, params, seas, thresh
):
    """The reference's ``seas`` and ``thresh`` of pixels
    ``params[C_FIRST]:params[C_STOP]`` of ``x`` times ``params[C_SIGN]``
    (-1 for cold spells, as the reference computes them on ``-sst``; the
    results are negated back), in float64 whatever the dtype of ``x``.

    The pools are laid out by key (:func:`oceanflow.climatology.pooling.order_keys`):
    key ``k`` is the steps ``steps[key_starts[k]:key_stops[k]]``, day ``g``
    pools the keys ``keys[group_starts[g]:group_stops[g]]`` (a key listed
    twice counts twice).  A day's ``seas`` is the mean of its keys' values
    (NaN dropped; each key's sum in time order, taken as the key is loaded), its ``thresh`` the linear
    percentile ``params[C_FRACTION]`` (``np.percentile``'s formula, in float64)
    of them, NaN for an empty pool.  The order statistics are those of
    :func:`oceanflow.kernels.quantiles.grouped_quantiles`, a tile of up to ``LANES`` pixels at
    once: each key's values sorted down the columns by the network
    ``lo``/``hi`` and the keys merged as the plan ``ops``
    (:func:`oceanflow.kernels.sorting.merge_plan`) says, from the nearer end,
    keeping as many rows as the percentile reads, not a power of two (35 of
    341 values for the 90th percentile of 31 years: merges of 35 rows, not
    64), exact in the dtype of ``x`` (values are only compared).  Then day
    ``params[C_FEB29]`` (29 February; -1: none) is the mean of its two
    neighbours, and both curves are smoothed by the reference's circular
    running mean over ``params[C_SMOOTH]`` days (1: none).
    """
    first, stop = int(params[C_FIRST]), int(params[C_STOP])
    if stop <= first:
        return
    q, sign = params[C_FRACTION], params[C_SIGN]
    ngroups, nkeys, width = group_starts.shape[0], key_starts.shape[0], stop - first
    up = q <= 0.5  # from the smallest values; else from the largest (negated)
    length, nslots, most = 1, 1, 1
    for k in range(nkeys):
        length = key_stops[k] - key_starts[k] if key_stops[k] - key_starts[k] > length else length
    for o in range(ops.shape[0]):
        nslots = ops[o, 1] + 1 if ops[o, 1] >= nslots else nslots
    for g in range(ngroups):
        n = 0
        for h in range(group_starts[g], group_stops[g]):
            n += key_stops[keys[h]] - key_starts[keys[h]]
        most = n if n > most else most
    # the values a pool's merges keep from the nearer end, at any number of valid values (not a literal 1:
    # the helpers given it would be compiled for Literal[int](1) as well)
    need = np.int64(1)
    for n in range(1, most + 1):
        i = math.floor((n - 1) * q)  # (NumPy's virtual index: the lower value's)
        kept = (i + 2 if i + 2 < n else n) if up else n - i
        need = kept if kept > need else need
    rows = need if need > length else length
    one = x.dtype.type(1)
    load_sign = one if (sign > 0) == up else -one
    # Scratch of three types only (each new type of np.empty is one more compilation): a pool's total
    # and count are the last rows of the keys' sums and counts.
    tiles = (width + LANES - 1) // LANES
    tile = ((width + tiles - 1) // tiles + 15) // 16 * 16  # (equal tiles, whole vectors)
    s = np.empty((nslots * rows, tile), x.dtype)
    count = np.empty((nkeys + 1, tile), np.int32)
    sums = np.empty((nkeys + 1, tile))
    total, valid = sums[nkeys], count[nkeys]
    raw_seas = np.empty((width, ngroups))  # before filling and smoothing, by column
    raw_thresh = np.empty((width, ngroups))
    for j in range(width):
        for g in range(ngroups):  # (NaN unless a pool's statistics are written)
            raw_seas[j, g] = np.nan
            raw_thresh[j, g] = np.nan
    for p0 in range(first, stop, tile):
        lanes = tile if stop - p0 > tile else stop - p0
        for o in range(ops.shape[0]):
            kind, slot, a, b = ops[o, 0], ops[o, 1], ops[o, 2], ops[o, 3]
            if kind == LOAD:
                k0, k1 = key_starts[a], key_stops[a]  # (and each key's sum, in time order)
                load_sorted(x, steps, k0, k1, lo, hi, s, slot * rows, rows, lanes, p0, load_sign, count, a, sums, sign)
            elif kind == MERGE:
                merge_smallest(s, slot * rows, a * rows, b * rows, need)
            else:
                _pool_stats(
                    s,
                    slot * rows if slot >= 0 else -1,
                    need,
                    up,
                    q,
                    keys,
                    group_starts[a],
                    group_stops[a],
                    count,
                    sums,
                    total,
                    valid,
                    raw_seas,
                    raw_thresh,
                    p0 - first,
                    a,
                    lanes,
                )
    # 29 February: the mean of 28 February and 1 March (as the reference); then the reference's
    # circular running mean of smooth (odd) days over each column's valid days: the valid days
    # repeated three times, convolved with equal weights 1 / smooth (zero beyond), the middle third
    # kept; NaN days stay NaN.  The tripled days are padded with half zeros at each end (each sum
    # still taken in the same order: from zero, a zero adds nothing), so that every day's window is
    # the smooth values from its own start, summed for all the days at once.  Weighted by
    # sign / smooth: negated back, exactly, for cold spells.
    feb29, smooth = int(params[C_FEB29]), int(params[C_SMOOTH])
    half = (smooth - 1) // 2
    weight = sign / smooth
    line = np.empty((2, 3 * ngroups + 2 * half))
    padded, acc = line[0], line[1]
    for i in range(half):
        padded[i] = 0.0
    for c in range(2):
        year = raw_seas if c == 0 else raw_thresh
        out = seas if c == 0 else thresh
        for j in range(width):
            if feb29 >= 0:
                year[j, feb29] = 0.5 * year[j, feb29 - 1] + 0.5 * year[j, feb29 + 1]
            m = 0
            for d in range(ngroups):
                out[d, first + j] = np.nan
                if year[j, d] == year[j, d]:
                    padded[half + m] = year[j, d]
                    m += 1
            for i in range(m):
                padded[half + m + i] = padded[half + i]
                padded[half + 2 * m + i] = padded[half + i]
            for i in range(3 * m + half, 3 * m + 2 * half):
                padded[i] = 0.0
            for i in range(m):
                acc[i] = 0.0
            for k in range(smooth):
                for i in range(m):
                    acc[i] += padded[m + i + k] * weight
            i = 0
            for d in range(ngroups):  # (the valid days again)
                if year[j, d] == year[j, d]:
                    out[d, first + j] = acc[i]
                    i += 1


@njit(fastmath=False, inner=True)
def _pool_stats(s, base, depth, up, q, keys, h0, h1, count, sums, total, valid, raw_seas, raw_thresh, column, g, lanes):
    """Day ``g``'s mean and linear percentile ``q`` (pooling ``keys[h0:h1]``) of ``lanes`` columns from
    ``column``, into ``raw_seas`` and ``raw_thresh[column + j, g]``: its values' sums and counts added up in
    key order; its order statistics read from the ``depth`` sorted rows ``base ..`` of ``s`` (-1: none) as
    :func:`oceanflow.kernels.quantiles._emit` reads them, interpolated in float64 (NumPy's lerp)."""
    for j in range(lanes):
        total[j] = 0.0
        valid[j] = 0
    for h in range(h0, h1):
        k = keys[h]
        for j in range(lanes):
            total[j] += sums[k, j]
            valid[j] += count[k, j]
    last, index, gamma = -1, np.int64(0), 0.0
    for j in range(lanes):
        n = valid[j]
        if n == 0 or base < 0:
            raw_seas[column + j, g] = np.nan
            raw_thresh[column + j, g] = np.nan
            continue
        raw_seas[column + j, g] = total[j] / n
        if n != last:  # most columns have as many values: one position (NumPy's virtual index)
            virtual = (n - 1) * q
            index = math.floor(virtual)
            gamma = virtual - index
            last = n
        if up:
            low = np.float64(s[base + index, j])  # (index + 1 < depth unless index + 1 == n)
            high = np.float64(s[base + (index + 1 if index + 1 < depth else index), j])
        else:  # the index-th smallest counted from the top
            low = -np.float64(s[base + n - 1 - index, j])  # (n - 1 - index < depth)
            high = -np.float64(s[base + (n - 2 - index if n - 2 - index >= 0 else 0), j])
        if index + 1 >= n:  # (the last value: interpolated with itself, as NumPy)
            high = low
        diff = high - low  # NumPy's lerp, exact at both ends
        raw_thresh[column + j, g] = high - diff * (1.0 - gamma) if gamma >= 0.5 else low + diff * gamma


@gufunc(
    "(n,p),(g,p),(g,p),(n),(k)->(n,p),(n,p),(n,p)",
    "void({t}[:, ::1], float64[:, ::1], float64[:, ::1], int64[::1], float64[::1], {t}[:, ::1], int8[:, ::1], "
    "int32[:, ::1])",
    fastmath=False,
)
def detect_events(x, seas, thresh, day, params, intensity, category, event):
    """Daily ``intensity`` (x - seas), ``category`` (0-4) and ``event`` number (0
    outside events) of pixels ``params[P_FIRST]:params[P_STOP]``.

    ``day[t]`` is the row of ``seas``/``thresh`` for step ``t``.  A missing value
    counts as the climatology.  Runs of steps above the threshold (below it
    for cold spells) of at least ``min_duration`` steps are events; with
    ``join`` an event starting at most ``max_gap`` steps after the previous
    one's end continues it (the gap's steps belong to the event).  The
    category of an event's day is Hobday et al.'s (2018)
    ``floor(1 + (T - thresh) / (thresh - seas))``, 0-4 (for cold spells
    ``(thresh - T) / (seas - thresh)``); an infinite ratio (``thresh`` equal
    to ``seas``) is 4, as the reference's clip.

    Each step is one branch-free, vectorised pass over the pixels (intensity,
    zeroed outputs, a bit per pixel above the threshold); then only the
    pixels whose bit changed are visited, where runs start and end.
    """
    min_duration = int(params[P_MIN_DURATION])
    max_gap = int(params[P_MAX_GAP]) if params[P_JOIN] != 0 else -1  # (-1: no gap is joined)
    cold = params[P_COLD] != 0
    sign = -1.0 if cold else 1.0
    lo, hi = int(params[P_FIRST]), int(params[P_STOP])
    n, m = x.shape[0], hi - lo
    words = (m + 63) // 64
    # per pixel: its run's start, its last event's end, its events so far; then the last step's bits by 64 pixels
    state = np.empty(3 * m + words, np.int64)
    ulo, uhi = np.uint64(lo), np.uint64(hi)  # (unsigned indices: no wraparound, the loops vectorise)
    for k in range(np.uint64(2 * m), np.uint64(3 * m + words)):  # (a start is set as its run starts, an end with it)
        state[k] = 0
    for t in range(n + 1 if n > 0 else 0):  # step n: no bit set, the runs still open end (row n - 1 rewritten)
        row = t - (t == n)
        g = day[row]
        for j in range(ulo, uhi):
            category[row, j] = 0
        for j in range(ulo, uhi):
            event[row, j] = 0
        for w in range(words):
            bits = 0  # pixel lo + 64 w + b above the threshold at step t: bit b
            first = ulo + np.uint64(64 * w)
            for j in range(first, first + np.uint64(64) if first + np.uint64(64) < uhi else uhi):
                s = seas[g, j]
                v = x[row, j]
                intensity[row, j] = np.float64(v) - s
                # the margin's sign from its bits: a vector ">" on a NaN (land) would raise FE_INVALID
                margin = np.float64(sign * ((np.float64(v) if v == v else s) - thresh[g, j])).view(np.int64)
                bits |= ((margin > 0) & (margin <= _INF_BITS)) << (j - first)
            bits = bits if t < n else 0
            change = bits ^ state[3 * m + w]
            state[3 * m + w] = bits
            starts = change & bits
            while starts != 0:
                state[64 * w + trailing_zeros(starts)] = t  # type: ignore[call-arg]
                starts &= starts - 1
            ends = change & ~bits
            while ends != 0:
                k = 64 * w + trailing_zeros(ends)  # type: ignore[call-arg]
                ends &= ends - 1
                end = t - 1
                begin = state[k]
                if end - begin + 1 < min_duration:
                    continue
                if state[2 * m + k] > 0 and begin - state[m + k] - 1 <= max_gap:
                    begin = state[m + k] + 1  # the gap's steps join the last event
                else:
                    state[2 * m + k] += 1
                state[m + k] = end
                j = lo + k
                for tt in range(begin, end + 1):
                    gg = day[tt]
                    vv = x[tt, j]
                    ss = seas[gg, j]
                    ff = np.float64(vv) if vv == vv else ss
                    tg = thresh[gg, j]
                    top, low = (tg, ff) if cold else (ff, tg)
                    far, near = (ss, tg) if cold else (tg, ss)
                    ratio = (top - low) / (far - near)
                    r = 1.0 + ratio  # clipped before the floor: an infinite or huge ratio is 4, NaN 0
                    c = 0.0 if not r >= 1.0 else (4.0 if r >= 4.0 else float(math.floor(r)))
                    event[tt, j] = state[2 * m + k]
                    category[tt, j] = np.int8(c)


# per series of an event (relative to the climatology, to the threshold, absolute): peak value, sum,
# shift, shifted sums
S_PEAK, S_SUM, S_SHIFT, S_SUM1, S_SUM2 = range(5)


@gufunc(
    "(n,p),(n,p),(n,p),(g,p),(g,p),(n),(n),(p),(k),(m),(e),(b),(s)->(m,e,p),(s,b,p)",
    "void({t}[:, ::1], int32[:, ::1], int8[:, ::1], float64[:, ::1], float64[:, ::1], int64[::1], int64[::1], "
    "float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[:, :, ::1], "
    "float64[:, :, ::1])",
)
def event_properties(
    intensity, event, category, seas, thresh, day, block, valid, params, rows, slots, blocks, summary_rows, out, summary
):
    """The reference's properties (rows :data:`EVENT_ROWS`) of each pixel's
    events, event ``k`` (1, 2, ...) in slot ``k - 1``; NaN beyond the last;
    and, from the same pass, :func:`period_summary`'s ``summary`` (``block``,
    ``valid`` and its rows as there).

    ``params``: cold (0/1).  Computed on the sign-flipped series for cold
    spells, as the reference does; intensities (not their variability, not
    the rates) are negated back at the end.

    An event is a run of steps of one number above 0.  Each step is one
    vectorised pass comparing ``event`` with the step before (a bit per
    pixel whose number changed); where a run ends, its steps are visited down
    the pixel's column (:func:`_event_run`), its sums in registers.
    """
    cold = params[0] != 0
    sign = -1.0 if cold else 1.0
    n, p = event.shape
    out[:] = np.nan
    ser, days = np.empty((3, 5)), np.empty(4)
    begin = np.zeros(p, np.int64)  # the step each pixel's run of one number began
    none = np.zeros(p, np.int32)  # (the steps before the first and after the last: no event)
    _summary_start(summary, valid)
    up = np.uint64(p)
    for t in range(n + 1):
        now = event[t] if t < n else none
        before = event[t - 1] if t > 0 else none
        for w in range(np.uint64(0), up, np.uint64(64)):
            bits = 0  # pixel w + b's number changed at step t: bit b
            for j in range(w, w + np.uint64(64) if w + np.uint64(64) < up else up):
                bits |= (now[j] != before[j]) << (j - w)
            while bits != 0:
                j = w + trailing_zeros(bits)  # type: ignore[call-arg]
                bits &= bits - 1
                if before[j] > 0:
                    _event_run(
                        intensity,
                        category,
                        seas,
                        thresh,
                        day,
                        block,
                        valid,
                        j,
                        begin[j],
                        t,
                        before[j] - 1,
                        sign,
                        cold,
                        ser,
                        days,
                        out,
                        summary,
                    )
                begin[j] = t
    _summary_means(summary)


@njit(fastmath=False, inline="always")  # caching as OCEANFLOW_NUMBA_CACHE says
def _relative(intensity, t, j, sign):
    """``sign * intensity[t, j]`` in float64; 0 for a missing value and outside the series (``t`` -1 or n)."""
    if t < 0 or t >= intensity.shape[0]:
        return 0.0
    v = intensity[t, j]
    return sign * np.float64(v) if v == v else 0.0


@njit(inner=True)  # caching as OCEANFLOW_NUMBA_CACHE says
def _event_run(
    intensity, category, seas, thresh, day, block, valid, j, start, after, slot, sign, cold, ser, days, out, summary
):
    """The event of pixel ``j`` on steps ``start .. after - 1``: its properties into ``out[:, slot, j]``
    (none beyond the last slot), its days and sums into
    :func:`period_summary`'s ``summary`` (``valid[j]``).  Scratch: ``ser`` (series, S_*), ``days`` (4,)."""
    top = _relative(intensity, start, j, sign)
    first, peak, count, most = top, start, 0.0, 0
    days[:] = 0.0
    # the three series' (relative to the climatology, to the threshold, absolute) value at the peak, first
    # value (the shift), sum and shifted sums, in registers
    g = day[start]
    s = seas[g, j]
    peak0, peak1, peak2 = top, top + sign * (s - thresh[g, j]), sign * s + top
    shift0, shift1, shift2 = peak0, peak1, peak2
    sum0 = sum1 = sum2 = 0.0
    one0 = one1 = one2 = 0.0
    two0 = two1 = two2 = 0.0
    last = top
    for t in range(start, after):
        rel = _relative(intensity, t, j, sign)
        g = day[t]
        s = seas[g, j]
        v1 = rel + sign * (s - thresh[g, j])
        v2 = sign * s + rel
        if rel > top:  # (never on the first step: top is its value)
            top = rel
            peak = t
            peak0, peak1, peak2 = rel, v1, v2
        count += 1
        last = rel
        d0, d1, d2 = rel - shift0, v1 - shift1, v2 - shift2
        sum0 += rel
        sum1 += v1
        sum2 += v2
        one0 += d0
        one1 += d1
        one2 += d2
        two0 += d0 * d0
        two1 += d1 * d1
        two2 += d2 * d2
        if valid[j] != 0:
            summary[1, block[t], j] += 1
        c = category[t, j]
        most = max(most, c)
        if c >= 1:
            days[min(c, 4) - 1] += 1
    ser[0, S_PEAK], ser[1, S_PEAK], ser[2, S_PEAK] = peak0, peak1, peak2
    ser[0, S_SUM], ser[1, S_SUM], ser[2, S_SUM] = sum0, sum1, sum2
    ser[0, S_SUM1], ser[1, S_SUM1], ser[2, S_SUM1] = one0, one1, one2
    ser[0, S_SUM2], ser[1, S_SUM2], ser[2, S_SUM2] = two0, two1, two2
    if valid[j] != 0:
        _summary_add(summary, block[start], j, count, top, sum0, sign)
    if slot < out.shape[1]:
        _finish(
            out[:, slot, j],
            ser,
            start,
            peak,
            count,
            top,
            first,
            _relative(intensity, start - 1, j, sign),
            last,
            _relative(intensity, after, j, sign),
            intensity.shape[0],
            most,
            days,
            cold,
        )


@njit(fastmath=False, inner=True)  # caching as OCEANFLOW_NUMBA_CACHE says
def _finish(out, ser, start, peak_step, count, top, first, rel_before, last, rel_after, n, most, durations, cold):
    """An event's properties (rows :data:`EVENT_ROWS`) into ``out``: it began at step ``start`` with the
    sign-flipped intensity ``first`` (``rel_before`` the step before), peaked at ``peak_step`` at ``top``, ran
    ``count`` steps to ``last`` (``rel_after`` after); ``ser`` its series' sums, ``most`` its largest
    category, ``durations`` its days per category 1-4."""
    peak = peak_step - start
    end = start + count - 1
    out[0] = start
    out[1] = end
    out[2] = start + peak
    out[3] = count
    flip = -1.0 if cold else 1.0
    for i in range(3):
        mean = ser[i, S_SUM] / count
        shifted = ser[i, S_SUM1] / count
        var = max(ser[i, S_SUM2] / count - shifted * shifted, 0.0)
        out[4 + 4 * i] = flip * ser[i, S_PEAK]
        out[5 + 4 * i] = flip * mean
        out[6 + 4 * i] = math.sqrt(var)
        out[7 + 4 * i] = flip * ser[i, S_SUM]
    if start > 0:
        before = 0.5 * (first + rel_before)
        out[16] = (top - before) / (peak + 0.5)
    else:
        out[16] = (top - first) / (1.0 if peak == 0 else peak)
    if end < n - 1:
        after_value = 0.5 * (last + rel_after)
        out[17] = (top - after_value) / (end - start - peak + 0.5)
    else:
        # as the reference: the peak's offset within the event is compared with the series' last step
        steps = 1.0 if peak == n - 1 else end - start - peak
        diff = top - last
        out[17] = diff / steps if steps != 0 else (np.nan if diff == 0 else math.copysign(np.inf, diff))
    out[18] = most
    for c in range(4):
        out[19 + c] = durations[c]


@gufunc(
    "(n,p),(n,p),(n),(p),(k),(b),(s)->(s,b,p)",
    "void({t}[:, ::1], int32[:, ::1], int64[::1], float64[::1], float64[::1], float64[::1], float64[::1], "
    "float64[:, :, ::1])",
)
def period_summary(intensity, event, block, valid, params, blocks, rows, out):
    """Per period ``b`` (``block[t]`` for each step) and pixel: rows
    :data:`SUMMARY_ROWS` of the events, from the daily ``intensity`` and
    ``event`` of :func:`detect_events` in one pass (no event table).  An event
    counts in the period of its start; its days count in the period of each
    day.  Means over no event are NaN; pixels with ``valid == 0`` (no
    climatology) are NaN throughout.  ``params``: cold (0/1).  The sums are
    those of :func:`event_properties` (same terms, same order), so the
    results equal the block averages of its table."""
    sign = -1.0 if params[0] != 0 else 1.0
    n, p = event.shape
    _summary_start(out, valid)
    current = np.zeros(p, np.int64)
    first_block = np.zeros(p, np.int64)
    count = np.zeros(p)
    total = np.zeros(p)
    top = np.zeros(p)
    for t in range(n + 1):
        for j in range(p):
            number = event[t, j] if t < n else 0
            if (number == 0 and current[j] == 0) or valid[j] == 0:
                continue  # outside events (most steps)
            if current[j] > 0 and number != current[j]:
                _summary_add(out, first_block[j], j, count[j], top[j], total[j], sign)
                current[j] = 0
            if number > 0:
                v = intensity[t, j]
                rel = sign * np.float64(v) if v == v else 0.0
                if current[j] != number:
                    current[j] = number
                    first_block[j] = block[t]
                    count[j] = 0.0
                    total[j] = 0.0
                    top[j] = rel
                elif rel > top[j]:
                    top[j] = rel
                count[j] += 1
                total[j] += rel
                out[1, block[t], j] += 1
    _summary_means(out)


@njit(fastmath=False, inline="always")  # caching as OCEANFLOW_NUMBA_CACHE says
def _summary_start(out, valid):
    """:func:`period_summary`'s rows before the first event: NaN for pixels without climatology, 0 elsewhere
    (the largest peak NaN)."""
    for r in range(out.shape[0]):
        for b in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[r, b, j] = np.nan if valid[j] == 0 or r == 4 else 0.0


@njit(fastmath=False, inline="always")  # caching as OCEANFLOW_NUMBA_CACHE says
def _summary_add(out, b, j, count, top, total, sign):
    """Add an event of pixel ``j`` that started in period ``b`` (``count`` steps, peak ``top`` and
    sum ``total`` of its sign-flipped intensities) to :func:`period_summary`'s sums."""
    peak = sign * top
    mean = total / count
    out[0, b, j] += 1
    out[2, b, j] += count
    out[3, b, j] += peak
    largest = out[4, b, j]
    if largest != largest or abs(peak) > abs(largest):
        out[4, b, j] = peak
    out[5, b, j] += sign * mean
    out[6, b, j] += sign * total
    out[7, b, j] += sign * total


@njit(fastmath=False, inline="always")  # caching as OCEANFLOW_NUMBA_CACHE says
def _summary_means(out):
    """:func:`period_summary`'s sums over each period's events divided by their count (NaN without one)."""
    for b in range(out.shape[1]):
        for j in range(out.shape[2]):
            events = out[0, b, j]
            for r in (2, 3, 5, 6):
                out[r, b, j] = out[r, b, j] / events if events > 0 else np.nan
