"""TEOS-10 conversions from what files hold (practical salinity, potential or
in-situ temperature, depth) to what the equation of state takes, and back.

Names and argument order as GSW's: ``SA_from_SP(SP, p, lon, lat)``,
``CT_from_pt(SA, pt)``, ``p_from_z(z, lat)``...  Units: ``SP`` Practical
Salinity (PSS-78, unitless), ``SA``/``SR`` g kg-1, temperatures degC (ITS-90),
``p`` sea pressure (dbar), ``z`` height (m, negative below the sea surface, as
TEOS-10: ``z = -depth``), ``lon`` degE (any range), ``lat`` degN.  The other
conventions (NumPy, dask or xarray in; float32 only when every input is;
NaN propagates; CF attributes out) are those of :mod:`oceanflow.eos`.

Every function takes ``check=`` (see :mod:`oceanflow.eos.validity`): inputs
outside TEOS-10's range give one warning per call with the count
(``"warn"``, the default), an error (``"raise"``) or nothing (``None``).

Absolute Salinity uses the TEOS-10 Absolute Salinity Anomaly Ratio atlas
(McDougall et al. 2012, as distributed with GSW 3.06), shipped with oceanflow
and interpolated as TEOS-10 specifies (:mod:`oceanflow.kernels.saar`); in the
Baltic Sea the TEOS-10 Baltic formula is used instead.  Results equal GSW's to
rounding (tests compare them with GSW's check values and with gsw itself).

Example
-------
>>> import numpy as np
>>> SA = SA_from_SP(np.array([35.0]), 1000.0, 190.0, 10.0)
>>> SA
array([35.17581359])
>>> CT_from_t(SA, np.array([10.0]), 1000.0)
array([9.86880478])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dtypes import working_dtype
from .._parallel import run_sliced
from ..kernels.eos_conversions import SR_from_SP_counted
from ._evaluate import evaluate
from .validity import RANGES, counted, report

__all__ = [
    "CT_from_pt",
    "CT_from_t",
    "SAAR",
    "SA_from_SP",
    "SP_from_SA",
    "SR_from_SP",
    "p_from_z",
    "pt0_from_t",
    "pt_from_CT",
    "t_from_CT",
    "z_from_p",
]

#: A scalar, NumPy array, dask array or xarray DataArray.
Field = Any

_ATTRS = {
    "SA": {"units": "g kg-1", "standard_name": "sea_water_absolute_salinity", "long_name": "Absolute Salinity"},
    "SR": {"units": "g kg-1", "standard_name": "sea_water_reference_salinity", "long_name": "Reference Salinity"},
    "SP": {"units": "1", "standard_name": "sea_water_practical_salinity", "long_name": "Practical Salinity"},
    "CT": {
        "units": "degC",
        "standard_name": "sea_water_conservative_temperature",
        "long_name": "Conservative Temperature",
    },
    "pt": {
        "units": "degC",
        "standard_name": "sea_water_potential_temperature",
        "long_name": "potential temperature referenced to the sea surface (0 dbar)",
    },
    "t": {"units": "degC", "standard_name": "sea_water_temperature", "long_name": "in-situ temperature"},
    "p": {"units": "dbar", "standard_name": "sea_water_pressure_due_to_sea_water", "long_name": "sea pressure"},
    "z": {"units": "m", "positive": "up", "long_name": "height, negative below the sea surface"},
    "SAAR": {"units": "1", "long_name": "Absolute Salinity Anomaly Ratio"},
}


def _run(kernel: str, output: str, check: Any, **inputs: Field) -> Any:
    """Refuse declared mismatches, check ranges, evaluate ``kernel``."""
    return evaluate(kernel, tuple(inputs.values()), tuple(inputs), (output,), _ATTRS, check=check)


def SA_from_SP(SP: Field, p: Field, lon: Field, lat: Field, *, check: str | None = "warn") -> Any:
    """Absolute Salinity (g kg-1) from Practical Salinity, sea pressure (dbar), lon (degE), lat (degN).

    ``SA = (35.16504/35) SP (1 + SAAR(p, lon, lat))`` with the TEOS-10 atlas
    (:func:`SAAR`), or the Baltic Sea formula there.  NaN where lat < -86
    (outside the atlas) or a position is NaN, as GSW.

    >>> SA_from_SP(np.array([35.0]), 1000.0, 190.0, 10.0)
    array([35.17581359])
    """
    return _run("SA_from_SP", "SA", check, SP=SP, p=p, lon=lon, lat=lat)


def SP_from_SA(SA: Field, p: Field, lon: Field, lat: Field, *, check: str | None = "warn") -> Any:
    """Practical Salinity (unitless) from Absolute Salinity (g kg-1), p (dbar), lon (degE), lat (degN).

    The inverse of :func:`SA_from_SP`.

    >>> SP_from_SA(np.array([35.2]), 1000.0, 190.0, 10.0)
    array([35.02406552])
    """
    return _run("SP_from_SA", "SP", check, SA=SA, p=p, lon=lon, lat=lat)


def SR_from_SP(SP: Field, *, check: str | None = "warn") -> Any:
    """Reference Salinity (g kg-1) from Practical Salinity: ``SR = (35.16504/35) SP``.

    >>> SR_from_SP(np.array([35.0]))
    array([35.16504])
    """
    if check == "warn" and type(SP) is np.ndarray and SP.dtype.kind in "fiu":  # "raise" counts first: nothing computed
        return _SR_counted(SP, check)
    return _run("SR_from_SP", "SR", check, SP=SP)


def _SR_counted(SP: np.ndarray, check: str) -> Any:
    """SR_from_SP of NumPy input with its range count made in the same pass (SP read once;
    the other paths count first, then convert)."""
    dtype = working_dtype(SP.dtype, names=("SP",))
    flat = np.asarray(SP, dtype=dtype, order="C").reshape(-1)
    out = np.empty(flat.size, dtype)
    low, high, *_ = RANGES["SP"]
    kernel = SR_from_SP_counted.for_dtype(dtype)
    counts: list[int] = []

    def run(part: slice) -> None:
        outside = np.empty((), np.int64)
        with np.errstate(invalid="ignore"):  # comparisons with NaN
            kernel(flat[part], low, high, out[part], outside)
        counts.append(int(outside))

    run_sliced(run, flat.size)
    found = [counted("SP", sum(counts), flat.size, RANGES["SP"])] if sum(counts) else []
    report("SR_from_SP", found, check, stacklevel=4)
    result = out.reshape(SP.shape)
    return result[()] if result.ndim == 0 else result


def SAAR(p: Field, lon: Field, lat: Field, *, check: str | None = "warn") -> Any:
    """Absolute Salinity Anomaly Ratio (unitless) from the TEOS-10 atlas at p (dbar), lon (degE), lat (degN).

    Interpolated as TEOS-10 specifies (:mod:`oceanflow.kernels.saar`): 0 far
    from the ocean, NaN for lat < -86 or NaN positions.

    >>> SAAR(np.array([1000.0]), 190.0, 10.0)
    array([0.00030637])
    """
    return _run("SAAR", "SAAR", check, p=p, lon=lon, lat=lat)


def CT_from_pt(SA: Field, pt: Field, *, check: str | None = "warn") -> Any:
    """Conservative Temperature (degC) from SA (g kg-1) and potential temperature (degC, p_ref = 0).

    For model output holding potential temperature (CMIP ``thetao``, NEMO, MOM).

    >>> CT_from_pt(np.array([35.0]), np.array([10.0]))
    array([9.99285475])
    """
    return _run("CT_from_pt", "CT", check, SA=SA, pt=pt)


def pt_from_CT(SA: Field, CT: Field, *, check: str | None = "warn") -> Any:
    """Potential temperature (degC, p_ref = 0) from SA (g kg-1) and Conservative Temperature (degC).

    >>> pt_from_CT(np.array([35.0]), np.array([10.0]))
    array([10.00714691])
    """
    return _run("pt_from_CT", "pt", check, SA=SA, CT=CT)


def CT_from_t(SA: Field, t: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Conservative Temperature (degC) from SA (g kg-1), in-situ temperature (degC) and p (dbar).

    For observations (CTD, Argo) that hold in-situ temperature.

    >>> CT_from_t(np.array([35.0]), np.array([10.0]), 1000.0)
    array([9.87226396])
    """
    return _run("CT_from_t", "CT", check, SA=SA, t=t, p=p)


def t_from_CT(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """In-situ temperature (degC) from SA (g kg-1), Conservative Temperature (degC) and p (dbar).

    >>> t_from_CT(np.array([35.0]), np.array([10.0]), 1000.0)
    array([10.12867286])
    """
    return _run("t_from_CT", "t", check, SA=SA, CT=CT, p=p)


def pt0_from_t(SA: Field, t: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Potential temperature (degC, p_ref = 0) from SA (g kg-1), in-situ temperature (degC), p (dbar).

    >>> pt0_from_t(np.array([35.0]), np.array([10.0]), 1000.0)
    array([9.87938007])
    """
    return _run("pt0_from_t", "pt", check, SA=SA, t=t, p=p)


def p_from_z(z: Field, lat: Field, *, check: str | None = "warn") -> Any:
    """Sea pressure (dbar) from height z (m, negative below the sea surface) and lat (degN).

    TEOS-10's ``z`` is negative downwards: pass ``-depth`` for a depth axis
    (``lev``, ``depth``: positive down), which is refused as it is when its
    attributes say so.  NaN above z = 5 m, as GSW.

    >>> p_from_z(np.array([-1000.0]), 45.0)
    array([1010.63699239])
    """
    return _run("p_from_z", "p", check, z=z, lat=lat)


def z_from_p(p: Field, lat: Field, *, check: str | None = "warn") -> Any:
    """Height (m, negative below the sea surface) from sea pressure (dbar) and lat (degN).

    >>> z_from_p(np.array([1000.0]), 45.0)
    array([-989.50005896])
    """
    return _run("z_from_p", "z", check, p=p, lat=lat)
