"""oceanflow.mhw against the reference definitions (tests/mhw_oracle.py), pixel by pixel."""

import contextlib
import math
import warnings

import cftime
import dask.array
import mhw_oracle as ref
import numpy as np
import pytest
import xarray as xr

import oceanflow
from oceanflow import _memory, mhw
from oceanflow.kernels import mhw as kernels
from oceanflow.mhw import _blocks, _engine, _save, _summary

# The oracle's names and the kernels' rows, both ways: a row the kernels lack
# (a property deleted with its row) is a KeyError in the events Dataset, a row
# the oracle lacks (added without its definition) a KeyError in the oracle.
EVENT_NAMES = sorted(set(ref.PROPERTIES) | {"index_start", "index_end", "index_peak"} | set(kernels.EVENT_ROWS))


def red_sst(years=7, shape=(2, 3), calendar="standard", start="1990-01-01", seed=0, dtype="float64", phi=0.8):
    """Daily SST with a seasonal cycle, AR(1) noise and a trend (degC), (time, y, x)."""
    rng = np.random.default_rng(seed)
    days = {"360_day": 360, "noleap": 365, "365_day": 365, "all_leap": 366, "366_day": 366}.get(calendar, 365.25)
    n = int(round(years * days))
    time = xr.date_range(start, periods=n, freq="D", calendar=calendar, use_cftime=calendar != "standard")
    shocks = rng.standard_normal((n,) + shape)
    noise = np.empty_like(shocks)
    noise[0] = shocks[0]
    for t in range(1, n):
        noise[t] = phi * noise[t - 1] + shocks[t]
    phase = np.arange(n) / days
    values = 15 + 3 * np.cos(2 * np.pi * (phase - 0.6))[:, None, None] + 0.5 * noise
    values += 0.03 * phase[:, None, None]
    return xr.DataArray(
        values.astype(dtype),
        dims=("time", "y", "x"),
        coords={"time": time, "y": np.arange(shape[0]), "x": np.arange(shape[1])},
        name="sst",
        attrs={"units": "degC"},
    )


def dates_of(sst):
    return [(d.year, d.month, d.day) for d in sst.time.to_index()]


def assert_matches_reference(sst, found, table, rtol=1e-9, atol=1e-12, **options):
    """Every pixel of ``found`` (detect) and ``table`` (events) equals the oracle's."""
    dates = dates_of(sst)
    values = sst.transpose("time", ...).values
    checked = 0
    for j in range(values.shape[1]):
        for i in range(values.shape[2]):
            events, clim = ref.detect(dates, values[:, j, i], calendar=sst.time.dt.calendar, **options)
            pixel = {"y": j, "x": i}
            np.testing.assert_allclose(found.thresh[pixel], clim["thresh_year"], rtol=rtol, atol=atol)
            np.testing.assert_allclose(found.seas[pixel], clim["seas_year"], rtol=rtol, atol=atol)
            np.testing.assert_array_equal(found.event[pixel], clim["event"])
            np.testing.assert_array_equal(found.category[pixel], clim["category"])
            np.testing.assert_allclose(found.intensity[pixel], clim["intensity"], rtol=rtol, atol=atol)
            assert int(np.isfinite(table.duration[pixel]).sum()) == len(events)
            for k, event in enumerate(events):
                for name in EVENT_NAMES:
                    got, want = float(table[name][pixel][k]), float(event[name])
                    assert np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True), (pixel, k, name, got, want)
                start, got = found.time.values[event["index_start"]], table.time_start[pixel][k]
                if sst.time.dtype == object:  # days since reference_date (events' docstring), decoded by cftime
                    since, calendar = got.attrs["reference_date"], got.attrs["calendar_of_reference"]
                    got = cftime.num2date(float(got), f"days since {since}", calendar)
                assert got == start
            checked += len(events)
    assert checked > 0, "the test series should hold events"


# ---------------------------------------------------------------- the oracle, by hand


def test_oracle_running_mean_by_hand():
    # circular: the first value averages the last, the first and the second
    np.testing.assert_allclose(ref.circular_running_mean(np.array([1.0, 2, 3, 4, 5]), 3), [8 / 3, 2, 3, 4, 10 / 3])


def test_oracle_events_by_hand():
    """Climatology 0 and threshold 1: two runs of 5 days 2 days apart are one event."""
    temp = np.array([0, 2, 2, 2, 2, 2, 0, 0, 3, 3, 3, 3, 3, 0, 2, 2, 0], float)
    zeros, ones = np.zeros_like(temp), np.ones_like(temp)
    events, daily, category = ref.find_events(temp, zeros, ones, min_duration=5, max_gap=2)
    assert len(events) == 1  # the last run (2 days) is too short
    ev = events[0]
    assert (ev["index_start"], ev["index_end"], ev["index_peak"], ev["duration"]) == (1, 12, 8, 12)
    assert ev["intensity_max"] == 3 and ev["intensity_cumulative"] == 25
    assert ev["intensity_mean"] == pytest.approx(25 / 12)
    assert ev["intensity_max_relThresh"] == 2 and ev["intensity_cumulative_relThresh"] == 25 - 12
    assert ev["rate_onset"] == pytest.approx((3 - 0.5 * (2 + 0)) / (7 + 0.5))  # from half a day before
    assert ev["rate_decline"] == pytest.approx((3 - 0.5 * (3 + 0)) / (12 - 1 - 7 + 0.5))
    # categories: floor(1 + (T - 1) / (1 - 0)) = T: 2 strong, 3 severe; gap days 0
    assert ev["category"] == 3 and (ev["duration_strong"], ev["duration_severe"], ev["duration_moderate"]) == (5, 5, 0)
    np.testing.assert_array_equal(daily, [0] + [1] * 12 + [0] * 4)
    np.testing.assert_array_equal(category[1:13], [2] * 5 + [0, 0] + [3] * 5)
    unjoined, _, _ = ref.find_events(temp, zeros, ones, min_duration=5, join_gaps=False)
    assert [(e["index_start"], e["index_end"]) for e in unjoined] == [(1, 5), (8, 12)]


def test_oracle_rates_at_the_ends_of_the_series():
    temp = np.array([3, 2, 2, 2, 2], float)
    (ev,), _, _ = ref.find_events(temp, np.zeros(5), np.ones(5), min_duration=5)
    assert ev["rate_onset"] == 0.0  # peak on the first step of the series: over one day
    assert ev["rate_decline"] == pytest.approx((3 - 2) / (4 - 0 - 0))  # to the last value, no half day
    (ev,), _, _ = ref.find_events(temp[::-1].copy(), np.zeros(5), np.ones(5), min_duration=5)
    assert ev["rate_onset"] == pytest.approx((3 - 2) / 4) and ev["rate_decline"] == 0.0  # peak on the last step
    late = np.array([0, 2, 2, 2, 2, 3], float)
    (ev,), _, _ = ref.find_events(late, np.zeros(6), np.ones(6), min_duration=5)
    assert np.isnan(ev["rate_decline"])  # peak on the event's last day, not the series' first: 0 / 0


def test_oracle_threshold_by_hand():
    """Three years of the same ramp: each day's pool is its 11 neighbours in 3 years."""
    dates = [(d.year, d.month, d.day) for d in xr.date_range("2001-01-01", "2003-12-31", freq="D").to_pydatetime()]
    temp = np.tile(np.arange(365.0), 3)
    seas, thresh = ref.climatology(
        temp,
        ref.day_of_year([m for _, m, _ in dates], [d for _, _, d in dates]),
        np.array([y for y, _, _ in dates]),
        smooth=1,
    )
    # 1 July (day 183 in a leap year, step 181 of each year): pool 176..186, three times
    pool = np.tile(np.arange(176.0, 187.0), 3)
    assert seas[182] == pytest.approx(181) and thresh[182] == pytest.approx(np.percentile(pool, 90))
    assert seas[59] == pytest.approx(0.5 * (seas[58] + seas[60]))  # 29 February: filled


# ---------------------------------------------------------------- oceanflow against the oracle


@pytest.mark.parametrize(
    "calendar",
    ["standard", "gregorian", "proleptic_gregorian", "julian", "noleap", "365_day", "all_leap", "366_day", "360_day"],
)
def test_detect_and_events_equal_the_reference(calendar):
    sst = red_sst(calendar=calendar)
    sst[100:140, 0, 0] = np.nan  # a long gap
    sst[400:402, 1, 2] = np.nan  # a short one
    options = {"base": (1991, 1995)}
    with pytest.warns(mhw.BaseLengthWarning):
        found = mhw.detect(sst, **options)
    assert_matches_reference(sst, found, mhw.events(found), **options)
    assert found.thresh.sizes["dayofyear"] == (360 if calendar == "360_day" else 366)


def test_cold_spells_and_other_parameters_equal_the_reference():
    sst = red_sst(seed=3)
    options = {
        "pctile": 80,
        "window": 7,
        "smooth": 15,
        "min_duration": 3,
        "join_gaps": False,
        "cold": True,
        "base": (1991, 1994),
    }
    with pytest.warns(mhw.BaseLengthWarning):
        found = mhw.detect(sst, **options)
    table = mhw.events(found)
    assert_matches_reference(sst, found, table, **options)
    assert float(table.intensity_max.max()) < 0 and float(table.rate_onset.min()) >= 0


def test_no_smoothing_and_a_longer_gap():
    sst = red_sst(seed=5, years=4)
    options = {"smooth": None, "max_gap": 4, "pctile": 85}
    with pytest.warns(mhw.BaseLengthWarning):
        found = mhw.detect(sst, **options)
    assert_matches_reference(sst, found, mhw.events(found), smooth=1, max_gap=4, pctile=85)


def test_thresholds_of_more_pixels_than_one_tile_equal_the_reference():
    """600 pixels: the kernel's tiles (LANES = 256: three of 208, the last one 184 wide), each pixel's
    seas and thresh as the oracle's, at the tiles' edges and between."""
    sst = red_sst(seed=10, years=3, shape=(3, 200), dtype="float32")
    sst[::5, 1, 7] = np.nan
    with pytest.warns(mhw.BaseLengthWarning), oceanflow.set_options(num_threads=1):  # (one call: every tile)
        clim = mhw.thresholds(sst, window=5)
    dates = dates_of(sst)
    for pixel in sorted({*range(0, 600, 7), 207, 208, 415, 416, 599}):
        j, i = divmod(pixel, 200)
        _, want = ref.detect(dates, sst.values[:, j, i].astype(np.float64), window=5)
        np.testing.assert_allclose(clim.thresh[:, j, i], want["thresh_year"], rtol=1e-12, err_msg=str(pixel))
        np.testing.assert_allclose(clim.seas[:, j, i], want["seas_year"], rtol=1e-12, err_msg=str(pixel))


def test_a_low_percentile_with_gaps_equals_the_reference():
    """Below the median the threshold's order statistics are merged from the bottom of the pool."""
    sst = red_sst(seed=6, years=5)
    sst[30:45, 1, 1] = np.nan
    sst[::7, 0, 2] = np.nan  # pools of unequal sizes
    with pytest.warns(mhw.BaseLengthWarning):
        clim = mhw.thresholds(sst, pctile=30, window=5)
    for j in range(2):
        for i in range(3):
            _, want = ref.detect(dates_of(sst), sst.values[:, j, i], pctile=30, window=5)
            np.testing.assert_allclose(clim.thresh[:, j, i], want["thresh_year"], rtol=1e-12)
            np.testing.assert_allclose(clim.seas[:, j, i], want["seas_year"], rtol=1e-12)


@pytest.mark.parametrize("cold", [False, True])
def test_days_with_empty_pools_are_smoothed_over_the_valid_days_as_the_reference(cold):
    """A pixel missing the same weeks of every year: those days' pools are empty (NaN), and the
    circular running mean runs over its valid days only, unlike the pixels beside it."""
    sst = red_sst(seed=7, years=4)
    june = (sst.time.dt.month == 6) & (sst.time.dt.day <= 20)
    sst[:, 0, 1] = sst[:, 0, 1].where(~june)
    with pytest.warns(mhw.BaseLengthWarning):
        clim = mhw.thresholds(sst, window=5, cold=cold)
    assert np.isnan(clim.thresh[160, 0, 1]) and np.isfinite(clim.thresh[160, 0, 0])
    for j in range(2):
        for i in range(3):
            _, want = ref.detect(dates_of(sst), sst.values[:, j, i], window=5, cold=cold)
            np.testing.assert_allclose(clim.thresh[:, j, i], want["thresh_year"], rtol=1e-12)
            np.testing.assert_allclose(clim.seas[:, j, i], want["seas_year"], rtol=1e-12)


@pytest.mark.parametrize("cold", [False, True])
def test_categories_of_infinite_and_huge_ratios_are_clipped_as_the_reference(cold):
    """A threshold equal to the climatology (an infinite ratio) or an extreme value (a ratio past
    int64) is category 4 as the reference's clip, not an overflowed floor wrapped to 0."""
    sst = red_sst(seed=8, years=4)
    with pytest.warns(mhw.BaseLengthWarning):
        clim = mhw.thresholds(sst, window=5, cold=cold)
    clim["thresh"][:, 0, 0] = clim["seas"][:, 0, 0]  # every excess is infinitely many times the margin
    sst[400:410, 0, 1] = -1e30 if cold else 1e30
    found = mhw.detect(sst, clim, cold=cold)
    day = ref.day_of_year(sst.time.dt.month.values, sst.time.dt.day.values) - 1
    for j, i in [(0, 0), (0, 1)]:
        seas, thresh = clim.seas.values[day, j, i], clim.thresh.values[day, j, i]
        values = sst.values[:, j, i]
        filled = np.where(np.isnan(values), seas, values)
        sign = -1.0 if cold else 1.0  # the oracle finds warm events: cold spells are warm ones of -T
        _, daily, category = ref.find_events(sign * filled, sign * seas, sign * thresh)
        np.testing.assert_array_equal(found.event.values[:, j, i], daily)
        np.testing.assert_array_equal(found.category.values[:, j, i], category)
        assert (category == 4).sum() >= 10


@pytest.mark.parametrize(
    "options",
    [
        {"min_duration": 1, "join_gaps": True, "max_gap": 2},
        {"min_duration": 5, "join_gaps": True, "max_gap": 2, "cold": True},
        {"min_duration": 3, "join_gaps": False, "max_gap": 2},
        {"min_duration": 2, "join_gaps": True, "max_gap": 0},
    ],
    ids=["one day", "cold", "unjoined", "no gap"],
)
@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_events_at_the_ends_beside_gaps_and_missing_days_equal_the_reference(options, calendar):
    """Runs on the series' first and last days, gaps of max_gap and max_gap + 1 days, missing days inside and
    next to runs, more pixels than one word of the kernel's bits (64), all-NaN land: daily events and
    categories as the oracle's on the filled series, the land silent."""
    sst = red_sst(seed=9, years=4, shape=(3, 30), calendar=calendar, dtype="float32")
    cold = options.get("cold", False)
    with pytest.warns(mhw.BaseLengthWarning):
        clim = mhw.thresholds(sst, window=5, cold=cold)
    day = np.asarray(mhw.detect(sst, clim, **options).time.dt.dayofyear) - 1
    if calendar == "noleap":  # the 366-day climatological year: 1 March onwards is one row later
        day = day + (day >= 59)
    sign = -1.0 if cold else 1.0
    n, gap = sst.sizes["time"], options["max_gap"]
    for pixel in range(30):
        j, i = divmod(pixel, 10)
        seas, thresh = clim.seas.values[day, j, i], clim.thresh.values[day, j, i]
        up = thresh + sign * (1 + pixel % 4)  # beyond the threshold
        series = sst.values[:, j, i]
        starts = [0, 40, 40 + 5 + gap, 100, 100 + 5 + gap + 1, n - 5]
        for start in starts:
            series[start : start + 5] = up[start : start + 5]
            series[start + 5 : start + 5 + gap] = seas[start + 5 : start + 5 + gap]
        if pixel % 3 == 0:
            series[[102, 105 + gap + 1]] = np.nan  # inside an event and just before the next
        if pixel % 5 == 0:
            series[[n - 6, n - 1]] = np.nan  # next to the last event and on the last day
    sst[:, 2, 9] = np.nan  # land
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = mhw.detect(sst, clim, **options).compute()
    assert np.isnan(found.intensity[:, 2, 9]).all() and (found.event[:, 2, 9] == 0).all()
    for pixel in range(29):
        j, i = divmod(pixel, 10)
        seas, thresh = clim.seas.values[day, j, i], clim.thresh.values[day, j, i]
        values = sst.values[:, j, i].astype(np.float64)
        filled = np.where(np.isnan(values), seas, values)
        rest = {k: v for k, v in options.items() if k != "cold"}
        _, daily, category = ref.find_events(sign * filled, sign * seas, sign * thresh, **rest)
        np.testing.assert_array_equal(found.event.values[:, j, i], daily, err_msg=str(pixel))
        np.testing.assert_array_equal(found.category.values[:, j, i], category, err_msg=str(pixel))
        assert daily[0] == 1 and (daily[-1] == daily.max() > 1 or pixel % 5 == 0)  # (the last day missing)


@pytest.mark.filterwarnings("ignore::oceanflow.mhw.BaseLengthWarning")
def test_a_pooled_event_table_reuses_a_pool_block_and_equals_the_fresh_one():
    """mhw.save's tables put aside (_engine.POOLED) are computed into a block of the pool, starting on a
    page, whatever a previous user left in it (here bytes of NaN payloads and junk): every output of
    the block function bit for bit that of the freshly allocated table (tables=True)."""
    from oceanflow.io.uncached import PAGE

    sst = red_sst(seed=6, dtype="float32", shape=(9, 13))
    sst[:, 2, 3] = np.nan  # land
    x = np.ascontiguousarray(sst.values.reshape(sst.shape[0], -1))
    defaults = mhw._detection._detect_defaults()
    options = {k: defaults[k] for k in ("base", "pctile", "window", "smooth", "cold")}
    detection = {k: defaults[k] for k in ("min_duration", "join_gaps", "max_gap")}
    setup = mhw._detection._detection_setup(sst, None, options, detection)[1]
    kwargs = {
        "day": setup.days.row,
        "params": np.array([5, 1, 2, 0, 0, 0], np.float64),
        "thresholds": {
            "pools": _engine._pools(setup.days, setup.first, setup.last, setup.window),
            "pctile": setup.pctile,
            "sign": 1.0,
            "smooth": setup.smooth,
            "feb29": setup.days.days == 366,
        },
        "period_of_step": np.arange(x.shape[0]) // 365,
    }
    fresh = _engine._mhw_block(x, **kwargs, tables=True)
    with _memory.returning_freed_blocks():
        slots = int(fresh[-1].shape[0] // len(kernels.EVENT_ROWS))
        used = _engine._pooled_table(len(kernels.EVENT_ROWS), slots, x.shape[1])
        used.base[...] = np.arange(used.base.size, dtype=np.uint8)  # (what a previous block left)
        address, used = used.ctypes.data, None  # (freed: only the pool holds its block)
        pooled = _engine._mhw_block(x, **kwargs, tables=_engine.POOLED)
        assert pooled[-1].ctypes.data == address and address % PAGE == 0
    assert len(pooled) == len(fresh)
    for a, b in zip(pooled, fresh, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}"))


@pytest.mark.parametrize("cold", [False, True])
def test_event_table_kernel_on_runs_back_to_back_at_the_ends_and_past_its_slots_equals_the_oracle(cold):
    """event_properties on a block of hand-made runs (more pixels than one word of its bits, 64): runs on
    the first and the last step, two numbers back to back with no step between, one-step runs, missing
    days inside runs, more events than the table's slots (the last ones left out of the table, counted in
    the summary), a pixel without climatology: each event's rows and the summary's as the oracle's."""
    rng = np.random.default_rng(3)
    n, p, slots = 120, 70, 4
    sign = -1.0 if cold else 1.0
    day = np.arange(n) % 40
    seas = rng.normal(15, 2, (40, p))
    thresh = seas + sign * rng.uniform(0.2, 1.5, (40, p))
    runs = [(0, 3), (10, 10), (11, 14), (30, 31), (50, 60), (62, 62), (n - 4, n - 1)]
    event = np.zeros((n, p), np.int32)
    for j in range(p):
        for k, (start, end) in enumerate(runs[j % 3 :]):
            event[start : end + 1, j] = k + 1
    # beyond the threshold in events (as detect finds them), anywhere outside; missing days filled as detect
    temp = np.where(event > 0, thresh[day], seas[day]) + sign * rng.uniform(0.01, 4, (n, p))
    intensity = temp - seas[day]
    missing = (rng.random((n, p)) < 0.1) & (event > 0)
    intensity[missing] = np.nan
    temp[missing] = seas[day][missing]
    ratio = sign * (temp - thresh[day]) / (sign * (thresh[day] - seas[day]))
    category = np.where(event > 0, np.clip(np.floor(1 + ratio), 0, 4), 0).astype(np.int8)
    period = np.arange(n) // 50
    valid = np.ones(p)
    valid[5] = 0
    table, summary = _engine._event_table(
        intensity,
        event,
        category,
        seas,
        thresh,
        day,
        np.array([float(cold)]),
        slots,
        period_of_step=period,
        valid=valid[None],
    )
    table = dict(zip(kernels.EVENT_ROWS, table, strict=True))
    summary = dict(zip(kernels.SUMMARY_ROWS, summary, strict=True))
    for j in range(p):
        series = (sign * temp[:, j], sign * seas[day, j], sign * thresh[day, j])
        events = [ref._properties(*series, start, end, n) for start, end in runs[j % 3 :]]
        for event_ in events:  # (the oracle finds warm events: cold spells are warm ones of -T)
            for name in ref.PROPERTIES:
                if name.startswith("intensity") and not name.startswith("intensity_var"):
                    event_[name] *= sign
        for k in range(slots):
            for name in kernels.EVENT_ROWS:
                want = events[k][name] if k < len(events) else np.nan
                assert np.isclose(table[name][k, j], want, rtol=1e-12, atol=1e-12, equal_nan=True), (j, k, name)
        blocks = ref.block_average(period, events, event_days=event[:, j])
        for name in kernels.SUMMARY_ROWS:
            want = blocks[name] if valid[j] else np.full(3, np.nan)
            np.testing.assert_allclose(summary[name][:, j], want, rtol=1e-12, atol=1e-12, err_msg=f"{j} {name}")


def test_dask_time_chunked_float32_equals_numpy():
    sst = red_sst(seed=1, dtype="float32", shape=(3, 4))
    sst[:, 2, 3] = np.nan  # land
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        eager = mhw.detect(sst)
        lazy = mhw.detect(sst.chunk({"time": 200, "y": 2}))
    assert lazy.intensity.chunks is not None and lazy.intensity.dtype == np.float32
    xr.testing.assert_identical(eager.compute(), lazy.compute())
    assert_matches_reference(sst, eager, mhw.events(eager), rtol=1e-5, atol=2e-6)
    assert np.isnan(eager.thresh[:, 2, 3]).all() and (eager.event[:, 2, 3] == 0).all()
    table = mhw.events(lazy)
    assert table.duration.chunks is not None
    xr.testing.assert_identical(table.compute(), mhw.events(eager))


@pytest.mark.parametrize("chunks", [{"time": 97, "y": 4}, {"time": 97, "x": 3}, {"time": 97}])
def test_dask_input_split_in_space_with_an_in_memory_clim_equals_numpy(chunks):
    # each spatial block must meet its own pixels' thresholds, not the first block's
    sst = red_sst(seed=1, dtype="float32", shape=(6, 5))
    sst[:, 4, 0] = np.nan  # land
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst)
        eager = mhw.detect(sst, clim)
        with dask.config.set(num_workers=2):
            lazy = mhw.detect(sst.chunk(chunks), clim).compute()
    xr.testing.assert_identical(eager, lazy)


@pytest.mark.parametrize("chunks", [None, {"time": 97}, {"time": 97, "y": 2}])
def test_a_clim_with_dayofyear_last_equals_the_reference(chunks):
    """A user's clim laid out (x, y, dayofyear) meets its pixels by name (review finding:
    it crashed in the blocks' transpose); the detection equals the reference, its clim
    laid out as the detection's (dayofyear, y, x); events and summary of a detection
    laid out (x, y, time) equal those of the detection as returned."""
    sst = red_sst(seed=4, shape=(3, 4))
    sst[:, 2, 1] = np.nan  # land
    with warnings.catch_warnings(), dask.config.set(num_workers=2):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst).transpose("x", "y", "dayofyear")
        found = mhw.detect(sst if chunks is None else sst.chunk(chunks), clim).compute()
    assert found.seas.dims == found.thresh.dims == ("dayofyear", "y", "x")
    assert_matches_reference(sst, found, mhw.events(found))
    turned = found.transpose("x", "y", ...)  # events and summary of a detection laid out (x, y, time)
    for table in (mhw.events, mhw.summary):
        expected, got = table(found), table(turned).compute()
        for name in expected.variables:
            xr.testing.assert_identical(got[name].variable.transpose(*expected[name].dims), expected[name].variable)


@pytest.mark.parametrize("with_clim", [False, True])
def test_a_time_chunked_input_whole_in_space_is_split_into_blocks_without_rechunk_tasks(with_clim):
    """Time-sliced storage (each chunk the whole grid) split into spatial blocks, one per thread:
    each block's task joins its own piece of every time chunk (no split and merge task per
    piece), and its pixels meet their own thresholds; equal to the in-memory detection."""
    sst = red_sst(seed=2, dtype="float32", shape=(7, 5))
    sst[:, 4, 0] = np.nan  # land
    with warnings.catch_warnings(), dask.config.set(num_workers=3):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst) if with_clim else None
        eager = mhw.detect(sst, clim)
        lazy = mhw.detect(sst.chunk({"time": 97}), clim)
        layers = list(lazy.intensity.data.__dask_graph__().layers)
        assert len(lazy.intensity.chunks[1]) == 3 and len(lazy.intensity.chunks[0]) == 1
        assert [name for name in layers if "rechunk" in name] == [] and any("mhw-series" in n for n in layers)
        xr.testing.assert_identical(eager, lazy.compute())


@pytest.mark.parametrize("where", ["distributed", "over memory"])
def test_a_time_chunked_input_is_rechunked_on_a_cluster_or_spilled_beyond_the_held_bytes(where, tmp_path):
    """On a distributed cluster, time-sliced input is rechunked into its blocks; locally, when the
    whole input exceeds what may be held (oceanflow.mhw.held-bytes), it passes through a scratch
    file: never joined by tasks that each depend on every time chunk (review finding: each worker
    would fetch the whole input; locally all of it is held until the last join): no task reads
    more than one input chunk on the cluster, nor more than a quarter of held-bytes per thread of
    it locally (a run of consecutive time chunks, written at once), and the detection and events
    equal the reference."""
    import distributed

    sst = red_sst(seed=5, shape=(4, 5))
    sst[:, 3, 0] = np.nan  # land
    chunked = sst.chunk({"time": 97})
    inputs = set(dask.core.flatten(chunked.data.__dask_keys__()))
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        if where == "distributed":
            threads = {"n_workers": 2, "threads_per_worker": 2, "processes": False}  # a block per thread: split
            cluster = stack.enter_context(distributed.LocalCluster(**threads, dashboard_address=None))
            stack.enter_context(distributed.Client(cluster))
        else:
            limits = {"oceanflow.mhw.held-bytes": sst.nbytes - 1, "temporary-directory": str(tmp_path)}
            stack.enter_context(dask.config.set(limits, scheduler="threads", num_workers=2))
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        lazy = mhw.detect(chunked)
        assert len(lazy.intensity.chunks[1]) + len(lazy.intensity.chunks[2]) > 2  # split in space
        graph = lazy.intensity.data.__dask_graph__()
        most = 1 if where == "distributed" else (sst.nbytes - 1) // (4 * 2 * chunked.data.blocks[0].nbytes)
        assert 1 < len(chunked.chunks[0]) // 4 and most < len(chunked.chunks[0]) // 4
        assert max(len(deps & inputs) for deps in graph.get_all_dependencies().values()) == most
        assert any(name.startswith("mhw-spill") for name in graph.layers) == (where == "over memory")
        found = lazy.compute()
        table = mhw.events(mhw.detect(chunked)).compute()
    assert_matches_reference(sst, found, table)


def _open_in(directory):
    """This process's open descriptors on files in ``directory`` (unlinked ones too)."""
    import os

    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith(str(directory))]


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("stored", [{"time": 97}, {"time": 97, "y": (1, 3, 3)}, {"time": 500, "x": (2, 3)}])
def test_a_spilled_input_equals_the_in_memory_detection_with_one_task_per_run_of_chunks_and_block(stored, tmp_path):
    """Beyond oceanflow.mhw.held-bytes, on the local scheduler, each task of a run of consecutive time
    chunks (of one chunk in space) writes its blocks' pieces into a scratch file in dask's
    temporary-directory and each block's task reads its series back: tasks, one per run, one per
    block and one between them (blocks cut at the stored chunks' ends, small enough that a block per
    thread, SPILLED_COPIES times its series, fits held-bytes; runs of chunks taking at most a quarter
    of held-bytes per thread); the detection (thresholds in the same tasks, or given) equals the
    in-memory one; the file is gone from the directory at once and its descriptor closed once every
    block is read, leaving nothing open; computed twice, the same."""
    from oceanflow.mhw import _blocks

    sst = red_sst(seed=3, dtype="float32", shape=(7, 5))
    sst[:, 5, 1] = np.nan  # land
    chunked = sst.chunk(stored)
    config = {"oceanflow.mhw.held-bytes": sst.nbytes - 1, "temporary-directory": str(tmp_path)}
    with warnings.catch_warnings(), dask.config.set(config, num_workers=2):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst)
        for given in (None, clim):
            lazy = mhw.detect(chunked, given)
            spill = [layer for name, layer in lazy.intensity.data.__dask_graph__().layers.items() if "spill" in name]
            blocks = math.prod(len(c) for c in lazy.intensity.chunks[1:])
            runs = _runs_of_input_chunks(lazy.intensity.data.__dask_graph__(), chunked.data)
            assert len(spill) == 1 and len(spill[0]) == len(runs) + blocks + 1
            steps = [sum(chunked.chunks[0][t] for t, *_ in run) for run in runs]
            assert max(steps) * math.prod(max(c) for c in chunked.chunks[1:]) * 4 * 2 * 4 <= sst.nbytes - 1
            largest = math.prod(max(c) for c in lazy.intensity.chunks[1:]) * sst.sizes["time"] * 4
            assert 2 * _blocks.SPILLED_COPIES * largest <= sst.nbytes - 1 < 4 * _blocks.SPILLED_COPIES * largest
            for _ in range(2):
                xr.testing.assert_identical(mhw.detect(sst, given), lazy.compute())
                assert list(tmp_path.iterdir()) == [] and _open_in(tmp_path) == []


def _runs_of_input_chunks(graph, array):
    """The input chunks' indices read by each task of ``graph`` that reads some of ``array``'s chunks:
    checked to be runs of consecutive time chunks of one chunk in space, each chunk in one run."""
    inputs = set(dask.core.flatten(array.__dask_keys__()))
    runs = []
    for deps in graph.get_all_dependencies().values():
        read = sorted(key[1:] for key in deps & inputs)
        if read:
            assert [index[1:] for index in read] == [read[0][1:]] * len(read)  # one chunk in space
            assert [index[0] for index in read] == list(range(read[0][0], read[0][0] + len(read)))  # consecutive
            runs.append(read)
    assert sorted(index for run in runs for index in run) == sorted(key[1:] for key in inputs)  # each chunk once
    return runs


@pytest.mark.parametrize("stored", [{"time": 97}, {"time": 97, "y": (1, 3, 3)}])
def test_a_spill_writes_each_blocks_pieces_of_a_run_of_time_chunks_at_once(stored, tmp_path, monkeypatch):
    """Each task of a run of consecutive time chunks writes, for each block, its pieces of them (each
    in its own whole pages) in one write: as many writes as runs times their blocks, each as long as
    its pieces' pages, none overlapping; the detection equals the in-memory one."""
    import itertools

    from oceanflow.io.uncached import PAGE
    from oceanflow.mhw import _blocks

    writes = []
    pwrite = _blocks._pwrite_all

    def probe(fd, view, offset):
        writes.append((offset, memoryview(view).nbytes))
        pwrite(fd, view, offset)

    monkeypatch.setattr(_blocks, "_pwrite_all", probe)
    sst = red_sst(seed=6, dtype="float32", shape=(7, 5))
    sst[:, 2, 3] = np.nan  # land
    chunked = sst.chunk(stored)
    config = {"oceanflow.mhw.held-bytes": sst.nbytes - 1, "temporary-directory": str(tmp_path)}
    with warnings.catch_warnings(), dask.config.set(config, num_workers=2):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        lazy = mhw.detect(chunked)
        runs = _runs_of_input_chunks(lazy.intensity.data.__dask_graph__(), chunked.data)
        xr.testing.assert_identical(mhw.detect(sst), lazy.compute())
    assert max(len(run) for run in runs) > 1
    blocks = [np.cumsum((0,) + c) for c in lazy.intensity.chunks[1:]]  # the blocks' edges
    stored = [np.cumsum((0,) + c) for c in chunked.chunks[1:]]  # the stored chunks' edges
    expected = []
    for run in runs:  # each block within the run's chunk in space: its pieces' whole pages
        y0, y1, x0, x1 = (int(edges[k + i]) for edges, k in zip(stored, run[0][1:], strict=True) for i in (0, 1))
        for ya, yb in itertools.pairwise(blocks[0]):
            for xa, xb in itertools.pairwise(blocks[1]):
                if y0 <= ya < y1 and x0 <= xa < x1:
                    pixels = int((yb - ya) * (xb - xa))
                    expected.append(sum(-(-chunked.chunks[0][t] * pixels * 4 // PAGE) * PAGE for t, *_ in run))
    assert sorted(size for _, size in writes) == sorted(expected)
    ends = sorted((offset, offset + size) for offset, size in writes)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("route", ["direct", "small reads", "page cache", "refused", "read refused"])
def test_a_spill_past_the_page_cache_or_through_it_gives_the_in_memory_detection(route, tmp_path, monkeypatch):
    """The scratch file's pieces written with O_DIRECT where the file system takes it (findmnt: ext4 or
    xfs), read back a few pages at a time ("small reads"), through the page cache when the environment
    switches O_DIRECT off, and from the first refused O_DIRECT write or read (EINVAL) on: the detection
    equals the in-memory one every way (uneven time chunks, a land pixel)."""
    import errno
    import fcntl
    import os
    import subprocess

    from debian_tools import require

    from oceanflow.mhw import _blocks

    kind = subprocess.run(
        [require("findmnt"), "-n", "-o", "FSTYPE", "--target", str(tmp_path)], capture_output=True, text=True
    ).stdout.strip()
    if route != "page cache" and kind not in {"ext4", "xfs"}:
        pytest.skip(f"{tmp_path} is on {kind}: no O_DIRECT scratch file")
    writes, reads = [], []  # whether each piece went to (came from) an O_DIRECT descriptor

    def probe(real, seen, refuse):
        def call(fd, buffer, offset):
            direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
            seen.append(direct)
            if direct and refuse:
                raise OSError(errno.EINVAL, "Invalid argument")
            real(fd, buffer, offset)

        return call

    monkeypatch.setattr(_blocks, "_pwrite_all", probe(_blocks._pwrite_all, writes, route == "refused"))
    monkeypatch.setattr(_blocks, "_pread_into", probe(_blocks._pread_into, reads, route == "read refused"))
    if route == "page cache":
        monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", "0")
    if route in ("small reads", "read refused"):
        monkeypatch.setattr(_blocks, "SPILL_READ_BYTES", 8192)
    sst = red_sst(seed=4, dtype="float32", shape=(7, 5))
    sst[:, 5, 1] = np.nan  # land
    config = {"oceanflow.mhw.held-bytes": sst.nbytes - 1, "temporary-directory": str(tmp_path)}
    with warnings.catch_warnings(), dask.config.set(config, num_workers=2):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        lazy = mhw.detect(sst.chunk({"time": 97, "y": (1, 3, 3)}))
        assert any("spill" in name for name in lazy.intensity.data.__dask_graph__().layers)
        xr.testing.assert_identical(mhw.detect(sst), lazy.compute())
    assert writes and list(tmp_path.iterdir()) == [] and _open_in(tmp_path) == []
    if route in ("direct", "small reads"):
        assert all(writes) and all(reads)
    elif route == "page cache":
        assert not any(writes) and not any(reads)
    elif route == "refused":  # (each thread's first writes in flight may have been tried before the refusal was seen)
        assert 1 <= sum(writes) <= 2 * _blocks.SPILL_WRITES_IN_FLIGHT and not writes[-1]
    else:  # all written with O_DIRECT; the reads in flight when the first was refused tried it, none after
        assert all(writes) and len(reads) > 4 * _blocks.SPILL_READS_IN_FLIGHT
        assert 1 <= sum(reads) <= 2 * _blocks.SPILL_READS_IN_FLIGHT and not reads[-1]


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("failing", ["input chunk", "block"])
def test_a_failed_spilled_detection_leaves_no_scratch_file(tmp_path, failing):
    """A task failing while the input is spilled (an input chunk's read, after earlier chunks were
    written; or a block's kernel, after its series was read): the error reaches the caller,
    nothing is left in the temporary directory, and the scratch file's descriptor is closed once
    the graph is dropped (dask's synchronous scheduler, for blocks of 3 threads: no task still
    running after the error holds the graph)."""
    import gc

    sst = red_sst(seed=3, dtype="float32", shape=(7, 5))
    sst[:, 6, 4] = np.nan
    chunked = sst.chunk({"time": 97})

    def input_failing(x, block_info=None):
        if block_info[0]["chunk-location"][0] == 5:
            raise RuntimeError("injected failure")
        return x

    def block_failing(x, *args, **kwargs):
        if np.isnan(x).all(axis=0).any():  # the block of pixel (6, 4)
            raise RuntimeError("injected failure")
        return _engine._mhw_block(x, *args, **kwargs)

    if failing == "input chunk":
        chunked = chunked.copy(data=chunked.data.map_blocks(input_failing, dtype=chunked.dtype))
    config = {"oceanflow.mhw.held-bytes": 1000, "temporary-directory": str(tmp_path)}
    with warnings.catch_warnings(), dask.config.set(config, num_workers=3, scheduler="sync"):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        with pytest.MonkeyPatch.context() as patch:
            if failing == "block":
                patch.setattr(_engine, "_mhw_block", block_failing)  # (taken into the graph)
            lazy = mhw.detect(chunked)
        assert any("spill" in name for name in lazy.intensity.data.__dask_graph__().layers)
        with pytest.raises(RuntimeError, match="injected failure"):
            lazy.compute()
        assert list(tmp_path.iterdir()) == []
        del lazy
        gc.collect()
        assert _open_in(tmp_path) == []


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("problem", ["full disk", "missing directory"])
def test_a_spill_that_cannot_write_says_what_to_do_and_frees_its_file_at_once(tmp_path, monkeypatch, problem):
    """The scratch file's disk full (ENOSPC on the third piece written) or dask's temporary-directory
    missing: an OSError with its errno that names the directory and the two config keys to change,
    and, the graph still held, nothing left in the directory and no descriptor open (a full disk's
    space is freed at once, not when the graph is collected)."""
    import errno

    from oceanflow.mhw import _blocks

    calls = []

    def full(fd, view, offset):
        calls.append(offset)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        os_pwrite_all(fd, view, offset)

    os_pwrite_all = _blocks._pwrite_all
    if problem == "full disk":
        monkeypatch.setattr(_blocks, "_pwrite_all", full)
    directory = tmp_path if problem == "full disk" else tmp_path / "missing"
    sst = red_sst(seed=3, dtype="float32", shape=(7, 5)).chunk({"time": 97})
    config = {"oceanflow.mhw.held-bytes": 1000, "temporary-directory": str(directory)}
    with warnings.catch_warnings(), dask.config.set(config, scheduler="sync"):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        lazy = mhw.detect(sst)
        with pytest.raises(OSError, match=f"scratch file in {directory}.*temporary-directory.*held-bytes") as caught:
            lazy.compute()
    assert caught.value.errno == (errno.ENOSPC if problem == "full disk" else errno.ENOENT)
    assert list(tmp_path.iterdir()) == [] and _open_in(tmp_path) == []  # (lazy, its graph, still held)
    del lazy


@pytest.mark.parametrize("side", ["writes", "reads"])
def test_a_spill_keeps_writes_and_reads_in_flight_while_it_copies_and_returns_once_they_are_done(side):
    """A put task's writes (one per block) and a block's reads (here one per time chunk) go to the
    spill's threads, SPILL_WRITES_IN_FLIGHT or SPILL_READS_IN_FLIGHT of them at once while the task
    copies: each here waits until that many have begun (never, were they one at a time: the test
    would time out); every one has ended when the task returns, and each block reads back as
    written (oracle: the series' own slices)."""
    import tempfile
    import threading

    from oceanflow.io.uncached import PAGE
    from oceanflow.mhw import _blocks

    series = np.arange(4 * 6, dtype="float32").reshape(4, 6)
    state = {"active": 0, "most": 0, "ended": 0}
    name = "_pwrite_all" if side == "writes" else "_pread_into"
    lock, real = threading.Condition(), getattr(_blocks, name)
    wanted = _blocks.SPILL_WRITES_IN_FLIGHT if side == "writes" else _blocks.SPILL_READS_IN_FLIGHT

    def overlapping(*args):
        with lock:
            state["active"] += 1
            state["most"] = max(state["most"], state["active"])
            lock.notify_all()
            assert lock.wait_for(lambda: state["most"] >= wanted, timeout=10), f"{side} one at a time"
        real(*args)
        with lock:
            state["active"] -= 1
            state["ended"] += 1

    with tempfile.TemporaryDirectory() as directory:
        spill = _blocks._Spill(4, (2, 2), np.float32, ((2, 2, 2),), directory)
        pieces = [((b,), (slice(2 * b, 2 * b + 2),)) for b in range(3)]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_blocks, name, overlapping)
            patch.setattr(_blocks, "SPILL_READ_BYTES", PAGE)  # a read per time chunk's slot
            for t0 in (0, 2):
                spill.put([series[t0 : t0 + 2]], t0, pieces)
                assert state["ended"] == (3 * (1 + t0 // 2) if side == "writes" else 0) and state["active"] == 0
            read = []
            for b in range(3):
                read.append(spill.get((b,), None))
                assert state["ended"] == (6 if side == "writes" else 2 * (b + 1)) and state["active"] == 0
        for b in range(3):
            np.testing.assert_array_equal(read[b], series[:, 2 * b : 2 * b + 2])
    assert state["most"] == wanted


def test_a_scratch_file_stays_open_while_another_compute_writes_it():
    """Two computes of one spilled graph at once (threads) share its scratch file: the first's last
    read back must not close the descriptor while the second writes (its write would then go to a
    closed descriptor, or to whatever file took its number).  Oracle: the series written, read back."""
    import tempfile

    from oceanflow.mhw import _blocks

    series = np.arange(8, dtype="float32").reshape(4, 2)
    with tempfile.TemporaryDirectory() as directory:
        spill = _blocks._Spill(4, (4,), np.float32, ((2,),), directory)
        spill.put([series], 0, [((0,), (slice(0, 2),))])  # the first compute's write
        real = _blocks._pwrite_all
        read = []

        def first_reads_meanwhile(fd, view, offset):
            read.append(spill.get((0,), None))  # the first compute's read, during the second's write
            real(fd, view, offset)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_blocks, "_pwrite_all", first_reads_meanwhile)
            spill.put([series + 10], 0, [((0,), (slice(0, 2),))])  # the second compute's write
        np.testing.assert_array_equal(read[0], series)
        np.testing.assert_array_equal(spill.get((0,), None), series + 10)
        assert spill.fd is None  # every piece read back: closed


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_a_stash_closed_while_a_put_writes_closes_its_file_when_the_put_ends(tmp_path):
    """mhw.save's with block ending (a failed compute) while a task of it still puts a table
    aside on a worker thread: the put's write must not go to a closed descriptor, nor to a file
    opened meanwhile under the same number (here one opened right after the exit: it stays
    empty); the put completes (it began before the exit) and the scratch file is closed when it
    ends.  Deterministic: the probe, run by the put while it holds the file and before its
    write, waits until the exit and the other file's opening are done."""
    import os
    import threading

    from oceanflow.mhw import _blocks

    scratch, other = tmp_path / "scratch", tmp_path / "other"
    scratch.mkdir()
    other.mkdir()
    table = np.arange(100_000, dtype="int64")
    probing, exited = threading.Event(), threading.Event()
    results = []

    def probe(array):
        probing.set()
        exited.wait(60)
        return int(array[-1])

    def task():
        try:
            results.append(stash.put(table, probe))
        except BaseException as err:  # (reaches the assert below)
            results.append(err)

    with _blocks._Stash(str(scratch)) as stash:
        thread = threading.Thread(target=task)
        thread.start()
        assert probing.wait(60)
    fd = os.open(other / "store", os.O_WRONLY | os.O_CREAT)  # may take a number the exit freed
    try:
        exited.set()
        thread.join(60)
        assert not thread.is_alive()
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
    assert len(results) == 1 and isinstance(results[0], _blocks._Stashed), results
    assert results[0].info == table[-1]
    assert _open_in(scratch) == [] and list(scratch.iterdir()) == []


def test_a_stash_refuses_puts_and_loads_once_closed(tmp_path):
    """After the with block: a put, or a load of a table put before, is refused with a clear
    error (not a read of a closed descriptor, or of whatever file took its number)."""
    from oceanflow.mhw import _blocks

    with _blocks._Stash(str(tmp_path)) as stash:
        stashed = stash.put(np.arange(6.0).reshape(2, 3), np.sum)
        np.testing.assert_array_equal(stashed.load(), np.arange(6.0).reshape(2, 3))
        assert stashed.info == 15
    with pytest.raises(RuntimeError, match="mhw scratch file: closed"):
        stash.put(np.zeros(2), np.sum)
    with pytest.raises(RuntimeError, match="mhw scratch file: closed"):
        stashed.load()


def test_a_stashed_table_is_read_straight_into_its_padded_rows(tmp_path):
    """_Stashed.load(into=...) reads a table put aside, ``(rows * n, *block)``, into the first n slots
    of each row of a larger ``(rows, slots, *block)`` array (the rest untouched), and refuses a
    target of another size or dtype, or rows that are not contiguous; mhw.save's _padded_block
    gives the table padded with NaN (as NumPy's concatenate), from the scratch file or from memory."""
    from oceanflow.kernels import mhw as kernels
    from oceanflow.mhw import _blocks, _save

    rows, n, slots = len(kernels.EVENT_ROWS), 3, 5
    rng = np.random.default_rng(4)
    table = rng.standard_normal((rows * n, 2, 7))
    table[rng.random(table.shape) < 0.2] = np.nan
    expected = np.concatenate([table.reshape(rows, n, 2, 7), np.full((rows, slots - n, 2, 7), np.nan)], axis=1)
    with _blocks._Stash(str(tmp_path)) as stash:
        stashed = stash.put(table, _save._filled_slots)
        out = np.full((rows, slots, 2, 7), 7.5)
        assert stashed.load(into=out[:, :n]) is not None
        np.testing.assert_array_equal(out[:, :n], table.reshape(rows, n, 2, 7))
        assert (out[:, n:] == 7.5).all()
        for wrong in (out[:, : n - 1], out[:, :n].astype(np.float32), out[:, :n, :1]):
            with pytest.raises(ValueError, match="cannot hold the stashed"):
                stashed.load(into=wrong)
        for b in (stashed, table):
            padded = _save._padded_block(b, slots)
            assert padded.shape == expected.shape
            np.testing.assert_array_equal(padded.view(np.uint64), expected.view(np.uint64))


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("route", ["direct", "small reads", "page cache", "refused"])
def test_a_stash_writes_and_reads_whole_units_past_the_page_cache(route, tmp_path, monkeypatch):
    """The stash's arrays (empty, under a unit, whole units, units and a tail; from page-aligned
    memory and not) put aside and read back whole and into the rows of a larger padded table, all
    bit for bit: their whole units written with O_DIRECT where the file system takes it (findmnt:
    ext4 or xfs), read back a few pages at a time ("small reads"), through the page cache when the
    environment switches O_DIRECT off, and from the first refused O_DIRECT write (EINVAL) on."""
    import errno
    import fcntl
    import os
    import subprocess

    from debian_tools import require

    from oceanflow.io import uncached
    from oceanflow.mhw import _blocks

    kind = subprocess.run(
        [require("findmnt"), "-n", "-o", "FSTYPE", "--target", str(tmp_path)], capture_output=True, text=True
    ).stdout.strip()
    if route != "page cache" and kind not in {"ext4", "xfs"}:
        pytest.skip(f"{tmp_path} is on {kind}: no O_DIRECT scratch file")
    writes = []  # (whether to an O_DIRECT descriptor, bytes)
    pwrite = uncached._pwrite_all

    def probe(fd, view, offset):
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        writes.append((direct, view.nbytes))
        if direct and route == "refused":
            raise OSError(errno.EINVAL, "Invalid argument")
        pwrite(fd, view, offset)

    monkeypatch.setattr(uncached, "_pwrite_all", probe)
    monkeypatch.setattr(_blocks, "_pwrite_all", probe)
    if route == "page cache":
        monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", "0")
    if route == "small reads":
        monkeypatch.setattr(_blocks, "STASH_READ_BYTES", 2 * uncached.PAGE)
    rows, slots = 3, 7
    rng = np.random.default_rng(5)
    tables = []
    for n, pixels in [(0, 5), (1, 3), (2, uncached.PAGE // 8), (5, 3 * uncached.PAGE // 8 + 5)]:
        for aligned in (True, False):
            buffer = uncached.aligned_empty(rows * n * pixels * 8 + 8)[0 if aligned else 8 :]
            table = buffer[: rows * n * pixels * 8].view(np.float64).reshape(rows * n, pixels)
            table[...] = rng.standard_normal(table.shape)
            table[rng.random(table.shape) < 0.1] = np.nan
            tables.append(table)
    with _blocks._Stash(str(tmp_path)) as stash:
        stashed = [stash.put(t, len) for t in tables]
        for t, s in zip(tables, stashed, strict=True):
            np.testing.assert_array_equal(s.load().view(np.uint64), t.view(np.uint64))
            n = t.shape[0] // rows
            padded = np.full((rows, slots, t.shape[1]), 7.5)
            s.load(into=padded[:, :n])
            np.testing.assert_array_equal(padded[:, :n].view(np.uint64), t.reshape(rows, n, t.shape[1]).view(np.uint64))
            assert (padded[:, n:] == 7.5).all()
    assert list(tmp_path.iterdir()) == [] and _open_in(tmp_path) == []
    direct = sum(nbytes for d, nbytes in writes if d)
    units = sum(t.nbytes // stash.unit * stash.unit for t in tables)
    assert sum(nbytes for d, nbytes in writes if not d) + direct == sum(t.nbytes for t in tables) + (
        direct if route == "refused" else 0
    )
    if route in ("direct", "small reads"):
        assert direct == units > 0
    elif route == "page cache":
        assert direct == 0
    else:  # the first whole units tried with O_DIRECT, refused, then everything through the page cache
        assert [d for d, _ in writes].count(True) == 1


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("problem", ["full disk", "missing directory", "short read"])
def test_a_stash_that_cannot_write_or_read_says_what_to_do(tmp_path, monkeypatch, problem):
    """The event tables' scratch file on a full disk (ENOSPC on the write), in a missing
    temporary-directory, or read short: an OSError (its errno kept) that names the directory and
    the two config keys to change; nothing left in the directory or open after the with block."""
    import errno

    from oceanflow.mhw import _blocks

    def full(fd, view, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    def short(fd, into, offset):
        raise OSError(f"short read: 0 of {into.nbytes} bytes at offset {offset}")

    if problem == "full disk":
        monkeypatch.setattr(_blocks, "_pwrite_all", full)
    if problem == "short read":
        monkeypatch.setattr(_blocks, "_pread_into", short)
    directory = tmp_path / "missing" if problem == "missing directory" else tmp_path
    message = f"scratch file in {directory}.*temporary-directory.*held-bytes"
    with pytest.raises(OSError, match=message) as caught, _blocks._Stash(str(directory)) as stash:
        stash.put(np.arange(4), np.sum).load()
    assert caught.value.errno == {"full disk": errno.ENOSPC, "missing directory": errno.ENOENT}.get(problem)
    assert list(tmp_path.iterdir()) == [] and _open_in(tmp_path) == []


@pytest.mark.parametrize("stored", [{"time": 97, "y": 4}, {"time": 97, "y": (1, 3, 3)}, {"time": 500, "x": (2, 3)}])
def test_a_time_chunked_input_in_several_spatial_chunks_joins_each_block_from_its_own_chunks(stored):
    """Time chunks that are themselves split in space, joined into more (smaller) blocks than
    stored: each block takes its pixels from the stored chunk that holds them (review finding: a
    block taking them from the first chunk passed every other test)."""
    sst = red_sst(seed=3, dtype="float32", shape=(7, 5))
    sst[:, 5, 1] = np.nan  # land
    with warnings.catch_warnings(), dask.config.set(num_workers=8):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst)
        xr.testing.assert_identical(mhw.detect(sst, clim), mhw.detect(sst.chunk(stored), clim).compute())
        xr.testing.assert_identical(mhw.detect(sst), mhw.detect(sst.chunk(stored)).compute())


@pytest.mark.parametrize(
    "cold, suffix, spilled",
    [(False, ".zarr", False), (True, ".zarr", False), (False, ".nc", True), (True, ".nc", False)],
)
def test_save_writes_what_detect_events_and_summary_return_from_one_task_per_block(
    tmp_path, monkeypatch, cold, suffix, spilled
):
    """mhw.save: the summary and the event table come from the detection's own tasks
    (one call of the block function per spatial block), equal to events() and summary(); a
    NetCDF detection and events too, and a spilled input (review finding: the NetCDF writes fused the
    block function into each variable's tasks, which read a spilled block again, refused)."""
    import zarr

    import oceanflow

    sst = red_sst(seed=5, years=6, shape=(4, 5), dtype="float32")
    sst[:, 3, 4] = np.nan  # land
    sst = sst.chunk({"time": 200} if spilled else {"time": 200, "y": 2})  # (whole in space: blocks cut from it)
    held = {_blocks.HELD_KEY: sst.nbytes - 1 if spilled else None, "temporary-directory": str(tmp_path)}
    with warnings.catch_warnings(), dask.config.set(held):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst, cold=cold, min_duration=4).compute()
        graph = mhw.detect(sst).intensity.data
        assert any("spill" in name for name in graph.__dask_graph__().layers) == spilled
        blocks = graph.numblocks
        calls = []
        block = _engine._mhw_block
        monkeypatch.setattr(_engine, "_mhw_block", lambda *a, **k: calls.append(1) or block(*a, **k))
        paths = {name: tmp_path / f"{name}{suffix}" for name in ("detection", "events")}
        paths["summary"] = tmp_path / "summary.zarr"
        written = mhw.save(
            sst,
            paths["detection"],
            events=paths["events"],
            summary=paths["summary"],
            freq="2YS",
            cold=cold,
            min_duration=4,
        )
    assert written == paths and len(calls) == np.prod(blocks) > 1
    back = {name: oceanflow.open_dataset(path).compute() for name, path in paths.items()}
    table = mhw.events(found)
    assert table.sizes["event"] == int(found.event.max()) > 0
    expected = {"detection": found, "events": table, "summary": mhw.summary(found, "2YS")}
    for name, ds in expected.items():  # values, coordinates and attributes; history and Conventions added
        for var in ds.data_vars:
            xr.testing.assert_identical(back[name][var], ds[var])
        added = {k: v for k, v in back[name].attrs.items() if k not in ds.attrs}
        assert {k: back[name].attrs[k] for k in ds.attrs} == ds.attrs and set(added) == {"history", "Conventions"}
    if suffix == ".zarr":
        for name in ("intensity", "seas", "thresh"):  # float noise and float64 curves: stored raw
            assert zarr.open_array(paths["detection"] / name).compressors == ()
        for name in ("event", "category"):
            assert zarr.open_array(paths["detection"] / name).compressors != ()


@pytest.mark.parametrize("cold", [False, True])
def test_summary_equals_the_block_averages_and_trends(cold):
    sst = red_sst(seed=2, years=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst, cold=cold)
    for freq, block in (("YS", 1), ("2YS", 2)):
        annual = mhw.summary(found, freq)
        years = sst.time.dt.year.values
        for j in range(2):
            for i in range(3):
                events, clim = ref.detect(dates_of(sst), sst.values[:, j, i], cold=cold)
                want = ref.block_average(years, events, block, clim["event"])
                names = set(want) - {"years_centre"}  # both ways, as EVENT_NAMES
                assert names == set(kernels.SUMMARY_ROWS), (names, kernels.SUMMARY_ROWS)
                for name in sorted(names):
                    got = annual[name].values[:, j, i]
                    np.testing.assert_allclose(got, want[name], rtol=1e-9, err_msg=name)
                    slope = ref.trend(want["years_centre"], want[name])
                    np.testing.assert_allclose(annual[f"{name}_trend"].values[j, i], slope, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(annual.period_centre, want["years_centre"])


def test_summary_slopes_equal_numpy_polyfit_per_series():
    """The summary's trends (a closed-form centred least squares over each series' non-NaN values)
    against np.polyfit of each series' valid points: any gap pattern, one valid point or none (NaN)."""
    rng = np.random.default_rng(5)
    x = 1990.5 + np.arange(12.0)
    y = rng.standard_normal((400, 12)) * rng.choice([1e-3, 1.0, 1e3], (400, 1)) + 0.37 * x
    y[rng.random(y.shape) < 0.3] = np.nan
    y[:5] = np.nan
    y[5:10, 1:] = np.nan  # one valid value: no slope
    y[10:15, 2:] = np.nan  # two
    y[15:20] = 7.25  # constant
    got = _summary._slopes(y, x)
    for row, slope in zip(y, got, strict=True):
        valid = ~np.isnan(row)
        if valid.sum() < 2:
            assert np.isnan(slope)
        else:
            want = np.polyfit(x[valid], row[valid], 1)[0]
            np.testing.assert_allclose(slope, want, rtol=1e-12, atol=1e-12 * np.abs(row[valid]).max())


def test_summary_slopes_in_pieces_are_the_numbers_of_one_piece(monkeypatch):
    """_slopes fits pieces of PIECE_BYTES along the first axis: the same numbers, bit for bit, as
    the one fit of the whole array (_fitted, its sums taken in the same order per series), on the
    layout _trends hands it (period last, a view of a period-first array) and on a C-contiguous
    one; with a last piece shorter than the others and pieces of one row."""
    rng = np.random.default_rng(8)
    x = 1982.0 + np.arange(30.0)
    cube = rng.standard_normal((30, 13, 9)) * 3.0 + 0.01 * x[:, None, None]
    cube[rng.random(cube.shape) < 0.3] = np.nan
    cube[:, 0, 0] = np.nan
    cube[1:, 1, 1] = np.nan
    for piece in (9 * 30 * 8 * 4, 1, _summary.PIECE_BYTES):
        monkeypatch.setattr(_summary, "PIECE_BYTES", piece)
        for y in (np.moveaxis(cube, 0, -1), np.ascontiguousarray(np.moveaxis(cube, 0, -1))):
            got, want = _summary._slopes(y, x), _summary._fitted(y, x)
            assert got.shape == want.shape == (13, 9) and got.dtype == want.dtype
            np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
            assert np.isnan(got[0, 0]) and np.isnan(got[1, 1]) and np.isfinite(got[2:]).all()


# ---------------------------------------------------------------- bad input


def good():
    return red_sst(years=4, shape=(1, 2))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.resample(time="MS").mean(), "days apart"),
        (
            lambda s: s.isel(time=slice(0, 400)).assign_coords(
                time=xr.date_range("2000-01-01", periods=400, freq="6h")
            ),
            "resample to daily",
        ),
        (lambda s: s.drop_isel(time=[50]), "not consecutive days"),
        (lambda s: s.drop_vars("time"), "no time coordinate"),
        (lambda s: s.rename(time="t"), "no 'time' dimension"),
        (lambda s: s.isel(time=slice(0, 700)), "complete year"),
    ],
)
def test_bad_series_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        mhw.detect(change(good()))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"pctile": 100}, r"pctile must lie in \(0, 100\)"),
        ({"pctile": 0}, r"pctile must lie in \(0, 100\)"),
        ({"pctile": 30}, r"pctile > 50; for cold spells pass cold=True"),  # categories would read as none
        ({"pctile": 50, "cold": True}, r"pctile > 50"),
        ({"min_duration": 0}, "min_duration must be"),
        ({"max_gap": -1}, "max_gap must be"),
        ({"window": 10}, "window must be an odd"),
        ({"smooth": 4}, "smooth must be an odd"),
        ({"base": (1985, 1990)}, "outside the data"),
        ({"base": (1991, 1992)}, "at least 3"),
        ({"base": (1993, 1991)}, "ends before it starts"),
    ],
)
def test_bad_parameters_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        mhw.detect(good(), **options)


def test_a_short_base_period_warns_and_land_stays_nan_silently():
    sst = good()
    sst[:, 0, 0] = np.nan
    with pytest.warns(mhw.BaseLengthWarning, match="recommend at least 30"):
        found = mhw.detect(sst)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = mhw.events(found)
        annual = mhw.summary(found)
    assert np.isnan(found.intensity[:, 0, 0]).all() and np.isnan(table.duration[:, 0, 0]).all()
    assert np.isnan(annual["count"][:, 0, 0]).all() and np.isfinite(annual["count"][:, 0, 1]).all()


def test_clim_of_the_other_kind_is_refused():
    sst = good()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        clim = mhw.thresholds(sst, cold=True)
        with pytest.raises(ValueError, match="cold"):
            mhw.detect(sst, clim)
        assert (mhw.detect(sst, clim, cold=True).event >= 0).all()


# ---------------------------------------------------------------- command line


def test_command_writes_what_the_api_returns(tmp_path):
    from test_cli import oceanflow_cmd

    sst = red_sst(years=4, seed=4).astype("float32")
    sst.to_dataset().assign(other=sst.isel(time=0, drop=True)).to_netcdf(tmp_path / "sst.nc")
    run = oceanflow_cmd(
        "mhw",
        "sst.nc",
        "-o",
        "mhw.zarr",
        "--events",
        "--summary",
        "2YS",
        "--plot",
        "@1,2",
        "--min-duration",
        "4",
        cwd=tmp_path,
    )
    assert "recommend at least 30" in run.stderr and run.stderr.count("recommend") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst, min_duration=4)
    written = xr.open_zarr(tmp_path / "mhw.zarr").load()
    xr.testing.assert_allclose(written[list(found.data_vars)], found.drop_attrs(deep=False), rtol=1e-6)
    xr.testing.assert_allclose(xr.open_zarr(tmp_path / "mhw_events.zarr").load(), mhw.events(found))
    summary = xr.open_zarr(tmp_path / "mhw_summary.zarr").load()
    xr.testing.assert_allclose(summary["total_days"], mhw.summary(found, "2YS")["total_days"])
    assert (tmp_path / "mhw.png").stat().st_size > 10_000
    assert int(written["event"].max()) > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plot", "north"], "--plot 'north': give LAT,LON"),
        (["--pctile", "100"], "pctile must lie in (0, 100)"),
        (["--summary", "month"], "freq must be 'YS'"),
    ],
)
def test_command_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    from test_cli import oceanflow_cmd

    red_sst(years=3, shape=(1, 2)).to_dataset().to_netcdf(tmp_path / "sst.nc")
    run = oceanflow_cmd("mhw", "sst.nc", "-o", "mhw.zarr", *args, cwd=tmp_path, check=False)
    assert run.returncode != 0 and message in run.stderr and len(run.stderr.strip().splitlines()) <= 2, run.stderr


def _save_case():
    sst = red_sst(seed=5, years=6, shape=(4, 5), dtype="float32").chunk({"time": 200, "y": 2})
    return sst


def test_save_refuses_an_existing_events_path_before_writing_anything(tmp_path):
    """mhw.save is all or nothing: an existing events path (no overwrite) is refused
    before the compute, and neither the detection nor the summary is written."""
    (tmp_path / "events.zarr").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        with pytest.raises(FileExistsError, match="events.zarr exists"):
            mhw.save(
                _save_case(),
                tmp_path / "det.zarr",
                events=tmp_path / "events.zarr",
                summary=tmp_path / "annual.zarr",
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.zarr"]


def test_save_refuses_its_outputs_before_the_detection_runs(tmp_path, monkeypatch):
    """An output mhw.save cannot write (an existing path without overwrite, a missing directory,
    an unknown format) is refused before any block is detected, also for in-memory input (which
    is detected as soon as detect's graph is built): nothing computed, nothing written."""
    calls = []
    block = _engine._mhw_block
    monkeypatch.setattr(_engine, "_mhw_block", lambda *a, **k: calls.append(1) or block(*a, **k))
    (tmp_path / "events.zarr").mkdir()
    sst = red_sst(years=4, shape=(1, 2))  # NumPy-backed
    cases = [
        ({"events": tmp_path / "events.zarr"}, FileExistsError, "events.zarr exists"),
        ({"summary": tmp_path / "missing" / "annual.zarr"}, FileNotFoundError, "does not exist"),
        ({"summary": tmp_path / "annual.txt"}, ValueError, "annual.txt"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        for options, error, match in cases:
            with pytest.raises(error, match=match):
                mhw.save(sst, tmp_path / "det.zarr", **options)
        assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["events.zarr"]
        mhw.save(sst, tmp_path / "det.zarr")  # the probe sees the detection when the outputs can be written
    assert calls and (tmp_path / "det.zarr").is_dir()


def test_save_failing_after_the_compute_keeps_every_old_output(tmp_path, monkeypatch):
    """A failure after the compute (here in sizing the event tables) with
    overwrite=True leaves the old detection, summary and events as they were, and
    no temporaries."""
    import oceanflow

    paths = {name: tmp_path / f"{name}.zarr" for name in ("det", "events", "annual")}
    old = {name: xr.Dataset({"old": ("x", np.arange(3.0) + i)}) for i, name in enumerate(paths)}
    for name, path in paths.items():
        old[name].to_zarr(path)

    def fail(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(_save, "_slots", fail)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        with pytest.raises(RuntimeError, match="injected"):
            mhw.save(_save_case(), paths["det"], events=paths["events"], summary=paths["annual"], overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    for name, path in paths.items():
        xr.testing.assert_identical(oceanflow.open_dataset(path).compute(), old[name])


@pytest.mark.parametrize("where", ["summary", "events"])
def test_save_failing_in_a_writing_thread_keeps_every_old_output(tmp_path, monkeypatch, where):
    """The summary and the event table are written side by side on threads, the events block by
    block on a pool: a failure in either (the summary's writer, the second block's write) is raised
    once every thread has ended, with the old detection, summary and events left as they were and
    no temporaries."""
    import threading

    import oceanflow

    paths = {name: tmp_path / f"{name}.zarr" for name in ("det", "events", "annual")}
    old = {name: xr.Dataset({"old": ("x", np.arange(3.0) + i)}) for i, name in enumerate(paths)}
    for name, path in paths.items():
        old[name].to_zarr(path)
    calls: dict = {"_write_summary": [], "_write_block": []}  # (each call: on the main thread?)
    failing = {"summary": "_write_summary", "events": "_write_block"}[where]

    def recorded(name, original):
        def call(*args, **kwargs):
            calls[name].append(threading.current_thread() is threading.main_thread())
            if name == failing and len(calls[name]) == (1 if where == "summary" else 2):
                raise RuntimeError("injected")
            return original(*args, **kwargs)

        return call

    for name in calls:
        monkeypatch.setattr(_save, name, recorded(name, getattr(_save, name)))
    sst = _save_case()
    summary_bytes = 8 * len(kernels.SUMMARY_ROWS) * len(set(sst.time.dt.year.values)) * sst[0].size
    monkeypatch.setattr(_save, "_table_limit", lambda: 2 * summary_bytes)  # the summary gathered, the events by blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        with pytest.raises(RuntimeError, match="injected"):
            mhw.save(sst, paths["det"], events=paths["events"], summary=paths["annual"], overwrite=True)
        threads = [t for t in threading.enumerate() if t.name.startswith("oceanflow-mhw")]
    assert calls["_write_summary"] == [False] and len(calls["_write_block"]) >= 2 and not any(calls["_write_block"])
    assert threads == []  # (all ended)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    for name, path in paths.items():
        xr.testing.assert_identical(oceanflow.open_dataset(path).compute(), old[name])


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_beyond_the_memory_limit_never_pads_the_whole_event_table(tmp_path, monkeypatch, suffix):
    """Beyond the memory a task may hold, mhw.save does not pad the gathered tables
    together: in Zarr each block's table goes into its region of the store (nothing
    read back), written directly (io.write.write_zarr_v3_region, not to_zarr), in NetCDF
    events() runs on the written detection; both equal events(detect())."""
    import oceanflow
    from oceanflow.io import write

    def fail(*args, **kwargs):
        raise AssertionError("not this way")

    direct = []
    real = write.write_zarr_v3_region
    monkeypatch.setattr(write, "write_zarr_v3_region", lambda *a: direct.append(real(*a)) or direct[-1])

    monkeypatch.setattr(_save, "_padded_tables", fail)
    monkeypatch.setattr(_save, "_table_limit", lambda: 1000, raising=False)
    sst = _save_case()
    lon = 100.0 + np.arange(sst.y.size * sst.x.size).reshape(sst.y.size, sst.x.size)
    sst = sst.assign_coords(lon=(("y", "x"), dask.array.from_array(lon, chunks=(2, -1))))  # lazy, as opened files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst).compute()
        blocks = math.prod(mhw.detect(sst).intensity.data.numblocks[1:])
        table = mhw.events(found)
        if suffix == ".zarr":
            monkeypatch.setattr(_save, "events", fail)
        mhw.save(sst, tmp_path / "det.zarr", events=tmp_path / f"events{suffix}")
    assert table.sizes["event"] > 1
    back = oceanflow.open_dataset(tmp_path / f"events{suffix}").compute()
    for var in [*table.data_vars, "lon"]:
        xr.testing.assert_identical(back[var], table[var])
    np.testing.assert_array_equal(back["lon"], lon)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.zarr", f"events{suffix}"]
    assert direct == ([True] * blocks if suffix == ".zarr" else [])


@pytest.mark.parametrize("store", ["events", "summary"])
@pytest.mark.parametrize("share", [1.5, 2.5])
def test_save_writes_a_zarr_table_from_memory_only_when_it_fits_with_its_encoded_copy(
    tmp_path, monkeypatch, store, share
):
    """The padded event table and the gathered summary columns, written to Zarr from memory, are
    held with their encoded store beside them: written so only when twice their bytes fit what a
    task may hold (review finding: once was counted), else by regions or by the blocks' tasks;
    either way the store holds events()/summary() of the detection."""
    import oceanflow

    sst = _save_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst).compute()
        expected = mhw.events(found) if store == "events" else mhw.summary(found)
        pixels = sst.sizes["y"] * sst.sizes["x"]
        if store == "events":  # the padded table: every row, slot and pixel in float64
            held, spied = len(kernels.EVENT_ROWS) * expected.sizes["event"] * pixels * 8, "_padded_tables"
        else:  # the summary's columns: every row, period and pixel in float64
            held, spied = len(kernels.SUMMARY_ROWS) * expected.sizes["period"] * pixels * 8, "_write_summary"
        calls = []
        real = getattr(_save, spied)
        monkeypatch.setattr(_save, spied, lambda *a: calls.append(1) or real(*a))
        with dask.config.set({"oceanflow.mhw.held-bytes": int(share * held)}):
            mhw.save(sst, tmp_path / "det.zarr", **{store: tmp_path / f"{store}.zarr"})
    assert len(calls) == (share > 2)
    back = oceanflow.open_dataset(tmp_path / f"{store}.zarr").compute()
    for var in expected.data_vars:
        xr.testing.assert_allclose(back[var], expected[var])


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
@pytest.mark.parametrize("failing", [False, True])
def test_save_beyond_the_held_bytes_puts_the_event_tables_aside_in_a_scratch_file(
    tmp_path, monkeypatch, suffix, failing
):
    """Input beyond oceanflow.mhw.held-bytes: each block's event table is put aside in a scratch
    file (in dask's temporary-directory) as its task ends, and read back one by one for the
    events store, which holds events() of the detection; nothing is left in the directory or
    open afterwards, also when the events' write fails."""
    import oceanflow
    from oceanflow.mhw import _blocks

    sst = _save_case()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    puts = []
    real = _blocks._Stash.put
    monkeypatch.setattr(_blocks._Stash, "put", lambda self, *a: puts.append(1) or real(self, *a))  # a spy
    if failing:
        monkeypatch.setattr(_save, "_events_table", lambda *a, **k: 1 / 0)
    config = {"oceanflow.mhw.held-bytes": sst.nbytes - 1, "temporary-directory": str(scratch)}
    with warnings.catch_warnings(), dask.config.set(config):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        expected = mhw.events(mhw.detect(sst).compute())
        blocks = math.prod(mhw.detect(sst).intensity.data.numblocks[1:])
        with pytest.raises(ZeroDivisionError) if failing else contextlib.nullcontext():
            mhw.save(sst, tmp_path / "det.zarr", events=tmp_path / f"events{suffix}")
    assert len(puts) == blocks > 1
    assert list(scratch.iterdir()) == [] and _open_in(scratch) == []
    if not failing:
        back = oceanflow.open_dataset(tmp_path / f"events{suffix}").compute()
        for var in expected.data_vars:
            xr.testing.assert_allclose(back[var], expected[var])


def test_save_writes_the_same_summary_store_gathered_in_memory_as_by_the_blocks_tasks(tmp_path, monkeypatch):
    """Within the memory a task may hold, the summary's columns are gathered and the store
    written in memory; beyond it each block's task writes its part: the two stores are the
    same files, byte for byte (but the history line), and hold summary(detect())."""
    import json

    import oceanflow

    sst = _save_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        expected = mhw.summary(mhw.detect(sst).compute(), "2YS")
        gathered = []
        real = _save._write_summary
        monkeypatch.setattr(_save, "_write_summary", lambda *a: gathered.append(1) or real(*a))
        mhw.save(sst, tmp_path / "a.zarr", summary=tmp_path / "in_memory.zarr", freq="2YS")
        monkeypatch.setattr(_save, "_table_limit", lambda: 1000, raising=False)
        mhw.save(sst, tmp_path / "b.zarr", summary=tmp_path / "by_blocks.zarr", freq="2YS")
    assert gathered == [1]  # the first save only
    in_memory, by_blocks = _store_files(tmp_path / "in_memory.zarr"), _store_files(tmp_path / "by_blocks.zarr")
    assert sorted(in_memory) == sorted(by_blocks) and len(in_memory) > 20
    assert [name for name in in_memory if in_memory[name] != by_blocks[name]] == []
    chunks = json.loads(by_blocks["count/zarr.json"])["chunk_grid"]["configuration"]["chunk_shape"]
    assert chunks[1] < sst.sizes["y"]  # the detection's blocks, as the tasks write them
    back = oceanflow.open_dataset(tmp_path / "in_memory.zarr").compute()
    for var in expected.data_vars:
        xr.testing.assert_identical(back[var], expected[var])


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_save_compresses_the_tables_with_blosc_lz4_in_zarr_v3_and_writes_them_in_v2(tmp_path, zarr_format):
    """The event and summary stores' data variables in Zarr v3: blosc's lz4 at level 5 on shuffled bytes; with
    zarr's default format set to 2 (no v3 codec there) zarr's own default; both hold events()/summary()."""
    import json

    import zarr

    import oceanflow

    sst = _save_case()
    paths = {"events": tmp_path / "events.zarr", "summary": tmp_path / "annual.zarr"}
    with warnings.catch_warnings(), zarr.config.set({"default_zarr_format": zarr_format}):
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst).compute()
        mhw.save(sst, tmp_path / "det.zarr", **paths)
        expected = {"events": mhw.events(found), "summary": mhw.summary(found)}
    for name, path in paths.items():
        back = oceanflow.open_dataset(path).compute()
        for var in expected[name].data_vars:
            xr.testing.assert_identical(back[var], expected[name][var])
            if zarr_format == 3:
                codecs = json.loads((path / var / "zarr.json").read_text())["codecs"]
                assert codecs[-1]["name"] == "blosc", var
                assert {k: codecs[-1]["configuration"][k] for k in ("cname", "clevel", "shuffle")} == {
                    "cname": "lz4",
                    "clevel": 5,
                    "shuffle": "shuffle",
                }, var


def _store_files(root):
    """Every file of the Zarr store ``root``, by its relative path: its bytes, the history line taken out."""
    import re

    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = re.sub(rb'"history": "[^"]*"', b"", path.read_bytes())
    return out


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
def test_save_writes_the_same_event_store_from_memory_as_by_regions(tmp_path, monkeypatch, calendar):
    """The event store written from memory (the padded table, its dates stored as day numbers looked
    up by step) and beyond the memory limit (block by block into its regions) are the same files, byte
    for byte (but the history line), dates included: whole days since the first step (cftime
    calendars: float64 days, as events gives them), a land pixel all NaN."""
    import json

    import oceanflow

    sst = red_sst(seed=5, years=6, shape=(4, 5), dtype="float32", calendar=calendar)
    sst = sst.where(sst.x + sst.y > 0).chunk({"time": 200, "y": 2})  # (pixel 0, 0: land)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        table = mhw.events(mhw.detect(sst).compute())
        mhw.save(sst, tmp_path / "a.zarr", events=tmp_path / "in_memory.zarr")
        monkeypatch.setattr(_save, "_table_limit", lambda: 1000)
        mhw.save(sst, tmp_path / "b.zarr", events=tmp_path / "by_regions.zarr")
    in_memory, by_regions = _store_files(tmp_path / "in_memory.zarr"), _store_files(tmp_path / "by_regions.zarr")
    assert sorted(in_memory) == sorted(by_regions) and len(in_memory) > 50
    assert [name for name in in_memory if in_memory[name] != by_regions[name]] == []
    first = str(sst.time.values[0])[:10]
    units = json.loads(in_memory["time_start/zarr.json"])["attributes"]["units"]
    assert units == (f"days since {first}" if calendar == "standard" else "day")
    back = oceanflow.open_dataset(tmp_path / "by_regions.zarr").compute()
    for var in table.data_vars:
        xr.testing.assert_identical(back[var], table[var])


@pytest.mark.parametrize("limit", [None, 1000])
def test_save_stores_the_event_table_in_the_detections_blocks_with_all_events_in_one_chunk(
    tmp_path, monkeypatch, limit
):
    """The event store's chunks: (slots, *block) for every variable, whether the padded table
    is written from memory or (beyond the memory limit) block by block into its regions."""
    import zarr

    import oceanflow

    if limit is not None:
        monkeypatch.setattr(_save, "_table_limit", lambda: limit)
    sst = _save_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        mhw.save(sst, tmp_path / "det.zarr", events=tmp_path / "events.zarr")
        found = mhw.detect(sst)
        table = mhw.events(found.compute())
    slots, blocks = table.sizes["event"], found.intensity.chunks[1:]
    assert slots > 1 and blocks == ((2, 2), (5,))  # the detection's blocks
    back = oceanflow.open_dataset(tmp_path / "events.zarr")
    assert set(back.data_vars) == set(table.data_vars)
    for name in table.data_vars:
        assert zarr.open_array(tmp_path / "events.zarr" / name).chunks == (slots, 2, 5), name
        xr.testing.assert_identical(back[name].compute(), table[name])


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_writes_an_empty_event_table_when_no_pixel_has_an_event(tmp_path, suffix):
    """No event anywhere (min_duration longer than the series): an event table of 0 slots,
    as events() returns it; in Zarr stored in chunks of 1 slot and the blocks."""
    import oceanflow

    sst = _save_case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        found = mhw.detect(sst, min_duration=sst.sizes["time"] + 1).compute()
        mhw.save(sst, tmp_path / "det.zarr", events=tmp_path / f"events{suffix}", min_duration=sst.sizes["time"] + 1)
    table = mhw.events(found)
    assert int(found.event.max()) == 0 and table.sizes["event"] == 0
    back = oceanflow.open_dataset(tmp_path / f"events{suffix}").compute()
    assert back.sizes["event"] == 0
    for name in table.data_vars:
        xr.testing.assert_identical(back[name], table[name])
    if suffix == ".zarr":
        import zarr

        assert zarr.open_array(tmp_path / "events.zarr" / "duration").chunks == (1, 2, 5)


def test_save_refuses_a_concurrent_writer_before_replacing_any_output(tmp_path, monkeypatch):
    """Another writer creating the events path while mhw.save runs: ConcurrentWriteError,
    and the detection is not moved in either (every output checked before any commit)."""
    from oceanflow.io.atomic import ConcurrentWriteError

    write_events = _save._write_events

    def racing(output, *args, **kwargs):
        write_events(output, *args, **kwargs)
        output.path.mkdir()  # the other writer

    monkeypatch.setattr(_save, "_write_events", racing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        with pytest.raises(ConcurrentWriteError, match="created by another writer"):
            mhw.save(_save_case(), tmp_path / "det.zarr", events=tmp_path / "events.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.zarr"]


def _huge_page_advice():
    """NumPy's huge-page advice now, read under mhw's lock so that no save enters or leaves
    and no other reader flips it meanwhile (the switch returns the value it replaces, set back at once)."""
    switch = _memory._madvise_switch()
    with _memory._PAGES_LOCK:
        previous = switch(True)
        switch(previous)
    return previous


def _fake_multiarray():
    """A stand-in for NumPy 1.24's numpy.core.multiarray: a huge-page switch that records its state."""
    import types

    module = types.ModuleType("numpy.core.multiarray")
    state = [True]

    def switch(advice):
        previous, state[0] = state[0], bool(advice)
        return previous

    module._set_madvise_hugepage = switch
    return module, state


@pytest.mark.parametrize("layout", ["numpy2", "numpy1.26", "numpy1.24"])
def test_small_pages_finds_numpys_switch_on_numpy_1_and_2(monkeypatch, layout):
    """The switch is numpy._core.multiarray's on NumPy 2 (found without a DeprecationWarning from
    numpy.core), also when numpy._core is not an attribute of numpy (1.26: not imported), and
    numpy.core.multiarray's when there is no numpy._core (1.24): off inside, restored after."""
    import sys

    monkeypatch.setattr(_memory, "_ADVICE_CHOSEN", False)  # the user chose no advice
    state = None
    if layout != "numpy2":
        monkeypatch.delattr(np, "_core", raising=False)
    if layout == "numpy1.24":
        module, state = _fake_multiarray()
        monkeypatch.setitem(sys.modules, "numpy._core.multiarray", None)  # not importable
        monkeypatch.setitem(sys.modules, "numpy.core.multiarray", module)

    def advice():
        return _huge_page_advice() if state is None else state[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        before = advice()
        with _memory.small_pages_while():
            inside = advice()
    assert (before, inside, advice()) == (True, False, True)


@pytest.mark.parametrize("interrupted", ["entering", "entered"])
def test_small_pages_interrupted_on_entry_leaves_no_user_and_restores_the_advice(monkeypatch, interrupted):
    """A KeyboardInterrupt as the lock is taken (nothing changed yet) or as it is released
    (advice off, the save counted): afterwards no save is counted and the advice is what it was."""
    module, state = _fake_multiarray()
    monkeypatch.setattr(_memory, "_ADVICE_CHOSEN", False)  # the user chose no advice
    monkeypatch.setattr(_memory, "_madvise_switch", lambda: module._set_madvise_hugepage)
    lock = _memory._PAGES_LOCK
    calls = []

    class Interrupting:
        def __enter__(self):
            calls.append("enter")
            if interrupted == "entering" and len(calls) == 1:
                raise KeyboardInterrupt
            return lock.__enter__()

        def __exit__(self, *exc):
            lock.__exit__(*exc)
            calls.append("exit")
            if interrupted == "entered" and len(calls) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(_memory, "_PAGES_LOCK", Interrupting())
    with pytest.raises(KeyboardInterrupt):
        with _memory.small_pages_while():
            raise AssertionError("not reached")
    assert state == [True]
    monkeypatch.setattr(_memory, "_PAGES_LOCK", lock)
    with _memory.small_pages_while():  # a later save switches and restores as usual
        assert state == [False]
    assert state == [True] and not _memory._page_users


@pytest.mark.parametrize("failing", [False, True])
def test_save_allocates_its_blocks_in_small_pages_and_restores_the_advice(tmp_path, monkeypatch, failing):
    """mhw.save turns NumPy's huge-page advice off while its tasks allocate, and back
    to what it was afterwards, also after a failure; a choice made in the environment is kept, and
    small_pages=False leaves the advice alone."""
    switch = _memory._madvise_switch()
    seen = []
    block = _engine._mhw_block

    def recording(*args, **kwargs):
        seen.append(_huge_page_advice())
        if failing:
            raise RuntimeError("injected")
        return block(*args, **kwargs)

    monkeypatch.setattr(_engine, "_mhw_block", recording)
    monkeypatch.setattr(_memory, "_ADVICE_CHOSEN", False)  # the user chose no advice
    before = switch(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mhw.BaseLengthWarning)
            cases = [(None, True, False), (None, False, True), ("1", True, True)]  # environment, small_pages, seen
            for n, (environment, small, expected) in enumerate(cases):
                if environment is not None:
                    monkeypatch.setattr(_memory, "_ADVICE_CHOSEN", True)  # NUMPY_MADVISE_HUGEPAGE at NumPy import
                seen.clear()
                with pytest.raises(RuntimeError, match="injected") if failing else contextlib.nullcontext():
                    mhw.save(
                        _save_case(), tmp_path / f"det{n}.zarr", events=tmp_path / f"events{n}.zarr", small_pages=small
                    )
                assert seen and set(seen) == {expected}
                assert _huge_page_advice() is True and not _memory._page_users and not _memory._page_advice
    finally:
        switch(before)


def _stored(path, name):
    """The numbers and attributes of the variable ``name`` as the file ``path`` (Zarr or NetCDF) stores them."""
    if path.suffix == ".zarr":
        import base64

        import zarr

        array = zarr.open_array(path, path=name, mode="r")
        attrs = array.attrs.asdict()
        if isinstance(attrs.get("_FillValue"), str):  # a float's, as xarray writes it: base64 bytes
            attrs["_FillValue"] = np.frombuffer(base64.b64decode(attrs["_FillValue"]), array.dtype)[0]
        return array[...], attrs
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_maskandscale(False)
        return var[...], {k: var.getncattr(k) for k in var.ncattrs()}


def _ncdump_dates(path, name):
    """The dates of ``name`` as ncdump -t (netCDF-C's CF calendars) prints them, C order, None missing."""
    import re
    import subprocess

    from debian_tools import require

    out = subprocess.run([require("ncdump"), "-t", "-v", name, str(path)], capture_output=True, text=True, check=True)
    values = out.stdout[out.stdout.index(f"{name} =") + len(name) + 2 : out.stdout.rindex(";")]
    return [None if v == "_" else v.strip('"') for v in re.split(r"\s*,\s*", values.strip())]


@pytest.mark.parametrize("suffix", ["zarr", "nc"])
@pytest.mark.parametrize("limit", [None, 1000], ids=["from memory", "beyond the limit"])
@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
def test_save_stores_the_event_dates_as_xarray_opens_them(tmp_path, monkeypatch, calendar, limit, suffix):
    """The event file's dates (mhw.save, Zarr and NetCDF, from memory and beyond the memory limit),
    the first pixel land (the first and last values missing): NumPy dates are CF dates, int64 days
    since the first step (NaT: the smallest int64, the _FillValue) in xarray's calendar of the time
    axis; cftime dates float64 days since the first step counted by its calendar, NaN none, units
    "day" with ``reference_date`` and ``calendar_of_reference``, as events() gives them.  xarray's
    default open reads every file without a warning, as events() gave it.  Oracles: NumPy's and
    cftime's own day counts (num2date) and ncdump -t (netCDF-C's calendars) on the NetCDF file."""
    if limit is not None:
        monkeypatch.setattr(_save, "_table_limit", lambda: limit)
    sst = red_sst(seed=5, years=6, shape=(4, 5), dtype="float32", calendar=calendar, start="1990-03-05")
    sst[:, 0, 0] = np.nan  # land
    path = tmp_path / f"events.{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        table = mhw.events(mhw.detect(sst).compute())
        mhw.save(sst.chunk({"time": 200, "y": 2}), tmp_path / f"det.{suffix}", events=path)
    labels = sst.time.values
    detection_calendar = _stored(tmp_path / f"det.{suffix}", "time")[1]["calendar"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (xarray warns when it cannot decode dates)
        with xr.open_zarr(path) if suffix == "zarr" else xr.open_dataset(path) as opened:
            back = opened.compute()
    for name in ("time_start", "time_end", "time_peak"):
        raw, attrs = _stored(path, name)
        index = table[name.replace("time", "index")].values
        on = ~np.isnan(index)
        assert (~on).any() and on.sum() > 10, name  # events and padding
        assert not on.flat[0] and not on.flat[-1], name  # the case xarray refuses to decode as CF dates
        dates = labels[index[on].astype(int)]
        xr.testing.assert_identical(back[name], table[name])
        if calendar == "standard":
            assert attrs["units"] == "days since 1990-03-05" and attrs["calendar"] == detection_calendar
            assert raw.dtype == np.int64 and attrs["_FillValue"] == np.iinfo(np.int64).min
            np.testing.assert_array_equal(raw[on], (dates - labels[0]) // np.timedelta64(1, "D"))
            assert (raw[~on] == attrs["_FillValue"]).all()
            if suffix == "nc":
                want = np.full(index.shape, None, object)
                want[on] = [f"{d.year:04d}-{d.month:02d}-{d.day:02d}" for d in pd_dates(dates)]
                assert _ncdump_dates(path, name) == want.ravel().tolist()
        else:
            assert attrs["units"] == "day" and "calendar" not in attrs
            assert attrs["reference_date"] == "1990-03-05" and attrs["calendar_of_reference"] == detection_calendar
            assert raw.dtype == np.float64 and np.isnan(attrs["_FillValue"])
            np.testing.assert_array_equal(np.isnan(raw), np.isnan(table["duration"].values))
            got = cftime.num2date(raw[on], f"days since {attrs['reference_date']}", attrs["calendar_of_reference"])
            assert list(got) == list(dates)


def pd_dates(dates):
    """``dates`` (datetime64 or cftime) as objects with year, month and day."""
    return dates.astype("datetime64[us]").tolist() if dates.dtype.kind == "M" else dates
