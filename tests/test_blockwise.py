"""oceanflow._blockwise: the one graph builder, against NumPy on the same blocks."""

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from oceanflow._blockwise import map_blocks, map_fields, right_aligned


def column_means(block):
    return block.mean(axis=0)


def block_stats(block, *, scale):
    """Two outputs of different shapes: the block's column means (one row) and a scaled copy."""
    return block.mean(axis=0, keepdims=True), scale * block


def powers(block, *, n):
    """A new leading axis of length n: block**0 .. block**(n-1)."""
    return np.stack([block**k for k in range(n)])


def added_tasks(result, *sources):
    known = set()
    for source in sources:
        known |= set(source.__dask_graph__())
    return len(set(result.__dask_graph__()) - known)


def test_dropped_axis_is_whole():
    values = np.arange(24.0).reshape(4, 6)
    x = dsa.from_array(values, chunks=(2, 3))  # the dropped axis z is split: its blocks are concatenated
    means = map_blocks(column_means, "x", x, "zx", dtype=float)
    np.testing.assert_array_equal(means.compute(), values.mean(axis=0))
    assert means.chunks == ((3, 3),) and added_tasks(means, x) == 2


def test_outputs_of_different_shapes_share_one_task():
    values = np.arange(24.0).reshape(4, 6)
    x = dsa.from_array(values, chunks=(2, 3))
    means, scaled = map_blocks(
        block_stats, "zx", x, "zx", dtype=(np.float64, np.float64), adjust_chunks=({"z": 1}, None), scale=2.0
    )
    assert means.chunks == ((1, 1), (3, 3)) and scaled.chunks == x.chunks
    np.testing.assert_array_equal(means.compute(), [values[:2].mean(axis=0), values[2:].mean(axis=0)])
    np.testing.assert_array_equal(scaled.compute(), 2 * values)
    kernel_layers = [name for name in means.dask.layers if name.startswith("oceanflow-") and "output" not in name]
    assert len(kernel_layers) == 1 and len(means.dask.layers[kernel_layers[0]]) == 4  # one task per chunk
    assert added_tasks(means, x) == added_tasks(scaled, x) == 4 + 4  # plus one getitem per chunk and output


def test_new_axis_and_numpy_input():
    values = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    lazy = map_blocks(powers, "dyx", dsa.from_array(values, chunks=2), "yx", dtype=float, new_axes={"d": 3}, n=3)
    assert lazy.chunks[0] == (3,)
    eager = map_blocks(powers, "dyx", values, "yx", dtype=float, new_axes={"d": 3}, n=3)  # NumPy: called directly
    np.testing.assert_allclose(lazy.compute(), eager)
    np.testing.assert_allclose(eager[2], values**2)
    assert added_tasks(lazy, dsa.from_array(values, chunks=2)) == 4


def plain_sqrt(block):
    """What a kernel does: reads the block's values as a plain array."""
    return np.sqrt(np.asarray(block))


def test_masked_blocks_are_nan():
    masked = np.ma.masked_array([1.0, 4.0, 9.0, 16.0], mask=[False, True, False, True])
    lazy = map_blocks(plain_sqrt, (0,), dsa.from_array(masked, chunks=2), (0,), dtype=float).compute()
    assert type(lazy) is np.ndarray
    np.testing.assert_array_equal(lazy, [1.0, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(map_blocks(plain_sqrt, (0,), masked, (0,), dtype=float), lazy)


def test_right_aligned_indices_broadcast_like_numpy():
    a, b = np.ones((2, 3, 4)), np.arange(4.0)
    args = right_aligned([a, b, 2.0], 3)
    assert args[1::2] == [(0, 1, 2), (2,), ()]
    lazy = map_blocks(np.add, (0, 1, 2), dsa.from_array(a, chunks=1), (0, 1, 2), b, (2,), dtype=float)
    np.testing.assert_array_equal(lazy.compute(), a + b)


def test_map_fields_carries_bounds_and_text():
    ds = xr.Dataset(
        {
            "t": (("lat",), [1.0, 2.0], {"units": "K"}),
            "lat_bnds": (("lat", "bnds"), [[0.0, 1.0], [1.0, 2.0]]),
            "label": ("lat", ["a", "b"]),
        },
        coords={"lat": ("lat", [0.5, 1.5], {"bounds": "lat_bnds"})},
        attrs={"title": "kept"},
    )
    result = map_fields(np.negative, ds, keep_attrs=True)
    np.testing.assert_array_equal(result.t.values, [-1.0, -2.0])
    xr.testing.assert_identical(result.lat_bnds, ds.lat_bnds)
    xr.testing.assert_identical(result.label, ds.label)
    assert result.attrs == {"title": "kept"}
    with pytest.raises(ValueError, match="no field"):
        map_fields(np.negative, ds[["lat_bnds", "label"]])
