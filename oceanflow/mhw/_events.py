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
        cftime calendar, ``time_*`` are days since the first time step
        (NumPy has no missing cftime date).

    Examples
    --------
    >>> table = oceanflow.mhw.events(found)                      # doctest: +SKIP
    >>> table.intensity_max.max("event")                          # doctest: +SKIP
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
    """The dates of the steps ``index`` (a Variable of float step numbers, NaN: none), as a Variable."""
    values = time.values
    name = index.attrs["long_name"].replace("index", "time").replace(" (time step)", "")
    if values.dtype.kind == "M":
        axes = tuple(range(index.ndim))
        data = map_blocks(_lookup_times, axes, index.data, axes, dtype=values.dtype, name="mhw-times", values=values)
        return xr.Variable(index.dims, data, {"long_name": name})
    first = values[0]
    return xr.Variable(
        index.dims,
        index.data,
        {
            **index.attrs,
            "long_name": name,
            "units": "day",
            "comment": f"days since {first} in the {time.dt.calendar} calendar (NumPy has no missing cftime date)",
        },
    )


def _lookup_times(index, values):
    result = np.full(index.shape, np.datetime64("NaT"), values.dtype)
    ok = ~np.isnan(index)
    result[ok] = values[index[ok].astype(np.int64)]
    return result
