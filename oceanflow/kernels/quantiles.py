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
* groups of several short keys (``window=``): the runs of ``TILE`` pixels are
  sorted together by a sorting network (the same compare-exchanges on every
  pixel), then the values of each group's runs nearer the quantile's end are
  merged, as far as the quantile (the 32 largest, a power of two, of 220
  values for the 90th percentile of an 11-day window over 20 years), by
  bitonic merges: the same compare-exchanges on every pixel again, no
  per-pixel branch (the largest are taken as the smallest of the negated
  values).

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
>>> grouped_quantiles(x, *keys, none, none, np.array([0.5]), params, 0, np.zeros((1, 1, 1)))
array([[[2.5]]])
"""

from __future__ import annotations

import numpy as np

from ._declare import gufunc, njit

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

#: Pixels transposed at once into the scratch series.
TILE = 16


def quantile_params(method: str, min_count: int, run_length: int = 0) -> np.ndarray:
    """The ``params`` array of :func:`grouped_quantiles`: (code, alpha, beta,
    min_count, run length: 0 to select in gathered values, else the padded
    length of the sorted runs of keys)."""
    code, alpha, beta = METHODS[method]
    return np.array([code, alpha, beta, min_count, run_length], np.float64)


@njit(fastmath=False)
def _select(a, lo, hi, k):
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


@njit(fastmath=False, inline="always")
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
def _quantiles_of(buf, n, qs, order, code, alpha, beta, out, g, p):
    """Quantiles of the ``n`` values in ``buf`` (reordered) into ``out[:, g, p]``;
    ``order`` lists the quantiles in increasing ``q``."""
    done = 0  # buf[:done] holds the smallest values, in place
    for r in range(qs.shape[0]):
        k = order[r]
        i, gamma = _position(n, qs[k], code, alpha, beta)
        _select(buf, done, n, i)
        done = i
        a = b = buf[i]
        if gamma >= 0:
            b = buf[i + 1]
            for j in range(i + 2, n):  # the next order statistic: the least of the rest
                if buf[j] < b:
                    b = buf[j]
        _lerp_into(out, k, g, p, a, b, gamma)


@njit(fastmath=False)
def _sorted_runs(x, steps, key_starts, key_stops, lo, hi, first, width, runs, count, sign):
    """Each key's values of pixels ``first .. first + width``, times ``sign`` (1 or
    -1: negated, the largest come first), into ``runs[key, position, lane]`` (NaN
    and padding as +inf), sorted along positions by the network ``lo``/``hi`` on
    all lanes at once; ``count[key, lane]``: valid values."""
    length = runs.shape[1]
    for k in range(key_starts.shape[0]):
        c = count[k]
        for j in range(TILE):
            c[j] = 0
        size = key_stops[k] - key_starts[k]
        for pos in range(length):
            r = runs[k, pos]
            if pos < size:
                row = x[steps[key_starts[k] + pos]]
                for j in range(width):
                    v = row[first + j]
                    valid = v == v
                    r[j] = v * sign if valid else np.inf
                    c[j] += valid
                for j in range(width, TILE):
                    r[j] = np.inf
            else:
                for j in range(TILE):
                    r[j] = np.inf
        run = runs[k]
        for i in range(lo.shape[0]):
            a = run[lo[i]]
            b = run[hi[i]]
            for j in range(TILE):
                u, w = a[j], b[j]
                a[j] = u if u < w else w
                b[j] = w if u < w else u


@njit(fastmath=False)
def _smallest_lanes(runs, keys, lo, hi, depth, acc, spare):
    """For every lane at once: the ``depth`` smallest values of the sorted runs of
    the keys ``keys[lo:hi]`` (padding +inf), in increasing order, in the buffer
    returned (``acc`` or ``spare``).  ``depth`` is a power of two.  Each run's
    ``depth`` smallest values are merged into the ``depth`` kept so far by
    taking the lesser of kept ``i`` and the run's ``depth - 1 - i``-th (a
    bitonic sequence holding the ``depth`` smallest of both), then sorting it
    by a bitonic half-cleaner network: the same compare-exchanges on every
    lane, no per-lane branch."""
    length = runs.shape[1]
    k = keys[lo]
    for i in range(depth):
        if i < length:
            for j in range(TILE):
                acc[i, j] = runs[k, i, j]
        else:
            for j in range(TILE):
                acc[i, j] = np.inf
    for h in range(lo + 1, hi):  # (2-D indexing throughout: row views cost numba a reference count each)
        k = keys[h]
        for i in range(depth):
            r = depth - 1 - i
            if r < length:
                for j in range(TILE):
                    u, w = acc[i, j], runs[k, r, j]
                    spare[i, j] = u if u < w else w
            else:
                for j in range(TILE):
                    spare[i, j] = acc[i, j]
        half = depth >> 1
        while half >= 1:  # bitonic half-cleaners: spare becomes sorted
            for block in range(0, depth, 2 * half):
                for i in range(block, block + half):
                    for j in range(TILE):
                        u, w = spare[i, j], spare[i + half, j]
                        spare[i, j] = u if u < w else w
                        spare[i + half, j] = w if u < w else u
            half >>= 1
        acc, spare = spare, acc
    return acc


@njit(fastmath=False)
def _lanes(x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, qs, params, start, out):
    """:func:`grouped_quantiles` on ``TILE`` pixels at once: sorted runs of keys
    built for all of them by one sorting network, then each group's extreme
    values merged for all of them in step (:func:`_smallest_lanes`)."""
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    ngroups, npix, nkeys, length = out.shape[1], out.shape[2], key_starts.shape[0], int(params[4])
    widest = 1
    for g in range(ngroups):
        widest = max(widest, (group_stops[g] - group_starts[g]) * length)
    deepest = 1
    while deepest < widest:
        deepest <<= 1
    need_up = need_down = False
    for r in range(qs.shape[0]):
        if qs[r] <= 0.5:
            need_up = True
        else:
            need_down = True
    # runs of the values (quantiles from the bottom) and of their negatives (from the top)
    up_runs = np.empty((nkeys if need_up else 0, length, TILE), x.dtype)
    down_runs = np.empty((nkeys if need_down else 0, length, TILE), x.dtype)
    count = np.empty((nkeys, TILE), np.int64)
    acc = np.empty((deepest, TILE), x.dtype)
    spare = np.empty((deepest, TILE), x.dtype)
    one = x.dtype.type(1)
    low, high = np.empty(TILE, x.dtype), np.empty(TILE, x.dtype)
    index, total = np.empty(TILE, np.int64), np.empty(TILE, np.int64)
    gamma = np.empty(TILE, np.float64)
    tile = np.empty((x.shape[0], TILE), x.dtype)
    for p0 in range(0, npix, TILE):
        width = min(TILE, npix - p0)
        for t in range(x.shape[0]):  # the tile's series first, read in order: the keys' steps jump a year
            row = x[t]
            for j in range(width):
                tile[t, j] = row[start + p0 + j]
        if need_up:
            _sorted_runs(tile, steps, key_starts, key_stops, lo, hi, 0, width, up_runs, count, one)
        if need_down:
            _sorted_runs(tile, steps, key_starts, key_stops, lo, hi, 0, width, down_runs, count, -one)
        for g in range(ngroups):
            first, last = group_starts[g], group_stops[g]
            for j in range(TILE):
                total[j] = 0
                for h in range(first, last):
                    total[j] += count[keys[h], j]
            for r in range(qs.shape[0]):
                up = qs[r] <= 0.5
                need = 1
                for j in range(TILE):
                    if total[j] > 0:
                        index[j], gamma[j] = _position(total[j], qs[r], code, alpha, beta)
                    else:
                        index[j], gamma[j] = 0, -1.0
                    need = max(need, min(index[j] + 2, total[j]) if up else total[j] - index[j])
                depth = 1
                while depth < need:
                    depth <<= 1
                found = _smallest_lanes(up_runs if up else down_runs, keys, first, last, depth, acc, spare)
                for j in range(width):
                    # the index-th smallest and the next: from the bottom, or counted from the top (negated)
                    if up:
                        low[j] = found[min(index[j], depth - 1), j]
                        high[j] = found[min(index[j] + 1, depth - 1), j]
                    else:
                        low[j] = -found[min(max(total[j] - 1 - index[j], 0), depth - 1), j]
                        high[j] = -found[min(max(total[j] - 2 - index[j], 0), depth - 1), j]
                    if total[j] < min_count:
                        out[r, g, p0 + j] = np.nan
                    else:
                        _lerp_into(out, r, g, p0 + j, low[j], high[j], gamma[j])


@gufunc(
    "(t,p),(e),(h),(h),(f),(g),(g),(c),(c),(k),(r),(),(k,g,m)->(k,g,m)",
    "void({t}[:, ::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], "
    "int64[::1], float64[::1], float64[::1], int64, float64[:, :, :], {t}[:, :, :])",
    fastmath=False,  # NumPy's virtual index n * q - 1, not a fused multiply-add
)
def grouped_quantiles(
    x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, qs, params, start, shape, out
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
    values of ``TILE`` pixels are sorted at once by the sorting network
    ``lo``/``hi`` (:func:`sorting_network`) and each group's quantiles found
    by bitonic merges of its keys' runs from the nearer end, all pixels in
    step, as far as the quantile (the 90th percentile of an 11-day window
    needs the 32 largest of 220 values).  Without,
    each pixel's values are gathered per key and the quantiles selected in
    place (groups of one key: each value is touched once).
    """
    if params[4] > 0:
        _lanes(x, steps, key_starts, key_stops, keys, group_starts, group_stops, lo, hi, qs, params, start, out)
        return
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    ntime, ngroups, npix, nkeys = x.shape[0], out.shape[1], out.shape[2], key_starts.shape[0]
    order = np.argsort(qs)
    vals = np.empty(steps.shape[0], x.dtype)
    longest = 1
    for g in range(ngroups):
        pooled = 0
        for h in range(group_starts[g], group_stops[g]):
            pooled += key_stops[keys[h]] - key_starts[keys[h]]
        longest = max(longest, pooled)
    buf = np.empty(longest, x.dtype)
    first = np.empty(nkeys, np.int64)
    count = np.empty(nkeys, np.int64)
    series = np.empty((TILE, ntime), x.dtype)
    for p0 in range(0, npix, TILE):
        width = min(TILE, npix - p0)
        for t in range(ntime):  # transpose a tile: each pixel's series contiguous
            row = x[t]
            for j in range(width):
                series[j, t] = row[start + p0 + j]
        for j in range(width):
            s = series[j]
            n = 0
            for k in range(nkeys):  # every value once, into its key's run
                first[k] = n
                for e in range(key_starts[k], key_stops[k]):
                    v = s[steps[e]]
                    if v == v:
                        vals[n] = v
                        n += 1
                count[k] = n - first[k]
            for g in range(ngroups):
                lo_key, hi_key = group_starts[g], group_stops[g]
                n = 0
                for h in range(lo_key, hi_key):
                    k = keys[h]
                    if hi_key - lo_key > 1:  # several keys: gather them
                        buf[n : n + count[k]] = vals[first[k] : first[k] + count[k]]
                    n += count[k]
                if n < min_count:
                    for r in range(qs.shape[0]):
                        out[r, g, p0 + j] = np.nan
                elif hi_key - lo_key == 1:  # one key: select in its run
                    k = keys[lo_key]
                    _quantiles_of(vals[first[k] : first[k] + n], n, qs, order, code, alpha, beta, out, g, p0 + j)
                else:
                    _quantiles_of(buf, n, qs, order, code, alpha, beta, out, g, p0 + j)


def sorting_network(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Comparators (lower, upper index) of Batcher's odd-even merge sort of ``n`` values."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            j = k % p
            while j + k < n:
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
                j += 2 * k
            k //= 2
        p *= 2
    table = np.array(pairs, np.int64).reshape(-1, 2)
    return np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1])
