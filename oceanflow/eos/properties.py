"""Seawater properties from the TEOS-10 75-term polynomial: sound speed, compressibility,
enthalpy, cabbeling and thermobaric coefficients, spiciness.

The same expressions as GSW's ``gsw_sound_speed``, ``gsw_kappa``,
``gsw_enthalpy``, ``gsw_cabbeling``, ``gsw_thermobaric`` (the specific volume
of Roquet et al. 2015 and its derivatives) and ``gsw_spiciness0/1/2`` (the
polynomials of McDougall and Krzysik 2015), each in one pass per chunk.
Inputs ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); the
conventions of every eos function are in :mod:`oceanflow.eos`.  Every function
takes ``check=`` (:mod:`oceanflow.eos.validity`): inputs outside TEOS-10's range
give one warning per call with the count (``"warn"``, the default), an error
(``"raise"``) or nothing (``None``).

Example
-------
>>> import numpy as np
>>> sound_speed(np.array([35.0, 34.0]), np.array([10.0, 2.0]), 1000.0)
array([1506.40232974, 1472.9512963 ])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: F401  (the examples use it)

from ._evaluate import evaluate

__all__ = [
    "cabbeling",
    "enthalpy",
    "kappa",
    "sound_speed",
    "spiciness0",
    "spiciness1",
    "spiciness2",
    "thermobaric",
]

#: A scalar, NumPy array, dask array or xarray DataArray.
Field = Any

_NAMES = ("SA", "CT", "p")

# CF standard names exist for sound speed only: the table (v85) has none for
# in-situ specific enthalpy (sea_water_specific_potential_enthalpy is cp0*CT),
# compressibility, cabbeling, thermobaricity or spiciness.
_ATTRS = {
    "sound_speed": {
        "units": "m s-1",
        "standard_name": "speed_of_sound_in_sea_water",
        "long_name": "speed of sound in seawater",
    },
    "kappa": {"units": "Pa-1", "long_name": "isentropic compressibility of seawater"},
    "enthalpy": {"units": "J kg-1", "long_name": "specific enthalpy of seawater"},
    "cabbeling": {
        "units": "K-2",
        "long_name": "cabbeling coefficient with respect to Conservative Temperature",
    },
    "thermobaric": {
        "units": "K-1 Pa-1",
        "long_name": "thermobaric coefficient with respect to Conservative Temperature",
    },
    **{
        f"spiciness{n}": {
            "units": "kg m-3",
            "long_name": f"spiciness referenced to {1000 * n} dbar (McDougall and Krzysik 2015)",
        }
        for n in range(3)
    },
}


def sound_speed(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Speed of sound in seawater, sqrt(-v**2 / (dv/dP)) (m s-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> sound_speed(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([1506.40232974])
    """
    return evaluate("sound_speed", (SA, CT, p), _NAMES, ("sound_speed",), _ATTRS, check=check)


def kappa(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Isentropic compressibility of seawater, -(dv/dP)/v at constant SA and CT (Pa-1).

    ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> kappa(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([4.27307972e-10])
    """
    return evaluate("kappa", (SA, CT, p), _NAMES, ("kappa",), _ATTRS, check=check)


def enthalpy(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Specific enthalpy of seawater (J kg-1).

    Potential enthalpy ``cp0 * CT`` (cp0 = 3991.86795711963 J kg-1 K-1) plus
    dynamic enthalpy, the integral of specific volume over sea pressure (Pa)
    from 0 to ``p``, in closed form from the polynomial.  ``SA`` (g kg-1),
    ``CT`` (degC), ``p`` sea pressure (dbar); see the module doc.

    >>> enthalpy(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([49636.2900788])
    """
    return evaluate("enthalpy", (SA, CT, p), _NAMES, ("enthalpy",), _ATTRS, check=check)


def cabbeling(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Cabbeling coefficient with respect to Conservative Temperature (K-2).

    ``d(alpha)/dCT + 2 (alpha/beta) d(alpha)/dSA - (alpha/beta)**2 d(beta)/dSA``
    (IOC et al. 2010, eq. 3.9.2).  ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea
    pressure (dbar); see the module doc.

    >>> cabbeling(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([1.0444338e-05])
    """
    return evaluate("cabbeling", (SA, CT, p), _NAMES, ("cabbeling",), _ATTRS, check=check)


def thermobaric(SA: Field, CT: Field, p: Field, *, check: str | None = "warn") -> Any:
    """Thermobaric coefficient with respect to Conservative Temperature (K-1 Pa-1).

    ``d(alpha)/dP - (alpha/beta) d(beta)/dP`` with P in Pa (IOC et al. 2010,
    eq. 3.8.2).  ``SA`` (g kg-1), ``CT`` (degC), ``p`` sea pressure (dbar); see
    the module doc.

    >>> thermobaric(np.array([35.0]), np.array([10.0]), np.array([1000.0]))
    array([2.23575802e-12])
    """
    return evaluate("thermobaric", (SA, CT, p), _NAMES, ("thermobaric",), _ATTRS, check=check)


def _spiciness_function(number: int, example: str) -> Callable[[Field, Field], Any]:
    name = f"spiciness{number}"

    def spiciness(SA: Field, CT: Field, *, check: str | None = "warn") -> Any:
        return evaluate(name, (SA, CT), ("SA", "CT"), (name,), _ATTRS, check=check)

    spiciness.__name__ = spiciness.__qualname__ = name
    spiciness.__doc__ = f"""Spiciness referenced to {1000 * number} dbar (kg m-3).

    The polynomial of McDougall and Krzysik (2015) in ``SA`` (g kg-1) and
    ``CT`` (degC), as GSW's ``gsw_{name}``: a variable that grows with
    temperature and salinity along an isopycnal of sigma{number}; see the module
    doc.

    >>> {name}(np.array([35.0]), np.array([10.0]))
    array([{example}])
    """
    return spiciness


spiciness0 = _spiciness_function(0, "1.1392341")
spiciness1 = _spiciness_function(1, "1.4156697")
spiciness2 = _spiciness_function(2, "1.68255435")
