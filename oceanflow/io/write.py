"""Writing Zarr and NetCDF all or nothing: a hidden temporary sibling that replaces the output once complete."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from .._client import active_client
from .._memory import returning_freed_blocks
from .._progress import compute as compute_with_progress
from .._progress import progress_bar
from ..variables import bounds_names
from .atomic import Output
from .netcdf import codec_for, write_netcdf

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["save"]

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")

#: Below this many free bytes, HDF5's unspecific "HDF error" is taken for a full disk.
_NEARLY_FULL = 16 << 20


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
    from ..climatology.cf import encode_climatology  # hook: groups as a CF climatological time axis

    path = Path(path)
    ds = encode_climatology(_as_dataset(obj))
    kind = _format_for(path)
    if kind == "netcdf":
        codec_for(compression, level)  # bad codecs and levels refused before anything is written
    elif compression is not None or level is not None:
        raise ValueError("compression= and level= choose the NetCDF codec; for Zarr pass encoding= (compressors)")
    codec = {"compression": compression, "level": level}
    if not path.parent.exists():
        raise FileNotFoundError(f"directory {path.parent} does not exist; create it first")
    output = Output(path, overwrite=overwrite, register=compute)
    try:
        ds = _with_history(ds, operation)
        encoding = _default_encoding(ds, kind, encoding or {})
        if not compute:
            import dask

            return dask.delayed(_finish)(_write(ds, output.tmp, kind, encoding, now=False, **codec), output, kind)
        client = active_client()
        if client is not None:
            written = _write(ds, output.tmp, kind, encoding, now=False, **codec)
            try:
                compute_with_progress(written, progress=progress)  # distributed's scheduler and bar
            except BaseException:
                _wait_for_running_tasks(client, written)
                raise
        else:
            # On the local scheduler, written directly rather than through a Delayed: computing
            # the Delayed of to_zarr(compute=False) held most chunks in memory (2.2 GB peak for
            # a 1.9 GB anomaly, against 0.46 GB written directly).
            # the block pool outlives the join: a failed save's leftover tasks still take blocks from it
            with returning_freed_blocks(), progress_bar(progress), _joined_threads() as pool:
                _write(ds, output.tmp, kind, encoding, now=True, scheduler=pool, **codec)
    except BaseException as err:
        free = _free_bytes(path.parent)
        output.discard()
        if _disk_full(err, free):
            raise OSError(
                errno.ENOSPC,
                f"no space left on device while writing {path} ({_format_bytes(free)} free on its file "
                f"system); the partial output was removed. Free some space or write elsewhere",
            ) from err
        raise
    _finish(None, output, kind)
    return None


def _write(
    ds: xr.Dataset, tmp: Path, kind: str, encoding: dict, *, now: bool, compression=None, level=None, scheduler=None
):
    """Write ``ds`` to ``tmp`` (or return the Delayed that writes it when ``now`` is False); ``scheduler``:
    keyword arguments of this write's ``dask.compute`` (``pool=``)."""
    if kind == "netcdf":
        return write_netcdf(
            ds, tmp, encoding=encoding, compression=compression, level=level, compute=now, scheduler=scheduler
        )
    with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is not in its spec yet
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        if now:
            return ds.to_zarr(
                tmp, mode="w", encoding=encoding, consolidated=True, chunkmanager_store_kwargs=scheduler or None
            )
        return ds.to_zarr(tmp, mode="w", encoding=encoding, compute=False, consolidated=True)


def _finish(_written, output: Output, kind: str) -> Path:
    """Replace the output's path by its complete temporary (runs after the write)."""
    if kind == "zarr" and not any((output.tmp / marker).exists() for marker in ("zarr.json", ".zgroup")):
        output.discard()  # a later save removed it, and this write's chunks recreated only parts
        raise FileNotFoundError(
            f"the temporary output of {output.path} was removed by a later save of the same path "
            "before this write finished; call save again"
        )
    return output.commit()


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
def _joined_threads() -> Iterator[dict[str, Any]]:
    """A pool of our own for dask's threaded scheduler, joined on the way out; yields the ``dask.compute``
    keyword arguments that use it (``{"pool": pool}``, or ``{}`` where the user chose a scheduler or pool).

    When one task fails, dask raises at once while other threads still write
    their chunks; joining them first means no late chunk recreates the
    temporary output after it was removed.  The pool is passed to this
    write's compute only, never put in dask's process-wide config: there,
    a concurrent ``save`` on another thread took it for the user's and
    computed on it after it was shut down ("cannot schedule new futures
    after shutdown").
    """
    import dask
    from dask import threaded
    from dask.base import get_scheduler

    if get_scheduler() not in (None, threaded.get) or dask.config.get("pool", None) is not None:
        yield {}  # synchronous, processes or a user's pool: nothing of ours to join
        return
    workers = dask.config.get("num_workers", None) or threaded.CPU_COUNT
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
