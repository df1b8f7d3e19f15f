"""NetCDF-4 output whose chunks are compressed in parallel, by the tasks that compute them.

netCDF-C (through xarray's netCDF4 backend) defines the file exactly as
``Dataset.to_netcdf`` would: dimensions, coordinates, attributes, the CF
encoding of times, ``_FillValue``, ``scale_factor``/``add_offset``, and each
variable's filters (shuffle, deflate) and storage chunks; it writes the small
variables.  The big ones are then written chunk by chunk with HDF5's direct
chunk write (h5py): each dask task computes its block, encodes it, cuts it
into storage chunks, shuffles and deflates them on its own thread (zlib and
ISA-L release the GIL) and writes the compressed bytes, so HDF5's serial
filter pipeline is bypassed and only compressed bytes reach the file.  On a
``distributed`` cluster each worker writes its own chunks under a cluster
lock: the data never travel through the client.

The result is a standard NetCDF-4 file: ``ncdump``, CDO, NCO and xarray (both
engines) read it without plugins (``deflate`` and ``none``).

**Storage chunks** (the rule of :func:`storage_chunks`).  A reader pays for
whole chunks.  Reading one map (all of space at one time) costs ``ct`` maps,
where ``ct`` is the chunk length along time; reading one point's time series
costs ``T`` times one chunk's spatial tile.  So:

1. along time (``time`` or an unlimited dimension), ``ct`` is as long as
   possible while ``ct`` whole maps stay within :data:`MAP_READ_BYTES` (8 MiB):
   a map reader pays at most that, and a reader that goes through the maps in
   order (CDO, ncview) finds the chunks still in netCDF-C's chunk cache
   (16 MiB per variable in netCDF-C 4.9), decompressing each chunk once;
2. the other dimensions are cut evenly into tiles so that a chunk holds about
   :data:`CHUNK_BYTES` (512 KiB) uncompressed: a time series then costs ``T``
   tiles, 1/16 of the file when ``ct`` is capped by rule 1 (and less than
   that in the other cases), while deflate still works well and the chunk
   index stays small;
3. variables without a time dimension get chunks of about 512 KiB cut evenly
   along all dimensions;
4. each dask block must hold whole storage chunks (a task writes only its own
   chunks): a chunk is never longer than a dask chunk, its length divides the
   dask chunk length, and where no divisor comes within half of the length
   wanted, the dask array is rechunked to multiples of it.

Example
-------
>>> oceanflow.save(anomalies, "anom.nc", compression="deflate", level=1)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
import zlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "CHUNK_BYTES",
    "CODECS",
    "DEFAULT_CODEC",
    "DEFAULT_LEVEL",
    "MAP_READ_BYTES",
    "Codec",
    "codec_for",
    "storage_chunks",
    "write_netcdf",
]

#: Compression choices of ``save(..., compression=)`` and ``--compression``.
CODECS = ("none", "deflate", "zstd")
#: Default codec and level: chosen by measurement (see docs/netcdf.rst).
DEFAULT_CODEC = "deflate"
DEFAULT_LEVEL = 1
#: Levels accepted by each codec.
LEVELS = {"none": range(0, 1), "deflate": range(1, 10), "zstd": range(1, 23)}
#: Uncompressed size a storage chunk aims at (rule 2).
CHUNK_BYTES = 512 << 10
#: Most bytes a reader of one whole map decompresses (rule 1): half of netCDF-C's chunk cache.
MAP_READ_BYTES = 8 << 20
#: Variables of numpy (not dask) data larger than this are written in parallel too.
PARALLEL_BYTES = 8 << 20
#: Dimensions along which readers take time series (besides unlimited ones).
SERIES_DIMS = ("time",)

# ISA-L's deflate levels 1-3 write the same format as zlib at 15x its speed at level 1
# (measured: 1060 MB/s against 70 MB/s per core on float32 fields, same size).
_fast_zlib: Any
try:
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - isal is a dependency where it has wheels
    _fast_zlib = None


@dataclass(frozen=True)
class Codec:
    """How storage chunks are compressed: ``name`` in :data:`CODECS`, its ``level``, byte ``shuffle`` first."""

    name: str
    level: int
    shuffle: bool

    def encoding(self) -> dict[str, Any]:
        """The netCDF4 encoding keys that make netCDF-C declare these filters."""
        if self.name == "none":
            return {"zlib": False, "shuffle": False}
        if self.name == "deflate":
            return {"zlib": True, "complevel": self.level, "shuffle": self.shuffle}
        return {"compression": self.name, "complevel": self.level, "shuffle": self.shuffle}

    def compress(self, chunk: np.ndarray) -> bytes | np.ndarray:
        """What HDF5 stores for ``chunk`` (in the dataset's dtype) after its filters: a buffer."""
        if self.shuffle and chunk.dtype.itemsize > 1:
            data = _shuffled(chunk)
        else:
            data = np.ascontiguousarray(chunk)
        if self.name == "none":
            return data
        if self.name == "deflate":
            if _fast_zlib is not None and self.level <= 3:
                return _fast_zlib.compress(data, self.level)
            return zlib.compress(data.data, self.level)
        import numcodecs

        return bytes(numcodecs.Zstd(level=self.level).encode(data))


def codec_for(compression: str | None = None, level: int | None = None, *, shuffle: bool = True) -> Codec:
    """Check ``compression`` and ``level`` and return the :class:`Codec` (defaults: deflate level 1 with shuffle).

    ``zstd`` warns: readers need the HDF5 zstd filter plugin.

    Example
    -------
    >>> codec_for("deflate", 4)
    Codec(name='deflate', level=4, shuffle=True)
    """
    name = DEFAULT_CODEC if compression is None else str(compression).lower()
    if name not in CODECS:
        raise ValueError(f"unknown compression {compression!r}: choose one of {', '.join(CODECS)}")
    if level is None:
        level = {"none": 0, "deflate": DEFAULT_LEVEL, "zstd": 3}[name]
    levels = LEVELS[name]
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in levels:
        raise ValueError(
            f"compression level {level!r} is not valid for {name}: give a whole number from {levels[0]} to {levels[-1]}"
        )
    if name == "zstd":
        warnings.warn(
            "zstd-compressed NetCDF needs the HDF5 zstd filter plugin (H5Z-zstd, filter id 32015) wherever it "
            "is read: netCDF-C, CDO and NCO built without it (Debian's netcdf-bin 4.9) cannot open the data, "
            "h5py/h5netcdf need the hdf5plugin package; use compression='deflate' for files read everywhere",
            UserWarning,
            stacklevel=3,
        )
    return Codec(name, int(level), shuffle and name != "none")


def storage_chunks(
    shape: Sequence[int],
    dims: Sequence[Hashable],
    itemsize: int,
    dask_chunks: Sequence[Sequence[int]] | None = None,
    series_dims: Sequence[Hashable] = SERIES_DIMS,
) -> tuple[int, ...]:
    """Storage chunk shape for a variable, by the rule in this module's docstring.

    ``dask_chunks``: the variable's dask chunks; the chunk lengths returned
    divide them (see :func:`dask_chunks_for` where they cannot).

    Example
    -------
    >>> storage_chunks((7300, 180, 360), ("time", "lat", "lon"), 4)
    (32, 45, 90)
    """
    if not shape:
        return ()
    n = len(shape)
    series = [i for i, dim in enumerate(dims) if dim in series_dims and shape[i] > 0]
    space = [i for i in range(n) if i not in series]
    wanted = [1.0] * n
    if series:
        map_bytes = itemsize * math.prod(shape[i] for i in space)
        length = max(1, min(shape[series[0]], MAP_READ_BYTES // max(map_bytes, 1)))
        wanted[series[0]] = length
        for i in series[1:]:
            wanted[i] = 1
        budget = CHUNK_BYTES / (itemsize * length)
    else:
        budget = CHUNK_BYTES / itemsize
    if space:
        scale = min(1.0, (budget / max(math.prod(shape[i] for i in space), 1)) ** (1 / len(space)))
        for i in space:
            wanted[i] = max(1.0, shape[i] * scale)
    chunks = []
    for i in range(n):
        even = _even(shape[i], wanted[i])
        blocks = dask_chunks[i] if dask_chunks is not None else (shape[i],)
        chunks.append(_aligned(even, blocks))
    return tuple(chunks)


def dask_chunks_for(storage: Sequence[int], chunks: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Dask chunks holding whole storage chunks: each dask chunk length rounded to a multiple of the storage one."""
    aligned = []
    for size, blocks in zip(storage, chunks, strict=True):
        if _fits(size, blocks):
            aligned.append(tuple(blocks))
            continue
        total, step = sum(blocks), max(size, round(blocks[0] / size) * size)
        aligned.append(tuple(min(step, total - start) for start in range(0, total, step)))
    return tuple(aligned)


def _even(length: int, wanted: float) -> int:
    """The chunk length near ``wanted`` that cuts ``length`` into equal pieces."""
    if length <= 0:
        return 1
    pieces = max(1, math.ceil(length / max(wanted, 1.0)))
    return math.ceil(length / pieces)


def _fits(size: int, blocks: Sequence[int]) -> bool:
    """Whether every dask block but the last is a whole number of storage chunks."""
    return all(b % size == 0 for b in blocks[:-1])


def _aligned(size: int, blocks: Sequence[int]) -> int:
    """A chunk length near ``size`` that divides the dask blocks (all but the last).

    Never longer than a dask block (that would merge blocks); the largest
    divisor not above ``size`` if it is at least half of it; else ``size``
    itself, and the dask array is rechunked (:func:`dask_chunks_for`).
    """
    if _fits(size, blocks):
        return size
    common = math.gcd(*blocks[:-1])
    if size >= common:
        return common
    best = max(d for d in range(1, size + 1) if common % d == 0)
    return best if 2 * best >= size else size


# ------------------------------------------------------------------ writing


@dataclass(frozen=True)
class _Target:
    """Where a task writes: the HDF5 dataset ``name`` in the file ``path``."""

    path: str
    name: str
    codec: Codec
    chunks: tuple[int, ...] | None  # None: contiguous storage
    dtype: np.dtype
    fill: Any


class _Collector:
    """An xarray ArrayWriter that writes numpy data at once and keeps dask data for later."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, Any]] = []

    def add(self, source: Any, target: Any, region: Any = None) -> None:
        if region:
            raise NotImplementedError("region writes do not go through oceanflow's NetCDF writer")
        if hasattr(source, "dask") and source.dtype.kind in "biuf" and source.ndim and source.size:
            self.sources.append((target.variable_name, source))
        else:
            target[...] = np.asarray(source)


def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    encoding: Mapping[Hashable, Mapping[str, Any]] | None = None,
    compression: str | None = None,
    level: int | None = None,
    unlimited_dims: Sequence[Hashable] | None = None,
    compute: bool = True,
) -> Any:
    """Write ``ds`` to the NetCDF-4 file ``path``, compressing chunks in the dask tasks.

    ``encoding`` (per variable) wins over the codec and the storage chunks
    chosen here; ``unlimited_dims`` defaults to ``ds.encoding["unlimited_dims"]``
    as in ``to_netcdf``.  With ``compute=False`` the file is defined at once and
    a ``dask.delayed`` object writing the data is returned.
    """
    codec = codec_for(compression, level)
    path = os.fspath(path)
    if unlimited_dims is None:
        unlimited_dims = ds.encoding.get("unlimited_dims")
    unlimited = {unlimited_dims} if isinstance(unlimited_dims, str) else set(unlimited_dims or ())
    ds, full_encoding = _prepared(ds, dict(encoding or {}), codec, unlimited)
    sources = _define(ds, path, full_encoding, unlimited)
    targets = _targets(path, {name: source.shape for name, source in sources})
    writes = [block for name, source in sources for block in _write_array(source, targets[name])]
    import dask

    if not compute:
        return dask.delayed(_total)(writes)
    with _open_for_tasks(path):
        dask.compute(writes)
    return None


def _prepared(ds: xr.Dataset, encoding: dict, codec: Codec, unlimited: set) -> tuple[xr.Dataset, dict]:
    """Encodings with filters and storage chunks for every numeric variable; big numpy data made dask, to go
    through the parallel path (blocks of whole storage chunks)."""
    series = tuple(SERIES_DIMS) + tuple(unlimited)
    unknown = [name for name in encoding if name not in ds.variables]
    if unknown:
        raise ValueError(
            f"encoding given for {', '.join(map(repr, unknown))}, which the output does not have; "
            f"its variables are {', '.join(map(str, ds.variables))}"
        )
    full, made_dask = {}, {}
    for name, var in ds.variables.items():
        enc = dict(encoding.get(name, {}))
        if var.dtype.kind in "biuf" and var.ndim:
            enc = {**codec.encoding(), **enc} if _codec_free(enc) else enc
            if "chunksizes" in enc:
                _check_chunksizes(name, var, enc["chunksizes"])
            elif not enc.get("contiguous") and (
                var.chunks is not None or var.nbytes > PARALLEL_BYTES or any(d in unlimited for d in var.dims)
            ):
                enc["chunksizes"] = storage_chunks(var.shape, var.dims, var.dtype.itemsize, var.chunks, series)
            if var.chunks is None and var.nbytes > PARALLEL_BYTES and enc.get("chunksizes") and name not in ds.coords:
                made_dask[name] = var.chunk(_blocks_of_chunks(var, enc["chunksizes"]))
        full[name] = enc
    if made_dask:
        ds = ds.copy()
        for name, var in made_dask.items():
            ds[name] = var
    return ds, full


def _blocks_of_chunks(var: xr.Variable, storage: Sequence[int]) -> dict:
    """Dask chunks of about :data:`PARALLEL_BYTES` x 4 along the first dimension, whole storage chunks."""
    row = var.nbytes // max(var.shape[0], 1)
    rows = max(storage[0], (4 * PARALLEL_BYTES // max(row, 1)) // storage[0] * storage[0])
    return {var.dims[0]: rows}


def _codec_free(enc: Mapping[str, Any]) -> bool:
    """Whether a user's encoding leaves the compression to ``compression=``."""
    return not {"zlib", "compression", "complevel", "shuffle", "szip_coding"} & set(enc)


def _check_chunksizes(name: Hashable, var: xr.Variable, chunksizes: Sequence[int]) -> None:
    if len(chunksizes) != var.ndim:
        raise ValueError(
            f"encoding chunksizes {tuple(chunksizes)} of {name!r} has {len(chunksizes)} lengths but the "
            f"variable has {var.ndim} dimensions {var.dims}"
        )
    for dim, size, length in zip(var.dims, chunksizes, var.shape, strict=True):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"chunk length {size!r} of {name!r} along {dim!r} must be a whole number of at least 1")
        if size > length:
            raise ValueError(
                f"chunk length {size} of {name!r} along {dim!r} is larger than the dimension ({length}); "
                f"give at most {length}"
            )


def _define(ds: xr.Dataset, path: str, encoding: dict, unlimited: set) -> list[tuple[str, Any]]:
    """Let netCDF-C write the file but the dask-backed numeric data, returned encoded as (name, dask array)."""
    from xarray.backends import NetCDF4DataStore

    store = NetCDF4DataStore.open(path, mode="w", format="NETCDF4")
    collector = _Collector()
    try:
        ds.dump_to_store(store, writer=collector, encoding=encoding, unlimited_dims=sorted(unlimited, key=str))
    finally:
        store.close()
    return collector.sources


def _targets(path: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, _Target]:
    """Read back what netCDF-C declared; extend unlimited dimensions to their length (as netCDF-C does on write)."""
    import h5py

    targets = {}
    with h5py.File(path, "r+") as h5:
        for name, shape in shapes.items():
            dataset = h5[name]
            if dataset.shape != shape:
                dataset.resize(shape)
            targets[name] = _Target(path, name, _declared_codec(dataset), dataset.chunks, dataset.dtype, _fill(dataset))
    return targets


def _declared_codec(dataset: Any) -> Codec:
    """The codec of an HDF5 dataset's filter pipeline; an error for pipelines we cannot reproduce."""
    plist = dataset.id.get_create_plist()
    pipeline = [plist.get_filter(i)[:3] for i in range(plist.get_nfilters())]  # (id, flags, options), in order
    ids = [code for code, _flags, _options in pipeline]
    shuffle = ids[:1] == [_SHUFFLE]
    rest = pipeline[1:] if shuffle else pipeline
    if not rest:
        return Codec("none", 0, shuffle)
    if len(rest) == 1 and rest[0][0] in _CODEC_IDS:
        code, _flags, options = rest[0]
        return Codec(_CODEC_IDS[code], int(options[0]) if len(options) else DEFAULT_LEVEL, shuffle)
    raise ValueError(
        f"variable {dataset.name.lstrip('/')!r} has the HDF5 filters {ids}, which oceanflow's NetCDF writer "
        "does not reproduce (it writes shuffle, then deflate or zstd); drop the other filters "
        "(fletcher32, szip, ...) from its encoding"
    )


_SHUFFLE = 2  # HDF5 filter ids
_CODEC_IDS = {1: "deflate", 32015: "zstd"}


def _fill(dataset: Any) -> Any:
    fill = dataset.fillvalue
    return np.zeros((), dataset.dtype)[()] if fill is None else fill


def _write_array(source: Any, target: _Target) -> list:
    """Tasks writing each block of ``source`` (one per block, named ``oceanflow-write-netcdf-NAME-...``),
    as Delayed objects that return the bytes stored."""
    import dask.array as da
    from dask.base import tokenize

    if source.shape and target.chunks and not _holds_whole_chunks(source.chunks, target.chunks):
        source = source.rechunk(dask_chunks_for(target.chunks, source.chunks))
    written = da.map_blocks(
        _write_block,
        source,
        target=target,
        chunks=tuple((1,) * len(c) for c in source.chunks),
        dtype=np.int64,
        name=f"oceanflow-write-netcdf-{target.name}-{tokenize(source, target)}",
        meta=np.array((), np.int64),
    )
    return list(written.to_delayed().ravel())


def _holds_whole_chunks(chunks: Sequence[Sequence[int]], storage: Sequence[int]) -> bool:
    return all(_fits(size, blocks) for size, blocks in zip(storage, chunks, strict=True))


def _total(writes: list) -> int:
    return int(sum(int(w.sum()) for w in writes))


def _write_block(block: np.ndarray, target: _Target, block_info: dict | None = None) -> np.ndarray:
    """Task: compress this block's storage chunks on this thread and write them; returns the bytes stored."""
    assert block_info is not None  # dask passes it
    start = tuple(lo for lo, _ in block_info[0]["array-location"])
    data = np.asarray(block, dtype=target.dtype)
    if target.chunks is None:
        with _dataset(target) as dataset:
            dataset[tuple(slice(s, s + n) for s, n in zip(start, data.shape, strict=True))] = data
        return np.full((1,) * data.ndim, data.nbytes, np.int64)
    pieces = [(offset, target.codec.compress(chunk)) for offset, chunk in _chunks_of(data, start, target)]
    with _dataset(target) as dataset:
        for offset, payload in pieces:
            dataset.id.write_direct_chunk(offset, payload, 0)
    stored = sum(p.nbytes if isinstance(p, np.ndarray) else len(p) for _, p in pieces)
    return np.full((1,) * data.ndim, stored, np.int64)


def _chunks_of(data: np.ndarray, start: tuple[int, ...], target: _Target) -> Iterator[tuple[tuple, np.ndarray]]:
    """(file offset, full-size chunk, a view where possible) for each storage chunk of a block; edges padded
    with the fill value."""
    size = target.chunks
    assert size is not None
    ranges = [range(0, n, c) for n, c in zip(data.shape, size, strict=True)]
    for corner in np.ndindex(*(len(r) for r in ranges)):
        lo = tuple(r[i] for r, i in zip(ranges, corner, strict=True))
        piece = data[tuple(slice(a, a + c) for a, c in zip(lo, size, strict=True))]
        offset = tuple(s + a for s, a in zip(start, lo, strict=True))
        if piece.shape != size:
            padded = np.full(size, target.fill, dtype=target.dtype)
            padded[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = padded
        yield offset, piece


def _shuffled(chunk: np.ndarray) -> np.ndarray:
    """HDF5's shuffle filter: byte 0 of every element, then byte 1, ...; one copy, from a strided chunk too."""
    if chunk.ndim == 0 or chunk.strides[-1] != chunk.itemsize:
        chunk = np.ascontiguousarray(chunk)
    raw = chunk.view(np.uint8).reshape(chunk.shape + (chunk.itemsize,))
    return np.ascontiguousarray(np.moveaxis(raw, -1, 0))


# --------------------------------------------------------- file handles and locks

_OPEN: dict[str, tuple[int, Any, threading.Lock]] = {}  # path -> (pid, h5py.File, lock) while save writes locally
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _open_for_tasks(path: str) -> Iterator[None]:
    """Keep ``path`` open in this process while local threads write into it."""
    import h5py

    h5 = h5py.File(path, "r+")
    _OPEN[path] = (os.getpid(), h5, threading.Lock())
    try:
        yield
    finally:
        del _OPEN[path]
        h5.close()


@contextlib.contextmanager
def _dataset(target: _Target) -> Iterator[Any]:
    """The HDF5 dataset, for one writer at a time.

    In the process that runs ``save`` on threads: the open file, under a thread
    lock.  On a distributed worker (or a delayed write computed later): the
    file opened and closed around each block, under a lock that spans the
    cluster (``distributed.Lock``) or this process.
    """
    held = _OPEN.get(target.path)
    if held is not None and held[0] == os.getpid():
        _pid, h5, lock = held
        with lock:
            yield h5[target.name]
        return
    import h5py

    with _lock_for(target.path), h5py.File(target.path, "r+") as h5:
        yield h5[target.name]


def _lock_for(path: str) -> Any:
    try:
        from distributed import Lock, get_worker

        get_worker()
    except (ImportError, ValueError):
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(path, threading.Lock())
    return Lock(f"oceanflow-netcdf-{path}")
