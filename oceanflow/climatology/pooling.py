"""Which time steps each group pools, with a running window; checked statistic options.

With ``window=w`` (odd), a group pools the values of the ``w`` consecutive
time steps centred on each of its own steps, across year boundaries,
truncated at the ends of the series, as xclim's ``percentile_doy`` and CDO's
``ydrun*`` operators do; a step pooled twice by one group counts twice.  Both
structures below are computed once per climatology from the group codes (they
do not depend on the pixel):

* :func:`window_keys`: the groups that pool step ``s`` are ``codes[s - h ..
  s + h]``; steps with the same such tuple (its *key*) are pooled alike.  The
  statistics made of partials accumulate them per key, one update per value
  as without a window, and each group merges the partials of its keys once,
  at the end.  A daily climatology has about as many keys as groups (a few
  more near the ends of the series and near 29 February), which is why a
  window costs about nothing for these.
* :func:`order_keys`: the same keys laid out for the order statistics: the
  steps of each key, and the keys of each group (without a window, one key
  per group).

Example
-------
>>> keys = order_keys(np.array([0, 1, 2, 0, 1, 2]), 3, window=3)
>>> [keys.steps[a:b].tolist() for a, b in zip(keys.key_starts, keys.key_stops)]
[[0], [1, 4], [5], [2], [3]]
>>> [keys.keys[a:b].tolist() for a, b in zip(keys.group_starts, keys.group_stops)]
[[0, 1, 3, 4], [0, 1, 2, 3, 4], [1, 2, 3, 4]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels.climatology import Statistic, statistic
from ..kernels.quantiles import METHODS

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

    ``codes[s]`` is the key of step ``s`` (-1: pooled by no group); key
    ``src[e]``'s partials go ``mult[e]`` times into group ``dst[e]``.
    """

    codes: np.ndarray
    nkeys: int
    src: np.ndarray
    dst: np.ndarray
    mult: np.ndarray


def window_keys(codes: np.ndarray, window: int) -> WindowKeys:
    """The keys of :class:`WindowKeys` for group ``codes`` and an odd ``window``."""
    half = window // 2
    padded = np.concatenate([np.full(half, -1), codes, np.full(half, -1)]).astype(np.int64)
    poolers = np.lib.stride_tricks.sliding_window_view(padded, window)  # groups pooling each step
    keys, key_codes = np.unique(poolers, axis=0, return_inverse=True)
    key_codes = key_codes.reshape(-1).astype(np.int64)
    pooled = np.asarray((keys >= 0).any(axis=1))
    key_codes[~pooled[key_codes]] = -1
    key_index = np.broadcast_to(np.arange(keys.shape[0])[:, None], keys.shape)
    edges = np.stack([keys.ravel(), key_index.ravel()], axis=1)[keys.ravel() >= 0]
    unique, mult = np.unique(edges, axis=0, return_counts=True)  # sorted by group: merges stay local
    return WindowKeys(
        key_codes,
        int(keys.shape[0]),
        np.ascontiguousarray(unique[:, 1], np.int64),
        np.ascontiguousarray(unique[:, 0], np.int64),
        mult.astype(np.float64),
    )


@dataclass(frozen=True)
class OrderKeys:
    """Steps of each key (``steps[key_starts[k]:key_stops[k]]``, in time order) and
    keys of each group (``keys[group_starts[g]:group_stops[g]]``, a key listed
    as many times as the group pools it); ``run_length``: the most steps of
    a key when groups pool several keys, else 0; ``centers``: the group of
    each key's own steps (-1: none), with a window."""

    steps: np.ndarray
    key_starts: np.ndarray
    key_stops: np.ndarray
    keys: np.ndarray
    group_starts: np.ndarray
    group_stops: np.ndarray
    run_length: int
    centers: np.ndarray


def order_keys(codes: np.ndarray, ngroups: int, window: int | None) -> OrderKeys:
    """The :class:`OrderKeys` of group ``codes`` (-1: no group) and ``window``."""
    if window is None:
        key_codes, nkeys = codes, ngroups
        src = dst = np.arange(ngroups, dtype=np.int64)
        mult = np.ones(ngroups, np.int64)
    else:
        found = window_keys(codes, window)
        key_codes, nkeys, src, dst, mult = found.codes, found.nkeys, found.src, found.dst, found.mult.astype(np.int64)
    valid = np.flatnonzero(key_codes >= 0)
    steps = valid[np.argsort(key_codes[valid], kind="stable")]
    key_starts, key_stops = _bounds(np.bincount(key_codes[valid], minlength=nkeys))
    edges = np.repeat(np.arange(src.size), mult)
    edges = edges[np.argsort(dst[edges], kind="stable")]
    group_starts, group_stops = _bounds(np.bincount(dst[edges], minlength=ngroups))
    sizes = key_stops - key_starts
    run_length = int(sizes.max()) if window is not None and sizes.size else 0
    centers = codes[steps[key_starts]] if window is not None else np.zeros(0, np.int64)  # a key's steps share a group
    steps, key_starts, key_stops, keys, group_starts, group_stops = (
        np.ascontiguousarray(a, np.int64) for a in (steps, key_starts, key_stops, src[edges], group_starts, group_stops)
    )
    return OrderKeys(steps, key_starts, key_stops, keys, group_starts, group_stops, run_length, centers)


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
