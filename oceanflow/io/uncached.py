"""Storage chunks written past the page cache (``O_DIRECT``) into a NetCDF-4 file that HDF5 keeps open.

Writing a new file through the page cache costs a fresh page of memory for
every page written, filled by a copy; where freed memory goes back to a
hypervisor, that first touch of each page can be most of a NetCDF save's CPU
time (measurements in docs/netcdf.rst).  Written with ``O_DIRECT``, the bytes
go from the task's buffer to the device, and a multi-gigabyte output does not
push the inputs out of the page cache either.

How: HDF5 (h5py's file-object driver) opens the file through a
:class:`ChunkFile`.  HDF5's own reads and writes (metadata, chunk index) go
to an ordinary descriptor.  A storage chunk given to :meth:`ChunkFile.place`
is allocated and indexed by HDF5, which then hands its bytes to
:meth:`ChunkFile.write` to be written: those are not written there but
returned as the chunk's offset, and the task writes them with
:meth:`ChunkFile.write_at` once it has left the file's lock (so tasks write
in parallel), or hands them to the file's writer threads with
:meth:`ChunkFile.write_at_later` and compresses its next chunk meanwhile (an
``O_DIRECT`` write waits for the device): the whole units inside the chunk
with ``O_DIRECT``, the partial units at its ends through the ordinary
descriptor.  Each page of the
file is thus written through one descriptor only.  HDF5 aligns allocations of
:data:`ALIGN_THRESHOLD` bytes or more (and of 16 units or more) to the file's unit
(``H5Pset_alignment``), so a large chunk starts on a unit.  The unit (:attr:`ChunkFile.unit`) is the
larger of the memory page (:data:`PAGE`: 64 KiB on some aarch64 and ppc64le
kernels, whose page cache holds 64 KiB pages) and the file system's block.

Only where it is known to work: Linux, a local file system in
:data:`LOCAL_FILE_SYSTEMS` (on NFS, each ``O_DIRECT`` write would wait for the
server), and an ``O_DIRECT`` descriptor that opens; a write refused with
``EINVAL`` (an alignment the device does not take) is done through the page
cache, and so are the later ones.  Elsewhere, and where the environment
variable ``OCEANFLOW_NETCDF_DIRECT`` is ``0`` (or ``false``, ``no``, ``off``; other
values than these and ``1``, ``true``, ``yes``, ``on`` are refused),
:func:`open_chunk_file` returns None and HDF5 writes the file itself, through
the page cache, as before (docs/netcdf.rst says when to choose that).

Example
-------
>>> file = open_chunk_file("out.nc")          # doctest: +SKIP
>>> h5 = h5py.File(file, "r+", **file.h5py_options())  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .._env import switch

__all__ = [
    "ALIGN_THRESHOLD",
    "LOCAL_FILE_SYSTEMS",
    "PAGE",
    "WRITERS",
    "ChunkFile",
    "DIRECT_FILE_BYTES",
    "aligned_empty",
    "direct_file_writes",
    "direct_writes_switched_on",
    "file_system_type",
    "open_chunk_file",
    "scratch",
    "switch_scratch",
    "write_direct",
    "write_new_file",
]

#: This system's memory page (at least 4 KiB): alignment of buffers and least unit of ``O_DIRECT`` writes.
PAGE = max(os.sysconf("SC_PAGE_SIZE"), 4096) if hasattr(os, "sysconf") else 4096
#: HDF5 aligns allocations of at least this many bytes (storage chunks), and of at least 16 units where the
#: file's unit is larger (so that padding stays under 1/16 of a chunk), to the file's unit.
ALIGN_THRESHOLD = 64 << 10
_SWITCH = "OCEANFLOW_NETCDF_DIRECT"
#: File systems on which large chunks are written with ``O_DIRECT``.
#: Not btrfs: since Linux 6.14 it writes ``O_DIRECT`` data of checksummed files (its default) through the page
#: cache anyway.
LOCAL_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs"})
#: Threads of a :class:`ChunkFile` that write chunks handed to :meth:`ChunkFile.write_at_later`.
WRITERS = 2


def direct_writes_switched_on() -> bool:
    """Whether the environment variable ``OCEANFLOW_NETCDF_DIRECT`` leaves ``O_DIRECT`` writes on (the default):
    NetCDF storage chunks, and Zarr chunk files of :data:`DIRECT_FILE_BYTES` or more (:func:`write_new_file`).

    Its values are those of every ``OCEANFLOW_*`` switch (:mod:`oceanflow._env`); any other is refused,
    naming the variable, rather than silently read as on.

    >>> direct_writes_switched_on() in (True, False)
    True
    """
    return switch(_SWITCH, default=True, what="O_DIRECT writes of NetCDF chunks")


def open_chunk_file(path: str | os.PathLike) -> ChunkFile | None:
    """A :class:`ChunkFile` on the existing file ``path``, or None where ``O_DIRECT`` is not used (see above)."""
    path = os.fspath(path)
    flag = getattr(os, "O_DIRECT", None)
    if flag is None or not direct_writes_switched_on() or file_system_type(path) not in LOCAL_FILE_SYSTEMS:
        return None
    try:
        direct = os.open(path, os.O_WRONLY | flag | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return ChunkFile(path, direct)
    except BaseException:
        os.close(direct)
        raise


def file_system_type(path: str | os.PathLike) -> str | None:
    """The type of the file system holding ``path`` (``/proc/self/mountinfo``, Linux), or None.

    Example
    -------
    >>> file_system_type("/proc")
    'proc'
    """
    try:
        where = os.path.realpath(path)
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        return None
    best, kind = -1, None
    for line in lines:
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        point = parts[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the last of equal mount points is the one on top
            best, kind = len(point), rest.split()[0]
    return kind


class ChunkFile:
    """The file as h5py's file-object driver sees it, whose storage chunks the tasks write (see the module).

    ``direct``: a descriptor of the same file opened with ``O_DIRECT`` (owned and closed by this object).
    ``unit``: bytes of the pieces written with ``O_DIRECT`` (offsets, lengths) and of HDF5's alignment; by
    default the larger of :data:`PAGE` and the file system's block size, so that no page of the page cache
    is written through both descriptors.
    """

    def __init__(self, path: str, direct: int | None, unit: int | None = None) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.unit = unit if unit is not None else max(PAGE, os.fstatvfs(self.fd).f_bsize)
        self.direct = direct
        self._owned = [self.fd] if direct is None else [self.fd, direct]
        self.pos = 0
        self._expected: tuple[int, int] | None = None  # (address, size) of the bytes HDF5 must not write
        self._placed: int | None = None
        # write_at() calls in flight, and whether close() began: close() waits for those in flight before it
        # frees the descriptor numbers, which the next file opened in this process would otherwise get
        self._state = threading.Condition()
        self._writing = 0
        self._closed = False
        self._left_to_writers = False  # close() was interrupted while writes were in flight
        self._closing = False  # close() began: no more write_at_later()
        self._writers: ThreadPoolExecutor | None = None  # started by the first write_at_later()

    def h5py_options(self) -> dict[str, Any]:
        """Keyword arguments of ``h5py.File`` that align large allocations to pages."""
        return {"alignment_threshold": max(ALIGN_THRESHOLD, 16 * self.unit), "alignment_interval": self.unit}

    # ---------------------------------------------- the file-object protocol of h5py's driver

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.pos = offset
        elif whence == os.SEEK_CUR:
            self.pos += offset
        else:
            self.pos = os.fstat(self.fd).st_size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < view.nbytes:
            n = os.preadv(self.fd, [view[done:]], self.pos + done)
            if n <= 0:
                break
            done += n
        self.pos += done
        return done

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(0, os.fstat(self.fd).st_size - self.pos)
        buffer = bytearray(size)
        return bytes(buffer[: self.readinto(buffer)])

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self._expected is not None and (_address(view), view.nbytes) == self._expected:
            self._placed = self.pos  # a chunk's bytes, written by the task with write_at()
        else:
            _pwrite_all(self.fd, view, self.pos)
        self.pos += view.nbytes
        return view.nbytes

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        os.ftruncate(self.fd, size)
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Finish the writes handed to :meth:`write_at_later`, refuse later :meth:`write_at` calls, wait for those
        in flight, then close the descriptors.

        Interrupted while it waits (``KeyboardInterrupt``), it still refuses later writes (those handed over
        and not yet begun fail), and the last write in flight closes the descriptors as it ends: never before,
        as their numbers would then be the next file's opened in this process.
        """
        with self._state:
            self._closing = True
            writers, self._writers = self._writers, None
        try:
            if writers is not None:
                writers.shutdown(wait=True)  # the writes handed over are done (or failed) first
        finally:
            self._close_descriptors()

    def _close_descriptors(self) -> None:
        with self._state:
            self._closed = True
            try:
                while self._writing:
                    self._state.wait()
            finally:
                self._left_to_writers = self._writing > 0  # interrupted: the last write in flight closes them
                owned = [] if self._left_to_writers else self._release()
        for fd in owned:
            os.close(fd)

    def _release(self) -> list[int]:
        """With ``_state`` held, closed and no write in flight: the descriptors to close (once)."""
        owned, self._owned, self.fd, self.direct = self._owned, [], -1, None
        return owned

    # ---------------------------------------------- storage chunks

    def place(self, dataset: Any, corner: tuple[int, ...], payload: Any) -> int | None:
        """Let HDF5 allocate and index the chunk of ``dataset`` (h5py) at ``corner`` holding ``payload`` (its
        stored bytes), without writing them; the offset to write them at with :meth:`write_at`, or None when
        HDF5 wrote them itself (it handed over other bytes than ``payload``).

        One call at a time per file: the caller holds the file's lock (``netcdf._dataset``), the one lock every
        writer of the file takes, so this object takes none of its own.
        """
        view = memoryview(payload).cast("B")
        self._expected, self._placed = (_address(view), view.nbytes), None
        try:
            dataset.id.write_direct_chunk(corner, payload, 0)
        finally:
            self._expected = None
        return self._placed

    def write_at(self, payload: Any, offset: int) -> None:
        """Write ``payload`` at ``offset``: whole pages with ``O_DIRECT``, the partial ones at both ends (and
        everything, where ``O_DIRECT`` is off) through the page cache."""
        with self._state:
            if self._closed:
                raise ValueError("write_at() on a closed ChunkFile (the save ended before this chunk was written)")
            self._writing += 1
            fd, direct = self.fd, self.direct  # valid until this call ends: close() waits for it
        try:
            self._write_at(fd, direct, memoryview(payload).cast("B"), offset)
        finally:
            with self._state:
                self._writing -= 1
                self._state.notify_all()
                owned = self._release() if self._left_to_writers and not self._writing else []
            for closing in owned:
                os.close(closing)

    def write_at_later(self, payload: Any, offset: int) -> Future:
        """:meth:`write_at` on one of this file's :data:`WRITERS` threads: the caller goes on (compressing the next
        chunk) while the device takes the bytes, which an ``O_DIRECT`` write waits for.  ``payload`` must stay
        unchanged until the returned future is done; its ``result()`` raises what the write raised."""
        with self._state:
            if self._closing:
                raise ValueError(
                    "write_at_later() on a closing ChunkFile (the save ended before this chunk was written)"
                )
            if self._writers is None:
                self._writers = ThreadPoolExecutor(WRITERS, thread_name_prefix="oceanflow-chunk-writer")
            return self._writers.submit(self.write_at, payload, offset)

    def _write_at(self, fd: int, direct: int | None, view: memoryview, offset: int) -> None:
        unit = self.unit
        head = min(view.nbytes, -offset % unit)
        body = (view.nbytes - head) // unit * unit if direct is not None else 0
        if direct is not None and body:
            middle = view[head : head + body]
            if _address(middle) % PAGE:
                middle = _aligned_copy(middle)
            try:
                _pwrite_all(direct, middle, offset + head)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                self.direct = None  # the device refuses this alignment: the page cache from now on (closed by close())
                _pwrite_all(fd, middle, offset + head)
        _pwrite_all(fd, view[:head], offset)
        _pwrite_all(fd, view[head + body :], offset + head + body)


#: Bytes from which :func:`write_new_file` writes a file's whole units with ``O_DIRECT`` (Zarr chunk files:
#: ``mhw.save``'s uncompressed ``seas`` and ``thresh``, 3.2 MB a block at 1 degree, as well as ``intensity``);
#: ``O_DIRECT`` writes of 128 KiB ran at a third of the speed of 1 MiB ones on the benchmark's machine.
DIRECT_FILE_BYTES = 1 << 20
#: Bytes of a misaligned file body copied at a time into a page-aligned buffer by :func:`write_new_file`.
_DIRECT_PIECE = 4 << 20


def direct_file_writes(folder: str | os.PathLike) -> bool:
    """Whether :func:`write_new_file` may write files in ``folder`` with ``O_DIRECT``: on Linux, in a local file
    system (:data:`LOCAL_FILE_SYSTEMS`), unless the environment switches ``O_DIRECT`` writes off
    (:func:`direct_writes_switched_on`)."""
    flag = getattr(os, "O_DIRECT", None)
    return flag is not None and direct_writes_switched_on() and file_system_type(folder) in LOCAL_FILE_SYSTEMS


def write_new_file(path: str | os.PathLike, view: memoryview) -> None:
    """Write the bytes ``view`` as the new file ``path`` (its folder exists; :func:`direct_file_writes`): its
    whole units from the start with ``O_DIRECT`` (from the view itself when it starts on a page, else copied
    into a page-aligned buffer, :data:`_DIRECT_PIECE` bytes at a time), the rest through the page cache.

    The file is created exclusively and is as ``open(path, "wb").write(view)`` makes it; a write refused with
    ``EINVAL`` (an alignment the device does not take) is done through the page cache.  On any error the
    file is removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        unit = max(PAGE, os.fstatvfs(fd).f_bsize)
        body = view.nbytes // unit * unit
        if body:
            _direct_body(path, fd, view[:body], unit)
        _pwrite_all(fd, view[body:], body)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _direct_body(path: str | os.PathLike, fd: int, body: memoryview, unit: int) -> None:
    """Write ``body`` (whole ``unit``s) at the start of the file ``path`` with ``O_DIRECT`` (``fd``: the
    file's ordinary descriptor, used where ``O_DIRECT`` is refused)."""
    try:
        direct = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        _pwrite_all(fd, body, 0)
        return
    try:
        write_direct(direct, fd, body, 0, unit)
    finally:
        os.close(direct)


def write_direct(direct: int, fd: int, body: memoryview, offset: int, unit: int) -> bool:
    """Write ``body`` (whole ``unit``s) at ``offset`` (a multiple of ``unit``) of a file through its ``O_DIRECT``
    descriptor ``direct``: from the view itself when it starts on a page, else copied into a page-aligned
    buffer, :data:`_DIRECT_PIECE` bytes at a time.  Where a write is refused with ``EINVAL`` (an alignment
    the device does not take), the rest is written through ``fd`` (the file's ordinary descriptor: the page
    cache) and False is returned (True: all of it written with ``O_DIRECT``)."""
    aligned = _address(body) % PAGE == 0
    step = body.nbytes if aligned else _DIRECT_PIECE // unit * unit or unit
    for start in range(0, body.nbytes, step):
        piece = body[start : start + step]
        if not aligned:
            buffer = scratch("direct file", piece.nbytes)
            buffer[...] = np.frombuffer(piece, np.uint8)
            piece = buffer.data
        try:
            _pwrite_all(direct, piece, offset + start)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            _pwrite_all(fd, body[start:], offset + start)  # the device refuses this alignment: the page cache
            return False
    return True


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < view.nbytes:
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:  # nothing written and no error: retrying would loop forever
            raise OSError(errno.EIO, f"pwrite wrote nothing at offset {offset + done}")
        done += n


def _address(view: memoryview) -> int:
    return int(np.frombuffer(view, np.uint8).ctypes.data) if view.nbytes else 0


_SCRATCH = threading.local()


def scratch(name: str, nbytes: int) -> np.ndarray:
    """This thread's reusable buffer ``name`` of ``nbytes`` bytes, on a :data:`PAGE` boundary (written with
    ``O_DIRECT`` without a copy), valid until the thread's next call for ``name``: no fresh pages, no
    allocator churn per chunk.

    Example
    -------
    >>> scratch("example", 10).ctypes.data % PAGE
    0
    """
    key = f"{name} (other set)" if getattr(_SCRATCH, "other", False) else name  # two sets: see switch_scratch()
    buf = _SCRATCH.__dict__.get(key)
    if buf is None or buf.nbytes < nbytes:
        buf = _SCRATCH.__dict__[key] = aligned_empty(nbytes)
    return buf[:nbytes]


def switch_scratch() -> None:
    """Make this thread's later :func:`scratch` calls return the buffers of its other set: those returned so
    far stay unchanged (handed to :meth:`ChunkFile.write_at_later`) while the other set is filled."""
    _SCRATCH.other = not getattr(_SCRATCH, "other", False)


def _aligned_copy(view: memoryview) -> memoryview:
    """``view`` copied into this thread's page-aligned scratch buffer (valid until its next call)."""
    out = scratch("aligned copy", view.nbytes)
    out[...] = np.frombuffer(view, np.uint8)
    return out.data


def aligned_empty(nbytes: int) -> np.ndarray:
    """Uninitialised bytes starting on a :data:`PAGE` boundary.

    Example
    -------
    >>> aligned_empty(10).ctypes.data % PAGE
    0
    """
    raw = np.empty(nbytes + PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE
    return raw[start : start + nbytes]
