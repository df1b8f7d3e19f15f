"""mhw.save on oceanflow.save's pipeline: on the same failure it behaves as oceanflow.save does
(the oracle), on real files: a full disk (a small tmpfs), a temporary removed while the write
runs, and the memory settings its tasks run under."""

import errno
import glob
import os
import shutil
import warnings

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from test_io_atomic import open_descriptors, small_tmpfs
from test_mhw import red_sst

import oceanflow
from oceanflow import _memory, mhw
from oceanflow.mhw import _engine


def _sst():
    return red_sst(seed=5, years=6, shape=(8, 10), dtype="float32").chunk({"time": 200, "y": 4})


def _detected(sst):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        return mhw.detect(sst).compute()


def _mhw_save(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        return mhw.save(*args, **kwargs)


def _failure(call):
    """(exception type, errno, message with the directory's name cut) of ``call()``."""
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_on_a_full_disk_says_so_and_frees_every_temporary_as_oceanflow_save_does(tmp_path, suffix):
    """The detection on a full disk: mhw.save raises oceanflow.save's OSError(ENOSPC) naming the
    path, and leaves the disk as free as before, twice in a row (nothing kept open); with only the
    event table on the full disk, its path is the one named and the detection is not written either."""
    sst = _sst()
    found = _detected(sst).chunk({"y": 4})  # (in memory, a failed NetCDF write left HDF5 refusing the next file)
    with small_tmpfs(tmp_path / "small", size="256k") as disk:
        free = os.statvfs(disk).f_bavail
        oracle = _failure(lambda: oceanflow.save(found, disk / f"oracle{suffix}"))
        assert isinstance(oracle, OSError) and oracle.errno == errno.ENOSPC, oracle
        assert "no space left on device while writing" in str(oracle) and str(disk / f"oracle{suffix}") in str(oracle)
        assert os.listdir(disk) == [] and os.statvfs(disk).f_bavail == free
        for attempt in range(2):
            err = _failure(lambda: _mhw_save(sst, disk / f"det{suffix}", summary=disk / f"annual{suffix}"))
            assert type(err) is type(oracle) and err.errno == oracle.errno, (attempt, err)
            assert str(oracle).split(" while writing ")[0] in str(err) and str(disk / f"det{suffix}") in str(err)
            assert "the partial output was removed" in str(err)
            assert os.listdir(disk) == [] and os.statvfs(disk).f_bavail == free, attempt
            assert open_descriptors(disk) == []
        elsewhere = tmp_path / f"det{suffix}"
        err = _failure(lambda: _mhw_save(sst, elsewhere, events=disk / f"events{suffix}", summary=disk / "a.zarr"))
        assert isinstance(err, OSError) and err.errno == errno.ENOSPC and str(disk) in str(err), err
        assert os.listdir(disk) == [] and os.statvfs(disk).f_bavail == free
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small"]


def _removing_the_temporary(directory, name):
    """A block function that removes the temporary of ``directory/name`` (as a later save of the
    same path does) when it runs for the second time, before that block's chunks are written."""
    calls = []

    def remove(block):
        calls.append(1)
        if len(calls) == 2:
            (tmp,) = glob.glob(str(directory / f".{name}.oceanflow-tmp-*"))
            shutil.rmtree(tmp)
        return block

    return remove


def test_save_refuses_a_temporary_removed_while_it_was_written_as_oceanflow_save_does(tmp_path, monkeypatch):
    """The detection's temporary removed mid-write (the later blocks' chunks recreate parts of it):
    mhw.save raises oceanflow.save's FileNotFoundError and writes none of its outputs, rather than
    committing a store without its metadata."""
    sst = _sst()
    ds = _detected(sst)[["intensity"]].chunk({"time": -1, "y": 4})
    removing = _removing_the_temporary(tmp_path, "oracle.zarr")
    ds["intensity"] = ds.intensity.copy(data=dsa.map_blocks(removing, ds.intensity.data, dtype=ds.intensity.dtype))
    with dask.config.set(scheduler="synchronous"):
        oracle = _failure(lambda: oceanflow.save(ds, tmp_path / "oracle.zarr"))
    assert isinstance(oracle, FileNotFoundError) and "removed by a later save" in str(oracle), oracle
    assert os.listdir(tmp_path) == []

    block = _engine._mhw_block
    removing = _removing_the_temporary(tmp_path, "det.zarr")
    monkeypatch.setattr(_engine, "_mhw_block", lambda x, *a, **k: block(removing(x), *a, **k))
    paths = {"events": tmp_path / "events.zarr", "summary": tmp_path / "annual.zarr"}
    with dask.config.set(scheduler="synchronous"):
        err = _failure(lambda: _mhw_save(sst, tmp_path / "det.zarr", **paths))
    assert type(err) is type(oracle), err
    assert str(err) == str(oracle).replace(str(tmp_path / "oracle.zarr"), str(tmp_path / "det.zarr"))
    assert os.listdir(tmp_path) == []


def _memory_state():
    """Whether the save's memory settings are on: glibc's thresholds fixed, the block pool serving."""
    return _memory._writers[0] > 0


@pytest.mark.parametrize("failing", [False, True])
def test_save_runs_its_tasks_under_oceanflow_saves_memory_settings(tmp_path, monkeypatch, failing):
    """Freed blocks returned and pooled (oceanflow._memory.returning_freed_blocks) while the tasks
    run, undone afterwards, also after a failure: what the tasks of oceanflow.save see (the
    oracle) is what mhw.save's detection tasks see."""
    seen: dict[str, list] = {"oracle": [], "mhw": []}

    def recording(name, function):
        def record(*args, **kwargs):
            seen[name].append(_memory_state())
            if failing:
                raise RuntimeError("injected")
            return function(*args, **kwargs)

        return record

    sst = _sst()
    ds = _detected(sst)[["intensity"]].chunk({"y": 4})
    identity = recording("oracle", lambda block: block)
    meta = np.array((), ds.intensity.dtype)  # (no call to infer it, outside the save)
    ds["intensity"] = ds.intensity.copy(data=dsa.map_blocks(identity, ds.intensity.data, meta=meta))
    monkeypatch.setattr(_engine, "_mhw_block", recording("mhw", _engine._mhw_block))
    for name, call in [
        ("oracle", lambda: oceanflow.save(ds, tmp_path / "oracle.zarr")),
        ("mhw", lambda: _mhw_save(sst, tmp_path / "det.zarr", events=tmp_path / "events.zarr")),
    ]:
        if failing:
            with pytest.raises(RuntimeError, match="injected"):
                call()
        else:
            call()
        assert _memory_state() is False and not _memory._POOL, name
    assert seen["oracle"] and set(seen["oracle"]) == {True}
    assert seen["mhw"] and set(seen["mhw"]) == set(seen["oracle"])
    expected = [] if failing else ["det.zarr", "events.zarr", "oracle.zarr"]
    assert sorted(os.listdir(tmp_path)) == expected
    if not failing:
        back = oceanflow.open_dataset(tmp_path / "det.zarr").compute()
        xr.testing.assert_identical(back.intensity, _detected(sst).intensity)
        assert np.isfinite(back.intensity).any()


def test_a_curvilinear_grid_opened_lazily_gives_what_it_gives_in_memory(tmp_path):
    """2-D lat/lon coordinates read lazily from a file (chunked as stored, not as the blocks):
    detect with a given climatology, events, summary and save with both stores give the values
    and coordinates of the same grid in memory (the oracle)."""
    sst = red_sst(seed=7, years=4, shape=(7, 5), dtype="float32")
    lat, lon = np.meshgrid(np.linspace(-30, 30, 7), np.linspace(0, 40, 5), indexing="ij")
    sst = sst.assign_coords(lat=(("y", "x"), lat), lon=(("y", "x"), lon))
    sst.to_dataset().to_netcdf(tmp_path / "sst.nc")
    with xr.open_dataset(tmp_path / "sst.nc", chunks={"time": 97}) as opened:
        lazy = opened["sst"]
        assert isinstance(lazy["lat"].data, dsa.Array)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mhw.BaseLengthWarning)
            clim = mhw.thresholds(sst).compute()
            expected = mhw.detect(sst, clim).compute()
            with dask.config.set(scheduler="threads", num_workers=3):
                found = mhw.detect(lazy, clim).compute()
                xr.testing.assert_identical(found, expected)
                xr.testing.assert_identical(mhw.events(mhw.detect(lazy)).compute(), mhw.events(expected))
                xr.testing.assert_identical(mhw.summary(mhw.detect(lazy)).compute(), mhw.summary(expected))
                _mhw_save(lazy, tmp_path / "d.zarr", clim, events=tmp_path / "e.zarr", summary=tmp_path / "s.zarr")
        with xr.open_zarr(tmp_path / "e.zarr") as stored:
            xr.testing.assert_allclose(stored.load(), mhw.events(expected))
        with xr.open_zarr(tmp_path / "s.zarr") as stored:
            xr.testing.assert_allclose(stored.load(), mhw.summary(expected))


def test_save_computes_at_most_a_block_per_worker_at_once_while_a_thread_more_reads_and_writes(tmp_path, monkeypatch):
    """mhw.save's tasks run on a thread more than dask's ``num_workers`` (2), which starts the next
    block while two compute, and never more than two blocks' kernels at once (counted in the block
    function); the stores read back as detect, events and summary give them (the oracle)."""
    import threading
    import time

    from oceanflow.mhw import _blocks

    sst = _sst().chunk({"time": -1, "y": 2})  # 4 blocks, each series whole
    lock, entered, computing, most = threading.Lock(), set(), [0], [0]
    call, block = _blocks._series_call, _engine._mhw_block

    def entering(*args, **kwargs):  # before the bound: every thread that starts a block
        with lock:
            entered.add(threading.get_ident())
        return call(*args, **kwargs)

    def counted(*args, **kwargs):  # within the bound: the first blocks wait until a third thread starts one
        with lock:
            computing[0] += 1
            most[0] = max(most[0], computing[0])
        deadline = time.monotonic() + 5
        while len(entered) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            return block(*args, **kwargs)
        finally:
            with lock:
                computing[0] -= 1

    monkeypatch.setattr(_blocks, "_series_call", entering)
    monkeypatch.setattr(_engine, "_mhw_block", counted)
    paths = {"events": tmp_path / "e.zarr", "summary": tmp_path / "s.zarr"}
    with dask.config.set(scheduler="threads", num_workers=2):
        _mhw_save(sst, tmp_path / "d.zarr", **paths)
    assert len(entered) == 3 and most[0] == 2, (entered, most)
    expected = _detected(sst)
    with xr.open_zarr(tmp_path / "d.zarr") as stored:
        xr.testing.assert_identical(stored.load().drop_attrs(), expected.drop_attrs())
    with xr.open_zarr(tmp_path / "e.zarr") as stored:
        xr.testing.assert_allclose(stored.load(), mhw.events(expected))
    with xr.open_zarr(tmp_path / "s.zarr") as stored:
        xr.testing.assert_allclose(stored.load(), mhw.summary(expected))
