"""Marine heatwaves and cold spells (Hobday et al. 2016, 2018) on whole grids.

The definitions are those of the reference implementation,
`ecjoliver/marineHeatWaves <https://github.com/ecjoliver/marineHeatWaves>`_
(``detect``, ``blockAverage``, ``meanTrend``), applied to every pixel:

* :func:`thresholds`: the seasonal climatology ``seas`` and the threshold
  ``thresh`` over a 366-day climatological year;
* :func:`detect`: daily ``intensity``, ``category`` and ``event`` number,
  one kernel pass over each pixel's series;
* :func:`events`: the reference's properties of every event of every pixel;
* :func:`summary`: the reference's block averages per period and their
  linear trends.

Conventions of the climatological year (as the reference's):

* day of year in a leap year: 29 February is day 60 and 1 March day 61 in
  every year (standard, gregorian, proleptic_gregorian, julian, noleap,
  365_day, all_leap, 366_day calendars alike); 29 February is never a centre of
  the pooling window, its values are pooled by its neighbours, and its
  climatology and threshold are the mean of 28 February's and 1 March's
  (before smoothing); in noleap/365_day years there is no 29 February to
  detect on, but day 60 is filled all the same;
* 360_day: a climatological year of 360 days, day ``30 * (month - 1) + day``
  (oceanflow's day of year for that calendar); every day is a centre, none is
  filled (the reference does not handle this calendar);
* the pool of a day of year: the values of the ``window`` time steps centred
  on each of its days in the base period (the window reaches outside the base
  period, cut only at the ends of the series), NaN dropped; ``seas`` is its
  mean, ``thresh`` its ``pctile`` percentile (``np.percentile``'s default,
  linear interpolation, Hyndman and Fan type 7); both are then smoothed by a
  circular running mean of ``smooth`` days;
* cold spells (``cold=True``): computed on ``-sst`` as the reference does, so
  the threshold is the ``100 - pctile`` percentile.

Example
-------
>>> import oceanflow
>>> from oceanflow import datasets, mhw
>>> sst = datasets.sst(years=3, freq="day", resolution=60)        # degC, (time, lat, lon)
>>> found = mhw.detect(sst, pctile=90)                              # warns: base shorter than 30 years
>>> sorted(found.data_vars)
['category', 'event', 'intensity', 'seas', 'thresh']
>>> table = mhw.events(found)                                       # one row per event and pixel
>>> int(table.sizes["event"]) == int(found.event.max())
True
"""

from __future__ import annotations

import datetime
import inspect
import itertools
import logging
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import map_blocks
from .._dtypes import working_dtype
from .._memory import small_pages_while
from .._parallel import run_sliced
from ..alignment import align
from ..chunking import chunked_for, plan_chunks, worker_threads
from ..climatology.pooling import order_keys
from ..kernels import mhw as kernels
from ..timegroups import decoded_time

__all__ = ["thresholds", "detect", "events", "summary", "save", "plot", "BaseLengthWarning"]

logger = logging.getLogger("oceanflow.mhw")

#: Hobday et al. (2016) recommend a base period of at least this many years.
RECOMMENDED_BASE_YEARS = 30
#: Fewer complete years than this in the base period are refused.
MINIMUM_BASE_YEARS = 3
CATEGORY_NAMES = ("none", "moderate", "strong", "severe", "extreme")
_FEB29 = 59  # row of 29 February in the 366-day year
_LEAP_START = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])


class BaseLengthWarning(UserWarning):
    """The base period is shorter than the 30 years Hobday et al. (2016) recommend."""


# ---------------------------------------------------------------- public API


def thresholds(
    sst: xr.DataArray | xr.Dataset,
    *,
    base: tuple | None = None,
    pctile: float = 90,
    window: int = 11,
    smooth: int | None = 31,
    cold: bool = False,
) -> xr.Dataset:
    """Seasonal climatology and threshold of Hobday et al. (2016), per pixel.

    Parameters
    ----------
    sst : xarray.DataArray (or a Dataset with one data variable)
        Daily values (e.g. degC) on consecutive days, with a ``time``
        coordinate in any CF calendar; NumPy- or dask-backed, any chunking.
    base : (first year, last year), optional
        Base (climatology) period, whole years, e.g. ``(1983, 2012)``
        (``"1983"`` or dates work too: their years count); default: every
        year of the data.  At least 3 complete years; a warning below 30.
    pctile : float
        Threshold percentile, in (0, 100); cold spells use ``100 - pctile``.
    window : int
        Width (odd, in days) of the pooling window around each day of the
        year: the reference's ``2 * windowHalfWidth + 1``.
    smooth : int or None
        Width (odd, in days) of the circular running mean applied to both
        curves: the reference's ``smoothPercentileWidth``; None (or 1): no
        smoothing (``smoothPercentile=False``).
    cold : bool
        Cold spells: the threshold below the climatology.

    Returns
    -------
    xarray.Dataset
        ``seas`` and ``thresh`` (float64, units of ``sst``) over
        ``dayofyear`` (366 days: 1 March = 61; 360 in the 360_day calendar)
        and the other dimensions of ``sst``, in memory: computed at this call,
        one task per spatial block reading its pixels' whole series once (each
        day's pool gathered and its percentile selected exactly).  A pixel
        whose every value is NaN (land) gets NaN, silently.

    Examples
    --------
    >>> clim = oceanflow.mhw.thresholds(sst, base=(1983, 2012))  # doctest: +SKIP
    """
    sst = _as_series(sst, "sst")
    setup = _Setup(sst, base=base, pctile=pctile, window=window, smooth=smooth, cold=cold)
    return setup.thresholds(sst).compute()


def detect(
    sst: xr.DataArray | xr.Dataset,
    clim: xr.Dataset | None = None,
    *,
    base: tuple | None = None,
    pctile: float = 90,
    window: int = 11,
    smooth: int | None = 31,
    min_duration: int = 5,
    join_gaps: bool = True,
    max_gap: int = 2,
    cold: bool = False,
) -> xr.Dataset:
    """Marine heatwaves (or cold spells) of every pixel, day by day.

    Parameters
    ----------
    sst : xarray.DataArray (or a Dataset with one data variable)
        As for :func:`thresholds`.
    clim : xarray.Dataset, optional
        ``seas`` and ``thresh`` from :func:`thresholds` (matched to ``sst`` by
        coordinate labels); computed from ``sst`` (with ``base``,
        ``pctile``, ``window``, ``smooth``) when not given, lazily, in the
        same graph as the detection: the input's chunks are read once and feed
        both the thresholds' tasks and the detection's.  ``pctile`` must
        exceed 50 here: the categories are multiples of ``thresh - seas``.
    min_duration : int
        Shortest event, in days (``minDuration``), at least 1.
    join_gaps : bool
        Join events separated by at most ``max_gap`` days (``joinAcrossGaps``).
    max_gap : int
        Longest gap joined, in days (``maxGap``).
    cold : bool
        Detect cold spells (``coldSpells``): runs below the threshold.

    Returns
    -------
    xarray.Dataset
        On the grid and time axis of ``sst`` (lazy when ``sst`` is dask-backed,
        time whole in each chunk): ``intensity`` (``sst - seas``, NaN where
        ``sst`` is), ``category`` (int8: 0 none or outside events, 1
        moderate, 2 strong, 3 severe, 4 extreme: ``floor(1 + (sst - thresh)
        / (thresh - seas))`` capped at 4, on event days) and ``event`` (int32:
        the event's number within its pixel, 1, 2, ...; 0 outside events),
        plus ``seas`` and ``thresh`` over ``dayofyear``; the parameters are
        in the attributes.  A missing value counts as the climatology (it
        ends an event, or sits in a joined gap), as in the reference.

    Examples
    --------
    >>> found = oceanflow.mhw.detect(sst, base=(1983, 2012))             # doctest: +SKIP
    >>> mhw_days = (found.event > 0).resample(time="YS").sum()           # doctest: +SKIP
    """
    options = {"base": base, "pctile": pctile, "window": window, "smooth": smooth, "cold": cold}
    detection = {"min_duration": min_duration, "join_gaps": join_gaps, "max_gap": max_gap}
    return _detect(sst, clim, options, detection)[0]


def _detect(sst, clim, options, detection, *, freq=None, tables=False):
    """:func:`detect`, and what :meth:`_Setup.detect` adds with ``freq`` (the summary's) or ``tables``."""
    sst = _as_series(sst, "sst")
    _check_detection(detection["min_duration"], detection["max_gap"])
    setup = _Setup(sst, **options, check_base=clim is None, stacklevel=5)
    if setup.pctile <= 50:
        raise ValueError(
            f"pctile={options['pctile']!r}: the categories (Hobday et al. 2018) are multiples of thresh - seas, "
            "so detection needs a threshold beyond the climatology, pctile > 50; for cold spells pass cold=True "
            "(pctile=90 takes the 10th percentile); for a low threshold alone use oceanflow.mhw.thresholds"
        )
    if clim is not None:  # (else computed lazily in the detection's own tasks, from the same read of the data)
        clim = setup.checked_clim(sst, clim)
    periods = None if freq is None else _summary_periods(setup.days, years_per_block(freq))
    return setup.detect(sst, clim, **detection, periods=periods, tables=tables)


def events(detected: xr.Dataset) -> xr.Dataset:
    """The reference's properties of every event of every pixel.

    Parameters
    ----------
    detected : xarray.Dataset
        The output of :func:`detect` (in memory, lazy, or read back from a
        file).  Its number of events per pixel is computed first (the largest
        sizes the ``event`` dimension).

    Returns
    -------
    xarray.Dataset
        Dimension ``event`` (the largest number of events of a pixel; a
        pixel's events first, in time order, then NaN/NaT) and the spatial
        dimensions; variables named as the reference names them:
        ``time_start``, ``time_end``, ``time_peak``, ``index_start``,
        ``index_end``, ``index_peak``, ``duration`` (days), ``intensity_max``,
        ``intensity_mean``, ``intensity_var`` (a standard deviation),
        ``intensity_cumulative`` (units x days), their ``_relThresh``
        (relative to the threshold) and ``_abs`` (absolute) variants,
        ``rate_onset``, ``rate_decline`` (units per day), ``category`` (1-4)
        and ``duration_moderate``, ``duration_strong``, ``duration_severe``,
        ``duration_extreme``.  Numbers are float64 (NaN padding).  With a
        cftime calendar, ``time_*`` are days since the first time step
        (NumPy has no missing cftime date).

    Examples
    --------
    >>> table = oceanflow.mhw.events(found)                      # doctest: +SKIP
    >>> table.intensity_max.max("event")                          # doctest: +SKIP
    """
    table, found = _events_dataset(detected)
    return table.isel(event=slice(0, found))


def summary(detected: xr.Dataset, freq: str = "YS") -> xr.Dataset:
    """The reference's block averages (``blockAverage``) per period and their trends.

    Parameters
    ----------
    detected : xarray.Dataset
        The output of :func:`detect`.
    freq : str
        ``"YS"`` (one block per calendar year) or ``"NYS"`` (blocks of N
        years, from the first year of the data).

    Returns
    -------
    xarray.Dataset
        Over ``period`` (the first day of each block; coordinate
        ``period_centre``: the block's centre in years, the reference's
        ``years_centre``) and the spatial dimensions: ``count`` (events
        starting in the block), ``total_days`` (event days in the block),
        the means over the block's events of ``duration``,
        ``intensity_max``, ``intensity_mean``, ``intensity_cumulative``,
        ``intensity_max_max`` (the largest peak intensity; the most negative
        for cold spells) and ``total_icum`` (the cumulative intensities of the
        events starting in the block, summed).  For each a ``<name>_trend``:
        the least-squares slope over the blocks with a value (``meanTrend``,
        by :func:`oceanflow.polyfit`), per year.

    Examples
    --------
    >>> annual = oceanflow.mhw.summary(found, "YS")          # doctest: +SKIP
    >>> annual.total_days_trend * 10                          # doctest: +SKIP
    """
    block_length = years_per_block(freq)
    return _summary_dataset(detected, block_length)


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
    :func:`~oceanflow.chunking.memory_per_thread` (each block freed once
    copied).  Beyond it, in Zarr (dask input) each block's table is padded
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
    :func:`oceanflow._memory.returning_freed_blocks` on the local scheduler.

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
    _check_targets(targets)
    found, columns, table = _detect(sst, clim, options, detection, freq=freq if summary else None, tables=bool(events))
    # oceanflow.save's pipeline (oceanflow.io.write.writing): every output refused or claimed before the
    # compute, all committed only once all are written, all removed on any error (a full disk says so)
    with small_pages_while(small_pages), writing(progress=progress) as writes:  # fresh blocks in small pages
        outputs = {name: writes.claim(p, overwrite=overwrite) for name, p in targets.items()}
        outputs["detection"].prepare(found, operation=operation, encoding=_encoding(found, path))
        lazy = [outputs["detection"]]
        if summary is not None:
            annual = _summary_table(columns, found, _Calendar(decoded_time(found["time"])), years_per_block(freq))
            outputs["summary"].prepare(annual, operation=operation)
            lazy.append(outputs["summary"])
        blocks: list[Any] = []
        if events is not None:  # each block's table, as the tasks return it (the same keys: computed once)
            data = table.data
            blocks = data.to_delayed(optimize_graph=False).ravel().tolist() if is_dask(data) else [data]
        tables = list(writes.compute(*lazy, others=tuple(blocks)))
        del blocks
        if events is not None:
            _write_events(outputs["events"], tables, table, found, outputs["detection"], operation)
        writes.commit()
    return targets


def _detect_defaults():
    """:func:`detect`'s keyword defaults, the one place they are written."""
    parameters = inspect.signature(detect).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


def _check_targets(targets):
    """Formats, directories and distinct paths, before anything is computed or written."""
    from ..io.write import check_path

    if len(set(targets.values())) < len(targets):
        raise ValueError(f"the outputs must be different paths, got {', '.join(map(str, targets.values()))}")
    for target in targets.values():
        check_path(target)


def _write_events(output, tables, table, found, detection, operation):
    """Write the event Dataset into ``output`` (a :class:`~oceanflow.io.write.Target`): the
    blocks' ``tables`` padded when that fits :func:`_table_limit`, else :func:`events` of the
    written detection (read from its temporary, block by block)."""
    from ..io import open_dataset

    rows = len(kernels.EVENT_ROWS)
    slots = _slots(tables)
    pixels = math.prod(table.shape[1:])
    if rows * 8 * slots * pixels <= _table_limit():
        padded = _events_table(_padded_tables(tables, table, slots), found)
        encoding = None
        if output.path.suffix == ".zarr":  # as the regions' writes below: every event in one chunk, the blocks
            block = tuple(max(c) for c in table.chunks[1:]) if table.chunks else table.shape[1:]
            encoding = {name: {"chunks": (max(slots, 1), *block)} for name in padded.data_vars}
        output.prepare(padded, operation=operation, encoding=encoding)
        output.write(now=True)
        return
    if output.path.suffix == ".zarr" and is_dask(table.data):  # (a write per block: slower, bounded)
        _write_events_by_region(output, tables, table, found, slots, operation)
        return
    tables.clear()  # too large to pad here: read the detection back, as events() does
    logger.info("mhw.save: the event table (%d slots x %d pixels) computed from the written detection", slots, pixels)
    blocks: Any = {d: max(c) for d, c in found["intensity"].chunksizes.items()} or "auto"
    with open_dataset(detection.tmp, chunks=blocks) as written:
        output.prepare(events(written), operation=operation)
        output.write(now=True)


def _write_events_by_region(output, tables, table, found, slots, operation):
    """Zarr: the event store's metadata first, then each block's table padded to
    ``slots`` and written into its region, freed once written (the whole grid's
    padded table is never held)."""
    import dask.array as da

    rows = len(kernels.EVENT_ROWS)
    space = table.dims[1:]
    chunks = table.chunks[1:]
    coords = {k: v.compute() for k, v in table.coords.items() if set(v.dims) <= set(space)}  # written now, per pixel
    empty = da.full((slots, *table.shape[1:]), np.nan, chunks=((slots,), *chunks))
    columns = [xr.DataArray(empty, dims=("event", *space), coords=coords) for _ in range(rows)]
    template = _events_table(columns, found)
    output.prepare(template, operation=operation)
    output.write(now=False)  # metadata and coordinates; no data
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    tables.reverse()  # popped from the end: the first block first
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        b = tables.pop()
        t = b.reshape((rows, b.shape[0] // rows) + b.shape[1:])
        region = {d: slice(s[i], s[i] + c[i]) for d, s, c, i in zip(space, starts, chunks, index, strict=True)}
        padded = np.full((rows, slots) + t.shape[2:], np.nan)
        padded[:, : min(t.shape[1], slots)] = t[:, :slots]
        del b, t
        block = [xr.DataArray(padded[r], dims=("event", *space)) for r in range(rows)]
        part = _events_table(block, found)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            part.to_zarr(output.tmp, region={"event": slice(None), **region}, mode="r+", consolidated=False)
        del padded, block, part
    if tables:
        raise AssertionError(f"{len(tables)} event tables left over: the blocks do not match the detection's")


def _table_limit():
    """Bytes the padded event table may take in this process: what one task may hold."""
    from ..chunking import memory_per_thread

    return memory_per_thread()


def _slots(tables):
    """The largest number of events of a pixel in the blocks' tables (``(rows * slots, *block)``)."""
    rows = len(kernels.EVENT_ROWS)
    found = 0
    for b in tables:
        t = b.reshape((rows, b.shape[0] // rows) + b.shape[1:])
        found = max(found, t.shape[1] if np.isfinite(t[0, -1]).any() else 0)
    return found


def _encoding(found, path):
    """Zarr: ``intensity``, ``seas`` and ``thresh`` uncompressed: zstd costs a pass and saves little
    on float32 noise and on float64 curves (7 and 20 % of ``seas`` and ``thresh``, for more CPU
    than the detection's kernel)."""
    raw = {"compressors": None}
    return {name: raw for name in ("intensity", "seas", "thresh")} if str(path).rstrip("/").endswith(".zarr") else None


def _padded_tables(blocks, table, found):
    """The blocks' event tables (``(rows * slots, *block)``, each with its own
    slots: its largest event number, at least 1) as one column per row:
    DataArrays ``(event, *space)`` of ``found`` slots (the largest number of
    events of a pixel), NaN beyond a pixel's events, in memory.  ``blocks``
    is emptied as they are copied (each freed once in place)."""
    rows = len(kernels.EVENT_ROWS)
    space = table.dims[1:]
    chunks = table.chunks[1:] if table.chunks else tuple((n,) for n in table.shape[1:])
    data = np.full((rows, found) + tuple(sum(c) for c in chunks), np.nan)
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    blocks.reverse()  # popped from the end: the first block first
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        b = blocks.pop()
        t = b.reshape((rows, b.shape[0] // rows) + b.shape[1:])
        where = tuple(slice(s[i], s[i] + c[i]) for s, c, i in zip(starts, chunks, index, strict=True))
        data[(slice(None), slice(0, min(t.shape[1], found))) + where] = t[:, :found]
        del b, t
    if blocks:
        raise AssertionError(f"{len(blocks)} event tables left over: the blocks do not match the detection's")
    coords = {k: v for k, v in table.coords.items() if set(v.dims) <= set(space)}
    # in memory, not rechunked to the blocks (hashing every column, a store task per block and
    # column): written in one call per variable, Zarr's storage chunks given by _write_events
    return [xr.DataArray(data[r], dims=("event", *space), coords=coords) for r in range(rows)]


#: Colours of the categories in :func:`plot` (moderate to extreme).
CATEGORY_COLOURS = ("#ffc866", "#ff6900", "#9e0000", "#2d0000")


def plot(detected: xr.Dataset, sst: xr.DataArray | None = None, *, ax: Any = None, **pixel: Any) -> Any:
    """The classic figure of one pixel: SST, climatology and threshold, events shaded by category.

    Parameters
    ----------
    detected : xarray.Dataset
        The output of :func:`detect`, already reduced to one pixel or with the
        pixel chosen by ``pixel`` (``lat=..., lon=...``: nearest grid point;
        or integer positions such as ``y=3, x=10`` when there is no such
        coordinate).
    sst : xarray.DataArray, optional
        The temperature; by default ``intensity + seas``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> oceanflow.mhw.plot(found.sel(time=slice("2015", "2016")), lat=-30, lon=110)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    one = _one_pixel(detected, pixel)
    days = _Calendar(decoded_time(one["time"]))
    seas = one["seas"].values[days.row]
    thresh = one["thresh"].values[days.row]
    temp = (one["intensity"].values + seas) if sst is None else _one_pixel(sst, pixel).values
    if np.isnan(temp).all():
        raise ValueError(f"the pixel {pixel or ''} has no data (land?); choose another one")
    times = one["time"].values
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    category = one["category"].values
    for c, colour in enumerate(CATEGORY_COLOURS, start=1):
        ax.fill_between(
            times,
            thresh,
            temp,
            where=(category >= c) & (one["event"].values > 0),
            color=colour,
            step="mid",
            label=CATEGORY_NAMES[c],
        )
    ax.plot(times, temp, color="k", lw=0.8, label=sst.name if sst is not None and sst.name else "temperature")
    ax.plot(times, seas, color="tab:blue", lw=1.2, label="climatology")
    ax.plot(times, thresh, color="tab:green", lw=1.2, label="threshold")
    units = one["intensity"].attrs.get("units", "")
    kind = "cold spells" if one.attrs.get("mhw_cold") else "marine heatwaves"
    ax.set_ylabel(units)
    ax.set_title(f"{kind} (Hobday et al. 2016, 2018)")
    ax.legend(loc="upper left", fontsize="small", ncol=4)
    return ax


def _one_pixel(obj, pixel):
    if pixel:
        coords = {k: v for k, v in pixel.items() if k in obj.coords}
        positions = {k: v for k, v in pixel.items() if k not in obj.coords}
        if coords:
            obj = obj.sel(coords, method="nearest")
        if positions:
            obj = obj.isel(positions)
    extra = [d for d in obj.dims if d not in ("time", "dayofyear")]
    if extra:
        raise ValueError(f"choose one pixel: give {', '.join(f'{d}=...' for d in extra)}")
    return obj.compute()


# ---------------------------------------------------------------- checks


def _as_series(obj, name) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        fields = [v for v in obj.data_vars if "time" in obj[v].dims]
        if len(fields) != 1:
            raise ValueError(
                f"{name} must be one variable, but the Dataset has {len(fields)} along time "
                f"({', '.join(map(repr, fields)) or 'none'}); pass one, e.g. ds[{(fields or ['sst'])[0]!r}]"
            )
        obj = obj[fields[0]]
    if not isinstance(obj, xr.DataArray):
        raise TypeError(
            f"{name} must be an xarray DataArray, got {type(obj).__name__}; "
            "wrap arrays with xr.DataArray(data, dims=('time', ...), coords={'time': dates})"
        )
    if "time" not in obj.dims:
        raise ValueError(f"{name} has no 'time' dimension (dimensions {obj.dims}); name the time dimension 'time'")
    if "time" not in obj.coords:
        raise ValueError(
            f"{name} has no time coordinate; assign the dates with {name}.assign_coords(time=dates), "
            "e.g. xr.date_range('1982-01-01', periods=n, freq='D')"
        )
    working_dtype(obj.dtype, names=[name])
    return obj.assign_coords(time=decoded_time(obj["time"]))


def _check_detection(min_duration, max_gap):
    if not isinstance(min_duration, (int, np.integer)) or isinstance(min_duration, bool) or min_duration < 1:
        raise ValueError(f"min_duration must be a whole number of days >= 1, got {min_duration!r}")
    if not isinstance(max_gap, (int, np.integer)) or isinstance(max_gap, bool) or max_gap < 0:
        raise ValueError(f"max_gap must be a whole number of days >= 0, got {max_gap!r}")


def _odd(value, name, allow_none=False):
    if allow_none and value is None:
        return 1
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an odd whole number of days >= 1{extra}, got {value!r}")
    return int(value)


def _year(bound, label):
    if isinstance(bound, (int, np.integer)) and not isinstance(bound, bool):
        return int(bound)
    if hasattr(bound, "year"):
        return int(bound.year)
    match = re.fullmatch(r"\s*(-?\d{1,4})(-.*)?\s*", str(bound))
    if not match:
        raise ValueError(f"base period {label} {bound!r} is not a year; give years, e.g. base=(1983, 2012)")
    return int(match.group(1))


class _Calendar:
    """Days of a daily time axis: year, row in the climatological year, checks."""

    def __init__(self, time: xr.DataArray):
        self.calendar = time.dt.calendar
        self.year = time.dt.year.values.astype(np.int64)
        month = time.dt.month.values.astype(np.int64)
        day = time.dt.day.values.astype(np.int64)
        if self.calendar == "360_day":
            self.days, self.row = 360, 30 * (month - 1) + day - 1
            self.feb29 = np.zeros(time.size, bool)
        else:
            self.days, self.row = 366, _LEAP_START[month - 1] + day - 1
            self.feb29 = (month == 2) & (day == 29)
        self._check_daily(time)

    @staticmethod
    def _check_daily(time):
        values = time.values
        if time.size < 2:
            raise ValueError("marine heatwaves need a daily series; the time axis has one step")
        if values.dtype.kind == "M":
            steps = np.diff(values) / np.timedelta64(1, "D")
        else:
            steps = np.array([d / datetime.timedelta(days=1) for d in np.diff(values)])
        if np.all(steps == 1):
            return
        median = float(np.median(steps))
        if median < 1:
            raise ValueError(
                f"the time steps are {median * 24:g} hours apart: marine heatwaves are defined on daily "
                "values; resample to daily means first, e.g. sst.resample(time='1D').mean()"
            )
        if median > 1:
            raise ValueError(
                f"the time steps are {median:g} days apart: marine heatwaves need daily data "
                "(Hobday et al. 2016); use daily sea surface temperature"
            )
        bad = int(np.flatnonzero(steps != 1)[0])
        raise ValueError(
            f"the time steps are not consecutive days ({values[bad]} is followed by {values[bad + 1]}); "
            "reindex to every day, with NaN where data are missing, e.g. "
            "sst.resample(time='1D').mean() or sst.reindex(time=xr.date_range(start, end, freq='D', "
            "calendar=...))"
        )


class _Setup:
    """Checked parameters of one thresholds/detect call on one series."""

    def __init__(self, sst, *, base, pctile, window, smooth, cold, check_base=True, stacklevel=4):
        self.stacklevel = stacklevel
        if isinstance(pctile, bool) or not isinstance(pctile, (int, float, np.integer, np.floating)):
            raise TypeError(f"pctile must be a number in (0, 100), got {pctile!r}")
        if not 0 < pctile < 100:
            raise ValueError(f"pctile must lie in (0, 100), got {pctile!r}; e.g. pctile=90 for the 90th percentile")
        self.pctile = float(pctile)
        self.window = _odd(window, "window")
        self.smooth = _odd(smooth, "smooth", allow_none=True)
        self.cold = bool(cold)
        self.days = _Calendar(sst["time"])
        self.first, self.last = self._base(base, sst["time"], check_base)

    def _base(self, base, time, check):
        years = self.days.year
        if base is None:
            y0, y1 = int(years[0]), int(years[-1])
        else:
            if not isinstance(base, (tuple, list)) or len(base) != 2:
                raise ValueError(f"base must be a (first year, last year) pair such as (1983, 2012), got {base!r}")
            y0, y1 = _year(base[0], "start"), _year(base[1], "end")
            if y0 > y1:
                raise ValueError(f"base period {base!r} ends before it starts; give (first year, last year)")
            if y0 < years[0] or y1 > years[-1]:
                raise ValueError(
                    f"base period {y0}-{y1} is outside the data ({years[0]}-{years[-1]}); "
                    "choose a base period within the data"
                )
        first = int(np.flatnonzero(years == y0)[0])
        last = int(np.flatnonzero(years == y1)[-1])
        complete = self._complete_years(time, first, last)
        if not check:
            return first, last
        if complete < MINIMUM_BASE_YEARS:
            raise ValueError(
                f"the base period {y0}-{y1} holds {complete} complete year(s) of data; a day-of-year "
                f"threshold needs at least {MINIMUM_BASE_YEARS} (Hobday et al. 2016 recommend "
                f"{RECOMMENDED_BASE_YEARS}); give a longer record or base period"
            )
        if complete < RECOMMENDED_BASE_YEARS:
            warnings.warn(
                f"the base period {y0}-{y1} holds {complete} complete years; Hobday et al. (2016) "
                f"recommend at least {RECOMMENDED_BASE_YEARS}",
                BaseLengthWarning,
                stacklevel=self.stacklevel,
            )
        return first, last

    def _complete_years(self, time, first, last):
        years = self.days.year[first : last + 1]
        month = time.dt.month.values[first : last + 1]
        day = time.dt.day.values[first : last + 1]
        starts = set(years[(month == 1) & (day == 1)])
        ends = set(years[(month == 12) & (day == (30 if self.days.calendar == "360_day" else 31))])
        return len(starts & ends)

    # ------------------------------------------------------------ thresholds

    def thresholds(self, sst):
        """``seas`` and ``thresh`` in one pass over each pixel's series (lazy when ``sst`` is dask-backed)."""
        pools = _pools(self.days, self.first, self.last, self.window)
        seas, thresh = _map_series(
            _thresholds_block,
            sst,
            (),
            length=self.days.days,
            dim="dayofyear",
            dtypes=(np.float64, np.float64),
            name="mhw-thresholds",
            pools=pools,
            pctile=self.pctile,
            sign=-1.0 if self.cold else 1.0,
            smooth=self.smooth,
            feb29=self.days.days == 366,
        )
        return self._clim_dataset(sst, seas, thresh)

    def _clim_dataset(self, sst, seas, thresh):
        units = sst.attrs.get("units")
        kind = "cold-spell" if self.cold else "marine heatwave"
        pct = 100 - self.pctile if self.cold else self.pctile
        common = {"units": units} if units else {}
        seas = seas.assign_attrs(
            long_name="seasonal climatology (Hobday et al. 2016)",
            comment=f"mean over a {self.window}-day window around each day of the year in the base period, "
            f"smoothed by a {self.smooth}-day circular running mean",
            **common,
        )
        thresh = thresh.assign_attrs(
            long_name=f"{kind} threshold: {pct:g}th percentile (Hobday et al. 2016)",
            comment=f"linear percentile over a {self.window}-day window around each day of the year in the "
            f"base period, smoothed by a {self.smooth}-day circular running mean",
            **common,
        )
        doy = np.arange(1, self.days.days + 1)
        out = xr.Dataset({"seas": seas, "thresh": thresh}).assign_coords(dayofyear=doy)
        out["dayofyear"].attrs.update(
            long_name="day of the climatological year"
            + (" (30 * (month - 1) + day)" if self.days.days == 360 else " (leap-year numbering: 1 March = 61)"),
            units="1",
        )
        out.attrs.update(self.attrs(sst))
        return out

    def attrs(self, sst):
        years = self.days.year
        return {
            "mhw_base_period": f"{years[self.first]}-{years[self.last]}",
            "mhw_pctile": self.pctile,
            "mhw_window": self.window,
            "mhw_smooth": self.smooth,
            "mhw_cold": int(self.cold),
            "mhw_calendar": self.days.calendar,
            "references": "Hobday et al. (2016), Prog. Oceanogr. 141, 227-238; "
            "Hobday et al. (2018), Oceanography 31(2), 162-173",
        }

    def checked_clim(self, sst, clim):
        if not isinstance(clim, xr.Dataset) or not {"seas", "thresh"} <= set(clim.data_vars):
            raise TypeError("clim must be a Dataset with 'seas' and 'thresh', as oceanflow.mhw.thresholds returns")
        if clim.sizes.get("dayofyear") != self.days.days:
            raise ValueError(
                f"clim has {clim.sizes.get('dayofyear')} days of the year, but the {self.days.calendar} calendar "
                f"of sst needs {self.days.days}; compute it with oceanflow.mhw.thresholds on data of this calendar"
            )
        if "mhw_cold" in clim.attrs and bool(clim.attrs["mhw_cold"]) != self.cold:
            made = "cold spells" if clim.attrs["mhw_cold"] else "heatwaves"
            raise ValueError(f"clim was computed for {made}; pass the same cold= to thresholds and detect")
        _, clim = align(sst, clim, names=("sst", "clim"), exclude=("time", "dayofyear"))
        return clim

    # ------------------------------------------------------------ detection

    def detect(self, sst, clim, *, min_duration, join_gaps, max_gap, periods=None, tables=False):
        """The detection Dataset of :func:`detect`; with ``clim`` None the thresholds are computed
        in the detection's own tasks (one task per block: its series joined once).

        ``periods`` (the summary's period of each time step, 0, 1, ...) and
        ``tables`` add, from the same tasks and the blocks in memory, the
        summary's columns and each block's event table (see :func:`save`).
        Returns ``(found, summary columns or None, table or None)``.
        """
        params = np.array([min_duration, int(join_gaps), max_gap, int(self.cold), 0, 0], np.float64)
        dtype = working_dtype(sst.dtype)
        n, days = sst.sizes["time"], self.days.days
        extras: tuple = ()
        lengths, dims, dtypes = [n] * 3, ["time"] * 3, [dtype, np.int8, np.int32]
        options: dict[str, Any] = {"day": self.days.row, "params": params}
        if clim is None:  # the thresholds in the same task: two more outputs first
            options["thresholds"] = {
                "pools": _pools(self.days, self.first, self.last, self.window),
                "pctile": self.pctile,
                "sign": -1.0 if self.cold else 1.0,
                "smooth": self.smooth,
                "feb29": days == 366,
            }
            lengths, dims, dtypes = [days] * 2 + lengths, ["dayofyear"] * 2 + dims, [np.float64] * 2 + dtypes
        else:
            extras = (clim["seas"].astype(np.float64), clim["thresh"].astype(np.float64))
        if periods is not None:
            options["period_of_step"] = periods
            nblocks = int(periods[-1]) + 1
            lengths += [nblocks] * len(kernels.SUMMARY_ROWS)
            dims += ["period"] * len(kernels.SUMMARY_ROWS)
            dtypes += [np.float64] * len(kernels.SUMMARY_ROWS)
        if tables:  # (rows * slots, pixel) per block, slots its own: gathered by save(), never as one array
            options["tables"] = True
            lengths, dims, dtypes = lengths + [len(kernels.EVENT_ROWS)], dims + ["row"], dtypes + [np.float64]
        outputs = list(
            _map_series(_mhw_block, sst, extras, length=lengths, dim=dims, dtypes=dtypes, name="mhw-detect", **options)
        )
        if clim is None:
            clim = self._clim_dataset(sst, outputs.pop(0), outputs.pop(0))
            seas, thresh = clim["seas"], clim["thresh"]
        else:
            seas, thresh = extras
        intensity, category, event = outputs[:3]
        units = sst.attrs.get("units")
        intensity.attrs.update(
            long_name="temperature minus the seasonal climatology", **({"units": units} if units else {})
        )
        category.attrs.update(
            long_name="category of the day (Hobday et al. 2018); 0 outside events",
            flag_values=np.arange(5, dtype=np.int8),
            flag_meanings=" ".join(CATEGORY_NAMES),
        )
        event.attrs.update(long_name="number of the event within its pixel (1, 2, ...); 0 outside events", units="1")
        out = xr.Dataset(
            {"intensity": intensity, "category": category, "event": event, "seas": seas, "thresh": thresh},
            attrs={**clim.attrs, "mhw_cold": int(self.cold), "mhw_calendar": self.days.calendar},
        )
        out.attrs.update(mhw_min_duration=int(min_duration), mhw_join_gaps=int(join_gaps), mhw_max_gap=int(max_gap))
        rest = outputs[3:]
        columns = rest[: len(kernels.SUMMARY_ROWS)] if periods is not None else None
        return out, columns, (rest[-1] if tables else None)


# ---------------------------------------------------------------- mapping kernels over pixels


def _map_series(func, data, extras, *, length, dim, dtypes, name, **kwargs):
    """Map ``func`` over the spatial blocks of ``data`` with its time axis whole in each (one task per block).

    ``func(x, *extras, **kwargs)`` gets C-ordered 2-D views: ``x`` as
    ``(time, pixel)`` and each extra as ``(row, pixel)`` (every row), and
    returns one ``(length, pixel)`` array per entry of ``dtypes``.  ``length``
    and ``dim`` are one int and one name for every output, or one per output.
    Returns DataArrays ``(dim, *space)`` with the spatial coordinates of
    ``data`` (and ``time`` on outputs along it): no transposed copies, no
    rechunking of the blocks' time pieces outside the task (the task
    concatenates them).
    """
    lengths = tuple(length) if isinstance(length, (tuple, list)) else (length,) * len(dtypes)
    out_dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,) * len(dtypes)
    space = [d for d in data.dims if d != "time"]
    data = _time_whole(data.transpose("time", *space))
    extras = [e.transpose(e.dims[0], *space) for e in extras]
    if is_dask(data.data):
        extras = [e.chunk({e.dims[0]: -1, **{d: data.chunksizes[d] for d in space}}) for e in extras]
    labels = [f"space{i}" for i in range(len(space))]
    args = [data.data, ("time", *labels)]
    for k, extra in enumerate(extras):
        args += [extra.data, (f"row{k}", *labels)]
    results = map_blocks(
        _series_call,
        ("out", *labels),
        *args,
        dtype=tuple(dtypes) if len(dtypes) > 1 else dtypes[0],
        new_axes={"out": lengths[0]},
        adjust_chunks=[{"out": n} for n in lengths] if len(set(lengths)) > 1 else None,
        name=name,
        series_func=func,
        **kwargs,
    )
    results = results if isinstance(results, tuple) else (results,)
    spatial = {k: v for k, v in data.coords.items() if set(v.dims) <= set(space)}
    return tuple(
        xr.DataArray(r, dims=(d, *space), coords={**spatial, "time": data["time"]} if d == "time" else spatial)
        for r, d in zip(results, out_dims, strict=True)
    )


def _series_call(x, *extras, series_func, **kwargs):
    """One block: ``(time, *space)`` and ``(row, *space)`` arrays -> ``(length, *space)`` arrays."""
    space = x.shape[1:]
    flat = [np.ascontiguousarray(a).reshape(a.shape[0], -1) for a in (x, *extras)]  # views when C-ordered
    results = tuple(r.reshape(r.shape[:1] + space) for r in series_func(*flat, **kwargs))
    return results if len(results) > 1 else results[0]


def _time_whole(data):
    """``data`` ((time, *space)) in spatial blocks whose series fit a task
    (:func:`~oceanflow.chunking.plan_chunks`), at least one per thread, when
    its time axis is chunked; its time chunks are left as they are (each task
    concatenates its own).  Blocks whose time axis is whole are kept."""
    data = chunked_for(data, core_dims="time", operation="mhw")
    if not is_dask(data.data) or len(data.chunks[0]) == 1:  # time already whole: the blocks as they are
        return data  # (splitting them for more tasks than threads would copy every block once more)
    # blocks whose whole series fit a task's share (the order statistics' rule), not storage-aligned
    # blocks: time-chunked storage has whole-grid chunks, which would make one block of the whole input
    plan = plan_chunks(data, core_dims="time", operation="quantile")
    chunks = {d: c if isinstance(c, int) else max(c) for d, c in plan.chunks.items()}
    space = [d for d in data.dims if d != "time"]
    blocks = math.prod(math.ceil(data.sizes[d] / chunks[d]) for d in space)
    threads = worker_threads()
    if space and blocks < threads:  # a task per thread at least
        widest = max(space, key=lambda d: data.sizes[d] // chunks[d])
        parts = math.ceil(threads / (blocks / math.ceil(data.sizes[widest] / chunks[widest])))
        chunks[widest] = max(1, math.ceil(data.sizes[widest] / parts))
    wanted = {d: chunks[d] for d in space if data.chunksizes[d] != _even(data.sizes[d], chunks[d])}
    logger.info("mhw: time whole in each task, spatial chunks %s", {d: chunks[d] for d in space})
    return data.chunk(wanted) if wanted else data


def _even(size, chunk):
    return (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())


def _mhw_block(x, *clim, day, params, thresholds=None, period_of_step=None, tables=False):
    """One block's (time, pixel) series -> [seas, thresh (without ``clim``)], intensity,
    category, event, [the summary's rows (with ``period_of_step``)], [the event
    table, (rows * slots, pixel) with the block's own slots (with ``tables``)]:
    every kernel on the block in memory."""
    seas, thresh = clim if clim else _thresholds_block(x, **thresholds)
    intensity, category, event = _detect_block(x, seas, thresh, day, params)
    out = [intensity, category, event] if clim else [seas, thresh, intensity, category, event]
    cold = np.array([params[kernels.P_COLD]])
    if period_of_step is not None:
        valid = (thresh == thresh).any(axis=0).astype(np.float64)[None]
        out += _summary_block(intensity, event, valid, period_of_step, cold)
    if tables:
        slots = max(int(event.max(initial=0)), 1)
        table = _event_table(intensity, event, category, seas, thresh, day, cold, slots)
        out.append(table.reshape(-1, x.shape[1]))  # (a view)
    return tuple(out)


def _detect_block(x, seas, thresh, day, params):
    n, p = x.shape
    dtype = working_dtype(x.dtype)
    x = x.astype(dtype, copy=False)
    outs = (np.empty((n, p), dtype), np.empty((n, p), np.int8), np.empty((n, p), np.int32))
    kernel = kernels.detect_events.for_dtype(dtype)

    def run(part):
        own = params.copy()
        own[kernels.P_FIRST], own[kernels.P_STOP] = part.start, part.stop
        kernel(x, seas, thresh, day, own, *outs)

    run_sliced(run, p)
    return outs


def _pools(days, first, last, window):
    """The pools of the days of the year (pixel-independent), by key: for each
    of a day's days in the base period (``first .. last``; 29 February is no
    centre), the ``window`` steps centred on it, cut at the ends of the
    series; steps pooled by the same days are one key
    (:func:`oceanflow.climatology.pooling.order_keys`).

    Returns (steps, key_starts, key_stops, keys, group_starts, group_stops):
    key ``k`` is ``steps[key_starts[k]:key_stops[k]]``, day ``g`` pools the keys
    ``keys[group_starts[g]:group_stops[g]]``.
    """
    codes = days.row.astype(np.int64)
    if days.days == 366:
        codes[days.feb29] = -1
    codes[:first] = -1
    codes[last + 1 :] = -1
    keys = order_keys(codes, days.days, window)
    return keys.steps, keys.key_starts, keys.key_stops, keys.keys, keys.group_starts, keys.group_stops


def _thresholds_block(x, pools, pctile, sign, smooth, feb29):
    """One block's (time, pixel) series -> its climatological year (``seas``,
    ``thresh``: (day, pixel), float64): the pools' means and percentiles
    (:func:`_pools`; exact, in float64, on ``sign * x``), 29 February filled,
    smoothed, as the reference computes them."""
    dtype = working_dtype(x.dtype)
    x = x.astype(dtype, copy=False)  # (the kernel reads it in float64, a few pixels at a time: no copy)
    p, ngroups = x.shape[1], pools[4].size
    seas, thresh = np.empty((ngroups, p)), np.empty((ngroups, p))
    kernel = kernels.pooled_climatology.for_dtype(dtype)

    def run(part):
        params = np.zeros(6)
        params[kernels.C_FIRST], params[kernels.C_STOP] = part.start, part.stop
        params[kernels.C_SMOOTH], params[kernels.C_FEB29] = smooth, _FEB29 if feb29 else -1
        params[kernels.C_SIGN], params[kernels.C_FRACTION] = sign, pctile / 100
        kernel(x, *pools, params, seas, thresh)

    run_sliced(run, p)
    return seas, thresh


# ---------------------------------------------------------------- events and summary


def _checked_detection(detected):
    needed = {"intensity", "event", "category", "seas", "thresh"}
    if not isinstance(detected, xr.Dataset) or not needed <= set(detected.variables):
        raise TypeError("pass the Dataset that oceanflow.mhw.detect returns (intensity, category, event, seas, thresh)")
    return _Calendar(decoded_time(detected["time"]))


def _events_dataset(detected):
    """The event table: one pass over the daily variables, after one over ``event`` for its size."""
    days = _checked_detection(detected)
    found = int(detected["event"].max())
    count = max(found, 1)  # without any event, one slot of NaN
    cold = float(detected.attrs.get("mhw_cold", 0))
    columns = _map_series(
        _events_block,
        detected["intensity"],
        (detected["event"], detected["category"], detected["seas"], detected["thresh"]),
        length=count,
        dim="event",
        dtypes=(np.float64,) * len(kernels.EVENT_ROWS),
        name="mhw-events",
        day=days.row,
        params=np.array([cold]),
        slots=count,
    )
    return _events_table(columns, detected), found


def _events_table(columns, detected):
    """The event Dataset from its columns (DataArrays ``(event, *space)``, rows
    :data:`~oceanflow.kernels.mhw.EVENT_ROWS`): names, units, times."""
    units = detected["intensity"].attrs.get("units", "")
    time = detected["time"]
    out = {}
    for name, var in zip(kernels.EVENT_ROWS, columns, strict=True):
        attrs = {"long_name": name.replace("_", " ")}
        if name.startswith("intensity_cumulative"):
            attrs["units"] = f"{units} day".strip()
        elif name.startswith("intensity"):
            attrs["units"] = units
        elif name.startswith("rate"):
            attrs["units"] = f"{units} day-1".strip()
        elif name.startswith("duration"):
            attrs["units"] = "day"
        elif name.startswith("index"):
            attrs["units"] = "1"
            attrs["long_name"] = f"{name.replace('_', ' ')} (time step)"
        out[name] = var.assign_attrs(attrs)
        if name.startswith("index"):
            out[name.replace("index", "time")] = _times_at(out[name], time)
    out["category"].attrs.update(
        long_name="category of the event at its peak (Hobday et al. 2018)",
        flag_values=np.arange(1, 5, dtype=np.int8),
        flag_meanings=" ".join(CATEGORY_NAMES[1:]),
    )
    order = ["time_start", "time_end", "time_peak"] + [n for n in kernels.EVENT_ROWS]
    return xr.Dataset({n: out[n] for n in order}, attrs=dict(detected.attrs))


def _events_block(intensity, event, category, seas, thresh, day, params, slots):
    table = _event_table(intensity, event, category, seas, thresh, day, params, slots)
    return tuple(table[i] for i in range(table.shape[0]))  # views: no copy per property


def _event_table(intensity, event, category, seas, thresh, day, params, slots):
    """(rows, slots, pixel): :func:`oceanflow.kernels.mhw.event_properties` of one block."""
    kernel = kernels.event_properties.for_dtype(working_dtype(intensity.dtype))
    rows = len(kernels.EVENT_ROWS)
    return kernel(
        intensity.astype(working_dtype(intensity.dtype), copy=False),
        event.astype(np.int32, copy=False),
        category.astype(np.int8, copy=False),
        seas.astype(np.float64, copy=False),
        thresh.astype(np.float64, copy=False),
        day,
        params,
        np.zeros(rows),
        np.zeros(slots),
    )


def _times_at(index, time):
    values = time.values
    if values.dtype.kind == "M":
        axes = tuple(range(index.ndim))
        data = map_blocks(_lookup_times, axes, index.data, axes, dtype=values.dtype, name="mhw-times", values=values)
        name = index.attrs.get("long_name", "").replace("index", "time").replace(" (time step)", "")
        return xr.DataArray(data, dims=index.dims, coords=index.coords, attrs={"long_name": name})
    first = values[0]
    return index.assign_attrs(
        long_name=index.attrs["long_name"].replace("index", "time").replace(" (time step)", ""),
        units="day",
        comment=f"days since {first} in the {time.dt.calendar} calendar (NumPy has no missing cftime date)",
    )


def _lookup_times(index, values):
    result = np.full(index.shape, np.datetime64("NaT"), values.dtype)
    ok = ~np.isnan(index)
    result[ok] = values[index[ok].astype(np.int64)]
    return result


def years_per_block(freq: str) -> int:
    """Years per block of a summary frequency: ``"YS"`` -> 1, ``"5YS"`` -> 5; a clear error otherwise."""
    match = re.fullmatch(r"(\d*)(YS|AS|Y|A)(-JAN)?", str(freq))
    if not match or (match.group(1) and int(match.group(1)) < 1):
        raise ValueError(f"freq must be 'YS' (calendar years) or e.g. '5YS' (blocks of 5 years), got {freq!r}")
    return int(match.group(1) or 1)


def _summary_periods(days, years_per_block):
    """The summary's period of each time step (``(time,)`` int64, 0, 1, ...)."""
    return ((days.year - int(days.year[0])) // years_per_block).astype(np.int64)


def _summary_dataset(detected, years_per_block):
    days = _checked_detection(detected)
    block = _summary_periods(days, years_per_block)
    valid = detected["thresh"].notnull().any("dayofyear").astype(np.float64)
    columns = _map_series(
        _summary_block,
        detected["intensity"],
        (detected["event"], valid.expand_dims(_one=1)),
        length=int(block[-1]) + 1,
        dim="period",
        dtypes=(np.float64,) * len(kernels.SUMMARY_ROWS),
        name="mhw-summary",
        period_of_step=block,
        params=np.array([float(detected.attrs.get("mhw_cold", 0))]),
    )
    return _summary_table(columns, detected, days, years_per_block)


def _summary_table(columns, detected, days, years_per_block):
    """The summary Dataset from its columns (DataArrays ``(period, *space)``, rows
    :data:`~oceanflow.kernels.mhw.SUMMARY_ROWS`): periods, names, units, trends."""
    from ..fitting import polyfit

    first = int(days.year[0])
    nblocks = columns[0].sizes["period"]
    starts = first + years_per_block * np.arange(nblocks)
    period = xr.date_range(
        f"{first:04d}-01-01",
        periods=nblocks,
        freq=f"{years_per_block}YS",
        calendar=days.calendar,
        use_cftime=detected["time"].dtype.kind == "O",
    )
    centre = starts + 0.5 * (years_per_block - 1)
    units = detected["intensity"].attrs.get("units", "")
    out = {}
    for name, var in zip(kernels.SUMMARY_ROWS, columns, strict=True):
        out[name] = var.assign_attrs(long_name=_SUMMARY_NAMES[name], units=_summary_units(name, units))
    ds = xr.Dataset(out).assign_coords(period=("period", np.asarray(period)), period_centre=("period", centre))
    ds["period_centre"].attrs.update(long_name="centre of the period", units="year")
    fit = polyfit(ds.swap_dims(period="period_centre").drop_vars("period"), "period_centre", 1)
    for name in kernels.SUMMARY_ROWS:
        slope = fit[f"{name}_polyfit_coefficients"].sel(degree=1, drop=True)
        ds[f"{name}_trend"] = slope.assign_attrs(
            long_name=f"linear trend of {_SUMMARY_NAMES[name]}",
            units=f"({_summary_units(name, units)}) year-1",
        )
    ds.attrs.update(detected.attrs, mhw_summary_freq=f"{years_per_block}YS")
    return ds


_SUMMARY_NAMES = {
    "count": "number of events starting in the period",
    "total_days": "number of event days in the period",
    "duration": "mean duration of the events starting in the period",
    "intensity_max": "mean peak intensity of the events starting in the period",
    "intensity_max_max": "largest peak intensity of the events starting in the period",
    "intensity_mean": "mean of the mean intensities of the events starting in the period",
    "intensity_cumulative": "mean cumulative intensity of the events starting in the period",
    "total_icum": "summed cumulative intensity of the events starting in the period",
}


def _summary_units(name, units):
    if name == "count":
        return "1"
    if name in ("total_days", "duration"):
        return "day"
    if name in ("intensity_cumulative", "total_icum"):
        return f"{units} day".strip()
    return units


def _summary_block(intensity, event, valid, period_of_step, params):
    nblocks = int(period_of_step[-1]) + 1
    result = kernels.period_summary.for_dtype(working_dtype(intensity.dtype))(
        intensity.astype(working_dtype(intensity.dtype), copy=False),
        event.astype(np.int32, copy=False),
        period_of_step,
        valid[0].astype(np.float64, copy=False),
        params,
        np.zeros(nblocks),
        np.zeros(len(kernels.SUMMARY_ROWS)),
    )
    return tuple(result[i] for i in range(result.shape[0]))
