"""Running-window climatologies of the statistics made of partials (mean, std, ...): the merge
program that pools the window keys' partials into groups, against an independent count of
the steps each group pools, and the results across merge tiles against NumPy.

The oracles here pool by hand (each step of a group and its ``window`` neighbours,
truncated at the ends of the series), without oceanflow's keys or plans.
"""

import warnings

import numpy as np
import pytest
import xarray as xr
from conftest import WINDOW_PLANS, make_field, monthday_labels

import oceanflow
from oceanflow.climatology import pooling
from oceanflow.climatology.pooling import (
    forget_plans,
    merge_program,
    order_keys,
    order_layout,
    window_keys,
)
from oceanflow.kernels.climatology import COPY, INIT, MERGE, MERGE_TILE
from oceanflow.timegroups import time_groups


def pooled_steps(codes, ngroups, window):
    """(group, step): how many times each group pools each time step."""
    half = window // 2
    pooled = np.zeros((ngroups, len(codes)), np.int64)
    for t, g in enumerate(codes.tolist()):
        if g >= 0:
            pooled[g, max(0, t - half) : t + half + 1] += 1
    return pooled


@pytest.mark.parametrize("calendar, freq, feb29, window", WINDOW_PLANS)
def test_merge_program_pools_each_groups_window_steps(calendar, freq, feb29, window):
    """The program run on counts of time steps instead of partials: every group's row
    ends with exactly the steps of its windows, as often as they are pooled; keys are
    read in place and never written; shared merges: about 3 a group for window=11."""
    obj = make_field(calendar, start="2001-03-10", periods=3 * 365 + 100, shape=(1, 1))
    groups = time_groups(obj.time, freq, feb29=feb29)
    ngroups = groups.labels.size
    keys = window_keys(groups.codes, window, ngroups)
    assert_pools_windows(keys, groups.codes, window)
    merges = int(np.sum(keys.program[:, 0] == MERGE))
    if window == 11 and calendar == "noleap":
        assert merges < 3.5 * ngroups


def assert_pools_windows(keys, codes, window):
    """``keys.program`` run on counts of time steps: each group's row is what :func:`pooled_steps` counts."""
    ngroups, ntime = keys.ngroups, len(codes)
    steps_of = np.zeros((keys.nkeys, ntime), np.int64)
    valid = keys.codes >= 0
    steps_of[keys.codes[valid], np.flatnonzero(valid)] = 1
    rows: dict[int, np.ndarray] = {}

    def read(i):
        return steps_of[-1 - i] if i < 0 else rows[i]

    for kind, d, a, b in keys.program.tolist():
        assert 0 <= d < ngroups + keys.scratch
        if kind == INIT:
            rows[d] = np.zeros(ntime, np.int64)
        elif kind == COPY:
            rows[d] = read(a).copy()
        else:
            assert kind == MERGE
            rows[d] = read(a) + read(b)
    expected = pooled_steps(codes, ngroups, window)
    for g in range(ngroups):
        np.testing.assert_array_equal(rows[g], expected[g], err_msg=str(g))


def test_remembered_plans_follow_the_codes_not_only_their_size():
    """Plans are remembered by the codes' content: two time axes of the same length and groups
    (one starting 100 days later) each pool their own windows, also when asked again; a second
    call returns the kept plan, whose arrays are read-only (shared between calls)."""
    first = np.tile(np.arange(365), 3)
    later = np.roll(first, 100)
    for codes in (first, later, first, later):
        assert_pools_windows(window_keys(codes, 11, 365), codes, 11)
    kept = window_keys(first.copy(), 11, 365)
    assert kept is window_keys(first, 11, 365)
    assert not kept.program.flags.writeable and not kept.codes.flags.writeable
    keys, ops = order_layout(later, 365, 11)
    assert order_layout(later.copy(), 365, 11)[0] is keys and not ops.flags.writeable


def test_remembered_plans_follow_the_window():
    """The same codes with window 11, then 5, then none: each lookup is its own window's plan
    (the counts of pooled steps, and the uncached build), not the one kept before it."""
    forget_plans()
    codes = np.tile(np.arange(365), 3)
    for window in (11, 5):
        keys = window_keys(codes, window, 365)
        assert_pools_windows(keys, codes, window)
        fresh = order_keys(codes, 365, window)
        np.testing.assert_array_equal(keys.codes, fresh.codes)
        np.testing.assert_array_equal(keys.program, merge_program(fresh.merge_plan(), 365)[0])
    order_layout(codes, 365, 11)
    keys, ops = order_layout(codes, 365, None)
    assert ops.shape == (0, 4) and keys.run_length == 0
    for g in (0, 200, 364):  # without a window: one key per group, the group's own steps
        assert keys.keys[keys.group_starts[g] : keys.group_stops[g]].tolist() == [g]
        k = keys.keys[keys.group_starts[g]]
        steps = keys.steps[keys.key_starts[k] : keys.key_stops[k]]
        np.testing.assert_array_equal(steps, np.flatnonzero(codes == g))


def test_remembered_plans_neither_freeze_nor_share_the_callers_codes():
    """The caller's codes stay writeable, and writing them afterwards changes neither the kept
    plan nor a later lookup of the original contents."""
    forget_plans()
    codes = np.tile(np.arange(12), 50)
    original = codes.copy()
    keys, _ = order_layout(codes, 12, None)
    assert codes.flags.writeable and keys.codes is not codes
    codes[:] = 0
    again, _ = order_layout(original.copy(), 12, None)
    np.testing.assert_array_equal(again.codes, original)
    np.testing.assert_array_equal(again.steps[again.key_starts[1] : again.key_stops[1]], np.arange(1, 600, 12))


def test_remembered_plans_skip_long_axes_and_can_be_forgotten(monkeypatch):
    """An axis longer than REMEMBERED_MAX_STEPS is built anew each time (nothing kept);
    forget_plans empties the store, so the next lookup builds again."""
    forget_plans()
    codes = np.tile(np.arange(365), 3)
    monkeypatch.setattr(pooling, "REMEMBERED_MAX_STEPS", codes.size - 1)
    first = window_keys(codes, 5, 365)
    assert window_keys(codes, 5, 365) is not first and not pooling._PLANS
    assert_pools_windows(first, codes, 5)
    monkeypatch.setattr(pooling, "REMEMBERED_MAX_STEPS", codes.size)
    kept = window_keys(codes, 5, 365)
    assert window_keys(codes, 5, 365) is kept
    forget_plans()
    assert not pooling._PLANS and window_keys(codes, 5, 365) is not kept


def test_merge_program_of_a_plan():
    """Keys read in place, a merge only one group takes written into its row, a group
    without keys started from the initial partials."""
    ops = np.array([[0, 0, 5, 0], [0, 1, 6, 0], [1, 0, 0, 1], [2, 0, 0, 0], [2, 0, 2, 0], [2, -1, 1, 0]])
    program, scratch = merge_program(ops, 3)
    assert program.tolist() == [[MERGE, 3, -6, -7], [COPY, 0, 3, 0], [COPY, 2, 3, 0], [INIT, 1, 0, 0]]
    assert scratch == 1


def _oracle(values, labels, stat, window, min_count, ddof):
    """(group, pixel) statistic of each label's pooled values, with NumPy's nan-functions."""
    half = window // 2
    found = [g for g in np.unique(labels) if g >= 0]
    functions = {
        "mean": np.nanmean,
        "sum": np.nansum,
        "min": np.nanmin,
        "max": np.nanmax,
        "var": lambda v, axis: np.nanvar(v, axis=axis, ddof=ddof),
        "std": lambda v, axis: np.nanstd(v, axis=axis, ddof=ddof),
        "count": lambda v, axis: np.sum(~np.isnan(v), axis=axis),
    }
    results = []
    for g in found:
        pooled = np.concatenate([values[max(0, t - half) : t + half + 1] for t in np.flatnonzero(labels == g)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = functions[stat](pooled.astype(np.float64), axis=0).astype(np.float64)
        if stat != "count":
            valid = np.sum(~np.isnan(pooled), axis=0)
            enough = valid >= (min_count if stat == "sum" else max(min_count, 1))
            result = np.where(enough, result, np.nan)
        results.append(result)
    return found, np.stack(results)


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("stat", ["mean", "sum", "count", "std", "var", "min", "max"])
def test_moments_with_a_window_across_merge_tiles(stat, chunked):
    """More pixels than a merge tile, and not a multiple of it; a leap-year calendar, year
    chunks (or NumPy in memory), NaN everywhere and pixels with no values at all; min_count and ddof."""
    shape = (2, 2 * MERGE_TILE + 13)  # a piece of rows is the pixels of a task: more than two tiles
    obj = make_field("standard", start="1999-12-25", periods=3 * 365 + 20, shape=shape, nan_fraction=0.3)
    obj[:, 0, :3] = np.nan  # no valid value at all
    options = {"ddof": 1} if stat in ("std", "var") else {}
    data = obj.chunk(time=365) if chunked else obj
    result = oceanflow.climatology(data, "dayofyear", stat, window=11, min_count=20, **options)
    labels = np.asarray(monthday_labels(obj.time))
    found, expected = _oracle(obj.values, labels, stat, 11, 20, options.get("ddof", 0))
    assert result.dayofyear.values.tolist() == found
    np.testing.assert_allclose(result.values, expected.reshape(result.shape), rtol=1e-12, atol=0)


@pytest.mark.parametrize("stat", ["mean", "median"])
def test_window_over_a_series_with_every_step_dropped(stat):
    """Only 29 February, dropped: no step is left in any group, with a window as without one."""
    time = xr.date_range("2000-02-29", periods=1, freq="D", use_cftime=False)
    obj = xr.DataArray(np.ones((1, 2), np.float32), dims=("time", "x"), coords={"time": time})
    plain = oceanflow.climatology(obj, "dayofyear", stat, feb29="drop")
    windowed = oceanflow.climatology(obj, "dayofyear", stat, feb29="drop", window=3)
    assert windowed.sizes == plain.sizes and windowed.dayofyear.size == 0
