"""Checked arguments of one climatology: time axis, base period, groups, weights, kernel."""

from __future__ import annotations

import datetime
import re

import numpy as np
import xarray as xr

from .._dtypes import check_real_numeric
from ..alignment import align
from ..kernels.climatology import AGGREGATIONS
from ..timegroups import decoded_time, step_days, time_groups
from .cf import period_of
from .pooling import statistic_options


class Plan:
    """Validated arguments of one climatology: groups, weights, kernels."""

    def __init__(
        self, obj, freq, stat, dim, base, min_count, weights, smooth, ddof, feb29, seasons, split_every, **options
    ):
        # the statistic, and q=, method=, window= (see pooling.statistic_options)
        self.options = statistic_options(stat, freq, **options)
        self.statistic = self.options.statistic
        if not isinstance(min_count, (int, np.integer)) or min_count < 0:
            raise ValueError(f"min_count must be a non-negative integer, got {min_count!r}")
        if not isinstance(ddof, (int, np.integer)) or ddof < 0:
            raise ValueError(f"ddof must be a non-negative integer, got {ddof!r}")
        self.stat, self.dim, self.min_count, self.ddof = stat, dim, int(min_count), int(ddof)
        self.base, self.split_every = base, split_every
        # an unweighted mean needs no sum of weights: 2 partials per group instead of 3
        self.kernel = "mean_unweighted" if stat == "mean" and weights is None else stat
        self.aggregation = AGGREGATIONS.get(self.kernel)
        time = time_of(obj, dim)
        self.time = self.select(time.to_dataset(name="_t"))[dim] if base is not None else time
        self.groups = time_groups(self.time, freq, feb29=feb29, seasons=seasons)
        self.calendar = self.time.dt.calendar
        self.period = period_of(self.time.values, self._time_bounds(obj))
        self.one_step_per_year = _one_step_per_year(self.groups.codes, self.time.dt.year.values)
        self.weights = self._weights(weights, obj)
        self.smooth = self._smooth(smooth, freq)

    def _time_bounds(self, obj):
        """The CF bounds of the time steps (e.g. ``time_bnds``) of a Dataset, over the base period."""
        name = obj[self.dim].attrs.get("bounds", obj[self.dim].encoding.get("bounds"))
        if not isinstance(obj, xr.Dataset) or name not in obj.variables or obj[name].ndim != 2:
            return None
        bounds = self.select(obj[[name]])[name]
        return bounds.values if bounds.dtype.kind in "MO" else None

    def select(self, obj):
        """``obj`` restricted to the base period (and with decoded times)."""
        if self.base is None:
            return obj.assign_coords({self.dim: time_of(obj, self.dim)})
        obj = obj.assign_coords({self.dim: time_of(obj, self.dim)})
        start, end = _base_pair(self.base)
        _check_base_parses(obj.indexes[self.dim], start, end)
        years = obj[self.dim].dt.year.values
        for label, bound in (("start", start), ("end", end)):
            year = _year_of(bound)
            if year is not None and not years[0] <= year <= years[-1]:
                raise ValueError(
                    f"base period {label} {bound!r} is outside the data ({years[0]}-{years[-1]}); "
                    "choose a base period within the data"
                )
        selected = obj.sel({self.dim: slice(start, end)})
        if selected.sizes[self.dim] == 0:
            raise ValueError(f"base period {self.base!r} selects no time step; choose one within the data")
        return selected

    def _weights(self, weights, obj):
        if weights is None:
            return np.ones(self.time.size)
        if not self.statistic.weighted:
            raise ValueError(f"weights apply to stat='mean' and 'sum', not {self.stat!r}")
        if isinstance(weights, str):
            if weights != "days_in_month":
                raise ValueError(f"unknown weights {weights!r}; use 'days_in_month' or an array of weights")
            if not 27 <= step_days(self.time) <= 32:
                raise ValueError(
                    f"weights='days_in_month' is for monthly data, but the time steps are "
                    f"{step_days(self.time):.1f} days apart"
                )
            return self.time.dt.days_in_month.values.astype(np.float64)
        if isinstance(weights, xr.DataArray):
            if weights.dims != (self.dim,):
                raise ValueError(f"weights must be one value per time step along {self.dim!r}, got dims {weights.dims}")
            _, weights = align(time_of(obj, self.dim), weights, names=("data", "weights"))
            if self.base is not None:
                weights = self.select(weights.to_dataset(name="_w"))["_w"]
        values = np.asarray(weights)
        check_real_numeric(values.dtype, "weights")
        if values.shape != (self.time.size,):
            raise ValueError(f"weights must hold one value per time step ({self.time.size}), got shape {values.shape}")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("weights must be finite and non-negative")
        return values.astype(np.float64)

    def _smooth(self, smooth, freq):
        if smooth is None:
            return None
        if not isinstance(freq, str) or freq not in ("dayofyear", "time.dayofyear"):
            raise ValueError(f"smooth= applies to daily climatologies (freq='dayofyear'), not freq={freq!r}")
        if self.stat == "count":
            raise ValueError("smooth= does not apply to stat='count'")
        if not isinstance(smooth, (int, np.integer)) or smooth < 0:
            raise ValueError(f"smooth must be a non-negative number of harmonics, got {smooth!r}")
        if not self.groups.complete:
            raise ValueError(
                "smooth= needs every day of the annual cycle, but some day-of-year groups have no time "
                "step (e.g. 29 February without a leap year); use feb29='merge' or a longer base period"
            )
        return int(smooth)

    def params(self):
        return np.array([self.min_count, self.ddof], np.float64)


def time_of(obj, dim):
    if dim not in obj.dims:
        raise ValueError(f"no dimension {dim!r} in {tuple(obj.dims)}; name the time dimension with dim=")
    if dim not in obj.coords:
        raise ValueError(f"dimension {dim!r} has no coordinate; assign the dates with obj.assign_coords({dim}=...)")
    return decoded_time(obj[dim])


_DATE_TYPES = (str, datetime.date, np.datetime64)


def _base_pair(base):
    example = "such as ('1991', '2020') or ('1991-01-01', '2020-12-31')"
    if not isinstance(base, (tuple, list)) or len(base) != 2:
        raise ValueError(f"base must be a (start, end) pair {example}, got {base!r}")
    for bound in base:
        if bound is not None and not isinstance(bound, _DATE_TYPES) and not hasattr(bound, "calendar"):
            raise TypeError(
                f"base holds {bound!r} ({type(bound).__name__}); give the period's start and end as dates "
                f"or strings {example}"
                + (
                    f": base=({base[0]!r}, {base[1]!r}) becomes base=('{base[0]}', '{base[1]}')"
                    if _numbers(base)
                    else ""
                )
            )
    return base[0], base[1]


def _numbers(base) -> bool:
    return all(isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool) for b in base)


def _check_base_parses(index, start, end) -> None:
    """A clear error for a bound that is no date (``"abc"``), rather than pandas' slicing message."""
    for label, bound in (("start", start), ("end", end)):
        if bound is None:
            continue
        try:
            index.slice_indexer(bound, bound)
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(
                f"base period {label} {bound!r} is not a date ({err}); give dates or years as strings, "
                "such as ('1991', '2020') or ('1991-01-01', '2020-12-31')"
            ) from None


def _year_of(bound):
    if bound is None:
        return None
    if hasattr(bound, "year"):
        return int(bound.year)
    match = re.match(r"\s*(-?\d{1,4})", str(bound))
    return int(match.group(1)) if match else None


def check_dataarray(obj, name):
    if not isinstance(obj, xr.DataArray):
        raise TypeError(
            f"{name} must be an xarray DataArray or Dataset, got {type(obj).__name__}; "
            "wrap arrays with xr.DataArray(data, dims=..., coords={'time': ...})"
        )
    check_real_numeric(obj.dtype, f"data {obj.name or ''}".strip())


def _one_step_per_year(codes, years) -> bool:
    """Whether each group holds at most one time step per year (e.g. monthly data in months)."""
    valid = codes >= 0
    pairs = codes[valid].astype(np.int64) * 100_000 + (years[valid] - years.min())
    return bool(np.unique(pairs).size == pairs.size)
