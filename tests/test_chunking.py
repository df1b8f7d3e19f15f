"""Chunk heuristics on real files: storage chunks read back with netCDF4 and zarr."""

import math
import time as time_module

import dask.array as dsa
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

import oceanflow
from oceanflow.chunking import (
    chunked_for,
    default_target,
    explain_chunks,
    plan_chunks,
    storage_chunks,
    suggest_chunks,
)


def sst(nt=96, ny=20, nx=30):
    rng = np.random.default_rng(0)
    return xr.Dataset(
        {"sst": (("time", "lat", "lon"), rng.normal(size=(nt, ny, nx)).astype("f4"))},
        coords={"time": xr.date_range("2000-01-01", periods=nt, freq="D"), "lat": np.arange(ny), "lon": np.arange(nx)},
    )


def assert_never_splits(chunks, storage, sizes):
    for dim, size in chunks.items():
        assert size == sizes[dim] or size % storage[dim] == 0, (dim, size, storage[dim])


@pytest.mark.parametrize("storage", [(1, 20, 30), (24, 5, 7), (96, 20, 30), (10, 3, 30)])
def test_netcdf_storage_chunks_are_never_split(tmp_path, storage):
    path = tmp_path / "sst.nc"
    sst().to_netcdf(path, encoding={"sst": {"chunksizes": storage, "zlib": True}})
    with netCDF4.Dataset(path) as nc:
        oracle = dict(zip(("time", "lat", "lon"), nc["sst"].chunking(), strict=True))
    ds = xr.open_dataset(path, chunks={})
    assert storage_chunks(ds) == oracle
    for target in (4096, 50_000, 10**6):
        chunks = suggest_chunks(ds, target=target)
        assert_never_splits(chunks, oracle, ds.sizes)
        plan = plan_chunks(ds, target=target)
        assert plan.bytes_per_chunk <= max(target, 4 * math.prod(oracle.values()))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_storage_chunks_are_never_split_and_core_dims_kept_whole(tmp_path, zarr_format):
    path = tmp_path / "sst.zarr"
    sst().to_zarr(path, encoding={"sst": {"chunks": (24, 10, 15)}}, zarr_format=zarr_format, consolidated=False)
    oracle = dict(zip(("time", "lat", "lon"), zarr.open_group(path, mode="r")["sst"].chunks, strict=True))
    ds = xr.open_dataset(path, engine="zarr", chunks={})
    chunks = suggest_chunks(ds, core_dims="time", target=60_000)
    assert chunks["time"] == 96
    assert_never_splits(chunks, oracle, ds.sizes)


def test_grows_innermost_first_and_stops_at_the_target():
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), np.zeros((7300, 180, 360), "f4"))})
    chunks = suggest_chunks(ds, core_dims="time", target=32 * 2**20)
    assert chunks == {"time": 7300, "lat": 3, "lon": 360}
    assert 7300 * 3 * 360 * 4 <= 32 * 2**20 < 7300 * 4 * 360 * 4


def test_task_estimate_stays_under_the_cap_for_100_gb():
    shape = (20_000, 50, 180, 150)  # 108 GB of float32, never allocated
    data = xr.DataArray(np.broadcast_to(np.float32(0), shape), dims=("time", "depth", "lat", "lon"))
    data.encoding["preferred_chunks"] = {"time": 1, "depth": 1, "lat": 180, "lon": 150}
    for max_tasks in (100_000, 10_000):
        plan = plan_chunks(data, target=1 << 20, max_tasks=max_tasks)
        n_chunks = math.prod(math.ceil(data.sizes[d] / plan.chunks[d]) for d in data.dims)
        assert plan.n_chunks == n_chunks and 2 * n_chunks <= max_tasks
        assert "tasks" in explain_chunks(data, target=1 << 20, max_tasks=max_tasks)


def test_small_input_says_dask_is_not_worth_it():
    plan = plan_chunks(sst(5, 2, 3), target=1 << 20)
    assert not plan.use_dask and "not worth it" in plan.explain()
    assert plan_chunks(sst(), target=4096).use_dask


def test_default_target_from_memory_and_threads():
    assert default_target(memory_per_worker=256 * 2**20, threads_per_worker=2) == 16 * 2**20
    assert default_target(memory_per_worker=64 * 2**20, threads_per_worker=4) == 2 * 2**20
    assert default_target(memory_per_worker=2**40, threads_per_worker=1) == 32 * 2**20  # capped


def test_unknown_core_dim_is_refused():
    with pytest.raises(ValueError, match="core dimension"):
        suggest_chunks(sst(), core_dims="depth")


def test_data_on_disk_get_heuristic_chunks_and_the_same_results(tmp_path, monkeypatch):
    monkeypatch.setattr("oceanflow.chunking.default_target", lambda *args: 50_000)
    path = tmp_path / "sst.nc"
    sst().to_netcdf(path, encoding={"sst": {"chunksizes": (8, 20, 30)}})
    on_disk = xr.open_dataset(path).sst
    chunked = chunked_for(on_disk, operation="test")
    assert chunked.chunks is not None and all(c % 8 == 0 for c in chunked.chunks[0][:-1])
    assert chunked_for(on_disk.load()).chunks is None  # in memory: NumPy is faster
    assert chunked_for(xr.open_dataset(path).sst.isel(time=slice(0, 2))).chunks is None  # smaller than a chunk
    lazy = oceanflow.climatology(xr.open_dataset(path).sst, "month")
    assert lazy.chunks is not None
    with xr.set_options(use_flox=False):
        expected = sst().sst.groupby("time.month").mean()
    np.testing.assert_allclose(lazy.values, expected.values, rtol=1e-5, atol=1e-6)  # float32 means
    fit = oceanflow.polyfit(xr.open_dataset(path).sst, "time", 1)
    assert fit.polyfit_coefficients.chunks is not None


# ------------------------------------------------------------------ requests checked before work starts


@pytest.mark.parametrize(
    "chunks, error, message",
    [
        ({"time": 0}, ValueError, "chunk size 0 for dimension 'time' is not allowed: give a whole number from 1 to 96"),
        ({"time": -5}, ValueError, "chunk size -5 for dimension 'time' is not allowed"),
        ({"time": 2.5}, ValueError, "chunk size 2.5 for dimension 'time' is not a whole number"),
        ({"time": "big"}, ValueError, "chunk size 'big' for dimension 'time' is not a whole number"),
        ({"time": True}, ValueError, "is not a whole number"),
        ({"time": 500}, ValueError, r"larger than the dimension \(96\)"),
        ({"tme": 10}, ValueError, "chunks name 'tme', which the data do not have; its dimensions are 'time'"),
        (10, TypeError, "chunks must be 'auto', None or a dict"),
    ],
)
def test_bad_chunk_sizes_are_refused_with_the_fix(tmp_path, chunks, error, message):
    path = tmp_path / "sst.nc"
    sst().to_netcdf(path)
    with pytest.raises(error, match=message):
        oceanflow.open_dataset(path, chunks=chunks)


def test_good_chunk_sizes_are_honoured(tmp_path):
    path = tmp_path / "sst.nc"
    sst().to_netcdf(path)
    assert oceanflow.open_dataset(path, chunks={"time": -1, "lat": 7}).sst.chunks == ((96,), (7, 7, 6), (30,))
    assert oceanflow.open_dataset(path, chunks={"time": 96, "lon": None}).sst.chunks[0] == (96,)


@pytest.mark.parametrize("name", ["target", "memory_per_worker"])
@pytest.mark.parametrize("value", [0, -1, "0B", "-5MB", "lots", 1.5e-3])
def test_bad_byte_sizes_are_refused_not_read_as_the_default(name, value):
    for function in (suggest_chunks, explain_chunks, plan_chunks):
        with pytest.raises((ValueError, TypeError), match=f"{name}="):
            function(sst(), **{name: value})


def test_byte_sizes_may_be_strings_and_counts_must_be_positive():
    assert suggest_chunks(sst(), target="64kiB") == suggest_chunks(sst(), target=64 * 1024)
    for name in ("threads_per_worker", "max_tasks"):
        with pytest.raises(ValueError, match=f"{name} must be a positive whole number"):
            suggest_chunks(sst(), **{name: 0})


def daily(ny=40, nx=50, chunks=(30, 1, 5)):
    time = xr.date_range("2000-01-01", periods=730, freq="D")
    data = dsa.from_array(np.random.default_rng(0).random((730, ny, nx)), chunks=chunks)
    return xr.DataArray(data, dims=("time", "lat", "lon"), coords={"time": time}, name="sst")


def test_a_graph_above_max_tasks_is_refused_with_chunks_that_fit():
    sst_data = daily()  # 25 x 40 x 10 = 10,000 chunks
    with oceanflow.set_options(max_tasks=5_000):
        with pytest.raises(oceanflow.chunking.TooManyTasksError) as caught:
            oceanflow.climatology(sst_data)
        message = str(caught.value)
        assert "climatology would build a graph of about 20,000 tasks (10,000 chunks)" in message
        assert "limit of 5,000" in message and "set_options(max_tasks=20000)" in message
        suggested = eval(message.split(".chunk(")[1].split(")")[0])  # the dict the message proposes
        fitted = oceanflow.climatology(daily(chunks=tuple(suggested.values())))  # read in those chunks
        with pytest.raises(oceanflow.chunking.TooManyTasksError, match="polyval would build"):
            oceanflow.polyval(sst_data, [1.0, 2.0])
        with pytest.raises(oceanflow.chunking.TooManyTasksError, match="anomaly would build"):
            oceanflow.anomaly(sst_data, fitted)
    with xr.set_options(use_flox=False):
        np.testing.assert_allclose(fitted.values, sst_data.load().groupby("time.month").mean().values)


def test_a_million_chunks_are_refused_at_once_by_default():
    data = dsa.zeros((24, 1000, 1000), chunks=(24, 1, 1))
    time = xr.date_range("2000-01-01", periods=24, freq="MS")
    huge = xr.DataArray(data, dims=("time", "lat", "lon"), coords={"time": time})
    started = time_module.monotonic()
    with pytest.raises(oceanflow.chunking.TooManyTasksError, match=r"limit of 1,000,000") as caught:
        oceanflow.climatology(huge)
    assert time_module.monotonic() - started < 30  # refused before the graph is built
    assert "'lat': " in str(caught.value) and "'lon': " in str(caught.value)


def test_zero_length_dimension_gets_one_empty_chunk_as_dask(tmp_path):
    """A store with a zero-length dimension (an event table without events) opens:
    the dimension gets one empty chunk, as dask gives it, and the values are xarray's."""
    ds = xr.Dataset({"a": (("event", "y"), np.zeros((0, 3)))}, coords={"y": [1, 2, 3]})
    ds.to_zarr(tmp_path / "empty.zarr")
    plan = plan_chunks(ds.a)
    assert plan.chunks["event"] == 0 and plan.n_chunks == 1
    back = oceanflow.open_dataset(tmp_path / "empty.zarr")
    assert back.a.chunks[0] == dsa.zeros((0, 3)).chunks[0] == (0,)
    xr.testing.assert_identical(back.compute(), xr.open_zarr(tmp_path / "empty.zarr").compute())
