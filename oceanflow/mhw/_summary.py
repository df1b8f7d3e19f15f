"""The public :func:`~oceanflow.mhw.summary`: the reference's block averages per period
and their linear trends."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._parallel import run_each
from ..kernels import mhw as kernels
from . import _engine
from ._blocks import _map_series
from ._definitions import _checked_detection


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
        the least-squares slope over the blocks with a value (``meanTrend``;
        NaN with fewer than two), per year.

    Examples
    --------
    >>> annual = oceanflow.mhw.summary(found, "YS")          # doctest: +SKIP
    >>> annual.total_days_trend * 10                          # doctest: +SKIP
    """
    block_length = years_per_block(freq)
    return _summary_dataset(detected, block_length)


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
        _engine._summary_block,
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
    trends = _trends([out[name].variable for name in kernels.SUMMARY_ROWS], centre)
    for name, slope in zip(kernels.SUMMARY_ROWS, trends, strict=True):  # Variables: the Dataset aligns them once
        slope.attrs.update(
            long_name=f"linear trend of {_SUMMARY_NAMES[name]}", units=f"({_summary_units(name, units)}) year-1"
        )
        out[f"{name}_trend"] = slope
    ds = xr.Dataset(out).assign_coords(period=("period", np.asarray(period)), period_centre=("period", centre))
    ds["period_centre"].attrs.update(long_name="centre of the period", units="year")
    ds.attrs.update(detected.attrs, mhw_summary_freq=f"{years_per_block}YS")
    return ds


def _trends(variables, x):
    """:func:`_slopes` of each Variable ``(period, ...)`` against ``x`` (years), as Variables: those in
    memory computed side by side on the package's threads (:func:`~oceanflow._parallel.run_each`; NumPy
    frees the GIL), each as a whole (the same numbers)."""

    def trend(variable):
        return xr.apply_ufunc(
            _slopes,
            variable,
            input_core_dims=[["period"]],
            kwargs={"x": x},
            dask="parallelized",
            output_dtypes=[np.float64],
        )

    if any(is_dask(v.data) for v in variables) or len(variables) < 2:
        return [trend(v) for v in variables]
    return run_each(trend, variables)


#: Bytes of the series :func:`_slopes` fits at once: its temporaries (a dozen, each that size) stay in
#: malloc's heap and the CPU's caches instead of being pages faulted in afresh, one mapping each.
PIECE_BYTES = 1 << 20


def _slopes(y, x):
    """The least-squares slope of each series ``y[..., :]`` against ``x`` over its non-NaN
    values (closed form, centred: sum(dx dy) / sum(dx dx)); NaN with fewer than two.  Fitted
    in pieces of about :data:`PIECE_BYTES` along the first axis, views of ``y`` (each series'
    sums taken in the same order as in one piece: the same numbers).

    Example
    -------
    >>> _slopes(np.array([[1.0, np.nan, 5.0, 7.0], [1.0, np.nan, np.nan, np.nan]]), np.arange(4.0))
    array([ 2., nan])
    """
    if y.ndim < 2:
        return _fitted(y, x)
    rows = max(1, PIECE_BYTES // max(1, y[:1].size * y.itemsize))
    out = np.empty(y.shape[:-1])
    for start in range(0, len(y), rows):
        out[start : start + rows] = _fitted(y[start : start + rows], x)
    return out


def _fitted(y, x):
    """:func:`_slopes` of ``y`` at once."""
    valid = ~np.isnan(y)
    n = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(valid, x - (valid * x).sum(axis=-1, keepdims=True) / n[..., None], 0.0)
        ym = np.where(valid, y, 0.0).sum(axis=-1, keepdims=True) / n[..., None]
        slope = (dx * np.where(valid, y - ym, 0.0)).sum(axis=-1) / (dx * dx).sum(axis=-1)
    return np.where(n >= 2, slope, np.nan)


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
