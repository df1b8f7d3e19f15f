"""Reading NetCDF-4 variables chunk by chunk straight from the file, on every thread at once.

NetCDF-4 files are HDF5 files, and netCDF-C and HDF5 serialise every read
behind one lock per process: the dask tasks reading an input take turns.
A :class:`DirectReader` lists a variable's storage chunks once (their byte
offsets, from HDF5's chunk index), and then each task reads its own chunks
with ``pread`` into the block it returns, undoing deflate (zlib releases
the GIL) and shuffle itself: the reads run in parallel and copy each byte
once.

Only what can be read exactly so is read so: chunked or contiguous
storage, no filters other than shuffle and deflate, the file's numbers
already those of the decoded variable (same dtype, in native byte order:
no ``scale_factor``/``add_offset``, no integer masking; a float
variable's ``_FillValue`` and ``missing_value`` are masked to NaN as xarray
does, compared in the dtype common to the variable and the value).
Everything else, and any read that fails (then read again by xarray, whose
error names the chunk), goes through xarray's netCDF4 backend.  A file
replaced since it was opened is detected (device, inode, size and
modification time): :class:`~oceanflow.io.read.GuardedArray` then refuses it
rather than read old and new numbers together.

Example
-------
>>> reader = DirectReader.for_variable("sst.nc", "sst", xr_variable)  # doctest: +SKIP
>>> block = reader.read((slice(0, 10), slice(None), slice(None)))      # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from .._memory import empty_block

__all__ = ["DirectReader", "readers_for"]

_SHUFFLE, _DEFLATE = 2, 1  # HDF5 filter ids
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_inflate: Callable[[bytes], bytes]
try:
    from isal.isal_zlib import decompress as _inflate  # 2-3x zlib's speed, same format
except ImportError:  # pragma: no cover - isal is a dependency where it has wheels
    _inflate = zlib.decompress


class Stale(Exception):
    """The file changed since its chunks were listed (its offsets may be those of another file)."""


class DirectReader:
    """One variable's storage chunks, read by byte offset.

    ``offsets``/``sizes``/``masks``: per storage chunk (an array over the
    chunk grid; offset -1 for a chunk never written, which holds the fill
    value); ``chunks``: the storage chunk shape (the whole variable for
    contiguous storage: rows of about 1 MiB, ``contiguous`` True).
    """

    def __init__(
        self,
        path: str,
        stamp: tuple[int, ...],
        shape: tuple[int, ...],
        dtype: np.dtype,
        chunks: tuple[int, ...],
        filters: tuple[int, ...],
        offsets: np.ndarray,
        sizes: np.ndarray,
        masks: np.ndarray,
        fill: Any,
        mask_values: tuple[np.generic, ...],
        contiguous: bool = False,
    ) -> None:
        self.path, self.stamp, self.shape, self.dtype = path, stamp, shape, dtype
        self.chunks, self.filters = chunks, filters
        self.offsets, self.sizes, self.masks = offsets, sizes, masks
        self.fill, self.mask_values = fill, mask_values
        self.contiguous = contiguous

    # ------------------------------------------------------------ reading

    def read(self, key: Any) -> np.ndarray:
        """The values at ``key`` (integers and slices, as dask passes them), decoded as xarray would."""
        region, squeeze, steps = region_of(key, self.shape)
        out = empty_block(tuple(r.stop - r.start for r in region), self.dtype)
        if out.size:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if _stamp(os.fstat(fd)) != self.stamp:
                    raise Stale(self.path)
                self._fill_region(fd, region, out)
            finally:
                os.close(fd)
            for value in self.mask_values:
                np.putmask(out, out == value, np.nan)
        if any(s != 1 for s in steps):
            out = out[tuple(slice(None, None, s) for s in steps)]
        return out.reshape(tuple(n for n, drop in zip(out.shape, squeeze, strict=True) if not drop))

    def _fill_region(self, fd: int, region: list[slice], out: np.ndarray) -> None:
        grid = [range(r.start // c, -(-r.stop // c)) for r, c in zip(region, self.chunks, strict=True)]
        for index in itertools.product(*grid):
            corner = [i * c for i, c in zip(index, self.chunks, strict=True)]
            lo = [max(r.start, a) for r, a in zip(region, corner, strict=True)]
            hi = [min(r.stop, a + c) for r, a, c in zip(region, corner, self.chunks, strict=True)]
            into = out[tuple(slice(a - r.start, b - r.start) for a, b, r in zip(lo, hi, region, strict=True))]
            offset = int(self.offsets[index])
            if offset < 0:
                into[...] = self.fill
                continue
            size, mask = int(self.sizes[index]), int(self.masks[index])
            whole = all(a == c and b == c + n for a, b, c, n in zip(lo, hi, corner, self.chunks, strict=True))
            active = [f for i, f in enumerate(self.filters) if not mask >> i & 1]
            if whole and not active and into.flags.c_contiguous and size == into.nbytes:
                _pread_into(fd, into, offset)  # the common case: straight into the block, one copy
                continue
            chunk = self._decoded(_pread(fd, size, offset), active)
            into[...] = chunk[tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, corner, strict=True))]

    def _decoded(self, data: bytes, active: list[int]) -> np.ndarray:
        """A stored chunk's bytes through the filters in reverse (inflate, then unshuffle)."""
        buffer: Any = data
        for code in reversed(active):
            if code == _DEFLATE:
                buffer = _inflate(buffer)
            elif code == _SHUFFLE:
                raw = np.frombuffer(buffer, np.uint8)
                items = self.dtype.itemsize
                buffer = raw.reshape(items, raw.size // items).T.copy() if items > 1 else raw
        nbytes = math.prod(self.chunks) * self.dtype.itemsize
        flat = np.frombuffer(buffer, np.uint8)
        if flat.size < nbytes and not active and self.contiguous:  # the last rows of contiguous storage
            flat = np.concatenate([flat, np.zeros(nbytes - flat.size, np.uint8)])
        if flat.size != nbytes:
            raise OSError(f"storage chunk of {flat.size} bytes where {nbytes} were expected")
        return flat.view(self.dtype).reshape(self.chunks)

    # ------------------------------------------------------------ listing the chunks

    @classmethod
    def for_variable(cls, h5: Any, path: str, name: Hashable, variable: Any) -> DirectReader | None:
        """The reader of variable ``name`` of the open ``h5py`` group ``h5`` (of the file ``path``), or None when
        the variable cannot be read exactly so (see the module's docstring)."""
        import h5py

        dataset = h5.get(f"_nc4_non_coord_{name}") or h5.get(str(name))  # netCDF-C's name for a variable
        # named like a dimension it does not have
        if not isinstance(dataset, h5py.Dataset) or dataset.shape != variable.shape or not dataset.shape:
            return None
        dtype = dataset.dtype
        if dtype != variable.dtype or dtype.kind not in "iuf" or not dtype.isnative:
            return None
        encoding = variable.encoding
        if {"scale_factor", "add_offset", "_Unsigned"} & set(encoding):
            return None
        fills = [encoding.get(key) for key in ("_FillValue", "missing_value")]
        fills = [np.asarray(f).ravel() for f in fills if f is not None]
        # each value keeps its own dtype: xarray compares ``data == value`` in their common dtype, so a
        # float64 missing_value of -999.9 leaves a float32 variable's -999.9 (not the same number) unmasked
        mask_values = tuple(v for f in fills for v in f if not np.isnan(v))
        if mask_values and dtype.kind != "f":
            return None  # xarray would have made it float
        plist = dataset.id.get_create_plist()
        if plist.get_external_count():
            return None
        filters = tuple(plist.get_filter(i)[0] for i in range(plist.get_nfilters()))
        if filters not in ((), (_SHUFFLE,), (_DEFLATE,), (_SHUFFLE, _DEFLATE)):
            return None
        fill = dataset.fillvalue if dataset.fillvalue is not None else np.zeros((), dtype)[()]
        stamp = _stamp(os.stat(path))
        layout = plist.get_layout()
        if layout == h5py.h5d.CONTIGUOUS and not filters:  # read as chunks of whole rows of about 1 MiB
            offset = dataset.id.get_offset()
            row = dtype.itemsize * math.prod(dataset.shape[1:])
            rows = max(1, min(dataset.shape[0], (1 << 20) // max(row, 1)))
            chunks = (rows, *dataset.shape[1:])
            grid = (-(-dataset.shape[0] // rows),) + (1,) * (dataset.ndim - 1)
            starts = np.arange(grid[0], dtype=np.int64) * rows
            offsets = (np.full(grid[0], -1, np.int64) if offset is None else offset + starts * row).reshape(grid)
            sizes = (np.minimum(starts + rows, dataset.shape[0]) - starts).reshape(grid) * row
            masks = np.zeros(grid, np.int64)
        elif layout == h5py.h5d.CHUNKED and hasattr(dataset.id, "chunk_iter"):
            chunks = dataset.chunks
            grid = tuple(-(-n // c) for n, c in zip(dataset.shape, chunks, strict=True))
            offsets = np.full(grid, -1, np.int64)
            sizes = np.zeros(grid, np.int64)
            masks = np.zeros(grid, np.int64)

            def note(info: Any) -> None:
                index = tuple(a // c for a, c in zip(info.chunk_offset, chunks, strict=True))
                offsets[index], sizes[index], masks[index] = info.byte_offset, info.size, info.filter_mask

            dataset.id.chunk_iter(note)
        else:
            return None
        contiguous = layout == h5py.h5d.CONTIGUOUS
        return cls(
            path,
            stamp,
            dataset.shape,
            dtype,
            tuple(chunks),
            filters,
            offsets,
            sizes,
            masks,
            fill,
            mask_values,
            contiguous,
        )


def readers_for(
    path: str | os.PathLike, variables: Mapping[Hashable, Any], group: str | None = None
) -> dict[Hashable, DirectReader]:
    """Readers for those of ``variables`` (name: xarray Variable) of ``group`` of the NetCDF file ``path`` that
    can be read straight from it; none when it is not a NetCDF-4 (HDF5) file or h5py cannot open it."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            if file.read(8) != _HDF5_SIGNATURE:
                return {}  # NetCDF-3 (classic, 64-bit offset, CDF-5): xarray reads it
        import h5py

        with h5py.File(path, "r") as h5:
            where = h5[group] if group else h5
            found = {name: DirectReader.for_variable(where, path, name, var) for name, var in variables.items()}
    except Exception:  # noqa: BLE001 - anything unexpected: xarray reads the file as before
        return {}
    return {name: reader for name, reader in found.items() if reader is not None}


def _stamp(stat: os.stat_result) -> tuple[int, ...]:
    # no st_dev: a shared file system's device number differs between the hosts of a cluster
    # st_ctime_ns too: cp -p, rsync -t or touch -r can restore a rewritten file's size and modification time
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def file_stamp(path: str | os.PathLike) -> tuple[int, ...] | None:
    """What tells the file at ``path`` from the one there before (inode, size, modification time); None
    when there is none."""
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


def region_of(key: Any, shape: tuple[int, ...]) -> tuple[list[slice], list[bool], list[int]]:
    """``key`` (integers, slices, an Ellipsis; negative ones counted from the end, as NumPy does) as the
    start:stop slices it covers with the steps to take in them, and which dimensions an integer dropped.

    Example
    -------
    >>> region_of((-1, slice(None, None, -2)), (10, 5))
    ([slice(9, 10, None), slice(0, 5, None)], [True, False], [1, -2])
    """
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    region, squeeze, steps = [], [], []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            taken = range(*k.indices(n))
            if taken:
                region.append(slice(min(taken[0], taken[-1]), max(taken[0], taken[-1]) + 1))
            else:
                region.append(slice(min(max(taken.start, 0), n), min(max(taken.start, 0), n)))
            squeeze.append(False)
            steps.append(taken.step)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} out of range for length {n}")
            region.append(slice(i, i + 1))
            squeeze.append(True)
            steps.append(1)
        else:
            raise TypeError(f"{type(k).__name__} keys are read through xarray")
    return region, squeeze, steps


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError(f"short read: {len(data)} of {size} bytes at offset {offset}")
    return data


def _pread_into(fd: int, into: np.ndarray, offset: int) -> None:
    view = memoryview(into.reshape(-1).view(np.uint8).data)
    done = 0
    while done < view.nbytes:
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise OSError(f"short read: {done} of {view.nbytes} bytes at offset {offset}")
        done += n
