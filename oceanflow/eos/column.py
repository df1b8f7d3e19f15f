"""Water-column functions: stability, mixed layer depth and dynamic height along a vertical dimension.

Each function reads whole vertical profiles: one numba gufunc call per
column (:mod:`oceanflow.kernels.eos_column`), one dask task per chunk of the
other dimensions.

* DataArrays: ``dim`` names the vertical dimension (default: the dimension of
  ``p`` or ``depth`` when that is 1-D).  Inputs meet by dimension name and
  coordinate labels; ``p`` may be a 1-D coordinate or a full field.  A
  vertical dimension split into several dask chunks is made whole with a
  :class:`~oceanflow.chunking.RechunkWarning`; any chunking of the other
  dimensions is kept.
* NumPy and dask arrays: broadcast as NumPy (from the right), the vertical
  axis ``axis`` (default 0, as gsw).
* Levels where an input is NaN (below the sea floor, or missing) are left
  out of each column, so profiles with NaN bottoms are fine; pressures (or
  depths) must increase strictly along the dimension among the valid levels,
  else a ``ValueError`` says how many columns do not.
* dtype: float32 results when SA, CT and p (or depth) are all float32
  (``lat`` does not count: coordinates are often float64), else float64.

Example
-------
>>> import numpy as np, xarray as xr
>>> SA = xr.DataArray(np.full(4, 35.0), dims="lev")
>>> CT = xr.DataArray([20.0, 19.9, 15.0, 10.0], dims="lev")
>>> p = xr.DataArray([5.0, 50.0, 100.0, 200.0], dims="lev")
>>> N2, p_mid = Nsquared(SA, CT, p, lat=45.0, dim="lev")
>>> N2.dims, p_mid.values
(('lev_mid',), array([ 27.5,  75. , 150. ]))
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from .._arrays import is_dask
from .._blockwise import map_blocks
from .._dtypes import working_dtype
from ..alignment import align
from ..chunking import chunked_for, whole_core_dims
from ..kernels import eos_column as column_kernels
from ._evaluate import broadcast_shape, checked, refuse_unnamed
from .validity import check_ranges

__all__ = ["Nsquared", "geo_strf_dyn_height", "mixed_layer_depth"]

#: A scalar, NumPy array, dask array or xarray DataArray.
Field = Any

#: gsw's gravity when ``Nsquared`` is given no latitude (Griffies 2004), m s-2.
GRIFFIES_G = 9.7963

_ATTRS = {
    "N2": {
        "units": "s-2",
        "standard_name": "square_of_brunt_vaisala_frequency_in_sea_water",
        "long_name": "buoyancy frequency squared at pressure mid-points",
    },
    "p_mid": {
        "units": "dbar",
        "standard_name": "sea_water_pressure_due_to_sea_water",
        "long_name": "sea pressure at the mid-points",
    },
    "geo_strf_dyn_height": {"units": "m2 s-2", "long_name": "dynamic height anomaly"},
}


def Nsquared(
    SA: Field,
    CT: Field,
    p: Field,
    lat: Field = None,
    dim: Hashable | None = None,
    *,
    axis: int = 0,
    check: str | None = "warn",
) -> tuple[Any, Any]:
    """Buoyancy frequency squared N2 (s-2) and the pressure at the mid-points (dbar).

    As TEOS-10's ``Nsquared``: between each pair of adjacent levels,
    ``N2 = g**2 / (v * dp) * (beta * dSA - alpha * dCT)`` with specific
    volume ``v``, ``alpha`` and ``beta`` of the 75-term polynomial at the
    mid-point (mean SA, CT and p), ``dp`` in Pa, and ``g`` the mean of
    TEOS-10's ``grav(lat, p)`` at the two levels (gsw's constant 9.7963 m s-2
    when ``lat`` is None).

    Parameters
    ----------
    SA, CT, p : array-like
        Absolute Salinity (g kg-1), Conservative Temperature (degC), sea
        pressure (dbar), each with the vertical dimension; see the module doc.
    lat : array-like, optional
        Latitude (degrees north), without the vertical dimension.
    dim : hashable, optional
        The vertical dimension of DataArray inputs.
    axis : int
        The vertical axis of NumPy and dask inputs (default 0).
    check : {"warn", "raise", None}
        Inputs outside TEOS-10's range (:mod:`oceanflow.eos.validity`): one
        warning per call with the count, an error, or no check.

    Returns
    -------
    N2, p_mid
        One level fewer than the inputs along the vertical: for DataArrays,
        along the new dimension ``f"{dim}_mid"`` (with the mid-points of
        ``dim``'s coordinate, if numeric); for arrays, along ``axis``, as gsw.
        N2 is NaN where either level is NaN (below the sea floor).

    Example
    -------
    >>> N2, p_mid = Nsquared(np.full(3, 35.0), np.array([20.0, 15.0, 10.0]), np.array([0.0, 100.0, 200.0]), 45.0)
    >>> N2, p_mid
    (array([1.16652069e-04, 9.55009778e-05]), array([ 50., 150.]))
    """
    if lat is not None:
        check_latitude(lat)
    g0 = GRIFFIES_G if lat is None else 0.0
    fields = [SA, CT, p]
    names = ["SA", "CT", "p"]
    if lat is not None:
        fields.append(lat)
        names.append("lat")
    else:
        fields.append(0.0)
        names.append("lat")
    return _columns(
        "nsquared",
        fields,
        names,
        dim,
        axis,
        extra=(g0,),
        core_inputs=3,
        output="mid",
        operation="Nsquared",
        check=check,
        out_name="N2",
        attrs=_ATTRS["N2"],
    )


def geo_strf_dyn_height(
    SA: Field,
    CT: Field,
    p: Field,
    p_ref: float = 0.0,
    dim: Hashable | None = None,
    *,
    axis: int = 0,
    max_dp: float = 1.0,
    interp_method: str = "pchip",
    check: str | None = "warn",
) -> Any:
    """Dynamic height anomaly (m2 s-2) relative to ``p_ref``: the geostrophic streamfunction.

    By TEOS-10's method (gsw 3.6 ``geo_strf_dyn_height``): the integral over
    pressure of the specific volume anomaly (with respect to SSO = 35.16504
    g kg-1 and CT = 0 degC) from ``p_ref`` to each level, by the trapezoidal
    rule on the column's valid levels refined so that no pressure step
    exceeds ``max_dp`` (SA and CT interpolated in pressure by PCHIP, or
    linearly); above the shallowest valid level the water is taken as mixed.
    A column whose deepest valid level is above ``p_ref``, or with fewer than
    two valid levels, is NaN.

    Parameters
    ----------
    SA, CT, p : array-like
        Absolute Salinity (g kg-1), Conservative Temperature (degC), sea
        pressure (dbar); see the module doc.
    p_ref : float
        Reference pressure (dbar), default 0 (the sea surface).
    dim : hashable, optional
        The vertical dimension of DataArray inputs.
    axis : int
        The vertical axis of NumPy and dask inputs (default 0).
    check : {"warn", "raise", None}
        Inputs outside TEOS-10's range (:mod:`oceanflow.eos.validity`): one
        warning per call with the count, an error, or no check.
    max_dp : float
        Largest pressure step of the integration (dbar), default 1.
    interp_method : {"pchip", "linear"}
        Interpolation of SA and CT between levels.

    Returns
    -------
    Same shape as the broadcast inputs; NaN at invalid levels.

    Example
    -------
    >>> SA, CT = np.full(3, 35.0), np.array([20.0, 15.0, 10.0])
    >>> geo_strf_dyn_height(SA, CT, np.array([0.0, 100.0, 200.0])).round(4)
    array([ 0.    , -2.7164, -4.4162])
    """
    p_ref = _finite(p_ref, "p_ref", minimum=0.0)
    max_dp = _finite(max_dp, "max_dp", positive=True)
    methods = {"pchip": 0.0, "linear": 1.0}
    if interp_method not in methods:
        raise ValueError(f"interp_method must be 'pchip' or 'linear', got {interp_method!r}")
    attrs = dict(_ATTRS["geo_strf_dyn_height"], long_name=f"dynamic height anomaly relative to {p_ref:g} dbar")
    return _columns(
        "geo_strf_dyn_height",
        [SA, CT, p],
        ["SA", "CT", "p"],
        dim,
        axis,
        extra=(p_ref, max_dp, methods[interp_method]),
        core_inputs=3,
        output="same",
        operation="geo_strf_dyn_height",
        check=check,
        out_name="geo_strf_dyn_height",
        attrs=attrs,
    )


def mixed_layer_depth(
    SA: Field,
    CT: Field,
    depth: Field,
    dim: Hashable | None = None,
    *,
    criterion: str = "density",
    threshold: float | None = None,
    reference_depth: float = 10.0,
    axis: int = 0,
    check: str | None = "warn",
) -> Any:
    """Mixed layer depth (m) by the threshold criteria of de Boyer Montegut et al. (2004).

    ``criterion="density"``: the depth where potential density sigma0 has
    increased by ``threshold`` (default 0.03 kg m-3) from its value at
    ``reference_depth`` (default 10 m); ``criterion="temperature"``: where
    Conservative Temperature has changed by ``threshold`` (default 0.2 degC)
    either way (de Boyer Montegut et al. used potential temperature; the two
    differ by far less than the threshold within a water column).

    Interpolation, defined here: the reference value is interpolated linearly
    in depth between the valid levels around ``reference_depth`` (the
    shallowest valid level's value when ``reference_depth`` is above it: the
    top is taken as mixed).  Going down, the first valid level whose departure
    from the reference reaches ``threshold`` ends the mixed layer; its depth is
    interpolated linearly between that level and the point above it (the
    previous valid level, or the reference point) to where the departure
    equals ``threshold``.  A column that never departs so far is mixed to its
    deepest valid level (that depth is returned); a column with no valid level
    at or below ``reference_depth`` gives NaN.

    Parameters
    ----------
    SA, CT : array-like
        Absolute Salinity (g kg-1) and Conservative Temperature (degC); ``SA``
        may be None for the temperature criterion.
    depth : array-like
        Depth of the levels (m, positive downwards), e.g. the ``lev``
        coordinate of a model; not pressure (use ``-z_from_p(p, lat)``).
    dim : hashable, optional
        The vertical dimension of DataArray inputs.
    criterion : {"density", "temperature"}
    threshold : float, optional
        Departure that ends the mixed layer: kg m-3 (default 0.03) or degC
        (default 0.2).
    reference_depth : float
        Depth of the reference value (m), default 10.
    axis : int
        The vertical axis of NumPy and dask inputs (default 0).
    check : {"warn", "raise", None}
        Inputs outside TEOS-10's range (:mod:`oceanflow.eos.validity`): one
        warning per call with the count, an error, or no check.

    Returns
    -------
    The inputs' shape without the vertical dimension.

    Example
    -------
    >>> depth = np.array([5.0, 15.0, 25.0, 35.0, 45.0])
    >>> CT = np.array([18.0, 18.0, 17.9, 17.7, 15.0])
    >>> round(float(mixed_layer_depth(None, CT, depth, criterion="temperature")), 6)
    30.0
    """
    if criterion not in column_kernels.CRITERIA:
        raise ValueError(f"criterion must be 'density' or 'temperature', got {criterion!r}")
    default = 0.03 if criterion == "density" else 0.2
    threshold = _finite(default if threshold is None else threshold, "threshold", positive=True)
    reference_depth = _finite(reference_depth, "reference_depth", minimum=0.0)
    no_salinity = SA is None
    if no_salinity:
        if criterion == "density":
            raise ValueError("the density criterion needs SA (g kg-1); pass it, or criterion='temperature'")
        SA = CT
    if criterion == "density":
        attrs = {
            "units": "m",
            "standard_name": "ocean_mixed_layer_thickness_defined_by_sigma_theta",
            "long_name": f"mixed layer depth (sigma0 increase of {threshold:g} kg m-3 from {reference_depth:g} m)",
        }
    else:
        attrs = {
            "units": "m",
            "standard_name": "ocean_mixed_layer_thickness_defined_by_temperature",
            "long_name": f"mixed layer depth (CT change of {threshold:g} degC from {reference_depth:g} m)",
        }
    return _columns(
        "mixed_layer_depth",
        [SA, CT, depth],
        ["SA", "CT", "depth"],
        dim,
        axis,
        extra=(float(column_kernels.CRITERIA[criterion]), threshold, reference_depth),
        core_inputs=3,
        output="none",
        operation="mixed_layer_depth",
        check=check,
        unchecked=("SA",) if no_salinity else (),  # CT stands in for it
        out_name="mixed_layer_depth",
        attrs=attrs,
    )


# ---------------------------------------------------------------- shared machinery


def _columns(
    kernel, fields, names, dim, axis, *, extra, core_inputs, output, operation, out_name, attrs, check, unchecked=()
):
    """Check, broadcast and run a column kernel; ``output`` is "same", "mid" or "none"
    (the vertical dimension kept, one shorter, or dropped); ``check`` the range check
    of the inputs but those named in ``unchecked``."""
    fields = [checked(field, name) for field, name in zip(fields, names, strict=True)]
    inputs = {name: field for name, field in zip(names, fields, strict=True) if name not in unchecked}
    ranged = check_ranges(operation, inputs, check=check)
    fields = [ranged.get(name, field) for name, field in zip(names, fields, strict=True)]
    work_dtype = working_dtype(*(f.dtype for f in fields[:core_inputs]), names=names[:core_inputs])
    if not any(isinstance(f, xr.DataArray) for f in fields):
        return _columns_arrays(
            kernel, fields, names, axis, extra, core_inputs, output, operation, out_name, attrs, work_dtype
        )
    return _columns_xarray(
        kernel, fields, names, dim, extra, core_inputs, output, operation, out_name, attrs, work_dtype
    )


def _columns_arrays(kernel, fields, names, axis, extra, core_inputs, output, operation, out_name, attrs, work_dtype):
    """NumPy or dask inputs: named by position from the right, computed as DataArrays."""
    fields = profiles_along_axis(fields, core_inputs, axis)
    known = [(np.shape(f), name) for f, name in zip(fields, names, strict=True)]
    known = [(shape, name) for shape, name in known if not any(np.isnan(x) for x in shape)]
    full = broadcast_shape([shape for shape, _ in known], [name for _, name in known])
    ndim = len(full)
    if ndim == 0:
        raise ValueError(f"{operation} needs profiles: SA, CT and {names[2]} are scalars")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for inputs of {ndim} dimensions")
    axis %= ndim
    dims = [f"axis {i}" for i in range(ndim)]  # messages then say "p along 'axis 0'"
    wrapped = []
    for field, name in zip(fields, names, strict=True):
        own = range(ndim - np.ndim(field), ndim)
        index = tuple(
            0 if size == 1 and full[i] != 1 else slice(None) for i, size in zip(own, np.shape(field), strict=True)
        )
        kept = [dims[i] for i, ix in zip(own, index, strict=True) if not isinstance(ix, int)]
        if name in names[:core_inputs] and dims[axis] not in kept:
            raise ValueError(
                f"{name} has no vertical axis (axis {axis} of the broadcast shape {full}); "
                f"give it the levels along axis {axis}, or pass DataArrays with dim="
            )
        wrapped.append(xr.DataArray(field[index] if index else field, dims=kept))
    result = _columns_xarray(
        kernel, wrapped, names, dims[axis], extra, core_inputs, output, operation, out_name, attrs, work_dtype
    )
    order = {"same": dims, "mid": dims[:axis] + [f"{dims[axis]}_mid"] + dims[axis + 1 :]}.get(
        output, dims[:axis] + dims[axis + 1 :]
    )
    if output == "mid":
        N2, p_mid = result
        p_mid = p_mid.broadcast_like(N2)  # gsw's shape
        return N2.transpose(*order).data, p_mid.transpose(*order).data.astype(N2.dtype)
    data = result.transpose(*order).data
    return data[()] if data.ndim == 0 and not is_dask(data) else data


def profiles_along_axis(fields, core_inputs, axis):
    """A 1-D profile among N-D fields laid along ``axis``, as gsw takes pressure (p of shape (nz,)
    with SA of shape (nz, n))."""
    ndim = max(np.ndim(f) for f in fields[:core_inputs])
    if ndim < 2 or not -ndim <= axis < ndim:
        return fields
    axis %= ndim
    size = next(np.shape(f)[axis] for f in fields[:core_inputs] if np.ndim(f) == ndim)
    fields = list(fields)
    for i, f in enumerate(fields[:core_inputs]):
        if np.ndim(f) == 1 and np.shape(f)[0] == size and size > 1 and axis != ndim - 1:
            fields[i] = f.reshape((1,) * axis + (size,) + (1,) * (ndim - axis - 1))
    return fields


def _columns_xarray(kernel, fields, names, dim, extra, core_inputs, output, operation, out_name, attrs, work_dtype):
    refuse_unnamed(fields, names)
    fields = [f if isinstance(f, xr.DataArray) else xr.DataArray(f) for f in fields]
    vertical = fields[2]
    if dim is None:
        if vertical.ndim != 1:
            raise ValueError(
                f"{operation}: name the vertical dimension with dim=, e.g. dim='lev' "
                f"({names[2]} has dimensions {vertical.dims})"
            )
        dim = vertical.dims[0]
    for field, name in zip(fields[:core_inputs], names[:core_inputs], strict=True):
        if dim not in field.dims:
            raise ValueError(
                f"{name} has no dimension {dim!r} (its dimensions are {field.dims}); "
                "dim= must name the vertical dimension of SA, CT and the pressure or depth"
            )
    for field, name in zip(fields[core_inputs:], names[core_inputs:], strict=True):
        if dim in field.dims:
            raise ValueError(
                f"{name} must not vary along the vertical dimension {dim!r}; "
                f"pass one value per column, e.g. {name}.isel({{{dim!r}: 0}})"
            )
    fields = list(align(*fields, names=names))
    fields = [chunked_for(f, core_dims=dim, operation=operation) for f in fields]
    together = xr.Dataset({f"_{i}": f.variable for i, f in enumerate(fields)})
    whole = whole_core_dims(together, dim, operation=operation)
    fields = [f.copy(data=whole[f"_{i}"].data) for i, f in enumerate(fields)]
    _check_increasing(fields[2], dim, names[2], operation)
    mid = f"{dim}_mid"
    out_core = {"same": [dim], "mid": [mid], "none": []}[output]
    options = {
        "kernel": kernel,
        "work_dtype": work_dtype,
        "extra": tuple(extra),
        "levels": output,
        "operation": operation,
        "vertical": f"{names[2]} along {dim!r}",
        "core": core_inputs,
    }
    result = xr.apply_ufunc(
        _run,
        *fields,
        input_core_dims=[[dim]] * core_inputs + [[]] * (len(fields) - core_inputs),
        output_core_dims=[out_core],
        kwargs=options,
        dask="allowed",
        keep_attrs=False,
    )
    coord = next((f.coords[dim] for f in fields if dim in f.coords), None)
    if output == "mid" and coord is not None and coord.dtype.kind in "iuf":
        values = 0.5 * (coord.values[1:] + coord.values[:-1])
        result = result.assign_coords({mid: (mid, values, dict(coord.attrs))})
    result.name = out_name
    result.attrs = dict(attrs)
    if output == "mid":
        return result, _mid_points(fields[2], dim, result)
    return result


def _mid_points(p: xr.DataArray, dim, N2: xr.DataArray) -> xr.DataArray:
    """Pressure at the mid-points of ``dim``, on ``p``'s own dimensions."""
    mid = f"{dim}_mid"
    upper = p.isel({dim: slice(None, -1)}).variable
    lower = p.isel({dim: slice(1, None)}).variable
    values = 0.5 * (upper + lower)
    values = xr.Variable(tuple(mid if d == dim else d for d in values.dims), values.data)
    coords = {name: c for name, c in N2.coords.items() if set(c.dims) <= set(values.dims)}
    return xr.DataArray(values, coords=coords, name="p_mid", attrs=dict(_ATTRS["p_mid"]))


def _run(*args, kernel, work_dtype, extra, levels, operation, vertical, core):
    """NumPy blocks directly, or one dask task per chunk (vertical axis last in every core input)."""
    options = {"kernel": kernel, "work_dtype": work_dtype, "extra": extra, "levels": levels}
    options.update(operation=operation, vertical=vertical)
    if not any(is_dask(a) for a in args):
        return _block(*args, **options)
    # xarray leaves out leading broadcast axes, as NumPy would: loop axes match from the right
    loop = tuple(range(max(np.ndim(a) - (i < core) for i, a in enumerate(args))))
    indexed = []
    for i, arg in enumerate(args):
        own = loop[len(loop) - (np.ndim(arg) - (i < core)) :]
        indexed += [arg, own + ("z",) if i < core else own]
    out_index = loop + (("z",) if levels != "none" else ())
    adjust = {"z": lambda size: size - 1} if levels == "mid" else None
    return map_blocks(
        _block, out_index, *indexed, dtype=work_dtype, adjust_chunks=adjust, name=f"eos-{operation}", **options
    )


def _block(*arrays, kernel, work_dtype, extra, levels, operation, vertical):
    """Run a column kernel on NumPy blocks (vertical axis last); raise if pressures do not increase."""
    dtype = np.dtype(work_dtype)
    ready = []
    for a in arrays:
        a = np.asarray(a, dtype=dtype)
        if a.ndim and a.strides[-1] != dtype.itemsize and a.shape[-1] > 1:
            a = np.ascontiguousarray(a)
        ready.append(a)
    compiled = column_kernels.KERNELS[kernel].for_dtype(dtype)
    with np.errstate(invalid="ignore"):  # NaN levels and out-of-range values: handled, and reported by check
        result, status = compiled(*ready, *(dtype.type(x) for x in extra))
    bad = int(np.count_nonzero(status))
    if bad:
        raise ValueError(f"{operation}: {vertical} does not increase strictly in {bad} column(s) {_INCREASING_FIX}")
    if levels == "mid":
        result = result[..., :-1]
    return result


_INCREASING_FIX = (
    "(among its valid levels); order the levels from the surface down, e.g. "
    "ds.sortby(dim) or ds.isel({dim: slice(None, None, -1)})"
)


def _check_increasing(vertical: xr.DataArray, dim, name, operation) -> None:
    """Refuse NumPy-backed pressures or depths that do not increase along ``dim`` (dask ones are
    checked in each task)."""
    if is_dask(vertical.data):
        return
    values = np.asarray(vertical.transpose(..., dim).values, dtype=float)
    if values.shape[-1] < 2:
        return
    with np.errstate(invalid="ignore"):
        before = np.fmax.accumulate(values, axis=-1)[..., :-1]
        bad = np.any(values[..., 1:] <= before, axis=-1)
    count = int(np.count_nonzero(bad))
    if count:
        raise ValueError(
            f"{operation}: {name} along {dim!r} does not increase strictly in {count} column(s) {_INCREASING_FIX}"
        )


def check_latitude(lat) -> None:
    if isinstance(lat, xr.DataArray):
        lat = lat.data
    if is_dask(lat):
        return
    values = np.asarray(lat, dtype=float)
    if np.any(np.abs(values) > 90):
        raise ValueError("lat must be latitudes in degrees north, between -90 and 90")


def _finite(value, name, *, minimum=None, positive=False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or (positive and value <= 0) or (minimum is not None and value < minimum):
        need = "a positive number" if positive else f"a number >= {minimum:g}" if minimum is not None else "finite"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return value
