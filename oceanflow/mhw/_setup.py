"""The checked parameters of one :func:`~oceanflow.mhw.thresholds` or
:func:`~oceanflow.mhw.detect` call (:class:`_Setup`: percentile, window,
smoothing, base period) and the Datasets they build from the block functions'
outputs; the input checks."""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import xarray as xr

from .._dtypes import working_dtype
from ..alignment import align
from ..kernels import mhw as kernels
from ..timegroups import decoded_time
from . import _engine
from ._blocks import _map_series
from ._definitions import CATEGORY_NAMES, _Calendar

#: Hobday et al. (2016) recommend a base period of at least this many years.
RECOMMENDED_BASE_YEARS = 30
#: Fewer complete years than this in the base period are refused.
MINIMUM_BASE_YEARS = 3


class BaseLengthWarning(UserWarning):
    """The base period is shorter than the 30 years Hobday et al. (2016) recommend."""


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
        pools = _engine._pools(self.days, self.first, self.last, self.window)
        seas, thresh = _map_series(
            _engine._thresholds_block,
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
        space = [d for d in sst.dims if d != "time"]  # laid out as the detection: (dayofyear, *space of sst)
        return clim.transpose("dayofyear", *space, ..., missing_dims="ignore")

    # ------------------------------------------------------------ detection

    def detect(self, sst, clim, *, min_duration, join_gaps, max_gap, periods=None, tables=False):
        """The detection Dataset of :func:`detect`; with ``clim`` None the thresholds are computed
        in the detection's own tasks (one task per block: its series joined once).

        ``periods`` (the summary's period of each time step, 0, 1, ...) and
        ``tables`` add, from the same tasks and the blocks in memory, the
        summary's columns and each block's event table (see :func:`save`; ``tables`` as
        :func:`~oceanflow.mhw._engine._mhw_block` takes it).
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
                "pools": _engine._pools(self.days, self.first, self.last, self.window),
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
            options["tables"] = tables
            lengths, dims, dtypes = lengths + [len(kernels.EVENT_ROWS)], dims + ["row"], dtypes + [np.float64]
        outputs = list(
            _map_series(
                _engine._mhw_block, sst, extras, length=lengths, dim=dims, dtypes=dtypes, name="mhw-detect", **options
            )
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
