"""Reading NetCDF files and Zarr stores lazily, in storage-aligned dask chunks."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import xarray as xr

from .atomic import recover

__all__ = ["open_dataset"]

_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")


def open_dataset(paths, *, chunks="auto", engine=None, **kwargs) -> xr.Dataset:
    """Open NetCDF file(s) or a Zarr store lazily, with storage-aligned dask chunks.

    Parameters
    ----------
    paths : str, Path, or list of them
        A NetCDF file, a glob such as ``"sst_*.nc"``, a list of files (combined
        along time), or a Zarr store (v2 or v3).
    chunks : "auto", dict, None
        ``"auto"`` (default): :func:`oceanflow.chunking.suggest_chunks` on the
        storage chunking (never splits a storage chunk).  A dict is used as
        given (``-1``: whole).  ``None`` opens one file without dask (several
        files are always combined with dask, in the "auto" chunks).
    engine : str, optional
        ``"netcdf4"`` (default for files), ``"h5netcdf"`` or ``"zarr"``
        (default for stores).
    **kwargs
        Passed to ``xarray.open_dataset``.  Non-standard CF calendars decode
        to cftime dates.

    Example
    -------
    >>> ds = open_dataset("sst_*.nc")          # doctest: +SKIP
    >>> ds.sst.chunks                          # doctest: +SKIP
    """
    files = _resolve(paths)
    engine = engine or _engine_for(files[0])
    datasets = [_open_one(path, engine, kwargs) for path in files]  # lazy, not yet dask
    if chunks is None and len(datasets) == 1:
        return datasets[0]
    if chunks is None or chunks == "auto":
        from ..chunking import suggest_chunks

        total = {"time": sum(d.sizes["time"] for d in datasets)} if len(datasets) > 1 else {}
        chunks = suggest_chunks(datasets[0], sizes=total)
    # chunk each lazily opened file directly: dask reads in these chunks, no rechunk layer
    datasets = [
        d.chunk({dim: min(size, d.sizes[dim]) for dim, size in chunks.items() if dim in d.dims}) for d in datasets
    ]
    return datasets[0] if len(datasets) == 1 else _combine(datasets, files)


def _resolve(paths) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise FileNotFoundError("no input given: pass a path, a glob like 'sst_*.nc' or a list of paths")
    files = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}: check the directory and the pattern")
            files.extend(Path(m) for m in matches)
        else:
            recover(Path(text))  # finish an interrupted save of this path first
            if not os.path.exists(text):
                raise FileNotFoundError(f"{text}: no such file or directory; check the path (cwd is {os.getcwd()})")
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
    options = {"chunks": None, **kwargs}
    options.setdefault("decode_times", xr.coders.CFDatetimeCoder(use_cftime=None))
    if engine == "zarr":
        options.setdefault("consolidated", None)
    try:
        return xr.open_dataset(path, engine=engine, **options)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OSError(
            f"cannot read {path} with engine {engine!r} ({type(err).__name__}: {err}); "
            "check that the file is complete and in NetCDF or Zarr format, or pass engine="
        ) from err


def _combine(datasets: list[xr.Dataset], files: list[Path]) -> xr.Dataset:
    """Concatenate files along time after checking that they hold the same fields."""
    first, first_file = datasets[0], files[0]
    for ds, path in zip(datasets[1:], files[1:], strict=True):
        if set(ds.data_vars) != set(first.data_vars):
            raise ValueError(
                f"{path} has variables {sorted(ds.data_vars)} but {first_file} has {sorted(first.data_vars)}; "
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
    if not all("time" in ds.dims for ds in datasets):
        raise ValueError("several files are combined along 'time', but some have no time dimension")
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
