"""Checked arguments of one climatology: time axis, base period, groups, weights, kernel."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from .._dtypes import check_real_numeric
from ..kernels.climatology import AGGREGATIONS
from ..timegroups import decoded_time, step_days, time_groups
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
        self.weights = self._weights(weights, obj)
        self.smooth = self._smooth(smooth, freq)

    def select(self, obj):
        """``obj`` restricted to the base period (and with decoded times)."""
        if self.base is None:
            return obj.assign_coords({self.dim: time_of(obj, self.dim)})
        obj = obj.assign_coords({self.dim: time_of(obj, self.dim)})
        start, end = _base_pair(self.base)
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
            weights = self.select(weights.to_dataset(name="_w"))["_w"] if self.base is not None else weights
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


def _base_pair(base):
    if not isinstance(base, (tuple, list)) or len(base) != 2:
        raise ValueError(f"base must be a (start, end) pair such as ('1991-01-01', '2020-12-31'), got {base!r}")
    return base[0], base[1]


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
