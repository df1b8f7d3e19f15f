"""NetCDF output compressed in the tasks (oceanflow.io.netcdf), against independent readers.

Oracles: xarray's own ``to_netcdf`` of the same Dataset and encoding (read
back raw, so every encoded byte and attribute is compared), both xarray
engines, and netCDF-C's ncdump, CDO and NCO from Debian, which decode every
chunk when they copy the file.
"""

import subprocess
import warnings
import zlib

import dask
import numpy as np
import pytest
import xarray as xr
from debian_tools import require

import oceanflow
from oceanflow.io import netcdf, save
from oceanflow.io.netcdf import MAP_READ_BYTES, codec_for, storage_chunks
from oceanflow.kernels.deflate import HUFFMAN, LZ, STORED


def dataset(calendar="noleap", nt=50, ny=7, nx=9, dtype="f4", chunks=None):
    """Daily random field with NaN and an odd shape (edge chunks are partial), a float64 and an int field."""
    rng = np.random.default_rng(3)
    times = xr.date_range("2001-01-01", periods=nt, freq="D", calendar=calendar, use_cftime=calendar != "standard")
    sst = rng.normal(15, 3, size=(nt, ny, nx)).astype(dtype)
    sst[rng.random(sst.shape) < 0.1] = np.nan
    ds = xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), sst, {"units": "degC", "standard_name": "sea_surface_temperature"}),
            "heat": (("time", "lat", "lon"), rng.normal(size=(nt, ny, nx)), {"units": "J m-2"}),
            "count": (("time", "lat", "lon"), rng.integers(0, 9, size=(nt, ny, nx)).astype("i4")),
            "mask": (("lat", "lon"), rng.random((ny, nx)) < 0.5),
        },
        coords={
            "time": times,
            "lat": ("lat", np.linspace(-60, 60, ny), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", np.linspace(0, 320, nx), {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"title": "test", "Conventions": "CF-1.8"},
    )
    return ds.chunk(chunks or {"time": 10, "lat": 4})


def xarray_to_netcdf(ds, path, **kwargs):
    """xarray's own ``to_netcdf`` (the oracle), its dask blocks written on the calling thread.

    With dask's threads, netCDF-C (through netCDF4-python 1.7 from PyPI, which releases the GIL)
    crashed the test process now and then (CI: a segfault inside xarray's ``__setitem__`` in this
    file, Unidata/netcdf4-python#1452); the oracle's bytes do not depend on the scheduler.
    oceanflow's own writer never calls netCDF-C from its tasks (h5py writes the chunks).
    """
    with dask.config.set(scheduler="synchronous"):
        ds.to_netcdf(path, **kwargs)


def raw(path, engine="netcdf4"):
    """A file as stored: no CF decoding, and the encoding keys that describe the bytes."""
    with xr.open_dataset(path, engine=engine, decode_cf=False, mask_and_scale=False) as ds:
        return ds.load()


# ------------------------------------------------------------------ the file against xarray's own


PACKED = {"sst": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 15.0, "_FillValue": -32767}}


@pytest.mark.parametrize(
    "calendar, encoding, unlimited",
    [
        ("noleap", {}, None),
        ("standard", {}, ["time"]),
        ("360_day", PACKED, ["time"]),
        ("noleap", {"heat": {"dtype": "float32", "_FillValue": -999.0}}, None),
    ],
    ids=["noleap", "datetime64-unlimited", "packed-int16-unlimited", "float64-to-float32-fill"],
)
@pytest.mark.parametrize("compression", ["deflate", "none"])
def test_same_bytes_and_attributes_as_xarray_to_netcdf(tmp_path, calendar, encoding, unlimited, compression):
    ds = dataset(calendar)
    ours, theirs = tmp_path / "ours.nc", tmp_path / "theirs.nc"
    netcdf.write_netcdf(ds, ours, encoding=encoding, compression=compression, unlimited_dims=unlimited)
    xarray_to_netcdf(ds, theirs, engine="netcdf4", encoding=encoding, unlimited_dims=unlimited)
    xr.testing.assert_identical(raw(ours), raw(theirs))  # encoded values, dtypes, attributes (times, fill, packing)
    xr.testing.assert_identical(xr.open_dataset(ours).load(), xr.open_dataset(theirs).load())
    xr.testing.assert_identical(xr.open_dataset(ours, engine="h5netcdf").load(), xr.open_dataset(theirs).load())
    with xr.open_dataset(ours) as back:
        assert back.encoding.get("unlimited_dims", set()) == set(unlimited or ())
        filters = back.sst.encoding
        assert filters["zlib"] is (compression == "deflate") and filters["shuffle"] is (compression == "deflate")


def test_edge_chunks_are_padded_with_the_fill_value(tmp_path):
    import h5py

    path = tmp_path / "f.nc"
    netcdf.write_netcdf(dataset(), path, encoding={"sst": {"chunksizes": (10, 4, 5)}})
    with h5py.File(path, "r") as h5:
        _mask, payload = h5["sst"].id.read_direct_chunk((40, 4, 5))  # lat 4..7 and lon 5..9 stick out
        assert h5["sst"].chunks == (10, 4, 5)
    shuffled = np.frombuffer(zlib.decompress(payload), np.uint8).reshape(4, -1)
    chunk = np.ascontiguousarray(shuffled.T).view("f4").reshape(10, 4, 5)
    assert np.isnan(chunk[:, 3:, :]).all() and np.isnan(chunk[:, :, 4:]).all()  # beyond lat=7, lon=9
    expected = dataset().sst.values[40:50, 4:7, 5:9]
    np.testing.assert_array_equal(chunk[:, :3, :4], expected)


def test_numpy_data_and_contiguous_variables_are_written_too(tmp_path, monkeypatch):
    monkeypatch.setattr(netcdf, "PARALLEL_BYTES", 1000)  # the in-memory sst goes through the parallel path
    ds = dataset().compute()
    encoding = {"heat": {"contiguous": True, "zlib": False}}
    netcdf.write_netcdf(ds.chunk({"time": 25}).assign(sst=ds.sst), tmp_path / "f.nc", encoding=encoding)
    back = xr.open_dataset(tmp_path / "f.nc")
    xr.testing.assert_identical(back.load(), ds)
    assert back.sst.encoding["chunksizes"] is not None and back.heat.encoding["contiguous"]


# ------------------------------------------------------------------ the tools of the trade


def test_ncdump_cdo_and_nco_read_every_chunk(tmp_path):
    ncdump, cdo, ncks = require("ncdump", "cdo", "ncks")
    ds = dataset("standard", nt=40).drop_vars("mask")
    path = tmp_path / "f.nc"
    save(ds, path, compression="deflate", level=1)
    header = subprocess.run([ncdump, "-hs", path], capture_output=True, text=True, check=True).stdout
    assert "time = UNLIMITED" not in header and "time = 40" in header
    assert 'sst:_Shuffle = "true"' in header and "sst:_DeflateLevel = 1" in header
    chunks = storage_chunks((40, 7, 9), ds.sst.dims, 4, ds.sst.chunks)
    assert f"sst:_ChunkSizes = {', '.join(map(str, chunks))}" in header
    info = subprocess.run([cdo, "sinfon", path], capture_output=True, text=True, check=True).stdout
    assert "F32z : sst" in info and "40 steps" in info
    by_cdo, by_nco = tmp_path / "cdo.nc", tmp_path / "nco.nc"
    subprocess.run([cdo, "-s", "-f", "nc4", "copy", path, by_cdo], check=True)  # decodes each chunk
    subprocess.run([ncks, "-O", "-4", path, by_nco], check=True)
    expected = ds.compute()
    for copy in (by_cdo, by_nco):
        back = xr.open_dataset(copy).load()
        for name in ("sst", "heat", "count"):
            np.testing.assert_array_equal(back[name].values, expected[name].values, err_msg=f"{copy.name} {name}")


# ------------------------------------------------------------------ storage chunks


def test_storage_chunks_serve_maps_and_time_series():
    chunks = storage_chunks((7300, 180, 360), ("time", "lat", "lon"), 4)
    assert chunks == (32, 45, 90)
    assert chunks[0] * 180 * 360 * 4 <= MAP_READ_BYTES  # a map costs at most 8 MiB
    assert 0.45 < np.prod(chunks) * 4 / 2**20 <= 0.55  # about 512 KiB per chunk
    assert chunks[1] * chunks[2] / (180 * 360) <= 1 / 16  # a time series costs 1/16 of the file
    # aligned with dask blocks: lengths divide them, or are the blocks' own when wanted longer
    assert storage_chunks((7300, 180, 360), ("time", "lat", "lon"), 4, ((120,) * 60 + (100,), (180,), (360,)))[0] == 30
    assert storage_chunks((60, 6, 8), ("time", "lat", "lon"), 4, ((20, 20, 20), (3, 3), (8,))) == (20, 3, 8)
    # no time dimension: about 512 KiB cut evenly; never longer than a dimension
    assert storage_chunks((2000, 3000), ("y", "x"), 8) == (200, 300)  # 10 x 10 pieces of 480 kB
    assert storage_chunks((5, 3), ("y", "x"), 8) == (5, 3)


def test_blocks_read_from_maps_hold_whole_storage_chunks():
    """A file stored a map per chunk, opened with oceanflow's chunks, is saved without a chunk straddling
    two blocks (straddling chunks held a block more in memory, and more of them the longer the file)."""
    from oceanflow.chunking import suggest_chunks

    ds = xr.Dataset({"sst": (("time", "lat", "lon"), np.zeros((1825, 18, 36), "f4"))})
    ds.sst.encoding["preferred_chunks"] = {"time": 1, "lat": 18, "lon": 36}
    length = suggest_chunks(ds, target=129 * 18 * 36 * 4)["time"]  # 32 MiB holds 129 maps of 180 x 360
    assert length == 128
    blocks = (length,) * (1825 // length) + (1825 % length,)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(netcdf, "MAP_READ_BYTES", 18 * 36 * 4 * 32)  # 32 maps per chunk, as 8 MiB of 180 x 360
        chunk = storage_chunks((1825, 18, 36), ("time", "lat", "lon"), 4, (blocks, (18,), (36,)))[0]
    assert chunk == 32 and length % chunk == 0


def test_blocks_without_a_close_divisor_are_written_without_a_rechunk(tmp_path):
    ds = dataset(nt=73 * 3, ny=40, nx=60).compute().chunk({"time": 73, "lat": -1})  # 73 is prime: divisors 1 and 73
    monkey = {"MAP_READ_BYTES": 40 * 60 * 4 * 16}  # wants 16 time steps per chunk
    with pytest.MonkeyPatch.context() as mp:
        for key, value in monkey.items():
            mp.setattr(netcdf, key, value)
        writes = netcdf.write_netcdf(ds, tmp_path / "f.nc", compute=False)
        layers = writes.dask.layers
        assert not [name for name in layers if "rechunk" in name]  # chunks straddle the blocks instead
        writes.compute()
    back = xr.open_dataset(tmp_path / "f.nc")
    assert back.sst.encoding["chunksizes"][0] == 16
    xr.testing.assert_identical(back.load(), ds.compute())


@pytest.mark.parametrize("compression", ["deflate", "none"])
@pytest.mark.parametrize("chunksizes", [(16, 7, 4), (50, 9, 9), (120, 40, 2)])
def test_storage_chunks_spanning_several_blocks_in_every_dimension(tmp_path, compression, chunksizes):
    ds = dataset(nt=219, ny=40, nx=9).chunk({"time": (73, 73, 40, 33), "lat": (15, 15, 10), "lon": (4, 5)})
    encoding = {"sst": {"chunksizes": chunksizes}, "heat": {"chunksizes": chunksizes}}
    netcdf.write_netcdf(ds, tmp_path / "f.nc", encoding=encoding, compression=compression)
    back = xr.open_dataset(tmp_path / "f.nc")
    assert back.sst.encoding["chunksizes"] == chunksizes
    xr.testing.assert_identical(back.load(), ds.compute())
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "f.nc", engine="h5netcdf").load(), ds.compute())


def _counted(calls):
    """A block function that records each call (the blocks' shapes), for the number of times a task runs."""

    def twice(block):
        calls.append(block.shape)
        return block * 2

    return twice


@pytest.mark.parametrize("compute", [True, False])
def test_a_task_that_two_variables_share_runs_once(tmp_path, compute):
    """Variables computed from the same tasks (a kernel's outputs, or one input read for two results) are
    written with each of those tasks run once (review finding: each variable's writes optimised apart
    fused the shared task into each, computing it once per variable), as xarray's to_netcdf does."""
    calls: list = []
    source = dataset(nt=40).sst.data
    shared = source.map_blocks(_counted(calls), meta=np.array((), source.dtype))
    ds = xr.Dataset({"a": (("time", "lat", "lon"), shared + 1), "b": (("time", "lat", "lon"), shared - 1)})
    written = netcdf.write_netcdf(ds, tmp_path / "f.nc", compute=compute)
    if not compute:
        written.compute()
    assert len(calls) == source.npartitions
    with xr.open_dataset(tmp_path / "f.nc") as back:
        np.testing.assert_array_equal(back.a.values, source.compute() * 2 + 1)
        np.testing.assert_array_equal(back.b.values, source.compute() * 2 - 1)


def test_tails_taken_from_the_next_block_are_copies(tmp_path):
    """A view of the next block would keep all of it in memory until the write that needs its first steps:
    the peak RSS of an anomaly saved from NetCDF grew with the years (861 MiB at 20 years, 717 MiB at 5)."""
    import dask

    source = dataset(nt=60).sst.chunk({"time": 25}).data  # chunks of 10 steps straddle blocks 25 and 50
    target = netcdf._Target(str(tmp_path / "f.nc"), "sst", codec_for("none"), (10, 7, 9), source.shape, "f4", 0)
    graph = dict(netcdf._write_array(source, target).__dask_graph__())
    pieces = [key for key in graph if isinstance(key, tuple) and "piece" in key[0]]
    assert pieces
    for key in pieces:
        (block_key,) = dask.core.get_dependencies(graph, key)
        piece, block = dask.get(graph, [key, block_key])
        assert piece.size and not np.shares_memory(piece, block)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"compression": "lzma"}, ValueError, "unknown compression 'lzma': choose one of none, deflate, zstd"),
        ({"compression": "deflate", "level": 12}, ValueError, "level 12 is not valid for deflate: .* 1 to 9"),
        ({"level": 2.5}, ValueError, "level 2.5 is not valid"),
        ({"encoding": {"sst": {"chunksizes": (10, 8, 3)}}}, ValueError, "length 8 of 'sst' along 'lat' is larger"),
        ({"encoding": {"sst": {"chunksizes": (10, 3)}}}, ValueError, "has 2 lengths but the variable has 3"),
        ({"encoding": {"sst": {"fletcher32": True}}}, ValueError, "filters .* does not reproduce"),
    ],
)
def test_bad_codecs_levels_and_chunks_are_refused_and_nothing_is_left(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        save(dataset(), tmp_path / "f.nc", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_encoding_of_a_missing_variable_is_refused(tmp_path):
    with pytest.raises(ValueError, match="encoding given for 'sss', which the output does not have"):
        netcdf.write_netcdf(dataset(), tmp_path / "f.nc", encoding={"sss": {"zlib": False}})
    assert list(tmp_path.iterdir()) == []


def test_zstd_warns_and_names_the_plugin(tmp_path):
    with pytest.warns(UserWarning, match="HDF5 zstd filter plugin .*32015"):
        save(dataset(), tmp_path / "f.nc", compression="zstd")
    back = xr.open_dataset(tmp_path / "f.nc")  # netCDF4's wheels carry the plugin
    assert back.sst.encoding["zstd"] and back.sst.encoding["complevel"] == 3
    xr.testing.assert_identical(back.drop_attrs().load(), dataset().compute().drop_attrs())


def test_compression_is_for_netcdf_only(tmp_path):
    with pytest.raises(ValueError, match="for Zarr pass encoding="):
        save(dataset(), tmp_path / "f.zarr", compression="none")


@pytest.mark.parametrize("level", [1, 4])
def test_deflate_levels_match_zlib(level):
    chunk = dataset().sst.values[:10]
    payload = codec_for("deflate", level).compress(chunk)
    shuffled = np.frombuffer(zlib.decompress(payload), np.uint8).reshape(4, -1).T
    np.testing.assert_array_equal(np.ascontiguousarray(shuffled).view("f4").reshape(chunk.shape), chunk)


@pytest.mark.parametrize("dtype", ["i2", "f4", "f8"])
def test_deflate_with_stored_byte_planes_is_one_zlib_stream(dtype):
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    rng = np.random.default_rng(5)
    noisy = rng.normal(size=(32, 45, 90)).astype(dtype)  # low mantissa bytes random: stored, the rest deflated
    noisy[:, :10] = 7  # a constant corner: every plane compresses somewhat
    for chunk in (noisy, np.zeros_like(noisy), rng.integers(0, 255, noisy.nbytes, np.uint8).view(dtype)):
        payload = codec_for("deflate", 1).compress(chunk)
        shuffled = np.frombuffer(zlib.decompress(payload), np.uint8).reshape(chunk.itemsize, -1).T  # checks Adler-32
        np.testing.assert_array_equal(np.ascontiguousarray(shuffled).view(dtype).reshape(chunk.shape), chunk)
        whole = isal_zlib.compress(netcdf._shuffled(chunk), 1)  # the chunk deflated in one piece, as before
        assert len(payload) <= 1.01 * len(whole) + 16  # the sync flushes and the final stored block


@pytest.mark.parametrize("dtype", ["i2", "i4"])
def test_deflate_compresses_integer_ramps(dtype):
    # The low byte plane of a counter cycles 0..255: no runs, a flat histogram, yet deflate shrinks it ~100x.
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    chunk = (np.arange(32 * 180 * 360) % (30000 if dtype == "i2" else 1 << 31)).astype(dtype).reshape(32, 180, 360)
    payload = codec_for("deflate", 1).compress(chunk)
    np.testing.assert_array_equal(np.frombuffer(zlib.decompress(payload), np.uint8), netcdf._shuffled(chunk))
    whole = isal_zlib.compress(netcdf._shuffled(chunk), 1)
    assert len(payload) <= 1.05 * len(whole) + 16, (len(payload), len(whole))


@pytest.mark.parametrize("position", range(8))
def test_a_ramp_plane_among_random_ones_is_found_at_any_position(position):
    # 8-byte words of random bytes but one plane that counts 0..255: that plane alone shrinks ~100x under deflate,
    # whichever of the 8 planes it is (review of ee2bfdc: the trial missed it at odd positions)
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    n = 8 * 90 * 180
    words = np.random.default_rng(0).integers(0, 256, (n, 8), dtype=np.uint8)
    words[:, position] = np.arange(n) % 256
    chunk = words.view("i8").reshape(8, 90, 180)
    payload = codec_for("deflate", 1).compress(chunk)
    assert zlib.decompress(payload) == netcdf._shuffled(chunk).tobytes()
    whole = isal_zlib.compress(netcdf._shuffled(chunk), 1)
    assert len(payload) <= 1.01 * len(whole) + 16, (len(payload), len(whole))


def test_incompressible_planes_stored_and_read_by_every_tool(tmp_path, monkeypatch):
    ncdump, cdo, ncks = require("ncdump", "cdo", "ncks")
    seen = []
    judged = netcdf._segment_kinds

    def recorded(flat, bounds):
        kinds = judged(flat, bounds)
        seen.extend(kinds)
        return kinds

    monkeypatch.setattr(netcdf, "_segment_kinds", recorded)
    rng = np.random.default_rng(7)
    times = xr.date_range("2001-01-01", periods=64, freq="D", calendar="noleap", use_cftime=True)
    noise = rng.normal(0, 1, size=(64, 90, 180)).astype("f4")
    noise[:, :20] = np.nan  # land
    ds = xr.Dataset({"anom": (("time", "lat", "lon"), noise, {"units": "K"})}, coords={"time": times})
    path = tmp_path / "f.nc"
    save(ds.chunk({"time": 32}), path)  # default: deflate 1 + shuffle
    assert set(seen) == {STORED, LZ, HUFFMAN}  # every kind of segment in the file
    expected = ds.anom.values
    for engine in ("netcdf4", "h5netcdf"):
        np.testing.assert_array_equal(xr.open_dataset(path, engine=engine).anom.values, expected, err_msg=engine)
    header = subprocess.run([ncdump, "-hs", path], capture_output=True, text=True, check=True).stdout
    assert 'anom:_Shuffle = "true"' in header and "anom:_DeflateLevel = 1" in header
    by_cdo, by_nco = tmp_path / "cdo.nc", tmp_path / "nco.nc"
    subprocess.run([cdo, "-s", "-f", "nc4", "copy", path, by_cdo], check=True)
    subprocess.run([ncks, "-O", "-4", path, by_nco], check=True)
    for copy in (by_cdo, by_nco):
        np.testing.assert_array_equal(xr.open_dataset(copy).anom.values, expected, err_msg=copy.name)


@pytest.mark.parametrize("dtype", ["i2", "f4", "f8", "i8"])
def test_shuffle_matches_numpy_byte_transpose_on_strided_chunks(dtype):
    block = np.random.default_rng(0).normal(size=(12, 9, 11)).astype(dtype)
    chunk = block[2:7, 1:8, 3:10]  # a strided view, as a storage chunk cut from a dask block
    expected = np.ascontiguousarray(
        np.moveaxis(np.ascontiguousarray(chunk).view(np.uint8).reshape(-1, chunk.itemsize), 1, 0)
    )
    for reuse in (False, True):
        np.testing.assert_array_equal(netcdf._shuffled(chunk, reuse).reshape(-1), expected.reshape(-1))


# ------------------------------------------------------------------ a cluster


def test_two_workers_compress_and_write_without_the_client(tmp_path):
    distributed = pytest.importorskip("distributed")
    ds = dataset(nt=200, ny=30, nx=40).chunk({"time": 20, "lat": -1})
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as stream,
    ):
        save(ds, tmp_path / "f.nc", progress=False)
    writers = [t for t in stream.data if str(t["key"][0]).startswith("oceanflow-write-netcdf-sst-")]
    assert len(writers) == 10 and len({t["worker"] for t in writers}) == 2  # both workers wrote
    xr.testing.assert_identical(xr.open_dataset(tmp_path / "f.nc").drop_attrs().load(), ds.compute().drop_attrs())


# ------------------------------------------------------------------ command line


def test_cli_compression_and_level(tmp_path):
    import os
    import sys

    source = tmp_path / "in.nc"
    xarray_to_netcdf(dataset(nt=400).drop_vars(["mask", "heat", "count"]), source)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for args, expected in ([["--compression", "none"], (False, None)], [["--level", "4"], (True, 4)]):
        out = tmp_path / f"anom{args[-1]}.nc"
        command = [sys.executable, "-m", "oceanflow", "anomaly", str(source), "-o", str(out), "-q", *args]
        subprocess.run(command, check=True, env=env, capture_output=True)
        enc = xr.open_dataset(out).sst.encoding
        assert (enc["zlib"], enc["complevel"] if enc["zlib"] else None) == expected
    bad = [sys.executable, "-m", "oceanflow", "anomaly", str(source), "-o", str(tmp_path / "x.nc"), "--level", "10"]
    run = subprocess.run(bad, env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "level 10 is not valid for deflate" in run.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = oceanflow.anomaly(oceanflow.open_dataset(source).sst)
    xr.testing.assert_allclose(xr.open_dataset(tmp_path / "anom4.nc").sst, expected.compute())


def test_failed_save_keeps_the_block_pool_until_leftover_tasks_are_joined(tmp_path, monkeypatch):
    import contextlib

    import dask.array as da

    from oceanflow import _memory
    from oceanflow.io import write

    joined = write._joined_threads
    writers_when_joined = []

    @contextlib.contextmanager
    def recording(*args):
        try:
            with joined(*args) as pool:
                yield pool
        finally:  # leftover tasks joined: the save must still count as a writer, its pool not emptied yet
            writers_when_joined.append(_memory._writers[0])

    def fail(block):
        raise RuntimeError("a task failed")

    monkeypatch.setattr(write, "_joined_threads", recording)
    ds = dataset()
    ds["sst"] = ds.sst.copy(data=da.map_blocks(fail, ds.sst.data, dtype=ds.sst.dtype))
    with pytest.raises(RuntimeError, match="a task failed"):
        save(ds, tmp_path / "f.nc")
    assert writers_when_joined == [1]
    assert _memory._writers[0] == 0 and _memory._POOL == []
