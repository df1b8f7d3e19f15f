"""Replacing an output all or nothing: one ``os.replace`` for a file, a journal for a directory.

A save writes into a hidden temporary sibling of its path and then *commits*:

* a file (NetCDF) over a file, or anything onto a free path, is one
  ``os.replace``: atomic, the path always holds the old or the new output;
* a directory (Zarr store), or a file over a directory, cannot be renamed over
  the old output in one step.  The commit first writes a small journal
  (``.NAME.oceanflow-commit``) naming the new and the old output, then moves the
  old output aside, moves the new one in and removes the journal; the old
  output is deleted last.  A crash at any point leaves either the old or the
  new output complete at the path, or a journal with which the next
  :func:`recover` (run by every ``save`` and ``open_dataset`` of that path)
  finishes the replacement, with a :class:`RecoveryWarning` that says so.

Commits and recoveries of one path hold an exclusive lock
(``.NAME.oceanflow-lock``, ``flock``).  Writers compare the path's identity when
they commit with the one they started from: of concurrent writers one wins
whole and the others get a :class:`ConcurrentWriteError`, their temporary
output removed.  Temporaries of writers that no longer run (a crash, a kill)
are removed by the next save or open of the path.

Every step of a commit is logged at DEBUG level on the ``oceanflow.io`` logger
with the names in :data:`COMMIT_STEPS`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path

logger = logging.getLogger("oceanflow.io")

__all__ = [
    "COMMIT_STEPS",
    "ConcurrentWriteError",
    "Output",
    "RecoveryWarning",
    "descriptors_on",
    "descriptors_to_null",
    "recover",
    "release_open_files",
]

#: The logged steps of a commit, in order (``logger.debug("%s: %s", step, path)``).
#: A file over a file, or any output onto a free path, takes only "commit started"
#: and "new moved in".
COMMIT_STEPS = (
    "commit started",
    "journal written",
    "old moved aside",
    "new moved in",
    "journal removed",
    "old removed",
)

#: How long a commit waits for another commit or recovery of the same path.
LOCK_TIMEOUT = 60.0

_TAG = ".oceanflow-"
_ARTIFACT = re.compile(
    r"^\.(?P<name>.+)\.oceanflow-(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})@(?P<host>.*)$"
)
_HOST = socket.gethostname().split(".")[0].replace("/", "_")

#: Temporaries this process is writing right now (not yet committed or discarded).
_WRITING: set[Path] = set()


class ConcurrentWriteError(FileExistsError):
    """Another writer replaced (or is writing) the same output while this one ran."""


class RecoveryWarning(UserWarning):
    """An interrupted replacement of an output was finished or undone."""


class Output:
    """The hidden temporary sibling that a save writes, and its commit to ``path``.

    Creating it finishes any interrupted replacement of ``path`` (see
    :func:`recover`), refuses an existing ``path`` unless ``overwrite``, refuses
    while another live writer writes ``path``, and removes the temporaries of
    writers that no longer run.

    Example
    -------
    >>> out = Output(Path("clim.zarr"), overwrite=True)   # doctest: +SKIP
    >>> ds.to_zarr(out.tmp)                               # doctest: +SKIP
    >>> out.commit()                                      # doctest: +SKIP
    """

    def __init__(self, path: Path, *, overwrite: bool, register: bool = True) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        recover(self.path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it, or choose another path")
        _refuse_live_writers(self.path)
        self.expected = _identity(self.path)
        self.tmp = _artifact_path(self.path, "tmp")
        if register:
            _WRITING.add(self.tmp)

    def commit(self) -> Path:
        """Replace ``path`` by the complete temporary output (see the module's description)."""
        path, tmp = self.path, self.tmp
        if not os.path.lexists(tmp):
            _WRITING.discard(tmp)
            raise FileNotFoundError(
                f"the temporary output {tmp.name} of {path} is gone (a later save of the same path "
                "removed this unfinished write); call save again"
            )
        old = None
        _WRITING.add(tmp)
        try:
            old = self._replace(path, tmp)
        finally:
            _WRITING.discard(tmp)
        if old is not None:
            _remove(old)
            _step("old removed", path)
            _WRITING.discard(old)
        return path

    def check(self) -> None:
        """Refuse (:class:`ConcurrentWriteError`) if another writer changed ``path`` since it was claimed:
        outputs committed together are all checked first, so a conflict leaves every one of them unchanged."""
        if _identity(self.path) != self.expected:
            raise _conflict(self.path, self.expected)

    def _replace(self, path: Path, tmp: Path) -> Path | None:
        with _lock(path):
            _step("commit started", path)
            _recover_locked(path)
            current = _identity(path)
            if current != self.expected:
                _remove(tmp)
                raise _conflict(path, self.expected)
            if current is not None and (tmp.is_dir() or path.is_dir()):
                return _replace_with_journal(path, tmp)
            os.replace(tmp, path)
            _sync_directory(path.parent)
            _step("new moved in", path)
            return None

    def discard(self) -> None:
        """Remove the temporary output, closing files still open on it first."""
        _WRITING.discard(self.tmp)
        release_open_files(self.tmp)
        _remove(self.tmp)


def recover(*paths: Path) -> list[str]:
    """Finish interrupted replacements of ``paths`` and remove dead writers' leftovers.

    Returns what was done (each also issued as a :class:`RecoveryWarning`).
    Cheap when there is nothing to do: one listing per directory, no lock.
    """
    notes = []
    by_parent: dict[Path, set[str]] = {}
    for path in map(Path, paths):
        by_parent.setdefault(path.parent, set()).add(path.name)
    for parent, names in by_parent.items():
        try:
            hidden = [entry.name for entry in os.scandir(parent) if _TAG in entry.name]
        except OSError:
            continue
        present = set(hidden)
        for name in sorted(names):
            path = parent / name
            if _journal_path(path).name in present or _lock_path(path).name in present:
                note = _recover_with_lock(path)
                notes += [note] if note else []
        for entry in hidden:
            match = _ARTIFACT.match(entry)
            if match and match["name"] in names and _is_dead(parent / entry, match):
                logger.info("%s: removing %s, left by a save that no longer runs", parent / match["name"], entry)
                with contextlib.suppress(OSError):
                    _remove(parent / entry)
    return notes


def _recover_with_lock(path: Path) -> str | None:
    try:
        with _lock(path):  # also removes a lock file left by a killed writer
            return _recover_locked(path)
    except PermissionError as err:
        warnings.warn(
            f"{path}: an earlier save was interrupted, and finishing it needs write permission "
            f"in {path.parent} ({err.strerror})",
            RecoveryWarning,
            stacklevel=3,
        )
        return None


def release_open_files(path: Path) -> None:
    """Close what this process still holds open on ``path``, so its space is freed once removed.

    Files xarray keeps open on ``path`` (its file cache) are closed.  HDF5 cannot
    close a file while the disk is full (it must flush metadata first): the file
    is truncated to free its data and closed again.  A descriptor still on
    ``path`` after that (Linux) is truncated and pointed at ``/dev/null``.
    """
    text = os.path.abspath(os.fspath(path))
    for handle in _cached_handles(text):
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - a full disk: free the data, then HDF5 can flush and close
            with contextlib.suppress(OSError):
                os.truncate(text, 0)
            with contextlib.suppress(Exception):
                handle.close()
    descriptors_to_null(text, truncate=True)


def descriptors_on(path: str) -> frozenset[int]:
    """This process's descriptors open on ``path`` (Linux; elsewhere none).

    The descriptors are found through ``/proc/self/fd``, which names files by
    their real path, so ``path`` is resolved (symbolic links followed) first; a
    file removed since it was opened matches too.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     print(f.fileno() in descriptors_on(f.name) or not os.path.isdir("/proc/self/fd"))
    True
    """
    text = os.path.realpath(path)
    found = set()
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{entry}") in (text, f"{text} (deleted)"):
                    found.add(int(entry))
    return frozenset(found)


def descriptors_to_null(path: str, truncate: bool = False, keep: Collection[int] = ()) -> None:
    """Point this process's descriptors open on ``path`` (:func:`descriptors_on`) at ``/dev/null``,
    but those in ``keep`` (Linux; elsewhere nothing).

    ``keep``: the descriptors that were open on ``path`` before the caller's
    own write began (the user's own, which are not the write's to close).
    With ``truncate``, each file is emptied first, so its space is freed
    although it stays open.  Any ``OSError`` (no descriptor left for
    ``/dev/null``) leaves the descriptors as they were: the caller's own error
    then stands.
    """
    fds = sorted(descriptors_on(path) - set(keep))
    if not fds:
        return
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in fds:
                with contextlib.suppress(OSError):
                    if truncate:
                        os.ftruncate(fd, 0)
                    os.dup2(null, fd)
        finally:
            os.close(null)


def _cached_handles(text: str) -> list:
    """Remove and return the files xarray's file cache holds open on ``text``."""
    try:
        from xarray.backends.file_manager import FILE_CACHE
    except ImportError:
        return []
    handles = []
    with FILE_CACHE._lock:
        for key in list(FILE_CACHE.keys()):
            with contextlib.suppress(Exception):
                args = key[1]
                if args and os.path.abspath(os.fspath(args[0])) == text:
                    handles.append(FILE_CACHE.pop(key))
    return handles


# ---------------------------------------------------------------- commit by journal


def _replace_with_journal(path: Path, tmp: Path) -> Path:
    """Replace the existing ``path`` by ``tmp`` in three renames recorded in a journal.

    Returns the old output, moved aside, for the caller to delete outside the lock.
    """
    old = _artifact_path(path, "old")
    _WRITING.add(old)
    journal = _journal_path(path)
    record = {"new": tmp.name, "old": old.name, "pid": os.getpid(), "host": _HOST}
    staging = journal.with_name(journal.name + f"-{uuid.uuid4().hex[:8]}")
    with open(staging, "w") as stream:
        json.dump(record, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(staging, journal)
    _sync_directory(path.parent)
    _step("journal written", path)
    os.replace(path, old)
    _step("old moved aside", path)
    os.replace(tmp, path)
    _sync_directory(path.parent)
    _step("new moved in", path)
    journal.unlink()
    _sync_directory(path.parent)
    _step("journal removed", path)
    return old


def _recover_locked(path: Path) -> str | None:
    """With the lock held: finish the replacement a journal records (roll forward)."""
    journal = _journal_path(path)
    try:
        record = json.loads(journal.read_text())
        new, old = path.with_name(record["new"]), path.with_name(record["old"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # a torn journal is never written: replaced atomically
        journal.unlink()
        return None
    writer = f"pid {record.get('pid')} on {record.get('host')}"
    restored = False
    if os.path.lexists(new):
        if os.path.lexists(path):
            os.replace(path, old)
        os.replace(new, path)
    elif not os.path.lexists(path) and os.path.lexists(old):  # the new output was lost: undo
        os.replace(old, path)
        restored = True
    if not restored:
        note = (
            f"{path}: finished the interrupted replacement by an earlier save ({writer}); it holds that save's output"
        )
    else:
        note = f"{path}: restored the previous output after an interrupted save ({writer})"
    _sync_directory(path.parent)
    journal.unlink()
    _remove(old)
    warnings.warn(note, RecoveryWarning, stacklevel=4)
    logger.info(note)
    return note


# ---------------------------------------------------------------- other writers


def _refuse_live_writers(path: Path) -> None:
    """Refuse to start while another live writer has a temporary output of ``path``."""
    for artifact, match in _artifacts(path):
        if match["kind"] == "tmp" and not _is_dead(artifact, match):
            who = "this process" if _is_ours(match) else f"process {match['pid']} on {match['host']}"
            raise ConcurrentWriteError(
                f"another save ({who}) is writing {path} (temporary {artifact.name}); wait until it "
                f"finishes or write elsewhere (if no such save runs any more, delete {artifact})"
            )


def _artifacts(path: Path) -> Iterator[tuple[Path, re.Match]]:
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = _ARTIFACT.match(entry.name)
        if match and match["name"] == path.name:
            yield Path(entry.path), match


def _is_ours(match: re.Match) -> bool:
    return match["host"] == _HOST and int(match["pid"]) == os.getpid()


def _is_dead(artifact: Path, match: re.Match) -> bool:
    """Whether the writer of ``artifact`` no longer runs (only decidable on this host)."""
    if match["host"] != _HOST:
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return artifact not in _WRITING  # an unfinished compute=False write, or a failed one
    started = _process_start(pid)
    if started is None:
        return True
    try:  # a pid reused by a process started after the artifact's last change is not its writer
        return started > os.lstat(artifact).st_mtime + 1.0
    except FileNotFoundError:
        return False


def _process_start(pid: int) -> float | None:
    """Start time (s since the epoch) of process ``pid``; None if it does not run; 0 if unknown."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(float(line.split()[1]) for line in lines if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0


def _conflict(path: Path, expected) -> FileExistsError:
    if expected is None:
        return ConcurrentWriteError(
            f"{path} was created by another writer while this save ran; this save's output was "
            "discarded (pass overwrite=True to replace it, or choose another path)"
        )
    return ConcurrentWriteError(
        f"{path} was replaced by another writer while this save ran; this save's output was "
        "discarded and the other writer's kept. Save again to replace it, or write elsewhere"
    )


# ---------------------------------------------------------------- small helpers


def _artifact_path(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}{_TAG}{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}@{_HOST}")


def _journal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TAG}commit")


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TAG}lock")


def _identity(path: Path):
    """What identifies the output at ``path`` now (None: nothing there)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _step(step: str, path: Path) -> None:
    logger.debug("%s: %s", step, path)


@contextlib.contextmanager
def _lock(path: Path, timeout: float = LOCK_TIMEOUT):
    """Exclusive ``flock`` on ``.NAME.oceanflow-lock``, removed on release.

    Where the file system has no ``flock`` (some network file systems), the
    commit goes ahead unlocked: the identity check still catches most races.
    """
    import fcntl

    lock_path = _lock_path(path)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise ConcurrentWriteError(
                    f"{path} is being replaced by another process (it holds {lock_path.name}) for more "
                    f"than {timeout:.0f} s; try again, or write elsewhere"
                ) from None
            time.sleep(0.02)
            continue
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                os.close(fd)
                raise
            break  # no flock on this file system
        try:  # the lock file may have been removed and recreated between open and flock
            if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Make the renames in ``directory`` durable (where directories can be fsync'ed)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
