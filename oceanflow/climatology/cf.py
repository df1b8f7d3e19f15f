"""CF metadata of climatologies (conventions 1.11, section 7.4) and their
climatological time axis in files.

In memory a climatology has a group dimension (``month``, ``season``,
``dayofyear``) whose coordinate records the grouping (see
:meth:`oceanflow.timegroups.TimeGroups.attrs`), the calendar and the period
the climatology covers.  In a file it has what CF prescribes and CDO and NCO
read: a ``time`` axis holding a representative date of each group, with a
``climatology`` attribute naming ``climatology_bounds`` (the first and last
of each group's periods: January of 1991-2020 is 1991-01-01 to 2020-02-01).
:func:`encode_climatology` and :func:`decode_climatology` turn one into the
other; ``oceanflow.save`` and ``oceanflow.open_dataset`` call them.

Example
-------
>>> time = xr.date_range("1991-01-01", "1992-12-31", freq="MS")
>>> groups = time_groups(xr.DataArray(time, dims="time"), "month")
>>> bounds, middles = group_bounds(groups.attrs(), groups.labels, period_of(time), "proleptic_gregorian")
>>> str(bounds[0, 0])[:10], str(bounds[0, 1])[:10]
('1991-01-01', '1992-02-01')
"""

from __future__ import annotations

import datetime
import json
import re

import numpy as np
import xarray as xr

from ..kernels.climatology import cell_method
from ..timegroups import groups_of_stamps, step_days, time_groups  # noqa: F401  (time_groups: docstring)

__all__ = [
    "CF_GROUPINGS",
    "with_cf_metadata",
    "climatological_cell_methods",
    "climatology_bounds",
    "period_of",
    "group_bounds",
    "encode_climatology",
    "decode_climatology",
    "anomaly_attrs",
]

#: Groupings that a CF climatological time axis can hold (a representative date per group).
CF_GROUPINGS = ("month", "season", "dayofyear", "time.dayofyear")

_LONG_NAMES = {
    "month": "month of the year",
    "season": "season",
    "dayofyear": "day of the year by calendar month and day",
    "time.dayofyear": "ordinal day of the year",
    "labels": "group",
}
BOUNDS = "climatology_bounds"
_PERIOD = "climatology_period"

#: Attributes of the quantile coordinate of order statistics (0.9: the 90th percentile).
QUANTILE_ATTRS = {"long_name": "quantile: fraction of the values at or below the result", "units": "1"}


# ---------------------------------------------------------------- metadata of results


def with_cf_metadata(out: xr.DataArray, plan, gdim: str) -> xr.DataArray:
    """Cell methods, the grouping and the group coordinate of one climatology."""
    out.attrs["cell_methods"] = climatological_cell_methods(
        out.attrs.get("cell_methods"), plan.dim, cell_method(plan.stat), plan.one_step_per_year
    )
    grouping = plan.groups.attrs()
    out.attrs.update(grouping)
    coord = xr.Variable(gdim, plan.groups.labels, _group_attrs(grouping, plan.calendar, plan.period))
    return out.assign_coords({gdim: coord})


def _group_attrs(grouping: dict, calendar: str, period) -> dict:
    kind = grouping["grouping"]
    attrs = {"long_name": _LONG_NAMES.get(str(kind), str(kind)), **grouping}
    if kind in CF_GROUPINGS:
        attrs["calendar"] = calendar
        attrs[_PERIOD] = f"{_iso(period[0])}/{_iso(period[1])}"
    return attrs


def climatological_cell_methods(previous: str | None, dim: str, method: str, one_step_per_year: bool) -> str:
    """CF ``cell_methods`` of a climatology, each operation said once.

    The input's own entry along ``dim`` (``"time: mean"`` of monthly means)
    is the operation within years when the data hold one step per group and
    year, and is dropped when it repeats the climatology's statistic.
    """
    entries = _cell_method_entries(previous or "")
    along = [e for e in entries if e.split()[0] == f"{dim}:" and len(e.split()) == 2]
    other = [e for e in entries if e not in along]
    within = method
    if along and one_step_per_year:
        within = along[-1].split()[1]
        along = along[:-1]
    kept = [e for e in along if e.split()[1] != method]
    cell = f"{dim}: {within} within years {dim}: {method} over years"
    return " ".join(other + kept + [cell])


def _cell_method_entries(text: str) -> list[str]:
    """``"area: mean time: maximum (interval: 1 day)"`` -> its entries, one per operation."""
    entries: list[list[str]] = []
    depth = 0
    for token in text.split():
        starts = depth == 0 and token.endswith(":") and (not entries or not entries[-1][-1].endswith(":"))
        if starts or not entries:
            entries.append([])
        entries[-1].append(token)
        depth += token.count("(") - token.count(")")
    return [" ".join(e) for e in entries]


def climatology_bounds(plan, gdim: str) -> xr.DataArray:
    """CF climatology bounds (group, nv): the start of each group's first period and the end of its last."""
    bounds, _ = group_bounds(plan.groups.attrs(), plan.groups.labels, plan.period, plan.calendar)
    return xr.DataArray(
        bounds,
        dims=(gdim, "nv"),
        attrs={"long_name": "start of the first and end of the last period of each climatological group"},
    )


#: CF standard names of differences from a climatology (the table's "..._anomaly" names).
_CF_ANOMALY_NAMES = {
    name: f"{name}_anomaly"
    for name in (
        "air_temperature",
        "brightness_temperature",
        "sea_water_temperature",
        "surface_temperature",
        "geopotential_height",
        "air_pressure",
    )
}
_TEMPERATURE_UNITS = {"K", "kelvin", "degC", "degree_Celsius", "celsius", "degF", "degree_Fahrenheit", "degrees_C"}
#: Attributes that describe the values' scale or the grouping of a climatology, not an anomaly.
_NOT_FOR_ANOMALIES = ("valid_min", "valid_max", "valid_range", "actual_range", "grouping", "seasons", "feb29")


def anomaly_attrs(attrs: dict, kind: str, name=None) -> dict:
    """Attributes of an anomaly of data with ``attrs``: ``long_name`` "... anomaly",
    a CF anomaly ``standard_name`` where one exists (else none), and the units
    of ``kind`` (the data's for absolute anomalies, with CF 1.11's
    ``units_metadata: "temperature: difference"`` for temperatures; 1 otherwise)."""
    out = {k: v for k, v in attrs.items() if k not in _NOT_FOR_ANOMALIES + ("standard_name", "long_name", "units")}
    quantity = attrs.get("long_name") or str(attrs.get("standard_name", "")).replace("_", " ") or name or "data"
    out["long_name"] = {
        "absolute": f"{quantity} anomaly",
        "relative": f"{quantity} relative to its climatology",
        "standardized": f"standardized {quantity} anomaly",
    }[kind]
    if kind == "absolute":
        standard = _CF_ANOMALY_NAMES.get(str(attrs.get("standard_name")))
        if standard:
            out["standard_name"] = standard
        if "units" in attrs:
            out["units"] = attrs["units"]
            if str(attrs["units"]).strip() in _TEMPERATURE_UNITS:
                out["units_metadata"] = "temperature: difference"
    else:
        out["units"] = "1"
        out.pop("units_metadata", None)
    return out


# ---------------------------------------------------------------- periods and bounds


def period_of(time, bounds=None) -> tuple:
    """The time covered by a decoded time axis: the start of its first cell and
    the end of its last.  Cells are ``bounds`` (a CF bounds variable, e.g.
    ``time_bnds``) when given, else calendar days for daily and finer data,
    calendar months for monthly data, calendar years for annual data, and
    half-way to the neighbouring steps otherwise."""
    values = np.asarray(time)
    if bounds is not None:
        edges = np.asarray(bounds)
        return min(edges[0]), max(edges[-1])
    days = step_days(xr.DataArray(values, dims="time")) if values.size > 1 else 1.0
    first, last = values[0], values[-1]
    if days < 27:
        return _day(first), _plus_days(_day(last), 1)
    if days <= 32:
        return _month_start(first, 0), _month_start(last, 1)
    if 360 <= days <= 367:
        return _date(first, _ymd(first)[0], 1, 1), _date(last, _ymd(last)[0] + 1, 1, 1)
    half = (values[-1] - values[0]) / (2 * (values.size - 1))
    return first - half, last + half


def group_bounds(grouping: dict, labels, period, calendar: str):
    """Climatology bounds (group, 2) and a representative date of each group.

    Each group's bounds run from the start of its first day in ``period`` to
    the end of its last; its representative date is the middle of its first
    run of consecutive days (15-16 January for January, 12:00 for a day).
    """
    start, end = period
    days = _days(start, end, calendar)
    freq = grouping["grouping"]
    seasons = json.loads(grouping["seasons"]) if freq == "season" else None
    groups = groups_of_stamps(days, freq, feb29=grouping.get("feb29", "own"), seasons=seasons)
    position = {label: i for i, label in enumerate(groups.labels.tolist())}
    values = days.values
    bounds = np.empty((len(labels), 2), dtype=values.dtype)
    middles = np.empty(len(labels), dtype=values.dtype)
    for i, label in enumerate(np.asarray(labels).tolist()):
        steps = np.flatnonzero(groups.codes == position.get(label, -1))
        if steps.size == 0:
            raise ValueError(f"group {label!r} does not occur between {_iso(start)} and {_iso(end)}")
        run_end = int(np.argmax(np.append(np.diff(steps) != 1, True)))  # last step of the first run
        first, last = values[steps[0]], _plus_days(values[steps[-1]], 1)
        bounds[i] = max(first, start), min(last, end)
        run_last = _plus_days(values[steps[run_end]], 1)
        middles[i] = bounds[i, 0] + (min(run_last, end) - bounds[i, 0]) / 2
    return bounds, middles


def _days(start, end, calendar: str) -> xr.DataArray:
    """Every calendar day from the day of ``start`` to the one before ``end`` (or that of ``end``)."""
    first, last = _day(start), _day(end)
    if last == end:
        last = _plus_days(last, -1)
    use_cftime = not isinstance(start, np.datetime64)
    index = xr.date_range(first, last, freq="D", calendar=calendar, use_cftime=use_cftime)
    if not use_cftime:
        index = index.values
    return xr.DataArray(np.asarray(index), dims="time")


def _plus_days(value, days: int):
    if isinstance(value, np.datetime64):
        return value + np.timedelta64(days, "D")
    return value + datetime.timedelta(days=days)


def _ymd(value) -> tuple[int, int, int]:
    if isinstance(value, np.datetime64):
        text = str(value.astype("datetime64[D]"))
        match = re.match(r"(-?\d+)-(\d+)-(\d+)", text)
        if match is None:
            raise ValueError(f"cannot read the date {text!r}")
        year, month, day = match.groups()
        return int(year), int(month), int(day)
    return value.year, value.month, value.day


def _date(like, year: int, month: int, day: int):
    """Midnight of a date, of the same type as ``like``."""
    if isinstance(like, np.datetime64):
        return np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "ns")
    return like.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0)


def _day(value):
    return _date(value, *_ymd(value))


def _month_start(value, months_on: int):
    year, month, _ = _ymd(value)
    index = year * 12 + month - 1 + months_on
    return _date(value, index // 12, index % 12 + 1, 1)


def _iso(value) -> str:
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[s]"))
    return value.isoformat()


def _parse(text: str, calendar: str, numpy: bool):
    if numpy:
        return np.datetime64(text, "ns")
    return xr.date_range(text, periods=1, calendar=calendar, use_cftime=True)[0]


# ---------------------------------------------------------------- files


def encode_climatology(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its group dimension as a CF climatological ``time`` axis
    (representative dates, ``climatology`` attribute, ``climatology_bounds``),
    sorted by date; unchanged when it holds no climatology or has a ``time``."""
    gdim = _group_dim(ds)
    if gdim is None or "time" in ds.variables or "time" in ds.dims:
        return ds
    attrs = dict(ds[gdim].attrs)
    calendar = attrs.pop("calendar")
    text_start, text_end = attrs.pop(_PERIOD).split("/")
    numpy = calendar == "proleptic_gregorian" and _fits_numpy(text_start, text_end)
    period = (_parse(text_start, calendar, numpy), _parse(text_end, calendar, numpy))
    bounds, middles = group_bounds(attrs, ds[gdim].values, period, calendar)
    order = np.argsort(middles, kind="stable")
    out = ds.drop_vars([BOUNDS], errors="ignore").isel({gdim: order})
    out = out.drop_vars(gdim).rename_dims({gdim: "time"})
    attrs.pop("long_name", None)
    attrs.pop("climatology", None)
    time_attrs = {
        "standard_name": "time",
        "long_name": f"climatological time: a representative date of each {_LONG_NAMES[attrs['grouping']]} group",
        "axis": "T",
        "climatology": BOUNDS,
        **attrs,
    }
    out = out.assign_coords(time=xr.Variable("time", middles[order], time_attrs))
    out[BOUNDS] = xr.Variable(("time", "nv"), bounds[order])
    units = f"days since {_iso(period[0]).replace('T', ' ')}"
    for name in ("time", BOUNDS):
        out[name].encoding.update(units=units, calendar=calendar, dtype="float64", _FillValue=None)
    return out


def _fits_numpy(*texts: str) -> bool:
    try:
        return all(np.datetime64("1678-01-01") < np.datetime64(t) < np.datetime64("2262-01-01") for t in texts)
    except ValueError:
        return False


def _group_dim(ds: xr.Dataset) -> str | None:
    for dim in ds.dims:
        attrs = ds[dim].attrs if dim in ds.coords else {}
        if attrs.get("grouping") in CF_GROUPINGS and _PERIOD in attrs and "calendar" in attrs:
            return str(dim)
    return None


def decode_climatology(ds: xr.Dataset) -> xr.Dataset:
    """A file's CF climatological time axis written by oceanflow back as the
    group dimension the API returns (``month``, ``season``, ``dayofyear``);
    ``ds`` unchanged when it has none."""
    tdim = next(
        (
            d
            for d in ds.dims
            if d in ds.coords and "climatology" in ds[d].attrs and ds[d].attrs.get("grouping") in CF_GROUPINGS
        ),
        None,
    )
    if tdim is None or ds[tdim].dtype.kind not in "MO":
        return ds
    time = ds[tdim]
    grouping = {k: time.attrs[k] for k in ("grouping", "seasons", "feb29", "day_numbering") if k in time.attrs}
    freq = grouping["grouping"]
    seasons = json.loads(grouping["seasons"]) if freq == "season" else None
    groups = groups_of_stamps(time, freq, feb29=grouping.get("feb29", "own"), seasons=seasons)
    if np.any(groups.codes < 0) or np.unique(groups.codes).size != groups.codes.size:
        return ds  # not one step per group: leave the time axis as it is
    bounds_name = time.attrs["climatology"]
    order = np.argsort(groups.codes, kind="stable")
    out = ds.isel({tdim: order})
    gdim = groups.dim
    calendar = time.encoding.get("calendar", time.dt.calendar)
    extra = {"climatology": BOUNDS} if bounds_name in ds else {}
    if bounds_name in ds:
        edges = ds[bounds_name].values
        period = (edges[:, 0].min(), edges[:, 1].max())
    else:
        period = (time.values.min(), time.values.max())
    attrs = {**_group_attrs(grouping, calendar, period), **extra}
    out = out.drop_vars(tdim).rename_dims({tdim: gdim}).assign_coords({gdim: xr.Variable(gdim, groups.labels, attrs)})
    for var in out.variables.values():  # storage chunks read from the file, by dimension name
        preferred = var.encoding.get("preferred_chunks")
        if preferred and tdim in preferred:
            var.encoding["preferred_chunks"] = {gdim if k == tdim else k: v for k, v in preferred.items()}
    if bounds_name in out and bounds_name != BOUNDS:
        out = out.rename_vars({bounds_name: BOUNDS})
    if BOUNDS in out:
        out[BOUNDS].attrs = {"long_name": "start of the first and end of the last period of each climatological group"}
        out[BOUNDS].encoding = {}
    return out
