"""The sorting machinery of the windowed order statistics (:mod:`oceanflow.kernels.sorting`),
against NumPy's sort and multisets of keys."""

from collections import Counter

import numpy as np
import pytest
from conftest import WINDOW_PLANS, make_field

from oceanflow.climatology.pooling import order_keys
from oceanflow.kernels import njit
from oceanflow.kernels.sorting import load_sorted, merge_plan, merge_smallest, sorting_network
from oceanflow.timegroups import time_groups


@njit
def _load_and_merge(x, lo, hi, rows, depth, sign, s, count, sums):
    """Columns of ``x`` (time, pixel): steps 0..n/2 and n/2..n loaded into slots 0 and 1 of ``s``, sorted,
    and merged into slot 0 keeping the ``depth`` smallest (any number: merges of powers of two only
    for grouped_quantiles); ``sums``: the keys' sums, negated."""
    steps = np.arange(x.shape[0])
    half = x.shape[0] // 2
    load_sorted(x, steps, 0, half, lo, hi, s, 0, rows, x.shape[1], 0, sign, count, 0, sums, -1.0)
    load_sorted(x, steps, half, x.shape[0], lo, hi, s, rows, rows, x.shape[1], 0, sign, count, 1, sums, -1.0)
    merge_smallest(s, 0, 0, rows, depth)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "n, depth, sign",
    [(30, 32, 1), (30, 64, -1), (7, 8, 1), (16, 16, -1), (1, 1, 1), (31, 35, 1), (30, 34, -1), (16, 5, 1), (9, 3, -1)],
)
def test_keys_loaded_sorted_and_merged_keep_the_smallest_values_of_each_column(dtype, n, depth, sign):
    rng = np.random.default_rng(n + depth)
    lanes, width = 8, 5
    x = rng.integers(-4, 5, (2 * n, width)).astype(dtype)  # ties
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, 1], x[1, 2], x[-1, 3] = np.inf, -np.inf, np.nan
    rows = max(depth, n)
    s = np.full((2 * rows, lanes), -1.0, dtype)
    count = np.zeros((2, lanes), np.int32)
    sums = np.full((2, lanes), np.nan)
    _load_and_merge(x, *sorting_network(n), rows, depth, x.dtype.type(sign), s, count, sums)
    signed = np.where(np.isnan(x), np.inf, x * sign)
    expected = np.sort(np.vstack([signed, np.full((depth, width), np.inf, dtype)]), axis=0)[:depth]
    np.testing.assert_array_equal(s[:depth, :width], expected)
    assert (s[:depth, width:] == np.inf).all()  # padding lanes
    np.testing.assert_array_equal(count[:, :width], [(~np.isnan(x[:n])).sum(0), (~np.isnan(x[n:])).sum(0)])
    in_order = [-np.nansum(x[k * n : (k + 1) * n].astype(np.float64), axis=0) for k in range(2)]  # (+-inf: NaN)
    np.testing.assert_array_equal(sums[:, :width], in_order)
    assert (sums[:, width:] == 0).all()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 30, 33])
def test_sorting_networks_sort_every_zero_one_column(n):
    """The 0-1 principle: a network that sorts every column of zeros and ones sorts everything."""
    lo, hi = sorting_network(n)
    assert (lo < hi).all() and (hi < n).all()
    columns = (
        (np.arange(2**n)[None, :] >> np.arange(n)[:, None]) & 1
        if n <= 16
        else np.random.default_rng(n).integers(0, 2, (n, 1 << 16))
    )
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        columns[[a, b]] = np.sort(columns[[a, b]], axis=0)
    assert (np.diff(columns, axis=0) >= 0).all()


@pytest.mark.parametrize("calendar, freq, feb29, window", WINDOW_PLANS)
def test_merge_plan_gives_each_group_its_keys(calendar, freq, feb29, window):
    """The plan run on multisets of keys instead of values: every group's slot
    holds exactly the keys it pools, as often as it pools them."""
    obj = make_field(calendar, start="2001-03-10", periods=7 * 365 + 100)
    groups = time_groups(obj.time, freq, feb29=feb29)
    ngroups = groups.labels.size
    keys = order_keys(groups.codes, ngroups, window)
    ops = merge_plan(keys.key_stops - keys.key_starts, keys.keys, keys.group_starts, keys.group_stops, keys.centers)
    slots: dict[int, Counter] = {}
    emitted = {}
    for kind, slot, a, b in ops.tolist():
        if kind == 0:
            slots[slot] = Counter([a])
        elif kind == 1:
            slots[slot] = slots[a] + slots[b]
        else:
            emitted[a] = slots[slot] if slot >= 0 else Counter()
    assert sorted(emitted) == list(range(ngroups))
    for g, found in emitted.items():
        assert found == Counter(keys.keys[keys.group_starts[g] : keys.group_stops[g]].tolist()), g
    merges = int(np.sum(ops[:, 0] == 1))
    if window == 11 and calendar == "noleap":  # prefixes and suffixes shared: about 3 merges a group, not 10
        assert merges < 3.5 * ngroups
