"""Density and its derivatives from the TEOS-10 75-term polynomial (Roquet et al. 2015).

Inputs ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); the
conventions of every eos function are in :mod:`oceanflow.eos`.  Every function
takes ``check=`` (:mod:`oceanflow.eos.validity`): inputs outside TEOS-10's range
give one warning per call with the count (``"warn"``, the default), an error
(``"raise"``) or nothing (``None``).

Example
-------
>>> import numpy as np
>>> rho(np.array([35.0, 34.0]), np.array([10.0, 2.0]), 1000.0)
array([1031.28107437, 1031.70548744])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: F401  (the examples use it)

from ._evaluate import evaluate

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

ATTRS = {
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
ATTRS["sigma0"]["standard_name"] = "sea_water_sigma_theta"  # CF: reference pressure 0 unless stated


def specvol(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Specific volume of seawater, v (m3 kg-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> specvol(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00096967])
    """
    return evaluate("specvol", (SA, CT, p), _NAMES, ("specvol",), ATTRS, check=check)


def rho(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """In-situ density of seawater, 1/v (kg m-3).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> rho(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([1031.28107437])
    """
    return evaluate("rho", (SA, CT, p), _NAMES, ("rho",), ATTRS, check=check)


def alpha(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Thermal expansion coefficient with respect to CT, (dv/dCT)/v (1/K).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> alpha(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00018636])
    """
    return evaluate("alpha", (SA, CT, p), _NAMES, ("alpha",), ATTRS, check=check)


def beta(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Saline contraction coefficient at constant CT, -(dv/dSA)/v (kg g-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> beta(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([0.00074303])
    """
    return evaluate("beta", (SA, CT, p), _NAMES, ("beta",), ATTRS, check=check)


def rho_alpha_beta(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """``(rho, alpha, beta)`` from one pass over the data (kg m-3, 1/K, kg g-1).

    Same values as :func:`rho`, :func:`alpha` and :func:`beta` (to rounding);
    reads the inputs and evaluates the polynomial once for all three.

    >>> r, a, b = rho_alpha_beta(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    >>> r, a, b
    (array([1031.28107437]), array([0.00018636]), array([0.00074303]))
    """
    return evaluate("rho_alpha_beta", (SA, CT, p), _NAMES, ("rho", "alpha", "beta"), ATTRS, check=check)


def _sigma_function(number: int, example: str) -> Callable[[Field, Field], Any]:
    p_ref = 1000.0 * number
    name = f"sigma{number}"

    def sigma(SA: Field, CT: Field, *, check: str | None = "warn") -> Any:
        if number == 0:  # the terms without pressure only, as GSW's sigma0
            return evaluate("sigma_surface", (SA, CT), ("SA", "CT"), (name,), ATTRS, check=check, function=name)
        return evaluate("sigma", (SA, CT), ("SA", "CT"), (name,), ATTRS, extra=(p_ref,), check=check, function=name)

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
