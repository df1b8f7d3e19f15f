"""Which time steps each group pools, with a running window; checked statistic options.

With ``window=w`` (odd), a group pools the values of the ``w`` consecutive
time steps centred on each of its own steps, across year boundaries,
truncated at the ends of the series, as xclim's ``percentile_doy`` and CDO's
``ydrun*`` operators do; a step pooled twice by one group counts twice.  Both
structures below are built from the group codes (they do not depend on the
pixel) and kept across calls for the last few time axes (:func:`remembered`):

* :func:`window_keys`: the groups that pool step ``s`` are ``codes[s - h ..
  s + h]``; steps with the same such tuple (its *key*) are pooled alike.  The
  statistics made of partials accumulate them per key, one update per value
  as without a window, and merge the keys' partials into groups at the end.
  A daily climatology has about as many keys as groups (a few more near
  the ends of the series and near 29 February).  The merges follow
  :func:`merge_program`: neighbouring days share the merges of prefixes
  and suffixes of their runs of keys (about 3 merges a group instead of
  ``window``), a tile of pixels at a time, so a window costs little.
* :func:`order_keys`: the same keys laid out for the order statistics: the
  steps of each key, and the keys of each group (without a window, one key
  per group), with the plan of their merges for the order statistics
  (:func:`oceanflow.kernels.sorting.merge_plan`; also the marine
  heatwaves' thresholds, :mod:`oceanflow.mhw`).

Example
-------
>>> keys = order_keys(np.array([0, 1, 2, 0, 1, 2]), 3, window=3)
>>> [keys.steps[a:b].tolist() for a, b in zip(keys.key_starts, keys.key_stops)]
[[0], [1, 4], [5], [2], [3]]
>>> [keys.keys[a:b].tolist() for a, b in zip(keys.group_starts, keys.group_stops)]
[[0, 1, 3, 4], [0, 1, 2, 3, 4], [1, 2, 3, 4]]
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, TypeVar

import numpy as np

from ..kernels.climatology import MERGE_TILE, Statistic, statistic
from ..kernels.quantiles import METHODS
from ..kernels.sorting import merge_plan

#: Frequencies that take ``window=`` (daily climatologies).
WINDOW_FREQS = ("dayofyear", "time.dayofyear")


def check_window(window: int | None, freq: object) -> int | None:
    """``window`` checked: None, or an odd positive number of time steps with a daily ``freq``."""
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1 or window % 2 == 0:
        raise ValueError(
            f"window must be an odd positive number of time steps (e.g. 5 or 11), got {window!r}; "
            "it is centred on each day, so an even width has no centre"
        )
    if not isinstance(freq, str) or freq not in WINDOW_FREQS:
        raise ValueError(
            f"window= applies to daily climatologies (freq='dayofyear' or 'time.dayofyear'), not freq={freq!r}; "
            "leave window out for monthly or seasonal groups"
        )
    return int(window)


def check_quantiles(q: Any) -> np.ndarray:
    """``q`` as a float64 array (0-d for one value), each in [0, 1]."""
    if q is None:
        raise ValueError("stat='quantile' needs q=, e.g. q=0.9 or q=[0.1, 0.5, 0.9] (fractions in [0, 1])")
    values = np.asarray(q, dtype=object if isinstance(q, str) else None)
    if values.dtype.kind not in "iuf" or values.ndim > 1:
        raise ValueError(f"q must be a number or a sequence of numbers in [0, 1], got {q!r}")
    if values.size == 0:
        raise ValueError("q is empty; give at least one quantile, e.g. q=0.9")
    values = values.astype(np.float64)
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError(
            f"q must lie in [0, 1] (fractions, not percents), got {q!r}; for the 90th percentile use q=0.9"
        )
    return values


def check_method(method: str) -> str:
    """``method`` checked against NumPy's quantile methods."""
    if method not in METHODS:
        raise ValueError(f"unknown quantile method {method!r}; use one of {list(METHODS)}")
    return method


@dataclass(frozen=True)
class WindowKeys:
    """Time steps grouped by the groups that pool them (see the module docstring).

    ``codes[s]`` is the key of step ``s`` (-1: pooled by no group);
    ``program`` (:func:`merge_program`) merges the keys' partials into the
    ``ngroups`` groups' with ``scratch`` rows of intermediate partials.
    """

    codes: np.ndarray
    nkeys: int
    ngroups: int
    program: np.ndarray
    scratch: int


def window_keys(codes: np.ndarray, window: int, ngroups: int) -> WindowKeys:
    """The :class:`WindowKeys` of group ``codes`` (-1: no group; ``ngroups`` groups) and an odd ``window``
    (remembered for the last few time axes, :func:`remembered`)."""

    def build(owned: np.ndarray) -> WindowKeys:
        keys = order_keys(owned, ngroups, window)
        program, scratch = merge_program(keys.merge_plan(), ngroups)
        return WindowKeys(keys.codes, keys.key_starts.size, ngroups, program, scratch)

    return remembered("window_keys", codes, ngroups, window, build)


def order_layout(codes: np.ndarray, ngroups: int, window: int | None) -> tuple[OrderKeys, np.ndarray]:
    """The :class:`OrderKeys` of group ``codes`` and ``window`` with their merge plan (empty
    without a window), remembered for the last few time axes (:func:`remembered`)."""

    def build(owned: np.ndarray) -> tuple[OrderKeys, np.ndarray]:
        keys = order_keys(owned, ngroups, window)
        ops = keys.merge_plan() if keys.run_length else np.zeros((0, 4), np.int64)
        return keys, ops

    return remembered("order_layout", codes, ngroups, window, build)


#: Entries :func:`remembered` keeps, both kinds (``window_keys`` and ``order_layout``) together.
REMEMBERED_PLANS = 8
#: Longest time axis (steps) whose plans :func:`remembered` keeps: an entry holds a few int64
#: arrays of the axis' length (hourly 1980-2024 with a daily window: about 14 MB), built anew above.
REMEMBERED_MAX_STEPS = 100_000

_PLANS: OrderedDict[tuple, Any] = OrderedDict()
_PLANS_LOCK = threading.Lock()
_T = TypeVar("_T")


def remembered(kind: str, codes: np.ndarray, ngroups: int, window: int | None, build: Callable[[np.ndarray], _T]) -> _T:
    """``build(owned)`` on a private int64 copy of group ``codes``, or what it returned for the
    same ``kind``, codes (by content), ``ngroups`` and ``window`` among the last
    :data:`REMEMBERED_PLANS` entries of both kinds together (the plans depend on the time axis
    only, not on the data: a second statistic of the same axis, or a warm-up on a corner,
    builds them once).  Axes longer than :data:`REMEMBERED_MAX_STEPS` are built every time.
    Arrays in what is kept are made read-only, as they are shared; the caller's ``codes`` are
    never kept nor frozen.  :func:`forget_plans` empties the store.

    Example
    -------
    >>> codes = np.tile(np.arange(12), 3)
    >>> first = order_layout(codes, 12, None)
    >>> order_layout(codes.copy(), 12, None) is first, codes.flags.writeable
    (True, True)
    """
    owned = np.array(codes, np.int64)  # a copy: the caller's array is neither frozen nor shared
    if owned.size > REMEMBERED_MAX_STEPS:
        return build(owned)
    key = (kind, hashlib.blake2b(owned.tobytes(), digest_size=16).digest(), owned.size, ngroups, window)
    with _PLANS_LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    value = build(owned)
    for part in value if isinstance(value, tuple) else (value,):
        items = [getattr(part, f.name) for f in fields(part)] if is_dataclass(part) else [part]
        for item in items:
            if isinstance(item, np.ndarray):
                item.flags.writeable = False
    with _PLANS_LOCK:
        _PLANS[key] = value
        while len(_PLANS) > REMEMBERED_PLANS:
            _PLANS.popitem(last=False)
    return value


def forget_plans() -> None:
    """Empty :func:`remembered`'s store (e.g. to return its memory after a large run)."""
    with _PLANS_LOCK:
        _PLANS.clear()


def _window_edges(codes: np.ndarray, window: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """(key of each step, number of keys, src, dst, mult): group ``dst[e]`` pools key ``src[e]`` ``mult[e]`` times."""
    half = window // 2
    padded = np.concatenate([np.full(half, -1), codes, np.full(half, -1)]).astype(np.int64)
    poolers = np.lib.stride_tricks.sliding_window_view(padded, window)  # groups pooling each step
    # the distinct rows in lexicographic order (np.unique(axis=0), without its slow sort of records)
    order = np.lexsort(poolers.T[::-1])
    rows = poolers[order]
    first = np.ones(len(order), bool)
    first[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    keys = rows[first]
    key_codes = np.empty(len(order), np.int64)
    key_codes[order] = np.cumsum(first) - 1
    pooled = np.asarray((keys >= 0).any(axis=1))
    key_codes[~pooled[key_codes]] = -1
    nkeys = keys.shape[0]
    edges = (keys * nkeys + np.arange(nkeys)[:, None]).ravel()[keys.ravel() >= 0]  # group * nkeys + key
    unique, mult = np.unique(edges, return_counts=True)  # sorted by group: merges stay local
    return key_codes, int(nkeys), unique % nkeys, unique // nkeys, mult


def merge_program(ops: np.ndarray, ngroups: int) -> tuple[np.ndarray, int]:
    """The rows of a merge kernel (:data:`oceanflow.kernels.climatology.MERGE`) from a
    :func:`~oceanflow.kernels.sorting.merge_plan` (the same shared prefixes and
    suffixes of neighbouring days), and the number of scratch rows.

    Rows address ``-1 - k`` for key ``k``'s partials (read in place, never
    copied), ``g < ngroups`` for group ``g``'s and ``ngroups + s`` for scratch
    slot ``s``.  A merge whose result only one group takes writes that
    group's row; a key or a shared merge a group takes whole is copied into it;
    a group that pools nothing gets the starting partials.

    Example
    -------
    >>> ops = np.array([[0, 0, 5, 0], [0, 1, 6, 0], [1, 0, 0, 1], [2, 0, 0, 0], [2, -1, 1, 0]])
    >>> merge_program(ops, 2)[0].tolist()
    [[1, 0, -6, -7], [2, 1, 0, 0]]
    """
    from ..kernels.climatology import COPY, INIT, MERGE

    rows = ops.tolist()
    node_of: dict[int, int] = {}  # slot -> node (the row that wrote it)
    reads: dict[int, list[int]] = {}  # node -> rows reading it
    read_nodes: list[tuple[int, ...]] = []
    for i, (kind, slot, a, b) in enumerate(rows):
        if kind == 0:
            read_nodes.append(())
            node_of[slot] = i
        elif kind == 1:
            read_nodes.append((node_of[a], node_of[b]))
            node_of[slot] = i
        else:
            read_nodes.append((node_of[slot],) if slot >= 0 else ())
        for node in read_nodes[-1]:
            reads.setdefault(node, []).append(i)
    where: dict[int, int] = {}  # node -> the row address holding it
    program = []
    scratch = 0
    for i, (kind, slot, a, _) in enumerate(rows):
        if kind == 0:
            where[i] = -1 - a
        elif kind == 1:
            readers = reads.get(i, [])
            alone = len(readers) == 1 and rows[readers[0]][0] == 2
            where[i] = rows[readers[0]][2] if alone else ngroups + slot
            scratch = max(scratch, slot + 1)
            program.append((MERGE, where[i], where[read_nodes[i][0]], where[read_nodes[i][1]]))
        elif slot < 0:
            program.append((INIT, a, 0, 0))
        elif where[read_nodes[i][0]] != a:
            program.append((COPY, a, where[read_nodes[i][0]], 0))
    return np.array(program, np.int64).reshape(-1, 4), scratch


def merged_finalized(
    aggregation: Any, parts: np.ndarray, keys: WindowKeys, params: np.ndarray, work: Any
) -> np.ndarray:
    """The statistic (group, pixel) from the keys' partials ``parts`` (quantity, key, pixel):
    merged by ``keys.program`` and finalized a tile of :data:`MERGE_TILE` pixels at a time, so
    that only a tile's merged partials are held (they stay in cache for the finalize)."""
    parts = np.ascontiguousarray(parts)
    nq, npix = parts.shape[0], parts.shape[2]
    merge, finalize = aggregation.merge.for_dtype(np.float64), aggregation.finalize.for_dtype(work)
    result = np.empty((keys.ngroups, npix), work)
    rows = keys.ngroups + keys.scratch
    merged, tile = np.empty((nq, rows, 0)), np.empty((rows, 0), work)
    for start in range(0, npix, MERGE_TILE):
        width = min(MERGE_TILE, npix - start)
        if merged.shape[2] != width:  # the first tile, and a narrower last one
            merged, tile = np.empty((nq, rows, width)), np.empty((rows, width), work)
            init = np.broadcast_to(np.asarray(aggregation.init, np.float64)[:, None, None], merged.shape)
        merge(parts, keys.program, init, start, out=merged)
        finalize(merged, params, out=tile)
        result[:, start : start + width] = tile[: keys.ngroups]
    return result


@dataclass(frozen=True)
class OrderKeys:
    """Steps of each key (``steps[key_starts[k]:key_stops[k]]``, in time order) and
    keys of each group (``keys[group_starts[g]:group_stops[g]]``, a key listed
    as many times as the group pools it); ``run_length``: the most steps of
    a key when groups pool several keys, else 0; ``centers``: the group of
    each key's own steps (-1: none), with a window; ``codes``: the key of each step."""

    steps: np.ndarray
    key_starts: np.ndarray
    key_stops: np.ndarray
    keys: np.ndarray
    group_starts: np.ndarray
    group_stops: np.ndarray
    run_length: int
    centers: np.ndarray
    codes: np.ndarray

    def merge_plan(self) -> np.ndarray:
        """The windows' shared prefix/suffix merges of these keys (:func:`~oceanflow.kernels.sorting.merge_plan`)."""
        sizes = self.key_stops - self.key_starts
        return merge_plan(sizes, self.keys, self.group_starts, self.group_stops, self.centers)


def order_keys(codes: np.ndarray, ngroups: int, window: int | None) -> OrderKeys:
    """The :class:`OrderKeys` of group ``codes`` (-1: no group) and ``window``."""
    if window is None:
        key_codes, nkeys = codes, ngroups
        src = dst = np.arange(ngroups, dtype=np.int64)
        mult = np.ones(ngroups, np.int64)
    else:
        key_codes, nkeys, src, dst, mult = _window_edges(codes, window)
    valid = np.flatnonzero(key_codes >= 0)
    steps = valid[np.argsort(key_codes[valid], kind="stable")]
    key_starts, key_stops = _bounds(np.bincount(key_codes[valid], minlength=nkeys))
    edges = np.repeat(np.arange(src.size), mult)
    edges = edges[np.argsort(dst[edges], kind="stable")]
    group_starts, group_stops = _bounds(np.bincount(dst[edges], minlength=ngroups))
    sizes = key_stops - key_starts
    run_length = int(sizes.max()) if window is not None and sizes.size else 0
    centers = _centers(codes, steps, key_starts, sizes) if window is not None else np.zeros(0, np.int64)
    steps, key_starts, key_stops, keys, group_starts, group_stops = (
        np.ascontiguousarray(a, np.int64) for a in (steps, key_starts, key_stops, src[edges], group_starts, group_stops)
    )
    return OrderKeys(
        steps, key_starts, key_stops, keys, group_starts, group_stops, run_length, centers, np.asarray(key_codes)
    )


def _centers(codes: np.ndarray, steps: np.ndarray, key_starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each key's own group (a key's steps share one), -1 for a key with no step (pooled by no group)."""
    centers = np.full(sizes.size, -1, np.int64)
    held = sizes > 0
    centers[held] = codes[steps[key_starts[held]]]
    return centers


def _bounds(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stops = np.cumsum(counts)
    return stops - counts, stops


@dataclass(frozen=True)
class StatisticOptions:
    """The checked statistic of one climatology and its options."""

    statistic: Statistic
    #: quantiles of an order statistic, 1-D; None for the others
    q: np.ndarray | None
    #: whether ``q`` was one number (no ``quantile`` dimension)
    scalar_q: bool
    method: str
    window: int | None


def statistic_options(
    stat: str, freq: object, *, q: object = None, method: str = "linear", window: int | None = None
) -> StatisticOptions:
    """``stat`` and its options checked together, with errors that name the fix."""
    found = statistic(stat)
    if "q" not in found.parameters and q is not None:
        raise ValueError(f"q= applies to stat='quantile', not stat={stat!r}")
    if "method" not in found.parameters and method != "linear":
        raise ValueError(f"method= applies to stat='quantile' and 'median', not stat={stat!r}")
    qs = None
    if found.kind == "order":
        check_method(method)
        fixed: dict[str, Any] = dict(found.fixed)
        qs = check_quantiles(fixed.get("q", q))
    scalar = qs is not None and qs.ndim == 0
    qs = None if qs is None else qs.reshape(-1)
    return StatisticOptions(found, qs, scalar, method, check_window(window, freq))
