"""A small demonstration on generated data: ``python -m oceanflow.demo``.

Generates ten years of monthly sea surface temperature on a 1-degree grid (a
seasonal cycle varying with latitude, a warming trend, noise and land as NaN)
and a 3-D temperature/salinity/pressure section, then

1. evaluates a degree-10 calibration polynomial on the field (vs ``np.polyval``),
2. fits and removes the linear trend along time (vs ``xr.DataArray.polyfit``),
3. computes in-situ density, sigma0, alpha and beta with the TEOS-10 75-term
   equation of state, on dask chunks,

and prints what it found, with timings and the largest difference from the
NumPy/xarray answer.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

import oceanflow
from oceanflow import eos


def sample_sst(years: int = 10, seed: int = 0) -> xr.DataArray:
    """Monthly SST (degC), shape (12*years, 180, 360), float32, land as NaN."""
    rng = np.random.default_rng(seed)
    time_coord = xr.date_range("2000-01-01", periods=12 * years, freq="MS", use_cftime=False)
    lat = np.arange(-89.5, 90, 1.0)
    lon = np.arange(0.5, 360, 1.0)
    t_years = np.arange(12 * years) / 12.0
    mean = 28.0 * np.cos(np.deg2rad(lat))[:, None] - 1.0
    amplitude = 4.0 * np.sin(np.deg2rad(lat))[:, None]
    season = np.cos(2 * np.pi * (t_years[:, None, None] - 0.1))
    trend = 0.02 * t_years[:, None, None]
    noise = rng.normal(0, 0.3, size=(t_years.size, lat.size, lon.size))
    sst = (mean + amplitude * season + trend + noise + 0 * lon).astype("float32")
    land = (np.abs(lat)[:, None] < 60) & (np.sin(np.deg2rad(lon)) * np.cos(np.deg2rad(2 * lat[:, None])) > 0.6)
    sst[:, land] = np.nan
    return xr.DataArray(
        sst,
        dims=("time", "lat", "lon"),
        coords={"time": time_coord, "lat": lat, "lon": lon},
        name="sst",
        attrs={"units": "degC", "standard_name": "sea_surface_temperature"},
    )


def sample_section(seed: int = 1) -> xr.Dataset:
    """A (depth, lat, lon) ocean: Absolute Salinity, Conservative Temperature, pressure."""
    rng = np.random.default_rng(seed)
    depth = np.linspace(0, 5000, 50)
    lat = np.linspace(-60, 60, 121)
    lon = np.linspace(0, 179, 180)
    surface = 25 * np.cos(np.deg2rad(lat))[None, :, None]
    CT = 2 + (surface - 2) * np.exp(-depth / 800)[:, None, None] + rng.normal(0, 0.05, (50, 121, 180))
    SA = 34.7 + 0.6 * np.exp(-depth / 500)[:, None, None] * np.cos(np.deg2rad(2 * lat))[None, :, None] + 0 * CT
    p = np.broadcast_to(depth[:, None, None] * 1.0, CT.shape)
    dims = ("depth", "lat", "lon")
    coords = {"depth": depth, "lat": lat, "lon": lon}
    return xr.Dataset(
        {
            "SA": (dims, SA, {"units": "g/kg"}),
            "CT": (dims, CT, {"units": "degC"}),
            "p": (dims, p.copy(), {"units": "dbar"}),
        },
        coords=coords,
    )


def _timed(func):
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def main() -> None:
    print(f"oceanflow {oceanflow.__version__} demonstration on generated data\n")
    sst = sample_sst()
    print(f"sea surface temperature: {dict(sst.sizes)}, {sst.nbytes / 1e6:.0f} MB, land as NaN")

    coeffs = np.random.default_rng(2).normal(size=11).astype("float32") / 10
    x = (sst / 30).astype("float32")
    _, t_first = _timed(lambda: oceanflow.polyval(x, coeffs))  # compiles, or loads the cache
    ours, t_ours = _timed(lambda: oceanflow.polyval(x, coeffs))
    theirs, t_theirs = _timed(lambda: np.polyval(coeffs, x.values))
    diff = float(np.nanmax(np.abs(ours.values - theirs)))
    print(f"1. degree-10 polynomial: oceanflow {t_ours * 1e3:.0f} ms (first call {t_first * 1e3:.0f} ms), "
          f"np.polyval {t_theirs * 1e3:.0f} ms, max difference {diff:.1e}")

    chunked = sst.chunk({"time": -1, "lat": 45})
    fit, t_fit = _timed(lambda: oceanflow.polyfit(chunked, "time", 1).compute())
    slope = fit.polyfit_coefficients.sel(degree=1) * 86400e9 * 365.25 * 10  # per decade
    reference = sst.polyfit("time", 1).polyfit_coefficients.sel(degree=1) * 86400e9 * 365.25 * 10
    print(f"2. linear trend: {float(slope.mean()):.3f} degC/decade on average (0.200 built in), "
          f"{t_fit * 1e3:.0f} ms; max difference from xarray's polyfit {float(abs(slope - reference).max()):.1e}")
    detrended = oceanflow.detrend(chunked, "time").compute()
    print(f"   detrended: {float(detrended.mean()):.1e} degC mean, NaN kept over land: "
          f"{bool(detrended.isnull().equals(sst.isnull()))}")

    ocean = sample_section().chunk({"depth": 10})
    (rho, alpha, beta), t_eos = _timed(lambda: [v.compute() for v in eos.rho_alpha_beta(ocean.SA, ocean.CT, ocean.p)])
    sigma0 = eos.sigma0(ocean.SA, ocean.CT).compute()
    print(f"3. equation of state on {ocean.SA.size:,} points in {ocean.SA.data.npartitions} chunks: {t_eos * 1e3:.0f} ms")
    print(f"   in-situ density {float(rho.min()):.2f} to {float(rho.max()):.2f} {rho.attrs.get('units', '')}, "
          f"sigma0 {float(sigma0.min()):.2f} to {float(sigma0.max()):.2f}")
    print(f"   alpha at the surface {float(alpha.isel(depth=0).mean()):.2e} 1/K, "
          f"beta {float(beta.isel(depth=0).mean()):.2e} kg/g")


if __name__ == "__main__":
    main()
