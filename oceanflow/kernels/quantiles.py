"""Exact grouped quantiles of C-ordered (time, pixels) blocks, NumPy's methods.

:func:`grouped_quantiles` pools, for each group ``g`` and pixel, the values
``x[steps[e], p]`` for ``e`` in ``starts[g] .. stops[g]`` (a time step may be
pooled more than once, e.g. by overlapping windows), skips NaN and returns
the quantiles ``qs`` of the pooled values as ``np.nanquantile(pooled, qs,
method=...)`` does, to rounding.  The steps of each group are pixel-
independent (built once per climatology, see
:mod:`oceanflow.climatology.pooling`), so the kernel only gathers and selects:
a pixel tile is transposed into a small scratch series (contiguous in time),
then each group's values are gathered and the needed order statistics found
by quickselect (expected linear time), never by a full sort.

Methods are NumPy's (Hyndman and Fan 1996 types 1-9 and NumPy's four
discontinuous variants of type 7); :data:`METHODS` maps each name to the
numbers the kernel takes.

Example
-------
>>> x = np.array([[1.0], [4.0], [2.0], [np.nan], [3.0]])
>>> steps, starts, stops = np.arange(5), np.array([0]), np.array([5])
>>> params = quantile_params("linear", min_count=1)
>>> grouped_quantiles(x, steps, starts, stops, np.array([0.5]), params, 0, np.zeros((1, 1, 1)))
array([[[2.5]]])
"""

from __future__ import annotations

import numba
import numpy as np

from ._declare import gufunc

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


def quantile_params(method: str, min_count: int) -> np.ndarray:
    """The ``params`` array of :func:`grouped_quantiles`: (code, alpha, beta, min_count)."""
    code, alpha, beta = METHODS[method]
    return np.array([code, alpha, beta, min_count], np.float64)


@numba.njit(cache=True)
def _select(a, lo, hi, k):
    """Partially order ``a[lo:hi]`` so that ``a[k]`` is its k-th smallest value,
    nothing before it larger, nothing after it smaller (Hoare's quickselect)."""
    hi -= 1
    while hi - lo > 16:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return
    for i in range(lo + 1, hi + 1):  # insertion sort of the last few
        v = a[i]
        j = i - 1
        while j >= lo and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@numba.njit(cache=True)
def _round_half_even(v):
    r = np.floor(v)
    d = v - r
    if d > 0.5 or (d == 0.5 and r % 2 == 1):
        r += 1.0
    return r


@numba.njit(cache=True)
def _position(n, q, code, alpha, beta):
    """(index of the lower value, weight of the next one) of quantile ``q`` among
    ``n`` sorted values, exactly as NumPy computes them; weight -1: no interpolation."""
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
    if v >= n - 1:
        return n - 1, -1.0
    if v < 0:
        return 0, -1.0
    i = np.floor(v)
    gamma = v - i
    if code == _AVERAGED_INVERTED_CDF:
        gamma = 0.5 if gamma == 0 else 1.0
    elif code == _MIDPOINT:
        gamma = 0.0 if v % 1 == 0 else 0.5
    return int(i), gamma


@numba.njit(cache=True)
def _quantiles_of(buf, n, qs, order, code, alpha, beta, out, g, p):
    """Quantiles of the ``n`` values in ``buf`` (reordered) into ``out[:, g, p]``;
    ``order`` lists the quantiles in increasing ``q``."""
    done = 0  # buf[:done] holds the smallest values, in place
    for r in range(qs.shape[0]):
        k = order[r]
        i, gamma = _position(n, qs[k], code, alpha, beta)
        _select(buf, done, n, i)
        done = i
        a = buf[i]
        if gamma < 0 or i + 1 >= n:
            out[k, g, p] = a
            continue
        b = buf[i + 1]
        for j in range(i + 2, n):  # the next order statistic: the least of the rest
            if buf[j] < b:
                b = buf[j]
        diff = b - a
        if gamma >= 0.5:  # NumPy's lerp, exact at both ends
            out[k, g, p] = b - diff * (1 - gamma)
        else:
            out[k, g, p] = a + diff * gamma


@gufunc(
    "(t,p),(e),(g),(g),(k),(r),(),(k,g,m)->(k,g,m)",
    "void({t}[:, ::1], int64[::1], int64[::1], int64[::1], float64[::1], float64[::1], int64, "
    "float64[:, :, :], {t}[:, :, :])",
    fastmath=False,  # NumPy's virtual index n * q - 1, not a fused multiply-add
)
def grouped_quantiles(x, steps, starts, stops, qs, params, start, shape, out):
    """Quantiles ``qs`` of each group's pooled values, pixels ``start .. start + m``.

    ``params``: (method code, alpha, beta, min_count) from :func:`quantile_params`;
    ``shape`` (any values, e.g. a broadcast zero) gives the output's shape.  A
    group with fewer than ``max(min_count, 1)`` valid values is NaN.
    """
    code, alpha, beta = int(params[0]), params[1], params[2]
    min_count = max(params[3], 1.0)
    ntime, ngroups, npix = x.shape[0], out.shape[1], out.shape[2]
    order = np.argsort(qs)
    longest = 1
    for g in range(ngroups):
        longest = max(longest, stops[g] - starts[g])
    buf = np.empty(longest, x.dtype)
    series = np.empty((TILE, ntime), x.dtype)
    for p0 in range(0, npix, TILE):
        width = min(TILE, npix - p0)
        for t in range(ntime):  # transpose a tile: each pixel's series contiguous
            row = x[t]
            for j in range(width):
                series[j, t] = row[start + p0 + j]
        for j in range(width):
            s = series[j]
            for g in range(ngroups):
                n = 0
                for e in range(starts[g], stops[g]):
                    v = s[steps[e]]
                    if v == v:
                        buf[n] = v
                        n += 1
                if n < min_count:
                    for k in range(qs.shape[0]):
                        out[k, g, p0 + j] = np.nan
                else:
                    _quantiles_of(buf, n, qs, order, code, alpha, beta, out, g, p0 + j)
