"""Reading NetCDF files and Zarr stores lazily, in storage-aligned dask chunks.

Every chunk is read through :class:`GuardedArray`, so that a read that fails
(a damaged file, a corrupted Zarr chunk) names the file, the variable and the
chunk instead of only the codec's message, and a NetCDF file replaced or
rewritten since it was opened is refused rather than read half old, half new.
"""

from __future__ import annotations

import glob
import itertools
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from ..chunking import checked_chunks
from .atomic import recover
from .direct import DirectReader, Stale, file_stamp, readers_for, region_of
from .times import TimeAxisWarning, check_time_options, decode_times

__all__ = ["GuardedArray", "open_dataset"]

_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]


def open_dataset(
    paths: PathsLike,
    *,
    chunks: Literal["auto"] | Mapping[Hashable, Any] | None = "auto",
    engine: str | None = None,
    time_units: str | None = None,
    calendar: str | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Open NetCDF file(s) or a Zarr store lazily, with storage-aligned dask chunks.

    Parameters
    ----------
    paths : str, Path, or list of them
        A NetCDF file, a glob such as ``"sst_*.nc"``, a list of files (combined
        along time), or a Zarr store (v2 or v3).
    chunks : "auto", dict, None
        ``"auto"`` (default): :func:`oceanflow.chunking.suggest_chunks` on the
        storage chunking (never splits a storage chunk).  A dict
        ``{dim: size}`` is used as given: sizes from 1 to the dimension's
        length, ``-1`` for whole (anything else is refused with the fix).
        ``None`` opens one file without dask (several files are always
        combined with dask, in the "auto" chunks).
    engine : str, optional
        ``"netcdf4"`` (default for files), ``"h5netcdf"`` or ``"zarr"``
        (default for stores).
    time_units : str, optional
        Time units replacing or completing the file's, e.g. ``"days since
        1850-01-01"`` for a file whose ``units`` are only ``"days"``.
    calendar : str, optional
        CF calendar replacing or completing the file's, e.g. ``"noleap"``.
    **kwargs
        Passed to ``xarray.open_dataset``.  ``decode_times=False`` keeps the
        time axis as numbers (``time_units``/``calendar`` still complete its
        attributes).

    Notes
    -----
    Time axes are decoded as described in :mod:`oceanflow.io.times`: any CF
    calendar (non-standard ones as cftime dates), ``"months since"`` and
    ``"years since"`` as calendar months and years, as CDO does, and the
    ``time_bnds`` with the axis.  A change of the file's encoding is said by
    a :class:`~oceanflow.io.times.TimeAxisWarning`; a time axis that cannot
    be decoded raises :class:`~oceanflow.io.times.TimeDecodingError` quoting
    its attributes and the option that fixes it.  An interrupted ``save`` of
    ``paths`` is finished first (see :func:`oceanflow.io.atomic.recover`).

    Example
    -------
    >>> ds = open_dataset("sst_*.nc")          # doctest: +SKIP
    >>> ds.sst.chunks                          # doctest: +SKIP
    >>> ds = open_dataset("obs.nc", time_units="days since 1950-01-01")  # doctest: +SKIP
    """
    check_time_options(time_units, calendar)
    files = _resolve(paths)
    engine = engine or _engine_for(files[0])
    from ..climatology.cf import decode_climatology

    decode = kwargs.pop("decode_times", True)
    # each file's stamp before xarray opens it: a file replaced while it is being opened is refused at its first read
    stamps = [file_stamp(path) if engine != "zarr" else None for path in files]
    datasets, notes = [], []
    for path in files:
        ds, found = decode_times(
            _open_one(path, engine, kwargs), path, time_units=time_units, calendar=calendar, decode=decode
        )
        datasets.append(decode_climatology(ds))  # hook: a CF climatological time axis as groups
        notes.extend(found)
    _warn(notes, len(files))
    if len(datasets) > 1:
        _check_combinable(datasets, files, decoded=decode is not False)
    sizes = dict(datasets[0].sizes)
    if len(datasets) > 1:
        sizes["time"] = sum(d.sizes["time"] for d in datasets)
    chunks = checked_chunks(chunks, sizes)  # refused with the fix, or unchanged
    if chunks is None and len(datasets) == 1:
        return datasets[0]
    if chunks is None or (isinstance(chunks, str) and chunks == "auto"):
        from ..chunking import suggest_chunks

        chunks = suggest_chunks(datasets[0], sizes=sizes)
    group = kwargs.get("group") if engine != "zarr" else None
    datasets = [
        _chunked(d, path, chunks, direct=engine != "zarr", group=group, opened=stamp)
        for d, path, stamp in zip(datasets, files, stamps, strict=True)
    ]
    return datasets[0] if len(datasets) == 1 else _combine(datasets, files)


def _resolve(paths) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise FileNotFoundError("no input given: pass a path, a glob like 'sst_*.nc' or a list of paths")
    texts = [os.fspath(item) for item in items]
    recover(*(Path(text) for text in texts if not glob.has_magic(text)))  # finish interrupted saves first
    files: list[Path] = []
    for text in texts:
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}: check the directory and the pattern")
            files.extend(Path(m) for m in matches)
        elif not os.path.exists(text):
            raise FileNotFoundError(f"{text}: no such file or directory; check the path (cwd is {os.getcwd()})")
        else:
            files.append(Path(text))
    return files


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in _ZARR_MARKERS))


def _engine_for(path: Path) -> str:
    if _is_zarr(path):
        return "zarr"
    if path.is_dir():
        raise ValueError(f"{path} is a directory but not a Zarr store (no zarr.json or .zgroup inside)")
    return "netcdf4"


def _open_one(path: Path, engine: str, kwargs: dict) -> xr.Dataset:
    options = {"chunks": None, **kwargs, "decode_times": False}
    if engine == "zarr":
        options.setdefault("consolidated", None)
    try:
        return xr.open_dataset(path, engine=engine, **options)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OSError(
            f"cannot read {path} with engine {engine!r} ({type(err).__name__}: {err}); "
            "check that the file is complete and in NetCDF or Zarr format, or pass engine="
        ) from err


def _warn(notes: list[tuple[str, str]], n_files: int) -> None:
    """One TimeAxisWarning per kind of note, however many files it concerns."""
    by_kind: dict[str, list[str]] = {}
    for kind, text in notes:
        by_kind.setdefault(kind, []).append(text)
    for texts in by_kind.values():
        more = f" (the same for {len(texts) - 1} more of the {n_files} files)" if len(texts) > 1 else ""
        warnings.warn(texts[0] + more, TimeAxisWarning, stacklevel=3)


# ---------------------------------------------------------------- dask chunks, read with the file named


class GuardedArray:
    """A lazily opened variable read by dask chunk, whose read errors name the file, variable and chunk.

    Example
    -------
    >>> import dask.array as dsa, xarray as xr
    >>> var = xr.Variable(("x",), [1.0, 2.0, 3.0])
    >>> dsa.from_array(GuardedArray(var, "f.nc", "v"), chunks=2, asarray=False).sum().compute()
    np.float64(6.0)
    """

    def __init__(
        self,
        variable: xr.Variable,
        path: object,
        name: Hashable,
        direct: DirectReader | None = None,
        stamp: tuple[int, ...] | None = None,
    ) -> None:
        self.variable = variable
        self.path = path
        self.name = name
        self.direct = direct
        self.stamp = stamp  # the file's when opened (io.direct.file_stamp): reads refused once it differs
        self.shape = variable.shape
        self.dtype = variable.dtype
        self.ndim = variable.ndim

    def __getitem__(self, key):
        self._unchanged()
        return self._unchanged(self._read(key))

    def _read(self, key):
        if self.direct is not None:
            try:
                return self.direct.read(key)
            except Stale:
                self._unchanged(changed=True)
            except Exception:  # noqa: BLE001, S110 - read again by xarray, whose error names the chunk
                pass
        try:
            return np.asarray(self.variable[key].values)
        except Exception as err:
            self._unchanged()  # a file changed since it was opened says so, not "damaged"
            region = _region(key, self.shape)
            bad = _failing_storage_chunks(self.variable, region)
            where = bad[0] if bad else _describe(self.variable.dims, region)
            more = f" (and {len(bad) - 1} more storage chunks in this region)" if len(bad) > 1 else ""
            raise OSError(
                f"cannot read variable {self.name!r} of {self.path}, chunk {where}{more}: "
                f"{type(err).__name__}: {err}. The file may be damaged or incompletely copied: check it "
                f"(ncdump, or zarr for a store), copy it again, or leave the variable out with "
                f"drop_variables=[{self.name!r}]"
            ) from err

    def _unchanged(self, values: Any = None, *, changed: bool = False) -> Any:
        """``values``, unless the file is no longer the one opened (checked before and after each read:
        xarray's open handle would read the old file, or the old layout in the new one)."""
        if self.stamp is not None and (changed or file_stamp(self.path) != self.stamp):  # type: ignore[arg-type]
            raise OSError(
                f"{self.path} changed since it was opened (replaced, rewritten or removed), so variable "
                f"{self.name!r} cannot be read without mixing old and new data: open it again with "
                "oceanflow.open_dataset, and write results to another file than the inputs"
            )
        return values


def _region(key, shape) -> list[slice]:
    """The start:stop slices, one per dimension, that ``key`` covers (as NumPy reads it; whole dimensions
    for a key of another kind)."""
    try:
        return region_of(key, shape)[0]
    except (TypeError, IndexError):
        return [slice(0, n) for n in shape]


def _describe(dims, region) -> str:
    return ", ".join(f"{dim} {r.start}:{r.stop}" for dim, r in zip(dims, region, strict=True)) or "(scalar)"


def _failing_storage_chunks(variable: xr.Variable, region: list[slice]) -> list[str]:
    """The storage chunks of ``region`` that cannot be read (tried one by one, only after an error)."""
    storage = variable.encoding.get("preferred_chunks") or {}
    sizes = [storage.get(dim) or (r.stop - r.start) for dim, r in zip(variable.dims, region, strict=True)]
    if not variable.dims or any(size < 1 for size in sizes):
        return []
    ranges = [range(r.start // size, -(-r.stop // size)) for r, size in zip(region, sizes, strict=True)]
    failing = []
    for index in itertools.islice(itertools.product(*ranges), 10_000):
        block = [slice(i * n, min(i * n + n, end)) for i, n, end in zip(index, sizes, variable.shape, strict=True)]
        try:
            variable[tuple(block)].values  # noqa: B018
        except Exception:  # noqa: BLE001 - any failure marks the chunk
            failing.append(f"{_describe(variable.dims, block)} (storage chunk {tuple(index)})")
    return failing


def _chunked(
    ds: xr.Dataset, path: Path, chunks: Mapping, *, direct: bool = False, group=None, opened: tuple | None = None
) -> xr.Dataset:
    """``ds`` with its variables read lazily from disk as dask arrays of :class:`GuardedArray`; ``direct``:
    NetCDF-4 variables read by their chunks' offsets where possible (:mod:`oceanflow.io.direct`); ``opened``:
    the file's stamp taken before xarray opened it (reads refused once the file differs)."""
    import dask.array as dsa
    from dask.base import tokenize

    path = Path(os.path.abspath(path))  # read from the same file after a change of working directory
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = None
    replaced: dict[Hashable, xr.Variable] = {}
    lazy = {n: v for n, v in ds.variables.items() if n not in ds.indexes and v.ndim and not v._in_memory}
    readers = readers_for(path, lazy, group) if direct and lazy else {}
    if direct and opened is None:
        opened = file_stamp(path)
    readers = {n: r for n, r in readers.items() if r.stamp == opened}  # chunks listed from the file xarray opened
    for name, var in ds.variables.items():
        if name in ds.indexes or not var.ndim:
            continue
        spec = tuple(_dim_chunks(chunks.get(dim), size) for dim, size in zip(var.dims, var.shape, strict=True))
        if var._in_memory:
            data = dsa.from_array(var.values, chunks=spec, name=f"memory-{name}-{tokenize(var.values, spec)}")
        else:
            token = tokenize(os.fspath(path), stamp, name, spec, var.dtype.str)
            data = dsa.from_array(
                GuardedArray(var, path, name, readers.get(name), opened),
                chunks=spec,
                name=f"open_dataset-{name}-{token}",
                asarray=False,
                fancy=False,
                meta=np.empty((0,) * var.ndim, dtype=var.dtype),
            )
        replaced[name] = xr.Variable(var.dims, data, var.attrs, var.encoding)
    coords = {n: v for n, v in replaced.items() if n in ds.coords}
    return ds.assign_coords(coords).assign({n: v for n, v in replaced.items() if n not in coords})


def _dim_chunks(size, length: int):
    if size is None or size == -1:
        return length
    return size if isinstance(size, str) else min(int(size), length)


# ---------------------------------------------------------------- several files


def _check_combinable(datasets: list[xr.Dataset], files: list[Path], *, decoded: bool) -> None:
    """Refuse files that cannot be concatenated along time, naming the file and the fix."""
    lacking = [path for ds, path in zip(datasets, files, strict=True) if "time" not in ds.dims]
    if lacking:
        dims = ", ".join(map(str, datasets[files.index(lacking[0])].dims)) or "none"
        raise ValueError(
            f"{lacking[0]} has no 'time' dimension (its dimensions: {dims}), but several files are combined "
            f"along time ({len(lacking)} of {len(files)} files lack it); leave "
            f"{'it' if len(lacking) == 1 else 'them'} out of the list or glob, or open it on its own"
        )
    if decoded:
        return
    first = {k: datasets[0].time.attrs.get(k) for k in ("units", "calendar")}
    for ds, path in zip(datasets[1:], files[1:], strict=True):
        found = {k: ds.time.attrs.get(k) for k in ("units", "calendar")}
        if found != first:
            raise ValueError(
                f"with decode_times=False, files can only be combined when their times share one encoding, "
                f"but {path} has {found} and {files[0]} has {first}; decode the times (leave decode_times "
                "out) or open the files one by one"
            )


def _combine(datasets: list[xr.Dataset], files: list[Path]) -> xr.Dataset:
    """Concatenate files along time after checking that they hold the same fields."""
    first, first_file = datasets[0], files[0]
    for ds, path in zip(datasets[1:], files[1:], strict=True):
        if set(ds.data_vars) != set(first.data_vars):
            raise ValueError(
                f"{path} has variables {sorted(map(str, ds.data_vars))} but {first_file} has "
                f"{sorted(map(str, first.data_vars))}; "
                "open the files that belong together, or drop the extra variables with drop_variables="
            )
        for name, coord in first.coords.items():
            if "time" in coord.dims:
                continue
            if name not in ds.coords or not coord.equals(ds.coords[name]):
                raise ValueError(
                    f"coordinate {name!r} of {path} differs from {first_file}; "
                    "files combined along time must share their other coordinates"
                )
    ordered = sorted(zip(datasets, files, strict=True), key=lambda pair: pair[0].time.values[0])
    combined = xr.concat(
        [ds for ds, _ in ordered], dim="time", data_vars="minimal", coords="minimal", compat="override", join="exact"
    )
    _check_monotonic(combined, [p for _, p in ordered])
    return combined


def _check_monotonic(ds: xr.Dataset, files: list[Path]) -> None:
    index = ds.indexes["time"]
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"times overlap or repeat across the files {[str(f) for f in files]}; open each period once")
