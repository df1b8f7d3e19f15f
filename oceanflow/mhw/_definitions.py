"""What every part of :mod:`oceanflow.mhw` shares: the climatological year of each
calendar (:class:`_Calendar`: year and row of each day, daily steps checked), the
categories' names (Hobday et al. 2018) and the check of a detection's Dataset."""

from __future__ import annotations

import datetime

import numpy as np
import xarray as xr

from ..timegroups import decoded_time

CATEGORY_NAMES = ("none", "moderate", "strong", "severe", "extreme")
_FEB29 = 59  # row of 29 February in the 366-day year
_LEAP_START = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])


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


def _checked_detection(detected):
    needed = {"intensity", "event", "category", "seas", "thresh"}
    if not isinstance(detected, xr.Dataset) or not needed <= set(detected.variables):
        raise TypeError("pass the Dataset that oceanflow.mhw.detect returns (intensity, category, event, seas, thresh)")
    return _Calendar(decoded_time(detected["time"]))
