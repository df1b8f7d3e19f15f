"""The public :func:`~oceanflow.mhw.save`: detection, summary and events computed in the
same tasks and written together, all or nothing, by oceanflow.save's pipeline."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._memory import empty_block, small_pages_while
from ..chunking import worker_threads
from ..kernels import mhw as kernels
from ..options import OPTIONS
from ..timegroups import decoded_time
from . import _engine
from ._blocks import _Stashed, computing_at_once, held_bytes, io_threads, stash_for
from ._definitions import _Calendar
from ._detection import _detect_defaults, _detection_setup
from ._events import _calendar_days, _day_numbers, _events_table, _looked_up, _lookup, events
from ._summary import _summary_periods, _summary_table, years_per_block

logger = logging.getLogger("oceanflow.mhw")


def save(
    sst: xr.DataArray | xr.Dataset,
    path: str | os.PathLike,
    clim: xr.Dataset | None = None,
    *,
    events: str | os.PathLike | None = None,
    summary: str | os.PathLike | None = None,
    freq: str = "YS",
    overwrite: bool = False,
    progress: bool | None = None,
    operation: str = "mhw",
    small_pages: bool = True,
    **options: Any,
) -> dict[str, Path]:
    """Detect and write: the detection, and its summary and events computed in the same tasks.

    Each spatial block's task reads its pixels' series once and runs every
    kernel on the block in memory: thresholds (unless ``clim`` is given),
    detection, and, when asked for, :func:`summary`'s block averages and
    :func:`events`' table.  The blocks' event tables (each sized by its own
    largest number of events, together at most the padded table's size: 184
    bytes per event slot and pixel, slots the largest number of events of a
    pixel) are returned to this process and padded together when that fits
    the dask config key ``oceanflow.mhw.held-bytes`` (default 1 GiB; each block freed once
    copied; in Zarr twice the table does: it is held with its encoded store
    beside it).  Beyond it, in Zarr (dask input) each block's table is padded
    and written into its region of the store, then freed (the whole grid's
    padded table is never held); in NetCDF the tables are dropped and the
    events computed by :func:`events` from the written detection, block by
    block.
    The outputs are all or nothing together: every path is checked (existing
    ones refused without ``overwrite``) before anything is computed, each is
    written to a hidden temporary, and all replace their paths only once all
    are complete; on any error none is changed (another writer changing one of
    the paths is refused before any is replaced), but for a failure of the
    final replacements themselves, made one by one (a full disk, a writer racing
    them): the earlier outputs are then already new, and the error names them.  In Zarr ``intensity``,
    ``seas`` and ``thresh`` (float32 noise and float64 curves, which zstd
    barely compresses) are stored without compression.

    While a save runs, NumPy's huge-page advice (``madvise`` of arrays of
    4 MiB or more) is off for the whole calling process, not only for the
    save's own arrays, and set back once the last concurrent save ends: every
    block is fresh memory touched once, and faulting it in as huge pages
    (compacting memory to find them) costs more, and varies more from run to
    run, than small pages.  A thread that changes the advice itself during a
    save sees it set back to its value before the save.  It acts in the
    calling process only, where the threaded scheduler runs the tasks, not in
    the worker processes of a ``distributed`` cluster.  Nothing is changed
    when the environment sets ``NUMPY_MADVISE_HUGEPAGE`` (that choice wins)
    or with ``small_pages=False``, but for the block pool's buffers, small-page
    always.  As :func:`oceanflow.save`, it runs under
    :func:`oceanflow._memory.returning_freed_blocks` on the local scheduler,
    where its tasks run on a thread more per two of dask's ``num_workers``
    (else cores) while no more blocks than those compute at once: a task
    waiting on a file leaves its core to another.

    Parameters
    ----------
    sst : xarray.DataArray (or a Dataset with one data variable)
        As for :func:`detect`.
    path : str or Path
        The detection (:func:`detect`'s Dataset): ``.zarr`` or ``.nc``.
    clim : xarray.Dataset, optional
        As for :func:`detect`.
    events, summary : str or Path, optional
        Where to write :func:`events`' table and :func:`summary`'s Dataset.
    freq : str
        The summary's blocks, as for :func:`summary`.
    overwrite, progress, operation
        As for :func:`oceanflow.save`.
    small_pages : bool
        Turn NumPy's huge-page advice off in this process while the save runs
        (see above); False leaves it alone.
    **options
        :func:`detect`'s keyword arguments (``base``, ``pctile``, ``window``,
        ``smooth``, ``min_duration``, ``join_gaps``, ``max_gap``, ``cold``).

    Returns
    -------
    dict
        The paths written: ``"detection"``, and ``"events"`` and ``"summary"`` when asked for.

    Examples
    --------
    >>> paths = oceanflow.mhw.save(sst, "mhw.zarr", events="events.zarr", summary="annual.zarr")  # doctest: +SKIP
    """
    from ..io.write import writing

    detection = {k: options.pop(k) for k in ("min_duration", "join_gaps", "max_gap") if k in options}
    unknown = set(options) - {"base", "pctile", "window", "smooth", "cold"}
    if unknown:
        raise TypeError(f"save() got unexpected keyword arguments {sorted(unknown)}; see oceanflow.mhw.detect")
    defaults = _detect_defaults()
    detection = {k: detection.get(k, defaults[k]) for k in ("min_duration", "join_gaps", "max_gap")}
    options = {k: options.get(k, defaults[k]) for k in ("base", "pctile", "window", "smooth", "cold")}
    if summary is not None:
        years_per_block(freq)
    targets = {"detection": Path(path)}
    targets.update({name: Path(p) for name, p in (("summary", summary), ("events", events)) if p is not None})
    if len(set(targets.values())) < len(targets):
        raise ValueError(f"the outputs must be different paths, got {', '.join(map(str, targets.values()))}")
    # oceanflow.save's pipeline (oceanflow.io.write.writing): every output refused or claimed before the
    # detection runs (at once for in-memory input), all committed only once all are written, all removed
    # on any error (a full disk says so)
    threads = worker_threads()  # (the tasks run on more, at most this many computing: see computing_at_once)
    with (
        computing_at_once(threads),
        small_pages_while(small_pages),
        writing(progress=progress, io_threads=io_threads(threads)) as writes,
        contextlib.ExitStack() as stack,
    ):
        outputs = {name: writes.claim(p, overwrite=overwrite) for name, p in targets.items()}
        sst, setup, clim = _detection_setup(sst, clim, options, detection)
        periods = None if summary is None else _summary_periods(setup.days, years_per_block(freq))
        stash = stash_for(sst) if events is not None else None  # the blocks' event tables put aside, or None
        if stash is not None:
            stack.enter_context(stash)
        held = events is not None and (_engine.POOLED if stash is not None else True)  # (POOLED: in the pool)
        found, columns, table = setup.detect(sst, clim, **detection, periods=periods, tables=held)
        outputs["detection"].prepare(found, operation=operation, encoding=_encoding(found, path))
        lazy = [outputs["detection"]]
        gathered = summary is not None and Path(summary).suffix == ".zarr" and _gathered(columns, summary)
        if summary is not None and not gathered:
            annual = _summary_table(columns, found, _Calendar(decoded_time(found["time"])), years_per_block(freq))
            outputs["summary"].prepare(annual, operation=operation, encoding=_table_encoding(annual, summary))
            lazy.append(outputs["summary"])
        blocks: list[Any] = []
        if events is not None:  # each block's table, as the tasks return it (the same keys: computed once)
            data = table.data
            blocks = data.to_delayed(optimize_graph=False).ravel().tolist() if is_dask(data) else [data]
            if stash is not None:  # each put aside in a scratch file as its task ends, read back one by one
                blocks = [dask.delayed(stash.put)(b, _filled_slots) for b in blocks]
        count = len(blocks)
        summed = tuple(c.data for c in columns) if gathered else ()  # the summary's columns, from the same tasks
        tables = list(writes.compute(*lazy, others=tuple(blocks) + summed))
        del blocks
        jobs = []  # the tables written here, side by side (numpy, zarr's codecs and file writes free the GIL)
        if gathered:
            values, tables = tables[count:], tables[:count]
            args = (outputs["summary"], columns, values, found, years_per_block(freq), operation)
            jobs.append(lambda: _write_summary(*args))
        if events is not None:
            jobs.append(lambda: _write_events(outputs["events"], tables, table, found, outputs["detection"], operation))
        _together(jobs)
        writes.commit()
    return targets


def _together(jobs):
    """Call each of ``jobs`` (callables) at once, the last on this thread and the others on their
    own; return once all have ended, or raise an error of one that failed (the last job's if it
    failed, else the first failed job's in order), only after all have ended."""
    if len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(len(jobs) - 1, thread_name_prefix="oceanflow-mhw-save") as pool:
        started = [pool.submit(job) for job in jobs[:-1]]
        jobs[-1]()  # (on an error here the pool is still waited for before it goes up)
    for future in started:
        future.result()


def _gathered(columns, path):
    """Whether the summary's (dask) columns are gathered here and written in memory to ``path``
    (Zarr): when together they fit :func:`_from_memory` (else each is written by its blocks' tasks)."""
    return is_dask(columns[0].data) and _from_memory(sum(c.size for c in columns) * 8, path)


def _write_summary(output, columns, values, found, years, operation):
    """Write the summary Dataset of the computed columns (``values``, NumPy, one per column of
    ``columns``) into ``output`` at once, in memory: its trends fitted here, and, in Zarr, the
    storage chunks the blocks' tasks would write (every period, the detection's blocks)."""
    columns = [column.copy(data=value) for column, value in zip(columns, values, strict=True)]
    first = {d: c[0] for d, c in zip(found["intensity"].dims, found["intensity"].chunks, strict=True)}
    first["period"] = columns[0].sizes["period"]
    annual = _summary_table(columns, found, _Calendar(decoded_time(found["time"])), years)
    encoding = {name: {"chunks": tuple(first[d] for d in var.dims)} for name, var in annual.data_vars.items()}
    output.prepare(annual, operation=operation, encoding=_table_encoding(annual, output.path, encoding))
    output.write(now=True, staged=True)


def _write_events(output, tables, table, found, detection, operation):
    """Write the event Dataset into ``output`` (a :class:`~oceanflow.io.write.Target`): the
    blocks' ``tables`` padded when that fits :func:`_from_memory`, else :func:`events` of the
    written detection (read from its temporary, block by block)."""
    from ..io import open_dataset

    rows = len(kernels.EVENT_ROWS)
    slots = _slots(tables)
    pixels = math.prod(table.shape[1:])
    if _from_memory(rows * 8 * slots * pixels, output.path):
        columns, coords = _padded_tables(tables, table, slots)
        padded, dates = _stored_dates(_events_table(columns, found, coords), found["time"])
        encoding = {name: dict(dates.get(name, {})) for name in padded.data_vars}
        if output.path.suffix == ".zarr":  # as the regions' writes below: every event in one chunk, the blocks
            block = tuple(max(c) for c in table.chunks[1:]) if table.chunks else table.shape[1:]
            for name in padded.data_vars:
                encoding[name]["chunks"] = (max(slots, 1), *block)
        output.prepare(padded, operation=operation, encoding=_table_encoding(padded, output.path, encoding))
        output.write(now=True, staged=True)  # in memory, 26 variables: encoded first, written in one pass
        return
    if output.path.suffix == ".zarr" and is_dask(table.data):  # (a write per block: slower, bounded)
        _write_events_by_region(output, tables, table, found, slots, operation)
        return
    tables.clear()  # too large to pad here: read the detection back, as events() does
    logger.info("mhw.save: the event table (%d slots x %d pixels) computed from the written detection", slots, pixels)
    blocks: Any = {d: max(c) for d, c in found["intensity"].chunksizes.items()} or "auto"
    with open_dataset(detection.tmp, chunks=blocks) as written:
        computed, dates = _stored_dates(events(written), written["time"])
        output.prepare(computed, operation=operation, encoding=dates)
        output.write(now=True)


def _write_events_by_region(output, tables, table, found, slots, operation):
    """Zarr: the event store's metadata first, then each block's table padded to
    ``slots`` and written into its region, freed once written (the whole grid's
    padded table is never held)."""
    import dask.array as da

    from ..io.write import write_zarr_v3_template

    rows = len(kernels.EVENT_ROWS)
    space = table.dims[1:]
    chunks = table.chunks[1:]
    coords = {k: v.compute() for k, v in table.coords.items() if set(v.dims) <= set(space)}  # written now, per pixel
    empty = da.full((slots, *table.shape[1:]), np.nan, chunks=((slots,), *chunks))
    columns = [xr.DataArray(empty, dims=("event", *space), coords=coords) for _ in range(rows)]
    template, dates = _stored_dates(_events_table(columns, found), found["time"])
    output.prepare(template, operation=operation, encoding=_table_encoding(template, output.path, dates))
    if not write_zarr_v3_template(output.ds, output.tmp, output.encoding):  # metadata and coordinates; no data
        output.write(now=False)  # (to_zarr's: its Delayed of the chunks, not computed)
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    arrays: dict = {}  # (the store's arrays, read once)
    kept: tuple[dict, set] = (arrays, set())  # (and the store's folders, each made once)
    regions = [
        {d: slice(s[i], s[i] + c[i]) for d, s, c, i in zip(space, starts, chunks, index, strict=True)}
        for index in itertools.product(*(range(len(c)) for c in chunks))
    ]
    if len(regions) != len(tables):
        raise AssertionError(f"{len(tables)} event tables for {len(regions)} blocks: not the detection's blocks")
    tables.reverse()  # popped from the end: the first block first
    days = _block_dates(found["time"])  # (once, not per block)
    workers = max(1, OPTIONS["num_threads"])
    with ThreadPoolExecutor(workers, thread_name_prefix="oceanflow-mhw-events") as pool:
        pending: deque = deque()  # (at most workers + 1 blocks held at once)
        for region in regions:
            job = (tables.pop(), region, slots, found, output.tmp, kept, days)
            pending.append((pool.submit(_write_block, *job), region))
            if len(pending) > workers:
                _written(pending.popleft(), output.tmp)
        while pending:
            _written(pending.popleft(), output.tmp)


def _write_block(b, region, slots, found, tmp, kept, days):
    """Write one block's event table ``b`` (or its handle in a scratch file), padded to ``slots``, into
    ``region`` of the Zarr v3 store ``tmp`` (:func:`~oceanflow.io.write.write_zarr_v3_region`; ``kept``: its
    arrays and folders, shared by the blocks' writes); None once written, else the block's Dataset, for
    ``to_zarr`` (on the calling thread: its warnings filter).  With ``days`` (:func:`_block_dates`), the
    block's values only (the store holds every name, attribute and encoding), its dates looked up there."""
    from ..io.write import write_zarr_v3_region

    rows = len(kernels.EVENT_ROWS)
    padded = _padded_block(b, slots)
    del b
    space = tuple(d for d in region if d != "event")
    where = {**region, "event": slice(None)}
    if days is not None:
        values = dict(zip(kernels.EVENT_ROWS, padded, strict=True))
        values.update({date: _lookup(values[index], days) for date, index in _DATES.items()})
        if write_zarr_v3_region(xr.Dataset({k: (("event", *space), v) for k, v in values.items()}), tmp, where, *kept):
            return None
    block = [xr.DataArray(padded[r], dims=("event", *space)) for r in range(rows)]
    part = _stored_dates(_events_table(block, found), found["time"])[0]
    return None if write_zarr_v3_region(part, tmp, where, *kept) else part


def _written(pending, tmp):
    """Wait for :func:`_write_block` (``pending``: its future and region); where it could not write its
    block, write it with ``to_zarr``."""
    future, region = pending
    part = future.result()
    if part is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            part.to_zarr(tmp, region={**region, "event": slice(None)}, mode="r+", consolidated=False)


def _padded_block(b, slots):
    """A block's table ``b`` (``(rows * n, *block)``, or its handle in a scratch file) as ``(rows, slots,
    *block)`` float64, NaN beyond its ``n`` slots, in a freed block's memory while a save runs
    (:func:`~oceanflow._memory.empty_block`: no fresh pages to fault in, about 0.6 s of CPU per GB); a
    table in the scratch file is read straight into its place, each row's slots at once."""
    rows = len(kernels.EVENT_ROWS)
    shape = (rows, b.shape[0] // rows, *b.shape[1:])
    out = empty_block((rows, slots, *shape[2:]), np.float64)
    if isinstance(b, _Stashed) and b.dtype == np.float64 and shape[1] <= slots:
        b.load(into=out[:, : shape[1]])
        out[:, shape[1] :] = np.nan
    else:
        _pad_into(out, _loaded(b).reshape(shape))
    return out


def _pad_into(out, t):
    """Copy the table ``t`` (``(rows, n, *block)``) into ``out`` (``(rows, slots, *block)``): its first
    ``slots`` slots, NaN in the slots beyond ``n`` (each value written once)."""
    n = min(t.shape[1], out.shape[1])
    out[:, :n] = t[:, :n]
    out[:, n:] = np.nan


#: The stored day number of NaT (no event), the dates' ``_FillValue``: xarray's.
NO_DAY = np.iinfo(np.int64).min

#: The event table's dates and the step numbers they are looked up from.
_DATES = {"time_start": "index_start", "time_end": "index_end", "time_peak": "index_peak"}


def _stored_dates(table, time):
    """The event Dataset ``table`` with its dates as xarray's CF encoding stores them with
    :func:`_date_encoding`, and the encoding still to give (by name; empty when done here).

    The dates are steps of the daily ``time``: their int64 day numbers (NaT: :data:`NO_DAY`,
    their ``_FillValue``) are looked up by their ``index_*`` in the encoding of ``time`` itself (xarray's),
    with its ``units`` and ``calendar`` attributes; the files and the dates read back are the
    same, but xarray no longer encodes each date (it infers units from all of them, a sort
    of their differences, even when the units are given).  Left to xarray, with the encoding,
    when the steps are not whole days apart (xarray may then change the units); cftime dates
    are stored as :func:`~oceanflow.mhw.events` gives them (float64 days since the first step)."""
    stored_days = _stored_days(time)
    if stored_days is None:
        encoding = _date_encoding(time)
        return table, dict.fromkeys(_DATES, encoding) if encoding else {}
    days, attrs = stored_days
    stored = {}
    for name, index in _DATES.items():
        step = table[index].variable
        stored[name] = xr.Variable(step.dims, _looked_up(step, days), {**table[name].attrs, **attrs})
    return table.assign(stored), dict.fromkeys(_DATES, {"_FillValue": NO_DAY})  # (NaT: missing in any CF tool)


def _block_dates(time):
    """The stored values of the event dates by step of ``time`` (the last: none), as a block's region
    write stores them: :func:`_stored_days`, or a cftime calendar's days (:func:`~oceanflow.mhw.events`);
    None where xarray encodes the dates itself (``to_zarr`` writes the region)."""
    stored = _stored_days(time)
    if stored is not None:
        return stored[0]
    return None if time.dtype.kind == "M" else _calendar_days(time)[0]


def _stored_days(time):
    """The stored day numbers of the steps of the daily ``time`` (:func:`_stored_dates`), :data:`NO_DAY`
    appended (NaT), and their ``units`` and ``calendar``; None where xarray encodes the dates itself."""
    encoding = _date_encoding(time)
    values = time.values
    if not encoding or ((values - values[0]) % np.timedelta64(1, "D")).astype(bool).any():
        return None
    return _day_numbers(time, encoding, NO_DAY)


def _date_encoding(time):
    """The encoding of the event dates (``datetime64`` steps of the daily ``time``, NaT none) that xarray
    infers, given: whole days since the first step, so that xarray does not search the dates for units
    (a sort of every date); empty for cftime steps (:func:`~oceanflow.mhw.events` gives their day
    numbers)."""
    if time.dtype.kind != "M":
        return {}
    first = time.values[0]
    seconds = first.astype("datetime64[s]")
    since = str(seconds).replace("T", " ") if seconds == first else np.datetime_as_string(first)
    return {"units": f"days since {since}", "calendar": "proleptic_gregorian", "dtype": "int64", "_FillValue": NO_DAY}


#: Copies of a table written from memory in Zarr held at once: the Dataset, and its store encoded
#: beside it until written (:meth:`~oceanflow.io.write.Target.write`, ``staged``).
STAGED_COPIES = 2


def _from_memory(nbytes, path):
    """Whether a table of ``nbytes`` is written to ``path`` from memory: when it fits
    :func:`_table_limit`, in Zarr :data:`STAGED_COPIES` times (its encoded store held beside it)."""
    copies = STAGED_COPIES if Path(path).suffix == ".zarr" else 1
    return copies * nbytes <= _table_limit()


def _table_limit():
    """Bytes the padded event table (with its encoded copy) may take in this process:
    :func:`~oceanflow.mhw._blocks.held_bytes`."""
    return held_bytes()


def _slots(tables):
    """The largest number of events of a pixel in the blocks' tables (``(rows * slots, *block)``, or
    their handles in a scratch file)."""
    return max((b.info if isinstance(b, _Stashed) else _filled_slots(b) for b in tables), default=0)


def _filled_slots(b):
    """A block's table's slots (``(rows * slots, *block)``), 0 when its last slot is empty (no events)."""
    t = b.reshape((len(kernels.EVENT_ROWS), b.shape[0] // len(kernels.EVENT_ROWS)) + b.shape[1:])
    return t.shape[1] if np.isfinite(t[0, -1]).any() else 0


def _loaded(b):
    """A block's table, read back when put aside in a scratch file."""
    return b.load() if isinstance(b, _Stashed) else b


def _encoding(found, path):
    """Zarr: ``intensity``, ``seas`` and ``thresh`` uncompressed: zstd costs a pass and saves little
    on float32 noise and on float64 curves (7 and 20 % of ``seas`` and ``thresh``, for more CPU
    than the detection's kernel); every chunk written (``write_empty_chunks``), even one all fill
    value (a block of land), which Zarr otherwise compares with the fill value first: passes over
    every chunk with NaN-aware temporaries, for a chunk that reads back the same either way."""
    if not str(path).rstrip("/").endswith(".zarr"):
        return None
    raw = {"compressors": None}
    return {
        name: {"write_empty_chunks": True, **(raw if name in ("intensity", "seas", "thresh") else {})}
        for name in found.data_vars
    }


def _table_encoding(ds, path, encoding=None):
    """``encoding`` (by variable name) with, in a Zarr v3 store at ``path``, :func:`_table_codec` on every
    data variable of the table ``ds`` (the event table and the summary, every path that writes them)."""
    import zarr

    encoding = {name: dict(value) for name, value in (encoding or {}).items()}
    if Path(path).suffix == ".zarr" and zarr.config.get("default_zarr_format") == 3:
        for name in ds.data_vars:
            encoding.setdefault(name, {})["compressors"] = _table_codec()
    return encoding


def _table_codec():
    """The codec of the tables' variables in Zarr v3: blosc's lz4 at level 5 on byte-shuffled values
    (zarr v2's default codec).  On the full-size event table (30 years at 1 degree, 1.15 GB raw, one
    thread): 510 MB stored, encoded at about 2.4 GB/s and decoded at 5.5 GB/s, where blosc's zstd at
    level 1 stores 449 MB (12 % less) at 0.6 and 1.1 GB/s: a quarter of the CPU for an eighth more bytes."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _padded_tables(blocks, table, found):
    """The blocks' event tables (``(rows * slots, *block)``, each with its own
    slots: its largest event number, at least 1) as one column per row:
    Variables ``(event, *space)`` of ``found`` slots (the largest number of
    events of a pixel), NaN beyond a pixel's events, in memory, and the
    spatial coordinates of ``table``.  ``blocks`` is emptied as they are
    copied (each freed once in place)."""
    rows = len(kernels.EVENT_ROWS)
    space = table.dims[1:]
    chunks = table.chunks[1:] if table.chunks else tuple((n,) for n in table.shape[1:])
    data = np.empty((rows, found) + tuple(sum(c) for c in chunks))  # (every block's region filled below)
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    blocks.reverse()  # popped from the end: the first block first
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        b = _loaded(blocks.pop())
        t = b.reshape((rows, b.shape[0] // rows) + b.shape[1:])
        where = tuple(slice(s[i], s[i] + c[i]) for s, c, i in zip(starts, chunks, index, strict=True))
        _pad_into(data[(slice(None), slice(None)) + where], t)
        del b, t
    if blocks:
        raise AssertionError(f"{len(blocks)} event tables left over: the blocks do not match the detection's")
    coords = {k: v for k, v in table.coords.items() if set(v.dims) <= set(space)}
    # in memory, not rechunked to the blocks (hashing every column, a store task per block and
    # column): written in one call per variable, Zarr's storage chunks given by _write_events
    return [xr.Variable(("event", *space), data[r]) for r in range(rows)], coords
