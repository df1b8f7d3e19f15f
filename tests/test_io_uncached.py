"""Storage chunks written past the page cache (oceanflow.io.uncached), against independent readers.

Oracles: the same bytes written with a plain ``os.pwrite`` (read back byte
for byte), util-linux's ``findmnt`` (file system type) and ``fincore``
(pages of a file in the page cache), and netCDF-C (xarray's netCDF4 engine),
h5py (xarray's h5netcdf engine) and NCO, which decode every chunk.
"""

import contextlib
import errno
import os
import subprocess
import threading

import numpy as np
import pytest
import xarray as xr
from debian_tools import require

from oceanflow.io import save, uncached
from oceanflow.io.netcdf import storage_chunks


def _chunk_file_or_skip(path):
    """A ChunkFile on ``path``, which must open where findmnt names a local file system and the kernel takes a
    plain ``O_DIRECT`` open; the test is skipped elsewhere (decided without the code under test)."""
    findmnt = require("findmnt")
    kind = subprocess.run(
        [findmnt, "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    if kind not in {"ext2", "ext3", "ext4", "xfs"}:
        pytest.skip(f"{path.parent} is on {kind}, not a local file system written with O_DIRECT")
    if not uncached.direct_writes_switched_on():
        pytest.skip("OCEANFLOW_NETCDF_DIRECT switches O_DIRECT off in this environment")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_DIRECT))
    except OSError as err:
        pytest.skip(f"O_DIRECT refused on {path.parent}: {err}")
    file = uncached.open_chunk_file(path)
    assert file is not None
    return file


def test_file_system_type_matches_findmnt(tmp_path):
    findmnt = require("findmnt")
    for path in (tmp_path, "/proc/self", "/"):
        theirs = subprocess.run(
            [findmnt, "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True, text=True, check=True
        )
        assert uncached.file_system_type(path) == theirs.stdout.strip(), path


@pytest.mark.parametrize("offset", [0, 1, 4095, 4096, 5000, 3 * 4096 + 17])
@pytest.mark.parametrize("size", [0, 1, 4096, 10_000, 5 * 4096 + 7])
@pytest.mark.parametrize("shift", [0, 3], ids=["aligned-buffer", "unaligned-buffer"])
def test_writes_at_any_offset_and_size_give_the_bytes_of_plain_pwrite(tmp_path, offset, size, shift):
    rng = np.random.default_rng(size + offset)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    background = rng.integers(0, 256, 12 * 4096, dtype=np.uint8).tobytes()  # what lies around the write
    for path in (ours, theirs):
        path.write_bytes(background)
    buffer = uncached.aligned_empty(size + shift)[shift:]
    buffer[...] = rng.integers(0, 256, size, dtype=np.uint8)
    file = _chunk_file_or_skip(ours)
    try:
        assert file.direct is not None
        file.write_at(buffer, offset)
        assert file.direct is not None  # no fallback to the page cache was needed
    finally:
        file.close()
    fd = os.open(theirs, os.O_WRONLY)
    try:
        os.pwrite(fd, buffer, offset)
    finally:
        os.close(fd)
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("compression", ["none", "deflate"])
def test_large_chunks_bypass_the_page_cache_and_every_reader_decodes_them(tmp_path, compression):
    fincore, ncks = require("fincore", "ncks")
    probe = tmp_path / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    rng = np.random.default_rng(1)
    sst = rng.normal(15, 3, size=(96, 90, 180)).astype("f4")  # 6 MB; storage chunks of about 512 KiB
    sst[rng.random(sst.shape) < 0.05] = np.nan
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst, {"units": "degC"})},
        coords={"time": np.arange(96.0), "lat": np.linspace(-89, 89, 90), "lon": np.linspace(0, 358, 180)},
    ).chunk({"time": 32})
    path = tmp_path / "f.nc"
    save(ds, path, compression=compression, progress=False)
    resident = subprocess.run(
        [fincore, "-b", "-n", "-o", "RES", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert int(resident) < 0.2 * os.path.getsize(path), (resident, os.path.getsize(path))
    copy = tmp_path / "nco.nc"
    subprocess.run([ncks, "-O", "-4", str(path), str(copy)], check=True)
    for back, engine in ((path, "netcdf4"), (path, "h5netcdf"), (copy, "netcdf4")):
        with xr.open_dataset(back, engine=engine) as read:
            np.testing.assert_array_equal(read.sst.values, sst, err_msg=f"{back.name} {engine}")


def _victims(tmp_path, n=2):
    """``n`` files opened after a ChunkFile closed: they get the descriptor numbers it freed."""
    paths = [tmp_path / f"victim{i}" for i in range(n)]
    for path in paths:
        path.write_bytes(b"\0" * (8 * 4096))
    return paths, [os.open(path, os.O_RDWR) for path in paths]


def test_a_writer_in_flight_at_close_finishes_in_its_own_file_and_never_in_one_opened_later(tmp_path, monkeypatch):
    # fdreuse (review): a task still writing when a failed save closed the file wrote into the next file opened
    path = tmp_path / "f"
    path.write_bytes(b"\0" * (8 * 4096))
    file = uncached.open_chunk_file(path) or uncached.ChunkFile(str(path), None)
    entered, release = threading.Event(), threading.Event()
    real = uncached._pwrite_all

    def held_pwrite_all(fd, view, offset):  # the writer is descheduled after taking its descriptors
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        real(fd, view, offset)

    monkeypatch.setattr(uncached, "_pwrite_all", held_pwrite_all)
    payload = uncached.aligned_empty(3 * 4096)
    payload[...] = 7
    writer = threading.Thread(target=file.write_at, args=(payload, 100))
    writer.start()
    assert entered.wait(10)
    settled = threading.Event()  # close() waits for the writer, or (the old code) returned without waiting
    real_wait = file._state.wait

    def waiting(timeout=None):
        settled.set()
        return real_wait(timeout)

    def close():
        try:
            file.close()
        finally:
            settled.set()

    monkeypatch.setattr(file._state, "wait", waiting)
    closer = threading.Thread(target=close)
    closer.start()
    assert settled.wait(10)
    paths, fds = _victims(tmp_path)  # opened while the writer is held: old code had freed its numbers
    try:
        release.set()
        writer.join(10)
        closer.join(10)
        assert not writer.is_alive() and not closer.is_alive()
    finally:
        for fd in fds:
            os.close(fd)
    for victim in paths:
        assert victim.read_bytes() == b"\0" * (8 * 4096), victim
    expected = bytearray(8 * 4096)
    expected[100 : 100 + payload.nbytes] = payload.tobytes()
    assert path.read_bytes() == bytes(expected)


def _descriptors_open_on(path):
    """This process's descriptors on ``path``, read from /proc/self/fd (Linux)."""
    where = os.path.realpath(path)
    return [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == where]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors through /proc/self/fd")
def test_close_interrupted_while_a_write_is_in_flight_refuses_later_writes_and_closes_after_the_write(
    tmp_path, monkeypatch
):
    """A Ctrl-C in close()'s wait for a write in flight leaked the descriptors: now the write closes them as it
    ends (not before: their numbers would be the next file's), and later writes are refused meanwhile."""
    path = tmp_path / "f"
    path.write_bytes(b"\0" * (8 * 4096))
    file = uncached.open_chunk_file(path) or uncached.ChunkFile(str(path), None)
    entered, release = threading.Event(), threading.Event()
    real = uncached._pwrite_all

    def held_pwrite_all(fd, view, offset):
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        real(fd, view, offset)

    def interrupted(timeout=None):
        raise KeyboardInterrupt  # Ctrl-C as close() waits

    monkeypatch.setattr(uncached, "_pwrite_all", held_pwrite_all)
    payload = np.full(3 * 4096, 7, np.uint8)
    writer = threading.Thread(target=file.write_at, args=(payload, 100))
    writer.start()
    assert entered.wait(10)
    monkeypatch.setattr(file._state, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        file.close()
    with pytest.raises(ValueError, match="closed ChunkFile"):
        file.write_at(payload, 0)
    assert _descriptors_open_on(path)  # the write in flight still holds them
    release.set()
    writer.join(10)
    assert not writer.is_alive()
    assert _descriptors_open_on(path) == []
    expected = bytearray(8 * 4096)
    expected[100 : 100 + payload.nbytes] = payload.tobytes()
    assert path.read_bytes() == bytes(expected)


def test_writes_handed_to_the_writer_threads_are_all_in_the_file_when_close_returns(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"\0" * (64 * 4096))
    file = uncached.open_chunk_file(path) or uncached.ChunkFile(str(path), None)
    release = threading.Event()
    real = uncached._pwrite_all

    def slow_pwrite_all(fd, view, offset):  # the device is slow: close() comes while writes are still queued
        assert release.wait(10)
        real(fd, view, offset)

    monkeypatch.setattr(uncached, "_pwrite_all", slow_pwrite_all)
    rng = np.random.default_rng(4)
    payloads = [rng.integers(0, 256, 3 * 4096 + 5, dtype=np.uint8) for _ in range(5)]
    futures = [file.write_at_later(payload, 4 * 4096 * i) for i, payload in enumerate(payloads)]
    writers, shutting_down = file._writers, threading.Event()
    real_shutdown = writers.shutdown

    def shutdown(*args, **kwargs):  # close() has begun and waits for the writer threads
        shutting_down.set()
        return real_shutdown(*args, **kwargs)

    monkeypatch.setattr(writers, "shutdown", shutdown)
    closer = threading.Thread(target=file.close)
    closer.start()
    assert shutting_down.wait(10)
    assert closer.is_alive()  # waits for the queued writes, all held
    with pytest.raises(ValueError, match="closing ChunkFile"):
        file.write_at_later(payloads[0], 0)
    release.set()
    closer.join(10)
    assert not closer.is_alive()
    assert all(future.done() and future.exception() is None for future in futures)
    expected = bytearray(64 * 4096)
    for i, payload in enumerate(payloads):
        expected[4 * 4096 * i : 4 * 4096 * i + payload.size] = payload.tobytes()
    assert path.read_bytes() == bytes(expected)


def test_a_chunk_write_failing_on_a_writer_thread_fails_the_save_and_leaves_no_output(tmp_path, monkeypatch):
    probe = tmp_path / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    calls = []

    def full_disk(self, payload, offset):
        calls.append(threading.current_thread().name)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uncached.ChunkFile, "write_at", full_disk)
    sst = np.random.default_rng(5).normal(15, 3, size=(64, 90, 180)).astype("f4")
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), sst)}).chunk({"time": 32})
    path = tmp_path / "f.nc"
    with pytest.raises(OSError, match="(?i)no space left"):
        save(ds, path, progress=False)
    assert calls and all(name.startswith("oceanflow-chunk-writer") for name in calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe"]


def test_a_failing_last_chunk_write_of_a_task_fails_the_save_and_leaves_the_old_output(tmp_path, monkeypatch):
    """The last chunk a task hands to the writer threads is waited for only after the task's loop: its failure
    (a full disk) must still fail the save, which then leaves the file written before."""
    probe = tmp_path / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    sst = np.random.default_rng(6).normal(15, 3, size=(64, 90, 180)).astype("f4")
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), sst)}).chunk({"time": 32})
    path = tmp_path / "f.nc"
    save(ds.isel(time=slice(0, 8)), path, progress=False)
    old = path.read_bytes()
    size = storage_chunks(sst.shape, ("time", "lat", "lon"), 4, ds.sst.chunks)
    last = tuple((n - 1) // c * c for n, c in zip(sst.shape, size, strict=True))  # the second task's last chunk
    offsets, failed = {}, []
    real_place, real_write_at = uncached.ChunkFile.place, uncached.ChunkFile.write_at

    def place(self, dataset, corner, payload):
        offset = real_place(self, dataset, corner, payload)
        offsets[tuple(corner)] = offset
        return offset

    def full_disk_at_the_last_chunk(self, payload, offset):
        if offset == offsets.get(last):  # placed before its write is handed over
            failed.append(offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_at(self, payload, offset)

    monkeypatch.setattr(uncached.ChunkFile, "place", place)
    monkeypatch.setattr(uncached.ChunkFile, "write_at", full_disk_at_the_last_chunk)
    with pytest.raises(OSError, match="(?i)no space left"):
        save(ds, path, overwrite=True, progress=False)
    assert max(offsets) == last and failed == [offsets[last]]
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.nc", "probe"]


def test_a_writer_after_close_is_refused_and_never_writes_into_a_file_opened_later(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\0" * (8 * 4096))
    file = uncached.open_chunk_file(path) or uncached.ChunkFile(str(path), None)
    file.close()
    paths, fds = _victims(tmp_path)
    try:
        with pytest.raises(ValueError, match="closed ChunkFile"):
            file.write_at(np.full(3 * 4096, 7, np.uint8), 100)
    finally:
        for fd in fds:
            os.close(fd)
    for victim in paths + [path]:
        assert victim.read_bytes() == b"\0" * (8 * 4096), victim


def test_pages_of_the_files_unit_are_written_through_one_descriptor_only(tmp_path):
    # review: 4 KiB was hard-coded; on a 64 KiB-page kernel both descriptors wrote parts of one cached page
    fincore = require("fincore")
    path = tmp_path / "f"
    path.write_bytes(b"\0" * (8 * 65536))
    _chunk_file_or_skip(path).close()
    plain = uncached.ChunkFile(str(path), None)
    plain.close()
    assert plain.unit == max(os.sysconf("SC_PAGE_SIZE"), os.statvfs(path).f_bsize)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # nothing of the file left in the page cache
    finally:
        os.close(fd)
    direct = os.open(path, os.O_WRONLY | os.O_DIRECT)
    file = uncached.ChunkFile(str(path), direct, unit=65536)  # as on a kernel with 64 KiB pages
    assert file.h5py_options()["alignment_interval"] == 65536
    try:
        file.write_at(np.full(4 * 65536, 7, np.uint8), 3 * 4096)
    finally:
        file.close()
    resident = subprocess.run([fincore, "-b", "-n", "-o", "RES", str(path)], capture_output=True, text=True, check=True)
    # through the page cache: 52 KiB up to the first 64 KiB boundary and the last 12 KiB, nothing else; fincore
    # counts the system's whole pages holding those bytes (16 of 4 KiB; 2 of 64 KiB, 128 KiB, on such a kernel)
    page = os.sysconf("SC_PAGE_SIZE")
    spans = ((3 * 4096, 65536), (4 * 65536, 4 * 65536 + 3 * 4096))
    cached = {i for start, stop in spans for i in range(start // page, (stop - 1) // page + 1)}
    assert int(resident.stdout) == len(cached) * page, (resident.stdout, page)
    expected = bytearray(8 * 65536)
    expected[3 * 4096 : 3 * 4096 + 4 * 65536] = b"\7" * (4 * 65536)
    assert path.read_bytes() == bytes(expected)


@pytest.mark.parametrize("value", ["0", "off"])
def test_the_environment_variable_switches_o_direct_off_and_the_file_is_written_through_the_page_cache(
    tmp_path, monkeypatch, value
):
    fincore = require("fincore")
    probe = tmp_path / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", value)
    assert uncached.open_chunk_file(probe) is None
    sst = np.random.default_rng(2).normal(15, 3, size=(64, 90, 180)).astype("f4")  # 4 MB
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), sst)}).chunk({"time": 32})
    path = tmp_path / "f.nc"
    save(ds, path, compression="none", progress=False)
    resident = subprocess.run([fincore, "-b", "-n", "-o", "RES", str(path)], capture_output=True, text=True, check=True)
    assert int(resident.stdout) >= 0.9 * os.path.getsize(path), (resident.stdout, os.path.getsize(path))
    np.testing.assert_array_equal(xr.open_dataset(path)["sst"].values, sst)


def test_a_direct_write_the_device_refuses_with_einval_is_done_through_the_page_cache(tmp_path):
    path, theirs = tmp_path / "f", tmp_path / "theirs"
    background = np.random.default_rng(3).integers(0, 256, 4 * 4096, dtype=np.uint8).tobytes()
    for p in (path, theirs):
        p.write_bytes(background)
    _chunk_file_or_skip(path).close()
    # a unit of 1 byte sends an unaligned length to the O_DIRECT descriptor, which the kernel refuses (EINVAL)
    direct = os.open(path, os.O_WRONLY | os.O_DIRECT)
    with pytest.raises(OSError) as refused:
        os.pwrite(direct, uncached.aligned_empty(1000), 0)
    assert refused.value.errno == errno.EINVAL
    file = uncached.ChunkFile(str(path), direct, unit=1)
    payloads = [np.full(1000, 7, np.uint8), np.full(3000, 9, np.uint8)]
    try:
        file.write_at(payloads[0], 3)
        assert file.direct is None  # the page cache from now on
        file.write_at(payloads[1], 5000)
    finally:
        file.close()
    fd = os.open(theirs, os.O_WRONLY)
    try:
        os.pwrite(fd, payloads[0], 3)
        os.pwrite(fd, payloads[1], 5000)
    finally:
        os.close(fd)
    assert path.read_bytes() == theirs.read_bytes()


def test_a_pwrite_that_writes_nothing_raises_instead_of_looping(tmp_path, monkeypatch):
    calls = []

    def writes_nothing(fd, data, offset):  # no real file does this on demand: a stand-in for os.pwrite
        calls.append(offset)
        if len(calls) > 100:
            raise RuntimeError("still retrying after 100 calls")
        return 0

    monkeypatch.setattr(os, "pwrite", writes_nothing)
    with pytest.raises(OSError) as err:
        uncached._pwrite_all(0, memoryview(b"x" * 10), 40)
    assert err.value.errno == errno.EIO and calls == [40]


def test_a_unit_larger_than_4_kib_pads_chunks_by_less_than_a_sixteenth(tmp_path, monkeypatch):
    """On 64 KiB pages (or blocks), storage chunks aligned to the unit grew this file by 21 %."""
    probe = tmp_path / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    sst = np.random.default_rng(4).normal(15, 3, size=(120, 180, 360)).astype("f4")  # 31 MB
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), sst)}).chunk({"time": 10})
    sizes = {}
    for name, page, switch in (("cached", uncached.PAGE, "0"), ("direct", 65536, "1")):
        monkeypatch.setattr(uncached, "PAGE", page)
        monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", switch)
        path = tmp_path / f"{name}.nc"
        save(ds, path, compression="none", progress=False)
        np.testing.assert_array_equal(xr.open_dataset(path)["sst"].values, sst)
        sizes[name] = os.path.getsize(path)
    assert sizes["direct"] < sizes["cached"] * (1 + 1 / 16), sizes


def test_a_value_not_understood_is_refused_before_the_netcdf_file_exists(tmp_path, monkeypatch):
    from oceanflow.io.netcdf import write_netcdf

    monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", "disable")
    ds = xr.Dataset({"sst": (("time", "lat"), np.zeros((4, 3), "f4"))}).chunk({"time": 2})
    with pytest.raises(ValueError, match="OCEANFLOW_NETCDF_DIRECT='disable' is not understood"):
        write_netcdf(ds, tmp_path / "f.nc")
    assert not (tmp_path / "f.nc").exists()


def _in_a_new_thread(function):
    """``function()`` run on a thread of its own (fresh thread-local scratch buffers); its result."""
    results, errors = [], []

    def run():
        try:
            results.append(function())
        except BaseException as err:  # re-raised on the caller's thread
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    if errors:
        raise errors[0]
    return results[0]


def test_switch_scratch_keeps_the_buffers_returned_so_far_while_the_other_set_is_filled():
    def fill_both_sets():
        first = uncached.scratch("x", 5000)
        first[...] = 1
        uncached.switch_scratch()
        second = uncached.scratch("x", 5000)  # the chunk compressed while ``first`` is being written
        second[...] = 2
        grown = uncached.scratch("x", 9000)  # a larger request in the other set: a new buffer there too
        grown[...] = 3
        uncached.switch_scratch()
        back = uncached.scratch("x", 5000)
        return first, second, grown, back

    first, second, grown, back = _in_a_new_thread(fill_both_sets)
    assert not np.shares_memory(first, second) and not np.shares_memory(first, grown)
    assert (first == 1).all() and (grown == 3).all()
    assert np.shares_memory(back, first) and back.ctypes.data == first.ctypes.data
    assert all(buf.ctypes.data % uncached.PAGE == 0 for buf in (first, second, grown))


def test_switch_scratch_switches_only_the_calling_threads_buffers():
    def switched_elsewhere():
        mine = uncached.scratch("y", 100)
        other = _in_a_new_thread(lambda: (uncached.switch_scratch(), uncached.scratch("y", 100))[1])
        return mine, other, uncached.scratch("y", 100)

    mine, other, again = _in_a_new_thread(switched_elsewhere)
    assert again.ctypes.data == mine.ctypes.data
    assert not np.shares_memory(other, mine)


def test_writes_handed_over_before_a_refused_one_are_waited_for_before_the_error(monkeypatch):
    """netcdf._write_chunks dropped the writes it had handed to the writer threads when a later hand-over
    raised: the task then went on (and its thread refilled their scratch buffers) under those writes."""
    from concurrent.futures import Future

    from oceanflow.io import netcdf

    class DoneWhenWaitedFor(Future):  # a write the device finishes once someone waits for it
        def exception(self, timeout=None):
            if not self.done():
                self.set_result(None)
            return super().exception(timeout)

    handed = []

    class File:  # a ChunkFile refusing its third chunk (the save ended meanwhile)
        def place(self, dataset, corner, payload):
            return corner[0] * 4096

        def write_at_later(self, payload, offset):
            if len(handed) == 2:
                raise ValueError("write_at_later() on a closing ChunkFile")
            handed.append(DoneWhenWaitedFor())
            return handed[-1]

    @contextlib.contextmanager
    def held(target):
        yield None, File()

    monkeypatch.setattr(netcdf, "_dataset", held)
    with pytest.raises(ValueError, match="closing ChunkFile"):
        netcdf._write_chunks([((k,), b"x" * 10) for k in range(4)], None)
    assert len(handed) == 2 and all(write.done() for write in handed)


def _direct_folder_or_skip(folder):
    """Skip unless ``folder`` is where write_new_file uses O_DIRECT (decided by findmnt and a plain open)."""
    probe = folder / "probe"
    probe.touch()
    _chunk_file_or_skip(probe).close()
    probe.unlink()


@pytest.mark.parametrize("size", [1, 4096, 3 * 4096 + 7, (9 << 20) + 5])
@pytest.mark.parametrize("shift", [0, 3], ids=["aligned-buffer", "unaligned-buffer"])
def test_write_new_file_gives_the_bytes_of_a_plain_write_and_bypasses_the_page_cache(tmp_path, size, shift):
    fincore = require("fincore")
    _direct_folder_or_skip(tmp_path)
    rng = np.random.default_rng(size + shift)
    buffer = uncached.aligned_empty(size + shift)[shift:]
    buffer[...] = rng.integers(0, 256, size, dtype=np.uint8)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    uncached.write_new_file(ours, buffer.data)
    resident = subprocess.run([fincore, "-b", "-n", "-o", "RES", str(ours)], capture_output=True, text=True)
    assert int(resident.stdout) < 4096 * 2  # at most the last partial unit went through the page cache
    with open(theirs, "wb") as f:
        f.write(buffer.data)
    assert ours.read_bytes() == theirs.read_bytes()


def test_write_new_file_refuses_an_existing_file_and_leaves_it(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        uncached.write_new_file(path, memoryview(b"new"))
    assert path.read_bytes() == b"old"
