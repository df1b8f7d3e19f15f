"""Replacing outputs all or nothing: a crash at every step of a commit, concurrent writers,
failed lazy writes and a full disk, on real files (a small tmpfs for the full disk)."""

import contextlib
import errno
import gc
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from oceanflow.io import atomic, open_dataset, save

OLD = xr.Dataset({"v": ("x", np.full(500, 1.0))}, attrs={"which": "old"})
NEW = xr.Dataset({"v": ("x", np.full(1000, 2.0))}, attrs={"which": "new"})

#: What a path holds after a crash at each step, and whether a journal must be finished.
ZARR_AFTER_CRASH = {
    "commit started": ("old", False),
    "journal written": ("old", True),
    "old moved aside": (None, True),
    "new moved in": ("new", True),
    "journal removed": ("new", False),
    "old removed": ("new", False),
}
NETCDF_AFTER_CRASH = {"commit started": ("old", False), "new moved in": ("new", False)}

# A driver that imports once and forks one writer per case; each writer kills itself
# (SIGKILL: no cleanup runs) right after the commit step named for it.
CRASH_DRIVER = textwrap.dedent(
    """
    import json, logging, os, signal, sys
    import numpy as np, xarray as xr, dask, zarr, netCDF4
    from oceanflow.io import save

    class KillAt(logging.Handler):
        def __init__(self, step):
            super().__init__()
            self.step = step

        def emit(self, record):
            if record.args and record.args[0] == self.step:
                os.kill(os.getpid(), signal.SIGKILL)

    new = xr.Dataset({"v": ("x", np.full(1000, 2.0))}, attrs={"which": "new"})
    for path, step in json.loads(sys.argv[1]):
        pid = os.fork()
        if pid == 0:
            logger = logging.getLogger("oceanflow.io")
            logger.setLevel(logging.DEBUG)
            logger.addHandler(KillAt(step))
            with dask.config.set(scheduler="synchronous"):
                save(new, path, overwrite=True)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(json.dumps([path, step, os.WIFSIGNALED(status) and os.WTERMSIG(status)]))
    """
)


def which(path):
    """'old', 'new' (complete and equal to what was written) or None when nothing is there."""
    if not os.path.lexists(path):
        return None
    with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else "netcdf4") as ds:
        label = ds.attrs["which"]
        xr.testing.assert_identical(ds.load().drop_attrs(), (OLD if label == "old" else NEW).drop_attrs())
    return label


def leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


@pytest.mark.parametrize("suffix, expected", [(".zarr", ZARR_AFTER_CRASH), (".nc", NETCDF_AFTER_CRASH)])
def test_a_crash_at_every_commit_step_leaves_the_old_or_the_new_output(tmp_path, suffix, expected):
    assert set(ZARR_AFTER_CRASH) == set(atomic.COMMIT_STEPS)
    cases = []
    for step in expected:
        directory = tmp_path / step.replace(" ", "_")
        directory.mkdir()
        save(OLD, directory / f"out{suffix}")
        cases.append([str(directory / f"out{suffix}"), step])
    run = subprocess.run(
        [sys.executable, "-c", CRASH_DRIVER, json.dumps(cases)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    killed = {tuple(json.loads(line)[:2]): json.loads(line)[2] for line in run.stdout.splitlines()}
    for path_text, step in cases:
        path = type(tmp_path)(path_text)
        assert killed[(path_text, step)] == 9, f"the writer was not killed at {step!r}"
        holds, journal = expected[step]
        assert which(path) == holds, step
        assert (path.parent / f".{path.name}.oceanflow-commit").exists() == journal, step
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reopened = open_dataset(path)
        notes = [w for w in caught if issubclass(w.category, atomic.RecoveryWarning)]
        assert len(notes) == journal, (step, [str(w.message) for w in caught])
        if journal:
            assert "interrupted" in str(notes[0].message) and str(path) in str(notes[0].message)
        after = "new" if journal else holds  # a journal is rolled forward: the new output was complete
        assert reopened.attrs["which"] == after and which(path) == after, step
        assert leftovers(path.parent, path.name) == [], step  # the dead writer's temporaries are gone
        save(OLD, path, overwrite=True)
        assert which(path) == "old" and leftovers(path.parent, path.name) == []


def test_a_crash_during_recovery_is_recovered_by_the_next_open(tmp_path):
    path = tmp_path / "out.zarr"
    save(OLD, path)
    run = subprocess.run(
        [sys.executable, "-c", CRASH_DRIVER, json.dumps([[str(path), "old moved aside"]])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert not path.exists()
    # A second crash, half-way through a recovery: the new output already moved in, the journal kept.
    record = json.loads((tmp_path / ".out.zarr.oceanflow-commit").read_text())
    os.replace(tmp_path / record["new"], path)
    with pytest.warns(atomic.RecoveryWarning, match="finished the interrupted replacement"):
        assert open_dataset(path).attrs["which"] == "new"
    assert leftovers(tmp_path, "out.zarr") == []


# A driver that imports once and, per scenario, forks three writers of one path at the same moment.
CONCURRENT_DRIVER = textwrap.dedent(
    """
    import json, logging, os, sys, time
    import numpy as np, xarray as xr, dask, dask.array as dsa, zarr, netCDF4
    from oceanflow.io import save

    class Slow(logging.Handler):  # widen the window between moving the old output aside and the new one in
        def emit(self, record):
            if record.args and record.args[0] == "old moved aside":
                time.sleep(0.5)

    def slow(block):
        time.sleep(0.2)
        return block

    def write(path, value, overwrite):
        logger = logging.getLogger("oceanflow.io")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Slow())
        data = dsa.map_blocks(slow, dsa.full((4, 100), value, chunks=(1, 100)), dtype="f8")
        try:
            with dask.config.set(scheduler="synchronous"):
                save(xr.Dataset({"v": (("t", "x"), data)}, attrs={"value": value}), path, overwrite=overwrite)
            return None
        except Exception as err:
            return f"{type(err).__name__}: {err}"

    for path, overwrite in json.loads(sys.argv[1]):
        children = []
        for value in (10.0, 20.0, 30.0):
            pid = os.fork()
            if pid == 0:
                error = write(path, value, overwrite)
                os.write(1, (json.dumps([path, value, error]) + "\\n").encode())  # one write: lines never mix
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
    """
)


def test_concurrent_writers_one_wins_whole_the_others_get_a_clear_error(tmp_path):
    scenarios = []
    for suffix in (".zarr", ".nc"):
        for existing in (True, False):
            directory = tmp_path / f"{suffix[1:]}-{'existing' if existing else 'new'}"
            directory.mkdir()
            if existing:
                save(OLD, directory / f"out{suffix}")
            scenarios.append([str(directory / f"out{suffix}"), existing])
    run = subprocess.run(
        [sys.executable, "-c", CONCURRENT_DRIVER, json.dumps(scenarios)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    for path_text, _ in scenarios:
        path = type(tmp_path)(path_text)
        outcomes = {value: error for p, value, error in results if p == path_text}
        assert len(outcomes) == 3, results
        winners = [value for value, error in outcomes.items() if error is None]
        assert len(winners) == 1, outcomes
        for error in outcomes.values():
            if error is not None:
                assert error.startswith(("ConcurrentWriteError", "FileExistsError")), error
                assert str(path) in error and ("another" in error or "exists" in error), error
        with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else "netcdf4") as ds:
            assert ds.attrs["value"] == winners[0]
            np.testing.assert_array_equal(ds.v.values, np.full((4, 100), winners[0]))
        assert leftovers(path.parent, path.name) == []


FAILURES = []


def _fail_on_second_once(block, block_info=None):
    if block_info[0]["chunk-location"][0] == 1 and not FAILURES:
        FAILURES.append(1)
        raise RuntimeError("lost connection")
    return block


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_failed_lazy_write_is_cleaned_up_by_the_next_save_in_the_same_process(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    bad = NEW.chunk({"x": 250})
    bad["v"] = bad.v.copy(data=dsa.map_blocks(_fail_on_second_once, bad.v.data, dtype="f8"))
    FAILURES.clear()
    pending = save(bad, path, compute=False)
    with pytest.raises(RuntimeError, match="lost connection"):
        dask.compute(pending, scheduler="synchronous")
    assert leftovers(tmp_path, "") != []  # as documented: the temporary stays until the next save
    save(OLD, path)
    assert which(path) == "old" and leftovers(tmp_path, path.name) == []
    with pytest.raises(FileNotFoundError, match="later save|oceanflow-tmp"):  # its temporary is gone
        dask.compute(pending, scheduler="synchronous")
    assert which(path) == "old" and leftovers(tmp_path, path.name) == []


@contextlib.contextmanager
def small_tmpfs(directory, size="2m"):
    directory.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)]
    mounted = subprocess.run(command, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def open_descriptors(directory):
    found = []
    for entry in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{entry}").startswith(str(directory)):
                found.append(entry)
    return found


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_full_disk_says_so_and_frees_the_temporary_at_once(tmp_path, suffix):
    with small_tmpfs(tmp_path / "small") as disk:
        free = os.statvfs(disk).f_bavail
        big = xr.Dataset({"x": (("t", "y"), np.random.default_rng(0).random((400, 1000)))}).chunk({"t": 50})
        for attempt in range(2):  # the second attempt fails the same way: nothing was kept open
            with pytest.raises(OSError, match="no space left on device") as caught:
                save(big, disk / f"out{suffix}")
            assert caught.value.errno == errno.ENOSPC and str(disk / f"out{suffix}") in str(caught.value)
            assert os.listdir(disk) == [] and os.statvfs(disk).f_bavail == free, attempt
            assert open_descriptors(disk) == []
        save(big.isel(t=slice(0, 10)), disk / f"small{suffix}")
        assert which_values(disk / f"small{suffix}").shape == (10, 1000)


def _descriptors_under(directory):
    fds = Path("/proc/self/fd")
    real = os.path.realpath(directory)
    return [t for t in (os.readlink(e) for e in fds.iterdir() if e.is_symlink()) if t.startswith(real + os.sep)]


@pytest.fixture
def no_gc():
    """The garbage collector off during the test: a failed file's netCDF4.Dataset, in a
    reference cycle, would be closed whenever gc runs, hiding a file left open."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("through_link", [False, True])
def test_a_full_disk_leaves_no_netcdf_file_open_for_the_next_save(tmp_path, through_link):
    """An in-memory Dataset is written by netCDF-C, which kept the file open when it could not flush it on
    close; HDF5 then refused ("Permission denied") a later file given the same device and inode: here the
    first file of the next small tmpfs.  Oracle: no descriptor left on the full disk (/proc/self/fd names
    real paths, also when the output was reached through a symbolic link), and that save succeeds."""
    data = xr.Dataset({"x": (("t", "y"), np.random.default_rng(0).random((400, 1000)))})  # 3.2 MB, not dask
    with small_tmpfs(tmp_path / "full", size="256k") as disk:
        target = disk
        if through_link:
            target = tmp_path / "link"
            target.symlink_to(disk, target_is_directory=True)
        with pytest.raises(OSError, match="no space left on device"):
            save(data, target / "out.nc")
        assert _descriptors_under(disk) == []
    with small_tmpfs(tmp_path / "next", size="256k") as disk:
        save(data.isel(t=slice(0, 2)), disk / "out.nc")
        assert (which_values(disk / "out.nc") == data.x.values[:2]).all()


@pytest.mark.usefixtures("no_gc")
def test_a_full_disk_leaves_the_callers_own_descriptor_on_the_file_alone(tmp_path):
    """write_netcdf (public) on a path the caller holds open, failing on a full disk: the
    descriptors HDF5 opened for the failed file are pointed at /dev/null so that it closes, but
    the caller's own, open before the write, is left on the file.  Oracle: the inode of the
    caller's descriptor (fstat) against the path's, and no other descriptor left on the disk."""
    from oceanflow.io.netcdf import write_netcdf

    data = xr.Dataset({"x": (("t", "y"), np.random.default_rng(0).random((400, 1000)))})  # 3.2 MB, not dask
    with small_tmpfs(tmp_path / "full", size="256k") as disk:
        path = disk / "out.nc"
        path.write_bytes(b"")
        own = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(Exception, match="HDF|[Nn]o space"):
                write_netcdf(data, path)
            assert os.fstat(own).st_ino == os.stat(path).st_ino
            assert _descriptors_under(disk) == [os.path.realpath(path)]  # the caller's only
        finally:
            os.close(own)


def which_values(path):
    with xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else "netcdf4") as ds:
        return ds.x.values
