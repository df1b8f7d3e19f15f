"""Point-wise polynomial evaluation: one gufunc pass per chunk, any degree.

``oceanflow.polyval`` evaluates a polynomial (and, on request, its first
derivative) with Horner's scheme inside one numba kernel.  Where
``np.polyval`` makes a temporary array per term and ``xr.polyval`` two dask
tasks per degree per chunk, oceanflow reads ``x`` once and adds one task per
chunk, whatever the degree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import is_dask, numeric_array, unmasked
from ._blockwise import map_blocks, map_fields
from ._dtypes import check_real_numeric, working_dtype
from ._parallel import run_sliced
from .alignment import align
from .chunking import chunked_for
from .kernels.polynomials import horner, horner_deriv, horner_varying, horner_varying_deriv
from .variables import fields

logger = logging.getLogger("oceanflow.polynomials")

__all__ = ["polyval"]

ArrayLike = Any  # NumPy, dask or array-like input
Labelled = xr.DataArray | xr.Dataset


def polyval(
    x: ArrayLike | Labelled,
    coeffs: Sequence[float] | np.ndarray | Labelled,
    *,
    deriv: bool = False,
    out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
    degree_dim: str = "degree",
    units: str | tuple[str, str] | None = None,
) -> Any:
    """Evaluate a polynomial point-wise: ``np.polyval`` and ``xr.polyval`` in one pass.

    Parameters
    ----------
    x : array_like, numpy.ndarray, dask.array.Array, xarray.DataArray or xarray.Dataset
        Where to evaluate, NumPy- or dask-backed.  Datetimes count as
        nanoseconds since 1970-01-01, as in ``xr.polyval``.  NaN propagates;
        the masked values of a NumPy masked array count as NaN (a plain
        array comes back), as everywhere in oceanflow.
        Of a Dataset, the *fields* are evaluated (numeric data variables that
        are not CF bounds, see :func:`oceanflow.variables.fields`); bounds
        (``lat_bnds``), non-numeric variables and coordinates are carried to
        the result unchanged.  The names of both kinds are logged (logger
        ``oceanflow.polynomials``, INFO).
    coeffs : sequence, numpy.ndarray, xarray.DataArray or xarray.Dataset
        * 1-D sequence or array: NumPy order, highest power first, exactly as
          ``np.polyval(coeffs, x)``.
        * N-D NumPy array ``(m, ...)``: ``coeffs[0]`` multiplies the highest
          power and ``coeffs.shape[1:]`` broadcasts against ``x`` (as
          ``np.polyval``).
        * DataArray or Dataset with a ``degree`` dimension whose coordinate
          labels the power (xarray's convention, what ``DataArray.polyfit``
          returns); its other dimensions broadcast against ``x`` and are
          matched to ``x``'s by coordinate label (:func:`oceanflow.alignment.align`:
          a reversed axis is reordered, different labels are an error).  A
          Dataset of coefficients gives one result per coefficient variable
          (for a DataArray ``x``) or is matched to ``x``'s fields by name.
    deriv : bool
        Also return the first derivative ``dp/dx``, computed in the same pass.
    out : numpy.ndarray or tuple of two, optional
        Preallocated result (and derivative) for NumPy input, as for NumPy
        ufuncs: a writeable float array of the result's shape (a lower
        precision rounds, as NumPy's ``out=``); anything else is refused
        before any work.
    degree_dim : str
        Name of the power dimension of xarray coefficients.
    units : str or (str, str), optional
        ``units`` attribute of the xarray result (and of the derivative, as
        a pair).  Without it the result has no ``units`` and no other
        attribute of ``x``: a polynomial changes what the numbers are.

    Returns
    -------
    Same kind as ``x`` (a Dataset for Dataset coefficients); a tuple
    ``(value, derivative)`` when ``deriv=True``.  Units are those of the
    coefficients times ``x``'s units to the power of each term: say them
    with ``units=``.

    Notes
    -----
    dtype rule (NumPy's): the computation runs in float32 when ``x`` and the
    coefficients are both float32 (or float16), otherwise in float64; a
    Python list of floats counts as float64, so pass
    ``np.asarray(c, "float32")`` to keep float32 data in float32.  Integer
    input computes in float64 (``np.polyval`` would keep integers).  The
    command line ``oceanflow polyval`` keeps the input's float dtype unless
    ``--dtype`` says otherwise.

    Examples
    --------
    >>> import oceanflow
    >>> oceanflow.polyval(np.array([0.0, 1.0, 2.0]), [3.0, 2.0, 1.0])  # 3x^2 + 2x + 1
    array([ 1.,  6., 17.])
    >>> kelvin = xr.DataArray([273.15, 283.15], dims="z", attrs={"units": "K"})
    >>> oceanflow.polyval(kelvin, [1.0, -273.15], units="degC").attrs
    {'units': 'degC'}
    >>> fit = da.polyfit("time", deg=2)                             # doctest: +SKIP
    >>> trend = oceanflow.polyval(da.time, fit.polyfit_coefficients)  # doctest: +SKIP
    """
    unit_attrs = _unit_attrs(units, deriv)
    labelled_x = isinstance(x, (xr.DataArray, xr.Dataset))
    if unit_attrs and not labelled_x:
        raise TypeError(
            f"units= labels xarray results; x is a {type(x).__name__}: leave units out, "
            "or wrap x in an xarray.DataArray"
        )
    if isinstance(coeffs, (xr.DataArray, xr.Dataset)):
        if not labelled_x:
            raise TypeError(
                "with xarray coefficients, x must be a DataArray or Dataset so that their "
                f"dimensions can be matched (got {type(x).__name__}); wrap it in xr.DataArray(x, dims=...)"
            )
        _refuse_out(out, type(x).__name__)
        result = _polyval_labelled(x, _descending_powers(coeffs, degree_dim), degree_dim, deriv)
    elif labelled_x:
        _refuse_out(out, type(x).__name__)
        result = _polyval_xarray(x, _coefficient_array(coeffs), deriv, degree_dim)
    else:
        return _polyval_array(x, _coefficient_array(coeffs), deriv, out)
    return _labelled(result, x, unit_attrs)


# ---------------------------------------------------------------- xarray


def _polyval_xarray(x, coeffs, deriv, degree_dim):
    """DataArray or Dataset ``x``, plain NumPy coefficients."""
    if coeffs.ndim > 1:
        raise ValueError(
            f"coefficients of shape {coeffs.shape} cannot be matched to the dimensions of "
            f"{type(x).__name__} x; wrap them in a DataArray with a '{degree_dim}' dimension "
            "(coordinate = power) and the dimensions they vary along"
        )
    x = chunked_for(_numeric(x), operation="polyval")
    apply = map_fields if isinstance(x, xr.Dataset) else xr.apply_ufunc
    return apply(
        _polyval_array,
        x,
        kwargs={"coeffs": coeffs, "deriv": deriv},
        dask="allowed",
        output_core_dims=[()] * (1 + deriv),
        keep_attrs=True,  # coordinates keep theirs; the results' own go in _labelled
    )


def _polyval_labelled(x, coeffs, degree_dim, deriv):
    """Evaluate with xarray-convention coefficients (dense, highest power first)."""
    x = chunked_for(_numeric(x), operation="polyval")
    if degree_dim in x.dims:
        raise ValueError(f"x has the coefficients' power dimension {degree_dim!r}; rename it")
    if isinstance(x, xr.Dataset) and isinstance(coeffs, xr.Dataset):
        missing = [name for name in fields(x) if name not in coeffs.data_vars]
        if missing:
            raise ValueError(
                f"the fields {missing} of x have no coefficients of the same name (coefficients: "
                f"{list(coeffs.data_vars)}); select the fields to evaluate, or pass a DataArray of coefficients"
            )
        coeffs = coeffs[fields(x)]
    x, coeffs = align(x, coeffs, names=("x", "coefficients"), exclude=(degree_dim,))
    apply = map_fields if isinstance(x, xr.Dataset) else xr.apply_ufunc
    return apply(
        _varying_array,
        x,
        coeffs,
        input_core_dims=[[], [degree_dim]],
        output_core_dims=[()] * (1 + deriv),
        kwargs={"deriv": deriv},
        dask="allowed",
        keep_attrs=True,  # coordinates keep theirs; the results' own go in _labelled
    )


def _unit_attrs(units, deriv):
    """``units=`` as the attributes of each result: a tuple of one or two dicts, or ()."""
    if units is None:
        return ()
    pair = (units,) if isinstance(units, str) else tuple(units)
    if len(pair) != 1 + deriv and not (len(pair) == 1 and deriv):
        raise ValueError(f"units= takes one string (or, with deriv=True, two: value and derivative), got {units!r}")
    if not all(isinstance(u, str) for u in pair):
        raise TypeError(f"units= must be a string (or a pair of strings), got {units!r}")
    attrs = tuple({"units": u} for u in pair)
    return attrs + ({},) * (1 + deriv - len(attrs))


def _labelled(result, x, unit_attrs):
    """xarray ``result`` (or pair): each computed variable with ``unit_attrs`` as its only
    attributes (a polynomial changes what the numbers are); carried variables as they were."""
    results = result if isinstance(result, tuple) else (result,)
    unit_attrs = unit_attrs or ({},) * len(results)
    computed = fields(x) if isinstance(x, xr.Dataset) else None
    if computed is not None:
        carried = [name for name in x.data_vars if name not in computed]
        logger.info(
            "polyval: evaluated %s; carried unchanged: %s",
            ", ".join(map(str, computed)),
            ", ".join(map(str, carried)) or "none",
        )
    labelled = []
    for r, attrs in zip(results, unit_attrs, strict=True):
        if isinstance(r, xr.DataArray):
            labelled.append(r.drop_attrs(deep=False).assign_attrs(attrs))
        else:
            names = computed if computed is not None else list(r.data_vars)
            labelled.append(r.assign({name: r[name].drop_attrs(deep=False).assign_attrs(attrs) for name in names}))
    return tuple(labelled) if isinstance(result, tuple) else labelled[0]


# ---------------------------------------------------------------- NumPy and dask


def _polyval_array(x, coeffs, deriv=False, out=None):
    """NumPy or dask array ``x``, plain NumPy coefficients."""
    if is_dask(x):
        _refuse_out(out, "a dask array")
        return _polyval_dask(x, coeffs, deriv)
    return _polyval_numpy(np.asarray(unmasked(x)), coeffs, deriv, out)


def _polyval_numpy(x, coeffs, deriv, out):
    x = _numeric_array(x)
    work_dtype = working_dtype(x.dtype, coeffs.dtype, names=["x", "coefficients"])
    shape = x.shape if coeffs.ndim == 1 else _varying_shape(x.shape, coeffs.shape)
    outs = _checked_out(out, shape, work_dtype, 1 + deriv)  # before any work
    if coeffs.ndim > 1:
        return _deliver(_varying_block(x, np.moveaxis(coeffs, 0, -1), deriv), outs, deriv)
    x = np.asarray(x, dtype=work_dtype, order="C")
    coeffs = coeffs.astype(work_dtype)
    targets = [given if _writable_by_kernel(given, work_dtype) else np.empty(shape, work_dtype) for given in outs]
    flat_x = x.reshape(-1)
    flat_targets = [t.reshape(-1) for t in targets]
    kernel = (horner_deriv if deriv else horner).for_dtype(work_dtype)
    run_sliced(lambda part: kernel(flat_x[part], coeffs, *[t[part] for t in flat_targets]), flat_x.size)
    return _deliver(tuple(targets) if deriv else targets[0], outs, deriv)


def _polyval_dask(x, coeffs, deriv):
    x = _numeric_array(x)
    if coeffs.ndim > 1:
        raise ValueError(
            "N-D coefficients with a bare dask array are ambiguous; wrap x and the "
            "coefficients in DataArrays (coefficients with a 'degree' dimension)"
        )
    work_dtype = working_dtype(x.dtype, coeffs.dtype, names=["x", "coefficients"])
    index = tuple(range(x.ndim))
    return map_blocks(
        _constant_block,
        index,
        x,
        index,
        dtype=(work_dtype,) * 2 if deriv else work_dtype,
        name="polyval",
        coeffs=coeffs.astype(work_dtype),
        deriv=deriv,
    )


def _varying_array(x, coeffs, deriv=False):
    """NumPy or dask ``x`` with per-point coefficients (powers on the last axis)."""
    ndim = max(np.ndim(x), np.ndim(coeffs) - 1)
    axes = tuple(range(ndim))
    x_index = axes[ndim - np.ndim(x) :]
    c_index = (*axes[ndim - np.ndim(coeffs) + 1 :], "degree")  # "degree" is dropped: every block holds all powers
    work_dtype = working_dtype(x.dtype, coeffs.dtype, names=["x", "coefficients"])
    return map_blocks(
        _varying_block,
        axes,
        x,
        x_index,
        coeffs,
        c_index,
        dtype=(work_dtype,) * 2 if deriv else work_dtype,
        name="polyval",
        deriv=deriv,
    )


# ---------------------------------------------------------------- block functions
# Module-level, so dask pickles them by name and workers compile each kernel once.


def _constant_block(x, coeffs, deriv=False):
    """Evaluate on one chunk with constant 1-D coefficients (highest power first, in the working dtype)."""
    x = np.asarray(x, dtype=coeffs.dtype, order="C")
    flat = x.reshape(-1)
    if deriv:
        value, slope = horner_deriv.for_dtype(coeffs.dtype)(flat, coeffs)
        return value.reshape(x.shape), slope.reshape(x.shape)
    return horner.for_dtype(coeffs.dtype)(flat, coeffs).reshape(x.shape)


def _varying_block(x, coeffs, deriv=False):
    """Evaluate on one chunk; ``coeffs`` has the powers (highest first) on its last axis."""
    x, coeffs = unmasked(x), unmasked(coeffs)
    work_dtype = working_dtype(x.dtype, coeffs.dtype)
    shape: tuple[int, ...] = np.broadcast_shapes(np.shape(x), coeffs.shape[:-1])
    kernel_shape: tuple[int, ...] = shape if shape else (1,)
    x = np.broadcast_to(np.asarray(x, dtype=work_dtype), kernel_shape)
    c = np.asarray(coeffs, dtype=work_dtype)
    c = c.reshape((1,) * (len(kernel_shape) + 1 - c.ndim) + c.shape)
    powers = np.shape(coeffs)[-1]
    c = np.broadcast_to(np.moveaxis(c, -1, -2), (*kernel_shape[:-1], powers, kernel_shape[-1]))
    kernel = horner_varying_deriv if deriv else horner_varying
    result = kernel.for_dtype(work_dtype)(x, c)
    if deriv:
        return tuple(r.reshape(shape) for r in result)
    return result.reshape(shape)


# ---------------------------------------------------------------- out=


def _varying_shape(x_shape, coeffs_shape):
    """The result shape for N-D NumPy coefficients (powers on axis 0), or a clear error."""
    try:
        return np.broadcast_shapes(x_shape, coeffs_shape[1:])
    except ValueError:
        raise ValueError(
            f"coefficients of shape {coeffs_shape} (powers on axis 0) do not broadcast against x of "
            f"shape {x_shape}: their shape after axis 0 must match x's from the right, with 1 where x varies"
        ) from None


def _checked_out(out, shape, dtype, wanted):
    """``out`` as a tuple of ``wanted`` arrays (or Nones), refused before any work unless each
    is a writeable float ndarray of the result's ``shape``."""
    outs = out if isinstance(out, tuple) else (out,)
    if out is None:
        outs = (None,) * wanted
    names = ("value", "derivative")[:wanted]
    if len(outs) != wanted:
        raise ValueError(
            f"out must hold {wanted} array(s) ({', '.join(names)}), got {len(outs)}; "
            f"e.g. out=({', '.join(f'np.empty({shape}, {dtype.name!r})' for _ in names)})"
        )
    fix = f"pass np.empty({shape}, {dtype.name!r}) or leave out= away"
    for given, name in zip(outs, names, strict=True):
        if given is None:
            continue
        if not isinstance(given, np.ndarray) or isinstance(given, np.ma.MaskedArray):
            raise TypeError(f"out ({name}) must be a plain NumPy array, got {type(given).__name__}; {fix}")
        if given.dtype.kind != "f":
            raise TypeError(f"out ({name}) has dtype {given.dtype}, but the result is {dtype.name}; {fix}")
        if given.shape != tuple(shape):
            raise ValueError(f"out ({name}) has shape {given.shape}, but the result has shape {tuple(shape)}; {fix}")
        if not given.flags.writeable:
            raise ValueError(f"out ({name}) is read-only; {fix}")
    return outs


def _writable_by_kernel(given, dtype):
    return given is not None and given.dtype == dtype and given.flags.c_contiguous


def _deliver(result, outs, deriv):
    """``result`` (or pair), copied into the checked ``outs`` where the kernel did not write directly."""
    results = result if deriv else (result,)
    delivered = []
    for res, given in zip(results, outs, strict=True):
        if given is None:
            delivered.append(res[()] if res.ndim == 0 else res)
            continue
        if given is not res:
            np.copyto(given, res, casting="same_kind")  # float64 into float32 rounds, as NumPy's out=
        delivered.append(given)
    return tuple(delivered) if deriv else delivered[0]


def _refuse_out(out, what):
    if out is not None:
        raise TypeError(f"out= is for NumPy input; x is {what}: use the returned object instead")


def _descending_powers(coeffs, degree_dim):
    """xarray coefficients reindexed to powers max_degree, ..., 1, 0 (missing = 0)."""
    if degree_dim not in coeffs.dims:
        raise ValueError(
            f"coefficients have dimensions {tuple(coeffs.dims)} but no {degree_dim!r} dimension; "
            f"label the powers with a {degree_dim!r} coordinate (as DataArray.polyfit returns) "
            "or pass degree_dim="
        )
    if degree_dim not in coeffs.coords:
        raise ValueError(
            f"dimension {degree_dim!r} of the coefficients needs a coordinate giving each power, "
            f"e.g. coeffs.assign_coords({degree_dim}=[2, 1, 0])"
        )
    powers = coeffs[degree_dim].values
    if powers.size == 0:
        raise ValueError("coefficients are empty: give at least one power")
    if powers.dtype.kind not in "iu" or powers.min() < 0 or len(set(powers.tolist())) != powers.size:
        raise ValueError(f"the {degree_dim!r} coordinate must hold distinct non-negative integers, got {powers}")
    variables = coeffs.data_vars.values() if isinstance(coeffs, xr.Dataset) else [coeffs]
    for var in variables:
        check_real_numeric(var.dtype, f"coefficients {var.name or ''}".strip())
    return coeffs.reindex({degree_dim: np.arange(int(powers.max()), -1, -1)}, fill_value=0)


# ---------------------------------------------------------------- input conversion


def _coefficient_array(coeffs) -> np.ndarray:
    try:
        array = np.asarray(unmasked(coeffs))
    except (TypeError, ValueError) as err:
        raise TypeError(f"coefficients must be a sequence of numbers: {err}") from None
    check_real_numeric(array.dtype, "coefficients")
    if array.ndim == 0:
        raise ValueError("coefficients must be a sequence (highest power first), got a scalar")
    if array.shape[0] == 0:
        raise ValueError("coefficients are empty: give at least one (highest power first)")
    return array


def _numeric_array(x):
    """Datetimes as float nanoseconds since 1970-01-01 (xarray's convention); real numbers checked."""
    x = numeric_array(x)
    check_real_numeric(x.dtype, "x")
    return x


def _numeric(x: Labelled) -> Labelled:
    """A DataArray of datetimes as float nanoseconds, others checked; a Dataset as it is
    (its fields are numeric by definition)."""
    if isinstance(x, xr.Dataset):
        return x
    if x.dtype.kind in "Mm":
        return x.copy(data=_numeric_array(x.data))
    if x.dtype.kind == "O":
        raise TypeError(
            "x has object dtype (cftime dates?); convert to numbers first, e.g. with "
            "xr.DataArray(...).dt.days_in_month or (time - time[0]) / np.timedelta64(1, 'D')"
        )
    check_real_numeric(x.dtype, f"x {x.name or ''}".strip())
    return x
