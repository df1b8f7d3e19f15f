"""The public functions: argument handling, Datasets variable by variable, results as xarray."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, overload

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._dtypes import working_dtype
from .._memory import returning_freed_blocks
from ..chunking import check_task_count, chunked_for
from ..kernels.climatology import result_units
from ..variables import carried, fields
from .cf import BOUNDS, QUANTILE_ATTRS, climatology_bounds, decode_climatology, with_cf_metadata
from .departures import anomaly_array
from .engine import reduce_dask, reduce_in_memory
from .plan import Plan, check_dataarray

__all__ = ["climatology", "anomaly", "EmptyGroupsWarning"]


ANOMALY_KINDS = ("absolute", "relative", "standardized")

Freq = str | Sequence[Any] | np.ndarray | xr.DataArray
Base = tuple[Any, Any] | None
Seasons = Sequence[str] | Mapping[str, Sequence[int]] | None
Climatology = xr.DataArray | xr.Dataset | tuple[xr.DataArray, xr.DataArray] | tuple[xr.Dataset, xr.Dataset] | None


class EmptyGroupsWarning(UserWarning):
    """Groups that are NaN at every point (too few values, or no spread for a standardized anomaly)."""


@overload
def climatology(
    obj: xr.DataArray,
    freq: Freq = ...,
    stat: str = ...,
    *,
    q: float | Sequence[float] | None = ...,
    method: str = ...,
    window: int | None = ...,
    dim: Hashable = ...,
    base: Base = ...,
    min_count: int = ...,
    weights: str | np.ndarray | xr.DataArray | None = ...,
    smooth: int | None = ...,
    ddof: int = ...,
    feb29: str = ...,
    seasons: Seasons = ...,
    split_every: int | None = ...,
) -> xr.DataArray: ...


@overload
def climatology(
    obj: xr.Dataset,
    freq: Freq = ...,
    stat: str = ...,
    *,
    q: float | Sequence[float] | None = ...,
    method: str = ...,
    window: int | None = ...,
    dim: Hashable = ...,
    base: Base = ...,
    min_count: int = ...,
    weights: str | np.ndarray | xr.DataArray | None = ...,
    smooth: int | None = ...,
    ddof: int = ...,
    feb29: str = ...,
    seasons: Seasons = ...,
    split_every: int | None = ...,
) -> xr.Dataset: ...


def climatology(
    obj: xr.DataArray | xr.Dataset,
    freq: Freq = "month",
    stat: str = "mean",
    *,
    q: float | Sequence[float] | None = None,
    method: str = "linear",
    window: int | None = None,
    dim: Hashable = "time",
    base: Base = None,
    min_count: int = 1,
    weights: str | np.ndarray | xr.DataArray | None = None,
    smooth: int | None = None,
    ddof: int = 0,
    feb29: str = "own",
    seasons: Seasons = None,
    split_every: int | None = None,
) -> xr.DataArray | xr.Dataset:
    """Climatology of ``obj`` over groups of its time coordinate (month, season, day of year...).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        NumPy- or dask-backed, with a time dimension ``dim`` and its
        coordinate (datetime64, cftime in any CF calendar, or numbers with CF
        ``units``/``calendar``).  Integer data are cast to float64; float32
        stays float32 (partial sums are float64 internally).
    freq : str or array_like
        ``"month"``, ``"season"``, ``"dayofyear"`` (month-day, 1 March always
        the same group, 29 February per ``feb29``), ``"time.dayofyear"``
        (exactly xarray's ``time.dayofyear``), ``"annual"`` (one group, no
        group dimension) or one label per time step.  See
        :mod:`oceanflow.timegroups`.
    stat : str
        A statistic registered in :data:`oceanflow.kernels.climatology.STATISTICS`
        (the table on the climatology page lists them), e.g. ``"mean"``,
        ``"std"``, ``"median"`` or ``"quantile"``.  NaN is skipped, as
        xarray's ``skipna=True``.  ``median`` and ``quantile`` are exact:
        ``np.nanquantile`` of each group's values, on any chunking, each task
        holding the whole series of one spatial block (see
        ``explain_chunks(obj, operation="quantile")``).
    q : float or sequence of float
        Quantiles in [0, 1] for ``stat="quantile"`` (0.9: the 90th
        percentile); a sequence adds a leading ``quantile`` dimension with
        ``q`` as coordinate (as ``xr.DataArray.quantile``).
    method : str
        NumPy's quantile method for ``quantile`` and ``median``:
        ``"linear"`` (Hyndman and Fan type 7, NumPy's default),
        ``"median_unbiased"`` (type 8, xclim's default), ``"hazen"``,
        ``"weibull"``, ``"nearest"``, ... (all of ``np.quantile``'s).
    window : int, optional
        Odd number of time steps, daily climatologies only: each group pools
        the values of the ``window`` steps centred on each of its steps,
        across year boundaries and truncated at the ends of the series (as
        xclim's ``percentile_doy`` and CDO's ``ydrun*``); every statistic.
    dim : str
        Time dimension.
    base : (start, end), optional
        Reference period, e.g. ``("1991-01-01", "2020-12-31")`` (inclusive,
        any string ``obj.sel`` accepts); its years must lie within the data.
    min_count : int
        Fewer valid values in a group give NaN (``count`` ignores it).
    weights : "days_in_month" or array_like, optional
        Weight of each time step for ``mean`` and ``sum``;
        ``"days_in_month"`` weights monthly data by the (calendar-aware)
        length of each month.  A DataArray along ``dim`` with a time
        coordinate is matched to the data by its time labels.
    smooth : int, optional
        Keep the mean and the first ``smooth`` annual harmonics of a daily
        climatology (NCL's ``smthClmDay``); needs every day of the cycle.
    ddof : int
        Delta degrees of freedom for ``std`` and ``var`` (0, as xarray).
    feb29 : {"own", "merge", "drop"}
        29 February in ``freq="dayofyear"``.
    seasons : sequence of str or dict, optional
        Seasons for ``freq="season"``, e.g. ``["DJFM", "AMJJAS"]``.
    split_every : int, optional
        Combine the partials of time chunks in a tree of this fan-in, in
        parallel over time.  By default the time chunks are folded, in time
        order, into one partial per spatial block (less memory traffic; the
        blocks' rows are shared between threads).

    Returns
    -------
    Same type as ``obj``: ``dim`` replaced by the group dimension (``month``,
    ``season``, ``dayofyear``) holding the groups that occur, other
    dimensions, coordinates and attributes kept, units as the input's
    (``var``: squared; ``count``: 1).  A Dataset's fields (numeric
    variables along ``dim`` that are not CF bounds, see
    :mod:`oceanflow.variables`) are reduced; variables without ``dim``
    (grid bounds such as ``lat_bnds``, masks) are carried unchanged; the
    others (``time_bnds``, non-numeric series) are dropped.

    The grouping travels with the result (attributes ``grouping`` and, where
    they apply, ``seasons``, ``feb29``, ``day_numbering``, on the result and
    on its group coordinate, which also records the ``calendar`` and the
    ``climatology_period``), so that :func:`anomaly` refuses to use it with
    other groups.  CF metadata (conventions 1.11, section 7.4):
    ``cell_methods`` such as ``"time: mean within years time: mean over
    years"`` (the input's own ``time: mean`` is not repeated); a Dataset
    also gets ``climatology_bounds`` (group, nv), the start of each group's
    first period and the end of its last (January of 1991-2020: 1991-01-01
    to 2020-02-01).  :func:`oceanflow.save` writes the group dimension as a
    CF climatological time axis that CDO and NCO read, and
    :func:`oceanflow.open_dataset` reads it back as this group dimension.

    Raises
    ------
    ValueError
        A grouping finer than the data (``"month"`` of annual data,
        ``"dayofyear"`` of monthly data), a base period outside the data or
        not made of dates, weights on other time labels.

    Warns
    -----
    EmptyGroupsWarning
        For in-memory data: groups that are NaN at every point (fewer than
        ``min_count`` valid values, or too few for ``ddof``), counted in
        one warning.

    Examples
    --------
    >>> clim = oceanflow.climatology(sst, "month", base=("1991", "2020"))  # doctest: +SKIP
    >>> daily = oceanflow.climatology(sst, "dayofyear", smooth=3)          # doctest: +SKIP
    """
    options = {"q": q, "method": method, "window": window}
    if isinstance(obj, xr.Dataset):
        return _per_variable(
            obj, dim, freq, stat, base, min_count, weights, smooth, ddof, feb29, seasons, split_every, options
        )
    check_dataarray(obj, "obj")
    plan = Plan(obj, freq, stat, dim, base, min_count, weights, smooth, ddof, feb29, seasons, split_every, **options)
    result = _climatology_array(chunked_for(plan.select(obj), operation=_operation(plan)), plan)
    warn_empty_groups([result], plan.groups.dim, _too_few(plan))
    return result


def _operation(plan):
    """The chunking operation: an order statistic holds whole series of spatial blocks."""
    return "quantile" if plan.statistic.kind == "order" else "climatology"


@overload
def anomaly(
    obj: xr.DataArray,
    clim: Climatology = ...,
    *,
    freq: Freq = ...,
    kind: str = ...,
    base: Base = ...,
    dim: Hashable = ...,
    feb29: str = ...,
    seasons: Seasons = ...,
) -> xr.DataArray: ...


@overload
def anomaly(
    obj: xr.Dataset,
    clim: Climatology = ...,
    *,
    freq: Freq = ...,
    kind: str = ...,
    base: Base = ...,
    dim: Hashable = ...,
    feb29: str = ...,
    seasons: Seasons = ...,
) -> xr.Dataset: ...


def anomaly(
    obj: xr.DataArray | xr.Dataset,
    clim: Climatology = None,
    *,
    freq: Freq = "month",
    kind: str = "absolute",
    base: Base = None,
    dim: Hashable = "time",
    feb29: str = "own",
    seasons: Seasons = None,
) -> xr.DataArray | xr.Dataset:
    """Departures of ``obj`` from its climatology, one kernel pass per chunk.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        As for :func:`climatology`.
    clim : DataArray, Dataset or (mean, std) pair, optional
        Climatology with the group dimension of ``freq``, as returned by
        :func:`climatology` or read from a file (oceanflow's, or CDO's
        ``ymonmean``/``yseasmean``/``ydaymean`` output, whose time axis holds
        one step per group).  It meets the data by labels: its groups by
        their labels, its other dimensions by their coordinates (a ``lat``
        stored north to south is reordered; coordinates that differ are an
        error); a climatology that records another grouping (e.g.
        ``freq="time.dayofyear"`` against ``"dayofyear"``) is refused.  When
        not given it is computed first, from ``obj`` over ``base``, in one
        read of the data (at this call, also for dask input: the
        climatology is small, and a graph holding both passes would keep
        chunks in memory); the anomalies themselves stay lazy.
        ``kind="standardized"`` needs the pair (mean, std) or None.
    freq : str or array_like
        Grouping, as for :func:`climatology`.
    kind : {"absolute", "relative", "standardized"}
        ``obj - clim`` (input units), ``obj / clim`` (units 1) or
        ``(obj - mean) / std`` (units 1, std with ddof 0).
    base : (start, end), optional
        Reference period of the climatology computed here.
    dim, feb29, seasons
        As for :func:`climatology`.

    Returns
    -------
    Same type, shape, chunks and coordinates as ``obj``; steps in no group
    (e.g. months outside all ``seasons``) are NaN.  Attributes: the input's,
    with ``long_name`` "... anomaly" ("standardized ... anomaly", "...
    relative to its climatology"), no ``standard_name`` but the CF anomaly
    name where one exists (``air_temperature_anomaly``...), ``units`` the
    input's for absolute anomalies (temperatures marked
    ``units_metadata: "temperature: difference"``), ``"1"`` otherwise.  A
    Dataset's fields are computed; its other variables (bounds, static
    fields) are carried unchanged.

    Warns
    -----
    EmptyGroupsWarning
        Groups whose climatology (in memory) is NaN at every point, or whose
        std is zero or NaN at every point, counted in one warning: their
        anomalies are NaN.

    Examples
    --------
    >>> anom = oceanflow.anomaly(sst, freq="month", base=("1991", "2020"))  # doctest: +SKIP
    """
    if kind not in ANOMALY_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; use one of {list(ANOMALY_KINDS)}")
    if kind == "standardized" and clim is not None and not (isinstance(clim, tuple) and len(clim) == 2):
        raise TypeError("kind='standardized' needs clim=(mean, std) climatologies, or clim=None")
    if kind != "standardized" and isinstance(clim, tuple):
        raise TypeError(f"kind={kind!r} takes one climatology, not a tuple")
    if clim is not None and base is not None:
        raise ValueError("base= applies to the climatology computed here; with clim= given, leave base out")
    options = {"freq": freq, "dim": dim, "base": base, "feb29": feb29, "seasons": seasons}
    if isinstance(obj, xr.Dataset):
        return _anomaly_dataset(obj, clim, kind, options)
    check_dataarray(obj, "obj")
    obj = chunked_for(obj, operation="anomaly")
    check_task_count(obj, operation="anomaly")
    if clim is None:
        clim = _climatology_first(obj, kind, options)
    _warn_empty_climatology(clim, kind)
    return anomaly_array(obj, clim, kind, **options)


def _anomaly_dataset(obj, clim, kind, options):
    """The anomaly of each field of ``obj``; every other variable carried unchanged."""
    names = fields(obj, options["dim"])
    if not names:
        raise ValueError(f"no numeric data variable has the dimension {options['dim']!r}; nothing to take anomalies of")
    if clim is None:
        clim = _climatology_first(chunked_for(obj, operation="anomaly"), kind, options)
    clims = clim if isinstance(clim, tuple) else (clim,)
    clims = tuple(decode_climatology(c) if isinstance(c, xr.Dataset) else c for c in clims)
    out = dict(obj.data_vars)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyGroupsWarning)
        for name in names:
            parts = tuple(_variable_of(c, name) for c in clims)
            out[name] = anomaly(obj[name], parts if kind == "standardized" else parts[0], kind=kind, **options)
    _rewarn(caught)
    return xr.Dataset(out, coords=obj.coords, attrs=obj.attrs)


def _variable_of(clim, name):
    if not isinstance(clim, xr.Dataset):
        raise TypeError(
            f"a Dataset's anomaly takes a Dataset climatology (one variable per field), got {type(clim).__name__}"
        )
    if name not in clim.data_vars:
        raise ValueError(
            f"the climatology has no variable {name!r} (it has {list(clim.data_vars)}); "
            "compute it from the same data, or select the variables that it has"
        )
    return clim[name]


def _climatology_first(obj, kind, options):
    """The climatology (and for standardized anomalies the std), computed now.

    The anomaly of a chunk needs the finished climatology, i.e. every chunk.  In
    one lazy graph the scheduler may keep chunks read for the climatology in
    memory for the subtraction, a peak that grows with the input; computing the
    small climatology first, in one read of the data, leaves a graph that
    streams chunk by chunk.
    """
    import dask

    clims = [climatology(obj, stat="mean", **options)]
    if kind == "standardized":
        clims.append(climatology(obj, stat="std", **options))
    with returning_freed_blocks():  # a read of the whole input: memory bounded by the blocks in flight
        clims = dask.compute(*clims)  # one pass over the data for both
    return tuple(clims) if kind == "standardized" else clims[0]


def _per_variable(obj, dim, freq, stat, base, min_count, weights, smooth, ddof, feb29, seasons, split_every, options):
    """The climatology of each field; static variables (grid bounds) carried, the rest dropped."""
    names = fields(obj, dim)
    if not names:
        raise ValueError(f"no numeric data variable has the dimension {dim!r}; nothing to compute a climatology of")
    plan = Plan(obj, freq, stat, dim, base, min_count, weights, smooth, ddof, feb29, seasons, split_every, **options)
    selected = chunked_for(plan.select(obj[names]), operation=_operation(plan))
    out = {name: _climatology_array(selected[name], plan) for name in names}
    static = {name: obj[name] for name in carried(obj, dim) if dim not in obj[name].dims}
    result = xr.Dataset({**out, **static}, attrs=obj.attrs)
    gdim = plan.groups.dim
    if gdim is not None:
        result[BOUNDS] = climatology_bounds(plan, gdim)
        result[gdim].attrs["climatology"] = BOUNDS
    warn_empty_groups(list(out.values()), gdim, _too_few(plan))
    return result


def _too_few(plan) -> str:
    spread = f", or no more than ddof={plan.ddof}" if plan.stat in ("std", "var") and plan.ddof else ""
    if plan.min_count <= 1:
        return f"no valid value{spread}"
    return f"fewer than min_count={plan.min_count} valid values{spread}"


def warn_empty_groups(results: Sequence[xr.DataArray], gdim, why: str) -> None:
    """One :class:`EmptyGroupsWarning` counting the groups that are NaN at every
    point of in-memory ``results`` (a lazy result is not computed for it)."""
    if gdim is None:
        return
    empty = total = 0
    for result in results:
        if is_dask(result.data) or result.dtype.kind != "f" or result.size == 0:
            continue
        nan = np.isnan(result.values)
        axis = tuple(i for i, d in enumerate(result.dims) if d != gdim)
        empty += int(np.count_nonzero(nan.all(axis=axis)))
        total += result.sizes[gdim]
    if empty:
        warnings.warn(
            f"{empty} of {total} {gdim} groups are NaN at every point ({why}); "
            "use a longer base period, lower min_count, or drop those groups",
            EmptyGroupsWarning,
            stacklevel=3,
        )


def _warn_empty_climatology(clim, kind) -> None:
    """Groups whose anomalies will be NaN everywhere: a climatology NaN there, or no spread."""
    if not isinstance(clim, (xr.DataArray, tuple)):
        return
    mean, std = clim if isinstance(clim, tuple) else (clim, None)
    if not isinstance(mean, xr.DataArray):
        return
    gdim = next((d for d in mean.dims if d in ("month", "season", "dayofyear") or "grouping" in mean[d].attrs), None)
    if gdim is None or is_dask(mean.data) or (std is not None and is_dask(std.data)):
        return
    useless = np.isnan(mean.values)
    if std is not None and isinstance(std, xr.DataArray) and std.dims == mean.dims:
        useless = useless | ~(np.abs(std.values) > 0)
    axis = tuple(i for i, d in enumerate(mean.dims) if d != gdim)
    empty = int(np.count_nonzero(useless.all(axis=axis))) if useless.size else 0
    if empty:
        why = "a climatology that is NaN, or a std that is zero or NaN" if std is not None else "a NaN climatology"
        warnings.warn(
            f"{empty} of {mean.sizes[gdim]} {gdim} groups have {why} at every point: their {kind} anomalies "
            "are NaN; use a longer base period, or leave those groups out",
            EmptyGroupsWarning,
            stacklevel=3,
        )


def _rewarn(caught) -> None:
    """Warnings caught per variable, said once (counts added up)."""
    for message in {str(w.message): w for w in caught}.values():
        warnings.warn(message.message, message.category, stacklevel=3)


def _climatology_array(obj, plan):
    dim = plan.dim
    dtype = working_dtype(obj.dtype, names=[f"data {obj.name or ''}".strip()])
    order = obj.dims
    moved = obj.transpose(dim, ...)
    data = moved.data
    if is_dask(data):
        check_task_count(moved, operation="climatology")
        result = reduce_dask(data, plan, dtype)
    else:
        result = reduce_in_memory(np.asarray(data), plan, dtype)
    groups = plan.groups
    gdim = groups.dim or dim
    coords = {name: c for name, c in moved.coords.items() if dim not in c.dims}
    statistic, options = plan.statistic, plan.options
    lead: tuple[str, ...] = ()
    if options.q is not None:  # order statistics: (quantile, group, ...)
        if options.scalar_q:
            result = result[0]
        else:
            lead = (statistic.dim,)
            coords[statistic.dim] = xr.DataArray(options.q, dims=statistic.dim, attrs=QUANTILE_ATTRS)
    dims = lead + (gdim,) + moved.dims[1:]
    out = xr.DataArray(result, dims=dims, coords=coords, name=obj.name, attrs=dict(obj.attrs))
    if statistic.integer:
        out = out.astype(np.int64)
        if "standard_name" in out.attrs:  # CF's modifier for a count of the quantity's values
            out.attrs["standard_name"] = f"{out.attrs['standard_name'].split()[0]} number_of_observations"
    units = result_units(plan.stat, obj.attrs.get("units"))
    if units is not None:
        out.attrs["units"] = units
    if options.scalar_q and plan.stat == "quantile":
        q = xr.DataArray(float(options.q[0]), attrs=QUANTILE_ATTRS)
        out = out.assign_coords({statistic.dim: q})  # as xr.DataArray.quantile with one q
    if plan.smooth is not None:
        out = _smoothed(out, gdim, plan.smooth)
    out = with_cf_metadata(out, plan, gdim)
    if groups.dim is None:
        return out.isel({gdim: 0}, drop=True).transpose(*lead, *(d for d in order if d != dim))
    return out.transpose(*lead, *(gdim if d == dim else d for d in order))


def _smooth_block(values, harmonics):
    """Keep the mean and the first ``harmonics`` harmonics along the last axis."""
    spectrum = np.fft.rfft(values, axis=-1)
    spectrum[..., harmonics + 1 :] = 0
    return np.fft.irfft(spectrum, n=values.shape[-1], axis=-1).astype(values.dtype)


def _smoothed(out, gdim, harmonics):
    return xr.apply_ufunc(
        _smooth_block,
        out,
        input_core_dims=[[gdim]],
        output_core_dims=[[gdim]],
        kwargs={"harmonics": harmonics},
        dask="parallelized",
        output_dtypes=[out.dtype],
        keep_attrs=True,
    ).transpose(*out.dims)
