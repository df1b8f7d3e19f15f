"""open_dataset and save on real NetCDF and Zarr files written by the tests."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
import zarr

import oceanflow
from oceanflow.io import open_dataset, save


def field(calendar="standard", nt=60, start="2000-01-01"):
    rng = np.random.default_rng(1)
    times = xr.date_range(start, periods=nt, freq="D", calendar=calendar, use_cftime=calendar != "standard")
    return xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), rng.normal(size=(nt, 6, 8)).astype("f4"), {"units": "degC"}),
            "sss": (("time", "lat", "lon"), rng.normal(size=(nt, 6, 8))),
        },
        coords={"time": times, "lat": np.linspace(-5, 5, 6), "lon": np.linspace(0, 7, 8)},
        attrs={"title": "test field"},
    )


def write_nc(ds, path, chunks=(1, 6, 8)):
    encoding = {name: {"chunksizes": chunks, "zlib": True} for name in ds.data_vars}
    ds.to_netcdf(path, encoding=encoding)
    return path


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize("chunks", [(1, 6, 8), (7, 3, 8), (60, 6, 4)])
def test_netcdf_matches_xarray_and_keeps_storage_chunks_whole(tmp_path, chunks):
    path = write_nc(field(), tmp_path / "f.nc", chunks)
    ds = open_dataset(path)
    reference = xr.open_dataset(path)
    xr.testing.assert_identical(ds.load(), reference.load())
    for var in ("sst", "sss"):
        for size, storage, dim_chunks in zip(ds[var].shape, chunks, open_dataset(path)[var].chunks, strict=True):
            assert all(c % storage == 0 or c == size or c == dim_chunks[-1] for c in dim_chunks)


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "julian", "all_leap", "proleptic_gregorian"])
def test_multi_file_glob_combines_along_time_with_cftime(tmp_path, calendar):
    ds = field(calendar, nt=90)
    for i, part in enumerate((slice(0, 30), slice(30, 60), slice(60, 90))):
        write_nc(ds.isel(time=part), tmp_path / f"sst_{2 - i}.nc")  # names out of time order
    opened = open_dataset(tmp_path / "sst_*.nc")
    assert opened.sst.chunks is not None
    xr.testing.assert_equal(opened.drop_vars("time").load(), ds.drop_vars("time"))
    assert opened.time.dt.calendar == calendar  # cftime dates, or datetime64 where numpy is exact
    np.testing.assert_array_equal(opened.time.dt.dayofyear, ds.time.dt.dayofyear)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_v2_and_v3(tmp_path, zarr_format):
    ds = field()
    path = tmp_path / "f.zarr"
    ds.to_zarr(path, zarr_format=zarr_format, encoding={"sst": {"chunks": (10, 3, 8)}})
    opened = open_dataset(path)
    assert zarr.open_group(path, mode="r").metadata.zarr_format == zarr_format
    xr.testing.assert_equal(opened.load(), ds)
    assert all(c % 10 == 0 or c == 60 for c in open_dataset(path).sst.chunks[0][:-1])


def test_chunks_none_is_lazy_without_dask_and_dict_is_honoured(tmp_path):
    path = write_nc(field(), tmp_path / "f.nc")
    assert open_dataset(path, chunks=None).sst.chunks is None
    assert open_dataset(path, chunks={"time": 20}).sst.chunks[0] == (20, 20, 20)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda d: d / "missing.nc", FileNotFoundError, "no such file"),
        (lambda d: d / "nothing_*.nc", FileNotFoundError, "no file matches"),
        (lambda d: (d / "bad.nc").write_bytes(b"\x89HDF garbage" * 10) and d / "bad.nc", OSError, "cannot read"),
        (lambda d: (d / "plain").mkdir() or d / "plain", ValueError, "not a Zarr store"),
    ],
)
def test_bad_input_names_the_file_and_the_fix(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        open_dataset(make(tmp_path))


def test_files_with_different_variables_are_refused(tmp_path):
    ds = field()
    write_nc(ds.isel(time=slice(0, 30)), tmp_path / "a.nc")
    write_nc(ds.isel(time=slice(30, 60)).drop_vars("sss"), tmp_path / "b.nc")
    with pytest.raises(ValueError, match="b.nc has variables"):
        open_dataset([tmp_path / "a.nc", tmp_path / "b.nc"])
    shifted = ds.isel(time=slice(30, 60)).assign_coords(lat=ds.lat + 1)
    write_nc(shifted, tmp_path / "c.nc")
    with pytest.raises(ValueError, match="coordinate 'lat'"):
        open_dataset([tmp_path / "a.nc", tmp_path / "c.nc"])
    with pytest.raises(ValueError, match="overlap"):
        open_dataset([tmp_path / "a.nc", tmp_path / "a.nc"])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_corrupted_zarr_chunk_names_the_file_the_variable_and_the_chunk(tmp_path, zarr_format):
    path = tmp_path / "f.zarr"
    field().to_zarr(path, zarr_format=zarr_format, encoding={"sst": {"chunks": (10, 3, 8)}})
    damaged = zarr.open_group(path, mode="r")["sst"]
    key = "c/2/1/0" if zarr_format == 3 else "2.1.0"
    (path / "sst" / key).write_bytes(b"not a compressed chunk")
    assert damaged.chunks == (10, 3, 8)
    ds = open_dataset(path, chunks={"time": 30})
    with pytest.raises(OSError) as caught:
        ds.sst.mean().compute()
    message = str(caught.value)
    assert f"variable 'sst' of {path}" in message
    assert "time 20:30, lat 3:6, lon 0:8 (storage chunk (2, 1, 0))" in message
    assert "drop_variables=['sst']" in message
    np.testing.assert_allclose(ds.sss.mean().compute(), field().sss.mean())  # the other variable still reads


@pytest.mark.parametrize(
    "key",
    [(-35, slice(-3, None)), (slice(-40, -30), Ellipsis, slice(-8, 3)), (np.int64(-35), slice(-3, None, 2), -8)],
    ids=["int", "ellipsis", "step"],
)
def test_a_read_error_names_the_chunk_of_negative_indices_as_numpy_counts_them(tmp_path, key):
    from oceanflow.io.read import GuardedArray

    path = tmp_path / "f.zarr"
    field().to_zarr(path, zarr_format=2, encoding={"sst": {"chunks": (10, 3, 8)}})
    (path / "sst" / "2.1.0").write_bytes(b"not a compressed chunk")
    with xr.open_dataset(path, engine="zarr") as ds:
        positions = np.arange(ds.sst.size).reshape(ds.sst.shape)[key].ravel()  # oracle: NumPy's reading
        index = np.stack(np.unravel_index(positions, ds.sst.shape), axis=1) // (10, 3, 8)
        touched = {tuple(int(i) for i in row) for row in index}
        with pytest.raises(OSError) as caught:
            GuardedArray(ds.sst.variable, path, "sst")[key]
    assert (2, 1, 0) in touched
    assert "chunk time 20:30, lat 3:6, lon 0:8 (storage chunk (2, 1, 0))" in str(caught.value)


def test_a_glob_where_one_file_lacks_time_names_that_file(tmp_path):
    ds = field()
    write_nc(ds.isel(time=slice(0, 30)), tmp_path / "sst_a.nc")
    write_nc(ds.isel(time=slice(30, 60)), tmp_path / "sst_b.nc")
    ds.isel(time=0, drop=True).to_netcdf(tmp_path / "sst_mask.nc")
    with pytest.raises(ValueError, match=r"sst_mask.nc has no 'time' dimension \(its dimensions: lat, lon\)"):
        open_dataset(tmp_path / "sst_*.nc")


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_roundtrip_with_history_and_aligned_chunks(tmp_path, suffix):
    ds = field().chunk({"time": 20, "lat": 3})
    path = tmp_path / f"out{suffix}"
    save(ds, path, operation="climatology(sst)")
    back = xr.open_dataset(path, engine="zarr" if suffix == ".zarr" else "netcdf4")
    xr.testing.assert_equal(back.load(), ds.compute())
    assert back.attrs["history"].endswith(f"oceanflow {oceanflow.__version__} climatology(sst)")
    assert back.attrs["title"] == "test field"
    if suffix == ".zarr":
        assert zarr.open_group(path, mode="r")["sst"].chunks == (20, 3, 8)
    else:
        enc = back.sst.encoding
        assert enc["chunksizes"] == (20, 3, 8) and enc["complevel"] == 1 and enc["shuffle"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries left


def test_history_is_appended(tmp_path):
    ds = field().assign_attrs(history="made by a model")
    save(ds, tmp_path / "a.zarr")
    lines = xr.open_dataset(tmp_path / "a.zarr", engine="zarr").attrs["history"].splitlines()
    assert lines[0] == "made by a model" and "oceanflow" in lines[1]


def test_existing_output_needs_overwrite_and_unknown_format_is_refused(tmp_path):
    save(field(), tmp_path / "a.zarr")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(field(), tmp_path / "a.zarr")
    save(field().isel(time=slice(0, 5)), tmp_path / "a.zarr", overwrite=True)
    assert xr.open_dataset(tmp_path / "a.zarr", engine="zarr").sizes["time"] == 5
    with pytest.raises(ValueError, match=r"\.zarr or \.nc"):
        save(field(), tmp_path / "a.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(field(), tmp_path / "no" / "a.zarr")


def _explode(block, block_info=None):
    """Fail on the third chunk at once; the others finish late, after the failure."""
    if block_info[0]["chunk-location"][0] == 2:
        raise RuntimeError("disk full")
    time.sleep(0.3)
    return block


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_an_exception_mid_write_leaves_no_output_and_the_old_one_untouched(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    old = field().isel(time=slice(0, 3))
    save(old, path)
    bad = field().chunk({"time": 10})
    bad["sst"] = bad.sst.copy(data=dsa.map_blocks(_explode, bad.sst.data, dtype="f4"))
    with pytest.raises(RuntimeError, match="disk full"):
        save(bad, path, overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        save(bad, tmp_path / f"new{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"out{suffix}"]
    engine = "zarr" if suffix == ".zarr" else "netcdf4"
    xr.testing.assert_equal(xr.open_dataset(path, engine=engine).load(), old)


def test_a_failed_write_on_a_cluster_leaves_no_output(tmp_path):
    distributed = pytest.importorskip("distributed")
    bad = field().chunk({"time": 10})
    bad["sst"] = bad.sst.copy(data=dsa.map_blocks(_explode, bad.sst.data, dtype="f4"))
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        with pytest.raises(RuntimeError, match="disk full"):
            save(bad, tmp_path / "new.zarr", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_leaves_no_output(tmp_path):
    script = textwrap.dedent(
        f"""
        import time, numpy as np, dask.array as dsa, xarray as xr
        from oceanflow.io import save

        def slow(block):
            time.sleep(0.2)
            return block

        data = dsa.map_blocks(slow, dsa.zeros((400, 50, 50), chunks=(4, 50, 50)), dtype="f8")
        save(xr.Dataset({{"x": (("t", "y", "z"), data)}}), {str(tmp_path / "out.zarr")!r})
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not any(p.name.startswith(".out.zarr") for p in tmp_path.iterdir()):
        assert time.time() < deadline and writer.poll() is None, "writer never started writing"
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert not (tmp_path / "out.zarr").exists()
    save(field(), tmp_path / "out.zarr")  # the next writer succeeds and clears the dead one's temporary
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_compute_false_returns_a_delayed_write(tmp_path):
    path = tmp_path / "lazy.nc"
    delayed = save(field().chunk({"time": 30}), path, compute=False)
    assert not path.exists()
    dask.compute(delayed)
    xr.testing.assert_equal(xr.open_dataset(path).load(), field())


# ------------------------------------------------------------------ saves on several threads at once


def _noting_pool(block, seen):
    seen.append(dask.config.get("pool", None))
    return block


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_leaves_dask_config_alone_while_it_computes(tmp_path, suffix):
    """The write's own pool goes to its compute only: another thread's save must not find it in dask's config."""
    seen: list = []
    ds = field().chunk({"time": 10})
    ds["sst"] = ds.sst.copy(data=dsa.map_blocks(_noting_pool, ds.sst.data, seen, dtype="f4"))
    save(ds, tmp_path / f"out{suffix}")
    assert seen and all(pool is None for pool in seen)
    xr.testing.assert_equal(xr.open_dataset(tmp_path / f"out{suffix}").load(), field())


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_two_saves_at_once_on_two_threads_both_finish(tmp_path, suffix):
    """Each save computes on its own pool: before, one save used the other's pool (taken from dask's
    process-wide config) after that one had shut it down ("cannot schedule new futures after shutdown"); and
    netCDF-C, which is not thread-safe, crashed the process (segmentation fault) when both defined a file at once."""
    import threading

    ds = field().chunk({"time": 1})  # many small tasks, so that the two saves overlap
    rounds, errors = 6, []
    start = threading.Barrier(2, timeout=120)

    def saves(k):
        try:
            for i in range(rounds):
                start.wait()
                save(ds, tmp_path / f"out{k}-{i}{suffix}", progress=False)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
            start.abort()

    threads = [threading.Thread(target=saves, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [e for e in errors if not isinstance(e, threading.BrokenBarrierError)], errors
    for k in range(2):
        for i in range(rounds):
            xr.testing.assert_equal(xr.open_dataset(tmp_path / f"out{k}-{i}{suffix}").load(), field())


def _noting_thread(block, names):
    import threading

    names.append(threading.current_thread().name)
    return block


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_every_write_task_runs_on_the_saves_own_pool(tmp_path, suffix, monkeypatch):
    """Oracle: the names of the threads the tasks run on, those of the save's pool given a prefix of their own
    (before, NetCDF's compute could ignore the pool and run on dask's default one, unnoticed)."""
    import contextlib

    from dask import threaded

    from oceanflow.io import write

    class Named(threaded.ContextAwareThreadPoolExecutor):
        def __init__(self, max_workers=None, **kwargs):
            super().__init__(max_workers, thread_name_prefix="save-pool-under-test")

    joined, made = write._joined_threads, []

    @contextlib.contextmanager
    def naming(*args):
        with contextlib.ExitStack() as stack:
            with monkeypatch.context() as patch:  # only while the save's pool is made: dask's own keeps its names
                patch.setattr(threaded, "ContextAwareThreadPoolExecutor", Named)
                made.append(stack.enter_context(joined(*args)))
            yield made[-1]

    monkeypatch.setattr(write, "_joined_threads", naming)
    names: list[str] = []
    ds = field().chunk({"time": 10})
    data = dsa.map_blocks(_noting_thread, ds.sst.data, names, dtype="f4", meta=np.array((), "f4"))
    ds["sst"] = ds.sst.copy(data=data)
    save(ds, tmp_path / f"out{suffix}")
    assert len(made) == 1 and isinstance(made[0].get("pool"), Named), made
    assert len(names) == ds.sst.data.npartitions, names
    assert all(name.startswith("save-pool-under-test") for name in names), names
    xr.testing.assert_equal(xr.open_dataset(tmp_path / f"out{suffix}").load(), field())
