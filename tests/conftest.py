"""Shared fixtures: small daily and monthly fields in any CF calendar."""

import faulthandler
import os
import sys

import numpy as np
import pytest
import xarray as xr


def pytest_configure(config):
    """A crash (segfault) prints the Python stack of the thread that crashed, and only that one.

    pytest's own handler (switched off in pyproject.toml) prints every thread; with the dask,
    spill and writer pools alive that is dozens of stacks, and a CI log cut in the middle then
    lost the one that crashed.  Written to a copy of the real stderr taken here, as pytest's
    handler does, so that the output of a test being captured does not swallow it.
    """
    faulthandler.enable(file=os.dup(sys.__stderr__.fileno()), all_threads=False)


#: Calendars tested, written out from CF 1.11 section 4.4.1 (an oracle independent of
#: oceanflow.timegroups.CF_CALENDARS); "numpy" means a datetime64 coordinate.
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


#: (calendar, freq, feb29, window) of the window plans tested: leap days own, merged and dropped,
#: a window of more than a year (steps pooled twice), and of one step
WINDOW_PLANS = [
    ("noleap", "dayofyear", "own", 11),
    ("standard", "time.dayofyear", "own", 11),
    ("standard", "dayofyear", "merge", 5),
    ("standard", "dayofyear", "drop", 31),
    ("360_day", "dayofyear", "own", 451),
    ("all_leap", "dayofyear", "own", 1),
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


def make_cmip_ocean(nt=2, nz=4, ny=3, nx=5, seed=0):
    """A CMIP6-like Omon Dataset as the files hold it: practical salinity ``so`` (units 0.001),
    potential temperature ``thetao`` (degC), ``tos`` in kelvin, ``lev`` depth in metres
    (positive down), float32 data, and CF bounds ``lev_bnds``, ``lat_bnds``, ``lon_bnds``, ``time_bnds``."""
    rng = np.random.default_rng(seed)
    shape = (nt, nz, ny, nx)
    lev = np.linspace(5.0, 2000.0, nz)
    lat = np.linspace(-60.0, 60.0, ny)
    lon = np.linspace(10.0, 350.0, nx)
    time = xr.date_range("2000-01-01", periods=nt, freq="MS", use_cftime=False) + np.timedelta64(15, "D")

    def edges(centres):
        mid = 0.5 * (centres[1:] + centres[:-1])
        first, last = 2 * centres[0] - mid[0], 2 * centres[-1] - mid[-1]
        lower, upper = np.concatenate([[first], mid]), np.concatenate([mid, [last]])
        return np.stack([lower, upper], axis=-1)

    so = rng.uniform(33.0, 37.0, shape).astype("float32")
    thetao = (25.0 * np.exp(-lev / 800.0)[:, None, None] + rng.uniform(-1.0, 1.0, shape)).astype("float32")
    tos = (thetao[:, 0] + 273.15).astype("float32")
    time_edges = np.stack([time.values - np.timedelta64(15, "D"), time.values + np.timedelta64(15, "D")], axis=-1)
    ds = xr.Dataset(
        {
            "so": (("time", "lev", "lat", "lon"), so, {"standard_name": "sea_water_salinity", "units": "0.001"}),
            "thetao": (
                ("time", "lev", "lat", "lon"),
                thetao,
                {"standard_name": "sea_water_potential_temperature", "units": "degC"},
            ),
            "tos": (("time", "lat", "lon"), tos, {"standard_name": "sea_surface_temperature", "units": "K"}),
            "lev_bnds": (("lev", "bnds"), edges(lev)),
            "lat_bnds": (("lat", "bnds"), edges(lat)),
            "lon_bnds": (("lon", "bnds"), edges(lon)),
            "time_bnds": (("time", "bnds"), time_edges),
        },
        coords={
            "time": ("time", time.values, {"bounds": "time_bnds", "standard_name": "time"}),
            "lev": (
                "lev",
                lev,
                {"bounds": "lev_bnds", "standard_name": "depth", "units": "m", "positive": "down", "axis": "Z"},
            ),
            "lat": ("lat", lat, {"bounds": "lat_bnds", "standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"bounds": "lon_bnds", "standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.7 CMIP-6.2", "source_id": "oceanflow-test"},
    )
    ds.time.encoding["units"] = "days since 1850-01-01"
    return ds


@pytest.fixture
def cmip_ocean():
    """:func:`make_cmip_ocean` (a function, so that tests choose the sizes)."""
    return make_cmip_ocean


def added_tasks(result, *sources):
    """Tasks in the dask graph of ``result`` that none of ``sources`` holds (dask arrays or DataArrays):
    what an operation added to its inputs' graphs."""

    def keys(obj):
        return set((obj.data if isinstance(obj, xr.DataArray) else obj).__dask_graph__())

    known = set().union(*(keys(source) for source in sources))
    return len(keys(result) - known)
