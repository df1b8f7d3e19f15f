"""Which time steps each group pools, with a running window; checked statistic options.

With ``window=w`` (odd), a group pools the values of the ``w`` consecutive
time steps centred on each of its own steps, across year boundaries,
truncated at the ends of the series, as xclim's ``percentile_doy`` and CDO's
``ydrun*`` operators do; a step pooled twice by one group counts twice.  Both
structures below are computed once per climatology from the group codes (they
do not depend on the pixel):

* :func:`pooled_steps`: the steps of each group, group after group, for the
  order statistics (a kernel gathers them per pixel);
* :func:`window_keys`: for the statistics made of partials.  The groups that
  pool step ``s`` are ``codes[s - h .. s + h]``; steps with the same such
  tuple (its *key*) are pooled alike, so the chunk kernels accumulate partials
  per key, one update per value as without a window, and each group merges
  the partials of its keys once, at the end.  A daily climatology has about
  as many keys as groups (a few more near the ends of the series and near
  29 February), which is why a window costs about nothing for these.

Example
-------
>>> codes = np.array([0, 1, 2, 0, 1, 2])
>>> steps, starts, stops = pooled_steps(codes, 3, window=3)
>>> [steps[a:b].tolist() for a, b in zip(starts, stops)]
[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def check_quantiles(q: float | Sequence[float] | np.ndarray | None) -> np.ndarray:
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


def pooled_steps(codes: np.ndarray, ngroups: int, window: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time steps each group pools: ``steps[starts[g]:stops[g]]`` for group ``g``, in time order."""
    valid = np.flatnonzero(codes >= 0)
    half = 0 if window is None else window // 2
    pooled = valid[:, None] + np.arange(-half, half + 1)[None, :]
    groups = np.broadcast_to(codes[valid][:, None], pooled.shape)
    inside = (pooled >= 0) & (pooled < codes.size)
    pooled, groups = pooled[inside], groups[inside]
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=ngroups).astype(np.int64)
    stops = np.cumsum(counts)
    return pooled[order].astype(np.int64), stops - counts, stops


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
    pooled = (keys >= 0).any(axis=1)
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
        qs = check_quantiles(dict(found.fixed).get("q", q))
    scalar = qs is not None and qs.ndim == 0
    qs = None if qs is None else qs.reshape(-1)
    return StatisticOptions(found, qs, scalar, method, check_window(window, freq))
