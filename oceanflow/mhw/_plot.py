"""The public :func:`~oceanflow.mhw.plot`: the classic figure of one pixel."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..timegroups import decoded_time
from ._definitions import CATEGORY_NAMES, _Calendar

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
