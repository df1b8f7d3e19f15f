"""CF climatological statistics (conventions 1.11, section 7.4) in files that CDO and NCO read.

Oracles: CDO (``ymonmean``, ``ymonsub``, ``ydaymean``, ``ydaysub``,
``yseassub``, ``showdate``) and NCO (``ncks``) from Debian's packages, the
bounds the conventions define by hand, and xarray's groupby.
"""

import datetime
import subprocess

import numpy as np
import pytest
import xarray as xr
from conftest import make_field
from debian_tools import require
from test_cli import oceanflow_cmd
from test_climatology import oracle_key

import oceanflow
from oceanflow.climatology.cf import period_of

pytestmark = pytest.mark.usefixtures("no_flox")


def _monthly(years=(1991, 2000), calendar="numpy"):
    """Monthly SST on a grid with CF bounds (lat_bnds) and time bounds (time_bnds)."""
    periods = 12 * (years[1] - years[0] + 1)
    sst = make_field(calendar, start=f"{years[0]}-01-01", periods=periods, freq="MS", shape=(3, 4), nan_fraction=0)
    sst = sst.rename(y="lat", x="lon").assign_coords(lat=[-10.0, 0.0, 10.0], lon=[0.0, 90.0, 180.0, 270.0])
    sst = (sst + 2 * np.cos(2 * np.pi * sst.time.dt.month / 12)).rename("sst")
    sst.attrs = {"units": "degC", "standard_name": "sea_surface_temperature", "cell_methods": "time: mean"}
    edges = xr.date_range(
        f"{years[0]}-01-01",
        periods=periods + 1,
        freq="MS",
        calendar=_calendar(calendar),
        use_cftime=calendar != "numpy",
    )
    starts, ends = np.asarray(edges[:-1]), np.asarray(edges[1:])
    ds = xr.Dataset(
        {
            "sst": sst,
            "lat_bnds": (("lat", "bnds"), np.stack([sst.lat - 5, sst.lat + 5], axis=1)),
            "time_bnds": (("time", "bnds"), np.stack([starts, ends], axis=1)),
        }
    )
    ds.lat.attrs["bounds"] = "lat_bnds"
    ds.time.attrs["bounds"] = "time_bnds"
    return ds


def _calendar(calendar):
    return "standard" if calendar == "numpy" else calendar


def _daily(calendar="standard", years=3):
    sst = make_field(calendar, start="2003-01-01", periods=365 * years + 1, shape=(2, 3), nan_fraction=0)
    return (sst + 5 * np.sin(2 * np.pi * sst.time.dt.dayofyear / 365)).rename("sst").to_dataset()


def _cdo(*args, cwd):
    cdo = require("cdo")
    return subprocess.run([cdo, "-s", "-O", *map(str, args)], cwd=cwd, check=True, capture_output=True, text=True)


# ---------------------------------------------------------------- bounds and cell methods


def test_climatology_bounds_are_the_periods_of_each_group():
    ds = _monthly((1991, 2020))
    clim = oceanflow.climatology(ds)
    january, december = clim.climatology_bounds.sel(month=1).values, clim.climatology_bounds.sel(month=12).values
    assert [str(v)[:10] for v in january] == ["1991-01-01", "2020-02-01"]
    assert [str(v)[:10] for v in december] == ["1991-12-01", "2021-01-01"]
    one_year = oceanflow.climatology(ds.sel(time="1995"))
    assert [str(v)[:10] for v in one_year.climatology_bounds.sel(month=3).values] == ["1995-03-01", "1995-04-01"]
    assert clim.sst.attrs["cell_methods"] == "time: mean within years time: mean over years"


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "julian", "all_leap"])
@pytest.mark.parametrize("freq", ["dayofyear", "time.dayofyear", "season"])
def test_day_and_season_bounds_in_cf_calendars(calendar, freq):
    daily = _daily(calendar)
    clim = oceanflow.climatology(daily, freq)
    gdim = clim.sst.dims[0]
    labels = oracle_key(daily.time, freq).values
    day = datetime.timedelta(days=1)
    for label, (start, end) in zip(clim[gdim].values, clim.climatology_bounds.values, strict=True):
        steps = daily.time.values[labels == label]  # daily steps at midnight: each covers its day
        assert (start, end) == (steps[0], steps[-1] + day)


def test_periods_of_time_axes():
    monthly = xr.date_range("1991-01-01", periods=24, freq="MS") + np.timedelta64(15, "D")  # mid-month stamps
    assert [str(v)[:10] for v in period_of(monthly.values)] == ["1991-01-01", "1993-01-01"]
    hourly = xr.date_range("2000-01-01T06", periods=48, freq="6h", calendar="noleap", use_cftime=True)
    start, end = period_of(np.asarray(hourly))
    assert (start.isoformat(), end.isoformat()) == ("2000-01-01T00:00:00", "2000-01-14T00:00:00")


# ---------------------------------------------------------------- files: round trips


@pytest.mark.parametrize(
    "freq, options, calendar",
    [
        ("month", {}, "numpy"),
        ("season", {"seasons": ["DJFM", "AMJJASON"]}, "noleap"),
        ("dayofyear", {}, "standard"),
        ("dayofyear", {"feb29": "merge"}, "standard"),
        ("time.dayofyear", {}, "360_day"),
    ],
)
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_saved_climatology_reads_back_as_the_api_returns_it(freq, options, calendar, suffix, tmp_path):
    data = _monthly(calendar=calendar) if freq in ("month", "season") else _daily(calendar)
    clim = oceanflow.climatology(data, freq, **options)
    oceanflow.save(clim, tmp_path / f"clim{suffix}")
    back = oceanflow.open_dataset(tmp_path / f"clim{suffix}", chunks=None).load()
    xr.testing.assert_identical(back.sst, clim.sst)
    as_text = "%Y-%m-%dT%H:%M:%S"  # a standard calendar reads back as datetime64, cftime in memory
    assert (back.climatology_bounds.dt.strftime(as_text) == clim.climatology_bounds.dt.strftime(as_text)).all()
    plain = xr.open_dataset(tmp_path / f"clim{suffix}", engine="zarr" if suffix == ".zarr" else None)
    assert plain.sst.dims[0] == "time" and plain.time.attrs["climatology"] == "climatology_bounds"
    assert plain.time.to_index().is_monotonic_increasing
    if "lat_bnds" in data:
        xr.testing.assert_identical(back.lat_bnds, data.lat_bnds)  # grid bounds survive
    assert "time_bnds" not in back


def test_a_saved_dataarray_climatology_gets_its_bounds_from_its_period(tmp_path):
    ds = _monthly()
    clim = oceanflow.climatology(ds.sst, "season")
    oceanflow.save(clim, tmp_path / "clim.nc")
    back = oceanflow.open_dataset(tmp_path / "clim.nc", chunks=None)
    assert back.season.attrs.pop("climatology") == "climatology_bounds"  # the Dataset read holds the bounds
    xr.testing.assert_identical(back.sst, clim)
    expected = oceanflow.climatology(ds, "season").climatology_bounds
    np.testing.assert_array_equal(back.climatology_bounds.values, expected.values)


def test_ncdump_and_ncks_see_a_cf_climatological_time_axis(tmp_path):
    ncks, ncdump = require("ncks", "ncdump")
    oceanflow.save(oceanflow.climatology(_monthly((1991, 2020))), tmp_path / "clim.nc")
    header = subprocess.run([ncdump, "-h", "clim.nc"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert 'time:climatology = "climatology_bounds"' in header and "month" not in header.split("variables:")[0]
    assert "sst(time, lat, lon)" in header and "lat_bnds(lat, bnds)" in header
    dates = subprocess.run(
        [ncks, "-H", "-C", "--cal", "-v", "climatology_bounds", "clim.nc"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "1991-01-01" in dates and "2020-02-01" in dates  # January of 1991-2020


# ---------------------------------------------------------------- CDO reads ours, we read CDO's


def _anomaly_of_file(data, clim, freq):
    return oceanflow.anomaly(xr.open_dataset(data), oceanflow.open_dataset(clim, chunks=None), freq=freq)


@pytest.mark.parametrize(
    "freq, cdo_sub, make",
    [
        ("month", "ymonsub", lambda: _monthly()),
        ("season", "yseassub", lambda: _monthly()),
        ("dayofyear", "ydaysub", lambda: _daily()),
    ],
)
def test_cdo_subtracts_oceanflow_climatologies_as_oceanflow_does(freq, cdo_sub, make, tmp_path):
    make().to_netcdf(tmp_path / "data.nc")
    oceanflow.save(oceanflow.climatology(xr.open_dataset(tmp_path / "data.nc"), freq), tmp_path / "clim.nc")
    _cdo(cdo_sub, "data.nc", "clim.nc", "cdo_anom.nc", cwd=tmp_path)
    ours = _anomaly_of_file(tmp_path / "data.nc", tmp_path / "clim.nc", freq)
    theirs = xr.open_dataset(tmp_path / "cdo_anom.nc")
    np.testing.assert_allclose(theirs.sst.values, ours.sst.transpose(*theirs.sst.dims).values, atol=1e-12)
    shown = _cdo("showdate", "clim.nc", cwd=tmp_path).stdout.split()
    assert len(shown) == oceanflow.climatology(xr.open_dataset(tmp_path / "data.nc"), freq).sst.shape[0]


@pytest.mark.parametrize(
    "freq, cdo_mean, cdo_sub, make",
    [("month", "ymonmean", "ymonsub", lambda: _monthly()), ("dayofyear", "ydaymean", "ydaysub", lambda: _daily())],
)
def test_oceanflow_reads_cdo_climatologies(freq, cdo_mean, cdo_sub, make, tmp_path):
    make().to_netcdf(tmp_path / "data.nc")
    _cdo(cdo_mean, "data.nc", "cdo_clim.nc", cwd=tmp_path)
    _cdo(cdo_sub, "data.nc", "cdo_clim.nc", "cdo_anom.nc", cwd=tmp_path)
    run = oceanflow_cmd("anomaly", "data.nc", "-o", "anom.nc", "--freq", freq, "--clim", "cdo_clim.nc", cwd=tmp_path)
    assert "anomaly of sst" in run.stdout
    ours = oceanflow.open_dataset(tmp_path / "anom.nc", chunks=None).sst
    theirs = xr.open_dataset(tmp_path / "cdo_anom.nc").sst
    np.testing.assert_allclose(ours.transpose(*theirs.dims).values, theirs.values, atol=1e-5)
    clim = oceanflow.climatology(xr.open_dataset(tmp_path / "data.nc"), freq)
    cdo_clim = oceanflow.open_dataset(tmp_path / "cdo_clim.nc", chunks=None)
    xr.testing.assert_allclose(
        oceanflow.anomaly(xr.open_dataset(tmp_path / "data.nc"), cdo_clim, freq=freq).sst,
        oceanflow.anomaly(xr.open_dataset(tmp_path / "data.nc"), clim, freq=freq).sst,
    )


# ---------------------------------------------------------------- the command line


def test_cli_climatology_carries_grid_bounds_and_round_trips_through_cdo(tmp_path):
    _monthly().to_netcdf(tmp_path / "data.nc")
    run = oceanflow_cmd("climatology", "data.nc", "-o", "clim.nc", cwd=tmp_path)
    assert "climatology of sst (carried: lat_bnds; dropped: time_bnds)" in run.stdout
    clim = oceanflow.open_dataset(tmp_path / "clim.nc", chunks=None)
    xr.testing.assert_identical(clim.lat_bnds.load(), xr.open_dataset(tmp_path / "data.nc").lat_bnds)
    assert clim.sst.attrs["grouping"] == clim.month.attrs["grouping"] == "month"
    _cdo("ymonsub", "data.nc", "clim.nc", "cdo_anom.nc", cwd=tmp_path)
    run = oceanflow_cmd("anomaly", "data.nc", "-o", "anom.nc", "--clim", "clim.nc", cwd=tmp_path)
    assert "anomaly of sst (carried: lat_bnds, time_bnds)" in run.stdout
    ours = oceanflow.open_dataset(tmp_path / "anom.nc", chunks=None)
    np.testing.assert_allclose(ours.sst.values, xr.open_dataset(tmp_path / "cdo_anom.nc").sst.values, atol=1e-12)
    assert ours.sst.attrs["long_name"] == "sea surface temperature anomaly" and "standard_name" not in ours.sst.attrs
    assert "time_bnds" in ours and "lat_bnds" in ours


def test_cli_refuses_a_bounds_variable_as_a_field(tmp_path):
    _monthly().to_netcdf(tmp_path / "data.nc")
    run = oceanflow_cmd("climatology", "data.nc", "-o", "c.nc", "--var", "lat_bnds", cwd=tmp_path, check=False)
    assert run.returncode == 2 and "'lat_bnds': not a numeric field along time" in run.stderr
