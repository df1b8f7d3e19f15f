"""Writing Zarr and NetCDF all or nothing: a hidden temporary sibling that replaces the output once complete."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import threading
import time
import warnings
import weakref
from collections.abc import Collection, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import as_delayed, compute_together
from .._client import active_client
from .._memory import returning_freed_blocks
from .._progress import compute as compute_with_progress
from .._progress import progress_bar
from ..variables import bounds_names
from .atomic import Output
from .netcdf import codec_for, write_netcdf

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["Target", "Writes", "check_path", "save", "writing"]

logger = logging.getLogger("oceanflow.io")

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")

#: Below this many free bytes, HDF5's unspecific "HDF error" is taken for a full disk.
_NEARLY_FULL = 16 << 20

#: How long (s) a failed save waits for its writes still in flight on zarr's event loop.
_SETTLE_TIMEOUT = 60.0


def save(
    obj: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    encoding: dict | None = None,
    compute: bool = True,
    operation: str = "save",
    progress: bool | None = None,
    compression: str | None = None,
    level: int | None = None,
) -> Delayed | None:
    """Write ``obj`` to Zarr (``.zarr``) or NetCDF (``.nc``), all or nothing.

    The data go to a hidden temporary sibling of ``path`` that replaces
    ``path`` once complete (:mod:`oceanflow.io.atomic`): a NetCDF file in one
    ``os.replace``; a Zarr store in steps recorded in a journal, so that a crash
    at any point leaves the old or the new output at ``path``, or lets the next
    ``save`` or ``open_dataset`` of ``path`` finish the replacement (with a
    :class:`~oceanflow.io.atomic.RecoveryWarning`).  Of concurrent writers of one
    path, one wins whole and the others get a
    :class:`~oceanflow.io.atomic.ConcurrentWriteError`.  A failed write removes
    its temporary at once (a full disk says "no space left on device" and frees
    the space).  Zarr storage chunks follow the dask chunks, with Zarr's default
    codec; NetCDF-4 chunks are compressed in parallel by the tasks (see
    :mod:`oceanflow.io.netcdf` for the codecs and the storage chunk rule).  A
    ``history`` line records the time, the oceanflow version and ``operation``.

    Parameters
    ----------
    obj : xarray.Dataset or DataArray
    path : str or Path
        Ending in ``.zarr`` or ``.nc``/``.nc4``.
    overwrite : bool
        Replace an existing ``path`` (only once the new output is complete).
    encoding : dict, optional
        Per-variable encoding, merged over the defaults.
    compute : bool
        ``False`` returns a ``dask.delayed`` object that writes (and replaces
        ``path``) when computed.  If that computation fails, its temporary
        output stays until the next ``save`` or ``open_dataset`` of the same
        path removes it; computing the Delayed after that raises an error.
    operation : str
        What produced ``obj``, for the ``history`` attribute.
    progress : bool, optional
        Show a progress bar on stderr (distributed's when a cluster client
        is active); by default only when stderr is a terminal.
    compression : {"deflate", "none", "zstd"}, optional
        NetCDF codec; default deflate (with byte shuffle), the fastest choice
        that keeps files small.  "zstd" needs a filter plugin to be read.
    level : int, optional
        Codec level (deflate 1-9, default 1; zstd 1-22, default 3).

    Example
    -------
    >>> save(ds, "out.zarr", overwrite=True)    # doctest: +SKIP
    """
    path = Path(path)
    ds = _encoded(obj)
    lazy = not compute
    with writing(progress=progress, lazy=lazy) as writes:
        target = writes.claim(path, overwrite=overwrite, compression=compression, level=level)
        target.prepare(ds, operation=operation, encoding=encoding)
        if lazy:
            import dask

            written = target.write(now=False)
            # the Delayed's finishing task carries the output only: the Dataset and its graph are in
            # `written` already, and a second copy would be pickled into that task on a cluster
            target.ds, target.encoding = None, {}
            return dask.delayed(_finish)(written, target)
        writes.compute(target)
        writes.commit()
    return None


class Target:
    """One output of a save: its path (format, codec and directory checked), claimed
    through a hidden temporary (:class:`~oceanflow.io.atomic.Output`), and the Dataset
    written there (:meth:`prepare`: history line and default encoding, as :func:`save`).

    Made by :meth:`Writes.claim`, which removes its temporary if the save fails.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, writing(progress=False) as writes:
    ...     target = writes.claim(Path(tmp) / "out.nc", overwrite=False)
    ...     print(target.kind, target.tmp.parent == target.path.parent)
    netcdf True
    """

    def __init__(
        self,
        path: Path,
        *,
        overwrite: bool,
        compression: str | None = None,
        level: int | None = None,
        register: bool = True,
    ) -> None:
        self.path = Path(path)
        self.kind = check_path(self.path, compression=compression, level=level)
        self.codec = {"compression": compression, "level": level}
        self.output = Output(self.path, overwrite=overwrite, register=register)
        self.ds: xr.Dataset | None = None
        self.encoding: dict = {}
        self.compute_kwargs: dict[str, Any] = {}  # this save's dask.compute keyword arguments (its own pool)

    @property
    def tmp(self) -> Path:
        """Where the output is written before :meth:`Writes.commit` moves it to :attr:`path`."""
        return self.output.tmp

    def prepare(self, obj: xr.Dataset | xr.DataArray, *, operation: str = "save", encoding: dict | None = None) -> None:
        """Take ``obj`` as what is written: a ``history`` line for ``operation``, encoding merged over the defaults."""
        ds = _with_history(_encoded(obj), operation)
        self.ds, self.encoding = ds, _default_encoding(ds, self.kind, encoding or {})

    def write(self, *, now: bool, staged: bool = False) -> Delayed | None:
        """Write the prepared Dataset into :attr:`tmp` (``now=False``: return the Delayed that writes it).

        ``staged`` (Zarr, ``now``, an in-memory Dataset): encoded in memory first, then
        written in one pass (:func:`_write_zarr_staged`): for small stores of many variables.
        """
        if self.ds is None:
            raise RuntimeError(f"nothing prepared to write to {self.path}; call prepare() first")
        if staged and now and self.kind == "zarr":
            try:
                _write_zarr_staged(self.ds, self.tmp, self.encoding)
            except FileNotFoundError:
                _check_complete(self)  # the temporary removed meanwhile says so
                raise
            return None
        return _write(
            self.ds, self.tmp, self.kind, self.encoding, now=now, compute_kwargs=self.compute_kwargs, **self.codec
        )


def check_path(path: Path, *, compression: str | None = None, level: int | None = None) -> str:
    """The format of ``path`` (``"zarr"`` or ``"netcdf"``), with its codec and directory
    checked before anything is written.

    Example
    -------
    >>> check_path(Path("out.nc"), compression="deflate", level=4)
    'netcdf'
    """
    kind = _format_for(path)
    if kind == "netcdf":
        codec_for(compression, level)  # bad codecs and levels refused before anything is written
    elif compression is not None or level is not None:
        raise ValueError("compression= and level= choose the NetCDF codec; for Zarr pass encoding= (compressors)")
    if not path.parent.exists():
        raise FileNotFoundError(f"directory {path.parent} does not exist; create it first")
    return kind


class Writes:
    """The outputs of one save (see :func:`writing`): written all or nothing, checked all or
    nothing, then committed one by one in order (see :meth:`commit`).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, writing(progress=False) as writes:
    ...     a, b = (writes.claim(Path(tmp) / name, overwrite=False) for name in ("a.zarr", "b.nc"))
    ...     for target in (a, b):
    ...         target.prepare(xr.Dataset({"v": ("x", [1.0, 2.0])}))
    ...     _ = writes.compute(a, b)
    ...     print([path.name for path in writes.commit()])
    ['a.zarr', 'b.nc']
    """

    def __init__(self, *, progress: bool | None, lazy: bool) -> None:
        self.targets: list[Target] = []
        self.progress = progress
        self.lazy = lazy
        self.client = None if lazy else active_client()
        self.compute_kwargs: dict[str, Any] = {}  # dask.compute's keyword arguments: writing()'s own pool
        self.committed: list[Path] = []
        self._zarr_before: Collection = ()  # the tasks on zarr's loop before this save wrote (not waited for)

    def claim(
        self, path: str | os.PathLike, *, overwrite: bool, compression: str | None = None, level: int | None = None
    ) -> Target:
        """Check ``path`` and claim it (refused if it exists without ``overwrite``, or another writer writes it)."""
        first_zarr = Path(path).suffix == ".zarr" and not any(t.kind == "zarr" for t in self.targets)
        before = _zarr_tasks() if first_zarr else ()  # taken before the claim, so an interrupt leaves no claim behind
        target = Target(Path(path), overwrite=overwrite, compression=compression, level=level, register=not self.lazy)
        target.compute_kwargs = self.compute_kwargs
        if first_zarr:
            self._zarr_before = before
        self.targets.append(target)
        return target

    def compute(self, *targets: Target, others: tuple = ()) -> tuple:
        """Write the prepared ``targets`` and compute the dask collections ``others`` in one
        computation (shared tasks computed once); returns the results of ``others``.  On a
        cluster, a failure returns only once no worker still writes (none recreates a removed
        temporary); locally :func:`writing`'s threads are joined before anything is removed."""
        import dask

        if self.client is not None:
            with dask.config.set(array_optimize=False):  # (see compute_together)
                written = [target.write(now=False) for target in targets]
            others = tuple(as_delayed(other) for other in others)
            try:
                results = compute_with_progress(*written, *others, progress=self.progress)  # distributed's bar
            except BaseException:
                for one in written:
                    _wait_for_running_tasks(self.client, one)
                raise
            results = results if len(written) + len(others) > 1 else (results,)
            return tuple(results[len(written) :])
        if not others and len(targets) == 1:
            # On the local scheduler, written directly rather than through a Delayed: computing
            # the Delayed of to_zarr(compute=False) held most chunks in memory (2.2 GB peak for
            # a 1.9 GB anomaly, against 0.46 GB written directly).
            targets[0].write(now=True)
            return ()
        with dask.config.set(array_optimize=False):  # (see compute_together)
            written = [target.write(now=False) for target in targets]
        return compute_together(*written, *others, **self.compute_kwargs)[len(written) :]

    def commit(self) -> list[Path]:
        """Replace every path by its complete temporary.

        All are checked first (a Zarr temporary removed by a later save, a path
        changed by another writer), so that a conflict found there leaves every
        path unchanged; then they are committed one by one, in claim order.  A
        commit failing after that (a full disk, another writer racing the
        rename) leaves the earlier outputs already replaced: they are listed in
        :attr:`committed`, and the error names them.
        """
        for target in self.targets:
            _check_complete(target)
        for target in self.targets:
            target.output.check()
        for target in self.targets:
            try:
                self.committed.append(target.output.commit())
            except BaseException as err:
                if self.committed:  # a warning too: add_note is Python 3.11+ (a full disk says it below)
                    done = f"already committed (replaced by their new output): {_listed(self.committed)}"
                    warnings.warn(f"{target.path} failed to commit; {done}", RuntimeWarning, stacklevel=2)
                    if hasattr(err, "add_note"):
                        err.add_note(done)
                raise
        return list(self.committed)

    def _discard(self, err: BaseException) -> None:
        """Remove every temporary not yet committed; a full disk raises ``OSError(ENOSPC)`` naming the path."""
        left = [target for target in self.targets if target.path not in self.committed]
        try:
            if any(target.kind == "zarr" for target in left):
                # (after the threads' join) writes still in flight would recreate a removed temporary
                _settle_zarr_io(self._zarr_before, left)
        finally:  # even on Ctrl-C during the wait: a temporary left registered blocks every later save of its path
            free = [_free_bytes(target.path.parent) for target in left]
            for target in left:
                target.output.discard()
        full = [(f, t.path) for f, t in zip(free, left, strict=True) if _disk_full(err, f)]
        if full:
            space, path = min(full, key=lambda item: -1 if item[0] is None else item[0])
            removed = "the partial output was removed"
            if self.committed:  # (a commit failed after earlier ones succeeded)
                removed = (
                    f"the outputs not committed ({_listed(t.path for t in left)}) were removed, but "
                    f"{_listed(self.committed)} already committed (replaced by the new output)"
                )
            raise OSError(
                errno.ENOSPC,
                f"no space left on device while writing {path} ({_format_bytes(space)} free on its file "
                f"system); {removed}. Free some space or write elsewhere",
            ) from err


@contextlib.contextmanager
def writing(*, progress: bool | None = None, lazy: bool = False, io_threads: int = 0) -> Iterator[Writes]:
    """The one save pipeline (:func:`save`, :func:`oceanflow.mhw.save`): claim outputs, write, commit.

    Inside, on dask's local scheduler, freed blocks go back to the system and
    the block pool serves the tasks (:func:`oceanflow._memory.returning_freed_blocks`),
    progress shows on stderr, and the tasks run on threads joined on the way
    out: dask's ``num_workers`` (else one per core) and ``io_threads`` more,
    for a caller whose tasks wait on files and which bounds its tasks'
    computing itself (:func:`_joined_threads`).  On any error every claimed temporary is removed (after the threads
    are joined: no late chunk recreates one), and a full disk raises
    ``OSError(ENOSPC)`` saying so.  ``lazy``: nothing is computed inside (the
    caller returns a Delayed; its outputs are not registered as being written).
    Leaving the block without error but without :meth:`Writes.commit` (not
    ``lazy``) removes the temporaries not committed: their paths stay as they were.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, writing(progress=False) as writes:
    ...     target = writes.claim(Path(tmp) / "out.zarr", overwrite=True)
    ...     target.prepare(xr.Dataset({"v": ("x", [1.0, 2.0])}), operation="anomaly")
    ...     _ = writes.compute(target)
    ...     print(writes.commit() == [target.path])
    True
    """
    writes = Writes(progress=progress, lazy=lazy)
    try:
        with contextlib.ExitStack() as stack:
            if not lazy and writes.client is None:
                # the block pool outlives the join: a failed save's leftover tasks still take blocks from it
                stack.enter_context(returning_freed_blocks())
                stack.enter_context(progress_bar(progress))
                writes.compute_kwargs.update(stack.enter_context(_joined_threads(io_threads)))
            yield writes
    except BaseException as err:
        writes._discard(err)
        raise
    if not lazy:  # left without commit(): a temporary left registered would block every later save of its path
        for target in writes.targets:
            if target.path not in writes.committed:
                target.output.discard()


def _write(
    ds: xr.Dataset,
    tmp: Path,
    kind: str,
    encoding: dict,
    *,
    now: bool,
    compression=None,
    level=None,
    compute_kwargs=None,
):
    """Write ``ds`` to ``tmp`` (or return the Delayed that writes it when ``now`` is False); ``compute_kwargs``:
    keyword arguments of this write's ``dask.compute`` (``pool=``)."""
    if kind == "netcdf":
        return write_netcdf(
            ds, tmp, encoding=encoding, compression=compression, level=level, compute=now, compute_kwargs=compute_kwargs
        )
    done, written = _write_zarr_v3(ds, tmp, encoding, now=now, compute_kwargs=compute_kwargs)
    if done:
        return written
    with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is not in its spec yet
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        if now:
            return ds.to_zarr(
                tmp, mode="w", encoding=encoding, consolidated=True, chunkmanager_store_kwargs=compute_kwargs or None
            )
        return ds.to_zarr(tmp, mode="w", encoding=encoding, compute=False, consolidated=True)


def _write_zarr_staged(ds: xr.Dataset, tmp: Path, encoding: dict) -> None:
    """Write the in-memory ``ds`` as Zarr to ``tmp``: encoded in memory (in Zarr v3 by
    :func:`_zarr_v3_files`, else by xarray's own ``to_zarr`` into a memory store: the metadata
    and chunk bytes a direct write makes), then its files written in one pass, each freed once
    written, with no round trip to zarr's event loop per file and chunk.  The root's metadata
    (Zarr v3 ``zarr.json``; v2 ``.zattrs``, ``.zmetadata``, then ``.zgroup``) comes after every
    array's files: a write stopped before it leaves no store that :func:`_check_complete` or a
    reader takes for one.  Folders are made one level at a
    time, never ``tmp`` itself again: a temporary removed meanwhile makes the write fail.

    The encoded store is held beside ``ds`` (at most its size again) until written."""
    from zarr.storage import MemoryStore

    if any(is_dask(v.data) for v in ds.variables.values()):
        raise ValueError("a staged Zarr write takes an in-memory Dataset; load it first or write it directly")
    files: dict[str, Any] | None = _zarr_v3_files(ds, encoding)
    if files is None:
        files = {}
        with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is not in its spec yet
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            ds.to_zarr(MemoryStore(files), mode="w", encoding=encoding, consolidated=True)
    _write_files(files, tmp)


def _write_files(files: dict[str, Any], tmp: Path) -> None:
    """Write the encoded store ``files`` (bytes or zarr buffers by key) into the folder ``tmp``, replaced,
    each freed once written, the root's metadata last (see :func:`_write_zarr_staged`)."""
    if tmp.exists():  # (as mode="w")
        shutil.rmtree(tmp)
    tmp.mkdir()
    made = {tmp}
    for key in sorted(files, key=lambda k: _ROOT_METADATA_LAST.get(k, 0)):
        path = tmp / key
        _folder(path.parent, made)
        value = files.pop(key)
        path.write_bytes(value if isinstance(value, bytes) else value.to_bytes())


#: Bytes of a Dataset's in-memory variables up to which :func:`_write_zarr_v3` encodes them in
#: memory (held until written); beyond, xarray's ``to_zarr`` writes the Dataset, variable by variable.
_ENCODED_IN_MEMORY = 64 << 20


def _write_zarr_v3(ds: xr.Dataset, tmp: Path, encoding: dict, *, now: bool, compute_kwargs=None) -> tuple[bool, Any]:
    """Zarr v3: every array's metadata and the in-memory variables written in one pass
    (:func:`_zarr_v3_files`), then only the dask variables' chunks, by xarray's ``to_zarr`` into
    those arrays (mode ``"r+"``: nothing created, their encoding read back from the consolidated
    metadata); ``to_zarr`` in mode ``"w"`` creates each array in round trips to zarr's one I/O
    thread, and reads them all back to consolidate them, before its graph is built.  Returns
    ``(True, what to_zarr returns)``, or ``(False, None)`` with nothing written where that pass
    does not apply (see :func:`_zarr_v3_files`), where the dask variables' ``write_empty_chunks``
    differ (``r+`` takes one for all), or beyond :data:`_ENCODED_IN_MEMORY` in memory."""
    import dask

    lazy = [name for name, var in ds.variables.items() if is_dask(var.data)]
    empty = {encoding.get(name, {}).get("write_empty_chunks") for name in lazy}
    if len(empty) > 1 or not write_zarr_v3_template(ds, tmp, encoding):
        return False, None
    if not lazy:
        return True, None if now else dask.delayed(None)
    chunks = xr.Dataset({name: ds.variables[name] for name in lazy})  # (their coordinates written above)
    store = _chunk_store(tmp)
    if now:
        kwargs = compute_kwargs or None
        return True, chunks.to_zarr(store, mode="r+", write_empty_chunks=empty.pop(), chunkmanager_store_kwargs=kwargs)
    return True, chunks.to_zarr(store, mode="r+", write_empty_chunks=empty.pop(), compute=False)


def write_zarr_v3_template(ds: xr.Dataset, tmp: Path, encoding: dict) -> bool:
    """Write the Zarr v3 store of ``ds`` into ``tmp`` but for its dask variables' chunks: every array's
    metadata, the coordinates and the in-memory variables, in one pass (:func:`_zarr_v3_files`); the
    files ``to_zarr(compute=False)`` writes, without the graph it builds for the chunks (for a caller
    that writes them itself, e.g. by :func:`write_zarr_v3_region`).  False, with nothing written, where
    that pass does not apply (see :func:`_zarr_v3_files`) or beyond :data:`_ENCODED_IN_MEMORY` in memory."""
    if sum(var.nbytes for var in ds.variables.values() if not is_dask(var.data)) > _ENCODED_IN_MEMORY:
        return False
    files = _zarr_v3_files(ds, encoding)
    if files is None:
        return False
    _write_files(files, tmp)
    return True


def _chunk_store(tmp: Path) -> Any:
    """Where the dask variables' chunks of a Zarr v3 store at ``tmp`` are written: a zarr ``LocalStore``
    whose files of :data:`~oceanflow.io.uncached.DIRECT_FILE_BYTES` or more (uncompressed chunks) are
    written past the page cache (:func:`~oceanflow.io.uncached.write_new_file`) where
    :func:`~oceanflow.io.uncached.direct_file_writes` allows it, else ``tmp`` (zarr's own store).

    Through the page cache each page of a new file is a fresh page of memory filled by a copy: on the
    benchmark's virtual machine the kernel's copy into them was 12 % of the CPU of ``mhw.save``'s
    full-size pipeline, most of it for its 2.8 GB of uncompressed ``intensity``.  Same files: only
    ``set`` of a large value differs from ``LocalStore``'s (the bytes written to a new file in the
    key's folder, then renamed over the key, as zarr does)."""
    from .uncached import direct_file_writes

    if not direct_file_writes(tmp):
        return tmp
    try:
        return _direct_store_type()(tmp)
    except _INTERNALS_CHANGED:  # zarr's public store API changed: its own store
        return tmp


@functools.cache
def _direct_store_type() -> type:
    """zarr's ``LocalStore`` with large values written past the page cache (see :func:`_chunk_store`)."""
    import asyncio

    from zarr.storage import LocalStore

    from .uncached import DIRECT_FILE_BYTES

    class DirectLocalStore(LocalStore):
        async def set(self, key: str, value: Any) -> None:
            view = memoryview(value.as_buffer_like()).cast("B")
            if view.nbytes < DIRECT_FILE_BYTES or self.read_only:
                return await super().set(key, value)
            await asyncio.to_thread(_direct_put, self.root / key, view)

    return DirectLocalStore


def _direct_put(path: Path, view: memoryview) -> None:
    """``view`` written as the file ``path`` (its folders made): a new sibling, renamed over it once complete."""
    import uuid

    from .uncached import write_new_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{uuid.uuid4().hex}.partial")
    write_new_file(partial, view)
    try:
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


#: The encoding keys :func:`_zarr_v3_files` writes as xarray does; any other (shards, filters, a
#: serializer, a chunk key encoding) leaves the write to xarray's ``to_zarr``.
_V3_ENCODINGS = {"chunks", "compressors", "write_empty_chunks", "fill_value", "order"}


#: What a change in the xarray or zarr internals :func:`_zarr_v3_files` builds on raises: the
#: write then falls back to xarray's own ``to_zarr`` (slower, same files).
_INTERNALS_CHANGED = (ImportError, AttributeError, TypeError)


def _zarr_v3_files(ds: xr.Dataset, encoding: dict) -> dict[str, bytes] | None:
    """:func:`_one_pass_v3_files`, or None (``to_zarr`` writes the store) where the xarray or zarr
    internals it builds on have changed (a name moved, a signature changed): nothing is written
    before it returns, so falling back is safe.  A test keeps its files those of ``to_zarr``."""
    try:
        return _one_pass_v3_files(ds, encoding)
    except _INTERNALS_CHANGED as err:
        logger.debug("one-pass Zarr v3 encoding unavailable (%r): writing with xarray's to_zarr", err)
        return None


def _one_pass_v3_files(ds: xr.Dataset, encoding: dict) -> dict[str, bytes] | None:
    """The files of xarray's ``ds.to_zarr(store, mode="w", encoding=encoding, consolidated=True)``
    in Zarr v3, made here in one pass: xarray's own CF encoding of every variable and attribute,
    zarr's own metadata objects and codecs, and every chunk of every array encoded in one call to
    zarr's event loop (the codecs run concurrently on its threads).  ``to_zarr`` instead creates
    each array, rewrites its metadata with its attributes and writes its chunks, each a round trip
    to zarr's one I/O thread, then reads every array's metadata back to consolidate it: most of the
    time of a small store of many variables.  Dask variables get their metadata only (their chunks
    are the caller's to write: :func:`_write_zarr_v3`).  None (nothing done) where zarr writes format 2 by
    default, for a variable that is not numbers or dates, or for an encoding beyond
    :data:`_V3_ENCODINGS` (xarray's ``to_zarr`` then writes it)."""
    import zarr

    if zarr.config.get("default_zarr_format") != 3:
        return None
    from xarray import conventions
    from xarray.backends.writers import _validate_dataset_names
    from xarray.backends.zarr import encode_zarr_attr_value
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import ConsolidatedMetadata, GroupMetadata
    from zarr.core.sync import sync

    _validate_dataset_names(ds)  # as to_zarr
    variables, attributes = conventions.encode_dataset_coordinates(ds)  # as xarray's dump_to_store
    zdtypes: dict = {}  # zarr's data type of each NumPy dtype (its lookup tries every type zarr knows)
    arrays = {}
    for name, var in variables.items():
        if not isinstance(name, str) or var.dtype.kind not in "biufcmM":
            return None
        array = _v3_array(name, var, encoding, zdtypes)
        if array is None:
            return None
        arrays[name] = array
    prototype = default_buffer_prototype()
    files = {f"{name}/zarr.json": _json(metadata, prototype) for name, (metadata, _, _) in arrays.items()}
    written = [(name, array) for name, array in arrays.items() if array[2] is not None]
    for keys, buffers in sync(_encoded_chunks(written, prototype)):
        files.update((key, b) for key, b in zip(keys, buffers, strict=True) if b is not None)
    group = GroupMetadata(
        attributes={k: encode_zarr_attr_value(v) for k, v in attributes.items()},
        zarr_format=3,
        consolidated_metadata=ConsolidatedMetadata(metadata={name: array[0] for name, array in arrays.items()}),
    )
    files["zarr.json"] = _json(group, prototype)
    return files


def _v3_array(name: str, var: xr.Variable, encoding: dict, zdtypes: dict) -> tuple | None:
    """``(metadata, config, values)`` of the Zarr v3 array of ``var`` as xarray's ``to_zarr`` makes it
    (``ZarrStore.set_variables``: zarr's fill value in the metadata, the CF ``_FillValue`` as an
    attribute), with ``encoding[name]`` (else ``var.encoding``); None beyond :data:`_V3_ENCODINGS`."""
    from xarray.backends.zarr import (
        FillValueCoder,
        encode_zarr_attr_value,
        encode_zarr_variable,
        extract_zarr_variable_encoding,
    )
    from zarr.core.array import AsyncArray, _parse_chunk_encoding_v3
    from zarr.core.array_spec import parse_array_config
    from zarr.core.chunk_grids import _auto_partition
    from zarr.core.dtype import parse_dtype

    var = var.copy(deep=False)
    var.encoding = dict(encoding.get(name, var.encoding))
    var = encode_zarr_variable(var, name=name, zarr_format=3)
    attrs = dict(var.attrs)
    fill_value = var.encoding.pop("fill_value", None)
    if fill_value is None and var.dtype.kind == "f":
        fill_value = np.nan  # xarray's default for floats (zarr's is 0)
    fill = attrs.pop("_FillValue", None)
    if fill is not None:
        attrs["_FillValue"] = FillValueCoder.encode(fill, var.dtype)
    var.encoding.pop("_FillValue", None)
    chosen = extract_zarr_variable_encoding(var, raise_on_invalid=name in encoding, name=name, zarr_format=3)
    if set(chosen) - _V3_ENCODINGS:
        return None
    if var.dtype not in zdtypes:
        zdtypes[var.dtype] = parse_dtype(var.dtype, zarr_format=3)
    dtype = zdtypes[var.dtype]
    _, chunks = _auto_partition(
        array_shape=var.shape, chunk_shape=chosen["chunks"], shard_shape=None, item_size=dtype.item_size
    )
    filters, serializer, compressors = _parse_chunk_encoding_v3(
        compressors=chosen.get("compressors", "auto"), filters="auto", serializer="auto", dtype=dtype
    )
    metadata = AsyncArray._create_metadata_v3(
        shape=var.shape,
        dtype=dtype,
        chunk_shape=chunks,
        fill_value=fill_value,
        codecs=(*filters, serializer, *compressors),
        dimension_names=[str(d) for d in var.dims],
        attributes={k: encode_zarr_attr_value(v) for k, v in attrs.items()},
    )
    config = parse_array_config({k: chosen[k] for k in ("write_empty_chunks", "order") if k in chosen})  # type: ignore[arg-type]
    return metadata, config, None if is_dask(var.data) else np.asarray(var.values)


def write_zarr_v3_region(
    ds: xr.Dataset, tmp: Path, region: dict[str, slice], arrays: dict | None = None, made: set | None = None
) -> bool:
    """Write the in-memory data variables of ``ds`` into ``region`` (a slice per dimension) of the
    arrays already created in the Zarr v3 store ``tmp``, each region exactly one of their chunks:
    the files of ``ds.to_zarr(tmp, region=region, mode="r+")`` (xarray's CF encoding of each
    variable, the codecs and fill value of the store's own metadata, an edge chunk padded with the
    fill value, a chunk all fill value left out), each encoded here as it is written (else, for a
    codec without a synchronous step, all in one call to zarr's event loop), without the
    ``to_zarr`` round trips (the store's group and every array's
    metadata read back per call).  False, with nothing written, where this does not apply (a
    variable not plain numbers, a region off the chunks, Zarr v2) or the zarr internals it builds
    on changed: ``to_zarr`` then writes the region.  ``arrays``: a dict the caller keeps for the
    writes into one store, each array's metadata read once (else at each call); ``made``: a set
    it keeps of the folders made in ``tmp`` (each made once, not again at each call)."""
    try:
        files = _v3_region_files(ds, tmp, region, {} if arrays is None else arrays)
    except _INTERNALS_CHANGED as err:
        logger.debug("one-pass Zarr v3 region writes unavailable (%r): writing with xarray's to_zarr", err)
        return False
    if files is None:
        return False
    made = {tmp} if made is None else made
    made.add(tmp)
    for key, value in files:  # (each encoded as it is written, and freed)
        path = tmp / key
        _folder(path.parent, made)  # (tmp never made again: a temporary removed meanwhile fails the write)
        path.write_bytes(value)
    return True


def _v3_region_files(ds: xr.Dataset, tmp: Path, region: dict[str, slice], arrays: dict) -> Iterator[tuple] | None:
    """The chunk files of :func:`write_zarr_v3_region`, ``(key, bytes-like)``, or None where it does not apply."""
    from xarray.backends.zarr import encode_zarr_variable
    from zarr.core.array_spec import parse_array_config
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    prototype = default_buffer_prototype()
    config = parse_array_config(None)  # (as to_zarr's region writes: zarr's default write_empty_chunks)
    jobs = []
    for name, var in ds.data_vars.items():
        if is_dask(var.data) or var.dtype.kind not in "biuf":
            return None
        if name not in arrays:
            arrays[name] = _stored_v3_array(tmp / str(name))
        if arrays[name] is None:
            return None
        metadata, pipeline, fill = arrays[name]
        if var.dtype != metadata.dtype.to_native_dtype():  # (to_zarr would cast it)
            return None
        var = var.variable.copy(deep=False)
        var.encoding = {} if fill is None else {"_FillValue": fill}  # (as to_zarr: the stored array's encoding)
        encoded = encode_zarr_variable(var, name=name, zarr_format=3)
        values = np.asarray(encoded.values)
        if values.dtype != metadata.dtype.to_native_dtype() or list(metadata.dimension_names or ()) != list(var.dims):
            return None
        coords, chunk_shape = [], metadata.chunk_grid.chunk_shape
        for dim, n, c, size in zip(var.dims, values.shape, chunk_shape, metadata.shape, strict=True):
            start, stop, step = region.get(dim, slice(None)).indices(size)
            if step != 1 or start % c or stop - start != n or (n != c and stop != size):
                return None
            coords.append(start // c)
        spec = metadata.get_chunk_spec(tuple(coords), config, prototype)
        chunk = _chunk_buffer(values, chunk_shape, spec, config, prototype)
        if chunk is not None:
            jobs.append((f"{name}/{metadata.encode_chunk_key(tuple(coords))}", pipeline, chunk, spec))
    here = [_sync_codecs(pipeline) for _, pipeline, _, _ in jobs]
    if any(codecs is None for codecs in here):
        return iter(sync(_encoded_region(jobs)))
    return _encoded_one_by_one(jobs, here)


def _encoded_one_by_one(jobs: list, codecs: list) -> Iterator[tuple]:
    """Each ``(key, pipeline, chunk, spec)`` of ``jobs`` encoded on this thread by its ``codecs``
    (:func:`_encoded_here`) when asked for, ``(key, bytes-like)``, but for a chunk left out: no round
    trip to zarr's loop, and one chunk's encoded bytes held at a time (a block's at once, on a thread
    of their own, were enough to make glibc return the memory and fault it in again at every block)."""
    for (key, _, chunk, spec), here in zip(jobs, codecs, strict=True):
        encoded = _encoded_here(here, chunk, spec)
        if encoded is not None:
            yield key, encoded.as_numpy_array()


def _stored_v3_array(folder: Path) -> tuple | None:
    """``(metadata, codec pipeline, CF fill value)`` of the Zarr v3 array in ``folder``, None where there is
    none or where xarray's CF encoding of its values needs more than its fill value."""
    import json

    from xarray.backends.zarr import FillValueCoder
    from zarr.core.array import create_codec_pipeline
    from zarr.core.metadata.v3 import ArrayV3Metadata

    document = folder / "zarr.json"
    if not document.is_file():
        return None
    stored = json.loads(document.read_bytes())
    if stored.get("zarr_format") != 3 or stored.get("node_type") != "array":
        return None
    metadata = ArrayV3Metadata.from_dict(stored)
    attrs = metadata.attributes
    if set(attrs) & _CF_PACKING:
        return None  # (values that xarray's CF encoding changes beyond the fill value: left to to_zarr)
    fill = attrs.get("_FillValue")
    dtype = metadata.dtype.to_native_dtype()
    return metadata, create_codec_pipeline(metadata), None if fill is None else FillValueCoder.decode(fill, dtype)


#: Attributes of a stored array whose CF encoding changes plain numbers (packing, a second fill value);
#: dates' ``units`` and ``calendar`` change only dates, which :func:`write_zarr_v3_region` leaves to to_zarr.
_CF_PACKING = {"scale_factor", "add_offset", "missing_value"}


def _sync_codecs(pipeline) -> tuple | None:
    """The codecs of zarr's codec ``pipeline`` in the order its ``encode`` runs them, where each has a
    synchronous step (zarr's ``SupportsSyncCodec``); else None (zarr's event loop encodes its chunks)."""
    try:
        from zarr.abc.codec import SupportsSyncCodec

        codecs = (*pipeline.array_array_codecs, pipeline.array_bytes_codec, *pipeline.bytes_bytes_codecs)
    except _INTERNALS_CHANGED:
        return None
    return codecs if all(isinstance(codec, SupportsSyncCodec) for codec in codecs) else None


def _encoded_here(codecs, chunk, spec):
    """The ``chunk`` (zarr's NDBuffer) encoded on this thread by ``codecs`` (:func:`_sync_codecs`): each
    codec's synchronous step, with the chunk's spec as each codec resolves it, as zarr's pipeline
    encodes a chunk (None, a chunk a codec leaves out, stays None)."""
    for codec in codecs:
        if chunk is None:
            return None
        chunk = codec._encode_sync(chunk, spec)
        spec = codec.resolve_metadata(spec)
    return chunk


async def _encoded_region(jobs: list) -> list:
    """The ``(key, pipeline, chunk, spec)`` jobs encoded concurrently: ``(key, bytes)``."""
    import asyncio

    buffers = await asyncio.gather(*(pipeline.encode([(chunk, spec)]) for _, pipeline, chunk, spec in jobs))
    return [(key, b[0].to_bytes()) for (key, *_), b in zip(jobs, buffers, strict=True) if b[0] is not None]


def _json(metadata, prototype) -> bytes:
    """The ``zarr.json`` of zarr's array or group ``metadata``, as zarr writes it."""
    return metadata.to_buffer_dict(prototype)["zarr.json"].to_bytes()


def _chunk_jobs(name, metadata, config, values, prototype) -> tuple:
    """``(codec pipeline, keys, [(chunk, spec)])``: the chunks of one array as zarr writes them
    (edge chunks padded with the fill value; a chunk all fill value left out unless ``write_empty_chunks``)."""
    import itertools

    from zarr.core.array import create_codec_pipeline

    shape, chunk_shape = metadata.shape, metadata.chunk_grid.chunk_shape
    keys, pairs = [], []
    for coords in itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunk_shape, strict=True))):
        spec = metadata.get_chunk_spec(coords, config, prototype)
        part = values[tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunk_shape, strict=True))]
        chunk = _chunk_buffer(part, chunk_shape, spec, config, prototype)
        if chunk is None:
            continue
        keys.append(f"{name}/{metadata.encode_chunk_key(coords)}")
        pairs.append((chunk, spec))
    return create_codec_pipeline(metadata), keys, pairs


def _chunk_buffer(part, chunk_shape, spec, config, prototype):
    """The chunk ``part`` (its values) as zarr writes it: padded with the fill value to ``chunk_shape``
    (an edge chunk); None for a chunk all fill value, left out unless ``write_empty_chunks``."""
    if part.shape != tuple(chunk_shape):
        full = np.full(chunk_shape, spec.fill_value, dtype=part.dtype)
        full[tuple(slice(0, n) for n in part.shape)] = part
        part = full
    part = np.ascontiguousarray(part)
    chunk = prototype.nd_buffer.from_numpy_array(part)
    if config.write_empty_chunks or not _may_be_all(part, spec.fill_value, prototype):
        return chunk
    return None if chunk.all_equal(spec.fill_value) else chunk


#: Values of a chunk compared with the fill value first (:func:`_may_be_all`).
SAMPLE = 1024


def _may_be_all(part, fill, prototype) -> bool:
    """Whether the chunk ``part`` (C-contiguous) may be all ``fill``: False when one of :data:`SAMPLE`
    values spread evenly through it is not, by zarr's own comparison (``all_equal``: NaN equals NaN,
    a fill value of 0.0 compared bit for bit), which then holds for the whole chunk: a chunk with
    values is written without zarr's passes over all of it (one all fill value still gets them)."""
    flat = part.reshape(-1)
    return bool(prototype.nd_buffer.from_numpy_array(flat[:: max(1, flat.size // SAMPLE)]).all_equal(fill))


async def _encoded_chunks(arrays: list, prototype) -> list:
    """Each array's chunks (:func:`_chunk_jobs` of ``(name, (metadata, config, values))``) encoded by
    its codec pipeline, its chunks concurrently, one array after the other: ``(keys, buffers)`` per
    array (bytes, None: left out).  The chunks' copies of one array are made once the previous
    array's are encoded and freed: at most one array's copies are held beside the encoded store,
    as zarr does."""
    encoded = []
    for name, array in arrays:
        metadata, config, values = array
        pipeline, keys, pairs = _chunk_jobs(name, metadata, config, values, prototype)
        buffers = await pipeline.encode(pairs)
        del pairs
        encoded.append((keys, [None if b is None else b.to_bytes() for b in buffers]))
    return encoded


#: The root's metadata files of a Zarr store, in the order a staged write writes them after every
#: other file: their presence (``zarr.json``, ``.zgroup``) is what makes a folder a store.
_ROOT_METADATA_LAST = {".zattrs": 1, ".zmetadata": 2, ".zgroup": 3, "zarr.json": 3}


def _folder(path: Path, made: set) -> None:
    """Make the folder ``path`` and those above it up to one in ``made`` (a level at a time: a
    folder of ``made`` removed meanwhile is not made again, the write fails)."""
    if path not in made:
        _folder(path.parent, made)
        path.mkdir(exist_ok=True)
        made.add(path)


def _finish(_written, target: Target) -> Path:
    """Replace the output's path by its complete temporary (runs after a lazy save's write)."""
    _check_complete(target)
    return target.output.commit()


def _check_complete(target: Target) -> None:
    """Refuse a Zarr temporary without its root metadata: a later save removed it while this
    write ran, and the write's chunks recreated only parts of it."""
    tmp = target.tmp
    if target.kind == "zarr" and not any((tmp / marker).exists() for marker in ("zarr.json", ".zgroup")):
        target.output.discard()
        raise FileNotFoundError(
            f"the temporary output of {target.path} was removed by a later save of the same path "
            "before this write finished; call save again"
        )


def _zarr_loop():
    """zarr's running event loop, or None (none started yet, no zarr, or called on its own thread)."""
    try:
        from zarr.core import sync
    except ImportError:
        return None
    loop = getattr(sync, "loop", [None])[0]
    if loop is None or not loop.is_running() or threading.current_thread() is getattr(sync, "iothread", [None])[0]:
        return None
    return loop


def _zarr_tasks() -> Collection:
    """The tasks now on zarr's event loop (other saves' and reads' I/O), weakly held."""
    import asyncio

    tasks: weakref.WeakSet = weakref.WeakSet()
    loop = _zarr_loop()
    if loop is not None:

        async def current() -> set:
            return asyncio.all_tasks() - {asyncio.current_task()}

        with contextlib.suppress(Exception):  # (a busy loop: nothing excluded, every task waited for)
            tasks.update(asyncio.run_coroutine_threadsafe(current(), loop).result(5))
    return tasks


def _settle_zarr_io(before: Collection, targets: list[Target], timeout: float | None = None) -> None:
    """Wait (at most ``timeout`` s, default :data:`_SETTLE_TIMEOUT`) until the writes zarr runs
    on its event loop have ended, but for the tasks ``before`` (older than the save of ``targets``).

    zarr writes the chunks of one call concurrently on its own loop; when one
    fails (a full disk), the call raises while the others still run, and they
    recreate a temporary removed meanwhile (seen in 4 of 8 full-disk saves of
    an in-memory Dataset).  Nothing is waited for without zarr's loop; writes
    still running after ``timeout`` are named in a :class:`RuntimeWarning`.
    """
    import asyncio

    timeout = _SETTLE_TIMEOUT if timeout is None else timeout
    loop = _zarr_loop()
    if loop is None:
        return

    async def settled() -> int:
        pending = {task for task in asyncio.all_tasks() if task not in before} - {asyncio.current_task()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        return len(pending)

    try:
        running = asyncio.run_coroutine_threadsafe(settled(), loop).result(timeout + 5)
    except Exception:  # the loop stopped or never answered
        running = -1
    if running:
        warnings.warn(
            f"zarr's writes for {_listed(t.path for t in targets)} still ran {timeout:g} s after the save "
            f"failed; the temporaries ({_listed(t.tmp for t in targets)}) were removed anyway, and a late "
            "chunk may recreate part of one: the next save of the same path removes it, or delete it yourself",
            RuntimeWarning,
            stacklevel=2,
        )


def _listed(paths) -> str:
    return ", ".join(str(path) for path in paths)


def _free_bytes(directory: Path) -> int | None:
    try:
        stats = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def _disk_full(err: BaseException, free: int | None) -> bool:
    """Whether ``err`` comes from a full file system (HDF5 only says "HDF error")."""
    chain: BaseException | None = err
    while chain is not None:
        if getattr(chain, "errno", None) == errno.ENOSPC or "No space left" in str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    return free is not None and free < _NEARLY_FULL and "HDF error" in str(err)


def _format_bytes(n: int | None) -> str:
    from dask.utils import format_bytes

    return "unknown space" if n is None else format_bytes(n)


@contextlib.contextmanager
def _joined_threads(io_threads: int = 0) -> Iterator[dict[str, Any]]:
    """A pool of our own for dask's threaded scheduler, joined on the way out; yields the ``dask.compute``
    keyword arguments that use it (``{"pool": pool}``, or ``{}`` where the user chose a scheduler or pool).
    Its threads: dask's ``num_workers`` (else one per core), and ``io_threads`` more.

    When one task fails, dask raises at once while other threads still write
    their chunks; joining them first means no late chunk recreates the
    temporary output after it was removed.  The pool is passed to this
    write's compute only, never put in dask's process-wide config: there,
    a concurrent ``save`` on another thread took it for the user's and
    computed on it after it was shut down ("cannot schedule new futures
    after shutdown").  Only that compute (the chunk writes) runs on it: what
    is loaded earlier, while the output is defined, is computed by dask's
    default scheduler (xarray's encoders load object-dtype dask variables;
    the NetCDF writer loads the dask variables it does not write in tasks,
    such as strings or 0-d ones, with ``np.asarray``), and is written by the
    calling thread before any chunk.
    """
    import dask
    from dask import threaded
    from dask.base import get_scheduler

    if get_scheduler() not in (None, threaded.get) or dask.config.get("pool", None) is not None:
        yield {}  # synchronous, processes or a user's pool: nothing of ours to join
        return
    workers = (dask.config.get("num_workers", None) or threaded.CPU_COUNT) + io_threads
    pool = threaded.ContextAwareThreadPoolExecutor(workers)
    try:
        yield {"pool": pool}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _wait_for_running_tasks(client, collection, timeout=60.0) -> None:
    """After a failed cluster write, wait (at most ``timeout`` s) until no worker
    still runs a task of ``collection``, so none writes after the cleanup.

    The scheduler forgets released tasks at once, so the workers are asked; the
    keys they run carry the graph's layer names, with a suffix once optimized.
    """
    if client is None:
        return
    names = tuple({_key_name(key) for key in collection.__dask_graph__()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = client.run(_count_running, names)
        if not any(running.values()):
            return
        time.sleep(0.05)


def _count_running(names: tuple, dask_worker=None) -> int:
    """On a worker: how many executing tasks belong to layers called ``names``."""
    executing = getattr(getattr(dask_worker, "state", None), "executing", ())
    return sum(_key_name(task.key).startswith(names) for task in executing)


def _key_name(key) -> str:
    return str(key[0] if isinstance(key, tuple) else key)


def _encoded(obj) -> xr.Dataset:
    """``obj`` as a Dataset, a climatology's groups as a CF climatological time axis."""
    from ..climatology.cf import encode_climatology

    return encode_climatology(_as_dataset(obj))


def _as_dataset(obj) -> xr.Dataset:
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name or "data")
    if isinstance(obj, xr.Dataset):
        return obj
    raise TypeError(f"save writes xarray Datasets and DataArrays, got {type(obj).__name__}")


def _format_for(path: Path) -> str:
    if path.suffix == ".zarr":
        return "zarr"
    if path.suffix in _NETCDF_SUFFIXES:
        return "netcdf"
    raise ValueError(f"unknown output format for {path}: use a name ending in .zarr or .nc")


#: The CF version written when the data name none: climatological statistics as in CF 1.11
#: section 7.4, and ``units_metadata`` (new in CF 1.11) on temperature anomalies.
CONVENTIONS = "CF-1.11"


def _with_history(ds: xr.Dataset, operation: str) -> xr.Dataset:
    """``ds`` with a ``history`` line for ``operation`` and a ``Conventions`` attribute."""
    from .. import __version__

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp}: oceanflow {__version__} {operation}"
    previous = ds.attrs.get("history", "")
    ds = ds.copy()
    ds.attrs["history"] = f"{previous}\n{line}" if previous else line
    ds.attrs.setdefault("Conventions", CONVENTIONS)
    return ds


def _default_encoding(ds: xr.Dataset, kind: str, user: dict) -> dict:
    """Zarr storage chunks from dask chunks (NetCDF's: see .netcdf); no fill value on CF
    bounds variables (CF 7.1: bounds are never missing); user keys win."""
    encoding = {}
    bounds = bounds_names(ds)
    for name, var in ds.variables.items():
        enc: dict[str, Any] = {"_FillValue": None} if name in bounds else {}
        chunks = var.chunks
        if kind == "zarr" and chunks and var.ndim:
            enc["chunks"] = tuple(c[0] for c in chunks)
        encoding[name] = {**_kept_encoding(var, kind), **enc, **user.get(name, {})}
    return encoding


def _kept_encoding(var, kind: str) -> dict:
    """Encoding keys read from the source that are safe to write again."""
    keep = {"_FillValue", "dtype", "scale_factor", "add_offset", "units", "calendar"}
    return {k: v for k, v in var.encoding.items() if k in keep}
