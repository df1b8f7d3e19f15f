"""``oceanflow density`` from model variables: --sp/--pt/--t/--depth, or found by standard_name."""

import numpy as np
import pytest
import xarray as xr

from oceanflow.cli import main

gsw = pytest.importorskip("gsw")


def _gsw(ds, temperature="thetao", in_situ=False):
    lev, lat, lon = ds.lev.values, ds.lat.values, ds.lon.values
    SP = ds.so.values.astype("float64")
    p = np.broadcast_to(gsw.p_from_z(-lev[:, None, None], lat[None, :, None]), SP.shape)
    SA = gsw.SA_from_SP(SP, p, lon, lat[:, None])
    T = ds[temperature].values.astype("float64")
    CT = gsw.CT_from_t(SA, T, p) if in_situ else gsw.CT_from_pt(SA, T)
    lat4 = np.broadcast_to(lat[:, None], SP.shape)
    return {"rho": gsw.rho(SA, CT, p), "sigma0": gsw.sigma0(SA, CT), "N2": gsw.Nsquared(SA, CT, p, lat4, axis=1)[0]}


@pytest.fixture
def cmip_file(cmip_ocean, tmp_path):
    ds = cmip_ocean(nt=2, nz=6, ny=4, nx=5)
    ds.to_netcdf(tmp_path / "ts.nc")
    return ds, tmp_path


def test_variables_found_by_standard_name(cmip_file, capsys):
    ds, tmp = cmip_file
    assert main(["density", str(tmp / "ts.nc"), "-o", str(tmp / "out.zarr"), "--what", "rho", "sigma0", "N2"]) == 0
    said = capsys.readouterr().out
    assert "practical salinity so, potential temperature thetao, depth lev" in said and "SA_from_SP" in said
    out = xr.open_zarr(tmp / "out.zarr")
    ref = _gsw(ds)
    for name in ("rho", "sigma0", "N2"):
        scale = np.nanmax(np.abs(ref[name]))
        np.testing.assert_allclose(out[name].values, ref[name], rtol=1e-6, atol=1e-6 * scale, err_msg=name)
    assert out.rho.dtype == np.float32  # float32 fields stay float32 (lev is float64)
    assert out.N2.dims == ("time", "lev_mid", "lat", "lon")
    assert out.attrs["source_id"] == "oceanflow-test"


def test_named_model_variables_and_in_situ_temperature(cmip_file):
    ds, tmp = cmip_file
    ds = ds.rename(thetao="temp")
    ds["temp"].attrs = {"units": "degC"}  # no standard_name: named on the command line
    ds.to_netcdf(tmp / "insitu.nc")
    argv = ["density", str(tmp / "insitu.nc"), "-o", str(tmp / "r.zarr"), "--sp", "so", "--t", "temp"]
    assert main([*argv, "--depth", "lev", "--what", "rho", "-q"]) == 0
    ref = _gsw(ds, "temp", in_situ=True)
    np.testing.assert_allclose(xr.open_zarr(tmp / "r.zarr").rho.values, ref["rho"], rtol=1e-6)


def test_model_variables_with_pressure(cmip_file):
    ds, tmp = cmip_file
    p = gsw.p_from_z(-ds.lev.values[:, None], ds.lat.values)
    ds = ds.assign(pres=(("lev", "lat"), p, {"units": "dbar", "standard_name": "sea_water_pressure"}))
    ds.to_netcdf(tmp / "with_p.nc")
    argv = ["density", str(tmp / "with_p.nc"), "-o", str(tmp / "r.zarr"), "--sp", "so", "--pt", "thetao", "--p", "pres"]
    assert main([*argv, "--what", "rho", "-q"]) == 0
    np.testing.assert_allclose(xr.open_zarr(tmp / "r.zarr").rho.values, _gsw(ds)["rho"], rtol=1e-6)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--sa", "so", "--pt", "thetao"], "do not go together"),
        (["--sp", "so", "--pt", "thetao", "--depth", "lev", "--p", "lev"], "--p and --depth"),
        (["--sp", "so", "--pt", "thetao"], "also give --depth"),
        (["--sp", "so", "--pt", "thetao", "--t", "thetao", "--depth", "lev"], "--pt and --t"),
        (["--sp", "salt", "--pt", "thetao", "--depth", "lev"], "no --sp salt"),
        (["--sp", "so", "--pt", "thetao", "--depth", "lev", "--what", "specvol"], "not from model variables"),
        (["--sa", "so", "--ct", "thetao", "--p", "lev"], "SA_from_SP"),  # --sa means SA: refused, not converted
    ],
)
def test_bad_arguments(cmip_file, capsys, extra, words):
    _, tmp = cmip_file
    assert main(["density", str(tmp / "ts.nc"), "-o", str(tmp / "bad.zarr"), *extra]) != 0
    assert words in capsys.readouterr().err
    assert not (tmp / "bad.zarr").exists()


def test_no_latitude_is_a_clear_error(cmip_file, capsys):
    ds, tmp = cmip_file
    ds.drop_vars(["lat", "lat_bnds"]).rename(lat="j").to_netcdf(tmp / "nolat.nc")
    assert main(["density", str(tmp / "nolat.nc"), "-o", str(tmp / "r.zarr")]) == 2
    assert "has no latitude" in capsys.readouterr().err


def test_help_lists_the_model_options(capsys):
    with pytest.raises(SystemExit):
        main(["density", "--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--sp", "--pt", "--t", "--depth", "N2"))
