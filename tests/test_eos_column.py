"""oceanflow.eos water-column functions against gsw's profile functions, column by column,
and the mixed layer depth against a plain NumPy reading of de Boyer Montegut et al. (2004)."""

import warnings

import numpy as np
import pytest
import xarray as xr

from oceanflow import eos
from oceanflow.chunking import RechunkWarning

gsw = pytest.importorskip("gsw")

NZ, NY, NX = 30, 4, 5


def _profiles(seed=0, nan_bottoms=True, dtype="float64"):
    """(lev, y, x) SA, CT, a 1-D pressure, latitudes (y, x), with NaN below a random sea floor."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([[2.5], 2.5 + np.cumsum(rng.uniform(3, 220, NZ - 1))])
    SA = 34.6 + np.cumsum(rng.normal(0, 0.03, (NZ, NY, NX)), axis=0)
    CT = 22 * np.exp(-p / 800)[:, None, None] + np.cumsum(rng.normal(0, 0.08, (NZ, NY, NX)), axis=0)
    if nan_bottoms:
        bottom = rng.integers(1, NZ + 1, (NY, NX))
        bottom[0, 0] = NZ  # one full column
        bottom[0, 1] = 1  # one column of a single level
        below = np.arange(NZ)[:, None, None] >= bottom
        SA[below] = np.nan
        CT[below] = np.nan
    lat = rng.uniform(-70, 70, (NY, NX))
    return SA.astype(dtype), CT.astype(dtype), p.astype(dtype), lat


def _dataarrays(SA, CT, p, lat, chunks=None):
    coords = {"lev": p.astype("float64"), "y": np.arange(NY), "x": np.arange(NX)}
    SA_da = xr.DataArray(SA, dims=("lev", "y", "x"), coords=coords, name="SA")
    CT_da = xr.DataArray(CT, dims=("lev", "y", "x"), coords=coords, name="CT")
    p_da = xr.DataArray(p, dims="lev", coords={"lev": coords["lev"]}, name="p")
    lat_da = xr.DataArray(lat, dims=("y", "x"), coords={"y": coords["y"], "x": coords["x"]}, name="lat")
    if chunks:
        SA_da, CT_da = SA_da.chunk(chunks), CT_da.chunk(chunks)
    return SA_da, CT_da, p_da, lat_da


# ---------------------------------------------------------------- Nsquared


def _gsw_nsquared(SA, CT, p, lat):
    p3 = np.broadcast_to(p[:, None, None], SA.shape).astype("float64")
    SA, CT = SA.astype("float64"), CT.astype("float64")
    if lat is None:  # (gsw turns an explicit lat=None into NaN)
        return gsw.Nsquared(SA, CT, p3, axis=0)
    return gsw.Nsquared(SA, CT, p3, np.broadcast_to(lat, SA.shape), axis=0)


@pytest.mark.parametrize("with_lat", [True, False])
def test_nsquared_numpy_equals_gsw(with_lat):
    SA, CT, p, lat = _profiles()
    lat = lat if with_lat else None
    N2, p_mid = eos.Nsquared(SA, CT, p[:, None, None], lat)
    ref, ref_mid = _gsw_nsquared(SA, CT, p, lat)
    assert N2.shape == ref.shape == (NZ - 1, NY, NX)
    np.testing.assert_array_equal(np.isnan(N2), np.isnan(ref))
    np.testing.assert_allclose(N2, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(p_mid, ref_mid, rtol=1e-15)


def test_nsquared_other_axis_as_gsw():
    SA, CT, p, lat = _profiles()
    SA_t, CT_t = np.moveaxis(SA, 0, -1), np.moveaxis(CT, 0, -1)
    N2, p_mid = eos.Nsquared(SA_t, CT_t, p, lat[..., None], axis=-1)
    ref, ref_mid = gsw.Nsquared(
        SA_t, CT_t, np.broadcast_to(p, SA_t.shape), np.broadcast_to(lat[..., None], SA_t.shape), axis=-1
    )
    np.testing.assert_allclose(N2, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(p_mid, ref_mid)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nsquared_dask_dataarray_equals_gsw(dtype):
    SA, CT, p, lat = _profiles(dtype=dtype)
    SA_da, CT_da, p_da, lat_da = _dataarrays(SA, CT, p, lat, chunks={"y": 2, "x": 3})
    N2, p_mid = eos.Nsquared(SA_da, CT_da, p_da, lat_da, dim="lev")
    assert N2.dims == ("y", "x", "lev_mid") and N2.dtype == dtype
    assert N2.chunks == ((2, 2), (3, 2), (NZ - 1,))
    ref, ref_mid = _gsw_nsquared(SA, CT, p, lat)
    got = N2.transpose("lev_mid", "y", "x").values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    rtol = 1e-10 if dtype == "float64" else 2e-3  # float32 inputs: differences of nearby levels
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.nanmax(np.abs(ref)))
    np.testing.assert_allclose(p_mid.values, ref_mid[:, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(N2["lev_mid"].values, ref_mid[:, 0, 0], rtol=1e-6)
    assert N2.attrs["units"] == "s-2" and N2.attrs["standard_name"] == "square_of_brunt_vaisala_frequency_in_sea_water"
    assert p_mid.attrs["units"] == "dbar"


def test_nsquared_one_task_per_chunk():
    SA, CT, p, lat = _profiles()
    SA_da, CT_da, p_da, lat_da = _dataarrays(SA, CT, p, lat, chunks={"y": 2, "x": 3})
    N2, _ = eos.Nsquared(SA_da, CT_da, p_da, lat_da, dim="lev")
    layers = N2.data.__dask_graph__().layers
    kernel = [len(layer) for name, layer in layers.items() if name.startswith("eos-Nsquared")]
    assert kernel == [SA_da.data.npartitions] == [4]


# ---------------------------------------------------------------- geo_strf_dyn_height


def _gsw_dyn_height(SA, CT, p, p_ref, method="pchip"):
    p3 = np.broadcast_to(p[:, None, None], SA.shape).astype("float64")
    return gsw.geo_strf_dyn_height(
        SA.astype("float64"), CT.astype("float64"), p3, p_ref=p_ref, axis=0, interp_method=method
    )


@pytest.mark.parametrize("p_ref", [0.0, 2.5, 150.0, 1000.0, 1733.3])
@pytest.mark.parametrize("method", ["pchip", "linear"])
def test_dyn_height_numpy_equals_gsw(p_ref, method):
    SA, CT, p, _ = _profiles()
    got = eos.geo_strf_dyn_height(SA, CT, p[:, None, None], p_ref, interp_method=method)
    ref = _gsw_dyn_height(SA, CT, p, p_ref, method)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isfinite(ref).sum() > NZ  # not a vacuous comparison
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_dyn_height_fine_profile_with_a_level_at_p_ref_equals_gsw():
    """gsw's shortcut: no refinement when every step is <= max_dp and p_ref is a level."""
    rng = np.random.default_rng(3)
    p = np.arange(0.0, 200.0, 0.7)
    SA = 35 + np.cumsum(rng.normal(0, 0.01, (p.size, 6)), axis=0)
    CT = 15 + np.cumsum(rng.normal(0, 0.05, (p.size, 6)), axis=0)
    for p_ref in (0.0, 7.0, 7.1):
        got = eos.geo_strf_dyn_height(SA, CT, p[:, None], p_ref)
        ref = gsw.geo_strf_dyn_height(SA, CT, p, p_ref=p_ref, axis=0)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dyn_height_dask_dataarray_equals_gsw(dtype):
    SA, CT, p, lat = _profiles(seed=1, dtype=dtype)
    SA_da, CT_da, p_da, _ = _dataarrays(SA, CT, p, lat, chunks={"y": 3})
    got = eos.geo_strf_dyn_height(SA_da, CT_da, p_da, 500.0, dim="lev")
    assert got.dims == ("y", "x", "lev") and got.dtype == dtype and got.chunks[0] == (3, 1)
    assert got.attrs["units"] == "m2 s-2"
    ref = _gsw_dyn_height(SA, CT, p, 500.0)
    values = got.transpose("lev", "y", "x").values
    np.testing.assert_array_equal(np.isnan(values), np.isnan(ref))
    tol = 1e-10 if dtype == "float64" else 1e-4 * np.nanmax(np.abs(ref))
    np.testing.assert_allclose(values, ref, rtol=1e-10 if dtype == "float64" else 1e-4, atol=tol)


def test_dyn_height_interior_nan_levels_are_skipped_as_gsw():
    SA, CT, p, _ = _profiles(seed=2, nan_bottoms=False)
    SA[5, 1, 1] = np.nan
    CT[12, 2, 3] = np.nan
    got = eos.geo_strf_dyn_height(SA, CT, p[:, None, None], 100.0)
    np.testing.assert_allclose(got, _gsw_dyn_height(SA, CT, p, 100.0), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- mixed layer depth


def _mld_oracle(values, depth, threshold, reference_depth, density):
    """The published criterion read plainly, one column at a time with np.interp."""
    ok = ~(np.isnan(values) | np.isnan(depth))
    v, d = values[ok], depth[ok]
    if d.size == 0 or d[-1] < reference_depth:
        return np.nan
    ref = np.interp(reference_depth, d, v)  # constant above the shallowest level
    below = d > reference_depth
    dv = np.concatenate([[ref], v[below]])
    dd = np.concatenate([[reference_depth], d[below]])
    change = dv - ref if density else np.abs(dv - ref)
    hits = np.nonzero(change >= threshold)[0]
    if hits.size == 0:
        return d[-1]
    k = hits[0]
    target = ref + threshold if dv[k] >= ref else ref - threshold
    segment = slice(k - 1, k + 1)
    order = np.argsort(dv[segment])
    return float(np.interp(target, dv[segment][order], dd[segment][order]))


def _mld_profiles(seed=4):
    rng = np.random.default_rng(seed)
    depth = np.array([0.5, 5, 10, 15, 20, 30, 40, 50, 65, 80, 100, 125, 150, 200, 300, 500.0])
    nz = depth.size
    mld = rng.uniform(8, 400, (NY, NX))
    step = np.where(depth[:, None, None] > mld, (depth[:, None, None] - mld) / 50, 0.0)
    CT = 20 - step + rng.normal(0, 0.01, (nz, NY, NX))
    SA = 35 + 0.2 * step + rng.normal(0, 0.002, (nz, NY, NX))
    bottom = rng.integers(3, nz + 1, (NY, NX))  # every column reaches 10 m
    below = np.arange(nz)[:, None, None] >= bottom
    SA[below] = CT[below] = np.nan
    CT[:, 0, 0] = 20.0  # mixed to the bottom
    SA[:, 0, 0] = 35.0
    return SA, CT, depth


@pytest.mark.parametrize("criterion", ["density", "temperature"])
@pytest.mark.parametrize(("reference_depth", "factor"), [(10.0, 1.0), (12.5, 1.0), (3.0, 0.5)])
def test_mixed_layer_depth_equals_numpy_oracle(criterion, reference_depth, factor):
    SA, CT, depth = _mld_profiles()
    density = criterion == "density"
    threshold = (0.03 if density else 0.2) * factor
    options = {"criterion": criterion, "reference_depth": reference_depth}
    if factor != 1:
        options["threshold"] = threshold
    got = eos.mixed_layer_depth(SA, CT, depth[:, None, None], **options)
    values = gsw.sigma0(SA, CT) if density else CT
    ref = np.array(
        [
            [_mld_oracle(values[:, j, i], depth, threshold, reference_depth, density) for i in range(NX)]
            for j in range(NY)
        ]
    )
    assert got.shape == (NY, NX)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    assert got[0, 0] == depth[-1]  # mixed to the bottom
    assert np.isfinite(got).sum() >= NY * NX - 3  # NaN only where a column ends above reference_depth


def test_mixed_layer_depth_hand_made_profiles():
    depth = np.array([5.0, 15.0, 25.0, 35.0, 45.0, np.nan])
    CT = np.array([18.0, 18.0, 17.9, 17.7, 15.0, np.nan])
    # CT at 10 m is 18; 17.8 (a change of 0.2) is reached half-way between 25 and 35 m
    assert eos.mixed_layer_depth(None, CT, depth, criterion="temperature") == pytest.approx(30.0)
    # warming downwards counts too (|dT|)
    assert eos.mixed_layer_depth(None, 36 - CT, depth, criterion="temperature") == pytest.approx(30.0)
    # a threshold of 0.05 is reached half-way between 15 and 25 m
    assert eos.mixed_layer_depth(None, CT, depth, criterion="temperature", threshold=0.05) == pytest.approx(20.0)
    # reference at 20 m: CT 17.95; 17.75 is reached three quarters of the way from 25 to 35 m
    got = eos.mixed_layer_depth(None, CT, depth, criterion="temperature", reference_depth=20)
    assert got == pytest.approx(32.5)
    # density: sigma0 increases by 0.03 kg m-3 where SA has risen by 0.03 / 0.78 (beta * rho ~ 0.78)
    SA = np.array([35.0, 35.0, 35.0, 35.1, 35.2, 35.3])
    CT = np.full(6, 10.0)
    rise = 0.03 / (gsw.sigma0(35.1, 10.0) - gsw.sigma0(35.0, 10.0))  # fraction of the 25-35 m step
    assert eos.mixed_layer_depth(SA, CT, np.arange(6) * 10.0 + 5) == pytest.approx(25 + 10 * rise, rel=1e-3)
    # too shallow for the reference depth: NaN
    assert np.isnan(eos.mixed_layer_depth(SA[:1], CT[:1], np.array([5.0])))


def test_mixed_layer_depth_dask_dataarray():
    SA, CT, depth = _mld_profiles(seed=5)
    coords = {"lev": depth}
    SA_da = xr.DataArray(SA, dims=("lev", "y", "x"), coords=coords).chunk({"x": 2})
    CT_da = xr.DataArray(CT, dims=("lev", "y", "x"), coords=coords).chunk({"x": 2})
    lev = xr.DataArray(depth, dims="lev", coords=coords, attrs={"units": "m", "positive": "down"})
    got = eos.mixed_layer_depth(SA_da, CT_da, lev)
    assert got.dims == ("y", "x") and got.chunks == ((NY,), (2, 2, 1))
    assert got.attrs["standard_name"] == "ocean_mixed_layer_thickness_defined_by_sigma_theta"
    np.testing.assert_allclose(got.values, eos.mixed_layer_depth(SA, CT, depth[:, None, None]), rtol=1e-12)


# ---------------------------------------------------------------- chunks and bad input


def test_split_vertical_dimension_is_rechunked_with_a_warning():
    SA, CT, p, lat = _profiles()
    SA_da, CT_da, p_da, lat_da = _dataarrays(SA, CT, p, lat, chunks={"lev": 10, "y": 2})
    with pytest.warns(RechunkWarning, match="'lev'"):
        N2, _ = eos.Nsquared(SA_da, CT_da, p_da, lat_da, dim="lev")
    assert N2.chunks == ((2, 2), (NX,), (NZ - 1,))
    np.testing.assert_allclose(N2.transpose("lev_mid", ...).values, _gsw_nsquared(SA, CT, p, lat)[0], rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eos.Nsquared(SA_da.chunk({"lev": -1}), CT_da.chunk({"lev": -1}), p_da, lat_da, dim="lev")


def test_pressure_not_increasing_is_refused():
    SA, CT, p, lat = _profiles(nan_bottoms=False)
    p_bad = p.copy()
    p_bad[[3, 4]] = p_bad[[4, 3]]
    for function in (
        lambda *a: eos.Nsquared(*a, lat),
        lambda *a: eos.geo_strf_dyn_height(*a, 0.0),
        lambda *a: eos.mixed_layer_depth(*a),
    ):
        with pytest.raises(
            ValueError, match=r"(p|depth) along 'axis 0' does not increase strictly in 1 column\(s\).*sortby"
        ):
            function(SA, CT, p_bad[:, None, None])
    # a full pressure field, dask-backed: refused when computed
    SA_da, CT_da, _, lat_da = _dataarrays(SA, CT, p, lat, chunks={"y": 2})
    p_field = xr.DataArray(np.broadcast_to(p_bad[:, None, None], SA.shape).copy(), dims=SA_da.dims).chunk({"y": 2})
    lazy = eos.geo_strf_dyn_height(SA_da, CT_da, p_field, 0.0, dim="lev")
    with pytest.raises(ValueError, match=r"p along 'lev' does not increase strictly in 10 column\(s\)"):
        lazy.compute()  # (one task: 2 x 5 columns)


def test_depth_and_pressure_confusion_is_caught_from_attributes():
    SA, CT, p, lat = _profiles()
    SA_da, CT_da, p_da, lat_da = _dataarrays(SA, CT, p, lat)
    depth_as_p = p_da.assign_attrs(standard_name="depth", units="m", positive="down")
    with pytest.raises(ValueError, match="p_from_z"):
        eos.Nsquared(SA_da, CT_da, depth_as_p, lat_da, dim="lev")
    with pytest.raises(ValueError, match="p_from_z"):
        eos.geo_strf_dyn_height(SA_da, CT_da, depth_as_p, dim="lev")
    pressure_as_depth = p_da.assign_attrs(standard_name="sea_water_pressure", units="dbar")
    with pytest.raises(ValueError, match="is a pressure.*z_from_p"):
        eos.mixed_layer_depth(SA_da, CT_da, pressure_as_depth, dim="lev")
    height = p_da.assign_attrs(units="m", positive="up")
    with pytest.raises(ValueError, match="positive downwards"):
        eos.mixed_layer_depth(SA_da, CT_da, -height, dim="lev")


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda SA, CT, p: eos.Nsquared(SA, CT, p), ValueError, "dim="),
        (lambda SA, CT, p: eos.Nsquared(SA, CT, p, dim="depth"), ValueError, "has no dimension 'depth'"),
        (lambda SA, CT, p: eos.Nsquared(SA, CT, p, lat=95.0, dim="lev"), ValueError, "between -90 and 90"),
        (lambda SA, CT, p: eos.mixed_layer_depth(SA, CT, p, "lev", criterion="salt"), ValueError, "criterion"),
        (lambda SA, CT, p: eos.mixed_layer_depth(SA, CT, p, "lev", threshold=-1), ValueError, "positive"),
        (lambda SA, CT, p: eos.mixed_layer_depth(None, CT, p, "lev"), ValueError, "needs SA"),
        (lambda SA, CT, p: eos.geo_strf_dyn_height(SA, CT, p, dim="lev", interp_method="mrst"), ValueError, "pchip"),
        (lambda SA, CT, p: eos.geo_strf_dyn_height(SA, CT, p, dim="lev", max_dp=0), ValueError, "max_dp"),
        (lambda SA, CT, p: eos.Nsquared(SA, CT, p, SA, dim="lev"), ValueError, "must not vary along"),
    ],
)
def test_bad_arguments(call, error, words):
    SA, CT, p, lat = _profiles()
    SA_da, CT_da, _, _ = _dataarrays(SA, CT, p, lat)
    p_full = xr.DataArray(np.broadcast_to(p[:, None, None], SA.shape), dims=SA_da.dims)
    with pytest.raises(error, match=words):
        call(SA_da, CT_da, p_full)


def test_one_dimensional_pressure_along_axis_as_gsw():
    """gsw takes p of shape (nz,) with SA of shape (nz, n) for profile functions."""
    SA, CT, p, lat = _profiles(nan_bottoms=False)
    SA2, CT2 = SA[:, :, 0], CT[:, :, 0]
    got = eos.geo_strf_dyn_height(SA2, CT2, p, 100.0)
    np.testing.assert_allclose(got, gsw.geo_strf_dyn_height(SA2, CT2, p, p_ref=100.0), rtol=1e-10, atol=1e-10)
    N2, p_mid = eos.Nsquared(SA2, CT2, p, lat[:, 0])
    ref = gsw.Nsquared(SA2, CT2, np.broadcast_to(p[:, None], SA2.shape), np.broadcast_to(lat[:, 0], SA2.shape))
    np.testing.assert_allclose(N2, ref[0], rtol=1e-10)
    np.testing.assert_allclose(p_mid, ref[1])


# ---------------------------------------------------------------- range checks (as the conversions')


def test_column_range_checks():
    from oceanflow.eos.validity import TEOS10RangeWarning

    SA, CT, p, lat = _profiles(nan_bottoms=False)
    SA[3, 1, 2] = -1.0
    cases = {
        "Nsquared": lambda **kw: eos.Nsquared(SA, CT, p, lat, **kw),
        "geo_strf_dyn_height": lambda **kw: eos.geo_strf_dyn_height(SA, CT, p, **kw),
        "mixed_layer_depth": lambda **kw: eos.mixed_layer_depth(SA, CT, p, **kw),
    }
    for name, call in cases.items():
        with pytest.warns(TEOS10RangeWarning, match=rf"{name}: .*SA 1 of {SA.size} outside \[0, 42\]") as caught:
            call()
        assert len(caught) == 1
        with pytest.raises(ValueError, match="SA 1 of"):
            call(check="raise")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            call(check=None)
    # the temperature criterion checks CT once, under its own name (it stands in for SA)
    CT[0, 0, 0] = -5.0
    with pytest.warns(TEOS10RangeWarning, match=r"CT 1 of") as caught:
        eos.mixed_layer_depth(None, CT, p, criterion="temperature")
    assert "SA" not in str(caught[0].message)


def test_column_range_check_dask_warns_on_compute():
    from oceanflow.eos.validity import TEOS10RangeWarning

    SA, CT, p, lat = _profiles(nan_bottoms=False)
    SA[3, 1, 2] = -1.0
    SA_da, CT_da, p_da, lat_da = _dataarrays(SA, CT, p, lat, chunks={"y": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        N2, _ = eos.Nsquared(SA_da, CT_da, p_da, lat_da, dim="lev")
    with pytest.warns(TEOS10RangeWarning, match="SA outside"):
        N2.compute()
