"""Seawater density from the TEOS-10 75-term polynomial (Roquet et al. 2015).

The same polynomial as GSW's ``gsw_specvol`` family, evaluated in one numba
gufunc pass per chunk (one dask task per chunk) or, for in-memory NumPy
input, on all cores.  Inputs, for every function:

* ``SA`` Absolute Salinity (g kg-1), ``CT`` Conservative Temperature (degC),
  ``p`` sea pressure (dbar, absolute pressure minus 10.1325 dbar);
* scalars, NumPy arrays, dask arrays or xarray DataArrays (NumPy- or
  dask-backed), broadcast against each other as NumPy (by position) or
  xarray (by dimension name) would; scalars mix with anything;
* float32 results only when every input is float32 (``oceanflow._dtypes``),
  else float64; NaN propagates, and the masked values of NumPy masked
  arrays count as NaN.

What must be passed: Absolute Salinity, Conservative Temperature and sea
pressure, not what most model and observation files hold (practical
salinity ``so``, potential temperature ``thetao``, in-situ temperature,
depth ``lev`` in metres).  DataArray inputs whose ``standard_name`` or
``units`` say they are one of those are refused, with the TEOS-10
conversion that makes the right input (``SA_from_SP``, ``CT_from_pt``,
``CT_from_t``, ``p_from_z``); inputs without these attributes (NumPy and
dask arrays, bare DataArrays) are taken to be what the function asks for.
DataArrays meet by their coordinate labels (:func:`oceanflow.alignment.align`):
a reversed axis is reordered, different labels are an error.

DataArray results carry ``units``, ``long_name`` and, where the CF standard
name table has one that fits, ``standard_name``: ``sea_water_density`` for
``rho`` and ``sea_water_sigma_theta`` (potential density minus 1000 kg m-3,
reference pressure by default the surface) for ``sigma0``.  The table has no
name for specific volume or for alpha/beta with respect to Conservative
Temperature; sigma1-sigma4 would need a scalar ``reference_pressure``
coordinate, which would make their results clash when merged into one
Dataset, so these get ``long_name`` only (add
``.assign_coords(reference_pressure=...)`` yourself for strict CF).

Example
-------
>>> import numpy as np
>>> from oceanflow import eos
>>> eos.rho(np.array([35.0, 34.0]), np.array([10.0, 2.0]), 1000.0)
array([1031.28107437, 1031.70548744])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import is_dask, unmasked
from ._blockwise import map_blocks, right_aligned
from ._dtypes import check_real_numeric, working_dtype
from ._parallel import run_sliced
from .alignment import align
from .chunking import chunked_for
from .kernels.eos import KERNELS

__all__ = [
    "alpha",
    "beta",
    "rho",
    "rho_alpha_beta",
    "sigma0",
    "sigma1",
    "sigma2",
    "sigma3",
    "sigma4",
    "specvol",
]

#: A scalar, NumPy array, dask array or xarray DataArray.
Field = Any

_NAMES = ("SA", "CT", "p")

_ATTRS = {
    "specvol": {"units": "m3 kg-1", "long_name": "specific volume of seawater"},
    "rho": {"units": "kg m-3", "standard_name": "sea_water_density", "long_name": "in-situ density of seawater"},
    "alpha": {
        "units": "1/K",
        "long_name": "thermal expansion coefficient with respect to Conservative Temperature",
    },
    "beta": {
        "units": "kg g-1",
        "long_name": "saline contraction coefficient at constant Conservative Temperature",
    },
    **{
        f"sigma{n}": {"units": "kg m-3", "long_name": f"potential density anomaly referenced to {1000 * n} dbar"}
        for n in range(5)
    },
}
_ATTRS["sigma0"]["standard_name"] = "sea_water_sigma_theta"  # CF: reference pressure 0 unless stated


def specvol(SA: Field, CT: Field, p: Field) -> Any:
    """Specific volume of seawater, v (m3 kg-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> specvol(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00096967])
    """
    return _evaluate("specvol", (SA, CT, p), ("specvol",))


def rho(SA: Field, CT: Field, p: Field) -> Any:
    """In-situ density of seawater, 1/v (kg m-3).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> rho(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([1031.28107437])
    """
    return _evaluate("rho", (SA, CT, p), ("rho",))


def alpha(SA: Field, CT: Field, p: Field) -> Any:
    """Thermal expansion coefficient with respect to CT, (dv/dCT)/v (1/K).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> alpha(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00018636])
    """
    return _evaluate("alpha", (SA, CT, p), ("alpha",))


def beta(SA: Field, CT: Field, p: Field) -> Any:
    """Saline contraction coefficient at constant CT, -(dv/dSA)/v (kg g-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> beta(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00074303])
    """
    return _evaluate("beta", (SA, CT, p), ("beta",))


def rho_alpha_beta(SA: Field, CT: Field, p: Field) -> Any:
    """``(rho, alpha, beta)`` from one pass over the data (kg m-3, 1/K, kg g-1).

    Same values as :func:`rho`, :func:`alpha` and :func:`beta` (to rounding);
    reads the inputs and evaluates the polynomial once for all three.

    >>> r, a, b = rho_alpha_beta(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    >>> r, a, b
    (array([1031.28107437]), array([0.00018636]), array([0.00074303]))
    """
    return _evaluate("rho_alpha_beta", (SA, CT, p), ("rho", "alpha", "beta"))


def _sigma_function(number: int, example: str) -> Callable[[Field, Field], Any]:
    p_ref = 1000.0 * number

    def sigma(SA: Field, CT: Field) -> Any:
        return _evaluate("sigma", (SA, CT), (f"sigma{number}",), p_ref=p_ref)

    sigma.__name__ = sigma.__qualname__ = f"sigma{number}"
    sigma.__doc__ = f"""Potential density anomaly referenced to {p_ref:.0f} dbar (kg m-3).

    ``rho(SA, CT, {p_ref:.0f}) - 1000``, subtracted in float64 before rounding, so
    float32 results keep their digits.  ``SA`` (g kg-1), ``CT`` (degC); see the
    module doc.

    >>> sigma{number}(np.array([35.0]), np.array([10.0]))
    array([{example}])
    """
    return sigma


sigma0 = _sigma_function(0, "26.82464446")
sigma1 = _sigma_function(1, "31.28107437")
sigma2 = _sigma_function(2, "35.63884335")
sigma3 = _sigma_function(3, "39.90011828")
sigma4 = _sigma_function(4, "44.06716485")


# ---------------------------------------------------------------- dispatch


def _evaluate(kernel: str, args, outputs, p_ref=None):
    """Check the inputs, pick the dtype and run ``kernel`` on NumPy, dask or xarray input."""
    names = _NAMES[: len(args)]
    args = [_checked(arg, name) for arg, name in zip(args, names, strict=True)]
    work_dtype = working_dtype(*(arg.dtype for arg in args), names=names)
    options = {
        "kernel": kernel,
        "work_dtype": work_dtype,
        "extra": () if p_ref is None else (p_ref,),
        "nout": len(outputs),
    }
    if any(isinstance(arg, xr.DataArray) for arg in args):
        return _evaluate_xarray(args, names, outputs, options)
    shapes = [arg.shape for arg in args]
    if not any(np.isnan(size) for shape in shapes for size in shape):  # dask: unknown sizes are NaN
        _broadcast_shape(shapes, names)
    results = _evaluate_arrays(*args, **options)
    if any(is_dask(arg) for arg in args):
        return results
    results = results if len(outputs) > 1 else (results,)
    results = tuple(r[()] if r.ndim == 0 else r for r in results)
    return results if len(outputs) > 1 else results[0]


def _block(*arrays, kernel, work_dtype, extra=(), nout=1, threaded=False):
    """Broadcast NumPy ``arrays``, run ``kernel`` in ``work_dtype`` on them flat and
    C-contiguous, reshape.

    Module-level so that dask pickles it by name; ``threaded`` splits the call
    over oceanflow's threads (in-memory input only, never inside dask tasks).
    """
    dtype = np.dtype(work_dtype)
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    flat = [np.asarray(np.broadcast_to(a, shape), dtype=dtype, order="C").reshape(-1) for a in arrays]
    size = flat[0].size
    outs = [np.empty(size, dtype) for _ in range(nout)]
    scalars = [dtype.type(value) for value in extra]
    compiled = KERNELS[kernel].for_dtype(dtype)

    def run(part):
        compiled(*(a[part] for a in flat), *scalars, *(o[part] for o in outs))

    if threaded:
        run_sliced(run, size)
    else:
        run(slice(None))
    results = tuple(o.reshape(shape) for o in outs)
    return results if nout > 1 else results[0]


def _evaluate_dask(args, options):
    """One task per output chunk; blocks of the inputs matched from the right, as in NumPy."""
    ndim = max(np.ndim(arg) for arg in args)
    nout = options["nout"]
    work_dtype = options["work_dtype"]
    return map_blocks(
        _block,
        tuple(range(ndim)),
        *right_aligned(args, ndim),
        dtype=(work_dtype,) * nout if nout > 1 else work_dtype,
        name=f"eos-{options['kernel']}",
        **options,
    )


def _evaluate_arrays(*args, **options):
    """NumPy blocks on all cores, or a dask graph of one task per chunk."""
    if any(is_dask(arg) for arg in args):
        return _evaluate_dask(args, options)
    return _block(*(unmasked(arg) for arg in args), threaded=True, **options)


def _evaluate_xarray(args, names, outputs, options):
    for arg, name in zip(args, names, strict=True):
        if not isinstance(arg, xr.DataArray) and arg.ndim > 0:
            raise TypeError(
                f"{name} is a {arg.ndim}-D {type(arg).__name__} but another input is a DataArray: "
                f"its dimensions are ambiguous; wrap it, e.g. xr.DataArray({name}, dims=(...))"
            )
    args = [chunked_for(a, operation="eos") if isinstance(a, xr.DataArray) else xr.DataArray(a) for a in args]
    args = list(align(*args, names=names))
    nout = len(outputs)
    results = xr.apply_ufunc(
        _evaluate_arrays, *args, kwargs=options, dask="allowed", output_core_dims=[()] * nout, keep_attrs=False
    )
    results = results if nout > 1 else (results,)
    for result, name in zip(results, outputs, strict=True):
        result.name = name
        result.attrs = dict(_ATTRS[name])
    return results if nout > 1 else results[0]


# ---------------------------------------------------------------- input checks


def _checked(arg, name):
    """``arg`` as a DataArray, dask array or NumPy array of real numbers."""
    if isinstance(arg, xr.Dataset):
        raise TypeError(f"{name} is a Dataset; pass its DataArray, e.g. ds[{name!r}]")
    arg = unmasked(arg)  # masked values are NaN, as everywhere in oceanflow
    if isinstance(arg, xr.DataArray):
        check_declared(arg, name)
    elif not is_dask(arg):
        try:
            arg = np.asarray(arg)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a number or an array of numbers: {err}") from None
    check_real_numeric(arg.dtype, name)
    return arg


def _broadcast_shape(shapes, names):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        given = ", ".join(f"{name} {tuple(shape)}" for name, shape in zip(names, shapes, strict=True))
        raise ValueError(
            f"input shapes do not broadcast together: {given}.  Axes are matched from the right "
            "and must be equal or 1, e.g. a pressure profile of shape (nz, 1, 1) for fields of "
            "shape (nz, ny, nx); or use DataArrays, matched by dimension name"
        ) from None


# ---------------------------------------------------------------- declared meaning
# What an input's CF attributes say it is, when that is not what the function takes.

_PRACTICAL_SALINITY = "practical salinity"
_POTENTIAL_TEMPERATURE = "potential temperature"
_IN_SITU_TEMPERATURE = "in-situ temperature"
_DEPTH = "a depth or height"

#: standard_name -> what the values are, for each input.
_WRONG_STANDARD_NAMES = {
    "SA": {
        "sea_water_practical_salinity": _PRACTICAL_SALINITY,
        "sea_water_salinity": _PRACTICAL_SALINITY,  # CMIP's so, Argo's PSAL: PSS-78 in practice
        "sea_surface_salinity": _PRACTICAL_SALINITY,
        "sea_water_cox_salinity": "Cox salinity",
        "sea_water_knudsen_salinity": "Knudsen salinity",
    },
    "CT": {
        "sea_water_potential_temperature": _POTENTIAL_TEMPERATURE,
        "sea_surface_temperature": _POTENTIAL_TEMPERATURE,  # at the surface, in-situ = potential
        "sea_water_temperature": _IN_SITU_TEMPERATURE,
        "sea_water_in_situ_temperature": _IN_SITU_TEMPERATURE,
    },
    "p": {
        "depth": _DEPTH,
        "height": _DEPTH,
        "altitude": _DEPTH,
        "depth_below_geoid": _DEPTH,
        "height_above_geoid": _DEPTH,
        "height_above_reference_ellipsoid": _DEPTH,
        "ocean_depth": _DEPTH,
    },
}

#: units (lower case, no spaces) -> what the values are, for each input.
_WRONG_UNITS = {
    "SA": {
        **dict.fromkeys(
            ("psu", "pss", "pss-78", "pss78", "0.001", "1e-3", "10-3", "1", "pss-78(psu)"), _PRACTICAL_SALINITY
        ),
        **dict.fromkeys(("kg/kg", "kgkg-1", "kgkg**-1"), "a mass fraction (kg/kg)"),
    },
    "CT": dict.fromkeys(("k", "kelvin", "degk", "deg_k", "degreek", "degrees_k"), "in kelvin"),
    "p": {
        **dict.fromkeys(("m", "meter", "meters", "metre", "metres", "km", "cm", "dm"), _DEPTH),
        **dict.fromkeys(("pa", "hpa", "kpa", "mpa", "bar", "mbar", "millibar", "atm", "psi"), "not in dbar"),
    },
}

_FIXES = {
    _PRACTICAL_SALINITY: "convert it with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "Cox salinity": "convert it to practical salinity, then with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "Knudsen salinity": "convert it to practical salinity, then with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "a mass fraction (kg/kg)": "multiply it by 1000 to get g/kg",
    _POTENTIAL_TEMPERATURE: "convert it with TEOS-10's CT_from_pt(SA, pt)",
    _IN_SITU_TEMPERATURE: "convert it with TEOS-10's CT_from_t(SA, t, p)",
    "in kelvin": "subtract 273.15 to get degC",
    _DEPTH: "convert depth to sea pressure with TEOS-10's p_from_z(z, lat), z = -depth (negative downwards)",
    "not in dbar": "convert it to sea pressure in dbar (1 dbar = 10 kPa)",
}

_WANTED = {
    "SA": ("Absolute Salinity", "sea_water_absolute_salinity", "g kg-1"),
    "CT": ("Conservative Temperature", "sea_water_conservative_temperature", "degC"),
    "p": ("sea pressure", "sea_water_pressure_due_to_sea_water", "dbar"),
}


def check_declared(arg: xr.DataArray, name: str) -> None:
    """Refuse a DataArray whose ``standard_name`` or ``units`` say it is not ``name``.

    ``name`` is ``"SA"``, ``"CT"`` or ``"p"``.  Practical salinity, potential or
    in-situ temperature, temperatures in kelvin, depths in metres and pressures
    not in dbar are refused with the conversion to make; attributes that say
    nothing known are accepted.
    """
    if name not in _WANTED:
        return
    standard_name = str(arg.attrs.get("standard_name", "")).strip().lower()
    units = "".join(str(arg.attrs.get("units", "")).split()).lower()
    what = _WRONG_STANDARD_NAMES[name].get(standard_name) or _WRONG_UNITS[name].get(units)
    if what is None and name == "p" and str(arg.attrs.get("positive", "")).lower() in ("up", "down"):
        what = _DEPTH
    if what is None:
        return
    wanted, wanted_standard_name, wanted_units = _WANTED[name]
    declared = ", ".join(
        f"{key} {arg.attrs[key]!r}" for key in ("standard_name", "units", "positive") if key in arg.attrs
    )
    label = f"{name} ({arg.name!r})" if arg.name is not None else name
    raise ValueError(
        f"{label} is {what} according to its attributes ({declared}), but {name} must be {wanted} "
        f"({wanted_units}): {_FIXES[what]}.  If the values are {wanted} already, correct the attributes, "
        f"e.g. .assign_attrs(standard_name={wanted_standard_name!r}, units={wanted_units!r})"
    )
