"""oceanflow.eos.from_model against the same chain of gsw functions."""

import warnings

import numpy as np
import pytest
import xarray as xr

from oceanflow import eos
from oceanflow.chunking import RechunkWarning

gsw = pytest.importorskip("gsw")

NZ, NY, NX = 12, 5, 7
ALL = ("SA", "CT", "p", "rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "N2")


def _model(seed=0, dtype="float64"):
    """(lev, lat, lon) practical salinity and potential temperature with NaN below a sea floor."""
    rng = np.random.default_rng(seed)
    depth = np.geomspace(5.0, 5000.0, NZ)
    lat = np.linspace(-75.0, 80.0, NY)
    lon = np.linspace(-170.0, 350.0, NX)  # any longitude convention
    profile = np.exp(-depth / 700.0)[:, None, None]
    SP = 34.6 + 0.6 * profile + rng.normal(0, 0.05, (NZ, NY, NX))
    pt = 2.0 + 20.0 * profile + rng.normal(0, 0.2, (NZ, NY, NX))
    bottom = rng.integers(1, NZ + 1, (NY, NX))
    below = np.arange(NZ)[:, None, None] >= bottom
    SP[below] = pt[below] = np.nan
    return SP.astype(dtype), pt.astype(dtype), depth, lat, lon


def _gsw(SP, pt, depth, lat, lon, in_situ=False):
    """Every output through gsw, one function after the other."""
    SP, pt = SP.astype("float64"), pt.astype("float64")
    p = np.broadcast_to(gsw.p_from_z(-depth[:, None, None], lat[None, :, None]), SP.shape)
    SA = gsw.SA_from_SP(SP, p, lon[None, None, :], lat[None, :, None])
    CT = gsw.CT_from_t(SA, pt, p) if in_situ else gsw.CT_from_pt(SA, pt)
    out = {"SA": SA, "CT": CT, "p": p, "rho": gsw.rho(SA, CT, p), "alpha": gsw.alpha(SA, CT, p)}
    out["beta"] = gsw.beta(SA, CT, p)
    out.update({f"sigma{n}": getattr(gsw, f"sigma{n}")(SA, CT) for n in range(5)})
    out["N2"] = gsw.Nsquared(SA, CT, p, np.broadcast_to(lat[None, :, None], SP.shape), axis=0)[0]
    return out


def _dataarrays(SP, pt, depth, lat, lon, chunks=None):
    coords = {"lev": depth, "lat": lat, "lon": lon}
    so = xr.DataArray(SP, dims=("lev", "lat", "lon"), coords=coords, name="so", attrs={"units": "0.001"})
    thetao = xr.DataArray(pt, dims=("lev", "lat", "lon"), coords=coords, name="thetao", attrs={"units": "degC"})
    if chunks:
        so, thetao = so.chunk(chunks), thetao.chunk(chunks)
    return so, thetao


def _assert_matches(got, ref, name, rtol=1e-12):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
    scale = np.nanmax(np.abs(ref))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_numpy_equals_gsw_chain():
    SP, pt, depth, lat, lon = _model()
    got = eos.from_model(SP=SP, pt=pt, depth=depth[:, None, None], lat=lat[:, None], lon=lon, outputs=ALL)
    ref = _gsw(SP, pt, depth, lat, lon)
    assert set(got) == set(ALL)
    for name in ALL:
        assert got[name].shape == ref[name].shape, name
        _assert_matches(got[name], ref[name], name, rtol=1e-9 if name == "N2" else 1e-12)


def test_in_situ_temperature_and_height_and_pressure():
    SP, t, depth, lat, lon = _model(seed=1)
    ref = _gsw(SP, t, depth, lat, lon, in_situ=True)
    by_height = eos.from_model(SP=SP, t=t, z=-depth[:, None, None], lat=lat[:, None], lon=lon, outputs=("CT", "rho"))
    by_pressure = eos.from_model(SP=SP, t=t, p=ref["p"], lat=lat[:, None], lon=lon, outputs=("CT", "rho"))
    for got in (by_height, by_pressure):
        _assert_matches(got["CT"], ref["CT"], "CT")
        _assert_matches(got["rho"], ref["rho"], "rho")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dask_dataarrays_equal_gsw_one_task_per_chunk(dtype):
    SP, pt, depth, lat, lon = _model(seed=2, dtype=dtype)
    so, thetao = _dataarrays(SP, pt, depth, lat, lon, chunks={"lat": 2, "lon": 4})
    ds = eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, outputs=("rho", "sigma0", "N2"))
    assert ds.rho.dtype == dtype and ds.rho.dims == ("lev", "lat", "lon") and ds.N2.dims == ("lev_mid", "lat", "lon")
    assert ds.rho.chunks == ((NZ,), (2, 2, 1), (4, 3))
    layers = ds.rho.data.__dask_graph__().layers
    kernel = [
        len(layer) for name, layer in layers.items() if name.startswith("eos-from_model-") and "output" not in name
    ]
    assert kernel == [so.data.npartitions] == [6]  # one pass: one kernel task per chunk for all outputs
    assert ds.N2.data.__dask_graph__().layers.keys() & layers.keys()  # the same kernel layer
    ref = _gsw(SP, pt, depth, lat, lon)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    _assert_matches(ds.rho.values, ref["rho"], "rho", rtol)
    _assert_matches(ds.sigma0.values, ref["sigma0"], "sigma0", rtol)
    _assert_matches(ds.N2.values, ref["N2"], "N2", 1e-9 if dtype == "float64" else 1e-3)
    np.testing.assert_allclose(ds.lev_mid.values, 0.5 * (depth[1:] + depth[:-1]))
    assert ds.rho.attrs["standard_name"] == "sea_water_density"
    assert ds.N2.attrs["units"] == "s-2"


def test_more_dimensions_and_curvilinear_coordinates():
    """(time, lev, y, x) with 2-D lat/lon, as NEMO or MOM files hold them."""
    SP, pt, depth, lat, lon = _model(seed=3)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    SP4 = np.stack([SP, SP[::-1, ::-1]])  # the second time step: a different floor
    pt4 = np.stack([pt, pt])
    dims = ("time", "lev", "y", "x")
    so = xr.DataArray(SP4, dims=dims).chunk({"time": 1, "y": 3})
    thetao = xr.DataArray(pt4, dims=dims).chunk({"time": 1, "y": 3})
    lev = xr.DataArray(depth, dims="lev", attrs={"units": "m", "positive": "down"})
    nav_lat, nav_lon = xr.DataArray(lat2, dims=("y", "x")), xr.DataArray(lon2, dims=("y", "x"))
    ds = eos.from_model(SP=so, pt=thetao, depth=lev, lat=nav_lat, lon=nav_lon, outputs=("SA", "N2"))
    assert ds.SA.dims == dims
    for k in range(2):
        ref = _gsw(SP4[k], pt4[k], depth, lat, lon)
        _assert_matches(ds.SA.values[k], ref["SA"], "SA")
        _assert_matches(ds.N2.values[k], ref["N2"], "N2", 1e-9)


def test_split_vertical_dimension_is_rechunked_with_a_warning():
    SP, pt, depth, lat, lon = _model()
    so, thetao = _dataarrays(SP, pt, depth, lat, lon, chunks={"lev": 4, "lat": 2})
    with pytest.warns(RechunkWarning, match="'lev'"):
        ds = eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, outputs="rho")
    assert ds.rho.chunks[0] == (NZ,)
    _assert_matches(ds.rho.values, _gsw(SP, pt, depth, lat, lon)["rho"], "rho")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eos.from_model(SP=so.chunk({"lev": -1}), pt=thetao.chunk({"lev": -1}), depth=so.lev, lat=so.lat, lon=so.lon)


@pytest.mark.parametrize(
    ("argument", "attrs", "words"),
    [
        ("SP", {"standard_name": "sea_water_absolute_salinity", "units": "g/kg"}, "is Absolute"),
        ("pt", {"standard_name": "sea_water_temperature", "units": "degC"}, "pass it as t="),
        ("pt", {"standard_name": "sea_water_conservative_temperature"}, "Conservative Temperature already"),
        ("pt", {"units": "K"}, "kelvin"),
        ("depth", {"units": "dbar"}, "pass it as p="),
        ("depth", {"positive": "up"}, "pass it as z="),
        ("z", {"positive": "down", "units": "m"}, "pass it as depth="),
        ("p", {"units": "m", "positive": "down"}, "pass it as depth="),
    ],
)
def test_attributes_that_say_otherwise_are_refused(argument, attrs, words):
    SP, pt, depth, lat, lon = _model()
    so, thetao = _dataarrays(SP, pt, depth, lat, lon)
    vertical = so.lev
    args = {"SP": so, "pt": thetao, "depth": vertical, "lat": so.lat, "lon": so.lon}
    if argument in ("z", "p"):
        del args["depth"]
        args[argument] = vertical
    args[argument] = args[argument].assign_attrs(attrs)
    with pytest.raises(ValueError, match=words):
        eos.from_model(**args)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"t": "thetao"}, TypeError, "exactly one of pt= "),
        ({"z": "lev"}, TypeError, "exactly one of depth="),
        ({"outputs": ("rho", "pH")}, ValueError, "outputs must be some of"),
        ({"lat": 100.0}, ValueError, "between -90 and 90"),
    ],
)
def test_bad_arguments(kwargs, error, words):
    SP, pt, depth, lat, lon = _model()
    so, thetao = _dataarrays(SP, pt, depth, lat, lon)
    names = {"thetao": thetao, "lev": so.lev}
    args = {"SP": so, "pt": thetao, "depth": so.lev, "lat": so.lat, "lon": so.lon}
    args.update({k: names.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()})
    with pytest.raises(error, match=words):
        eos.from_model(**args)


def test_absolute_salinity_everywhere_equals_gsw():
    """The atlas read column by column: Panama, the Baltic, land, the atlas's edges, deep levels."""
    rng = np.random.default_rng(7)
    lon = np.concatenate([rng.uniform(-180, 360, 300), rng.uniform(275, 285, 60), rng.uniform(10, 30, 60)])
    lat = np.concatenate([rng.uniform(-90, 90, 300), rng.uniform(5, 12, 60), rng.uniform(53, 66, 60)])
    lon[:3], lat[:3] = np.nan, [10.0, -87.0, 89.9]
    depth = np.concatenate([[0.0, 3.0], np.geomspace(10.0, 8000.0, 30)])
    SP = rng.uniform(2, 40, (depth.size, lon.size))
    SP[rng.random(SP.shape) < 0.3] = np.nan  # holes: the atlas is skipped there, read again below
    pt = rng.uniform(-1, 25, (depth.size, lon.size))
    got = eos.from_model(SP=SP, pt=pt, depth=depth[:, None], lat=lat, lon=lon, outputs=("SA", "p"))
    p = gsw.p_from_z(-depth[:, None], lat)
    _assert_matches(got["p"], p, "p")
    _assert_matches(got["SA"], gsw.SA_from_SP(SP, p, lon, lat), "SA")


def test_many_tiles_of_columns_equal_gsw():
    """Columns taken a tile at a time (eos_column.TILE), the last one partial; a regular grid
    (pressure once per row) across Panama and land."""
    from oceanflow.kernels.eos_column import TILE

    rng = np.random.default_rng(11)
    nz, ny, nx = 6, 2 * TILE // 9 + 7, 9
    depth = np.geomspace(5.0, 7000.0, nz)
    lat, lon = np.linspace(-80.0, 85.0, ny), np.linspace(255.0, 300.0, nx)
    SP = rng.uniform(30, 38, (nz, ny, nx))
    pt = rng.uniform(-1, 25, (nz, ny, nx))
    SP[rng.random(SP.shape) < 0.1] = np.nan
    got = eos.from_model(SP=SP, pt=pt, depth=depth[:, None, None], lat=lat[:, None], lon=lon, outputs=ALL)
    ref = _gsw(SP, pt, depth, lat, lon)
    for name in ALL:
        _assert_matches(got[name], ref[name], name, rtol=1e-9 if name == "N2" else 1e-12)


def test_values_outside_teos10_range_are_reported_once_or_refused():
    from oceanflow.eos.validity import TEOS10RangeWarning

    SP, pt, depth, lat, lon = _model()
    SP[0, 0, :3] = -1.0  # a fill value gone wrong
    pt[1, 1, 1] = 290.0  # kelvin
    args = {"SP": SP, "pt": pt, "depth": depth[:, None, None], "lat": lat[:, None], "lon": lon}
    with pytest.warns(TEOS10RangeWarning, match=r"SP 3 of \d+ outside \[0, 42\]; pt 1 of \d+ outside") as caught:
        eos.from_model(**args)
    assert len(caught) == 1
    with pytest.raises(ValueError, match="outside TEOS-10's range"):
        eos.from_model(**args, check="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eos.from_model(**args, check=None)
    so, thetao = _dataarrays(SP, pt, depth, lat, lon, chunks={"lat": 1})
    lazy = eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, check="raise")  # lazy: no error yet
    with pytest.raises(ValueError, match="in a chunk|outside TEOS-10's range"):
        lazy.rho.compute()
