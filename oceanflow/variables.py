"""Which variables of a Dataset are fields to compute on, and which only describe them.

Dataset-wide operations (``polyval``, ``climatology``, ``anomaly``,
``detrend``, the command line) process *fields*: numeric data variables
that are not CF bounds.  CF bounds variables (named by another variable's
``bounds`` or ``climatology`` attribute, e.g. ``lat_bnds``, ``time_bnds``),
non-numeric variables and, for operations along a dimension, variables
without that dimension are left alone: carried to the output where they
still apply (grid bounds) and dropped where they do not (``time_bnds``
after a climatology).

Example
-------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"tos": (("time", "lat"), np.zeros((2, 3))), "lat_bnds": (("lat", "bnds"), np.zeros((3, 2))),
...                  "area": ("lat", np.ones(3))}, coords={"lat": ("lat", [0.0, 1.0, 2.0], {"bounds": "lat_bnds"})})
>>> fields(ds), fields(ds, dim="time"), sorted(bounds_names(ds))
(['tos', 'area'], ['tos'], ['lat_bnds'])
"""

from __future__ import annotations

from collections.abc import Hashable

import xarray as xr

__all__ = ["bounds_names", "fields", "carried"]

_BOUNDS_ATTRIBUTES = ("bounds", "climatology")


def bounds_names(ds: xr.Dataset) -> set[str]:
    """Names of the CF bounds variables of ``ds`` (named by a ``bounds`` or ``climatology`` attribute)."""
    names = set()
    for var in ds.variables.values():
        for key in _BOUNDS_ATTRIBUTES:
            value = var.attrs.get(key, var.encoding.get(key))
            if isinstance(value, str) and value in ds.variables:
                names.add(value)
    return names


def fields(ds: xr.Dataset, dim: Hashable | None = None) -> list[Hashable]:
    """The data variables to compute on: numeric, not bounds, and along ``dim`` when given."""
    skip = bounds_names(ds)
    return [
        name
        for name, var in ds.data_vars.items()
        if name not in skip and var.dtype.kind in "biuf" and (dim is None or dim in var.dims)
    ]


def carried(ds: xr.Dataset, dim: Hashable | None = None) -> list[Hashable]:
    """The data variables an operation along ``dim`` carries to its output unchanged:
    everything but the fields and the bounds along ``dim`` (which no longer apply)."""
    computed = set(fields(ds, dim))
    return [
        name
        for name, var in ds.data_vars.items()
        if name not in computed and not (name in bounds_names(ds) and dim is not None and dim in var.dims)
    ]
