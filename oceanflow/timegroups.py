"""Climatological time groups over every CF calendar.

:func:`time_groups` turns a time coordinate (NumPy ``datetime64`` or cftime
objects, or undecoded numbers with CF ``units`` and ``calendar`` attributes)
into one integer group code per time step plus the group labels.  The
groupings (``freq``):

* ``"month"``: labels 1-12.
* ``"season"``: ``DJF, MAM, JJA, SON`` by default, or any sets of months via
  ``seasons=`` (``["DJFM", "AMJJAS"]`` or ``{"wet": [11, 12, 1, 2]}``); months
  in no season belong to no group.
* ``"dayofyear"``: calendar month-day, so that 1 March is the same group in
  every year.  Labels are the day of the year in a leap year (1 Mar = 61) and
  29 February follows the ``feb29`` policy: ``"own"`` (default) keeps it as
  its own group (label 60), ``"merge"`` puts it with 28 February and labels
  days as in a non-leap year (1 Mar = 60), ``"drop"`` leaves it out (same
  labels as ``"merge"``).  In the 360_day calendar the label is
  ``30 * (month - 1) + day``.
* ``"time.dayofyear"``, ``"time.month"``, ``"time.season"``: exactly xarray's
  ``time.dayofyear`` (ordinal day: 1 March is day 60 or 61), ``time.month``
  and ``time.season`` (DJF, JJA, MAM, SON).
* ``"annual"``: a single group, no group dimension.
* an array (or DataArray) of one label per time step: groups by those labels.

Only groups that occur are returned, in calendar order (user labels: sorted).
A grouping finer than the data (months of annual data, days of monthly data)
is an error.  :meth:`TimeGroups.attrs` describes the grouping as attributes,
which travel with a climatology so that its anomalies use the same groups.

Example
-------
>>> time = xr.DataArray(xr.date_range("2001-01-01", periods=3, freq="MS"), dims="time")
>>> g = time_groups(time, "month")
>>> g.codes, g.labels, g.dim
(array([0, 1, 2]), array([1, 2, 3]), 'month')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

__all__ = ["CF_CALENDARS", "TimeGroups", "time_groups", "groups_of_stamps", "decoded_time", "step_days"]

#: Calendar names of the CF conventions (1.11, section 4.4.1) that count days; the one
#: source of the list (:data:`oceanflow.io.times.CALENDARS` adds ``"none"``).
CF_CALENDARS = (
    "standard",
    "gregorian",
    "proleptic_gregorian",
    "julian",
    "noleap",
    "365_day",
    "all_leap",
    "366_day",
    "360_day",
)
DEFAULT_SEASONS = ("DJF", "MAM", "JJA", "SON")
FEB29_POLICIES = ("own", "merge", "drop")
_INITIALS = "JFMAMJJASOND"
_NAMED = ("month", "season", "dayofyear", "time.month", "time.season", "time.dayofyear", "annual")
# Day of the year on which each month starts, minus one.
_LEAP_START = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])
_NOLEAP_START = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])


@dataclass(frozen=True)
class TimeGroups:
    """Group of every time step: ``labels[codes[i]]``; code -1 means no group."""

    codes: np.ndarray
    labels: np.ndarray
    dim: str | None
    calendar: str
    #: Whether every group the calendar can produce occurs (a full annual cycle).
    complete: bool
    #: The grouping: "month", "season", "dayofyear" (month-day), "time.dayofyear"
    #: (ordinal day), "annual" or "labels" (one label per step).
    kind: str = "labels"
    #: Months of each season (kind "season").
    seasons: dict[str, list[int]] = field(default_factory=dict)
    #: 29 February policy (kind "dayofyear").
    feb29: str | None = None

    def attrs(self) -> dict[str, str]:
        """The grouping as netCDF-safe attributes (see :func:`grouping_of`)."""
        attrs = {"grouping": self.kind}
        if self.kind == "season":
            attrs["seasons"] = json.dumps(self.seasons)
        if self.kind == "dayofyear":
            attrs["feb29"] = self.feb29 or "own"
        if self.kind in ("dayofyear", "time.dayofyear"):
            attrs["day_numbering"] = "360_day" if self.calendar == "360_day" else "366_day"
        return attrs

    def describe(self) -> str:
        """The grouping in words, with the arguments that make it."""
        return describe_grouping(self.attrs())


def describe_grouping(attrs: dict) -> str:
    """Words for grouping attributes (as :meth:`TimeGroups.attrs` writes them)."""
    kind = attrs.get("grouping")
    if kind == "season":
        return f"seasons {attrs.get('seasons')} (freq='season', seasons=...)"
    if kind == "dayofyear":
        return f"days by month and day (freq='dayofyear', feb29={attrs.get('feb29')!r})"
    if kind == "time.dayofyear":
        return "days by their ordinal number, 1 March being day 60 or 61 (freq='time.dayofyear')"
    if kind == "labels":
        return "labels given per time step (freq=array)"
    return f"{kind} (freq={kind!r})"


def grouping_of(obj) -> dict[str, str] | None:
    """The grouping attributes of a climatology (on it or on its group coordinate), or None."""
    for attrs in [obj.attrs] + [obj[d].attrs for d in obj.dims if d in obj.coords]:
        if "grouping" in attrs:
            return {k: attrs[k] for k in ("grouping", "seasons", "feb29", "day_numbering") if k in attrs}
    return None


def time_groups(time, freq="month", *, feb29="own", seasons=None) -> TimeGroups:
    """Group codes and labels of ``time`` for ``freq`` (see the module docstring).

    Parameters
    ----------
    time : xarray.DataArray
        1-D time coordinate, decoded or with CF ``units``/``calendar`` attributes.
    freq : str or array_like
        ``"month"``, ``"season"``, ``"dayofyear"``, ``"time.dayofyear"``,
        ``"time.month"``, ``"time.season"``, ``"annual"``, or one label per step.
    feb29 : {"own", "merge", "drop"}
        29 February in ``"dayofyear"`` groups.
    seasons : sequence of str or dict, optional
        Seasons for ``freq="season"``: strings of consecutive month initials
        (``"DJF"``, ``"JJAS"``) or ``{label: [month numbers]}``.
    """
    time = decoded_time(time)
    _check_spacing(time, freq)
    return groups_of_stamps(time, freq, feb29=feb29, seasons=seasons)


def groups_of_stamps(time, freq="month", *, feb29="own", seasons=None) -> TimeGroups:
    """As :func:`time_groups` for decoded dates in any order and spacing, such
    as the representative times of a climatology read from a file."""
    calendar = time.dt.calendar
    if not isinstance(freq, str):
        return _user_groups(time, freq, calendar)
    if freq not in _NAMED:
        raise ValueError(f"unknown freq {freq!r}; use one of {list(_NAMED)} or an array with one label per time step")
    if seasons is not None and freq != "season":
        raise ValueError(f"seasons= applies to freq='season' only, not freq={freq!r}")
    if freq == "annual":
        return TimeGroups(np.zeros(time.size, np.int64), np.array(["annual"]), None, calendar, True, "annual")
    if freq in ("month", "time.month"):
        return _compact(time.dt.month.values - 1, np.arange(1, 13), "month", calendar, kind="month")
    if freq == "time.season":
        return _season_groups(time, ("DJF", "JJA", "MAM", "SON"), calendar)
    if freq == "season":
        return _season_groups(time, DEFAULT_SEASONS if seasons is None else seasons, calendar)
    if freq == "time.dayofyear":
        table = np.arange(1, 361 if calendar == "360_day" else 367)
        possible = _possible_doy(calendar)
        return _compact(time.dt.dayofyear.values - 1, table, "dayofyear", calendar, possible, kind=freq)
    return _monthday_groups(time, feb29, calendar)


#: The widest time step (days) each grouping can split: a grouping finer than the data is meaningless.
_WIDEST_STEP = {"month": 32, "time.month": 32, "season": 93, "time.season": 93, "dayofyear": 27, "time.dayofyear": 27}


def _check_spacing(time, freq) -> None:
    if not isinstance(freq, str) or freq not in _WIDEST_STEP or time.size < 2:
        return
    days = step_days(time)
    if days < _WIDEST_STEP[freq]:
        return
    kind, needed, fix = {
        "month": ("monthly", "monthly", "'season' (seasonal data) or 'annual'"),
        "season": ("seasonal", "seasonal", "'annual'"),
    }.get(freq.removeprefix("time."), ("day-of-year", "daily", "'month'"))
    raise ValueError(
        f"freq={freq!r}: {kind} groups need {needed} (or finer) data, but the time steps are {days:.0f} days "
        f"apart, so the groups would be finer than the data; use freq={fix}"
    )


def decoded_time(time: xr.DataArray) -> xr.DataArray:
    """``time`` as decoded dates, checked to be 1-D, strictly increasing and unique."""
    if time.ndim != 1:
        raise ValueError(f"the time coordinate must be 1-D, got dimensions {time.dims}")
    if time.size == 0:
        raise ValueError("the time coordinate is empty")
    if time.dtype.kind in "iuf":
        time = _decode_numbers(time)
    elif time.dtype.kind != "M" and not (time.dtype.kind == "O" and hasattr(time.values[0], "calendar")):
        raise TypeError(
            f"time coordinate {time.name!r} has dtype {time.dtype}; pass dates (numpy datetime64 "
            "or cftime), e.g. decode the file with xr.open_dataset(..., use_cftime=True)"
        )
    index = time.to_index()
    missing = np.flatnonzero(index.isna())
    if missing.size:
        raise ValueError(
            f"the time coordinate has {missing.size} missing time(s) (NaT) at position(s) "
            f"{missing[:5].tolist()}{' ...' if missing.size > 5 else ''}: the file's time values or units could "
            f"not be decoded there; drop those steps (obj.isel({time.name or 'time'}=~obj.{time.name or 'time'}"
            ".isnull())) or fix the time axis (oceanflow.open_dataset(..., time_units=..., calendar=...))"
        )
    if not index.is_unique:
        dupes = index[index.duplicated()][:3]
        raise ValueError(f"time coordinate has duplicate times (e.g. {list(map(str, dupes))}); drop them first")
    if not index.is_monotonic_increasing:
        raise ValueError("time coordinate is not increasing; sort it first with obj.sortby('time')")
    return time


def step_days(time: xr.DataArray) -> float:
    """Median spacing of a decoded time coordinate, in days (inf for one step)."""
    if time.size < 2:
        return float("inf")
    values = time.values
    if values.dtype.kind == "M":
        days = np.diff(values) / np.timedelta64(1, "D")
    else:  # cftime (or datetime) objects: their differences one by one cost several times the fields
        days = np.diff(_microseconds(values)) / _MICROSECONDS_PER_DAY
    return float(np.median(days))


_MICROSECONDS_PER_DAY = 86_400_000_000


def _microseconds(dates: np.ndarray) -> np.ndarray:
    """Date objects (cftime, any calendar, or datetime) as int64 microseconds from their calendar's
    day ordinal 0: differences exact, as ``(b - a) / timedelta(microseconds=1)``."""

    def field(name: str) -> np.ndarray:
        return np.fromiter((getattr(d, name) for d in dates), np.int64, dates.size)

    days = np.fromiter((d.toordinal() for d in dates), np.int64, dates.size)
    clock = (field("hour") * 60 + field("minute")) * 60 + field("second")
    return days * _MICROSECONDS_PER_DAY + clock * 1_000_000 + field("microsecond")


# ---------------------------------------------------------------- helpers


def _decode_numbers(time):
    import cftime

    units = time.attrs.get("units", "")
    calendar = str(time.attrs.get("calendar", "standard")).lower()
    if " since " not in units:
        raise TypeError(
            f"time coordinate {time.name!r} holds numbers without CF units ('days since ...'); "
            "decode it with xr.decode_cf(ds) or assign dates"
        )
    if calendar not in CF_CALENDARS:
        raise ValueError(f"unknown calendar {calendar!r} of the time coordinate; CF calendars are {list(CF_CALENDARS)}")
    dates = cftime.num2date(time.values, units, calendar, only_use_cftime_datetimes=True)
    return time.copy(data=np.asarray(dates)).assign_attrs(
        {k: v for k, v in time.attrs.items() if k not in ("units", "calendar")}
    )


def _compact(keys, table, dim, calendar, possible=None, **grouping):
    """Codes into the present entries of ``table`` (in table order); key -1: no group."""
    keys = np.asarray(keys, np.int64)
    present = np.zeros(table.size, bool)
    present[keys[keys >= 0]] = True
    renumber = np.cumsum(present) - 1
    codes = np.where(keys >= 0, renumber[np.maximum(keys, 0)], -1).astype(np.int64)
    possible = np.ones(table.size, bool) if possible is None else possible
    return TimeGroups(codes, table[present], dim, calendar, bool(present[possible].all()), **grouping)


def _possible_doy(calendar):
    possible = np.ones(366 if calendar != "360_day" else 360, bool)
    if calendar in ("noleap", "365_day"):
        possible[365:] = False
    return possible


def _monthday_groups(time, feb29, calendar):
    if feb29 not in FEB29_POLICIES:
        raise ValueError(f"unknown feb29 policy {feb29!r}; use one of {list(FEB29_POLICIES)}")
    month = time.dt.month.values
    day = time.dt.day.values
    grouping = {"kind": "dayofyear", "feb29": feb29}
    if calendar == "360_day":
        return _compact(30 * (month - 1) + day - 1, np.arange(1, 361), "dayofyear", calendar, **grouping)
    if feb29 == "own":
        possible = np.ones(366, bool)
        if calendar in ("noleap", "365_day"):
            possible[59] = False
        return _compact(
            _LEAP_START[month - 1] + day - 1, np.arange(1, 367), "dayofyear", calendar, possible, **grouping
        )
    leap_day = (month == 2) & (day == 29)
    keys = _NOLEAP_START[month - 1] + np.where(leap_day, 28, day) - 1
    if feb29 == "drop":
        keys = np.where(leap_day, -1, keys)
    return _compact(keys, np.arange(1, 366), "dayofyear", calendar, **grouping)


def _season_groups(time, seasons, calendar):
    labels, months = _parse_seasons(seasons)
    month_to_season = np.full(12, -1, np.int64)
    for i, season_months in enumerate(months):
        for m in season_months:
            if month_to_season[m - 1] >= 0:
                raise ValueError(
                    f"month {m} is in seasons {labels[month_to_season[m - 1]]!r} and {labels[i]!r}; "
                    "seasons must not overlap"
                )
            month_to_season[m - 1] = i
    keys = month_to_season[time.dt.month.values - 1]
    definition = {str(label): [int(m) for m in ms] for label, ms in zip(labels, months, strict=True)}
    return _compact(keys, np.array(labels), "season", calendar, kind="season", seasons=definition)


def _parse_seasons(seasons):
    if isinstance(seasons, str):
        raise TypeError(f"seasons must be a sequence of seasons, not one string; use [{seasons!r}]")
    if isinstance(seasons, dict):
        labels = [str(k) for k in seasons]
        months = [list(v) for v in seasons.values()]
        for label, ms in zip(labels, months, strict=True):
            if not ms or any(not isinstance(m, (int, np.integer)) or not 1 <= m <= 12 for m in ms):
                raise ValueError(f"season {label!r} must list month numbers 1-12, got {ms}")
        return labels, months
    labels = list(seasons)
    return labels, [_months_of(label) for label in labels]


def _months_of(initials):
    """Months of a string of consecutive month initials, e.g. "DJF" -> [12, 1, 2]."""
    text = str(initials).upper()
    starts = [
        s for s in range(12) if 0 < len(text) <= 12 and all(_INITIALS[(s + i) % 12] == c for i, c in enumerate(text))
    ]
    if len(starts) != 1:
        why = "matches no run of consecutive months" if not starts else "is ambiguous"
        raise ValueError(
            f"season {initials!r} {why}; give seasons as consecutive month initials "
            "(e.g. 'DJF', 'JJAS') or as a dict {label: [month numbers]}"
        )
    return [(starts[0] + i) % 12 + 1 for i in range(len(text))]


def _user_groups(time, freq, calendar):
    labels = freq.values if isinstance(freq, xr.DataArray) else np.asarray(freq)
    if labels.ndim != 1 or labels.size != time.size:
        raise ValueError(
            f"freq given as labels must hold one label per time step ({time.size}), got shape {labels.shape}"
        )
    name = str(freq.name) if isinstance(freq, xr.DataArray) and freq.name not in (None, time.name) else "group"
    unique, codes = np.unique(labels, return_inverse=True)
    return TimeGroups(codes.astype(np.int64).reshape(-1), unique, name, calendar, True)
