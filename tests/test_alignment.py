"""oceanflow.alignment.align against xarray's own label alignment (reindex_like)."""

import numpy as np
import pytest
import xarray as xr

from oceanflow.alignment import LabelMismatchError, align


def grid(lat, lon=(0.0, 1.0, 2.0, 3.0), seed=0):
    rng = np.random.default_rng(seed)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    return xr.DataArray(rng.standard_normal((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})


@pytest.mark.parametrize("order", ["reversed", "permuted"])
def test_a_reordered_axis_is_matched_by_label(order):
    data = grid([-20.0, -10.0, 0.0, 10.0, 20.0])
    labels = data.lat.values[::-1] if order == "reversed" else data.lat.values[[2, 0, 4, 1, 3]]
    other = grid(labels, seed=1)
    _, aligned = align(data, other)
    xr.testing.assert_identical(aligned, other.reindex_like(data))


def test_float_noise_counts_as_equal_and_takes_the_reference_labels():
    data = grid([-20.0, -10.0, 0.0, 10.0, 20.0])
    noisy = grid(data.lat.values.astype(np.float32).astype(np.float64) + 1e-7, seed=1)
    _, aligned = align(data, noisy)
    np.testing.assert_array_equal(aligned.values, noisy.values)
    np.testing.assert_array_equal(aligned.lat.values, data.lat.values)


def test_shifted_labels_are_refused_with_the_count_and_the_fix():
    data = grid([-20.0, -10.0, 0.0, 10.0, 20.0])
    shifted = grid(data.lat.values + 5.0)
    with pytest.raises(LabelMismatchError, match=r"'lat'.*5 of 5 labels differ.*interp.*join='override'"):
        align(data, shifted, names=("data", "climatology"))


def test_a_different_number_of_labels_is_refused():
    with pytest.raises(LabelMismatchError, match="has 3 labels"):
        align(grid([0.0, 1.0, 2.0, 3.0]), grid([0.0, 1.0, 2.0]))


def test_dimensions_without_coordinates_keep_the_size_check():
    a = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"))
    b = xr.DataArray(np.zeros((2, 4)), dims=("y", "x"))
    assert align(a, a.copy())[1].shape == (2, 3)
    with pytest.raises(LabelMismatchError, match="4 values along 'x'"):
        align(a, b)


def test_excluded_dimensions_and_non_xarray_inputs_are_left_alone():
    data = grid([0.0, 1.0])
    other = grid([5.0, 6.0])
    assert align(data, other, exclude=["lat"])[1] is other
    assert align(data, 3.0)[1] == 3.0
