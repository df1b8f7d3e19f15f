"""Grouped reductions over C-ordered (time, pixels) blocks: chunk, combine, finalize.

Each statistic is one :class:`Aggregation` triple:

* ``chunk(x, codes, weights, init, reset, start, out)``: one pass over the
  pixels ``start .. start + m`` of a block ``x[t, p]`` (``m`` is ``out``'s
  last length; the caller keeps the range inside ``x``), time outer and
  pixels inner (memory order), accumulating into float64 partials
  ``out[q, g, m]`` (quantity, group, pixel) that start at ``init`` (same
  shape; usually a broadcast view of one value per quantity) when ``reset``
  is 1, or at the values already in ``out`` when it is 0
  (folding consecutive time chunks into one partial).  A pixel range of a
  C-ordered block is read in place, so threads and tasks can share one
  block without copying it.  ``codes[t]`` is the group of step ``t`` (-1:
  none) and ``weights[t]`` its weight.  NaN values are skipped.
* ``combine(parts) -> partials``: merges partials stacked as ``[k, q, g, p]``
  (e.g. from k time chunks).
* ``finalize(partials, params) -> result[g, p]``: the statistic, NaN where a
  group has fewer than ``params[0]`` (min_count) valid values; ``params[1]``
  is ``ddof`` for var/std.

Partials are float64 whatever the input (float32 sums keep 7 more digits);
results are in the input's float type.  Adding a statistic means adding one
triple to :data:`AGGREGATIONS`.

Example
-------
>>> x = np.array([[1.0], [2.0], [4.0]])
>>> parts = np.empty((3, 2, 1))
>>> _ = mean_chunk(x, np.array([0, 0, 1]), np.ones(3), np.zeros((3, 2, 1)), 1, 0, out=parts)
>>> mean_finalize.for_dtype("float64")(parts, np.array([1.0, 0.0]))
array([[1.5],
       [4. ]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._declare import Kernel, gufunc, njit

_CHUNK = (
    "(t,p),(t),(t),(q,g,m),(),()->(q,g,m)",
    "void({t}[:, ::1], int64[::1], float64[::1], float64[:, :, :], int64, int64, float64[:, :, ::1])",
)
_COMBINE = ("(k,q,g,p)->(q,g,p)", "void(float64[:, :, :, ::1], float64[:, :, ::1])")
_FINALIZE = ("(q,g,p),(r)->(g,p)", "void(float64[:, :, ::1], float64[::1], {t}[:, ::1])")


@njit(fastmath=False)  # caching as OCEANFLOW_NUMBA_CACHE says
def _start(out, init):
    for q in range(out.shape[0]):
        for g in range(out.shape[1]):
            for p in range(out.shape[2]):
                out[q, g, p] = init[q, g, p]


# ---------------------------------------------------------------- chunk kernels


@gufunc(*_CHUNK)
def count_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        n = out[0, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            n[p] += v == v


@gufunc(*_CHUNK)
def sum_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count, weighted sum."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        w = weights[t]
        n = out[0, g]
        s = out[1, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            valid = v == v
            n[p] += valid
            s[p] += w * v if valid else 0.0


@gufunc(*_CHUNK)
def mean_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count, sum of weights, weighted sum."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        w = weights[t]
        n = out[0, g]
        sw = out[1, g]
        s = out[2, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            valid = v == v
            n[p] += valid
            sw[p] += w if valid else 0.0
            s[p] += w * v if valid else 0.0


@gufunc(*_CHUNK)
def moments_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count, mean, sum of squared deviations (Welford)."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        n = out[0, g]
        m = out[1, g]
        m2 = out[2, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            if v == v:
                n[p] += 1.0
                d = v - m[p]
                m[p] += d / n[p]
                m2[p] += d * (v - m[p])


@gufunc(*_CHUNK)
def min_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count, minimum (init +inf)."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        n = out[0, g]
        lo = out[1, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            n[p] += v == v
            lo[p] = v if v < lo[p] else lo[p]


@gufunc(*_CHUNK)
def max_chunk(x, codes, weights, init, reset, start, out):
    """Partials: valid count, maximum (init -inf)."""
    if reset:
        _start(out, init)
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        n = out[0, g]
        hi = out[1, g]
        for p in range(out.shape[2]):
            v = x[t, start + p]
            n[p] += v == v
            hi[p] = v if v > hi[p] else hi[p]


# ---------------------------------------------------------------- combine kernels


@gufunc(*_COMBINE)
def additive_combine(parts, out):
    """Partials that add up (counts, sums)."""
    out[...] = parts[0]
    for k in range(1, parts.shape[0]):
        for q in range(parts.shape[1]):
            for g in range(parts.shape[2]):
                for p in range(parts.shape[3]):
                    out[q, g, p] += parts[k, q, g, p]


@gufunc(*_COMBINE)
def moments_combine(parts, out):
    """Count, mean, M2 of several chunks (Chan et al. 1979)."""
    out[...] = parts[0]
    for k in range(1, parts.shape[0]):
        for g in range(parts.shape[2]):
            for p in range(parts.shape[3]):
                nb = parts[k, 0, g, p]
                if nb == 0:
                    continue
                na = out[0, g, p]
                n = na + nb
                d = parts[k, 1, g, p] - out[1, g, p]
                out[0, g, p] = n
                out[1, g, p] += d * nb / n
                out[2, g, p] += parts[k, 2, g, p] + d * d * na * nb / n


@gufunc(*_COMBINE)
def min_combine(parts, out):
    """Count adds up; minimum of minima."""
    out[...] = parts[0]
    for k in range(1, parts.shape[0]):
        for g in range(parts.shape[2]):
            for p in range(parts.shape[3]):
                out[0, g, p] += parts[k, 0, g, p]
                out[1, g, p] = min(out[1, g, p], parts[k, 1, g, p])


@gufunc(*_COMBINE)
def max_combine(parts, out):
    """Count adds up; maximum of maxima."""
    out[...] = parts[0]
    for k in range(1, parts.shape[0]):
        for g in range(parts.shape[2]):
            for p in range(parts.shape[3]):
                out[0, g, p] += parts[k, 0, g, p]
                out[1, g, p] = max(out[1, g, p], parts[k, 1, g, p])


# ---------------------------------------------------------------- finalize kernels


@gufunc(*_FINALIZE)
def count_finalize(parts, params, out):
    """Valid count (min_count does not apply)."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            out[g, p] = parts[0, g, p]


@gufunc(*_FINALIZE)
def total_finalize(parts, params, out):
    """Sum where count >= min_count, else NaN (0 for an empty group with min_count 0)."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            out[g, p] = parts[1, g, p] if parts[0, g, p] >= params[0] else np.nan


@gufunc(*_FINALIZE)
def extreme_finalize(parts, params, out):
    """Minimum or maximum where count >= max(min_count, 1), else NaN."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            n = parts[0, g, p]
            out[g, p] = parts[1, g, p] if n >= params[0] and n > 0 else np.nan


@gufunc(*_FINALIZE)
def unweighted_mean_finalize(parts, params, out):
    """Sum / count where count >= max(min_count, 1), else NaN (partials of :func:`sum_chunk`)."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            n = parts[0, g, p]
            out[g, p] = parts[1, g, p] / n if n >= params[0] and n > 0 else np.nan


@gufunc(*_FINALIZE)
def mean_finalize(parts, params, out):
    """Weighted sum / sum of weights where count >= min_count, else NaN."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            ok = parts[0, g, p] >= params[0] and parts[1, g, p] != 0
            out[g, p] = parts[2, g, p] / parts[1, g, p] if ok else np.nan


@gufunc(*_FINALIZE)
def var_finalize(parts, params, out):
    """M2 / (count - ddof) where count >= min_count and count > ddof, else NaN."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            n = parts[0, g, p]
            ok = n >= params[0] and n > params[1]
            out[g, p] = parts[2, g, p] / (n - params[1]) if ok else np.nan


@gufunc(*_FINALIZE)
def std_finalize(parts, params, out):
    """Square root of :func:`var_finalize`."""
    for g in range(parts.shape[1]):
        for p in range(parts.shape[2]):
            n = parts[0, g, p]
            ok = n >= params[0] and n > params[1]
            out[g, p] = np.sqrt(parts[2, g, p] / (n - params[1])) if ok else np.nan


# ---------------------------------------------------------------- anomaly


@gufunc("(t,p),(t),(g,p),(g,p)->(t,p)", "void({t}[:, ::1], int64[::1], {t}[:, ::1], {t}[:, ::1], {t}[:, ::1])")
def grouped_anomaly(x, codes, center, scale, out):
    """out[t, p] = (x[t, p] - center[g, p]) / scale[g, p] with g = codes[t]; NaN where g < 0."""
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= center.shape[0]:
            for p in range(x.shape[1]):
                out[t, p] = np.nan
            continue
        c = center[g]
        s = scale[g]
        for p in range(x.shape[1]):
            out[t, p] = (x[t, p] - c[p]) / s[p]


# ---------------------------------------------------------------- registry


class Aggregation(NamedTuple):
    """One statistic: its kernel triple and the initial value of each partial."""

    chunk: Kernel
    combine: Kernel
    finalize: Kernel
    init: tuple
    weighted: bool


_INF = float("inf")

#: Every statistic ``oceanflow.climatology`` knows, by name.
AGGREGATIONS = {
    "count": Aggregation(count_chunk, additive_combine, count_finalize, (0.0,), False),
    "sum": Aggregation(sum_chunk, additive_combine, total_finalize, (0.0, 0.0), True),
    "mean": Aggregation(mean_chunk, additive_combine, mean_finalize, (0.0, 0.0, 0.0), True),
    # the unweighted mean climatology() uses when no weights are given: (count, sum)
    "mean_unweighted": Aggregation(sum_chunk, additive_combine, unweighted_mean_finalize, (0.0, 0.0), False),
    "var": Aggregation(moments_chunk, moments_combine, var_finalize, (0.0, 0.0, 0.0), False),
    "std": Aggregation(moments_chunk, moments_combine, std_finalize, (0.0, 0.0, 0.0), False),
    "min": Aggregation(min_chunk, min_combine, extreme_finalize, (0.0, _INF), False),
    "max": Aggregation(max_chunk, max_combine, extreme_finalize, (0.0, -_INF), False),
}
