"""Shared fixtures: small daily and monthly fields in any CF calendar."""

import numpy as np
import pytest
import xarray as xr

#: Calendars tested; "numpy" means a datetime64 coordinate.
CALENDARS = [
    "numpy",
    "standard",
    "gregorian",
    "proleptic_gregorian",
    "julian",
    "noleap",
    "365_day",
    "all_leap",
    "366_day",
    "360_day",
]


def make_field(
    calendar="numpy",
    start="2000-01-01",
    periods=3 * 365,
    freq="D",
    shape=(3, 4),
    dtype="float64",
    nan_fraction=0.05,
    seed=0,
):
    """A (time, y, x) DataArray of random values with NaN sprinkled in."""
    use_cftime = calendar != "numpy"
    time = xr.date_range(
        start, periods=periods, freq=freq, calendar="standard" if not use_cftime else calendar, use_cftime=use_cftime
    )
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((periods,) + shape) * 3 + 10).astype(dtype)
    values[rng.random(values.shape) < nan_fraction] = np.nan
    return xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={"time": time, "y": np.arange(shape[0])},
        name="sst",
        attrs={"units": "degC", "long_name": "sea surface temperature"},
    )


@pytest.fixture
def no_flox():
    """Oracles are xarray's own groupby, without flox."""
    with xr.set_options(use_flox=False):
        yield


def monthday_labels(time, feb29="own"):
    """Independent month-day labels (see oceanflow.timegroups), via datetime.date; -1: no group."""
    import datetime

    labels = []
    for m, d in zip(time.dt.month.values, time.dt.day.values, strict=True):
        if time.dt.calendar == "360_day":
            labels.append(30 * (m - 1) + d)
        elif feb29 == "own":
            labels.append(datetime.date(2000, m, d).timetuple().tm_yday)
        elif feb29 == "drop" and (m, d) == (2, 29):
            labels.append(-1)
        else:
            labels.append(datetime.date(2001, m, min(d, 28) if m == 2 else d).timetuple().tm_yday)
    return np.array(labels)
