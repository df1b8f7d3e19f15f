"""oceanflow.polyval against np.polyval and xr.polyval."""

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from conftest import added_tasks
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oceanflow


def scale(coeffs, x):
    """Size of the terms, the yardstick for round-off: sum |c_k| |x|^k."""
    return np.polyval(np.abs(coeffs), np.abs(x))


def assert_poly_close(actual, coeffs, x, rtol):
    expected = np.polyval(coeffs, x)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    err = np.abs(np.asarray(actual)[ok] - expected[ok])
    assert np.all(err <= rtol * scale(coeffs, x)[ok] + 1e-300)


# ------------------------------------------------------------------ NumPy input


@pytest.mark.parametrize("degree", [0, 1, 3, 10, 30])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000])
def test_matches_numpy_polyval(degree, n):
    rng = np.random.default_rng(degree * 1000 + n)
    coeffs = rng.normal(size=degree + 1)
    x = rng.uniform(-1.5, 1.5, size=n)
    assert_poly_close(oceanflow.polyval(x, coeffs), coeffs, x, 1e-14)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=7),
        elements=st.floats(-3, 3) | st.just(np.nan),
    ),
    coeffs=st.lists(st.floats(-10, 10), min_size=1, max_size=12),
)
def test_hypothesis_shapes_match_numpy(x, coeffs):
    result = oceanflow.polyval(x, coeffs)
    assert np.shape(result) == x.shape
    assert_poly_close(result, np.array(coeffs), x, 1e-13)


def test_scalar_input_gives_scalar_like_numpy():
    assert oceanflow.polyval(2.0, [1, 2, 3]) == np.polyval([1, 2, 3], 2.0) == 11.0
    assert np.ndim(oceanflow.polyval(2.0, [1, 2, 3])) == 0


def test_float32_stays_float32_with_float32_coefficients():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 10_000).astype("f4")
    coeffs = rng.normal(size=6).astype("f4")
    result = oceanflow.polyval(x, coeffs)
    assert result.dtype == np.float32
    assert_poly_close(result, coeffs.astype("f8"), x.astype("f8"), 5e-6)
    # a Python list of floats is float64, as in NumPy
    assert oceanflow.polyval(x, coeffs.tolist()).dtype == np.polyval(coeffs.tolist(), x).dtype == np.float64


def test_integer_input_computes_in_float64():
    result = oceanflow.polyval(np.arange(5), [2, 0, 1])
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, np.polyval([2, 0, 1], np.arange(5)))


def test_nan_and_inf_propagate():
    x = np.array([np.nan, 1.0, np.inf, -np.inf] * 40)
    # np.polyval starts from 0 * x, which turns inf into NaN; the polynomial itself is inf
    np.testing.assert_array_equal(oceanflow.polyval(x, [1.0, 0.0, 2.0]), x**2 + 2.0)
    np.testing.assert_array_equal(oceanflow.polyval(x, [-1.0, 0.0, 0.0, 2.0]), -(x**3) + 2.0)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_derivative_from_the_same_pass(dtype):
    rng = np.random.default_rng(1)
    coeffs = rng.normal(size=9).astype(dtype)
    x = rng.uniform(-1, 1, size=1001).astype(dtype)
    value, slope = oceanflow.polyval(x, coeffs, deriv=True)
    assert value.dtype == slope.dtype == np.dtype(dtype)
    rtol = 1e-5 if dtype == "f4" else 1e-13
    assert_poly_close(value, coeffs.astype("f8"), x.astype("f8"), rtol)
    assert_poly_close(slope, np.polyder(coeffs.astype("f8")), x.astype("f8"), rtol * 10)


def test_out_is_written_and_returned():
    x = np.linspace(-1, 1, 3000).reshape(3, 1000, 1)[..., 0]
    coeffs = [0.5, -1.0, 2.0, 3.0]
    out = np.full_like(x, np.nan)
    result = oceanflow.polyval(x, coeffs, out=out)
    assert result is out
    assert_poly_close(out, np.array(coeffs), x, 1e-14)


def test_out_of_a_lower_float_precision_is_cast_like_numpy():
    x = np.linspace(-1, 1, 500)
    out = np.empty(500, "f4")
    oceanflow.polyval(x, [1.0, 2.0], out=out)
    np.testing.assert_allclose(out, np.polyval([1.0, 2.0], x).astype("f4"))


def test_out_pair_with_derivative():
    x = np.linspace(0, 2, 200)
    value, slope = np.empty(200), np.empty(200)
    result = oceanflow.polyval(x, [1.0, 0.0, 0.0], deriv=True, out=(value, slope))
    assert result[0] is value and result[1] is slope
    np.testing.assert_allclose(slope, 2 * x)


def test_threads_give_the_same_result():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 100_003)
    coeffs = rng.normal(size=11)
    with oceanflow.set_options(num_threads=1):
        serial = oceanflow.polyval(x, coeffs)
    with oceanflow.set_options(num_threads=4, min_elements_per_thread=1000):
        threaded = oceanflow.polyval(x, coeffs)
    np.testing.assert_array_equal(serial, threaded)


def test_space_varying_numpy_coefficients_broadcast_like_numpy():
    rng = np.random.default_rng(3)
    coeffs = rng.normal(size=(4, 1, 5))
    x = rng.uniform(-1, 1, size=(6, 3, 5))
    np.testing.assert_allclose(oceanflow.polyval(x, coeffs), np.polyval(coeffs, x), rtol=1e-13)
    value, slope = oceanflow.polyval(x, coeffs, deriv=True)
    dcoeffs = coeffs[:-1] * np.arange(3, 0, -1)[:, None, None]
    np.testing.assert_allclose(slope, np.polyval(dcoeffs, x), rtol=1e-12)


def test_datetime_x_counts_nanoseconds_since_1970_like_xarray():
    times = np.array(["2000-01-01", "2020-06-15T12:00"], dtype="datetime64[ns]")
    coeffs = xr.DataArray([1e-18, 2.0], dims="degree", coords={"degree": [1, 0]})
    expected = xr.polyval(xr.DataArray(times, dims="t"), coeffs)
    actual = oceanflow.polyval(xr.DataArray(times, dims="t"), coeffs)
    xr.testing.assert_allclose(actual, expected)
    np.testing.assert_allclose(oceanflow.polyval(times, [1e-18, 2.0]), expected.values)


# ------------------------------------------------------------------ xarray and dask


@pytest.fixture
def field():
    rng = np.random.default_rng(4)
    data = rng.uniform(-2, 2, size=(40, 6, 7))
    data[3, 2, 1] = np.nan
    return xr.DataArray(data, dims=("time", "y", "x"), coords={"y": np.arange(6.0), "x": np.arange(7.0)}, name="sst")


@pytest.mark.parametrize("chunked", [False, True])
def test_dataarray_with_sequence_coefficients(field, chunked):
    x = field.chunk({"time": 10, "y": 3}) if chunked else field
    coeffs = [0.1, -0.2, 0.3, 1.0]
    result = oceanflow.polyval(x, coeffs)
    assert result.dims == field.dims and result.chunks == x.chunks
    expected = np.polyval(coeffs, field.values)
    np.testing.assert_allclose(result.values, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("degree", [3, 10, 30])
def test_dask_graph_adds_one_task_per_chunk_whatever_the_degree(field, degree):
    x = field.chunk({"time": 5, "y": 3})
    n_chunks = x.data.npartitions
    coeffs = np.linspace(-1, 1, degree + 1)
    result = oceanflow.polyval(x, coeffs)
    assert added_tasks(result.data, x.data) == n_chunks
    value, slope = oceanflow.polyval(x, coeffs, deriv=True)
    graph = {**value.data.__dask_graph__(), **slope.data.__dask_graph__()}
    assert len(graph) - len(x.data.__dask_graph__()) <= 3 * n_chunks


def test_bare_dask_array(field):
    x = dsa.from_array(field.values, chunks=(10, 3, 7))
    coeffs = [1.0, 2.0, 3.0]
    result = oceanflow.polyval(x, coeffs)
    assert isinstance(result, dsa.Array) and added_tasks(result, x) == x.npartitions
    np.testing.assert_allclose(result.compute(), np.polyval(coeffs, field.values), rtol=1e-14)
    value, slope = oceanflow.polyval(x, coeffs, deriv=True)
    np.testing.assert_allclose(slope.compute(), np.polyval([2.0, 2.0], field.values), rtol=1e-14)


@pytest.mark.parametrize("chunked", [False, True])
def test_polyfit_coefficients_match_xr_polyval(field, chunked):
    t = xr.DataArray(np.linspace(0, 3, 40), dims="time")
    series = field.assign_coords(time=t.values)
    fit = series.fillna(0).polyfit("time", deg=3)
    coeffs = fit.polyfit_coefficients
    if chunked:
        coeffs = coeffs.chunk({"y": 2, "degree": 1})
        t = t.chunk(8)
    expected = xr.polyval(t, coeffs)
    actual = oceanflow.polyval(t, coeffs)
    assert actual.dims == expected.dims
    xr.testing.assert_allclose(actual, expected.compute(), rtol=1e-12)


def test_space_varying_coefficients_on_a_field(field):
    coeffs = xr.DataArray(
        np.random.default_rng(5).normal(size=(3, 6)), dims=("degree", "y"), coords={"degree": [0, 2, 1]}
    )
    x = field.chunk({"time": 8})
    actual = oceanflow.polyval(x, coeffs)
    expected = xr.polyval(field, coeffs)
    assert actual.chunks is not None
    xr.testing.assert_allclose(actual.compute().transpose(*expected.dims), expected, rtol=1e-12)


def test_sparse_degree_labels_fill_missing_powers_with_zero(field):
    coeffs = xr.DataArray([2.0, 1.0], dims="degree", coords={"degree": [4, 0]})
    np.testing.assert_allclose(oceanflow.polyval(field, coeffs).values, 2.0 * field.values**4 + 1.0, rtol=1e-14)


def test_dataset_every_data_variable(field):
    ds = xr.Dataset({"a": field, "b": (field * 2).astype("f4")}, attrs={"title": "t"})
    coeffs = np.array([1.0, -1.0, 0.5], dtype="f4")
    result = oceanflow.polyval(ds.chunk({"time": 20}), coeffs)
    assert set(result.data_vars) == {"a", "b"}
    assert result.a.dtype == np.float64 and result.b.dtype == np.float32
    np.testing.assert_allclose(result.a.values, np.polyval(coeffs.astype("f8"), field.values), rtol=1e-13)
    value, slope = oceanflow.polyval(ds, coeffs, deriv=True)
    np.testing.assert_allclose(slope.b.values, np.polyval([2.0, -1.0], ds.b.values), rtol=1e-5)


def test_dataset_coefficients_like_xr_polyval(field):
    t = xr.DataArray(np.linspace(0, 1, 40), dims="time")
    ds = xr.Dataset({"sst": field.fillna(0), "sss": field.fillna(0) ** 2}).assign_coords(time=t.values)
    fit = ds.polyfit("time", deg=2)
    fit = fit.rename({name: name.replace("_polyfit_coefficients", "") for name in fit.data_vars})
    xr.testing.assert_allclose(oceanflow.polyval(t, fit), xr.polyval(t, fit), rtol=1e-12)


def test_runs_on_distributed_worker_processes(field):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            result = oceanflow.polyval(field.chunk({"time": 10}), [1.0, 2.0, 3.0]).compute()
    np.testing.assert_allclose(result.values, np.polyval([1.0, 2.0, 3.0], field.values), rtol=1e-14)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "x, coeffs, error, message",
    [
        (np.ones(3), [], ValueError, "empty"),
        (np.ones(3), 2.0, ValueError, "scalar"),
        (np.ones(3), ["a", "b"], TypeError, "non-numeric"),
        (np.array(["a"]), [1.0], TypeError, "non-numeric"),
        (np.ones(3), [1j, 2], TypeError, "complex"),
        (np.ones((2, 3)), np.ones((4, 5)), ValueError, "do not broadcast"),
        (np.ones(3), xr.DataArray([1.0, 2.0], dims="degree", coords={"degree": [1, 0]}), TypeError, "DataArray"),
        (xr.DataArray(np.ones(3)), xr.DataArray([1.0, 2.0], dims="power"), ValueError, "no 'degree' dimension"),
        (xr.DataArray(np.ones(3)), xr.DataArray([1.0, 2.0], dims="degree"), ValueError, "coordinate"),
        (
            xr.DataArray(np.ones(3)),
            xr.DataArray([1.0, 2.0], dims="degree", coords={"degree": [1.5, 0.0]}),
            ValueError,
            "non-negative integers",
        ),
        (xr.DataArray(np.ones(3)), np.ones((2, 3)), ValueError, "wrap them in a DataArray"),
    ],
)
def test_bad_input_gets_a_clear_error(x, coeffs, error, message):
    with pytest.raises(error, match=message):
        oceanflow.polyval(x, coeffs)


def test_bad_out():
    with pytest.raises(ValueError, match="shape"):
        oceanflow.polyval(np.ones(3), [1.0], out=np.empty(4))
    with pytest.raises(ValueError, match="2 array"):
        oceanflow.polyval(np.ones(3), [1.0], deriv=True, out=np.empty(3))
    with pytest.raises(TypeError, match="NumPy input"):
        oceanflow.polyval(xr.DataArray(np.ones(3)), [1.0], out=np.empty(3))


def test_dataset_non_numeric_variables_are_carried_unchanged():
    ds = xr.Dataset({"a": ("x", [1.0, 2.0]), "label": ("x", ["p", "q"])})
    result = oceanflow.polyval(ds, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(result.a.values, [1.0, 4.0])
    xr.testing.assert_identical(result.label, ds.label)


# ------------------------------------------------------------------ CMIP-like files (issue 9)


def test_cmip_dataset_bounds_are_not_transformed_and_units_are_not_kept(cmip_ocean, caplog):
    """Issue 9: lat_bnds became -363 after a K -> degC conversion, and the result kept units K."""
    ds = cmip_ocean()[["tos", "lat_bnds", "lon_bnds", "time_bnds"]]
    with caplog.at_level("INFO", logger="oceanflow.polynomials"):
        result = oceanflow.polyval(ds, np.array([1.0, -273.15], "float32"))
    for name in ("lat_bnds", "lon_bnds", "time_bnds"):
        xr.testing.assert_identical(result[name], ds[name])
    np.testing.assert_allclose(result.tos.values, ds.tos.values - np.float32(273.15), rtol=1e-6)
    assert result.tos.dtype == np.float32
    assert result.tos.attrs == {}  # no units K, no standard_name of the input
    assert "evaluated tos" in caplog.text and "lat_bnds" in caplog.text
    labelled = oceanflow.polyval(ds, np.array([1.0, -273.15], "float32"), units="degC")
    assert labelled.tos.attrs == {"units": "degC"} and labelled.lat_bnds.attrs == ds.lat_bnds.attrs
    assert labelled.lat.attrs == ds.lat.attrs


def test_units_of_value_and_derivative():
    x = xr.DataArray(np.linspace(0, 1, 5), dims="z", attrs={"units": "V", "long_name": "raw voltage"})
    value, slope = oceanflow.polyval(x, [2.0, 1.0, 0.0], deriv=True, units=("degC", "degC V-1"))
    assert value.attrs == {"units": "degC"} and slope.attrs == {"units": "degC V-1"}
    assert oceanflow.polyval(x, [2.0, 1.0]).attrs == {}
    with pytest.raises(TypeError, match="units= labels xarray results"):
        oceanflow.polyval(np.ones(3), [1.0], units="m")
    with pytest.raises(ValueError, match="one string"):
        oceanflow.polyval(x, [1.0], units=("a", "b"))


def test_cli_polyval_on_a_cmip_file_keeps_float32_and_bounds(cmip_ocean, tmp_path, capsys):
    """Issue 9: ``oceanflow polyval`` turned float32 into float64 files and transformed the bounds."""
    from oceanflow.cli import main

    source = cmip_ocean()
    source.to_netcdf(tmp_path / "tos.nc")
    argv = ["polyval", str(tmp_path / "tos.nc"), "-o", str(tmp_path / "out.nc"), "--coeffs", "1", "-273.15"]
    assert main([*argv, "--var", "tos", "--units", "degC"]) == 0
    assert "evaluated tos; copied unchanged: lev_bnds, lat_bnds, lon_bnds, time_bnds" in capsys.readouterr().out
    out = xr.open_dataset(tmp_path / "out.nc")
    assert out.tos.dtype == np.float32 and out.tos.attrs["units"] == "degC" and "standard_name" not in out.tos.attrs
    np.testing.assert_allclose(out.tos.values, source.tos.values - np.float32(273.15), rtol=1e-6)
    assert set(out.data_vars) == {"tos", "lev_bnds", "lat_bnds", "lon_bnds", "time_bnds"}
    for name in ("lat_bnds", "lon_bnds", "lev_bnds"):
        np.testing.assert_array_equal(out[name].values, source[name].values)
    assert main([*argv[:3], str(tmp_path / "out64.nc"), *argv[4:], "--var", "tos", "--dtype", "float64"]) == 0
    out64 = xr.open_dataset(tmp_path / "out64.nc")
    assert out64.tos.dtype == np.float64 and "units" not in out64.tos.attrs
    np.testing.assert_allclose(out64.tos.values, source.tos.values.astype("f8") - 273.15, rtol=1e-12)
    assert main([*argv[:3], str(tmp_path / "bad.nc"), *argv[4:], "--var", "lat_bnds"]) == 2
    assert "not a numeric field" in capsys.readouterr().err


# ------------------------------------------------------------------ coefficients meet x by label (issue 9)


def test_coefficients_are_matched_to_x_by_label(field):
    coeffs = xr.DataArray(
        np.random.default_rng(6).normal(size=(2, 6)), dims=("degree", "y"), coords={"degree": [1, 0], "y": field.y}
    )
    expected = xr.polyval(field, coeffs)
    reversed_coeffs = coeffs.isel(y=slice(None, None, -1))  # stored north to south
    actual = oceanflow.polyval(field.chunk({"time": 10}), reversed_coeffs)
    xr.testing.assert_allclose(actual.compute().transpose(*expected.dims), expected, rtol=1e-12)
    shifted = coeffs.assign_coords(y=coeffs.y + 0.5)
    with pytest.raises(ValueError, match=r"different 'y' coordinates \(6 of 6 labels differ.*interp"):
        oceanflow.polyval(field, shifted)


# ------------------------------------------------------------------ masked arrays and out= (issue 10)


def test_masked_values_are_nan_like_everywhere_in_oceanflow():
    """Issue 10: a masked 1e6 came back as 1e12 in a plain array."""
    x = np.ma.masked_array([2.0, 1e6, 3.0], mask=[False, True, False])
    result = oceanflow.polyval(x, [1.0, 0.0, 0.0])
    assert type(result) is np.ndarray
    np.testing.assert_array_equal(result, [4.0, np.nan, 9.0])
    value, slope = oceanflow.polyval(x.astype("f4"), np.array([1.0, 0.0, 0.0], "f4"), deriv=True)
    assert value.dtype == np.float32
    np.testing.assert_array_equal(slope, np.array([4.0, np.nan, 6.0], "f4"))
    np.testing.assert_array_equal(oceanflow.polyval(dsa.from_array(x, chunks=2), [1.0, 0.0]).compute(), [2, np.nan, 3])
    np.testing.assert_array_equal(oceanflow.polyval(x, np.ones((2, 3))), [3.0, np.nan, 4.0])  # N-D coefficients
    # xarray turns the mask into NaN the same way: the DataArray path agrees
    np.testing.assert_array_equal(oceanflow.polyval(xr.DataArray(x, dims="i"), [1.0, 0.0, 0.0]).values, result)
    ints = np.ma.masked_array([1, 2], mask=[True, False])
    np.testing.assert_array_equal(oceanflow.polyval(ints, [1, 1]), [np.nan, 3.0])
    masked_coefficient = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    assert np.isnan(oceanflow.polyval(np.ones(3), masked_coefficient)).all()


@pytest.mark.parametrize(
    "x, coeffs, out, error, words",
    [
        (
            np.ones(4),
            [1.0, 2.0],
            np.zeros(4, "int64"),
            TypeError,
            ["dtype int64", "float64", "np.empty((4,), 'float64')"],
        ),
        (np.ones(4), [1.0, 2.0], np.zeros(5), ValueError, ["shape (5,)", "(4,)"]),
        (np.ones((2, 3)), np.ones((2, 4, 1, 3)), np.zeros((2, 3)), ValueError, ["shape (2, 3)", "(4, 2, 3)"]),
        (np.ones(4), [1.0], np.ma.masked_array(np.zeros(4)), TypeError, ["plain NumPy array"]),
        (np.ones(4), [1.0], np.broadcast_to(np.zeros(1), (4,)), ValueError, ["read-only"]),
        (np.ones(4), [1.0], [0.0] * 4, TypeError, ["plain NumPy array", "list"]),
    ],
)
def test_bad_out_is_refused_with_the_fix(x, coeffs, out, error, words):
    """Issue 10: out= of an integer array showed NumPy's casting message after the work."""
    with pytest.raises(error) as info:
        oceanflow.polyval(x, coeffs, out=out)
    for word in words:
        assert word in str(info.value)


def test_bad_out_is_refused_before_any_work():
    value = np.full(6, -1.0)
    with pytest.raises(TypeError, match="derivative"):
        oceanflow.polyval(np.ones(6), [1.0, 2.0, 3.0], deriv=True, out=(value, np.zeros(6, "int32")))
    np.testing.assert_array_equal(value, -1.0)  # nothing was written
    with pytest.raises(ValueError, match="do not broadcast"):
        oceanflow.polyval(np.ones((2, 3)), np.ones((2, 4, 5)), out=value)
