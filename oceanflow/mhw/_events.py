"""The public :func:`~oceanflow.mhw.events`: the reference's properties of every event
of every pixel, as a Dataset padded along ``event``."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._blockwise import map_blocks
from ..kernels import mhw as kernels
from . import _engine
from ._blocks import _map_series
from ._definitions import CATEGORY_NAMES, _checked_detection


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
        cftime calendar (NumPy has no missing cftime date), ``time_*`` are
        float64 days since the first time step, counted by the calendar, NaN
        none, with ``units = "day"``, the first step's date in
        ``reference_date`` and the calendar in ``calendar_of_reference``
        (docs/mhw.rst, Event dates); ``cftime.num2date(values, "days since "
        + reference_date, calendar_of_reference)`` of the values not NaN
        gives the dates.

    Examples
    --------
    >>> table = oceanflow.mhw.events(found)                      # doctest: +SKIP
    >>> table.intensity_max.max("event")                          # doctest: +SKIP
    >>> start = table.time_start[:, 0, 0].dropna("event")  # cftime calendars  # doctest: +SKIP
    >>> cftime.num2date(start.values, f"days since {start.reference_date}",  # doctest: +SKIP
    ...                 start.calendar_of_reference)  # the dates of a pixel's events
    """
    table, found = _events_dataset(detected)
    return table.isel(event=slice(0, found))


def _events_dataset(detected):
    """The event table: one pass over the daily variables, after one over ``event`` for its size."""
    days = _checked_detection(detected)
    found = int(detected["event"].max())
    count = max(found, 1)  # without any event, one slot of NaN
    cold = float(detected.attrs.get("mhw_cold", 0))
    columns = _map_series(
        _engine._events_block,
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


def _events_table(columns, detected, coords=None):
    """The event Dataset from its columns (DataArrays or Variables ``(event, *space)``,
    rows :data:`~oceanflow.kernels.mhw.EVENT_ROWS`): names, units, times.  ``coords``
    (default: the first column's) are the spatial coordinates of every column, given
    once: the columns meet as Variables, with no alignment of each."""
    units = detected["intensity"].attrs.get("units", "")
    time = detected["time"]
    coords = getattr(columns[0], "coords", {}) if coords is None else coords
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
        var = getattr(var, "variable", var)
        out[name] = xr.Variable(var.dims, var.data, {**var.attrs, **attrs})
        if name.startswith("index"):
            out[name.replace("index", "time")] = _times_at(out[name], time)
    out["category"].attrs.update(
        long_name="category of the event at its peak (Hobday et al. 2018)",
        flag_values=np.arange(1, 5, dtype=np.int8),
        flag_meanings=" ".join(CATEGORY_NAMES[1:]),
    )
    order = ["time_start", "time_end", "time_peak"] + [n for n in kernels.EVENT_ROWS]
    return xr.Dataset({n: out[n] for n in order}, coords=coords, attrs=dict(detected.attrs))


def _times_at(index, time):
    """The dates of the steps ``index`` (a Variable of float step numbers, NaN: none), as a
    Variable: ``datetime64`` (NaT none), or, in a cftime calendar, float64 days since the first
    step counted by the calendar (NaN none), units ``day`` (a duration: no CF date, which xarray
    would decode, NaN as the first date, or refuse to decode), the first step's date and the
    calendar in ``reference_date`` and ``calendar_of_reference`` (not ``calendar``: xarray reads it)."""
    values = time.values
    attrs = {"long_name": index.attrs["long_name"].replace("index", "time").replace(" (time step)", "")}
    if values.dtype.kind == "M":
        return xr.Variable(index.dims, _looked_up(index, np.append(values, np.datetime64("NaT"))), attrs)
    days, reference, calendar = _calendar_days(time)
    attrs.update(
        units="day",
        reference_date=reference,
        calendar_of_reference=calendar,
        comment=f"days since {reference} in the {calendar} calendar; cftime.num2date(values, 'days since "
        f"{reference}', '{calendar}') gives the dates (xarray cannot decode missing cftime dates)",
    )
    return xr.Variable(index.dims, _looked_up(index, days), attrs)


def _calendar_days(time):
    """The float64 days since the first step of the cftime ``time``, counted by its calendar, NaN
    appended (none; see :func:`_day_numbers`), the first step's date and the calendar."""
    since = time.values[0].isoformat(sep=" ")
    encoding = {"units": f"days since {since}", "calendar": time.dt.calendar, "dtype": "float64"}
    days, cf = _day_numbers(time, encoding, np.nan)
    return days, cf["units"].split(" since ", 1)[1], cf["calendar"]


def _day_numbers(time, encoding, missing):
    """The numbers xarray stores for the dates of ``time`` with ``encoding`` (``units``, ``calendar``,
    ``dtype``), ``missing`` appended (what :func:`_looked_up` gives for NaN), and their ``units`` and
    ``calendar``: days counted by the calendar, not steps (equal only for whole days one apart)."""
    stored = xr.conventions.encode_cf_variable(xr.Variable("time", time.values, encoding=encoding))
    attrs = {k: stored.attrs[k] for k in ("units", "calendar")}  # (no _FillValue: an encoding, not data)
    return np.append(stored.values, np.array(missing, stored.dtype)), attrs


def _looked_up(index, values):
    """``values`` at the float step numbers of the Variable ``index`` (NaN: the last of ``values``),
    block by block (lazy with dask)."""
    axes = tuple(range(index.ndim))
    return map_blocks(_lookup, axes, index.data, axes, dtype=values.dtype, name="mhw-dates", values=values)


def _lookup(index, values):
    return values[np.where(np.isnan(index), -1, index).astype(np.int64)]
