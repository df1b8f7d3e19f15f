"""oceanflow._blockwise: the one graph builder, against NumPy on the same blocks."""

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from conftest import added_tasks

from oceanflow._blockwise import combine_tree, fold, gather, map_blocks, map_fields, right_aligned, row_pieces


def column_means(block):
    return block.mean(axis=0)


def block_stats(block, *, scale):
    """Two outputs of different shapes: the block's column means (one row) and a scaled copy."""
    return block.mean(axis=0, keepdims=True), scale * block


def powers(block, *, n):
    """A new leading axis of length n: block**0 .. block**(n-1)."""
    return np.stack([block**k for k in range(n)])


def test_dropped_axis_is_whole():
    values = np.arange(24.0).reshape(4, 6)
    x = dsa.from_array(values, chunks=(2, 3))  # the dropped axis z is split: its blocks are concatenated
    means = map_blocks(column_means, "x", x, "zx", dtype=float)
    np.testing.assert_array_equal(means.compute(), values.mean(axis=0))
    assert means.chunks == ((3, 3),) and added_tasks(means, x) == 2


def test_dropped_axes_in_one_chunk_reach_the_function_uncopied():
    values = np.arange(24.0).reshape(2, 3, 4)
    whole = dsa.from_delayed(dask.delayed(lambda: values)(), values.shape, values.dtype)  # its task returns values
    split = dsa.from_array(np.ones((2, 4)), chunks=(1, 2))  # a dropped axis in two chunks: concatenated
    seen = []

    def sums(block, offsets, scale):  # (offsets: a list passed as it is, or a block summed along z)
        seen.append(np.shares_memory(block, values))
        return block.sum(axis=(0, 1)) * scale + np.atleast_2d(offsets).sum(axis=0)

    offsets = [0.0, 1.0, 2.0, 3.0]
    out = map_blocks(sums, "x", whole, "zyx", offsets, None, dtype=float, scale=2.0)
    np.testing.assert_array_equal(out.compute(scheduler="sync"), values.sum(axis=(0, 1)) * 2 + offsets)
    assert seen == [True] and not any("concatenate" in str(t) for t in out.__dask_graph__().values())
    seen.clear()
    joined = map_blocks(sums, "x", whole, "zyx", split, "zx", dtype=float, scale=1.0)  # both concatenated
    np.testing.assert_array_equal(joined.compute(scheduler="sync"), values.sum(axis=(0, 1)) + 2)
    assert seen == [False, False]


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


# ---------------------------------------------------------------- along the first axis


def running_sum(previous, block, weights, pixels):
    """Weighted column sums of a pixel range, added to the state before (never written)."""
    flat = block.reshape(block.shape[0], -1)[:, pixels]
    total = (weights[:, None] * flat).sum(axis=0)
    return total if previous is None else previous + total


def as_block(state, pixels, shape):
    return state.reshape((1,) + tuple(shape))


def series_median(blocks, shared, pixels, shape):
    series = np.concatenate([b.reshape(b.shape[0], -1)[:, pixels] for b in blocks])
    return np.median(series, axis=0).reshape((1,) + tuple(shape)) + shared


def stacked_sums(blocks):
    return blocks.sum(axis=0, keepdims=True)


def test_row_pieces_cover_every_row_once():
    chunks, pieces = row_pieces(((5, 2), (3, 3)), pieces=6)  # 4 blocks, 6 threads: rows split in 2
    assert chunks == ((2, 3, 1, 1), (3, 3)) and len(pieces) == 8
    rows = {}
    for _, src, pixels, shape in pieces:
        assert pixels.stop - pixels.start == np.prod(shape)
        rows.setdefault(src, []).append((pixels.start, pixels.stop))
    assert rows[(0, 0)] == [(0, 6), (6, 15)] and rows[(1, 1)] == [(0, 3), (3, 6)]


@pytest.mark.parametrize("threads", [1, 5])
def test_fold_adds_chunks_in_order_against_numpy(threads):
    rng = np.random.default_rng(0)
    values, weights = rng.random((10, 5, 6)), rng.random(10)
    x = dsa.from_array(values, chunks=(3, 5, 3))
    with dask.config.set(num_workers=threads):
        total = fold(running_sum, as_block, x, weights, lead=[1], dtype=float, name="wsum")
    np.testing.assert_allclose(total.compute()[0], np.einsum("t,tyx->yx", weights, values))
    steps = [key for key in total.__dask_graph__() if str(key[0]).startswith("wsum-fold-")]
    assert len(steps) == x.numblocks[0] * total.npartitions  # a chain per output block
    assert added_tasks(total, x) == len(steps) + total.npartitions


def held_rows(previous, block, pieces, offset):
    """A per-block chain's step: the chunks so far (held) and the pieces' ranges it was given."""
    blocks = () if previous is None else previous[0]
    return blocks + (block.reshape(block.shape[0], -1),), pieces, offset


def piece_median(state, pixels, shape, offset):
    blocks, pieces, given = state
    assert pixels in pieces and given == offset
    series = np.concatenate(blocks)[:, pixels]
    return (np.median(series, axis=0) + offset).reshape((1,) + tuple(shape))


@pytest.mark.parametrize("threads", [1, 4])
def test_fold_per_block_chains_finish_each_piece_against_numpy(threads):
    """per_block=True: one chain per spatial block, whatever the pieces (threads), each step
    given every piece's range; one finishing task per piece; shared once in the graph."""
    values = np.random.default_rng(2).random((9, 4, 6))
    x = dsa.from_array(values, chunks=(2, 4, 3))
    with dask.config.set(num_workers=threads):
        middle = fold(held_rows, piece_median, x, lead=[1], dtype=float, name="hm", per_block=True, shared=10.0)
    np.testing.assert_array_equal(middle.compute()[0], np.median(values, axis=0) + 10.0)
    steps = [key for key in middle.__dask_graph__() if str(key[0]).startswith("hm-fold-")]
    assert len(steps) == x.numblocks[0] * 2  # two spatial blocks
    assert middle.npartitions == max(2, threads)
    assert added_tasks(middle, x) == len(steps) + middle.npartitions + 1  # plus the shared value, once


def test_fold_and_gather_read_masked_blocks_as_nan():
    masked = np.ma.masked_array(np.ones((4, 2)), mask=[[0, 0], [1, 0], [0, 0], [0, 0]])
    x = dsa.from_array(masked, chunks=(2, 2), asarray=False)
    total = fold(running_sum, as_block, x, np.ones(4), lead=[1], dtype=float, name="wsum").compute()
    np.testing.assert_array_equal(total, [[np.nan, 4.0]])
    middle = gather(series_median, x, 0.0, lead=[1], dtype=float, name="median").compute()
    np.testing.assert_array_equal(middle, [[np.nan, 1.0]])


def test_gather_sees_the_whole_series_once():
    values = np.random.default_rng(1).random((9, 4, 6))
    x = dsa.from_array(values, chunks=(2, 4, 3))
    with dask.config.set(num_workers=1):
        middle = gather(series_median, x, 10.0, lead=[1], dtype=float, name="median")
    np.testing.assert_array_equal(middle.compute()[0], np.median(values, axis=0) + 10.0)
    assert added_tasks(middle, x) == middle.npartitions + 1  # plus the shared value, once


def mark(*args):
    """A callable at the head of a shared tuple: dask would run it if the tuple went in raw."""
    return "ran"


def first_block_with(state, block, pixels, shared):
    return block if state is None else state


def block_if_shared_unchanged(state, pixels, shape, shared):
    assert shared == (mark, ("raw-key", 0), "raw-key"), shared
    return state.reshape(-1)[pixels].reshape((1,) + tuple(shape))


def series_if_shared_unchanged(blocks, shared, pixels, shape):
    assert shared == (mark, ("raw-key", 0), "raw-key"), shared
    return blocks[0].reshape(-1)[pixels].reshape((1,) + tuple(shape))


@pytest.mark.parametrize("per_block", [False, True])
def test_fold_and_gather_pass_shared_through_unchanged(per_block):
    """A shared tuple starting with a callable, holding a key and a string equal to a key of
    the graph, reaches every step and finish as it was given (not run, no key resolved)."""
    x = dsa.from_array(np.arange(8.0).reshape(2, 4), chunks=(1, 2))
    shared = (mark, ("raw-key", 0), "raw-key")
    extra = {("raw-key", 0): 1.0, "raw-key": 2.0}  # keys the tuple names, present in the graph
    for result in (
        fold(
            first_block_with,
            block_if_shared_unchanged,
            x,
            lead=[1],
            dtype=float,
            name="lit",
            per_block=per_block,
            shared=shared,
        ),
        gather(series_if_shared_unchanged, x, shared, lead=[1], dtype=float, name="lit"),
    ):
        graph = dict(result.__dask_graph__()) | extra
        blocks = dask.get(graph, list(dask.core.flatten(result.__dask_keys__())))
        np.testing.assert_array_equal(np.concatenate(blocks, axis=-1), [[0.0, 1.0, 2.0, 3.0]])


def test_combine_tree_against_numpy():
    values = np.arange(60.0).reshape(10, 6)
    parts = dsa.from_array(values, chunks=(1, 3))
    total = combine_tree(stacked_sums, parts, split_every=3, dtype=float)
    assert total.chunks == ((1,), (3, 3))
    np.testing.assert_array_equal(total.compute(), values.sum(axis=0, keepdims=True))
