"""TEOS-10 seawater functions with gsw's names and argument order.

Density and its derivatives (:mod:`.density`) from the 75-term polynomial of
Roquet et al. (2015), the same as GSW's ``gsw_specvol`` family, evaluated in
one numba gufunc pass per chunk (one dask task per chunk) or, for in-memory
NumPy input, on all cores.  Seawater properties (:mod:`.properties`) from the
same polynomial, as GSW computes them: ``sound_speed``, ``kappa``
(isentropic compressibility), ``enthalpy`` (cp0 * CT plus the integral of
specific volume over pressure, in closed form), ``cabbeling`` and
``thermobaric`` (from the second derivatives of specific volume, in the same
pass) and ``spiciness0``/``1``/``2`` (the polynomials of McDougall and Krzysik
2015).  Inputs, for every function:

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

Water-column functions (:mod:`.column`) read whole vertical profiles along
a named dimension (``dim=``; ``axis=`` for NumPy and dask arrays, default 0
as gsw): :func:`Nsquared` (buoyancy frequency squared at the mid-points,
with TEOS-10's gravity ``grav(lat, p)``), :func:`geo_strf_dyn_height`
(dynamic height anomaly by gsw's method: PCHIP-interpolated SA and CT,
1 dbar steps) and :func:`mixed_layer_depth` (de Boyer Montegut et al. 2004,
density or temperature criterion, linear interpolation between levels).
One gufunc call per column and one dask task per chunk of the other
dimensions; levels that are NaN below the sea floor are skipped; a vertical
dimension split across dask chunks is made whole with a
:class:`~oceanflow.chunking.RechunkWarning`; pressures (or depths) that do
not increase along the dimension are refused.

Conversions (:mod:`.conversions`), for the files oceanographers have: Absolute
Salinity from Practical Salinity with the TEOS-10 Absolute Salinity Anomaly
Ratio atlas shipped with oceanflow (``SA_from_SP``, ``SP_from_SA``,
``SR_from_SP``, ``SAAR``), Conservative Temperature from potential or in-situ
temperature and back (``CT_from_pt``, ``pt_from_CT``, ``CT_from_t``,
``t_from_CT``, ``pt0_from_t``) and sea pressure from height and back
(``p_from_z``, ``z_from_p``; height ``z`` is negative below the sea surface,
``z = -depth``), equal to GSW's to rounding.  Their inputs are checked against
TEOS-10's range (:mod:`.validity`): one warning per call with the count, or
``check="raise"``; inputs whose attributes declare another quantity (a depth
where a pressure is expected, a potential temperature where an in-situ one
is...) are refused as above.

From the variables model and observation files hold, :func:`from_model`
(:mod:`.model`) returns SA, CT, p and any of rho, sigma0-sigma4, alpha, beta
and N2: Practical Salinity, potential (or in-situ) temperature and depth (or
height, or pressure) are converted with TEOS-10's ``p_from_z``,
``SA_from_SP`` (SAAR atlas) and ``CT_from_pt`` (or ``CT_from_t``) inside one
numba kernel per chunk, which evaluates every output from the converted
values, so no intermediate field is made; ``oceanflow density --sp --pt
--depth`` (or the variables found by ``standard_name``) runs it from the
command line.

DataArray results carry ``units``, ``long_name`` and, where the CF standard
name table has one that fits, ``standard_name``: ``sea_water_density`` for
``rho``, ``sea_water_sigma_theta`` (potential density minus 1000 kg m-3,
reference pressure by default the surface) for ``sigma0`` and
``speed_of_sound_in_sea_water`` for ``sound_speed``.  The table has no
name for specific volume or for alpha/beta with respect to Conservative
Temperature, nor for in-situ enthalpy, compressibility, cabbeling,
thermobaricity or spiciness; sigma1-sigma4 would need a scalar ``reference_pressure``
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

from .column import Nsquared, geo_strf_dyn_height, mixed_layer_depth
from .conversions import (
    SAAR,
    CT_from_pt,
    CT_from_t,
    SA_from_SP,
    SP_from_SA,
    SR_from_SP,
    p_from_z,
    pt0_from_t,
    pt_from_CT,
    t_from_CT,
    z_from_p,
)
from .density import (
    alpha,
    beta,
    rho,
    rho_alpha_beta,
    sigma0,
    sigma1,
    sigma2,
    sigma3,
    sigma4,
    specvol,
)
from .model import from_model
from .properties import (
    cabbeling,
    enthalpy,
    kappa,
    sound_speed,
    spiciness0,
    spiciness1,
    spiciness2,
    thermobaric,
)

__all__ = [
    "CT_from_pt",
    "CT_from_t",
    "Nsquared",
    "SAAR",
    "SA_from_SP",
    "SP_from_SA",
    "SR_from_SP",
    "alpha",
    "beta",
    "cabbeling",
    "enthalpy",
    "from_model",
    "geo_strf_dyn_height",
    "kappa",
    "mixed_layer_depth",
    "p_from_z",
    "pt0_from_t",
    "pt_from_CT",
    "rho",
    "rho_alpha_beta",
    "sigma0",
    "sigma1",
    "sigma2",
    "sigma3",
    "sigma4",
    "sound_speed",
    "specvol",
    "spiciness0",
    "spiciness1",
    "spiciness2",
    "t_from_CT",
    "thermobaric",
    "z_from_p",
]
