"""Exact grouped quantiles of C-ordered (time, pixels) blocks, NumPy's methods.

:func:`grouped_quantiles` pools, for each group ``g`` and pixel, the values of
the time steps of its *keys* (see :mod:`oceanflow.climatology.pooling`: with
a running window, the steps pooled by the same groups), skips NaN and returns
the quantiles ``qs`` as ``np.nanquantile(pooled, qs, method=...)`` does, to
rounding (infinities included).  The keys and groups are pixel-independent,
built once per climatology, so the kernel only gathers and selects, never
sorts a group's values whole:

* groups of one key (no window): each pixel's values are gathered into their
  key's run once and the needed order statistics selected there by
  quickselect (expected linear time);
* groups of several short keys (``window=``): the keys' values of ``LANES``
  pixels are loaded into scratch slots (a pixel per column) and sorted down
  the columns by a sorting network, then merged, as far as the quantile (the
  32 largest, a power of two, of 220 values for the 90th percentile of an
  11-day window over 20 years), by bitonic merges, as a plan computed once
  says (:func:`~oceanflow.kernels.sorting.merge_plan`: the merges of prefixes and suffixes of runs of
  keys are shared by neighbouring days, about 3 merges a day instead of 10).
  Every compare-exchange is a loop along a row of one array, the same on
  every pixel, no per-pixel branch; LLVM vectorises it (the largest are
  taken as the smallest of the negated values).

Methods are NumPy's (Hyndman and Fan 1996 types 1-9 and NumPy's four
discontinuous variants of type 7); :data:`METHODS` maps each name to the
numbers the kernel takes.

Example
-------
>>> x = np.array([[1.0], [4.0], [2.0], [np.nan], [3.0]])
>>> one = np.array([0])
>>> keys = (np.arange(5), one, np.array([5]), one, one, np.array([1]))
>>> none = np.zeros(0, np.int64)
>>> params = quantile_params("linear", min_count=1)
>>> no_plan = np.zeros((0, 4), np.int64)
>>> grouped_quantiles(x, *keys, none, none, no_plan, np.array([0.5]), params, 0, np.zeros((1, 1, 1)))
array([[[2.5]]])
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from ._declare import gufunc, njit
from .sorting import LOAD, MERGE, compare_exchange, load_sorted, merge_smallest, sorting_network

_ONE, _THREE = np.uint64(1), np.uint64(3)  # uint64 operands: a mix with int64 would be float64 in numba
_LITTLE_ENDIAN = sys.byteorder == "little"

# de Bruijn sequence B(2, 6): the top 6 bits of ``_DE_BRUIJN << i`` differ for every i in 0 .. 63
_DE_BRUIJN, _TOP_SIX = np.uint64(0x03F79D71B4CB0A89), np.uint64(58)
_BIT_OF = np.zeros(64, np.uint8)
_BIT_OF[[((0x03F79D71B4CB0A89 << i) % 2**64) >> 58 for i in range(64)]] = np.arange(64)


@njit(inline="always")
def trailing_zeros(word):
    """The number of trailing zero bits of a nonzero uint64 ``word``: its lowest set bit isolated
    (``word & -word``) and named by de Bruijn multiplication (Leiserson, Prokop and Randall 1998).

    >>> int(trailing_zeros(np.uint64(0b101000)))
    3
    """
    return _BIT_OF[((word & (~word + _ONE)) * _DE_BRUIJN) >> _TOP_SIX]


# method codes: continuous (virtual index, then linear interpolation) or discrete
_LINEAR, _ALPHA_BETA, _AVERAGED_INVERTED_CDF, _MIDPOINT = 0, 1, 2, 3
_INVERTED_CDF, _CLOSEST_OBSERVATION, _LOWER, _HIGHER, _NEAREST = 4, 5, 6, 7, 8

#: NumPy's quantile methods: name -> (code, alpha, beta) of the kernel.
METHODS = {
    "inverted_cdf": (_INVERTED_CDF, 0.0, 0.0),
    "averaged_inverted_cdf": (_AVERAGED_INVERTED_CDF, 0.0, 0.0),
    "closest_observation": (_CLOSEST_OBSERVATION, 0.0, 0.0),
    "interpolated_inverted_cdf": (_ALPHA_BETA, 0.0, 1.0),
    "hazen": (_ALPHA_BETA, 0.5, 0.5),
    "weibull": (_ALPHA_BETA, 0.0, 0.0),
    "linear": (_LINEAR, 1.0, 1.0),
    "median_unbiased": (_ALPHA_BETA, 1 / 3.0, 1 / 3.0),
    "normal_unbiased": (_ALPHA_BETA, 3 / 8.0, 3 / 8.0),
    "lower": (_LOWER, 0.0, 0.0),
    "higher": (_HIGHER, 0.0, 0.0),
    "midpoint": (_MIDPOINT, 0.0, 0.0),
    "nearest": (_NEAREST, 0.0, 0.0),
}

#: Pixels transposed at once into the scratch series (selection).
TILE = 16

#: Pixels merged at once (``window=``): the columns of the scratch slots.
LANES = 256


def quantile_params(method: str, min_count: int, run_length: int = 0) -> np.ndarray:
    """The ``params`` array of :func:`grouped_quantiles`: (code, alpha, beta,
    min_count, run length: 0 to select in gathered values, else the padded
    length of the sorted runs of keys)."""
    code, alpha, beta = METHODS[method]
    return np.array([code, alpha, beta, min_count, run_length], np.float64)


@njit(fastmath=False)
def select_kth(a, lo, hi, k):
    """Partially order ``a[lo:hi]`` so that ``a[k]`` is its k-th smallest value,
    nothing before it larger, nothing after it smaller: quickselect with
    branch-free (Lomuto) partitions, so that random data cost no mispredicted
    branches; values equal to the pivot are gathered in a second pass when
    none is smaller (progress on repeated values)."""
    while hi - lo > 24:
        mid = (lo + hi) >> 1
        x, y, z = a[lo], a[mid], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))  # median of three
        i = lo
        for j in range(lo, hi):
            v = a[j]
            a[j] = a[i]
            a[i] = v
            i += v < pivot
        if k < i:
            hi = i
            continue
        if i > lo:  # the smaller ones set aside: progress
            lo = i
            continue
        e = i  # nothing smaller than the pivot: gather its equals (there is one at least)
        for j in range(i, hi):
            v = a[j]
            a[j] = a[e]
            a[e] = v
            e += v == pivot
        if k < e:
            return
        lo = e
    for i in range(lo + 1, hi):  # insertion sort of the last few
        v = a[i]
        j = i - 1
        while j >= lo and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(fastmath=False, inline="always")
def _round_half_even(v):
    r = np.floor(v)
    d = v - r
    if d > 0.5 or (d == 0.5 and r % 2 == 1):
        r += 1.0
    return r


@njit(fastmath=False)
def _position(n, q, code, alpha, beta):
    """(index of the lower value, weight of the next one) of quantile ``q`` among
    ``n`` sorted values, exactly as NumPy computes them; weight -1: that value
    alone (discrete methods), -2: that value interpolated with itself (beyond
    the ends)."""
    if code >= _INVERTED_CDF:  # discrete: one order statistic
        if code == _LOWER:
            i = np.floor((n - 1) * q)
        elif code == _HIGHER:
            i = np.ceil((n - 1) * q)
        elif code == _NEAREST:
            i = _round_half_even((n - 1) * q)
        else:
            v = n * q - 1 if code == _INVERTED_CDF else n * q - 1 - 0.5
            i = np.floor(v)
            gamma = v - i
            keep = gamma == 0 if code == _INVERTED_CDF else gamma == 0 and i % 2 == 1
            if not keep:
                i += 1.0
            i = max(i, 0.0)
        return int(min(max(i, 0.0), n - 1.0)), -1.0
    if code == _LINEAR:
        v = (n - 1) * q
    elif code == _MIDPOINT:
        v = 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q))
    elif code == _AVERAGED_INVERTED_CDF:
        v = n * q - 1
    else:
        v = n * q + (alpha + q * (1 - alpha - beta)) - 1
    if v >= n - 1:  # NumPy interpolates the end value with itself (NaN for an infinity)
        return n - 1, -2.0
    if v < 0:
        return 0, -2.0
    i = np.floor(v)
    gamma = v - i
    if code == _AVERAGED_INVERTED_CDF:
        gamma = 0.5 if gamma == 0 else 1.0
    elif code == _MIDPOINT:
        gamma = 0.0 if v % 1 == 0 else 0.5
    return int(i), gamma


@njit(fastmath=False, inline="always")
def _lerp_into(out, k, g, p, a, b, gamma):
    """``out[k, g, p]``: NumPy's interpolation of ``a`` and ``b`` (see :func:`_position`)."""
    if gamma == -1:
        out[k, g, p] = a
        return
    if gamma == -2:
        out[k, g, p] = a + (a - a)
        return
    diff = b - a
    if gamma >= 0.5:  # NumPy's lerp, exact at both ends
        out[k, g, p] = b - diff * (1 - gamma)
    else:
        out[k, g, p] = a + diff * gamma


@njit(fastmath=False)
def _quantiles_of(buf, first, n, qs, order, code, alpha, beta, out, g, p):
    """Quantiles of the ``n`` values ``buf[first:first + n]`` (reordered) into
    ``out[:, g, p]``; ``order`` lists the quantiles in increasing ``q``."""
    done = first  # buf[first:done] holds the smallest values, in place
    for r in range(qs.shape[0]):
        k = order[r]
        i, gamma = _position(n, qs[k], code, alpha, beta)
        i += first
        select_kth(buf, done, first + n, i)
        done = i
        a = b = buf[i]
        if gamma >= 0:
            b = buf[i + 1]
            for j in range(i + 2, first + n):  # the next order statistic: the least of the rest
                if buf[j] < b:
                    b = buf[j]
        _lerp_into(out, k, g, p, a, b, gamma)


@njit(fastmath=False)
def _emit(s, base, depth, up, total, g, qs, code, alpha, beta, min_count, out, first_out, width):
    """The quantiles of one side (``up``: q <= 0.5, from the smallest; else
    from the largest, negated) of group ``g`` from its ``depth`` smallest
    values in rows ``base ..`` of ``s`` (base -1: no values), ``total``
    valid values per column, into ``out[:, g, first_out ..]``."""
    for r in range(qs.shape[0]):
        if (qs[r] <= 0.5) != up:
            continue
        last_total, index, gamma = -1, 0, -1.0
        for j in range(width):
            n = total[j]
            if n < min_count or base < 0:
                out[r, g, first_out + j] = np.nan
                continue
            if n != last_total:  # most columns have as many values: one position
                index, gamma = _position(n, qs[r], code, alpha, beta)
                last_total = n
            if up:
                low = s[base + min(index, depth - 1), j]
                high = s[base + min(index + 1, depth - 1), j]
            else:  # the index-th smallest counted from the top
                low = -s[base + min(max(n - 1 - index, 0), depth - 1), j]
                high = -s[base + min(max(n - 2 - index, 0), depth - 1), j]
            _lerp_into(out, r, g, first_out + j, low, high, gamma)


@njit(fastmath=False)
def _depth(sizes, keys, group_starts, group_stops, qs, code, alpha, beta, up):
    """The power of two of values a group's merges keep on one side: enough for
    the order statistics that side reads at any number of valid values; 0
    when no quantile is on that side."""
    most = 0
    for g in range(group_starts.shape[0]):
        n = 0
        for h in range(group_starts[g], group_stops[g]):
            n += sizes[keys[h]]
        most = max(most, n)
    need = 0
    for r in range(qs.shape[0]):
        if (qs[r] <= 0.5) != up:
            continue
        need = max(need, 1)
        for valid in range(1, most + 1):
            i, _ = _position(valid, qs[r], code, alpha, beta)
            need = max(need, min(i + 2, valid) if up else valid - i)
    depth = 1 if need > 0 else 0
    while depth < need:
        depth <<= 1
    return depth


@njit(fastmath=False)
def _merged_lanes(
    x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, ops, qs, params, start, out
):
    """:func:`grouped_quantiles` with a merge plan (:func:`~oceanflow.kernels.sorting.merge_plan`), ``LANES``
    pixels at once: every key's values loaded and sorted down the columns of
    a scratch slot, slots merged as the plan says keeping the ``depth``
    smallest (from the bottom for q <= 0.5, of the negated values from the top
    otherwise), each group's quantiles read from its slot."""
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    npix, nkeys, length = out.shape[2], key_starts.shape[0], int(params[4])
    sizes = key_stops - key_starts
    nslots = 1
    for o in range(ops.shape[0]):
        nslots = max(nslots, ops[o, 1] + 1)
    count = np.empty((nkeys, LANES), np.int32)
    total = np.empty(LANES, np.int64)
    one = x.dtype.type(1)
    for side in range(2):
        up = side == 0
        depth = _depth(sizes, keys, group_starts, group_stops, qs, code, alpha, beta, up)
        if depth == 0:
            continue
        rows = max(depth, length)
        s = np.empty((nslots * rows, LANES), x.dtype)
        for p0 in range(0, npix, LANES):
            width = min(LANES, npix - p0)
            for o in range(ops.shape[0]):
                kind, slot, a, b = ops[o, 0], ops[o, 1], ops[o, 2], ops[o, 3]
                if kind == LOAD:
                    sign = one if up else -one
                    load_sorted(
                        x,
                        steps,
                        key_starts[a],
                        key_stops[a],
                        lo,
                        hi,
                        s,
                        slot * rows,
                        rows,
                        width,
                        start + p0,
                        sign,
                        count,
                        a,
                        None,
                        1.0,
                    )
                elif kind == MERGE:
                    merge_smallest(s, slot * rows, a * rows, b * rows, depth)
                else:
                    for j in range(LANES):
                        total[j] = 0
                    for h in range(group_starts[a], group_stops[a]):
                        k = keys[h]
                        for j in range(LANES):
                            total[j] += count[k, j]
                    _emit(
                        s,
                        slot * rows if slot >= 0 else -1,
                        depth,
                        up,
                        total,
                        a,
                        qs,
                        code,
                        alpha,
                        beta,
                        min_count,
                        out,
                        p0,
                        width,
                    )


@gufunc(
    "(t,p),(e),(h),(h),(f),(g),(g),(c),(c),(o,s),(k),(r),(),(k,g,m)->(k,g,m)",
    "void({t}[:, ::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], "
    "int64[::1], int64[:, ::1], float64[::1], float64[::1], int64, float64[:, :, :], {t}[:, :, :])",
    fastmath=False,  # NumPy's virtual index n * q - 1, not a fused multiply-add
)
def grouped_quantiles(
    x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, ops, qs, params, start, shape, out
):
    """Quantiles ``qs`` of each group's pooled values, pixels ``start .. start + m``.

    Steps are pooled by *key* (the time steps pooled by the same groups):
    ``steps[key_starts[k]:key_stops[k]]`` are key ``k``'s, and group ``g``
    pools the keys ``keys[group_starts[g]:group_stops[g]]`` (a key listed
    twice counts twice).  ``params``: (method code, alpha, beta, min_count,
    run length) from :func:`quantile_params`; ``shape`` (any values, e.g. a
    broadcast zero) gives the output's shape.  A group with fewer than
    ``max(min_count, 1)`` valid values is NaN.

    With a run length (``window=``: groups of several short keys), the keys'
    values of ``LANES`` pixels are sorted at once by the sorting network
    ``lo``/``hi`` (:func:`~oceanflow.kernels.sorting.sorting_network`) and merged as the plan ``ops``
    (:func:`~oceanflow.kernels.sorting.merge_plan`) says, all pixels in step, from the nearer end and as
    far as the quantile (the 90th percentile of an 11-day window needs the 32
    largest of 220 values).  Without, each pixel's values are gathered per
    key and the quantiles selected in place (groups of one key: each value is
    touched once); ``ops`` is then unused.
    """
    if params[4] > 0:
        _merged_lanes(
            x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, ops, qs, params, start, out
        )
        return
    _selected(x, steps, key_starts, key_stops, keys, group_starts, group_stops, qs, params, start, out)


@njit(fastmath=False)
def _selected(x, steps, key_starts, key_stops, keys, group_starts, group_stops, qs, params, start, out):
    """:func:`grouped_quantiles` without a run length: the values of ``TILE``
    pixels copied once, key by key, each pixel's contiguous (NaN as +inf, after
    the valid values once ordered), then the quantiles selected in place."""
    if start < 0:  # (never: tells LLVM the columns read are start + j, contiguous)
        return
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    ngroups, npix, nkeys = out.shape[1], out.shape[2], key_starts.shape[0]
    order = np.arange(qs.shape[0])  # the quantiles in increasing q (an insertion sort: cheap to compile)
    for r in range(1, order.shape[0]):
        o, i = order[r], r - 1
        while i >= 0 and qs[order[i]] > qs[o]:
            order[i + 1] = order[i]
            i -= 1
        order[i + 1] = o
    longest = 1
    for g in range(ngroups):
        pooled = 0
        for h in range(group_starts[g], group_stops[g]):
            pooled += key_stops[keys[h]] - key_starts[keys[h]]
        longest = max(longest, pooled)
    buf = np.empty(longest, x.dtype)
    vals = np.empty(steps.shape[0], x.dtype)
    first = np.empty(nkeys, np.int64)
    count = np.empty(nkeys, np.int64)
    series = np.empty((TILE, x.shape[0]), x.dtype)
    for p0 in range(0, npix, TILE):
        width, first_pixel = min(TILE, npix - p0), start + p0
        for t in range(x.shape[0]):  # transpose a tile: each pixel's series contiguous
            for j in range(width):
                series[j, t] = x[t, first_pixel + j]
        for j in range(width):
            n = 0
            for k in range(nkeys):  # every value once, into its key's run
                first[k] = n
                for e in range(key_starts[k], key_stops[k]):
                    v = series[j, steps[e]]
                    if v == v:
                        vals[n] = v
                        n += 1
                count[k] = n - first[k]
            for g in range(ngroups):
                lo_key, hi_key = group_starts[g], group_stops[g]
                n = np.int64(0)  # (not the literal 0: the helpers below compile once)
                for h in range(lo_key, hi_key):
                    k = keys[h]
                    if hi_key - lo_key > 1:  # several keys: gather them
                        for e in range(first[k], first[k] + count[k]):
                            buf[n] = vals[e]
                            n += 1
                    else:
                        n += count[k]
                if n < min_count:
                    for r in range(qs.shape[0]):
                        out[r, g, p0 + j] = np.nan
                elif hi_key - lo_key == 1:  # one key: select in its run
                    k = keys[lo_key]
                    _quantiles_of(vals, first[k], n, qs, order, code, alpha, beta, out, g, p0 + j)
                else:
                    _quantiles_of(buf, np.int64(0), n, qs, order, code, alpha, beta, out, g, p0 + j)


# ---------------------------------------------------------------- streamed selection (groups of many steps)
#
# Without a window and with groups of many steps (months, seasons), the
# order statistics are selected on the time-major blocks themselves, all
# pixels of a range in step, in a few passes over the rows (each row read
# whole, in memory order), instead of gathering each pixel's series:
#
# 1. sample (:func:`stream_thresholds`): ``STREAM_SAMPLE`` evenly spaced
#    steps of each group, sorted down the columns; for each quantile,
#    ``STREAM_THRESHOLDS`` thresholds at sample ranks around the
#    quantile's (``STREAM_SPREAD``);
# 2. count (:func:`stream_count`): per group and pixel, the valid values
#    and the values below each threshold: then the exact rank of every
#    threshold is known, and (:func:`stream_bounds`) the bin between two
#    thresholds that holds the order statistics the quantile reads (the
#    outer bins when the sample missed: slower, never wrong);
# 3. collect (:func:`stream_collect`): the values of that bin, a few per
#    pixel, into a slot each (with one spare, written by the values
#    outside: no branch);
# 4. select (:func:`stream_finish`): the order statistics within the bin (the bins of a tile of
#    pixels sorted together by a sorting network, branch-free).
#
# Exact whatever the sample: the bins only decide how many values step 4
# sorts through.

#: Steps sampled per group to place the thresholds.
STREAM_SAMPLE = 64

#: The thresholds counted per quantile q, at sample ranks from q's, in standard deviations of the
#: sample rank of the order statistic (sqrt(STREAM_SAMPLE q (1 - q)), 4 ranks for the median; at
#: least a rank apart): dense near it (small bins to select in), out to three, so that the outer bins
#: (a large share of a group's values) are rare.
STREAM_SPREAD = np.array([-3.0, -1.5, -0.75, -0.25, 0.25, 0.75, 1.5, 3.0])
STREAM_THRESHOLDS = STREAM_SPREAD.size


@gufunc(
    "(t,p),(i),(i),(),(s,w)->(s,w)",
    "void({t}[:, ::1], int64[::1], int64[::1], int64, {t}[:, :], {t}[:, ::1])",
    fastmath=False,
)
def stream_sample(x, rows, slots, start, shape, out):
    """``out[slots[i], :]``: row ``rows[i]`` of ``x``, pixels ``start ..`` (NaN as +inf); other rows untouched."""
    for i in range(rows.shape[0]):
        t, r = rows[i], slots[i]
        for p in range(out.shape[1]):
            v = x[t, start + p]
            out[r, p] = v if v == v else np.inf


@gufunc(
    "(s,w),(c),(c),(k),(g,r,w)->(g,r,w)",
    "void({t}[:, ::1], int64[::1], int64[::1], float64[::1], {t}[:, :, :], {t}[:, :, ::1])",
    fastmath=False,
)
def stream_thresholds(sample, lo, hi, qs, shape, out):
    """Thresholds ``out[g, r * K + j, :]`` (K = ``STREAM_THRESHOLDS``) of quantile ``qs[r]`` of
    each group ``g`` from its sample (rows ``g * STREAM_SAMPLE ..`` of ``sample``, missing ones
    +inf): the sample sorted down the columns by the network ``lo``/``hi``, then its values at
    ranks around the quantile's rank among its finite values (:func:`_rank_offsets`)."""
    m, width = STREAM_SAMPLE, sample.shape[1]
    s = np.empty((m + 1, width), sample.dtype)  # (and a row of scratch: compare_exchange's)
    for group in range(out.shape[0]):
        _thresholds_of(sample, group, s, lo, hi, qs, out)


@njit(fastmath=False)
def _thresholds_of(sample, group, s, lo, hi, qs, out):
    m, width = STREAM_SAMPLE, s.shape[1]
    for i in range(m):
        for p in range(width):
            s[i, p] = sample[group * m + i, p]
    low = s[m]
    for c in range(lo.shape[0]):
        compare_exchange(s, lo[c], hi[c], low)
    finite = np.zeros(width, np.int64)
    for i in range(m):
        for p in range(width):
            finite[p] += s[i, p] < np.inf
    k = STREAM_THRESHOLDS
    offsets = np.empty(k, np.int64)
    for r in range(qs.shape[0]):
        _rank_offsets(qs[r], m, offsets)
        for p in range(width):
            top = max(finite[p] - 1, 0)
            centre = int(np.floor(qs[r] * top + 0.5))
            for j in range(k):
                rank = centre + offsets[j]
                out[group, r * k + j, p] = s[min(max(rank, 0), top), p]


@njit(fastmath=False)
def _rank_offsets(q, m, offsets):
    """``offsets``: the sample ranks of the thresholds of quantile ``q`` from its own, ``STREAM_SPREAD``
    standard deviations of its sample rank among ``m``, rounded, at least one apart (symmetric)."""
    sigma = np.sqrt(m * q * (1.0 - q))
    half = offsets.shape[0] // 2
    last = 0
    for j in range(half):
        last = max(last + 1, int(np.floor(STREAM_SPREAD[half + j] * sigma + 0.5)))
        offsets[half + j], offsets[half - 1 - j] = last, -last


@gufunc(
    "(t,p),(t),(g,r,w),(),(),(g,c,w)->(g,c,w)",
    "void({t}[:, ::1], int64[::1], {t}[:, :, ::1], int64, int64, int32[:, :, :], int32[:, :, ::1])",
    fastmath=False,
)
def stream_count(x, codes, thresholds, start, reset, shape, counts):
    """Counts (group, 1 + threshold, pixel), added to ``counts`` (zeroed first when ``reset``):
    ``[g, 0]`` the valid values of group ``g`` (``codes[t]``; -1: none), ``[g, 1 + j]`` those
    below threshold ``thresholds[g, j]``; pixels ``start ..`` of ``x``."""
    if start < 0:  # (never: tells LLVM the columns read are start + p, contiguous)
        return
    width = counts.shape[2]
    if reset:
        for g in range(counts.shape[0]):
            for c in range(counts.shape[1]):
                for p in range(width):
                    counts[g, c, p] = 0
    t = 0
    while t < x.shape[0]:
        g = codes[t]
        end = t + 1  # a run of steps of one group (a month's days): counts loaded once per 4 rows
        while end < x.shape[0] and codes[end] == g:
            end += 1
        if g < 0 or g >= counts.shape[0]:
            t = end
            continue
        for j in range(thresholds.shape[1] + 1):
            total = counts[g, j]
            limit = thresholds[g, max(j - 1, 0)]
            s = t
            while s + 4 <= end:
                a, b, c, d = x[s], x[s + 1], x[s + 2], x[s + 3]
                if j == 0:
                    for p in range(width):
                        q = start + p
                        total[p] += (a[q] == a[q]) + (b[q] == b[q]) + (c[q] == c[q]) + (d[q] == d[q])
                else:
                    for p in range(width):
                        q, u = start + p, limit[p]
                        total[p] += (a[q] < u) + (b[q] < u) + (c[q] < u) + (d[q] < u)
                s += 4
            for r in range(s, end):
                a = x[r]
                if j == 0:
                    for p in range(width):
                        total[p] += a[start + p] == a[start + p]
                else:
                    for p in range(width):
                        total[p] += a[start + p] < limit[p]
        t = end


@gufunc(
    "(g,c,w),(g,r,w),(k),(n)->(k,g,w),(k,g,w),(k,g,w),(k,g,w)",
    "void(int32[:, :, ::1], {t}[:, :, ::1], float64[::1], float64[::1], {t}[:, :, ::1], {t}[:, :, ::1], "
    "int64[:, :, ::1], int64[:, :, ::1])",
    fastmath=False,
)
def stream_bounds(counts, thresholds, qs, params, low, high, base, size):
    """For each quantile, group and pixel, the bin of values to collect: ``low <= v < high``
    (``high`` NaN: no upper bound; ``low`` NaN: nothing, too few valid values), the number
    ``base`` of values below it and its ``size``: it holds the order statistics that
    :func:`_position` names at the group's valid count."""
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    k = STREAM_THRESHOLDS
    for r in range(qs.shape[0]):
        for g in range(counts.shape[0]):
            for p in range(counts.shape[2]):
                n = counts[g, 0, p]
                if n < min_count:
                    low[r, g, p] = np.nan
                    high[r, g, p] = np.nan
                    base[r, g, p] = 0
                    size[r, g, p] = 0
                    continue
                i, gamma = _position(n, qs[r], code, alpha, beta)
                last = i + 1 if gamma >= 0 else i
                a = 0  # the bin of rank i: thresholds 1 .. a have at most i values below
                while a < k and counts[g, 1 + r * k + a, p] <= i:
                    a += 1
                b = a  # the bin of rank last
                while b < k and counts[g, 1 + r * k + b, p] <= last:
                    b += 1
                below = counts[g, 1 + r * k + a - 1, p] if a > 0 else 0
                low[r, g, p] = thresholds[g, r * k + a - 1, p] if a > 0 else -np.inf
                high[r, g, p] = thresholds[g, r * k + b, p] if b < k else np.nan
                base[r, g, p] = below
                size[r, g, p] = (counts[g, 1 + r * k + b, p] if b < k else n) - below


@gufunc(
    "(t,p),(t),(k,g,w),(k,g,w),(),(k,g,w),(n)->(k,g,w),(n)",
    "void({t}[:, ::1], int64[::1], {t}[:, :, ::1], {t}[:, :, ::1], int64, int64[:, :, :], {t}[:], "
    "int64[:, :, ::1], {t}[::1])",
    fastmath=False,
)
def stream_collect(x, codes, low, high, start, shape, length, position, values):
    """Each value of group ``codes[t]`` (-1: none) with ``low <= v < high`` (see
    :func:`stream_bounds`) into ``values[position]``, its (quantile, group, pixel)'s next slot
    (``position`` advances).  The hits of four rows of a group are marked at once, in a
    vectorised loop that reads four rows in step (four memory streams: the pass is bound by
    reading the rows), then only the hits are visited, word by word of 8 pixels' marks, by
    their lowest set bit (a few values in a hundred are in the bins: no branch per pixel), 8 at
    most per word (a broken bit step gives wrong values, never an endless loop); the words that
    hold hits are listed first without a branch (a third of the words hold one: a test of each
    word mispredicts often)."""
    if start < 0:  # (never: tells LLVM the columns read are start + p, contiguous)
        return
    width = low.shape[2]
    words = (width + 7) // 8
    hit = np.zeros((4, 8 * words), np.uint8)
    marks = hit.view(np.uint64)
    busy = np.empty(words, np.int64)
    t = 0
    while t < x.shape[0]:
        g = codes[t]
        end = t + 1  # a run of steps of one group (a month's days): read four rows at a time
        while end < x.shape[0] and codes[end] == g:
            end += 1
        if g < 0 or g >= low.shape[1]:
            t = end
            continue
        for r in range(low.shape[0]):
            lo, hi, at = low[r, g], high[r, g], position[r, g]
            for s in range(t, end, 4):
                n = min(4, end - s)
                if n == 4:
                    a, b, c, d = x[s], x[s + 1], x[s + 2], x[s + 3]
                    h0, h1, h2, h3 = hit[0], hit[1], hit[2], hit[3]
                    for p in range(width):
                        q, u, w = start + p, lo[p], hi[p]
                        h0[p] = (a[q] >= u) & ~(a[q] >= w)
                        h1[p] = (b[q] >= u) & ~(b[q] >= w)
                        h2[p] = (c[q] >= u) & ~(c[q] >= w)
                        h3[p] = (d[q] >= u) & ~(d[q] >= w)
                else:
                    for k in range(n):
                        row, h = x[s + k], hit[k]
                        for p in range(width):
                            v = row[start + p]
                            h[p] = (v >= lo[p]) & ~(v >= hi[p])
                for k in range(n):  # in time order: a bin's values in the order of their steps
                    row, m = x[s + k], marks[k]
                    found = 0
                    for i in range(words):  # the words with hits listed first: no branch per word
                        busy[found] = i
                        found += m[i] != 0
                    for e in range(found):
                        i = busy[e]
                        word = m[i]
                        for _ in range(8):  # each hit byte's lowest bit, lowest first: one step per hit, 8 at most
                            if word == 0:
                                break
                            b = int(trailing_zeros(word) >> _THREE)  # the byte of that bit, in memory order
                            p = 8 * i + (b if _LITTLE_ENDIAN else 7 - b)
                            o = at[p]
                            values[o] = row[start + p]
                            at[p] = o + 1
                            word &= word - _ONE
        t = end


#: Bins sorted at once by a sorting network, a pixel per column (:func:`stream_finish`).
FINISH_LANES = 64

#: The networks' sizes: a tile's bins padded to the least that holds them; larger bins by quickselect.
FINISH_SIZES = np.array([8, 16, 24, 32, 48, 64])


@functools.cache
def finish_networks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The comparators (lower, upper) of a sorting network of each of :data:`FINISH_SIZES`, one after
    the other, and where each one's start (``ends[c] .. ends[c + 1]``): :func:`stream_finish`'s."""
    networks = [sorting_network(int(n)) for n in FINISH_SIZES]
    ends = np.cumsum([0] + [lo.size for lo, _ in networks])
    return np.concatenate([lo for lo, _ in networks]), np.concatenate([hi for _, hi in networks]), ends


@gufunc(
    "(n),(k,g,w),(k,g,w),(k,g,w),(g,c,w),(k),(r),(e),(e),(z),(k,g,w)->(k,g,w)",
    "void({t}[::1], int64[:, :, ::1], int64[:, :, ::1], int64[:, :, ::1], int32[:, :, ::1], float64[::1], "
    "float64[::1], int64[::1], int64[::1], int64[::1], {t}[:, :, :], {t}[:, :, :])",
    fastmath=False,
)
def stream_finish(values, first, base, size, counts, qs, params, lo, hi, ends, shape, out):
    """Quantiles ``out[r, g, p]`` from the collected bins: bin (r, g, p) is
    ``values[first:first + size]``, ranks ``base ..`` of the group's ``counts[g, 0, p]`` valid values.
    The bins of :data:`FINISH_LANES` neighbouring pixels are sorted together, a pixel per column of a
    scratch tile padded with +inf, by the network (``lo``/``hi``, :func:`finish_networks`) of the least
    of :data:`FINISH_SIZES` that holds them: every compare-exchange a loop along a row, no branch per
    value; a bin larger than the largest network (the sample missed) by quickselect in place."""
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    largest = FINISH_SIZES[-1]
    s = np.empty((largest + 1, FINISH_LANES), values.dtype)  # (and a row of scratch: compare_exchange's)
    low = s[largest]
    for r in range(qs.shape[0]):
        for g in range(out.shape[1]):
            for p0 in range(0, out.shape[2], FINISH_LANES):
                width = min(FINISH_LANES, out.shape[2] - p0)
                c = _finish_tile(values, first, size, counts, r, g, p0, width, min_count, s)
                for e in range(ends[c], ends[c + 1]):  # the columns sorted by network c
                    compare_exchange(s, lo[e], hi[e], low)
                for j in range(width):
                    p = p0 + j
                    n = counts[g, 0, p]
                    if n < min_count:
                        out[r, g, p] = np.nan
                        continue
                    i, gamma = _position(n, qs[r], code, alpha, beta)
                    at = i - base[r, g, p]
                    if size[r, g, p] > largest:
                        a, b = _select_in_place(values, first[r, g, p], size[r, g, p], at, gamma)
                    else:
                        a = s[at, j]
                        b = s[at + 1, j] if gamma >= 0 else a
                    _lerp_into(out, r, g, p, a, b, gamma)


@njit(fastmath=False)
def _finish_tile(values, first, size, counts, r, g, p0, width, min_count, s):
    """Pixels ``p0 .. p0 + width``'s bins of quantile ``r``, group ``g`` into the columns of ``s``
    (+inf below them; none for a pixel of too few values or a bin too large): the index of the least
    network of :data:`FINISH_SIZES` that holds them."""
    largest = FINISH_SIZES[-1]
    most = 0
    for j in range(width):
        p = p0 + j
        if counts[g, 0, p] >= min_count and size[r, g, p] <= largest:
            most = max(most, size[r, g, p])
    c = 0
    while FINISH_SIZES[c] < most:
        c += 1
    rows = FINISH_SIZES[c]
    for k in range(rows):
        for j in range(FINISH_LANES):
            s[k, j] = np.inf
    for j in range(width):
        p = p0 + j
        m = size[r, g, p]
        if counts[g, 0, p] >= min_count and m <= largest:
            o = first[r, g, p]
            for k in range(m):
                s[k, j] = values[o + k]
    return c


@njit(fastmath=False)
def _select_in_place(values, lo, n, at, gamma):
    """The ``at``-th smallest of ``values[lo:lo + n]`` (reordered) and, when ``gamma >= 0``, the next."""
    at += lo
    select_kth(values, lo, lo + n, at)
    a = b = values[at]
    if gamma >= 0:
        b = values[at + 1]
        for j in range(at + 2, lo + n):
            if values[j] < b:
                b = values[j]
    return a, b
