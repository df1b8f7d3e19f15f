"""oceanflow.polyfit and oceanflow.detrend against xarray's polyfit and np.polyfit."""

import warnings

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from conftest import added_tasks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oceanflow.chunking import RechunkWarning, whole_core_dims
from oceanflow.fitting import detrend, polyfit

RTOL = 1e-8


def make_trend_field(dtype="float64", nan_fraction=0.2, shape=(60, 4, 5), seed=0):
    """Trend + noise, dims (time, y, x), with a coordinate on time and y only."""
    rng = np.random.default_rng(seed)
    n = shape[0]
    x = 10.0 + 0.5 * np.arange(n)
    trend = 2.0 - 0.3 * x[:, None, None] + 0.01 * x[:, None, None] ** 2
    values = trend + rng.normal(size=shape)
    values[rng.random(shape) < nan_fraction] = np.nan
    values[:, 0, 0] = np.nan  # an all-NaN series
    values[3:, 0, 1] = np.nan  # a series with only 3 valid points
    return xr.DataArray(
        values.astype(dtype),
        dims=("time", "y", "x"),
        coords={"time": x, "y": np.arange(shape[1]) * 10.0, "label": ("y", list("abcdefgh"[: shape[1]]))},
        name="sst",
        attrs={"units": "degC"},
    )


def xarray_polyfit(obj, dim, deg):
    with warnings.catch_warnings(record=True):  # RankWarning on the short series
        return obj.polyfit(dim, deg, skipna=True).compute()


def valid_enough(da, dim, deg):
    """Series with more than ``deg`` valid points (xarray gives min-norm fits on the others)."""
    return da.notnull().sum(dim) > deg


def per_series_reference(values, x, deg):
    """np.polyfit on the valid points of each column of ``values`` (n, s); NaN if too few."""
    out = np.full((deg + 1, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        ok = ~np.isnan(values[:, j])
        if ok.sum() > deg:
            out[:, j] = np.polyfit(x[ok], values[ok, j].astype(np.float64), deg)
    return out


# ---------------------------------------------------------------- against xarray


@pytest.mark.parametrize("backend", ["numpy", "dask"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("deg", [0, 1, 3])
def test_matches_xarray_polyfit(backend, dtype, deg):
    da = make_trend_field(dtype)
    if backend == "dask":
        da = da.chunk({"y": 2, "x": 3})
    ours = polyfit(da, "time", deg)
    ref = xarray_polyfit(da, "time", deg)
    assert list(ours.data_vars) == ["polyfit_coefficients"]
    assert ours.polyfit_coefficients.dims == ref.polyfit_coefficients.dims == ("degree", "y", "x")
    assert set(ours.coords) == set(ref.coords)
    np.testing.assert_array_equal(ours.degree.values, ref.degree.values)
    assert ours.degree.dtype == ref.degree.dtype
    assert ours.attrs == ref.attrs
    assert ours.polyfit_coefficients.dtype == np.float64
    assert (backend == "dask") == (ours.polyfit_coefficients.chunks is not None)
    keep = valid_enough(da, "time", deg)
    xr.testing.assert_allclose(ours.where(keep), ref.where(keep), rtol=RTOL, atol=0)
    assert ours.polyfit_coefficients.where(~keep).isnull().all()
    assert keep.sum() >= 15  # the comparison covers most series


@pytest.mark.parametrize("deg", [1, 2])
def test_datetime_coordinate_matches_xarray(deg):
    time = xr.date_range("2001-01-01", periods=6 * 365, freq="D")
    rng = np.random.default_rng(3)
    years = np.arange(time.size) / 365.25
    values = 280.0 + 0.02 * years[:, None] - 0.001 * years[:, None] ** 2 + rng.normal(size=(time.size, 3))
    values[rng.random(values.shape) < 0.1] = np.nan
    da = xr.DataArray(values, dims=("time", "station"), coords={"time": time})
    ref = xarray_polyfit(da, "time", deg)
    for obj in (da, da.chunk({"station": 1})):
        xr.testing.assert_allclose(polyfit(obj, "time", deg), ref, rtol=RTOL, atol=0)
    # independent check: xarray's abscissa is float nanoseconds since 1970-01-01
    x = (time.values - np.datetime64("1970-01-01")).astype("timedelta64[ns]").astype(float)
    np.testing.assert_allclose(
        polyfit(da, "time", deg).polyfit_coefficients.values, per_series_reference(values, x, deg), rtol=1e-7
    )


def test_dataset_matches_xarray():
    da = make_trend_field()
    ds = xr.Dataset(
        {"sst": da, "sss": (da * 0.1 + 35).astype("float32"), "depth": da.isel(time=0, drop=True)},
        attrs={"title": "test"},
    )
    ours = polyfit(ds, "time", 2)
    ref = xarray_polyfit(ds, "time", 2)
    assert list(ours.data_vars) == ["sst_polyfit_coefficients", "sss_polyfit_coefficients"]
    assert ours.attrs == ref.attrs == {"title": "test"}
    keep = valid_enough(da, "time", 2)
    xr.testing.assert_allclose(ours.where(keep), ref.where(keep), rtol=RTOL, atol=0)


def test_dimension_without_coordinate_and_coordinate_along_dimension():
    da = make_trend_field(nan_fraction=0.0).drop_vars("time").isel(y=slice(1, None))
    ours = polyfit(da, "time", 2)
    xr.testing.assert_allclose(ours, xarray_polyfit(da, "time", 2), rtol=RTOL, atol=0)
    values = da.transpose("time", ...).values.reshape(da.sizes["time"], -1)
    reference = per_series_reference(values, np.arange(da.sizes["time"], dtype=float), 2)
    np.testing.assert_allclose(ours.polyfit_coefficients.values.reshape(3, -1), reference, rtol=RTOL)
    # a non-dimension 1-D coordinate as abscissa, as xarray allows
    da = da.assign_coords(depth=("time", np.linspace(5.0, 500.0, da.sizes["time"])))
    xr.testing.assert_allclose(polyfit(da, "depth", 1), xarray_polyfit(da, "depth", 1), rtol=RTOL, atol=0)


# ---------------------------------------------------------------- against np.polyfit per series


def test_integer_data_computes_in_float64():
    values = np.random.default_rng(5).integers(-100, 100, size=(30, 4))
    da = xr.DataArray(values, dims=("t", "s"), coords={"t": np.linspace(0.0, 1.0, 30)})
    coeffs = polyfit(da, "t", 2).polyfit_coefficients
    assert coeffs.dtype == np.float64
    np.testing.assert_allclose(coeffs.values, np.polyfit(da.t.values, values, 2), rtol=RTOL)
    residual = detrend(da, "t", 2)
    assert residual.dtype == np.float64
    expected = values - np.polynomial.polynomial.polyval(da.t.values, np.polyfit(da.t.values, values, 2)[::-1]).T
    np.testing.assert_allclose(residual.values, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "dask"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_series_uses_its_own_valid_points(backend, dtype):
    da = make_trend_field(dtype, nan_fraction=0.4).transpose("y", "x", "time")  # time last
    if backend == "dask":
        da = da.chunk({"y": 3})
    ours = polyfit(da, "time", 2).polyfit_coefficients
    values = da.values.reshape(-1, da.sizes["time"]).T
    reference = per_series_reference(values, da.time.values, 2)
    assert ours.dims == ("degree", "y", "x")
    np.testing.assert_allclose(ours.values.reshape(3, -1), reference, rtol=RTOL, atol=0)


def test_too_few_valid_points_give_nan():
    x = np.arange(8.0)
    values = np.tile(1.0 + 2.0 * x, (4, 1)).T
    values[:, 1] = np.nan
    values[2:, 1] = 5.0  # 6 valid points
    values[:, 2] = np.nan
    values[0, 2] = 7.0  # one valid point
    values[:, 3] = np.nan  # none
    da = xr.DataArray(values, dims=("x", "s"), coords={"x": x})
    for deg, expect_nan in [(1, [False, False, True, True]), (6, [False, True, True, True])]:
        coeffs = polyfit(da, "x", deg).polyfit_coefficients
        assert coeffs.isnull().all("degree").values.tolist() == expect_nan
        assert coeffs.isnull().any("degree").values.tolist() == expect_nan
    # the degree-0 fit of a single point is that point
    assert polyfit(da, "x", 0).polyfit_coefficients.values[0, 2] == 7.0
    assert polyfit(da, "x", 8).polyfit_coefficients.isnull().all()  # deg >= every count
    np.testing.assert_allclose(polyfit(da, "x", 1).polyfit_coefficients[:, 0], [2.0, 1.0], rtol=RTOL)


@pytest.mark.parametrize("backend", ["numpy", "dask"])
def test_skipna_false_gives_nan_for_series_with_nan(backend):
    da = make_trend_field(nan_fraction=0.0)
    da[5, 1, 1] = np.nan
    if backend == "dask":
        da = da.chunk({"x": 2})
    coeffs = polyfit(da, "time", 1, skipna=False).polyfit_coefficients
    has_nan = da.isnull().any("time")
    assert coeffs.where(has_nan).isnull().all()
    clean = coeffs.values[:, ~has_nan.values]
    values = da.values[:, ~has_nan.values]
    np.testing.assert_allclose(clean, per_series_reference(values, da.time.values, 1), rtol=RTOL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 30),
    nseries=st.integers(1, 5),
    deg=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    nan_fraction=st.sampled_from([0.0, 0.3, 0.8]),
    time_last=st.booleans(),
)
def test_random_shapes_and_nan_patterns(n, nseries, deg, seed, nan_fraction, time_last):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-50.0, 150.0, n))
    values = rng.normal(size=(n, nseries)) * 10 + 3.0 * x[:, None]
    values[rng.random(values.shape) < nan_fraction] = np.nan
    da = xr.DataArray(values, dims=("t", "s"), coords={"t": x})
    if time_last:
        da = da.transpose("s", "t")
    coeffs = polyfit(da, "t", deg).polyfit_coefficients.values
    reference = per_series_reference(values, x, deg)
    for j in range(nseries):
        ok = ~np.isnan(values[:, j])
        if ok.sum() <= deg:
            assert np.isnan(coeffs[:, j]).all()
            continue
        # tolerance from the conditioning of the fit (normal equations in the scaled basis)
        t = (x[ok] - (x.min() + x.max()) / 2) / max((x.max() - x.min()) / 2, 1e-300)
        kappa = np.linalg.cond(np.polynomial.chebyshev.chebvander(t, deg))
        if kappa**2 > 1e9:
            continue  # near-singular: NaN or a poorly determined fit are both acceptable
        fitted = np.polyval(coeffs[:, j], x[ok])
        expected = np.polyval(reference[:, j], x[ok])
        scale = np.abs(values[ok, j]).max()
        np.testing.assert_allclose(fitted, expected, rtol=0, atol=RTOL * scale * max(1.0, kappa**2 * 1e-6))


# ---------------------------------------------------------------- dask graphs and chunking


def test_one_task_per_chunk():
    da = make_trend_field(shape=(40, 6, 8)).chunk({"y": 2, "x": 4})
    nchunks = da.data.npartitions
    for deg in (1, 3):
        fit = polyfit(da, "time", deg).polyfit_coefficients
        assert added_tasks(fit.data, da.data) == nchunks
        assert fit.chunks == ((deg + 1,), (2, 2, 2), (4, 4))
    assert added_tasks(detrend(da, "time", 2).data, da.data) == nchunks
    with dask.config.set(scheduler="sync"):
        xr.testing.assert_allclose(polyfit(da, "time", 1), polyfit(da.compute(), "time", 1), rtol=1e-14, atol=0)


def test_split_fitting_dimension_is_rechunked_with_one_warning():
    da = make_trend_field(shape=(60, 4, 6)).chunk({"time": 20, "x": 3})
    ds = xr.Dataset({"a": da, "b": da * 2})
    for obj in (da, ds):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = polyfit(obj, "time", 1)
        assert len(caught) == 1
        assert issubclass(caught[0].category, RechunkWarning)
        assert issubclass(RechunkWarning, UserWarning)
        message = str(caught[0].message)
        assert "polyfit" in message and "'time'" in message and "kiB" in message
        ref = xarray_polyfit(obj.compute(), "time", 1)
        keep = valid_enough(da, "time", 1)
        xr.testing.assert_allclose(fit.where(keep), ref.where(keep), rtol=RTOL, atol=0)


def test_rechunk_shrinks_other_dims_or_refuses():
    data = dsa.zeros((400, 64, 64), chunks=(50, 64, 64))
    da = xr.DataArray(data, dims=("time", "y", "x"))
    with pytest.warns(RechunkWarning, match=r"\(\d+(\.\d+)? [kM]iB each, was 1.56 MiB\)"):
        whole = whole_core_dims(da, "time", operation="test")
    assert whole.chunks[0] == (400,)
    assert 400 * max(whole.chunks[1]) * max(whole.chunks[2]) * 8 <= 4 * 50 * 64 * 64 * 8
    assert max(whole.chunks[1]) * max(whole.chunks[2]) < 64 * 64  # other dims shrunk
    small = xr.DataArray(dsa.zeros((400, 2), chunks=(10, 1)), dims=("time", "s"))
    with pytest.warns(RechunkWarning, match="3.12 kiB each, was 80 B"):  # tiny chunks: always cheap
        assert polyfit(small, "time", 1).polyfit_coefficients.chunks == ((2,), (1, 1))
    thin = xr.DataArray(dsa.zeros((2_000_000, 2), chunks=(1000, 1)), dims=("time", "s"))
    with pytest.raises(ValueError, match=r"in one chunk.*obj.chunk\(\{'time': -1\}\)"):
        polyfit(thin, "time", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert whole_core_dims(whole, "time", operation="test") is whole  # already whole: silent


# ---------------------------------------------------------------- detrend


@pytest.mark.parametrize("backend", ["numpy", "dask"])
@pytest.mark.parametrize("deg", [0, 1, 2])
def test_detrend_matches_xarray(backend, deg):
    da = make_trend_field(nan_fraction=0.1).transpose("y", "time", "x")
    if backend == "dask":
        da = da.chunk({"y": 2, "x": 3})
    ours = detrend(da, "time", deg)
    keep = valid_enough(da, "time", deg)
    ref = da - xr.polyval(da["time"], xarray_polyfit(da, "time", deg).polyfit_coefficients)
    xr.testing.assert_identical(ours.isnull(), da.isnull() | ~keep)
    xr.testing.assert_allclose(ours.where(keep), ref.where(keep).transpose(*da.dims), rtol=0, atol=1e-10)
    assert ours.dims == da.dims and ours.name == da.name and ours.attrs == da.attrs
    assert set(ours.coords) == set(da.coords) and ours.chunks == da.chunks


def test_detrend_dataset_float32_and_datetime():
    time = xr.date_range("2010-01-01", periods=3 * 365, freq="D")
    rng = np.random.default_rng(7)
    values = (np.arange(time.size) * 0.01 + rng.normal(size=(2, time.size))).astype("float32")
    ds = xr.Dataset({"a": (("s", "time"), values), "flag": ("s", ["x", "y"])}, coords={"time": time}, attrs={"k": 1})
    ours = detrend(ds, "time")
    assert ours.a.dtype == np.float32 and ours.attrs == ds.attrs
    xr.testing.assert_identical(ours.flag, ds.flag)
    x = (time.values - np.datetime64("1970-01-01")).astype("timedelta64[ns]").astype(float)
    for j in range(2):
        expected = values[j] - np.polyval(np.polyfit(x, values[j].astype(float), 1), x)
        np.testing.assert_allclose(ours.a.values[j], expected, rtol=0, atol=1e-5)


def test_detrend_dataset_leaves_bounds_and_text_alone():
    time = xr.date_range("2010-01-01", periods=48, freq="MS")
    values = np.arange(48.0)[None, :] * [[0.1], [0.2]] + np.cos(np.arange(48.0))
    bounds = np.stack([time.values, time.values + np.timedelta64(28, "D")], axis=1)
    ds = xr.Dataset(
        {
            "a": (("s", "time"), values),
            "time_bnds": (("time", "bnds"), bounds),
            "depth_bnds": (("s", "bnds"), [[0.0, 10.0], [10.0, 20.0]]),
            "platform": ("time", np.array(["buoy"] * 48)),
        },
        coords={"time": ("time", time, {"bounds": "time_bnds"}), "s": ("s", [5.0, 15.0], {"bounds": "depth_bnds"})},
    )
    ours = detrend(ds, "time")
    for name in ("time_bnds", "depth_bnds", "platform"):
        xr.testing.assert_identical(ours[name], ds[name])
    x = (time.values - np.datetime64("1970-01-01")).astype("timedelta64[ns]").astype(float)
    expected = values - np.array([np.polyval(np.polyfit(x, row, 1), x) for row in values])
    np.testing.assert_allclose(ours.a.values, expected, atol=1e-9)


# ---------------------------------------------------------------- errors


def test_clear_errors():
    da = make_trend_field()
    with pytest.raises(ValueError, match="'depth' is neither a dimension nor a coordinate"):
        polyfit(da, "depth", 1)
    with pytest.raises(ValueError, match="'depth' is neither"):
        detrend(da, "depth")
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match="deg must be a non-negative integer"):
            polyfit(da, "time", bad)
    with pytest.raises(ValueError, match="deg must be a non-negative integer"):
        detrend(da, "time", -1)
    assert polyfit(da, "time", np.int64(1)).sizes["degree"] == 2
    words = xr.DataArray(np.array(["a", "b", "c"]), dims="time")
    with pytest.raises(TypeError, match="non-numeric"):
        polyfit(words, "time", 1)
    with pytest.raises(TypeError, match="DataArray or Dataset"):
        polyfit(da.values, "time", 1)
    with pytest.raises(TypeError, match="skipna"):
        polyfit(da, "time", 1, skipna=None)
    with pytest.raises(ValueError, match="1-D"):
        polyfit(da.assign_coords(lat=(("y", "x"), np.zeros((4, 5)))), "lat", 1)
