"""Time groups against independent oracles (xarray's .dt accessor, datetime.date)."""

import numpy as np
import pytest
import xarray as xr
from conftest import CALENDARS, make_field, monthday_labels

from oceanflow.timegroups import time_groups


def _labels_of(groups):
    labels = groups.labels[np.maximum(groups.codes, 0)]
    return np.where(groups.codes >= 0, labels, np.array(-1).astype(labels.dtype))


@pytest.mark.parametrize("calendar", CALENDARS)
def test_month_and_xarray_dayofyear_match_xarray(calendar):
    time = make_field(calendar, periods=800).time
    assert np.array_equal(_labels_of(time_groups(time, "month")), time.dt.month.values)
    assert np.array_equal(_labels_of(time_groups(time, "time.dayofyear")), time.dt.dayofyear.values)
    assert np.array_equal(_labels_of(time_groups(time, "time.season")).astype(str), time.dt.season.values)


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("feb29", ["own", "merge", "drop"])
def test_monthday_policy(calendar, feb29):
    time = make_field(calendar, start="2003-12-01", periods=800).time
    months, days = time.dt.month.values, time.dt.day.values
    expected = monthday_labels(time, feb29)
    groups = time_groups(time, "dayofyear", feb29=feb29)
    assert np.array_equal(_labels_of(groups), expected)
    march1 = (months == 3) & (days == 1)
    assert len(set(groups.codes[march1])) == 1


def test_user_seasons_and_labels():
    time = make_field(periods=400).time
    groups = time_groups(time, "season", seasons=["DJFM", "JJAS"])
    month = time.dt.month.values
    expected = np.where(np.isin(month, [12, 1, 2, 3]), "DJFM", np.where(np.isin(month, [6, 7, 8, 9]), "JJAS", "-1"))
    assert np.array_equal(_labels_of(groups).astype(str), expected)
    groups = time_groups(time, "season", seasons={"wet": [11, 12, 1]})
    assert set(groups.labels) == {"wet"}
    labels = np.where(month < 7, "first", "second")
    groups = time_groups(time, xr.DataArray(labels, dims="time", name="half"))
    assert groups.dim == "half" and np.array_equal(_labels_of(groups), labels)


def test_undecoded_numbers_are_decoded():
    time = xr.DataArray(np.arange(400.0), dims="time", attrs={"units": "days since 2001-01-01", "calendar": "noleap"})
    expected = xr.DataArray(xr.date_range("2001-01-01", periods=400, calendar="noleap", use_cftime=True), dims="time")
    assert np.array_equal(_labels_of(time_groups(time, "month")), expected.dt.month.values)


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda t: t.assign_attrs(calendar="martian"), {}, "unknown calendar"),
        (lambda t: t, {"freq": "fortnight"}, "unknown freq"),
        (lambda t: t, {"freq": "season", "seasons": ["DJF", "DJFM"]}, "must not overlap"),
        (lambda t: t, {"freq": "season", "seasons": ["JAN"]}, "no run of consecutive months"),
        (lambda t: t, {"freq": "dayofyear", "feb29": "leap"}, "unknown feb29"),
    ],
)
def test_bad_groupings(change, kwargs, message):
    time = xr.DataArray(np.arange(400.0), dims="time", attrs={"units": "days since 2001-01-01"})
    with pytest.raises(ValueError, match=message):
        time_groups(change(time), **kwargs)


def test_bad_times():
    time = make_field(periods=40).time
    with pytest.raises(ValueError, match="not increasing"):
        time_groups(time[::-1])
    with pytest.raises(ValueError, match="duplicate"):
        time_groups(xr.concat([time, time[:1]], "time"))
    monthly = make_field(periods=24, freq="MS").time
    with pytest.raises(ValueError, match="daily"):
        time_groups(monthly, "dayofyear")
    with pytest.raises(TypeError, match="without CF units"):
        time_groups(xr.DataArray(np.arange(3.0), dims="time"))


@pytest.mark.parametrize("calendar", ["standard", "proleptic_gregorian", "julian", "noleap", "all_leap", "360_day"])
def test_step_days_of_cftime_dates_is_the_median_of_their_differences(calendar):
    """step_days of cftime dates (irregular steps to the microsecond, across the 1582 Julian/Gregorian
    switch and year 1 of ``standard``) is the median of cftime's own differences in days."""
    import datetime
    import itertools

    import cftime

    from oceanflow.timegroups import step_days

    rng = np.random.default_rng(0)
    for first in [(1, 1, 1), (1582, 9, 20), (1999, 12, 30)]:
        steps = rng.integers(1, 3 * 86_400_000_000, 41)  # microseconds: sub-day to a few days
        start = cftime.datetime(*first, 7, 13, 5, 123_456, calendar=calendar)
        dates = [start]
        for us in steps.tolist():
            dates.append(dates[-1] + datetime.timedelta(microseconds=us))
        time = xr.DataArray(np.array(dates, dtype=object), dims="time")
        expected = np.median([(b - a) / datetime.timedelta(days=1) for a, b in itertools.pairwise(dates)])
        assert step_days(time) == expected
