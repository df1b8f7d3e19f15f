"""Sample data generators: deterministic, chunk-independent, realistic, any calendar."""

import numpy as np
import pytest
import xarray as xr

from oceanflow import datasets
from oceanflow.timegroups import CF_CALENDARS


def test_same_seed_same_data_other_seed_other_noise():
    a, b = datasets.sst(years=2, resolution=10), datasets.sst(years=2, resolution=10)
    xr.testing.assert_identical(a, b)
    c = datasets.sst(years=2, resolution=10, seed=1)
    assert not np.allclose(a.fillna(0), c.fillna(0))
    np.testing.assert_allclose((a - c).std(), 0.3 * np.sqrt(2), rtol=0.1)  # only the noise differs


@pytest.mark.parametrize("chunks", [{"time": 5}, {"time": 7, "lat": 4, "lon": 11}])
def test_lazy_chunks_generate_the_same_values(chunks):
    eager = datasets.sst(years=2, resolution=10)
    lazy = datasets.sst(years=2, resolution=10, chunks=chunks)
    assert lazy.chunks is not None and lazy.data.npartitions > 1
    np.testing.assert_array_equal(lazy.values, eager.values)
    ocean = datasets.ocean(levels=7, resolution=20)
    lazy_ocean = datasets.ocean(levels=7, resolution=20, chunks={"depth": 3, "lon": 5})
    xr.testing.assert_identical(lazy_ocean.compute(), ocean)


def test_noise_is_standard_normal():
    z = datasets._normal(0, (400, 500), slice(0, 400), slice(0, 500)).ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005  # the normal's one-sigma mass
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01  # neighbours independent


@pytest.mark.parametrize("calendar", CF_CALENDARS)
def test_every_cf_calendar_daily(calendar):
    sst = datasets.sst(years=2, freq="day", calendar=calendar, resolution=45)
    expected_days = {"360_day": 720, "noleap": 730, "365_day": 730, "all_leap": 732, "366_day": 732}
    assert sst.sizes["time"] == expected_days.get(calendar, 731)  # 2000 is a leap year elsewhere
    aliases = {
        "standard": "proleptic_gregorian",
        "gregorian": "proleptic_gregorian",  # datetime64
        "365_day": "noleap",
        "366_day": "all_leap",
    }
    assert sst.time.dt.calendar == aliases.get(calendar, calendar)
    assert str(sst.time.values[0])[:10] == "2000-01-01"


def test_sizes_and_dtype():
    sst = datasets.sst()
    assert dict(sst.sizes) == {"time": 120, "lat": 180, "lon": 360} and sst.dtype == np.float32
    big = datasets.sst(years=30, freq="day", chunks={"time": 365})
    assert big.sizes["time"] == 10958 and big.nbytes > 2.8e9  # lazy: nothing generated yet
    assert datasets.sst(years=1, resolution=30, dtype="float64").dtype == np.float64


def test_realistic_sst():
    sst = datasets.sst(years=10, resolution=2)
    land = datasets.land_mask(sst.lat, sst.lon)
    assert np.isnan(sst.values[:, land]).all() and not np.isnan(sst.values[:, ~land]).any()
    assert 0.1 < land.mean() < 0.4
    assert -1.8 <= float(sst.min()) and float(sst.max()) < 32
    tropics, north, south = sst.sel(lat=slice(-10, 10)), sst.sel(lat=slice(40, 60)), sst.sel(lat=slice(-60, -40))
    assert float(tropics.mean()) > 25 > 20 > float(north.mean()) > 12
    monthly = lambda x: x.groupby("time.month").mean(...)  # noqa: E731
    assert int(monthly(north).argmax("month")) + 1 in (7, 8, 9) and int(monthly(south).argmax("month")) + 1 in (1, 2, 3)
    anomaly = sst.groupby("time.month") - sst.groupby("time.month").mean()
    series = anomaly.mean(("lat", "lon"))
    slope = float(series.polyfit("time", 1).polyfit_coefficients.sel(degree=1)) * 86400e9 * 365.25
    assert abs(slope - datasets.SST_TREND) < 0.002


def test_realistic_ocean_and_pressure_matches_gsw():
    gsw = pytest.importorskip("gsw")
    ocean = datasets.ocean(levels=11, resolution=10)
    assert {v.attrs["units"] for v in ocean.data_vars.values()} == {"g/kg", "degC", "dbar"}
    assert 33 < float(ocean.SA.min()) < float(ocean.SA.max()) < 37
    surface, deep = ocean.CT.isel(depth=0), ocean.CT.isel(depth=-1)
    assert float(surface.max()) > 25 and abs(float(deep.mean()) - 2) < 0.1
    p = ocean.p.isel(lon=0).dropna("lat", how="all")
    expected = gsw.p_from_z(-p.depth.values[:, None], p.lat.values[None, :])
    np.testing.assert_allclose(p.values, expected, atol=0.5)
    assert float(gsw.sigma0(ocean.SA, ocean.CT).max()) < 28  # stably stratified, oceanic densities
    n2 = gsw.Nsquared(ocean.SA.isel(lon=0).values, ocean.CT.isel(lon=0).values, ocean.p.isel(lon=0).values, axis=0)[0]
    assert np.nanmin(n2) > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"freq": "hour"}, "unknown freq 'hour'"),
        ({"years": 0}, "years must be a positive"),
        ({"resolution": 0}, "resolution must be"),
        ({"chunks": {"depth": 3}}, "unknown dimension(s) ['depth']"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        datasets.sst(**kwargs)
