"""oceanflow.eos against TEOS-10: GSW's published check values and gsw itself."""

import importlib.util
import warnings
from pathlib import Path

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import oceanflow
from oceanflow import eos
from oceanflow.eos.validity import TEOS10RangeWarning

gsw = pytest.importorskip("gsw")
from teos10_oracle import CAST  # noqa: E402
from teos10_oracle import args as _args  # noqa: E402
from teos10_oracle import assert_check_value as _assert_check_value  # noqa: E402
from teos10_oracle import assert_close_to_gsw as _assert_close_to_gsw  # noqa: E402
from teos10_oracle import random as _random  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

THREE_ARGS = ["specvol", "rho", "alpha", "beta"]
SIGMAS = [f"sigma{n}" for n in range(5)]
ALL = THREE_ARGS + SIGMAS


# ---------------------------------------------------------------- TEOS-10 check values


@pytest.mark.parametrize("name", ALL)
def test_check_values(name):
    _assert_check_value(getattr(eos, name)(*_args(name, *CAST)), name)


def test_check_values_rho_alpha_beta():
    for got, key in zip(eos.rho_alpha_beta(*CAST), ["rho_rab", "alpha_rab", "beta_rab"], strict=True):
        _assert_check_value(got, key)


def test_check_values_dask_dataarray():
    """Same check values through the xarray + dask path (with threads off: dask tasks)."""
    cast = [xr.DataArray(a, dims=("z", "cast")).chunk({"z": 10}) for a in CAST]
    for name in ALL:
        _assert_check_value(getattr(eos, name)(*_args(name, *cast)).values, name)


# ---------------------------------------------------------------- gsw on random input


@pytest.mark.parametrize("name", ALL)
def test_matches_gsw_float64(name):
    SA, CT, p = _random(20_000)
    got = getattr(eos, name)(*_args(name, SA, CT, p))
    assert got.dtype == np.float64
    _assert_close_to_gsw(got, name, SA, CT, p, rtol=1e-12)


def test_rho_alpha_beta_matches_gsw_and_single_functions():
    SA, CT, p = _random(20_000, seed=1)
    results = eos.rho_alpha_beta(SA, CT, p)
    for got, ref, name in zip(results, gsw.rho_alpha_beta(SA, CT, p), ["rho", "alpha", "beta"], strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        np.testing.assert_allclose(got, getattr(eos, name)(SA, CT, p), rtol=1e-14, atol=1e-14 * np.abs(ref).max())


@pytest.mark.parametrize("name", ALL)
def test_float32_in_float32_out(name):
    SA, CT, p = _random(5_000, dtype="float32", seed=2)
    got = getattr(eos, name)(*_args(name, SA, CT, p))
    assert got.dtype == np.float32
    # computed in float64 and rounded once: within one float32 rounding of gsw
    _assert_close_to_gsw(got, name, SA, CT, p, rtol=1.5e-7)


def test_dtype_rule():
    SA, CT, p = _random(10, dtype="float32")
    assert eos.rho(SA, CT, np.float32(1000)).dtype == np.float32
    assert eos.rho(SA, CT, 1000.0).dtype == np.float64  # a Python float counts as float64
    assert eos.rho(SA.astype("float16"), CT, p).dtype == np.float32
    assert eos.rho(SA.astype(int), CT, p).dtype == np.float64
    assert all(r.dtype == np.float32 for r in eos.rho_alpha_beta(SA, CT, p))


def test_scalars_give_scalars():
    got = eos.rho(35.0, 10.0, 1000.0)
    assert np.ndim(got) == 0 and isinstance(got, np.floating)
    assert abs(got - gsw.rho(35.0, 10.0, 1000.0)) < 1e-10
    assert all(np.ndim(r) == 0 for r in eos.rho_alpha_beta(35.0, 10.0, 1000.0))
    assert eos.sigma2(np.zeros(0), np.zeros(0)).shape == (0,)


def test_both_threads_give_the_same_result():
    SA, CT, p = _random(50_001, seed=3)
    with oceanflow.set_options(num_threads=1):
        one = eos.rho_alpha_beta(SA, CT, p)
    with oceanflow.set_options(num_threads=2, min_elements_per_thread=1000):
        two = eos.rho_alpha_beta(SA, CT, p)
        sig = eos.sigma1(SA, CT)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_close_to_gsw(sig, "sigma1", SA, CT, p, rtol=1e-12)


# ---------------------------------------------------------------- NaN and broadcasting


@pytest.mark.parametrize("name", ALL + ["rho_alpha_beta"])
def test_nan_propagates(name):
    SA, CT, p = _random(8, seed=4)
    SA[1], CT[3], p[5] = np.nan, np.nan, np.nan
    expected = np.zeros(8, bool)
    expected[[1, 3] if name.startswith("sigma") else [1, 3, 5]] = True
    results = getattr(eos, name)(*_args(name, SA, CT, p))
    for got in results if isinstance(results, tuple) else (results,):
        np.testing.assert_array_equal(np.isnan(got), expected)


def _profile_fields(seed=5):
    rng = np.random.default_rng(seed)
    SA = rng.uniform(33, 37, (6, 4, 5))
    CT = rng.uniform(-1, 28, (6, 4, 5))
    p = np.linspace(0, 5000, 6).reshape(6, 1, 1)
    return SA, CT, p


def test_numpy_broadcasting():
    SA, CT, p = _profile_fields()
    got = eos.rho(SA, CT, p)
    assert got.shape == SA.shape
    np.testing.assert_allclose(got, gsw.rho(SA, CT, p), rtol=1e-12)
    r, a, b = eos.rho_alpha_beta(SA[0, 0], 4.0, p)  # (5,) with scalar and (6, 1, 1)
    assert r.shape == a.shape == b.shape == (6, 1, 5)
    np.testing.assert_allclose(b, gsw.beta(SA[0, 0], 4.0, p), rtol=1e-12)


def test_dask_array_broadcasting_and_laziness():
    SA, CT, p = _profile_fields()
    lazy = eos.rho_alpha_beta(dsa.from_array(SA, chunks=(2, 4, 5)), dsa.from_array(CT, chunks=(3, 2, 5)), p)
    assert all(isinstance(r, dsa.Array) for r in lazy)
    for got, ref in zip(dask.compute(*lazy), gsw.rho_alpha_beta(SA, CT, p), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    got = eos.sigma4(dsa.from_array(SA, chunks=3), CT[0])
    np.testing.assert_allclose(got.compute(), gsw.sigma4(SA, CT[0]), rtol=1e-12)


def test_dataarray_broadcasting_by_name():
    SA, CT, p = _profile_fields()
    coords = {"z": np.arange(6), "y": np.arange(4), "x": np.arange(5)}
    SA_da = xr.DataArray(SA, dims=("z", "y", "x"), coords=coords)
    CT_da = xr.DataArray(CT, dims=("z", "y", "x"), coords=coords).transpose("x", "z", "y")
    p_da = xr.DataArray(p[:, 0, 0], dims="z", coords={"z": coords["z"]})
    got = eos.rho(SA_da, CT_da, p_da)
    assert got.dims == ("z", "y", "x")
    xr.testing.assert_identical(got.coords.to_dataset(), SA_da.coords.to_dataset())
    np.testing.assert_allclose(got.values, gsw.rho(SA, CT, p), rtol=1e-12)
    assert eos.alpha(SA_da, 10.0, 100.0).dims == ("z", "y", "x")


# ---------------------------------------------------------------- dask-backed xarray


def _kernel_layers(array):
    """{layer name: tasks} of the kernel layers (one shared pass) and output layers of ``array``."""
    layers = array.__dask_graph__().layers
    kernel = {name: len(layer) for name, layer in layers.items() if name.startswith("eos-") and "-output" not in name}
    outputs = {name: len(layer) for name, layer in layers.items() if name.startswith("eos-") and "-output" in name}
    return kernel, outputs


@pytest.mark.parametrize("name", ALL + ["rho_alpha_beta"])
def test_dask_dataarray_one_task_per_chunk(name):
    SA, CT, p = _profile_fields()
    chunks = {"z": 2, "y": 2}
    fields = [xr.DataArray(a, dims=("z", "y", "x")).chunk(chunks) for a in (SA, CT)]
    p_da = xr.DataArray(p[:, 0, 0], dims="z").chunk({"z": 2})
    lazy = getattr(eos, name)(*_args(name, *fields, p_da))
    lazy = lazy if isinstance(lazy, tuple) else (lazy,)
    eager = getattr(eos, name)(*_args(name, SA, CT, p))
    eager = eager if isinstance(eager, tuple) else (eager,)
    layers = [_kernel_layers(r.data) for r in lazy]
    kernel = layers[0][0]
    assert all(k == kernel for k, _ in layers)  # outputs share one pass
    assert list(kernel.values()) == [lazy[0].data.npartitions] == [6]
    if len(lazy) > 1:  # then each output is one getitem per chunk
        assert all(list(outputs.values()) == [6] for _, outputs in layers)
    for got, ref in zip(lazy, eager, strict=True):
        assert got.chunks == fields[0].chunks
        np.testing.assert_array_equal(got.values, ref)  # same kernel, same rounding


# ---------------------------------------------------------------- metadata


EXPECTED_ATTRS = {
    "specvol": ("m3 kg-1", None),
    "rho": ("kg m-3", "sea_water_density"),
    "alpha": ("1/K", None),
    "beta": ("kg g-1", None),
    "sigma0": ("kg m-3", "sea_water_sigma_theta"),
    **{f"sigma{n}": ("kg m-3", None) for n in range(1, 5)},
}


@pytest.mark.parametrize("name", ALL)
def test_dataarray_attrs(name):
    SA = xr.DataArray([35.0, 34.0], dims="z", attrs={"units": "g/kg"})
    got = getattr(eos, name)(*_args(name, SA, 5.0, 100.0))
    units, standard_name = EXPECTED_ATTRS[name]
    assert got.name == name
    assert got.attrs["units"] == units
    assert got.attrs.get("standard_name") == standard_name
    assert got.attrs["long_name"]


def test_rho_alpha_beta_attrs():
    SA = xr.DataArray([35.0], dims="z")
    results = eos.rho_alpha_beta(SA, 5.0, 100.0)
    assert [r.name for r in results] == ["rho", "alpha", "beta"]
    assert [r.attrs["units"] for r in results] == ["kg m-3", "1/K", "kg g-1"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((np.array(["35"]), 10.0, 0.0), TypeError, ["SA", "non-numeric"]),
        ((35.0, np.array([1 + 2j]), 0.0), TypeError, ["CT", "complex"]),
        ((35.0, 10.0, [None]), TypeError, ["p", "non-numeric"]),
        ((np.ones(3), np.ones(4), 0.0), ValueError, ["broadcast", "SA (3,)", "CT (4,)", "(nz, 1, 1)"]),
        ((dsa.ones(3), np.ones(4), 0.0), ValueError, ["broadcast", "SA (3,)"]),
        ((xr.Dataset({"SA": ("z", [35.0])}), 10.0, 0.0), TypeError, ["Dataset", "ds['SA']"]),
        ((xr.DataArray([35.0], dims="z"), np.ones((2, 1)), 0.0), TypeError, ["CT", "ambiguous", "dims"]),
    ],
)
def test_bad_input(args, error, words):
    with pytest.raises(error) as info:
        eos.rho(*args)
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------- generated core


def test_generated_core_is_up_to_date():
    spec = importlib.util.spec_from_file_location("generate_eos", ROOT / "tools" / "generate_eos.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (ROOT / "oceanflow" / "kernels" / "_eos75.py").read_bytes()
    assert generator.render().encode("utf-8") == committed, "run python tools/generate_eos.py"
    assert len(generator.parse_coefficients()) == 75


# ---------------------------------------------------------------- inputs meet by label (issue 9)


def test_dataarrays_are_matched_by_coordinate_labels():
    SA, CT, p = _profile_fields()
    coords = {"z": np.arange(6.0), "y": np.linspace(-30.0, 30.0, 4), "x": np.arange(5.0)}
    SA_da = xr.DataArray(SA, dims=("z", "y", "x"), coords=coords)
    CT_da = xr.DataArray(CT, dims=("z", "y", "x"), coords=coords).isel(y=slice(None, None, -1))  # north to south
    p_da = xr.DataArray(p[::-1, 0, 0], dims="z", coords={"z": coords["z"][::-1]})
    got = eos.rho(SA_da, CT_da.chunk({"x": 2}), p_da)
    np.testing.assert_allclose(got.values, gsw.rho(SA, CT, p), rtol=1e-12)
    shifted = CT_da.assign_coords(y=CT_da.y + 2.0)
    with pytest.raises(ValueError, match=r"different 'y' coordinates \(4 of 4 labels differ.*join='override'"):
        eos.rho(SA_da, shifted, p_da)


# ---------------------------------------------------------------- declared meaning (issue 9)


@pytest.mark.parametrize(
    "role, variable, conversion",
    [
        ("SA", "so", "SA_from_SP(SP, p, lon, lat)"),
        ("CT", "thetao", "CT_from_pt(SA, pt)"),
        ("p", "lev", "p_from_z(z, lat)"),
    ],
)
def test_cmip_variables_are_refused_with_the_conversion(cmip_ocean, role, variable, conversion):
    """Issue 9: practical salinity, potential temperature and depth in metres gave a wrong density silently."""
    ds = cmip_ocean()
    good = {"SA": ds.so.drop_attrs(), "CT": ds.thetao.drop_attrs(), "p": ds.lev.drop_attrs()}
    args = {**good, role: ds[variable]}
    with pytest.raises(ValueError) as info:
        eos.rho(args["SA"], args["CT"], args["p"])
    message = str(info.value)
    assert f"{role} ('{variable}')" in message and conversion in message and "assign_attrs" in message
    if role != "p":
        with pytest.raises(ValueError, match=conversion.split("(")[0]):
            eos.sigma0(args["SA"], args["CT"])
    # without attributes the values are taken as what the function asks for, as before
    np.testing.assert_allclose(
        eos.rho(good["SA"], good["CT"], good["p"]).values,
        gsw.rho(*xr.broadcast(good["SA"].astype("f8"), good["CT"].astype("f8"), good["p"])),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "role, attrs, words",
    [
        ("SA", {"units": "psu"}, "SA_from_SP"),
        ("SA", {"standard_name": "sea_water_practical_salinity", "units": "1"}, "SA_from_SP"),
        ("SA", {"units": "kg/kg"}, "1000"),
        ("CT", {"standard_name": "sea_water_temperature", "units": "degC"}, "CT_from_t(SA, t, p)"),
        ("CT", {"units": "K"}, "273.15"),
        ("p", {"units": "m"}, "p_from_z"),
        ("p", {"standard_name": "depth", "positive": "down"}, "p_from_z"),
        ("p", {"units": "Pa"}, "dbar"),
    ],
)
def test_declared_units_and_standard_names(role, attrs, words):
    inputs = {"SA": xr.DataArray([35.0], dims="z"), "CT": xr.DataArray([10.0], dims="z"), "p": 100.0}
    inputs[role] = xr.DataArray([inputs[role].item() if role != "p" else 100.0], dims="z", attrs=attrs)
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        eos.rho(inputs["SA"], inputs["CT"], inputs["p"])


def test_right_attributes_are_accepted():
    SA = xr.DataArray([35.0], dims="z", attrs={"standard_name": "sea_water_absolute_salinity", "units": "g/kg"})
    CT = xr.DataArray([10.0], dims="z", attrs={"standard_name": "sea_water_conservative_temperature", "units": "degC"})
    p = xr.DataArray([1000.0], dims="z", attrs={"standard_name": "sea_water_pressure", "units": "dbar"})
    np.testing.assert_allclose(eos.rho(SA, CT, p).values, gsw.rho(35.0, 10.0, 1000.0), rtol=1e-13)


def test_cli_density_refuses_cmip_variables(cmip_ocean, tmp_path, capsys):
    """Issue 9: ``oceanflow density --sa so --ct thetao --p lev`` (the help's own example) computed nonsense."""
    from oceanflow.cli import main

    cmip_ocean().to_netcdf(tmp_path / "ts.nc")
    argv = ["density", str(tmp_path / "ts.nc"), "-o", str(tmp_path / "rho.nc"), "--sa", "so", "--ct", "thetao"]
    assert main([*argv, "--p", "lev"]) != 0
    assert "SA_from_SP" in capsys.readouterr().err
    assert not (tmp_path / "rho.nc").exists()


# ---------------------------------------------------------------- masked arrays (issue 10)


def test_masked_arrays_are_honoured_as_nan():
    """Issue 10: eos refused masked arrays while polyval ignored the mask; both now read masked values as NaN."""
    SA, CT, p = _random(10, seed=7)
    mask = np.zeros(10, bool)
    mask[[2, 5]] = True
    filled = SA.copy()
    filled[mask] = np.nan
    masked = np.ma.masked_array(SA, mask)
    for name in ("rho", "sigma0", "alpha"):
        got = getattr(eos, name)(*_args(name, masked, CT, p))
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, getattr(eos, name)(*_args(name, filled, CT, p)))
    lazy = eos.rho(dsa.from_array(masked, chunks=4), CT, p)  # masked dask blocks
    np.testing.assert_array_equal(lazy.compute(), eos.rho(filled, CT, p))
    ints = np.ma.masked_array(np.arange(10), mask)  # integers with a mask compute in float64, NaN where masked
    np.testing.assert_array_equal(np.isnan(eos.rho(ints, CT, p)), mask)


def test_masked_rule_is_the_same_for_polyval_eos_and_climatology():
    """One rule (oceanflow._arrays.unmasked): a masked value is NaN in polyval, eos and climatology alike."""
    time = xr.date_range("2000-01-01", periods=24, freq="MS")
    values = np.linspace(30.0, 36.0, 24)
    mask = np.zeros(24, bool)
    mask[[0, 13]] = True
    values[mask] = 1e6  # what the mask hides must never show
    masked = np.ma.masked_array(values, mask)
    filled = np.where(mask, np.nan, values)
    np.testing.assert_array_equal(oceanflow.polyval(masked, [2.0, 1.0]), 2 * filled + 1)
    np.testing.assert_array_equal(eos.sigma0(masked, 5.0), eos.sigma0(filled, 5.0))
    for data in (masked, dsa.ma.masked_array(dsa.from_array(values, chunks=12), mask=mask)):
        clim = oceanflow.climatology(xr.DataArray(data, dims="time", coords={"time": time}), "month")
        expected = xr.DataArray(filled, dims="time", coords={"time": time}).groupby("time.month").mean()
        np.testing.assert_allclose(clim.values, expected.values)


# ---------------------------------------------------------------- range checks (as the conversions')

POINTWISE = ALL + ["rho_alpha_beta", "sound_speed", "kappa", "enthalpy", "cabbeling", "thermobaric"]
POINTWISE += [f"spiciness{n}" for n in range(3)]


def _outside():
    """SA, CT, p with one value outside TEOS-10's range each (and a NaN, never counted)."""
    return (
        np.array([35.0, -1.0, 35.0, np.nan]),
        np.array([10.0, 10.0, 50.0, 10.0]),
        np.array([100.0, 100.0, 100.0, -5.0]),
    )


@pytest.mark.parametrize("name", POINTWISE)
def test_range_check_warns_once_with_counts(name):
    function = getattr(eos, name)
    args = _args(name, *_outside())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = function(*args)
    assert [w.category for w in caught] == [TEOS10RangeWarning]
    message = str(caught[0].message)
    words = [f"{name}: values outside TEOS-10's range", "SA 1 of 4 outside [0, 42] g kg-1", "CT 1 of 4 outside"]
    for word in words + (["p 1 of 4 outside [0, 10000] dbar"] if len(args) == 3 else []):
        assert word in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check=None: silent, and the same numbers
        quiet = function(*args, check=None)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(quiet))
    with pytest.raises(ValueError, match=r"SA 1 of 4 outside \[0, 42\]"):
        function(*args, check="raise")


@pytest.mark.parametrize("name", ["rho", "sigma0", "rho_alpha_beta", "sound_speed", "spiciness0"])
def test_range_check_dask_warns_on_compute(name):
    function = getattr(eos, name)
    args = [dsa.from_array(a, chunks=2) for a in _args(name, *_outside())]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lazy = function(*args)
        refused = function(*args, check="raise")
    with pytest.warns(TEOS10RangeWarning, match="SA outside"):
        dask.compute(lazy)
    with pytest.raises(ValueError, match="outside TEOS-10's range in a chunk"):
        dask.compute(refused)
