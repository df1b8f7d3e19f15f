"""Anomalies of one DataArray: the data minus (or over) its group's climatology, one pass per chunk.

The climatology meets the data by labels: its groups by their labels (and
its recorded grouping must be the one asked for), its other dimensions by
their coordinates through :func:`oceanflow.alignment.align`.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import map_blocks
from .._dtypes import working_dtype
from .._memory import empty_block
from ..alignment import align
from ..kernels.climatology import grouped_anomaly
from ..timegroups import describe_grouping, grouping_of, groups_of_stamps, time_groups
from .cf import anomaly_attrs, decode_climatology
from .engine import as_pixels
from .plan import time_of


def anomaly_array(obj, clim, kind, *, freq, dim, base, feb29, seasons):
    time = time_of(obj, dim)
    groups = time_groups(time, freq, feb29=feb29, seasons=seasons)
    mean, std = clim if isinstance(clim, tuple) else (clim, None)
    gdim = groups.dim or dim
    for c in (mean, std):
        if c is not None and not isinstance(c, xr.DataArray):
            raise TypeError(f"clim must be a DataArray (or Dataset for Dataset input), got {type(c).__name__}")
    if mean is None:
        raise TypeError("clim must be a DataArray, not None")
    mean = as_climatology(mean, groups, dim)
    std = None if std is None else as_climatology(std, groups, dim)
    codes = _codes_into(groups, mean, gdim)
    if std is not None:
        if not np.array_equal(np.asarray(std[gdim].values), np.asarray(mean[gdim].values)):
            raise ValueError(f"the mean and std climatologies have different {gdim!r} labels")
    dtype = working_dtype(obj.dtype, mean.dtype, names=["data", "climatology"])
    moved = obj.transpose(dim, ...)
    space = moved.dims[1:]
    extra = set(mean.dims) - set(space) - {gdim}
    if extra:
        raise ValueError(f"the climatology has dimensions {sorted(map(str, extra))} that the data lack")
    zeros = xr.zeros_like(mean, dtype=dtype)
    if kind == "absolute":
        center, scale = mean, zeros + 1
    elif kind == "relative":
        center, scale = zeros, mean
    else:
        center, scale = mean, std
    center, scale = (_aligned(c, gdim, moved, dtype) for c in (center, scale))
    data = moved.data
    if is_dask(data):
        import dask.array as dsa

        ind = "".join(chr(ord("a") + i) for i in range(len(space)))
        codes_d = dsa.from_array(codes, chunks=(data.chunks[0],))
        chunks = dict(zip(ind, data.chunks[1:], strict=True))
        blocks = (-1,) + tuple(chunks[i] for i in ind)
        center, scale = (c.rechunk(blocks) if is_dask(c) else dsa.from_array(c, chunks=blocks) for c in (center, scale))
        result = map_blocks(
            _anomaly_block,
            "T" + ind,
            data,
            "T" + ind,
            codes_d,
            "T",
            center,
            "G" + ind,
            scale,
            "G" + ind,
            dtype=dtype,
            name="anomaly_block",
        )
    else:
        result = _anomaly_block(np.asarray(data), codes, np.asarray(center), np.asarray(scale))
    out = moved.copy(data=result).transpose(*obj.dims)
    out.attrs = anomaly_attrs(obj.attrs, kind, obj.name)
    return out


def as_climatology(clim: xr.DataArray, groups, dim: str) -> xr.DataArray:
    """``clim`` with the group dimension of ``groups``, checked to group as they do.

    A climatology read from a file may hold a CF climatological time axis: one
    written by oceanflow comes back as its groups; one of another tool (CDO's
    ``ymonmean``, ``ydaymean``) is grouped by its time stamps, one per group.
    """
    gdim = groups.dim
    if gdim is None or gdim in clim.dims or dim not in clim.dims:
        _check_grouping(clim, groups)
        return clim
    decoded = decode_climatology(clim.to_dataset(name="_clim"))["_clim"]
    if gdim in decoded.dims:
        _check_grouping(decoded, groups)
        return decoded
    stamps = time_of(clim, dim) if clim[dim].dtype.kind not in "MO" else clim[dim]
    kwargs = {"feb29": groups.feb29 or "own"} if groups.kind == "dayofyear" else {}
    if groups.kind == "season":
        kwargs["seasons"] = groups.seasons
    stamped = groups_of_stamps(stamps, "time.dayofyear" if groups.kind == "time.dayofyear" else groups.kind, **kwargs)
    if np.any(stamped.codes < 0) or np.unique(stamped.codes).size != stamped.codes.size:
        raise ValueError(
            f"the climatology has a {dim!r} axis of {clim.sizes[dim]} steps that are not one per {gdim} group "
            f"({groups.describe()}); pass a climatology computed with the same freq"
        )
    labels = stamped.labels[stamped.codes]
    order = np.argsort(stamped.codes, kind="stable")
    result = clim.isel({dim: order}).drop_vars(dim).rename({dim: gdim})
    return result.assign_coords({gdim: labels[order]})


def _check_grouping(clim, groups) -> None:
    """Refuse a climatology whose recorded grouping is not the one asked for."""
    recorded = grouping_of(clim)
    if recorded is None:
        return  # made elsewhere (xarray's groupby, another tool): its labels decide
    wanted = groups.attrs()
    if _comparable(recorded) != _comparable(wanted):
        raise ValueError(
            f"the climatology groups {describe_grouping(recorded)}, but this anomaly groups "
            f"{describe_grouping(wanted)}; pass the freq (and seasons/feb29) the climatology was computed "
            "with, or compute the climatology with these"
        )


def _comparable(grouping: dict) -> dict:
    out = dict(grouping)
    if "seasons" in out:
        out["seasons"] = {k: sorted(v) for k, v in json.loads(out["seasons"]).items()}
    return out


def _codes_into(groups, clim, gdim):
    """Codes of the time steps into the climatology's group labels; clear error for a missing group."""
    if groups.dim is None:
        return groups.codes
    if gdim not in clim.dims:
        raise ValueError(
            f"the climatology has no {gdim!r} dimension (dimensions {tuple(clim.dims)}); "
            "pass one computed with the same freq"
        )
    clim_labels = np.asarray(clim[gdim].values)
    index = {label: i for i, label in enumerate(clim_labels.tolist())}
    lookup = np.array([index.get(label, -2) for label in groups.labels.tolist()], np.int64)
    codes = np.where(groups.codes >= 0, lookup[np.maximum(groups.codes, 0)], -1)
    if np.any(codes == -2):
        missing = sorted({groups.labels[c] for c in groups.codes[codes == -2]})[:5]
        raise ValueError(
            f"the climatology has no {gdim!r} group {missing}, which the data need; compute it over "
            "a period holding those groups (for 29 February: feb29='merge')"
        )
    return codes.astype(np.int64)


def _aligned(clim, gdim, moved, dtype):
    """Climatology values ordered (group, *data's other dims), matched to the data by
    coordinate labels and broadcast where it lacks a dimension."""
    space = moved.dims[1:]
    _, clim = align(moved, clim, names=("data", "climatology"), exclude={moved.dims[0], gdim})
    clim = clim.drop_vars([c for c in clim.coords if c not in clim.dims], errors="ignore")
    if gdim not in clim.dims:
        clim = clim.expand_dims(gdim)
    shape = {d: moved.sizes[d] for d in space}
    clim = clim.expand_dims({d: shape[d] for d in space if d not in clim.dims})
    clim = clim.transpose(gdim, *space).astype(dtype)
    if is_dask(clim.data):
        return clim.data
    return np.ascontiguousarray(clim.values)


def _anomaly_block(block, codes, center, scale):
    """One chunk (time, ...) minus (or over) its group's climatology (group, ...)."""
    dtype = center.dtype
    x = as_pixels(block, dtype)
    out = empty_block(x.shape, dtype)  # a freed block's memory while a save streams: no fresh pages to zero
    with np.errstate(invalid="ignore", divide="ignore"):  # zero std or climatology: inf/NaN, as xarray
        grouped_anomaly.for_dtype(dtype)(
            x, np.ascontiguousarray(codes, np.int64), as_pixels(center, dtype), as_pixels(scale, dtype), out
        )
    return out.reshape(block.shape)
