"""Least-squares polynomial fits along a dimension: one gufunc pass per chunk.

``oceanflow.polyfit`` returns what ``DataArray.polyfit`` / ``Dataset.polyfit``
return (coefficients only), and ``oceanflow.detrend`` subtracts that fit.
Where xarray builds a Vandermonde solve per chunk plus a NaN-handling
``apply_along_axis`` fallback, oceanflow reads each chunk once in one numba
kernel (:mod:`oceanflow.kernels.fitting`) and adds one dask task per chunk.

Numerics: the abscissa is scaled to [-1, 1] and the normal equations are
accumulated in float64 in the Chebyshev basis of the scaled abscissa (well
conditioned), then the coefficients are mapped to powers of the unscaled
abscissa by a fixed ``(deg + 1)``-square matrix computed once in NumPy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Hashable
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from ._arrays import numeric_array
from ._blockwise import map_blocks
from ._dtypes import check_real_numeric, working_dtype
from .chunking import chunked_for, whole_core_dims
from .kernels.fitting import chebyshev_detrend, chebyshev_lstsq
from .variables import fields

__all__ = ["detrend", "polyfit"]

T_Labelled = TypeVar("T_Labelled", xr.DataArray, xr.Dataset)

_THIS_ARRAY = object()


def polyfit(obj: xr.DataArray | xr.Dataset, dim: Hashable, deg: int, *, skipna: bool = True) -> xr.Dataset:
    """Least-squares polynomial fit along ``dim``, like ``obj.polyfit(dim, deg)``.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        NumPy- or dask-backed; every data variable of a Dataset that has
        ``dim`` is fitted (the others are left out, as xarray does).
    dim : hashable
        Dimension (or 1-D coordinate) along which to fit.  Its coordinate is
        the abscissa; datetimes count as nanoseconds since 1970-01-01 and
        timedeltas as nanoseconds, exactly as in xarray; without a coordinate
        the abscissa is ``0, 1, ..., n-1``.
    deg : int
        Degree of the polynomial, ``>= 0``.
    skipna : bool
        True (default): each series is fitted to its own valid (non-NaN)
        points.  False: a series containing NaN gets NaN coefficients.

    Returns
    -------
    xarray.Dataset
        ``polyfit_coefficients`` (DataArray input) or
        ``<name>_polyfit_coefficients`` (Dataset input), float64, with
        dimensions ``("degree", *other dims)``; the ``degree`` coordinate
        gives the power (``deg, ..., 1, 0``).  Units: those of the data
        divided by the abscissa's units (nanoseconds for datetimes) to the
        power of each degree.  A series with ``deg`` or fewer valid points
        (or a singular fit) gets NaN coefficients, where xarray warns
        "rank deficient" and returns a minimum-norm solution.

    Notes
    -----
    A ``dim`` split over several dask chunks is rechunked whole with a
    :class:`~oceanflow.chunking.RechunkWarning` (see
    :func:`~oceanflow.chunking.whole_core_dims`).  NumPy input runs on one
    thread; chunk with dask to use more.

    Examples
    --------
    >>> import numpy as np, xarray as xr, oceanflow
    >>> da = xr.DataArray([1.0, 3.0, np.nan, 7.0], dims="time", coords={"time": [0, 1, 2, 3]})
    >>> oceanflow.polyfit(da, "time", 1).polyfit_coefficients.values  # 2 t + 1
    array([2., 1.])
    """
    deg = _check_deg(deg)
    if not isinstance(skipna, (bool, np.bool_)):
        raise TypeError(f"skipna must be True or False, got {skipna!r}")
    true_dim, x = _abscissa(obj, dim, "polyfit")
    obj = whole_core_dims(chunked_for(obj, core_dims=true_dim, operation="polyfit"), true_dim, operation="polyfit")
    t, to_power = _scaled_basis(x, deg)
    degree_dim = _free_name(obj.dims, "degree")
    kwargs = {"t": t, "to_power": to_power, "skipna": bool(skipna)}
    variables, present = {}, set()
    for name, var in _fitted_variables(obj, true_dim):
        axis = var.get_axis_num(true_dim)
        data = _map_along_axis(_fit_block, var.data, axis, deg + 1, "polyfit", kwargs)
        other = var.dims[:axis] + var.dims[axis + 1 :]
        variables[_coefficients_name(name)] = xr.Variable((degree_dim,) + other, data)
        present.update(other)
    coords: dict[Hashable, Any] = {degree_dim: np.arange(deg, -1, -1)}
    coords.update({d: obj.coords[d].variable for d in obj.dims if d in present and d in obj.coords})
    attrs = {} if isinstance(obj, xr.DataArray) else obj.attrs.copy()
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def detrend(obj: T_Labelled, dim: Hashable, deg: int = 1) -> T_Labelled:
    """Remove the least-squares polynomial fit along ``dim``, in one pass per chunk.

    Equal to ``obj - xr.polyval(obj[dim], obj.polyfit(dim, deg).polyfit_coefficients)``
    with NaN-skipping fits, but fitted and subtracted in the same kernel call
    (the fit is evaluated in the well-conditioned basis, not in powers of a
    datetime abscissa).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        NumPy- or dask-backed; every field of a Dataset along ``dim``
        (numeric, not a CF bounds variable such as ``time_bnds``; see
        :mod:`oceanflow.variables`) is detrended, the other variables are
        returned unchanged.
    dim : hashable
        Dimension (or 1-D coordinate) along which to fit; abscissa as in
        :func:`polyfit`.
    deg : int
        Degree of the removed polynomial (default 1: a linear trend; 0 removes
        the mean).

    Returns
    -------
    Same type as ``obj``, with its shape, dimension order, coordinates,
    attributes and chunks (the rechunked ones if ``dim`` had to be made
    whole), in the units of the data.  NaN stays NaN; a series with ``deg`` or
    fewer valid points becomes all NaN.  dtype: float32 stays float32
    (accumulation is float64 anyway), everything else gives float64.

    Examples
    --------
    >>> import numpy as np, xarray as xr, oceanflow
    >>> da = xr.DataArray([1.0, 3.0, np.nan, 8.0], dims="time")  # abscissa 0, 1, 2, 3
    >>> oceanflow.detrend(da, "time").values.round(3)  # minus the fit 33/14 t + 6/7
    array([ 0.143, -0.214,    nan,  0.071])
    """
    deg = _check_deg(deg)
    true_dim, x = _abscissa(obj, dim, "detrend")
    obj = whole_core_dims(chunked_for(obj, core_dims=true_dim, operation="detrend"), true_dim, operation="detrend")
    t, _ = _scaled_basis(x, deg)
    kwargs = {"t": t, "deg": deg}
    results = {}
    for name, var in _fitted_variables(_fields_along(obj, true_dim), true_dim):
        data = _map_along_axis(_detrend_block, var.data, var.get_axis_num(true_dim), None, "detrend", kwargs)
        results[name] = var.copy(data=data)
    if isinstance(obj, xr.DataArray):
        return obj.copy(data=results[_THIS_ARRAY].data)
    return obj.assign(results)


# ---------------------------------------------------------------- block functions
# Module-level, so dask pickles them by name and workers compile each kernel once.


def _fit_block(block, *, axis, t, to_power, skipna):
    """Power-basis coefficients ``(deg + 1, *other)`` of every series of one block."""
    series, rest = _series_first(block, axis)
    table = _chebyshev_table(t, 2 * (to_power.shape[0] - 1))
    coeffs = chebyshev_lstsq.for_dtype(series.dtype)(series, table, to_power, skipna)
    return coeffs.reshape(coeffs.shape[:1] + rest)


def _detrend_block(block, *, axis, t, deg):
    """``block`` minus its fit along ``axis``, same shape and axis order."""
    series, rest = _series_first(block, axis)
    table = _chebyshev_table(t, 2 * deg)
    out = chebyshev_detrend.for_dtype(series.dtype)(series, table, True)
    return np.moveaxis(out.reshape(out.shape[:1] + rest), 0, axis)


def _series_first(block, axis):
    """``block`` as ``(n, series)`` in the working dtype; a view where the layout allows."""
    block = np.asarray(block)
    work_dtype = working_dtype(block.dtype)
    y = np.moveaxis(block.astype(work_dtype, copy=False), axis, 0)
    rest = y.shape[1:]
    return y.reshape(y.shape[0], math.prod(rest)), rest


def _chebyshev_table(t, degree):
    """``table[i, p] = T_p(t_i)``, C-contiguous as the kernels require."""
    return np.ascontiguousarray(np.polynomial.chebyshev.chebvander(t, degree))


def _map_along_axis(func, data, axis, ncoeffs, label, kwargs):
    """Apply ``func`` per block of ``data`` (NumPy, or one dask task per chunk), ``axis`` whole.

    ``ncoeffs`` is None for a same-shape result; else the result has a new
    leading axis of that length in place of ``axis``.
    """
    index = tuple(range(data.ndim))
    if not ncoeffs:
        return map_blocks(func, index, data, index, dtype=working_dtype(data.dtype), name=label, axis=axis, **kwargs)
    out_index = ("degree", *index[:axis], *index[axis + 1 :])
    return map_blocks(
        func, out_index, data, index, dtype=np.float64, new_axes={"degree": ncoeffs}, name=label, axis=axis, **kwargs
    )


# ---------------------------------------------------------------- inputs


def _check_deg(deg) -> int:
    if isinstance(deg, (bool, np.bool_)):
        raise TypeError(f"deg must be a non-negative integer, got {deg!r}")
    try:
        deg = operator.index(deg)
    except TypeError:
        raise TypeError(
            f"deg must be a non-negative integer (the polynomial degree), got {deg!r} of type {type(deg).__name__}"
        ) from None
    if deg < 0:
        raise ValueError(f"deg must be a non-negative integer (the polynomial degree), got {deg}")
    return deg


def _abscissa(obj, dim, operation):
    """The fitting dimension and its abscissa as float64 (xarray's convention)."""
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise TypeError(
            f"{operation} takes an xarray DataArray or Dataset, got {type(obj).__name__}; "
            "wrap arrays with xr.DataArray(values, dims=...)"
        )
    if not isinstance(dim, Hashable) or (dim not in obj.dims and dim not in obj.coords):
        raise ValueError(
            f"{operation}: {dim!r} is neither a dimension nor a coordinate of the input "
            f"(dimensions: {tuple(obj.dims)}); pass one of its dimensions"
        )
    if dim not in obj.coords:
        return dim, np.arange(obj.sizes[dim], dtype=np.float64)
    coord = obj.coords[dim]
    if coord.ndim != 1:
        raise ValueError(f"{operation}: coordinate {dim!r} has dimensions {coord.dims}; the abscissa must be 1-D")
    values = np.asarray(coord.values)
    if values.dtype.kind in "Mm" and np.isnat(values).any():
        raise ValueError(f"{operation}: coordinate {dim!r} contains NaT; drop those points first")
    try:
        x = np.asarray(numeric_array(values), dtype=np.float64)
    except TypeError as err:
        raise TypeError(
            f"{operation}: coordinate {dim!r} cannot serve as abscissa ({err}); "
            "cftime dates are not supported: convert them to numbers first"
        ) from None
    if not np.isfinite(x).all():
        raise ValueError(f"{operation}: coordinate {dim!r} contains NaN or inf; drop those points first")
    return coord.dims[0], x


def _fields_along(obj, dim):
    """A Dataset's fields along ``dim`` only: CF bounds (``time_bnds``) and text are left alone."""
    if isinstance(obj, xr.DataArray):
        return obj
    names = fields(obj, dim)
    if not names:
        raise ValueError(f"no numeric data variable (other than CF bounds) has dimension {dim!r}; nothing to detrend")
    return obj[names]


def _fitted_variables(obj, true_dim):
    """(name, Variable) of each data variable along ``true_dim``; numeric checked."""
    if isinstance(obj, xr.DataArray):
        items = [(_THIS_ARRAY, obj.variable)]
    else:
        items = [(name, var.variable) for name, var in obj.data_vars.items() if true_dim in var.dims]
    if not items:
        raise ValueError(f"no data variable has dimension {true_dim!r}; nothing to fit")
    for name, var in items:
        label = "the data" if name is _THIS_ARRAY else f"data variable {name!r}"
        if var.dtype.kind == "m" or var.dtype.kind == "M":
            raise TypeError(
                f"{label} holds {var.dtype} values; convert them to numbers first, "
                "e.g. (values - t0) / np.timedelta64(1, 'D')"
            )
        try:
            check_real_numeric(var.dtype, label)
        except TypeError as err:
            if name is _THIS_ARRAY:
                raise
            raise TypeError(f"{err}; or leave it out: obj.drop_vars({name!r})") from None
    return items


def _scaled_basis(x, deg):
    """Abscissa scaled to [-1, 1] and the Chebyshev -> power-of-``x`` matrix.

    ``to_power[r, k]`` is the coefficient of ``x**(deg - r)`` in
    ``T_k((x - mid) / half)``: NumPy order, highest power first.
    """
    if x.size:
        lo, hi = float(x.min()), float(x.max())
    else:
        lo = hi = 0.0
    mid = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo) or 1.0
    t = (x - mid) / half
    affine = np.polynomial.Polynomial([-mid / half, 1.0 / half])
    to_power = np.zeros((deg + 1, deg + 1))
    for k in range(deg + 1):
        power_t = np.polynomial.chebyshev.cheb2poly(np.eye(deg + 1)[k])
        ascending = np.polynomial.Polynomial(power_t)(affine).coef
        to_power[deg + 1 - ascending.size :, k] = ascending[::-1]
    return t, to_power


def _coefficients_name(name):
    if name is _THIS_ARRAY or not isinstance(name, str):
        return "polyfit_coefficients"
    return f"{name}_polyfit_coefficients"


def _free_name(dims, name):
    """``name`` prefixed with underscores until it is not in ``dims`` (as xarray does)."""
    while name in dims:
        name = "_" + name
    return name
