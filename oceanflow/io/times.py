"""Decoding real-world time axes: overrides, calendar months and years, errors that say the fix.

Files are opened with ``decode_times=False`` and their time axes decoded here:

* ``time_units=`` and ``calendar=`` override or complete the file's ``units``
  and ``calendar`` attributes (a :class:`TimeAxisWarning` says what changed);
* ``"months since ..."`` and ``"years since ..."`` are calendar months and years
  on every calendar, as CDO reads them: whole months advance the month of the
  reference date (a day past the month's end runs into the next month), a
  fraction is that part of the month reached; they are re-encoded as
  ``"days since ..."`` with the same reference date (with a note);
* a time axis that cannot be decoded (no units, ``"days"`` without a reference
  date, an unknown calendar) raises :class:`TimeDecodingError`, quoting the
  attributes found and the option that fixes it;
* the CF ``bounds`` of a time axis (``time_bnds``) are decoded as the axis.

Example
-------
>>> import numpy as np, xarray as xr
>>> raw = xr.Dataset(coords={"time": ("time", np.arange(3.0), {"units": "months since 1958-1-1"})})
>>> decoded, notes = decode_times(raw, "f.nc")
>>> decoded.time.dt.strftime("%Y-%m-%d").values.tolist()
['1958-01-01', '1958-02-01', '1958-03-01']
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from ..timegroups import CF_CALENDARS

__all__ = ["CALENDARS", "TimeAxisWarning", "TimeDecodingError", "check_time_options", "decode_times"]

#: The calendars a time axis may name: the CF calendars, and ``"none"`` (CF 1.11, section 4.4.1:
#: a time axis no calendar counts, which can be read but not grouped by month or day of year).
CALENDARS = (*CF_CALENDARS, "none")

_SINCE = re.compile(r"^\s*(?P<unit>[A-Za-z_]+)\s+since\s+(?P<reference>\S.*?)\s*$")
_MONTHS = {"month": 1, "months": 1, "year": 12, "years": 12}
_UNITS = (
    "days",
    "day",
    "d",
    "hours",
    "hour",
    "hr",
    "h",
    "minutes",
    "minute",
    "min",
    "seconds",
    "second",
    "sec",
    "s",
    "milliseconds",
    "microseconds",
    "nanoseconds",
    *_MONTHS,
)


class TimeAxisWarning(UserWarning):
    """A file's time encoding was changed or completed while decoding it."""


class TimeDecodingError(ValueError):
    """A time axis could not be decoded; the message names the option that fixes it."""


def check_time_options(time_units: str | None, calendar: str | None) -> None:
    """Refuse ``time_units``/``calendar`` values that cannot be a CF time encoding."""
    if time_units is not None:
        match = _SINCE.match(time_units) if isinstance(time_units, str) else None
        if match is None or match["unit"].lower() not in _UNITS:
            raise ValueError(
                f"time_units={time_units!r} is not a CF time unit: give 'UNIT since DATE', e.g. "
                "'days since 1850-01-01' or 'months since 1958-01-01' (UNIT: days, hours, minutes, "
                "seconds, months or years)"
            )
    if calendar is not None and (not isinstance(calendar, str) or calendar.lower() not in CALENDARS):
        raise ValueError(f"calendar={calendar!r} is not a CF calendar; use one of {', '.join(CALENDARS)}")


def decode_times(
    ds: xr.Dataset,
    source: object,
    *,
    time_units: str | None = None,
    calendar: str | None = None,
    decode: bool | Any = True,
) -> tuple[xr.Dataset, list[tuple[str, str]]]:
    """Decode the time axes of ``ds`` (opened with ``decode_times=False``) from file ``source``.

    Returns the Dataset and the notes on what was changed, as (kind, text)
    pairs (the caller warns once per kind for several files).  With ``decode=False`` the overrides are only
    written into the attributes.  ``decode`` may also be an
    ``xarray.coders.CFDatetimeCoder`` to choose cftime or the resolution.
    """
    check_time_options(time_units, calendar)
    notes: list[tuple[str, str]] = []
    coder = decode if isinstance(decode, xr.coders.CFDatetimeCoder) else xr.coders.CFDatetimeCoder(use_cftime=None)
    updates: dict[Hashable, xr.Variable] = {}
    for name in _time_axes(ds):
        axis = ds.variables[name]
        attrs = _encoding_attrs(axis.attrs, time_units, calendar, source, name, notes)
        related = [name, *_bounds_of(ds, name)]
        if not decode:
            updates.update({n: _with_attrs(ds.variables[n], attrs) for n in related})
            continue
        for target in related:
            updates[target] = _decode_axis(ds.variables[target], attrs, coder, source, name, notes)
    for name, var in ds.variables.items():
        if decode and name not in updates and " since " in str(var.attrs.get("units", "")):
            updates[name] = _decode_other(var, coder, source, name, notes)
    if not updates:
        return ds, notes
    coords = {n: v for n, v in updates.items() if n in ds.coords}
    data = {n: v for n, v in updates.items() if n not in ds.coords}
    return ds.assign_coords(coords).assign(data), notes


def _time_axes(ds: xr.Dataset) -> list[Hashable]:
    """1-D dimension coordinates that are time axes by name, ``axis``, ``standard_name`` or units."""
    found = []
    for name, var in ds.variables.items():
        if var.dims != (name,):
            continue
        attrs = var.attrs
        if (
            name == "time"
            or attrs.get("axis") == "T"
            or attrs.get("standard_name") == "time"
            or " since " in str(attrs.get("units", ""))
        ):
            found.append(name)
    return found


def _bounds_of(ds: xr.Dataset, name: Hashable) -> list[Hashable]:
    attrs = ds.variables[name].attrs
    return [attrs[key] for key in ("bounds", "climatology") if attrs.get(key) in ds.variables]


def _encoding_attrs(attrs, time_units, calendar, source, name, notes) -> dict:
    """The axis's ``units`` and ``calendar`` after the overrides, with a note for each change."""
    found = {key: attrs.get(key) for key in ("units", "calendar")}
    result = dict(found)
    for key, given, option in (("units", time_units, "time_units"), ("calendar", calendar, "calendar")):
        if given is None or given == found[key]:
            continue
        result[key] = given
        what = f"{key} {found[key]!r} replaced by" if found[key] is not None else f"no {key}: completed with"
        notes.append((f"{name}-{key}", f"{source}: time axis {name!r}: {what} {option}={given!r}"))
    return result


def _with_attrs(var: xr.Variable, attrs: dict) -> xr.Variable:
    new = var.copy(deep=False)
    new.attrs.update({k: v for k, v in attrs.items() if v is not None})
    return new


def _decode_axis(var: xr.Variable, attrs: dict, coder, source, axis: Hashable, notes: list) -> xr.Variable:
    """Decode ``var`` (the axis or its bounds) with the axis's ``attrs``, or say how to fix it."""
    units, calendar = attrs.get("units"), attrs.get("calendar")
    if var.dtype.kind not in "iuf":
        return var  # already dates (or text, which is not CF)
    match = _SINCE.match(str(units)) if units is not None else None
    if match is None or match["unit"].lower() not in _UNITS:
        raise _undecodable(source, axis, attrs, _reason(units))
    if calendar is not None and str(calendar).lower() not in CALENDARS:
        raise _undecodable(source, axis, attrs, f"unknown calendar; CF calendars: {', '.join(CALENDARS)}")
    var = _with_attrs(var.load() if var.size < 10**7 else var, attrs)
    months = match["unit"].lower() in _MONTHS
    if months:
        var = _calendar_months_as_microseconds(var, match, calendar or "standard", source, axis, notes)
    try:
        decoded = coder.decode(var, name=axis)
        decoded.values  # noqa: B018 - decode now, so that errors name the file here
    except (ValueError, TypeError, OverflowError) as err:
        raise _undecodable(source, axis, attrs, str(err).split(". Try")[0]) from None
    if months:  # as other files decode (nanoseconds); outputs in days since the same reference date
        encoding = {**decoded.encoding, "units": f"days since {match['reference']}", "dtype": np.dtype("f8")}
        if decoded.dtype.kind == "M":
            decoded = decoded.astype("datetime64[ns]")
        decoded.encoding = encoding
    return decoded


def _reason(units) -> str:
    if units is None:
        return "no units attribute"
    if str(units).strip().lower() in _UNITS:
        return "no reference date"
    return "not 'UNIT since DATE'"


def _undecodable(source, axis, attrs, reason) -> TimeDecodingError:
    found = ", ".join(f"{key}={value!r}" for key, value in attrs.items() if value is not None)
    found = found or "neither units nor calendar attributes"
    unit = str(attrs.get("units") or "days").split()[0]
    unit = unit if unit.lower() in _UNITS else "days"
    if "calendar" in reason:
        fix = "the calendar: calendar='standard' (or the model's) to open_dataset, or --calendar standard in the CLI"
    else:
        example = f"{unit} since YYYY-MM-DD"
        fix = f"its reference date: time_units='{example}' to open_dataset, or --time-units '{example}' in the CLI"
    return TimeDecodingError(
        f"cannot decode the time axis {axis!r} of {source}: {found} ({reason}). Give {fix}; "
        "or decode_times=False to keep the numbers"
    )


def _calendar_months_as_microseconds(var, match, calendar, source, axis, notes) -> xr.Variable:
    """``months/years since REF`` values as whole ``microseconds since REF``, counting calendar
    months as CDO does (exact to the microsecond, where float days would miss a second)."""
    import cftime

    reference = match["reference"]
    try:
        start = cftime.num2date(0, f"days since {reference}", calendar=calendar)
    except (ValueError, TypeError) as err:
        raise _undecodable(source, axis, var.attrs, f"reference date: {err}") from None
    months = np.asarray(var.values, dtype="f8") * _MONTHS[match["unit"].lower()]
    days = np.full(months.shape, np.nan)
    valid = np.isfinite(months)
    whole = np.trunc(months[valid])  # towards zero: -0.5 is half the reference month back, as CDO
    fraction = months[valid] - whole
    absolute = start.year * 12 + (start.month - 1) + whole.astype(np.int64)
    first_of_month = f"days since {start.year:04d}-{start.month:02d}-01"
    unique, inverse = np.unique(absolute, return_inverse=True)

    def month_start(total):
        year, month = divmod(int(total), 12)
        return cftime.date2num(cftime.datetime(year, month + 1, 1, calendar=calendar), first_of_month, calendar)

    starts = np.array([month_start(t) for t in unique], dtype="f8")
    lengths = np.array([month_start(t + 1) for t in unique], dtype="f8") - starts
    days[valid] = starts[inverse] + fraction * lengths[inverse]
    notes.append(
        (
            f"{axis}-months",
            f"{source}: time axis {axis!r} has units {match.string!r}: decoded as calendar months"
            f"{' (12 per year)' if _MONTHS[match['unit'].lower()] == 12 else ''}, as CDO does, "
            f"and written as 'days since {reference}' in outputs",
        )
    )
    microseconds = np.round(days * 86_400e6)
    return xr.Variable(var.dims, microseconds, {**var.attrs, "units": f"microseconds since {reference}"}, var.encoding)


def _decode_other(var: xr.Variable, coder, source, name, notes) -> xr.Variable:
    """Other variables with dates (e.g. a forecast reference time): decoded, or kept as numbers."""
    try:
        decoded = coder.decode(var.load(), name=name)
        decoded.values  # noqa: B018
        return decoded
    except (ValueError, TypeError, OverflowError) as err:
        text = f"{source}: variable {name!r} kept as numbers: its dates cannot be decoded ({err})"
        notes.append((f"{name}-kept", text))
        return var
