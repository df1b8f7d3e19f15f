"""NetCDF-4 output whose chunks are compressed in parallel, by the tasks that compute them.

netCDF-C (through xarray's netCDF4 backend) defines the file exactly as
``Dataset.to_netcdf`` would: dimensions, coordinates, attributes, the CF
encoding of times, ``_FillValue``, ``scale_factor``/``add_offset``, and each
variable's filters (shuffle, deflate) and storage chunks; it writes the small
variables.  The big ones are then written chunk by chunk with HDF5's direct
chunk write (h5py): each dask task computes its block, encodes it, cuts it
into storage chunks, shuffles and deflates them on its own thread and writes
the compressed bytes (zlib, ISA-L and the numba kernels that shuffle, sample
and Huffman-code the bytes release the GIL, so chunks are compressed in
parallel; the Python between those calls holds it), so HDF5's serial
filter pipeline is bypassed and only compressed bytes reach the file (past
the page cache on a local file system: :mod:`oceanflow.io.uncached`).  On a
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
4. a chunk is never longer than a dask chunk (but the last), and its length
   divides the dask chunk length where a divisor comes within half of the
   length wanted, so that each block holds whole chunks; otherwise chunks
   straddle the blocks' edges and are written, whole, by the task of the
   block where they start, which takes their tail from a slice of the next
   block: the dask array is never rechunked for the file.

Example
-------
>>> oceanflow.save(anomalies, "anom.nc", compression="deflate", level=1)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import sys
import threading
import warnings
import zlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._blockwise import delayed_together
from ..kernels._declare import cache_enabled
from ..kernels.deflate import LZ as _LZ
from ..kernels.deflate import STORED as _STORED
from ..kernels.deflate import judge_segments, zlib_stream, zlib_stream_bound
from ..kernels.shuffle import byte_shuffle
from .atomic import descriptors_on, descriptors_to_null
from .uncached import ChunkFile, direct_writes_switched_on, open_chunk_file, switch_scratch
from .uncached import scratch as _scratch

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

# ISA-L's deflate levels 1-3 write the same format as zlib (any inflater reads them), from a
# faster encoder (SIMD hashing, a shorter match search) at about the same size: used where isal is.
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

    def compress(self, chunk: np.ndarray, *, reuse: bool = False) -> bytes | np.ndarray:
        """What HDF5 stores for ``chunk`` (in the dataset's dtype) after its filters: a buffer.

        ``reuse``: copies (contiguous, shuffled) and the deflated bytes go to
        this thread's scratch buffers, so the result is valid until its next
        call only.
        """
        if self.shuffle and chunk.dtype.itemsize > 1:
            data = _shuffled(chunk, reuse)
        else:
            data = _contiguous(chunk, reuse)
        if self.name == "none":
            return data
        if self.name == "deflate":
            if _fast_zlib is not None and self.level <= 3:
                if self.shuffle and chunk.dtype.itemsize > 1:
                    return _deflate_planes(data, chunk.dtype.itemsize, self.level, reuse)
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

    ``dask_chunks``: the variable's dask chunks; a chunk length returned is
    never longer than a dask chunk (but the last) and divides them where a
    divisor comes close (rule 4).

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
    """A chunk length near ``size`` for the dask blocks ``blocks`` (rule 4).

    Never longer than a block but the last, so that a chunk spans at most two
    blocks; the largest divisor of the blocks if it is at least half of that
    (each block then holds whole chunks); else that length itself (chunks
    straddle the blocks' edges, and the task of the block where a chunk starts
    takes its tail from the next block).
    """
    if _fits(size, blocks):
        return size
    size = min(size, *blocks[:-1])
    common = math.gcd(*blocks[:-1])
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
    shape: tuple[int, ...]
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
    compute_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Write ``ds`` to the NetCDF-4 file ``path``, compressing chunks in the dask tasks.

    ``encoding`` (per variable) wins over the codec and the storage chunks
    chosen here; ``unlimited_dims`` defaults to ``ds.encoding["unlimited_dims"]``
    as in ``to_netcdf``.  With ``compute=False`` the file is defined at once and
    a ``dask.delayed`` object writing the data is returned.  ``compute_kwargs``:
    keyword arguments of this write's ``dask.compute`` (such as ``pool=``).

    When netCDF-C cannot close the file (a full disk), every descriptor of this
    process open on ``path`` that was opened while the file was being defined,
    by any thread (netCDF-C's own, and any the caller opened meanwhile), is
    pointed at ``/dev/null`` (Linux) so that the file closes; the write then
    fails.  Descriptors open on ``path`` before the call are left alone.
    """
    codec = codec_for(compression, level)
    # values of OCEANFLOW_NETCDF_DIRECT and OCEANFLOW_NUMBA_CACHE not understood are refused before the file exists
    # (the deflate helpers, numba functions called here and not through a kernel, read the latter at import)
    direct_writes_switched_on()
    cache_enabled()
    path = os.fspath(path)
    if unlimited_dims is None:
        unlimited_dims = ds.encoding.get("unlimited_dims")
    unlimited = {unlimited_dims} if isinstance(unlimited_dims, str) else set(unlimited_dims or ())
    ds, full_encoding = _prepared(ds, dict(encoding or {}), codec, unlimited)
    sources = _define(ds, path, full_encoding, unlimited)
    targets = _targets(path, {name: source.shape for name, source in sources})
    # one dask array per variable, optimised together when computed here (apart, a task two variables
    # share, such as a kernel returning both, would be fused into each and computed twice)
    writes = [_write_array(source, targets[name]) for name, source in sources]
    import dask

    if not compute:  # (over the graph as it is: optimised with whatever it is computed with)
        return delayed_together(_total, *writes)
    with _open_for_tasks(path):
        dask.compute(writes, **(compute_kwargs or {}))
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


#: netCDF-C (and the HDF5 library it links) is not thread-safe: one file defined at a time in this process.
_DEFINING = threading.Lock()


def _define(ds: xr.Dataset, path: str, encoding: dict, unlimited: set) -> list[tuple[str, Any]]:
    """Let netCDF-C write the file but the dask-backed numeric data, returned encoded as (name, dask array).

    Under :data:`_DEFINING`: two saves defining their files at once on two
    threads crashed the process in netCDF-C (xarray's store releases its lock
    between calls).
    """
    from xarray.backends import NetCDF4DataStore

    collector = _Collector()
    with _DEFINING:
        # the caller's own: left alone if the close fails.  A narrow race is left: should the caller
        # close one of these on another thread during the write and netCDF-C's open reuse its number,
        # on a full disk that descriptor is kept and the failed file stays open in HDF5 (as before
        # 189b9cd); a descriptor the caller opens on path meanwhile is pointed at /dev/null instead.
        # Taken up front although used only if the close fails: afterwards the caller's descriptors could not
        # be told from netCDF-C's, and a list of descriptor numbers alone would not do (a number freed by any
        # thread meanwhile is the next open's).  It costs a listing of /proc/self/fd and a readlink per
        # descriptor, small beside any save.
        before = descriptors_on(path)
        store = NetCDF4DataStore.open(path, mode="w", format="NETCDF4")
        root = store.ds  # the netCDF4.Dataset: store.close() forgets it even when closing fails
        try:
            ds.dump_to_store(store, writer=collector, encoding=encoding, unlimited_dims=sorted(unlimited, key=str))
        finally:
            try:
                store.close()
            except Exception:
                _close_failed(root, path, before)
                raise
    return collector.sources


def _close_failed(root: Any, path: str, before: frozenset[int]) -> None:
    """Close ``root`` (a netCDF4.Dataset on ``path``) whose close failed, as on a full disk.

    netCDF-C keeps a file open when it cannot flush it, and HDF5 then still
    lists it as open: a later file given the same device and inode (the failed
    one removed, its inode reused) could not be created ("Permission denied").
    The write failed, so its content is lost anyway: every descriptor of this
    process open on ``path`` now, whichever thread opened it while the file was
    being defined, is pointed at ``/dev/null`` (Linux), where the flush
    succeeds, and the file is closed; only those in ``before`` (open on ``path``
    before the write began: the caller's own, when :func:`write_netcdf` is
    given a file the caller holds open) are left alone.
    """
    descriptors_to_null(path, keep=before)
    with contextlib.suppress(Exception):
        root.close()


def _targets(path: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, _Target]:
    """Read back what netCDF-C declared; extend unlimited dimensions to their length (as netCDF-C does on write)."""
    import h5py

    targets = {}
    with h5py.File(path, "r+") as h5:
        for name, shape in shapes.items():
            dataset = h5[name]
            if dataset.shape != shape:
                dataset.resize(shape)
            targets[name] = _Target(
                path, name, _declared_codec(dataset), dataset.chunks, shape, dataset.dtype, _fill(dataset)
            )
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


def _write_array(source: Any, target: _Target) -> Any:
    """Tasks writing ``source`` (named ``oceanflow-write-netcdf-NAME-...``), as a dask array of the bytes each
    stored, a task a block.

    Storage chunks: one task per dask block, writing the chunks whose first
    element lies in it; a chunk that runs into the next block(s) takes its tail
    from a copied slice of them (a task of its own, so that on a cluster only
    the slice travels, and a copy, so that the next block can be freed as soon
    as its own write is done), so the dask chunks need no rechunk to whole
    storage chunks.
    Contiguous storage: one task per block, writing the block.
    """

    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(source, target)
    name = f"oceanflow-write-netcdf-{target.name}-{token}"
    piece = f"oceanflow-write-netcdf-piece-{target.name}-{token}"
    bounds = [np.cumsum((0,) + tuple(c)) for c in source.chunks]
    graph: dict = {}
    writes: list = []
    for idx in np.ndindex(*source.numblocks):
        lo = tuple(int(b[i]) for b, i in zip(bounds, idx, strict=True))
        block_hi = tuple(int(b[i + 1]) for b, i in zip(bounds, idx, strict=True))
        if target.chunks is None:
            hi, ranges = block_hi, [(i, i + 1) for i in idx]
        else:
            lo = tuple(-(-a // c) * c for a, c in zip(lo, target.chunks, strict=True))  # first chunk corner
            if any(a >= b for a, b in zip(lo, block_hi, strict=True)):
                continue  # no chunk starts in this block: the blocks before write its values
            hi = tuple(
                min(n, ((b - 1) // c + 1) * c) for b, c, n in zip(block_hi, target.chunks, source.shape, strict=True)
            )
            ranges = [
                (i, int(np.searchsorted(b, h, side="left")))  # the blocks that hold [lo, hi)
                for b, i, h in zip(bounds, idx, hi, strict=True)
            ]
        keys, starts = [], []
        for k, other in enumerate(itertools.product(*(range(a, b) for a, b in ranges))):
            first = tuple(int(b[j]) for b, j in zip(bounds, other, strict=True))
            last = tuple(int(b[j + 1]) for b, j in zip(bounds, other, strict=True))
            want = tuple(slice(max(a, f) - f, min(h, e) - f) for a, h, f, e in zip(lo, hi, first, last, strict=True))
            key = (source.name, *other)
            if any(w.start > 0 or w.stop < e - f for w, f, e in zip(want, first, last, strict=True)):
                graph[(piece, len(writes), k)] = (_copied_piece, key, want)
                key = (piece, len(writes), k)
            keys.append(key)
            starts.append(tuple(f + w.start for f, w in zip(first, want, strict=True)))
        graph[(name, len(writes))] = (_write_region, keys, starts, lo, hi, target)
        writes.append((name, len(writes)))
    layers = HighLevelGraph.from_collections(name, graph, dependencies=[source])
    return da.Array(layers, name, ((1,) * len(writes),), dtype=np.int64, meta=np.array((), np.int64))


def _total(*writes: np.ndarray) -> int:
    """The bytes stored by all of ``writes`` (each the bytes stored per task)."""
    return int(sum(int(w.sum()) for w in writes))


#: Stored bytes a write task gathers before it takes the file's lock to write them.
WRITE_BATCH_BYTES = 8 << 20


def _write_region(
    pieces: list[np.ndarray], starts: list[tuple[int, ...]], lo: tuple, hi: tuple, target: _Target
) -> np.ndarray:
    """Task: write the values in ``[lo, hi)`` (the storage chunks whose corner lies in it), held by ``pieces``
    starting at ``starts``; compress them on this thread, write them a batch at a time; the bytes stored."""
    if target.chunks is None:
        data = np.asarray(pieces[0], dtype=target.dtype)
        with _dataset(target) as (dataset, _file):
            dataset[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = data
        return np.array([data.nbytes], np.int64)
    # In the process that holds the file open, each chunk is written as soon as it is compressed (the lock is
    # cheap) from this thread's scratch buffers, by the file's writer threads while this one compresses the next
    # chunk into the other set of buffers; elsewhere (a cluster's worker opens the file per write) a batch of
    # WRITE_BATCH_BYTES at a time, compressed chunks kept.
    local = _held_here(target.path)
    reuse = local or target.codec.name != "none"
    stored, batch, held = 0, [], 0
    writing: list[Future] = []  # writes in flight, from the set of scratch buffers not being filled
    try:
        for corner in itertools.product(*(range(a, b, c) for a, b, c in zip(lo, hi, target.chunks, strict=True))):
            payload = target.codec.compress(_chunk_at(corner, pieces, starts, target, reuse), reuse=reuse)
            if reuse and not local:  # in this thread's scratch buffer, which the next chunk overwrites: kept
                payload = bytes(payload)
            size = payload.nbytes if isinstance(payload, np.ndarray) else len(payload)
            batch.append((corner, payload))
            held += size
            if local or held >= WRITE_BATCH_BYTES:
                writing, earlier = _write_chunks(batch, target), writing
                _finish(earlier)  # the chunk before's buffers, into which the next chunk is compressed
                switch_scratch()
                stored, batch, held = stored + held, [], 0
        writing += _write_chunks(batch, target)
    except BaseException:
        _finish(writing, raising=False)  # no scratch buffer is refilled, and the file not closed, under a write
        raise
    _finish(writing)
    return np.array([stored + held], np.int64)


def _finish(writes: list[Future], raising: bool = True) -> None:
    """Wait for all of ``writes``; then (``raising``) raise the first error one of them raised."""
    errors = [error for error in (write.exception() for write in writes) if error is not None]
    if errors and raising:
        raise errors[0]


def _write_chunks(batch: list, target: _Target) -> list[Future]:
    """Write ``batch`` ((corner, stored bytes) pairs); where this process holds the file through a
    :class:`~oceanflow.io.uncached.ChunkFile`, HDF5 only places the chunks under the lock and their bytes are
    written after it, past the page cache, by the file's writer threads: the futures of those writes (the
    stored bytes must stay unchanged until they are done)."""
    if not batch:
        return []
    placed = []
    with _dataset(target) as (dataset, file):
        for corner, payload in batch:
            if file is None:
                dataset.id.write_direct_chunk(corner, payload, 0)
            else:
                placed.append((file.place(dataset, corner, payload), payload))
    if file is None:
        return []
    writing: list[Future] = []
    try:
        for offset, payload in placed:
            if offset is not None:
                writing.append(file.write_at_later(payload, offset))
    except BaseException:
        _finish(writing, raising=False)  # those handed over are done before the caller reuses their buffers
        raise
    return writing


def _chunk_at(corner: tuple[int, ...], pieces: list, starts: list, target: _Target, reuse: bool) -> np.ndarray:
    """The full-size storage chunk at ``corner``: a view of the one piece holding it where possible, else
    assembled from the pieces it spans, padded with the fill value beyond the variable's end."""
    size = target.chunks
    assert size is not None
    stop = tuple(min(a + c, n) for a, c, n in zip(corner, size, target.shape, strict=True))
    whole = stop == tuple(a + c for a, c in zip(corner, size, strict=True))
    for data, start in zip(pieces, starts, strict=True):
        if whole and all(f <= a and b <= f + n for a, b, f, n in zip(corner, stop, start, data.shape, strict=True)):
            view = data[tuple(slice(a - f, b - f) for a, b, f in zip(corner, stop, start, strict=True))]
            return view if view.dtype == target.dtype else view.astype(target.dtype)
    nbytes = math.prod(size) * target.dtype.itemsize
    chunk = (_scratch("assembled", nbytes) if reuse else np.empty(nbytes, np.uint8)).view(target.dtype).reshape(size)
    if not whole:
        chunk[...] = target.fill
    for data, start in zip(pieces, starts, strict=True):
        a = tuple(max(c, f) for c, f in zip(corner, start, strict=True))
        b = tuple(min(s, f + n) for s, f, n in zip(stop, start, data.shape, strict=True))
        if all(x < y for x, y in zip(a, b, strict=True)):
            into = tuple(slice(x - c, y - c) for x, y, c in zip(a, b, corner, strict=True))
            chunk[into] = data[tuple(slice(x - f, y - f) for x, y, f in zip(a, b, start, strict=True))]
    return chunk


def _shuffled(chunk: np.ndarray, reuse: bool = False) -> np.ndarray:
    """HDF5's shuffle filter: byte 0 of every element, then byte 1, ...; from a strided chunk too."""
    words = _WORDS.get(chunk.itemsize)
    if words is None or sys.byteorder != "little":
        if chunk.ndim == 0 or chunk.strides[-1] != chunk.itemsize:
            chunk = np.ascontiguousarray(chunk)
        raw = chunk.view(np.uint8).reshape(chunk.shape + (chunk.itemsize,))
        return np.ascontiguousarray(np.moveaxis(raw, -1, 0))
    out = _scratch("shuffled", chunk.nbytes) if reuse else np.empty(chunk.nbytes, np.uint8)
    byte_shuffle(_contiguous(chunk, reuse).reshape(-1).view(words), out)
    return out


#: Bytes judged at a time by :func:`~oceanflow.kernels.deflate.judge_segments`: deflated, coded as literals, or
#: kept in one stored block.
SEGMENT = 65280
#: Random-looking segments are deflated too if deflating a 4 KiB sample of them saves this fraction of it (random
#: bytes: none; see :func:`_sample_shrinks`).
SAVES = 0.02


def _deflate_planes(shuffled: np.ndarray, planes: int, level: int, reuse: bool = False) -> np.ndarray:
    """One zlib stream of the shuffled bytes (``planes`` byte planes), as HDF5's deflate filter stores it: each
    plane cut into segments of at most :data:`SEGMENT` bytes, each written as
    :func:`~oceanflow.kernels.deflate.judge_segments` judges it: deflated by ISA-L (back references), coded as
    literals with the segment's own Huffman code (:func:`~oceanflow.kernels.deflate.huffman_block`), or kept in
    deflate's stored blocks where they look random and a trial deflate of a sample does not shrink them (the
    low mantissa bytes of noisy data, which no deflate level compresses).

    Compressing random bytes costs as much as any others and gains nothing,
    and looking for back references in bytes drawn independently from a
    skewed histogram (the exponent and the low mantissa bytes of anomalies)
    finds none: there a block of literals is smaller and several times
    faster.  Each run of deflated segments is a raw deflate stream ended by a
    sync flush (byte aligned, not final), so runs and stored blocks follow
    each other in one valid stream, closed by an empty final stored block and
    the Adler-32 of all the bytes.  The runs deflated by ISA-L aside, the
    stream is written by one kernel call that holds no GIL
    (:func:`~oceanflow.kernels.deflate.zlib_stream`), where deflate's format
    is written.  ``reuse``: the result in this thread's scratch buffer (valid
    until its next call).
    """
    flat = shuffled.reshape(-1)
    plane = flat.size // planes
    bounds = _segment_bounds(flat.size, planes)
    kinds = _segment_kinds(flat, bounds)
    plain = kinds == _STORED
    if plain.any() and _sample_shrinks(
        flat, [(int(bounds[k]), int(bounds[k + 1])) for k in np.flatnonzero(plain)], plane
    ):
        kinds[plain] = _LZ  # random-looking segments are stored unless a trial deflate shrinks them (ramps)
    adler = _fast_zlib.adler32(flat) & 0xFFFFFFFF
    deflated, ends = _back_references(flat, bounds, kinds, level)
    bound = zlib_stream_bound(flat.size, kinds.size, deflated.size)
    out = _scratch("deflated", bound) if reuse else np.empty(bound, np.uint8)
    written = out[: zlib_stream(flat, bounds, kinds, adler, deflated, ends, out)]
    return written if reuse else written.copy()


@functools.lru_cache(maxsize=64)
def _segment_bounds(size: int, planes: int) -> np.ndarray:
    """Where the segments of ``planes`` byte planes of ``size`` bytes in all begin, and ``size``: each plane cut
    evenly into segments of at most :data:`SEGMENT` bytes (read-only: shared by every chunk of that size)."""
    plane = size // planes
    pieces = -(-plane // SEGMENT)
    bounds = np.array([p * plane + plane * k // pieces for p in range(planes) for k in range(pieces)] + [size])
    bounds.flags.writeable = False
    return bounds


def _back_references(
    flat: np.ndarray, bounds: np.ndarray, kinds: np.ndarray, level: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each run of segments of kind ``_LZ`` (segments ``flat[bounds[k]:bounds[k + 1]]`` of kinds ``kinds``)
    deflated by ISA-L into a raw deflate stream ended by a sync flush (byte aligned, not final): their bytes one
    after the other (read-only) and where each run's end, as :func:`~oceanflow.kernels.deflate.zlib_stream`
    takes them."""
    lz = kinds == _LZ
    if not lz.any():
        return _NO_BYTES, _NO_ENDS
    firsts = np.flatnonzero(lz & ~np.r_[False, lz[:-1]])
    stops = np.flatnonzero(lz & ~np.r_[lz[1:], False]) + 1
    parts = []
    for first, stop in zip(firsts, stops, strict=True):
        packer = _fast_zlib.compressobj(level, _fast_zlib.DEFLATED, -15)
        parts += [packer.compress(flat[bounds[first] : bounds[stop]]), packer.flush(_fast_zlib.Z_SYNC_FLUSH)]
    ends = np.cumsum([len(part) for part in parts], dtype=np.int64)[1::2]
    return np.frombuffer(b"".join(parts), np.uint8), ends


_NO_BYTES, _NO_ENDS = np.frombuffer(b"", np.uint8), np.zeros(0, np.int64)  # read-only as b"".join()'s: one type


def _segment_kinds(flat: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """How to write each segment ``flat[bounds[k]:bounds[k + 1]]`` of the byte planes (``_STORED``, ``_LZ``,
    ``_HUFFMAN``): :func:`~oceanflow.kernels.deflate.judge_segments`, all segments in one kernel call."""
    kinds = np.empty(len(bounds) - 1, np.int64)
    judge_segments(flat, bounds, kinds)
    return kinds


def _sample_shrinks(flat: np.ndarray, spans: list[tuple[int, int]], plane: int) -> bool:
    """Whether deflate saves :data:`SAVES` of a trial of 4 KiB: windows of 1 KiB, one in the middle span of each
    plane of ``plane`` bytes that has ``spans`` (segments of 4 KiB or more), at most 8 planes spread evenly,
    deflated 4 at a time.

    The low byte plane of a counter or an index (0, 1, ..., 255, 0, 1, ...)
    has no runs and a flat histogram, yet deflate's back references shrink it
    about 100x.  One window per plane, so that such a plane is sampled at
    whatever position it has among random ones; 4 KiB per trial because
    ISA-L's fastest level stores a whole 8 KiB trial whose last 3 KiB hold
    the ramp.  One or two trials per chunk, over all its random-looking
    segments, not one per segment or plane: a trial deflate has a fixed cost
    whatever its size (the compressor's state and tables set up), of the
    order of what deflating one segment saves.
    """
    by_plane: dict[int, list[tuple[int, int]]] = {}
    for span in spans:
        by_plane.setdefault(span[0] // plane, []).append(span)
    groups = list(by_plane.values())
    if len(groups) > 8:
        groups = [groups[len(groups) * i // 8] for i in range(8)]
    windows = []
    for group in groups:
        a, b = group[len(group) // 2]
        start = a + (b - a - 1024) // 2
        windows.append(flat[start : start + 1024])
    for k in range(0, len(windows), 4):
        sample = np.concatenate(windows[k : k + 4])
        if len(_fast_zlib.compress(sample, 1)) <= (1 - SAVES) * sample.size:  # only called where isal is
            return True
    return False


_WORDS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _contiguous(chunk: np.ndarray, reuse: bool = False) -> np.ndarray:
    """``chunk`` C-contiguous: itself, or copied (into this thread's scratch buffer with ``reuse``)."""
    if chunk.flags.c_contiguous or not reuse:
        return np.ascontiguousarray(chunk)
    out = _scratch("contiguous", chunk.nbytes).view(chunk.dtype).reshape(chunk.shape)
    np.copyto(out, chunk)
    return out


# --------------------------------------------------------- file handles and locks

# path -> (pid, h5py.File, lock, its datasets by name, its ChunkFile or None) while save writes locally
_OPEN: dict[str, tuple[int, Any, threading.Lock, dict[str, Any], ChunkFile | None]] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _open_for_tasks(path: str) -> Iterator[None]:
    """Keep ``path`` open in this process while local threads write into it: through a
    :class:`~oceanflow.io.uncached.ChunkFile` (chunks written past the page cache) where one opens."""
    import h5py

    file = open_chunk_file(path)
    # Through h5py's file-object driver HDF5 takes no flock() on the file (its sec2 driver does): harmless for
    # save's hidden temporary, which no other program opens before it is renamed into place; a direct
    # write_netcdf() to a path another program reads meanwhile has no such lock to stop it.
    try:
        h5 = h5py.File(path, "r+") if file is None else h5py.File(file, "r+", **file.h5py_options())
    except BaseException:
        if file is not None:
            file.close()
        raise
    _OPEN[path] = (os.getpid(), h5, threading.Lock(), {}, file)
    try:
        yield
    finally:
        del _OPEN[path]
        try:
            h5.close()
        finally:
            if file is not None:
                file.close()


def _held_here(path: str) -> bool:
    """Whether this process holds ``path`` open for its threads (:func:`_open_for_tasks`)."""
    held = _OPEN.get(path)
    return held is not None and held[0] == os.getpid()


@contextlib.contextmanager
def _dataset(target: _Target) -> Iterator[tuple[Any, ChunkFile | None]]:
    """The HDF5 dataset, for one writer at a time, and the :class:`~oceanflow.io.uncached.ChunkFile` through
    which this process holds its file (None: HDF5 writes the chunks itself).

    In the process that runs ``save`` on threads: the open file, under a thread
    lock.  On a distributed worker (or a delayed write computed later): the
    file opened and closed around each block, under a lock that spans the
    cluster (``distributed.Lock``) or this process.
    """
    held = _OPEN.get(target.path)
    if held is not None and held[0] == os.getpid():
        _pid, h5, lock, datasets, file = held
        with lock:
            dataset = datasets.get(target.name)
            if dataset is None:  # looked up once: h5py takes 0.4 ms per lookup, once per chunk written
                dataset = datasets[target.name] = h5[target.name]
            yield dataset, file
        return
    import h5py

    with _lock_for(target.path), h5py.File(target.path, "r+") as h5:
        yield h5[target.name], None


def _lock_for(path: str) -> Any:
    try:
        from distributed import Lock, get_worker

        get_worker()
    except (ImportError, ValueError):
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(path, threading.Lock())
    return Lock(f"oceanflow-netcdf-{path}")


def _copied_piece(block: np.ndarray, where: tuple) -> np.ndarray:
    """A copy of ``block[where]``: a view would keep the whole block in memory until the write that needs it."""
    return np.array(block[where])
