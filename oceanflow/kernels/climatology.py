"""The statistics of ``oceanflow.climatology``: their kernels and the registry that declares them.

Every statistic is one :class:`Statistic` entry in :data:`STATISTICS` (added
with :func:`register`): its kernels, its kind, its CF ``cell_methods`` word,
its units rule, its parameters and its extra output dimension.  The engine,
the CF metadata, the command line's ``--stat`` choices, the docs table and
the oracle tests all read the registry, so adding a statistic is one entry.

Two kinds:

* **partials** (:class:`Aggregation`): per-chunk partials that combine in any
  order, over C-ordered (time, pixels) blocks:

  * ``chunk(x, codes, weights, init, reset, start, out)``: one pass over the
    pixels ``start .. start + m`` of a block ``x[t, p]`` (``m`` is ``out``'s
    last length; the caller keeps the range inside ``x``), time outer and
    pixels inner (memory order), accumulating into float64 partials
    ``out[q, g, m]`` (quantity, group, pixel) that start at ``init`` (same
    shape; usually a broadcast view of one value per quantity) when ``reset``
    is 1, or at the values already in ``out`` when it is 0 (folding
    consecutive time chunks into one partial).  A pixel range of a C-ordered
    block is read in place, so threads and tasks can share one block without
    copying it.  ``codes[t]`` is the group of step ``t`` (-1: none) and
    ``weights[t]`` its weight.  NaN values are skipped.
  * ``combine(parts) -> partials``: merges partials stacked as ``[k, q, g, p]``
    (e.g. from k time chunks).
  * ``merge(parts, program, init, start, out)``: with ``window=``, the
    partials of each group from those of the *keys* (time steps pooled by the
    same groups, see :mod:`oceanflow.climatology.pooling`), by the rows of a
    merge program (:data:`COPY`, :data:`MERGE`, :data:`INIT`; merges of
    neighbouring days shared), for the pixels of ``out``'s tile.
  * ``finalize(partials, params) -> result[g, p]``: the statistic, NaN where a
    group has fewer than ``params[0]`` (min_count) valid values; ``params[1]``
    is ``ddof`` for var/std.

  Partials are float64 whatever the input (float32 sums keep 7 more digits);
  results are in the input's float type.

* **order** statistics (median, quantiles): one kernel over the whole series
  of a block, :func:`oceanflow.kernels.quantiles.grouped_quantiles`.

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

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ._declare import Kernel, gufunc, njit
from .quantiles import grouped_quantiles

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


def _chunk_loop(x, codes, weights, init, reset, start, out):
    """The loop every chunk kernel shares; ``update`` is a global of each kernel's own copy."""
    if reset:
        _start(out, init)
    last = out.shape[0] - 1
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= out.shape[1]:
            continue
        w = weights[t]
        a = out[0, g]
        b = out[min(1, last), g]
        c = out[min(2, last), g]
        for p in range(out.shape[2]):
            update(a, b, c, p, x[t, start + p], w)  # type: ignore[name-defined]  # noqa: F821 (a global of each copy)


def grouped_chunk(update: Callable, name: str, doc: str) -> Kernel:
    """A chunk kernel (see the module docstring) from its per-value step.

    The kernel loops over the time steps of the block that have a group,
    time outer and pixels inner, and calls ``update(a, b, c, p, v, w)`` for
    each pixel ``p`` of the range with its value ``v`` and the step's weight
    ``w``: ``a``, ``b``, ``c`` are the group's partials 0, 1 and 2
    (contiguous rows of ``out``; a statistic with fewer partials gets its last
    one again).  ``update`` is an ``@njit(inline="always")`` function, so the
    kernel compiles to the loop one would write by hand for that statistic.

    Each kernel is a copy of one loop with ``update`` as a global, not a
    closure: numba's on-disk cache recognises a closure's variables by
    pickling them, and a compiled function pickles differently in every
    process, so a closure would be compiled again in each.
    """
    return _copied(_chunk_loop, {"update": update}, name, doc, _CHUNK)


def _copy(template: Any, names: dict[str, Any], name: str, doc: str) -> Any:
    """A copy of ``template``'s code named ``name``, with ``names`` as globals (no closure: cached across processes)."""
    loop = types.FunctionType(template.__code__, {**globals(), **names}, name)
    loop.__qualname__ = name
    loop.__doc__ = doc
    loop.__module__ = __name__
    return loop


def _copied(template: Any, names: dict[str, Any], name: str, doc: str, layout: tuple) -> Any:
    """A copy of ``template``'s loop named ``name``, with ``names`` as globals, declared as a gufunc of ``layout``."""
    return gufunc(*layout)(_copy(template, names, name, doc))


@njit(inline="always")
def _count_update(n, b, c, p, v, w):
    n[p] += v == v


@njit(inline="always")
def _sum_update(n, s, c, p, v, w):
    valid = v == v
    n[p] += valid
    s[p] += w * v if valid else 0.0


@njit(inline="always")
def _mean_update(n, sw, s, p, v, w):
    valid = v == v
    n[p] += valid
    sw[p] += w if valid else 0.0
    s[p] += w * v if valid else 0.0


@njit(inline="always")
def _moments_update(n, m, m2, p, v, w):
    if v == v:
        n[p] += 1.0
        d = v - m[p]
        m[p] += d / n[p]
        m2[p] += d * (v - m[p])


@njit(inline="always")
def _min_update(n, lo, c, p, v, w):
    n[p] += v == v
    lo[p] = v if v < lo[p] else lo[p]


@njit(inline="always")
def _max_update(n, hi, c, p, v, w):
    n[p] += v == v
    hi[p] = v if v > hi[p] else hi[p]


count_chunk = grouped_chunk(_count_update, "count_chunk", "Partials: valid count.")
sum_chunk = grouped_chunk(_sum_update, "sum_chunk", "Partials: valid count, weighted sum.")
mean_chunk = grouped_chunk(_mean_update, "mean_chunk", "Partials: valid count, sum of weights, weighted sum.")
moments_chunk = grouped_chunk(
    _moments_update, "moments_chunk", "Partials: valid count, mean, sum of squared deviations (Welford)."
)
min_chunk = grouped_chunk(_min_update, "min_chunk", "Partials: valid count, minimum (init +inf).")
max_chunk = grouped_chunk(_max_update, "max_chunk", "Partials: valid count, maximum (init -inf).")


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


def _pick_combine(parts, out):
    """Count adds up; ``pick`` (min or max, a global of each copy) of the chunks' values."""
    out[...] = parts[0]
    for k in range(1, parts.shape[0]):
        for g in range(parts.shape[2]):
            for p in range(parts.shape[3]):
                out[0, g, p] += parts[k, 0, g, p]
                out[1, g, p] = pick(out[1, g, p], parts[k, 1, g, p])  # type: ignore[name-defined]  # noqa: F821 (a global of each copy)


min_combine = _copied(_pick_combine, {"pick": min}, "min_combine", "Count adds up; minimum of minima.", _COMBINE)
max_combine = _copied(_pick_combine, {"pick": max}, "max_combine", "Count adds up; maximum of maxima.", _COMBINE)


# ---------------------------------------------------------------- merge kernels (window=)

#: Pixels merged at once (the Python caller's tile): the rows a merge program touches for
#: a tile stay in cache, and the merged partials of a tile, not of the block, are held.
MERGE_TILE = 256

#: Rows of a merge program (see :func:`oceanflow.climatology.pooling.merge_program`):
#: ``(COPY, d, a, 0)``, ``(MERGE, d, a, b)``: ``d = a (+) b``, ``(INIT, d, 0, 0)``.
COPY, MERGE, INIT = 0, 1, 2

_MERGE = (
    "(q,k,n),(r,c),(q,g,m),()->(q,g,m)",
    "void(float64[:, :, ::1], int64[:, ::1], float64[:, :, :], int64, float64[:, :, ::1])",
)


@njit(inline="always")
def _row(parts, out, start, q, i):
    """Row ``i`` of quantity ``q`` for a merge program: key ``-1 - i`` of ``parts`` (the pixels of
    ``out``'s tile from ``start``) when ``i < 0``, else row ``i`` of ``out``."""
    if i < 0:
        return parts[q, -1 - i, start : start + out.shape[2]]
    return out[q, i]


def _merge_loop(parts, program, init, start, out):
    """The loop every merge kernel shares; ``combine`` is a global of each kernel's own copy."""
    for r in range(program.shape[0]):
        kind, d, a, b = program[r, 0], program[r, 1], program[r, 2], program[r, 3]
        if kind == INIT:
            for q in range(out.shape[0]):
                out[q, d, :] = init[q, 0, 0]
        elif kind == COPY:
            for q in range(out.shape[0]):
                out[q, d, :] = _row(parts, out, start, q, a)
        else:
            combine(parts, out, start, d, a, b)  # type: ignore[name-defined]  # noqa: F821 (a global of each copy)


def merge_kernel(combine: Callable, name: str, doc: str) -> Kernel:
    """A merge kernel from its binary ``combine(parts, out, start, d, a, b)`` (rows as :func:`_row`).

    ``merge(parts, program, init, start, out)``: runs the rows of ``program``
    on the pixels ``start .. start + m`` of the keys' partials ``parts[q, k,
    n]`` into ``out[q, r, m]`` (the groups' rows, then scratch rows), ``init``
    the starting partials (a broadcast view; it also gives ``out``'s shape).
    Copies of one loop, as :func:`grouped_chunk`.
    """
    return _copied(_merge_loop, {"combine": combine}, name, doc, _MERGE)


@njit(inline="always")
def _additive_combine(parts, out, start, d, a, b):
    for q in range(out.shape[0]):
        x, y, z = _row(parts, out, start, q, a), _row(parts, out, start, q, b), out[q, d]
        if a == d:  # in place: a loop of its own, which LLVM vectorises (z and x overlap)
            for p in range(z.shape[0]):
                z[p] += y[p]
        else:
            for p in range(z.shape[0]):
                z[p] = x[p] + y[p]


@njit(inline="always")
def _moments_combine(parts, out, start, d, a, b):
    na, ma, sa = _row(parts, out, start, 0, a), _row(parts, out, start, 1, a), _row(parts, out, start, 2, a)
    nb, mb, sb = _row(parts, out, start, 0, b), _row(parts, out, start, 1, b), _row(parts, out, start, 2, b)
    nd, md, sd = out[0, d], out[1, d], out[2, d]
    for p in range(nd.shape[0]):
        n1, n2 = na[p], nb[p]
        if n2 == 0:
            nd[p], md[p], sd[p] = n1, ma[p], sa[p]
        elif n1 == 0:
            nd[p], md[p], sd[p] = n2, mb[p], sb[p]
        else:
            n = n1 + n2
            delta = mb[p] - ma[p]
            nd[p] = n
            md[p] = ma[p] + delta * n2 / n
            sd[p] = sa[p] + sb[p] + delta * delta * n1 * n2 / n


def _pick_merge(parts, out, start, d, a, b):
    """Counts add up; ``pick`` (min or max, a global of each copy) of the two rows' values."""
    na, va = _row(parts, out, start, 0, a), _row(parts, out, start, 1, a)
    nb, vb = _row(parts, out, start, 0, b), _row(parts, out, start, 1, b)
    nd, vd = out[0, d], out[1, d]
    for p in range(nd.shape[0]):
        nd[p] = na[p] + nb[p]
        vd[p] = pick(va[p], vb[p])  # type: ignore[name-defined]  # noqa: F821 (a global of each copy)


_min_combine = njit(inline="always")(
    _copy(_pick_merge, {"pick": min}, "_min_combine", "Count and minimum of two rows.")
)
_max_combine = njit(inline="always")(
    _copy(_pick_merge, {"pick": max}, "_max_combine", "Count and maximum of two rows.")
)


additive_merge = merge_kernel(_additive_combine, "additive_merge", "Merge program of partials that add up.")
moments_merge = merge_kernel(_moments_combine, "moments_merge", "Merge program of count, mean, M2 (Chan et al.).")
min_merge = merge_kernel(_min_combine, "min_merge", "Merge program of count and minimum.")
max_merge = merge_kernel(_max_combine, "max_merge", "Merge program of count and maximum.")


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
    """Kernels of a statistic made of partials that combine: chunk, combine (tree),
    merge (``window=``: groups from the partials of their windows' keys) and
    finalize, and the initial value of each partial."""

    chunk: Kernel
    combine: Kernel
    merge: Kernel
    finalize: Kernel
    init: tuple


@dataclass(frozen=True)
class Statistic:
    """One statistic of ``oceanflow.climatology``: everything that depends on it.

    ``kind`` is ``"partials"`` (``aggregation``: per-chunk partials combined in
    any order, O(groups) memory per pixel) or ``"order"`` (``order``: a kernel
    that needs each group's pooled values whole; the engine gives each task
    the whole series of a spatial block).  ``units`` is the rule for the
    result's units: ``"same"`` as the input, ``"squared"`` or ``"1"``.
    ``parameters`` are the keywords of :func:`oceanflow.climatology` it
    reads; ``dim`` the extra leading output dimension a sequence of them
    adds; ``fixed`` parameters it sets itself (``median``: ``q=0.5``).
    """

    name: str
    summary: str
    cell_method: str
    units: str = "same"
    aggregation: Aggregation | None = None
    unweighted: Aggregation | None = None
    order: Kernel | None = None
    parameters: tuple[str, ...] = ()
    dim: str | None = None
    fixed: tuple[tuple[str, float], ...] = ()
    integer: bool = False
    weighted: bool = False

    @property
    def kind(self) -> str:
        return "order" if self.order is not None else "partials"


_INF = float("inf")
_COUNT = (0.0,)
_SUM = (0.0, 0.0)
_MOMENTS = (0.0, 0.0, 0.0)

#: Every statistic ``oceanflow.climatology`` knows, by name: adding one is one entry here.
STATISTICS: dict[str, Statistic] = {}


def register(statistic: Statistic) -> Statistic:
    """Add ``statistic`` to :data:`STATISTICS` (the CLI, docs and tests follow)."""
    STATISTICS[statistic.name] = statistic
    return statistic


register(
    Statistic(
        "mean",
        "mean (weights= allowed)",
        "mean",
        aggregation=Aggregation(mean_chunk, additive_combine, additive_merge, mean_finalize, _MOMENTS),
        # without weights: (count, sum), 2 partials per group instead of 3
        unweighted=Aggregation(sum_chunk, additive_combine, additive_merge, unweighted_mean_finalize, _SUM),
        weighted=True,
    )
)
register(
    Statistic(
        "sum",
        "sum (weights= allowed); min_count=0 gives 0 for empty groups",
        "sum",
        aggregation=Aggregation(sum_chunk, additive_combine, additive_merge, total_finalize, _SUM),
        weighted=True,
    )
)
register(
    Statistic(
        "count",
        "number of valid (non-NaN) values",
        "sum",
        units="1",
        aggregation=Aggregation(count_chunk, additive_combine, additive_merge, count_finalize, _COUNT),
        integer=True,
    )
)
register(
    Statistic(
        "std",
        "standard deviation (ddof=)",
        "standard_deviation",
        aggregation=Aggregation(moments_chunk, moments_combine, moments_merge, std_finalize, _MOMENTS),
        parameters=("ddof",),
    )
)
register(
    Statistic(
        "var",
        "variance (ddof=)",
        "variance",
        units="squared",
        aggregation=Aggregation(moments_chunk, moments_combine, moments_merge, var_finalize, _MOMENTS),
        parameters=("ddof",),
    )
)
register(
    Statistic(
        "min",
        "minimum",
        "minimum",
        aggregation=Aggregation(min_chunk, min_combine, min_merge, extreme_finalize, (0.0, _INF)),
    )
)
register(
    Statistic(
        "max",
        "maximum",
        "maximum",
        aggregation=Aggregation(max_chunk, max_combine, max_merge, extreme_finalize, (0.0, -_INF)),
    )
)
register(
    Statistic(
        "median",
        "median, exact (method= as NumPy's quantile)",
        "median",
        order=grouped_quantiles,
        parameters=("method",),
        fixed=(("q", 0.5),),
    )
)
register(
    Statistic(
        "quantile",
        "quantiles q= in [0, 1], exact (method= as NumPy's quantile)",
        "percentile",
        order=grouped_quantiles,
        parameters=("q", "method"),
        dim="quantile",
    )
)

#: The partials of each statistic by kernel name (tasks look kernels up by name:
#: compiled gufuncs do not pickle); ``"mean_unweighted"`` is the mean without weights.
AGGREGATIONS: dict[str, Aggregation] = {
    name: aggregation
    for name, aggregation in [(n, s.aggregation) for n, s in STATISTICS.items()]
    + [("mean_unweighted", STATISTICS["mean"].unweighted)]
    if aggregation is not None
}


def statistic(name: str) -> Statistic:
    """The registered statistic ``name``; a clear error naming the known ones."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise ValueError(f"unknown stat {name!r}; use one of {list(STATISTICS)}") from None


def cell_method(name: str) -> str:
    """The CF ``cell_methods`` word of statistic ``name`` (e.g. ``"standard_deviation"``)."""
    return statistic(name).cell_method


def result_units(name: str, units: str | None) -> str | None:
    """Units of statistic ``name`` of data in ``units`` (None: no units attribute)."""
    rule = statistic(name).units
    if rule == "1":
        return "1"
    if units is None or rule == "same":
        return units
    return f"({units})2"
