"""oceanflow.save's pipeline (oceanflow.io.write.writing) on real files: a failed Zarr write removes
its temporary only once zarr's own concurrent chunk writes have ended."""

import errno
import os
import subprocess
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr

from oceanflow.io import atomic, save, write


def test_a_failed_zarr_write_is_removed_after_zarrs_writes_in_flight(tmp_path, monkeypatch):
    """zarr writes the chunks of an in-memory variable concurrently; one failing (a full disk)
    while the others are still in flight: they end before the temporary is removed, so none
    recreates it (the others are held until the removal is done, or 0.5 s)."""
    from zarr.storage import _local

    put = _local._put
    removed = threading.Event()
    chunks, ended = [], []

    def full_then_late(path, value, *args, **kwargs):
        if "/c/" not in str(path):  # metadata
            return put(path, value, *args, **kwargs)
        chunks.append(path)
        if len(chunks) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        removed.wait(0.5)
        try:
            return put(path, value, *args, **kwargs)
        finally:
            ended.append(path)

    discard = atomic.Output.discard

    def discarding(self):
        discard(self)
        removed.set()

    monkeypatch.setattr(_local, "_put", full_then_late)
    monkeypatch.setattr(atomic.Output, "discard", discarding)
    monkeypatch.setattr(write, "_ENCODED_IN_MEMORY", 0)  # beyond it, written by xarray's to_zarr (zarr's writes)
    ds = xr.Dataset({"v": ("x", np.arange(4000.0))})
    with pytest.raises(OSError, match="no space left on device") as caught:
        save(ds, tmp_path / "out.zarr", encoding={"v": {"chunks": (500,)}})
    assert caught.value.errno == errno.ENOSPC
    for _ in range(100):  # (without the wait in the pipeline: the late writes end after the save failed)
        if len(ended) == len(chunks) - 1 > 0:
            break
        time.sleep(0.05)
    assert len(ended) == len(chunks) - 1 > 0
    assert os.listdir(tmp_path) == []


def _failing(n=8):
    """A Dataset whose every block raises when written (nothing of it reaches zarr's loop)."""
    import dask.array as dsa

    def boom(block):
        raise RuntimeError("injected")

    return xr.Dataset({"v": ("x", dsa.map_blocks(boom, dsa.ones(n, chunks=4), dtype=float))})


def _zarr_loop(tmp_path):
    """zarr's event loop, started by a first save."""
    from zarr.core import sync

    save(xr.Dataset({"v": ("x", np.ones(4))}), tmp_path / "warm.zarr")
    return sync.loop[0]


def _waiting_task(loop):
    """A task on ``loop`` that runs until the returned ``release()`` is called."""
    import asyncio

    events = []

    async def wait():
        events.append(asyncio.Event())
        await events[0].wait()

    future = asyncio.run_coroutine_threadsafe(wait(), loop)

    def release():
        loop.call_soon_threadsafe(events[0].set)
        future.result(10)

    return future, release


def test_ctrl_c_during_the_wait_for_zarrs_writes_still_removes_the_temporary(tmp_path, monkeypatch):
    """Interrupted while waiting for zarr's writes in flight: the temporary is removed anyway, so
    the next save of the same path is not refused as a concurrent write of this process."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(write, "_settle_zarr_io", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(_failing(), tmp_path / "a.zarr")
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    save(xr.Dataset({"v": ("x", np.ones(8))}), tmp_path / "a.zarr")
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


def test_a_failed_zarr_save_does_not_wait_for_older_io_on_zarrs_loop(tmp_path, monkeypatch):
    """Another thread's zarr I/O already running (a slow read, another save) is not this save's:
    the failed save removes its temporary without waiting for it (nor warning of a timeout)."""
    monkeypatch.setattr(write, "_SETTLE_TIMEOUT", 10.0)
    other, release = _waiting_task(_zarr_loop(tmp_path))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(RuntimeError, match="injected"):
                save(_failing(), tmp_path / "a.zarr")
        assert not other.done()
        assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
        assert os.listdir(tmp_path) == ["warm.zarr"]
    finally:
        release()


def test_a_failed_zarr_save_warns_naming_the_path_when_its_writes_outlast_the_wait(tmp_path, monkeypatch):
    """A write of this save still running when the wait ends: the temporary is removed anyway, and a
    RuntimeWarning names the path (rather than silence)."""
    import dask.array as dsa

    loop = _zarr_loop(tmp_path)
    monkeypatch.setattr(write, "_SETTLE_TIMEOUT", 0.1)
    started = []

    def late(block):  # starts a write on zarr's loop (one that never ends by itself), then fails
        started.append(_waiting_task(loop))
        raise RuntimeError("injected")

    ds = xr.Dataset({"v": ("x", dsa.map_blocks(late, dsa.ones(4, chunks=4), dtype=float))})
    try:
        with pytest.warns(RuntimeWarning, match="still ran") as caught:
            with pytest.raises(RuntimeError, match="injected"):
                save(ds, tmp_path / "a.zarr")
        assert str(tmp_path / "a.zarr") in str(caught[0].message)
        assert os.listdir(tmp_path) == ["warm.zarr"]
    finally:
        for _, release in started:
            release()


def test_a_commit_failing_after_another_names_the_output_already_committed(tmp_path, monkeypatch):
    """Outputs are checked all or nothing, then committed in order: the second commit failing (a
    full disk) leaves the first replaced, and the error says so (and which was removed)."""
    old, new = (xr.Dataset({"v": ("x", np.full(4, value))}) for value in (0.0, 1.0))
    for name in ("a.zarr", "b.nc"):
        save(old, tmp_path / name)
    commit = atomic.Output.commit

    def full_on_b(self):
        if self.path.name == "b.nc":
            raise OSError(errno.ENOSPC, "No space left on device (journal)")
        return commit(self)

    monkeypatch.setattr(atomic.Output, "commit", full_on_b)
    with pytest.raises(OSError, match="no space left on device") as caught:
        with write.writing(progress=False) as writes:
            targets = [writes.claim(tmp_path / name, overwrite=True) for name in ("a.zarr", "b.nc")]
            for target in targets:
                target.prepare(new)
            writes.compute(*targets)
            with pytest.warns(RuntimeWarning, match="already committed") as warned:  # (add_note is 3.11+)
                writes.commit()
    assert f"already committed (replaced by their new output): {tmp_path / 'a.zarr'}" in str(warned[0].message)
    message = str(caught.value)
    assert f"while writing {tmp_path / 'b.nc'} " in message
    assert f"{tmp_path / 'a.zarr'} already committed" in message
    assert f"not committed ({tmp_path / 'b.nc'}) were removed" in message
    assert sorted(os.listdir(tmp_path)) == ["a.zarr", "b.nc"]
    assert (xr.open_zarr(tmp_path / "a.zarr").v.values == 1).all()
    with xr.open_dataset(tmp_path / "b.nc") as b:
        assert (b.v.values == 0).all()


def test_a_lazy_saves_finishing_task_does_not_carry_the_dataset(tmp_path):
    """save(compute=False): the task that commits carries the output only, not the Dataset and
    its graph (pickled a second time into that task on a cluster)."""
    import pickle

    data = np.arange(200_000.0)  # 1.6 MB, in the graph's chunks
    delayed = save(xr.Dataset({"v": ("x", data)}).chunk(x=100_000), tmp_path / "a.zarr", compute=False)
    finishing = dict(delayed.__dask_graph__())[delayed.key]
    assert len(pickle.dumps(finishing)) < data.nbytes // 100
    delayed.compute()
    assert (xr.open_zarr(tmp_path / "a.zarr").v.values == data).all()


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_task_shared_by_a_write_and_another_collection_runs_once(tmp_path, suffix):
    """Writes.compute: a task that a write and a dask array given as ``others`` share runs once (review
    finding: dask optimises arrays and Delayed objects apart, so the array's optimisation fused the task
    into its own, and it ran twice: a spilled block of oceanflow.mhw.save was then refused)."""
    import dask.array as da

    calls = []

    def twice(block):
        calls.append(block.shape)
        return block * 2

    source = da.arange(40.0, chunks=10)
    shared = source.map_blocks(twice, meta=np.array((), float))
    with write.writing(progress=False) as writes:
        target = writes.claim(tmp_path / f"a{suffix}", overwrite=False)
        target.prepare(xr.Dataset({"v": ("x", shared + 1), "w": ("x", shared - 1)}))
        (total,) = writes.compute(target, others=(shared.sum(),))
        writes.commit()
    assert len(calls) == source.npartitions
    assert total == 2 * np.arange(40.0).sum()
    with xr.open_dataset(tmp_path / f"a{suffix}") as back:
        np.testing.assert_array_equal(back.v.values, 2 * np.arange(40.0) + 1)
        np.testing.assert_array_equal(back.w.values, 2 * np.arange(40.0) - 1)


def test_leaving_writing_without_commit_removes_the_temporary(tmp_path):
    """writing() left normally without commit(): no temporary stays on disk or registered, and a
    later save of the path succeeds."""
    ds = xr.Dataset({"v": ("x", np.arange(4.0))})
    with write.writing(progress=False) as writes:
        target = writes.claim(tmp_path / "a.zarr", overwrite=False)
        target.prepare(ds)
        writes.compute(target)
    assert os.listdir(tmp_path) == []
    assert target.tmp not in atomic._WRITING
    save(ds, tmp_path / "a.zarr")
    assert (xr.open_zarr(tmp_path / "a.zarr").v.values == ds.v.values).all()


def test_a_staged_zarr_write_makes_the_files_of_xarrays_own_to_zarr(tmp_path):
    """Target.write(staged=True) (encoded in a memory store, then written in one pass) leaves the
    same files, byte for byte, as xarray's to_zarr writing the directory itself: metadata
    (consolidated included), chunks, dates with NaT, NaN fill values, attributes."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal((5, 6, 7))
    values[1, 2, 3] = np.nan
    dates = np.datetime64("2001-03-04") + rng.integers(0, 900, (5, 6, 7)).astype("timedelta64[D]")
    dates[0, 0, 0] = dates[4, 5, 6] = np.datetime64("NaT")
    ds = xr.Dataset(
        {
            "when": (("e", "y", "x"), dates, {"long_name": "a date"}),
            "v": (("e", "y", "x"), values, {"units": "degC"}),
            "c": (("e", "y", "x"), rng.integers(0, 5, (5, 6, 7)).astype(np.int8), {"flag_values": [1, 2]}),
        },
        coords={"y": np.linspace(-1, 1, 6), "x": np.arange(7.0)},
        attrs={"title": "staged"},
    )
    encoding = {name: {"chunks": (5, 3, 7)} for name in ("when", "v", "c")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(tmp_path / "direct.zarr", mode="w", encoding=encoding, consolidated=True)
    write._write_zarr_staged(ds, tmp_path / "staged.zarr", encoding)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    direct, staged = files(tmp_path / "direct.zarr"), files(tmp_path / "staged.zarr")
    assert sorted(staged) == sorted(direct) and len(direct) > 10
    assert [name for name in direct if staged[name] != direct[name]] == []
    with xr.open_zarr(tmp_path / "staged.zarr") as back:
        xr.testing.assert_identical(back.load(), ds)
    with pytest.raises(ValueError, match="in-memory Dataset"):
        write._write_zarr_staged(ds.chunk(), tmp_path / "lazy.zarr", encoding)


def test_zarr_v3_files_are_xarrays_own_to_zarr_files_made_in_one_pass():
    """_zarr_v3_files (the staged write's encoder in Zarr v3) makes the files of xarray's to_zarr
    into a memory store byte for byte, the root's consolidated metadata included: edge chunks
    padded with the fill value, a chunk all fill value left out unless write_empty_chunks, dates
    with NaT, an integer _FillValue, blosc and default codecs, a non-dimension coordinate; and
    hands anything else (strings, shards) back to to_zarr (None)."""
    import zarr
    from zarr.codecs import BloscCodec

    rng = np.random.default_rng(11)
    values = rng.standard_normal((5, 7, 9))
    values[:2, :3] = np.nan  # the chunk (0, 0, *) all NaN: the fill value
    dates = np.datetime64("1999-12-30") + rng.integers(0, 400, (5, 7, 9)).astype("timedelta64[D]")
    dates[0, 0, 0] = np.datetime64("NaT")
    space = ("e", "y", "x")
    ds = xr.Dataset(
        {
            "v": (space, values, {"units": "degC", "valid_range": np.array([-9.0, 9.0])}),
            "kept": (space, values),
            "when": (space, dates, {"long_name": "a date"}),
            "n": (space, rng.integers(0, 9, (5, 7, 9)), {"flag": np.int16(3)}),
        },
        coords={"y": np.linspace(-3, 3, 7), "x": np.arange(9.0), "depth": ("y", np.arange(7.0))},
        attrs={"title": "v3", "years": [1999, 2000]},
    )
    blosc = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
    encoding = {
        "v": {"chunks": (2, 3, 4), "_FillValue": np.nan},
        "kept": {"chunks": (2, 3, 4), "write_empty_chunks": True, "compressors": blosc},
        "when": {"chunks": (5, 3, 9), "_FillValue": np.iinfo(np.int64).min, "dtype": "int64"},
        "n": {"chunks": (2, 7, 9), "_FillValue": -1},
    }
    with zarr.config.set({"default_zarr_format": 3}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        made = write._zarr_v3_files(ds, {k: dict(v) for k, v in encoding.items()})
        written: dict = {}
        ds.to_zarr(zarr.storage.MemoryStore(written), mode="w", encoding=encoding, consolidated=True)
        assert write._zarr_v3_files(ds.assign(s=("x", list("abcdefghi"))), encoding) is None
        assert write._zarr_v3_files(ds, {**encoding, "v": {"chunks": (1, 1, 1), "shards": (2, 3, 4)}}) is None
    assert made is not None
    expected = {key: value.to_bytes() for key, value in written.items()}
    assert sorted(made) == sorted(expected)
    assert [key for key in expected if made[key] != expected[key]] == []
    assert "v/c/0/0/0" not in made and "kept/c/0/0/0" in made and "v/c/2/2/2" in made  # (an edge chunk)


def test_zarr_v3_files_copy_the_chunks_of_one_array_at_a_time(monkeypatch):
    """_zarr_v3_files makes an array's chunk copies only once the previous array's chunks are
    encoded (and freed): at most one array's copies beside the encoded store, as zarr's own
    writes, not every array's at once (a whole table more at the peak)."""
    import zarr

    steps = []
    jobs = write._chunk_jobs

    class Pipeline:
        def __init__(self, pipeline, name):
            self.pipeline, self.name = pipeline, name

        async def encode(self, pairs):
            encoded = await self.pipeline.encode(pairs)
            steps.append(("encoded", self.name))
            return encoded

    def copies(name, *args):
        pipeline, keys, pairs = jobs(name, *args)
        steps.append(("copied", name))
        return Pipeline(pipeline, name), keys, pairs

    monkeypatch.setattr(write, "_chunk_jobs", copies)
    ds, encoding = _staged_case()
    with zarr.config.set({"default_zarr_format": 3}):
        assert write._zarr_v3_files(ds, encoding) is not None
    names = [name for step, name in steps if step == "copied"]
    assert sorted(names) == ["a", "b", "c", "y"]
    assert steps == [(step, name) for name in names for step in ("copied", "encoded")]


@pytest.mark.parametrize("now", [True, False])
@pytest.mark.parametrize("empty", ["same", "mixed"])
def test_a_zarr_v3_write_of_dask_data_makes_the_files_of_xarrays_own_to_zarr(tmp_path, monkeypatch, now, empty):
    """_write in Zarr v3 (every array's metadata and the in-memory variables in one pass, then the
    dask variables' chunks by to_zarr in mode r+), computed at once or as a Delayed, leaves the
    files of xarray's to_zarr in mode w byte for byte: uneven dask chunks, a chunk all NaN kept by
    write_empty_chunks, lazy dates, int8, a dask non-dimension coordinate, an in-memory variable.
    Dask variables that differ in write_empty_chunks are left to to_zarr (the same files)."""
    import dask
    import zarr

    rng = np.random.default_rng(7)
    values = rng.standard_normal((6, 45, 9))
    values[:, :23] = np.nan  # the first block: all NaN
    dates = np.datetime64("2003-01-01") + rng.integers(0, 900, (6, 45, 9)).astype("timedelta64[D]")
    space = ("t", "y", "x")
    ds = xr.Dataset(
        {
            "v": (space, values, {"units": "degC"}),
            "c": (space, rng.integers(0, 4, (6, 45, 9)).astype(np.int8)),
            "when": (space, dates),
            "w": ("y", np.arange(45.0)),
        },
        coords={"y": np.arange(45.0), "t": np.arange(6), "area": (("y", "x"), rng.random((45, 9)))},
        attrs={"title": "lazy"},
    ).chunk({"y": 23})
    ds = ds.assign(w=ds.w.load())
    chunks = {"chunks": (6, 23, 9), "write_empty_chunks": True}
    encoding = {"v": dict(chunks), "c": dict(chunks), "when": dict(chunks), "area": {**chunks, "chunks": (23, 9)}}
    if empty == "mixed":
        encoding["c"]["write_empty_chunks"] = False
    taken = []
    fast = write._write_zarr_v3
    monkeypatch.setattr(write, "_write_zarr_v3", _spied(fast, taken))
    with zarr.config.set({"default_zarr_format": 3}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(tmp_path / "direct.zarr", mode="w", encoding=encoding, consolidated=True)
        written = write._write(ds, tmp_path / "made.zarr", "zarr", {k: dict(v) for k, v in encoding.items()}, now=now)
        if not now:
            dask.compute(written)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    direct, made = files(tmp_path / "direct.zarr"), files(tmp_path / "made.zarr")
    assert taken == [empty == "same"]
    assert sorted(made) == sorted(direct) and "v/c/0/0/0" in made and "area/c/1/0" in made
    assert [name for name in direct if made[name] != direct[name]] == []


def _spied(function, calls):
    """``function`` appending the first item of each of its results to ``calls``."""

    def spy(*args, **kwargs):
        result = function(*args, **kwargs)
        calls.append(result[0])
        return result

    return spy


def _staged_case():
    """A small in-memory Dataset of three variables, each its own folder of several chunks."""
    rng = np.random.default_rng(5)
    data = {name: (("e", "y"), rng.standard_normal((4, 6))) for name in ("a", "b", "c")}
    ds = xr.Dataset(data, coords={"y": np.arange(6.0)}, attrs={"title": "new"})
    return ds, {name: {"chunks": (4, 2)} for name in data}


def _failing_at(monkeypatch, n):
    """Path.write_bytes raising OSError(EIO) on its ``n``-th call (1-based); returns the paths it was called with."""
    from pathlib import Path

    calls = []
    real = Path.write_bytes

    def write_bytes(self, data):
        calls.append(self)
        if len(calls) == n:
            raise OSError(errno.EIO, "injected")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    return calls


@pytest.mark.parametrize("fmt", [2, 3])
@pytest.mark.parametrize("stop", ["first", "fifth", "root"])
def test_a_staged_zarr_write_stopped_part_way_leaves_no_store_and_the_old_output(tmp_path, monkeypatch, fmt, stop):
    """Target.write(staged=True) failing on its first, its fifth or its first root metadata
    file, Zarr v2 or v3: the temporary holds no root metadata (no reader or commit takes it
    for a store: review finding, v2's .zgroup was written first), and through the save
    pipeline the old output stays as it was and no temporary is left."""
    import zarr

    ds, encoding = _staged_case()
    old = xr.Dataset({"old": ("x", np.arange(3.0))})
    with zarr.config.set({"default_zarr_format": fmt}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        old.to_zarr(tmp_path / "out.zarr")
        files: dict = {}
        ds.to_zarr(zarr.storage.MemoryStore(files), mode="w", encoding=encoding, consolidated=True)
        roots = {k for k in files if "/" not in k}
        assert len(files) > 12 and roots == ({".zgroup", ".zattrs", ".zmetadata"} if fmt == 2 else {"zarr.json"})
        n = {"first": 1, "fifth": 5, "root": len(files) - len(roots) + 1}[stop]
        calls = _failing_at(monkeypatch, n)
        with pytest.raises(OSError, match="injected"):
            write._write_zarr_staged(ds, tmp_path / "part.zarr", encoding)
        part = tmp_path / "part.zarr"
        assert len(calls) == n and [p.name for p in part.iterdir() if p.is_file()] == []
        with pytest.raises(Exception):  # noqa: B017 (whatever zarr raises: not a store)
            xr.open_zarr(part)
        calls.clear()
        with pytest.raises(OSError, match="injected"), write.writing(progress=False) as writes:
            target = writes.claim(tmp_path / "out.zarr", overwrite=True)
            target.prepare(ds, encoding=encoding)
            target.write(now=True, staged=True)
            writes.commit()
        assert len(calls) == n and sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "part.zarr"]
        with xr.open_zarr(tmp_path / "out.zarr") as back:
            xr.testing.assert_identical(back.load(), old)


def test_a_staged_zarr_write_whose_temporary_is_removed_meanwhile_fails_and_makes_none_again(tmp_path, monkeypatch):
    """The temporary removed once the first file of a staged write is written (a later save of
    the same path removed it): the write fails saying so, and no folder or root metadata is
    made again (review finding: mkdir(parents=True) recreated it for the next file's folder, and
    the root metadata written last then made the partial store pass _check_complete)."""
    import shutil
    from pathlib import Path

    ds, encoding = _staged_case()
    real, written = Path.write_bytes, []

    def write_bytes(self, data):
        done = real(self, data)
        written.append(self)
        if len(written) == 1:
            shutil.rmtree(target.tmp)
        return done

    with write.writing(progress=False) as writes:
        target = writes.claim(tmp_path / "out.zarr", overwrite=False)
        target.prepare(ds, encoding=encoding)
        monkeypatch.setattr(Path, "write_bytes", write_bytes)
        with pytest.raises(FileNotFoundError, match="removed by a later save"):
            target.write(now=True, staged=True)
        assert len(written) == 1 and not target.tmp.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "changed", [ImportError("cannot import name"), AttributeError("no attribute"), TypeError("bad argument")]
)
def test_a_zarr_v3_save_falls_back_to_xarrays_to_zarr_when_the_internals_it_builds_on_change(
    tmp_path, monkeypatch, changed
):
    """Where the xarray or zarr internals the one-pass encoder builds on have changed (what a later
    release's moved name or new signature raises), the save still writes, through xarray's
    to_zarr: a store that reads back equal, in memory and for dask data."""
    import zarr

    def changed_internals(ds, encoding):
        raise changed

    monkeypatch.setattr(write, "_one_pass_v3_files", changed_internals)
    ds = xr.Dataset({"v": (("y", "x"), np.arange(12.0).reshape(3, 4), {"units": "K"})}, coords={"x": np.arange(4.0)})
    with zarr.config.set({"default_zarr_format": 3}):
        assert write._zarr_v3_files(ds, {}) is None
        for name, data in (("memory", ds), ("lazy", ds.chunk({"y": 1}))):
            save(data, tmp_path / f"{name}.zarr")
            with xr.open_zarr(tmp_path / f"{name}.zarr") as back:
                xr.testing.assert_equal(back.load(), ds)
                assert back.v.attrs["units"] == "K"


@pytest.mark.parametrize("dtype, fill", [("float64", np.nan), ("float32", 0.0), ("int64", np.iinfo(np.int64).min)])
def test_a_chunk_is_left_out_exactly_when_zarr_finds_it_all_fill_value(dtype, fill):
    """_chunk_buffer (the staged and region writes) leaves out the chunks that zarr's own comparison
    of the whole chunk (all_equal: NaN equal to NaN, 0.0 bit for bit) finds all fill value, and no
    other: a chunk all fill value, one with a single other value anywhere (a sampled position or
    not; -0.0 and another NaN among them), one with values throughout, and edge chunks."""
    from zarr.core.array_spec import ArrayConfig, ArraySpec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.dtype import parse_dtype

    prototype = default_buffer_prototype()
    config = ArrayConfig(order="C", write_empty_chunks=False)
    spec = ArraySpec((5, 7, 61), parse_dtype(np.dtype(dtype), zarr_format=3), fill, config, prototype)
    others = {"float64": [1.5, np.float64(np.nan) * -1], "float32": [-0.0, np.nan, 2.0], "int64": [0, 7]}[dtype]
    rng = np.random.default_rng(3)
    cases = [np.full((5, 7, 61), fill, dtype), rng.integers(0, 5, (5, 7, 61)).astype(dtype)]
    cases.append(np.full((2, 7, 3), fill, dtype))  # (an edge chunk)
    for where in [0, 1, 2, 3, 2133, 5 * 7 * 61 - 1, *rng.integers(0, 5 * 7 * 61, 20)]:
        for other in others:
            one = np.full((5, 7, 61), fill, dtype)
            one.reshape(-1)[where] = other
            cases.append(one)
    for part in cases:
        full = np.full((5, 7, 61), fill, dtype)
        full[tuple(slice(0, n) for n in part.shape)] = part
        expected = prototype.nd_buffer.from_numpy_array(full).all_equal(fill)
        chunk = write._chunk_buffer(part, (5, 7, 61), spec, config, prototype)
        assert (chunk is None) == expected, (part.shape, np.flatnonzero(full.reshape(-1) != full.reshape(-1)[-1])[:3])
        if chunk is not None:
            assert chunk.as_numpy_array().view(np.uint8).tobytes() == full.view(np.uint8).tobytes()
    assert sum(write._chunk_buffer(p, (5, 7, 61), spec, config, prototype) is None for p in cases) >= 2


@pytest.mark.parametrize("on_loop", [False, True])
def test_zarr_v3_region_writes_are_xarrays_own_region_files(tmp_path, monkeypatch, on_loop):
    """write_zarr_v3_region (mhw.save's event table, block by block) writes the files of xarray's
    to_zarr(region=..., mode="r+") byte for byte: an edge chunk padded with the fill value, a chunk
    all fill value left out, the stored _FillValue (float and integer), day numbers with date units
    (mhw's event dates), blosc and default codecs, encoded on the calling thread or (``on_loop``, as
    for a codec without a synchronous step) on zarr's event loop; and leaves anything else to
    to_zarr (False, nothing written): a region off the chunks, dates, packed values, an array not there."""
    import dask.array as da
    import zarr
    from zarr.codecs import BloscCodec

    if on_loop:
        monkeypatch.setattr(write, "_sync_codecs", lambda pipeline: None)

    rng = np.random.default_rng(5)
    values = rng.standard_normal((4, 5, 7))
    values[:, :2, :4] = np.nan  # the chunk (0, 0, 0) all NaN: the fill value
    space = ("e", "y", "x")
    ds = xr.Dataset(
        {
            "v": (space, values, {"units": "degC"}),
            "w": (space, values),
            "n": (space, rng.integers(0, 9, (4, 5, 7)), {"units": "days since 2000-01-01", "calendar": "noleap"}),
            "c": (space, rng.integers(0, 4, (4, 5, 7)).astype(np.int8)),
        }
    )
    blosc = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
    encoding = {
        "v": {"compressors": blosc, "_FillValue": -999.0},
        "n": {"_FillValue": np.iinfo(np.int64).min, "dtype": "int64"},
        "w": {},
        "c": {},
    }
    chunks = {"e": 4, "y": 2, "x": 4}
    lazy = {k: (v.dims, da.zeros(v.shape, dtype=v.dtype, chunks=(4, 2, 4)), v.attrs) for k, v in ds.items()}
    template = xr.Dataset(lazy)
    with zarr.config.set({"default_zarr_format": 3}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        for name in ("expected.zarr", "made.zarr"):
            template.to_zarr(tmp_path / name, mode="w", encoding=encoding, compute=False)
        arrays: dict = {}
        for y0 in range(0, 5, chunks["y"]):
            for x0 in range(0, 7, chunks["x"]):
                region = {"e": slice(None), "y": slice(y0, y0 + 2), "x": slice(x0, x0 + 4)}
                part = ds.isel(region)
                part.to_zarr(tmp_path / "expected.zarr", region=region, mode="r+")
                assert write.write_zarr_v3_region(part, tmp_path / "made.zarr", region, arrays)
        before = _files(tmp_path / "made.zarr")
        off = {"e": slice(None), "y": slice(1, 3), "x": slice(0, 4)}
        assert not write.write_zarr_v3_region(ds.isel(off), tmp_path / "made.zarr", off)
        dated = ds.isel(region).assign(n=ds["n"].isel(region).astype("datetime64[D]"))
        assert not write.write_zarr_v3_region(dated, tmp_path / "made.zarr", region)
        assert not write.write_zarr_v3_region(ds.isel(region).rename(v="u"), tmp_path / "made.zarr", region)
        packed = template[["v"]].assign(v=template["v"].assign_attrs(scale_factor=0.5))
        packed.to_zarr(tmp_path / "packed.zarr", mode="w", compute=False)
        assert not write.write_zarr_v3_region(ds[["v"]].isel(region), tmp_path / "packed.zarr", region)
        assert _files(tmp_path / "made.zarr") == before
    expected, made = _files(tmp_path / "expected.zarr"), _files(tmp_path / "made.zarr")
    assert sorted(made) == sorted(expected) and "w/c/0/0/0" not in made and "v/c/0/0/0" in made
    assert "w/c/0/2/1" in made  # (an edge chunk)
    assert [key for key in expected if made[key] != expected[key]] == []
    with xr.open_zarr(tmp_path / "made.zarr", decode_times=False) as back:
        xr.testing.assert_equal(back.load(), ds)


def test_zarr_v3_template_is_to_zarrs_store_without_the_dask_chunks(tmp_path):
    """write_zarr_v3_template (mhw.save's event store before its regions) writes the files of xarray's
    to_zarr(mode="w", compute=False, consolidated=True) byte for byte: every array's metadata (dask
    variables with a blosc codec and an integer _FillValue), the coordinates and an in-memory variable's
    chunks, and no chunk of a dask variable; with zarr's default format 2, False and nothing written."""
    import dask.array as da
    import zarr
    from zarr.codecs import BloscCodec

    rng = np.random.default_rng(9)
    space = ("e", "y", "x")
    ds = xr.Dataset(
        {
            "v": (space, da.full((4, 5, 7), np.nan, chunks=(4, 2, 4)), {"units": "degC"}),
            "n": (space, da.zeros((4, 5, 7), dtype="int64", chunks=(4, 2, 4)), {"long_name": "a count"}),
            "kept": (("y", "x"), rng.standard_normal((5, 7))),
        },
        coords={"y": np.arange(5.0), "x": np.linspace(0, 1, 7), "depth": ("y", np.arange(5.0))},
        attrs={"title": "template"},
    )
    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    encoding = {"v": {"compressors": blosc}, "n": {"_FillValue": np.iinfo(np.int64).min, "dtype": "int64"}}
    with zarr.config.set({"default_zarr_format": 3}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(tmp_path / "expected.zarr", mode="w", encoding=encoding, compute=False, consolidated=True)
        assert write.write_zarr_v3_template(ds, tmp_path / "made.zarr", {k: dict(v) for k, v in encoding.items()})
    with zarr.config.set({"default_zarr_format": 2}):
        assert not write.write_zarr_v3_template(ds, tmp_path / "v2.zarr", encoding)
    assert not (tmp_path / "v2.zarr").exists()
    expected, made = _files(tmp_path / "expected.zarr"), _files(tmp_path / "made.zarr")
    assert sorted(made) == sorted(expected) and "kept/c/0/0" in made and "y/c/0" in made
    assert not any(name.startswith(("v/c", "n/c")) for name in made)
    assert [name for name in expected if made[name] != expected[name]] == []


def _files(root):
    """Every file of the folder ``root`` by its relative path: its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _saved_files(root):
    """Every file of the store ``root`` (written by :func:`save`) by relative path, its root metadata
    without the history line (the time of the save)."""
    import json

    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            data = open(path, "rb").read()
            if os.path.relpath(path, root) == "zarr.json":
                meta = json.loads(data)
                for node in [meta, *meta.get("consolidated_metadata", {}).get("metadata", {}).values()]:
                    node.get("attributes", {}).pop("history", None)
                data = json.dumps(meta, sort_keys=True).encode()
            files[os.path.relpath(path, root)] = data
    return files


def test_large_uncompressed_zarr_chunks_bypass_the_page_cache_and_give_zarrs_own_files(tmp_path, monkeypatch):
    """Chunk files of 1 MiB or more written past the page cache: every file of the store as zarr's own
    LocalStore writes it (the environment switching O_DIRECT off), and as the fallback where zarr's
    store API changed; the large chunk files are not in the page cache (fincore)."""
    from debian_tools import require

    fincore = require("fincore")
    if write._chunk_store(tmp_path) == tmp_path:
        pytest.skip(f"{tmp_path} is not where O_DIRECT writes are used")
    rng = np.random.default_rng(5)
    sst = rng.normal(15, 3, (300, 40, 90)).astype("f4")  # chunks of 300 x 20 x 90: 2.2 MB, and 300 x 40 x 90: 4.3 MB
    sst[rng.random(sst.shape) < 0.05] = np.nan
    category = rng.integers(0, 5, sst.shape).astype("i1")
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst), "category": (("time", "lat", "lon"), category)},
        coords={"time": np.arange(300.0), "lat": np.arange(40.0), "lon": np.arange(90.0)},
    ).chunk({"time": -1, "lat": 20})
    raw = {"sst": {"compressors": None}}
    save(ds, tmp_path / "direct.zarr", encoding=raw, progress=False)
    save(ds.chunk({"lat": 40}), tmp_path / "large.zarr", encoding=raw, progress=False)
    for store in ("large.zarr", "direct.zarr"):  # (4.3 and 2.2 MB)
        chunk = tmp_path / store / "sst" / "c" / "0" / "0" / "0"
        resident = subprocess.run([fincore, "-b", "-n", "-o", "RES", str(chunk)], capture_output=True, text=True)
        assert int(resident.stdout) < 8192 < os.path.getsize(chunk)
    monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", "0")
    save(ds, tmp_path / "zarr.zarr", encoding=raw, progress=False)
    save(ds.chunk({"lat": 40}), tmp_path / "zarr-large.zarr", encoding=raw, progress=False)
    monkeypatch.delenv("OCEANFLOW_NETCDF_DIRECT")

    def changed():
        raise AttributeError("zarr.storage.LocalStore moved")

    monkeypatch.setattr(write, "_direct_store_type", changed)
    save(ds.chunk({"lat": 40}), tmp_path / "fallback.zarr", encoding=raw, progress=False)
    assert _saved_files(tmp_path / "direct.zarr") == _saved_files(tmp_path / "zarr.zarr")
    large = [_saved_files(tmp_path / store) for store in ("large.zarr", "zarr-large.zarr", "fallback.zarr")]
    assert large[0] == large[1] == large[2]
