"""oceanflow.eos conversions against TEOS-10: GSW's check values, gsw itself, and the atlas."""

import importlib.util
import os
import warnings
from pathlib import Path

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from oceanflow import eos
from oceanflow.eos.validity import TEOS10RangeWarning, check_range
from oceanflow.kernels import eos_conversions as K
from oceanflow.kernels import njit
from oceanflow.kernels.saar import ATLAS, load_atlas

gsw = pytest.importorskip("gsw")

ROOT = Path(__file__).resolve().parent.parent
CV = np.load(os.path.join(os.path.dirname(gsw.__file__), "tests", "gsw_cv_v3_0.npz"))
SA_C, CT_C, t_C, p_C = CV["SA_chck_cast"], CV["CT_chck_cast"], CV["t_chck_cast"], CV["p_chck_cast"]
SP_C, LON_C, LAT_C = CV["SP_chck_cast"], CV["long_chck_cast"], CV["lat_chck_cast"]


def _assert_check_value(got, key, tol_key=None):
    """GSW's rule: NaN in the same places, elsewhere |computed - check value| < tolerance."""
    expected, tol = CV[key], CV[(tol_key or key) + "_ca"]
    got = np.asarray(got)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    assert np.all(np.abs(got[ok] - expected[ok]) < tol), (key, np.abs(got[ok] - expected[ok]).max(), tol)


# (function, arguments from the check cast, check value key, tolerance key): GSW's own check list
CHECKS = [
    ("SA_from_SP", (SP_C, p_C, LON_C, LAT_C), "SA_from_SP", None),
    ("SR_from_SP", (SP_C,), "SR_from_SP", None),
    ("SP_from_SA", (SA_C, p_C, LON_C, LAT_C), "SP_chck_cast", "SP_from_SA"),
    ("CT_from_t", (SA_C, t_C, p_C), "CT_from_t", None),
    ("t_from_CT", (SA_C, CT_C, p_C), "t_chck_cast", "t_from_CT"),
    ("pt_from_CT", (SA_C, CT_C), "pt_from_CT", None),
    ("CT_from_pt", (SA_C, CV["pt_from_CT"]), "CT_from_pt", None),
    ("pt0_from_t", (SA_C, t_C, p_C), "pt0_from_t", None),
    ("z_from_p", (p_C, LAT_C), "z_from_p", None),
    ("p_from_z", (CV["z_from_p"], LAT_C), "p_from_z", None),
]


@pytest.mark.parametrize("name, args, key, tol_key", CHECKS, ids=[c[0] for c in CHECKS])
def test_check_values(name, args, key, tol_key):
    _assert_check_value(getattr(eos, name)(*args), key, tol_key)


def test_check_values_dask_dataarray():
    """The same check values through xarray + dask (one task per chunk)."""
    for name, args, key, tol_key in CHECKS:
        wrapped = [xr.DataArray(np.broadcast_to(a, SA_C.shape), dims=("z", "cast")).chunk({"z": 10}) for a in args]
        got = getattr(eos, name)(*wrapped)
        assert isinstance(got.data, dsa.Array)
        _assert_check_value(got.values, key, tol_key)


# ---------------------------------------------------------------- gsw on random input


def _random(n, dtype="float64", seed=0):
    """Inputs over the oceanographic range (and positions over the whole globe)."""
    rng = np.random.default_rng(seed)
    out = {
        "SP": rng.uniform(0, 42, n),
        "SA": rng.uniform(0, 42, n),
        "CT": rng.uniform(-2, 35, n),
        "pt": rng.uniform(-2, 35, n),
        "t": rng.uniform(-2, 35, n),
        "p": rng.uniform(0, 6000, n),
        "z": rng.uniform(-6000, 0, n),
        "lon": rng.uniform(-180, 360, n),
        "lat": rng.uniform(-86, 90, n),
    }
    return {k: v.astype(dtype) for k, v in out.items()}


ARGS = {
    "SA_from_SP": ("SP", "p", "lon", "lat"),
    "SP_from_SA": ("SA", "p", "lon", "lat"),
    "SR_from_SP": ("SP",),
    "SAAR": ("p", "lon", "lat"),
    "CT_from_pt": ("SA", "pt"),
    "pt_from_CT": ("SA", "CT"),
    "CT_from_t": ("SA", "t", "p"),
    "t_from_CT": ("SA", "CT", "p"),
    "pt0_from_t": ("SA", "t", "p"),
    "p_from_z": ("z", "lat"),
    "z_from_p": ("p", "lat"),
}
NAMES = sorted(ARGS)


def _gsw(name, inputs):
    return getattr(gsw, name)(*(np.asarray(inputs[a], "float64") for a in ARGS[name]))


def _assert_close_to_gsw(got, name, inputs, rtol):
    ref = _gsw(name, inputs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.nanmax(np.abs(ref)))


@pytest.mark.parametrize("name", NAMES)
def test_matches_gsw_float64(name):
    inputs = _random(20_000)
    got = getattr(eos, name)(*(inputs[a] for a in ARGS[name]))
    assert got.dtype == np.float64
    _assert_close_to_gsw(got, name, inputs, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    inputs = _random(5_000, dtype="float32", seed=2)
    got = getattr(eos, name)(*(inputs[a] for a in ARGS[name]))
    assert got.dtype == np.float32
    # computed in float64 and rounded once: within a float32 rounding of gsw on the same values
    _assert_close_to_gsw(got, name, inputs, rtol=1.5e-7)


def _grid(lon, lat, p):
    lon, lat, p = np.meshgrid(lon, lat, p, indexing="ij")
    return lon.ravel(), lat.ravel(), p.ravel()


@pytest.mark.parametrize(
    "region, lon, lat",
    [
        ("Panama barrier", np.linspace(255, 295, 81), np.linspace(0, 22, 45)),
        ("Baltic", np.linspace(5, 47, 43), np.linspace(48, 71, 47)),
        ("dateline and poles", np.r_[-360, -0.0, 0.0, 359.9, 360, 540, 720], np.r_[-90, -86.0, -85.9, 89.9, 90, 91]),
        ("coasts, every node", np.arange(0, 361, 4.0), np.arange(-86, 91, 4.0)),
    ],
)
def test_atlas_regions_match_gsw(region, lon, lat):
    """Corners filled from the mean, the Panama barrier, the Baltic formula, the grid's edges."""
    lon, lat, p = _grid(lon, lat, np.r_[-5.0, 0, 7, 1000, 5500, 9000])
    inputs = {"SP": np.full(lon.shape, 35.0), "SA": np.full(lon.shape, 35.2), "p": p, "lon": lon, "lat": lat}
    for name in ("SAAR", "SA_from_SP", "SP_from_SA"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TEOS10RangeWarning)
            got = getattr(eos, name)(*(inputs[a] for a in ARGS[name]))
        _assert_close_to_gsw(got, name, inputs, rtol=1e-13)


def test_atlas_is_gsw_s_at_its_nodes():
    """Every node of the shipped atlas (NaN where GSW has none) reproduces gsw's SAAR there."""
    saar, ndepth, p_ref, lats, longs = ATLAS
    assert saar.shape == (91, 45, 45) and ndepth.shape == (91, 45)
    i, j, k = np.nonzero(~np.isnan(saar) & (np.arange(45) < ndepth[..., None]))
    # at a node whose four neighbours to the east and north are ocean, gsw returns the node's own value
    inside = (i < 90) & (j < 44)
    i, j, k = i[inside], j[inside], k[inside]
    full = ~np.isnan(saar[i + 1, j, k]) & ~np.isnan(saar[i, j + 1, k]) & ~np.isnan(saar[i + 1, j + 1, k])
    full &= (longs[i] < 259) | (longs[i] > 293)  # away from the Panama barrier
    i, j, k = i[full], j[full], k[full]
    assert i.size > 50_000
    np.testing.assert_array_equal(gsw.SAAR(p_ref[k], longs[i], lats[j]), saar[i, j, k])
    assert not load_atlas().saar.flags.writeable


# ---------------------------------------------------------------- NaN, scalars, dtype


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_as_in_gsw(name):
    inputs = _random(len(ARGS[name]) + 1, seed=4)
    for n, arg in enumerate(ARGS[name]):
        inputs[arg][n] = np.nan
    got = getattr(eos, name)(*(inputs[a] for a in ARGS[name]))
    _assert_close_to_gsw(got, name, inputs, rtol=1e-12)
    assert np.isnan(got[: len(ARGS[name])]).all() and np.isfinite(got[-1])


def test_infinite_positions_give_nan():
    """An infinite longitude or latitude is no position: NaN (gsw 3.6 crashes on an infinite longitude)."""
    lon = np.array([np.inf, -np.inf, 190.0, 190.0, 1e300])
    lat = np.array([10.0, 10.0, np.inf, -np.inf, 10.0])
    for name in ("SAAR", "SA_from_SP", "SP_from_SA"):
        inputs = {"SP": np.full(5, 35.0), "SA": np.full(5, 35.2), "p": np.full(5, 100.0), "lon": lon, "lat": lat}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TEOS10RangeWarning)
            got = getattr(eos, name)(*(inputs[a] for a in ARGS[name]))
        assert np.isnan(got[:4]).all() and np.isfinite(got[4]), name


def test_nan_pressure_gives_nan_in_the_baltic_too():
    """The Baltic formula needs no pressure, but a NaN pressure is a missing value, as gsw says."""
    for name in ("SA_from_SP", "SP_from_SA"):
        assert np.isnan(getattr(eos, name)(7.0, np.nan, 20.0, 58.0))
        assert np.isnan(getattr(gsw, name)(7.0, np.nan, 20.0, 58.0))
        assert getattr(eos, name)(7.0, 10.0, 20.0, 58.0) == getattr(gsw, name)(7.0, 10.0, 20.0, 58.0)


def test_scalars_give_scalars():
    got = eos.CT_from_t(35.0, 10.0, 1000.0)
    assert np.ndim(got) == 0 and abs(got - gsw.CT_from_t(35.0, 10.0, 1000.0)) < 1e-12
    assert np.ndim(eos.SA_from_SP(35.0, 10.0, 0.0, 0.0)) == 0
    assert eos.p_from_z(np.zeros(0), 0.0).shape == (0,)


def test_above_the_sea_is_nan_and_said():
    """GSW-C returns NaN above z = 5 m and GSW-Python refuses: NaN with a warning, or refused."""
    with pytest.warns(TEOS10RangeWarning, match="z 1 of 2"):
        got = eos.p_from_z(np.array([5.0, 6.0]), 30.0)
    assert abs(got[0] - gsw.p_from_z(5.0, 30.0)) < 1e-12 and np.isnan(got[1])
    with pytest.raises(ValueError):
        gsw.p_from_z(np.array([5.0, 6.0]), 30.0)
    with pytest.raises(ValueError, match="z 1 of 2 outside"):
        eos.p_from_z(np.array([5.0, 6.0]), 30.0, check="raise")


# ---------------------------------------------------------------- dask and xarray


def _profile_fields(seed=5):
    rng = np.random.default_rng(seed)
    shape = (6, 4, 5)
    return {
        "SP": rng.uniform(33, 37, shape),
        "SA": rng.uniform(33, 37, shape),
        "t": rng.uniform(-1, 28, shape),
        "pt": rng.uniform(-1, 28, shape),
        "CT": rng.uniform(-1, 28, shape),
        "p": np.linspace(0, 5000, 6).reshape(6, 1, 1) * np.ones(shape),
        "z": -np.linspace(0, 5000, 6).reshape(6, 1, 1) * np.ones(shape),
        "lon": np.linspace(-170, 170, 5) * np.ones(shape),
        "lat": np.linspace(-60, 60, 4).reshape(1, 4, 1) * np.ones(shape),
    }


@pytest.mark.parametrize("name", NAMES)
def test_dask_is_lazy_one_task_per_chunk_and_equal(name):
    fields = _profile_fields()
    lazy_inputs = [dsa.from_array(fields[a], chunks=(2, 2, 5)) for a in ARGS[name]]
    lazy = getattr(eos, name)(*lazy_inputs)
    assert isinstance(lazy, dsa.Array) and lazy.chunks == lazy_inputs[0].chunks
    (optimized,) = dask.optimize(lazy)
    inputs = sum(len(a.__dask_graph__()) for a in lazy_inputs)
    # the range checks are fused with the kernel: one task per chunk beside the inputs' own
    assert len(optimized.__dask_graph__()) == inputs + lazy.npartitions
    np.testing.assert_array_equal(lazy.compute(), getattr(eos, name)(*(fields[a] for a in ARGS[name])))


@pytest.mark.parametrize(
    "name, output, units, standard_name",
    [
        ("SA_from_SP", "SA", "g kg-1", "sea_water_absolute_salinity"),
        ("SP_from_SA", "SP", "1", "sea_water_practical_salinity"),
        ("SR_from_SP", "SR", "g kg-1", "sea_water_reference_salinity"),
        ("SAAR", "SAAR", "1", None),
        ("CT_from_pt", "CT", "degC", "sea_water_conservative_temperature"),
        ("CT_from_t", "CT", "degC", "sea_water_conservative_temperature"),
        ("pt_from_CT", "pt", "degC", "sea_water_potential_temperature"),
        ("pt0_from_t", "pt", "degC", "sea_water_potential_temperature"),
        ("t_from_CT", "t", "degC", "sea_water_temperature"),
        ("p_from_z", "p", "dbar", "sea_water_pressure_due_to_sea_water"),
        ("z_from_p", "z", "m", None),
    ],
)
def test_dataarray_attrs_and_label_alignment(name, output, units, standard_name):
    fields = _profile_fields()
    coords = {"depth": np.arange(6), "y": np.arange(4), "x": np.arange(5)}
    args = [xr.DataArray(fields[a], dims=("depth", "y", "x"), coords=coords) for a in ARGS[name]]
    if len(args) > 1:
        args[-1] = args[-1].isel(y=slice(None, None, -1))  # reversed labels: aligned, not positional
    got = getattr(eos, name)(*args)
    assert got.name == output and got.attrs["units"] == units and got.attrs["long_name"]
    assert got.attrs.get("standard_name") == standard_name
    assert got.dims == ("depth", "y", "x") and list(got.y.values) == [0, 1, 2, 3]
    np.testing.assert_allclose(got.values, _gsw(name, fields), rtol=1e-12)


# ---------------------------------------------------------------- declared meaning


@pytest.mark.parametrize(
    "call, attrs, words",
    [
        (lambda a: eos.p_from_z(a, 30.0), {"standard_name": "depth", "positive": "down"}, ["z = -depth"]),
        (lambda a: eos.p_from_z(a, 30.0), {"positive": "down"}, ["z = -depth"]),
        (lambda a: eos.p_from_z(a, 30.0), {"units": "dbar"}, ["a pressure", "z_from_p"]),
        (lambda a: eos.SA_from_SP(35.0, a, 0.0, 0.0), {"standard_name": "depth", "units": "m"}, ["p_from_z"]),
        (lambda a: eos.CT_from_t(35.0, 10.0, a), {"units": "m"}, ["p_from_z"]),
        (lambda a: eos.SA_from_SP(a, 0.0, 0.0, 0.0), {"standard_name": "sea_water_absolute_salinity"}, ["SA"]),
        (lambda a: eos.SP_from_SA(a, 0.0, 0.0, 0.0), {"standard_name": "sea_water_salinity"}, ["SA_from_SP"]),
        (lambda a: eos.CT_from_pt(35.0, a), {"standard_name": "sea_water_temperature"}, ["CT_from_t"]),
        (lambda a: eos.CT_from_t(35.0, a, 0.0), {"standard_name": "sea_water_potential_temperature"}, ["CT_from_pt"]),
        (lambda a: eos.CT_from_t(35.0, a, 0.0), {"units": "K"}, ["kelvin", "273.15"]),
        (lambda a: eos.pt_from_CT(35.0, a), {"standard_name": "sea_water_potential_temperature"}, ["CT_from_pt"]),
    ],
)
def test_declared_meaning_refused(call, attrs, words):
    value = xr.DataArray([10.0], dims="z", attrs=attrs)
    with pytest.raises(ValueError) as info:
        call(value)
    for word in words:
        assert word in str(info.value)


def test_suggested_fix_for_depth_works():
    depth = xr.DataArray([10.0, 1000.0], dims="lev", attrs={"standard_name": "depth", "units": "m", "positive": "down"})
    got = eos.p_from_z((-depth).assign_attrs(standard_name="height", positive="up"), 30.0)
    np.testing.assert_allclose(got, gsw.p_from_z(-depth.values, 30.0), rtol=1e-13)


# ---------------------------------------------------------------- validity


def test_one_warning_per_call_with_counts():
    SA = np.array([35.0, -1.0, 50.0, np.nan])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = eos.CT_from_t(SA, np.array([10.0, 10.0, 45.0, 10.0]), np.array([-3.0, 0.0, 0.0, 0.0]))
    assert len(caught) == 1 and caught[0].category is TEOS10RangeWarning
    message = str(caught[0].message)
    for words in ["CT_from_t", "SA 2 of 4 outside [0, 42] g kg-1", "t 1 of 4 outside [-3, 40] degC", "p 1 of 4"]:
        assert words in message
    np.testing.assert_allclose(got, gsw.CT_from_t(SA, [10.0, 10.0, 45.0, 10.0], [-3.0, 0, 0, 0]), rtol=1e-12)


def test_check_raise_and_none():
    with pytest.raises(ValueError, match="SP 1 of 2 outside"):
        eos.SA_from_SP(np.array([35.0, -2.0]), 0.0, 0.0, 0.0, check="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eos.SA_from_SP(np.array([35.0, -2.0]), 0.0, 0.0, 0.0, check=None)
        eos.SA_from_SP(np.array([35.0, 20.0]), 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="check must be"):
        eos.SR_from_SP(35.0, check="loud")


def test_dask_range_check_is_lazy():
    SP = dsa.from_array(np.array([35.0, 35.0, -1.0, 35.0]), chunks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = eos.SR_from_SP(SP)
        lazy_raise = eos.SR_from_SP(SP, check="raise")
    with pytest.warns(TEOS10RangeWarning, match="SP outside"):
        lazy.compute()
    with pytest.raises(ValueError, match="SP outside"):
        lazy_raise.compute()


def test_SR_from_SP_counts_in_its_one_pass():
    """NumPy input: the count is made by the converting kernel (SP read once), over every
    thread's slice; same values as gsw, same message as the other functions, said at the caller."""
    import oceanflow

    rng = np.random.default_rng(3)
    SP = rng.uniform(-5.0, 50.0, 40_001)
    SP[::7] = np.nan
    outside = int(np.count_nonzero((SP < 0.0) | (SP > 42.0)))
    for threads in (1, 2):
        with oceanflow.set_options(num_threads=threads, min_elements_per_thread=1000):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = eos.SR_from_SP(SP)
        assert len(caught) == 1 and caught[0].category is TEOS10RangeWarning
        assert f"SR_from_SP: values outside TEOS-10's range: SP {outside} of {SP.size} outside [0, 42]." in str(
            caught[0].message
        )
        assert caught[0].filename == __file__
        np.testing.assert_array_equal(got, gsw.SR_from_SP(SP))
    with pytest.raises(ValueError, match=f"SP {outside} of {SP.size} outside"):
        eos.SR_from_SP(SP, check="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert eos.SR_from_SP(np.float32([35.0, 36.0])).dtype == np.float32
        assert np.ndim(eos.SR_from_SP(np.array(35.0))) == 0
        masked = eos.SR_from_SP(np.ma.masked_array([35.0, -1.0], mask=[False, True]))  # masked: NaN, not counted
    np.testing.assert_array_equal(masked, [gsw.SR_from_SP(35.0), np.nan])


def test_check_range_is_generic():
    array = xr.DataArray(np.array([1.0, 2.0, 3.0]), dims="x")
    with pytest.warns(TEOS10RangeWarning, match="f: values outside TEOS-10's range: q 2 of 3 outside"):
        assert check_range("q", array, 0.0, 1.5, function="f") is array


# ---------------------------------------------------------------- scalar cores for reuse


@njit
def _fused(SP, pt, z, lon, lat, saar, ndepth, p_ref, lats, longs):
    out = np.empty((SP.shape[0], 3))
    for i in range(SP.shape[0]):
        p = K.p_from_z_scalar(z[i], lat[i])
        sa = K.sa_from_sp_scalar(SP[i], p, lon[i], lat[i], saar, ndepth, p_ref, lats, longs)
        out[i] = sa, K.ct_from_pt_scalar(sa, pt[i]), p
    return out


def test_scalar_cores_compose_in_another_kernel():
    f = _random(1000, seed=7)
    got = _fused(f["SP"], f["pt"], f["z"], f["lon"], f["lat"], *ATLAS)
    p = gsw.p_from_z(f["z"], f["lat"])
    SA = gsw.SA_from_SP(f["SP"], p, f["lon"], f["lat"])
    np.testing.assert_allclose(got, np.stack([SA, gsw.CT_from_pt(SA, f["pt"]), p], axis=1), rtol=1e-12)


# ---------------------------------------------------------------- generated core


def test_generated_gibbs_is_up_to_date():
    spec = importlib.util.spec_from_file_location("generate_gibbs", ROOT / "tools" / "generate_gibbs.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (ROOT / "oceanflow" / "kernels" / "_gibbs.py").read_bytes()
    assert generator.render().encode("utf-8") == committed, "run python tools/generate_gibbs.py"
