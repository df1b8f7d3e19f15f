"""TEOS-10 seawater properties from the 75-term polynomial, over contiguous 1-D blocks.

Sound speed, isentropic compressibility, enthalpy, the cabbeling and
thermobaric coefficients and spiciness, from Absolute Salinity SA (g kg-1),
Conservative Temperature CT (degC) and sea pressure p (dbar).  As in
:mod:`.eos`, every kernel is a plain loop over independent points that inlines
a generated core of :mod:`._eos75` (literal coefficients), so LLVM vectorises
it; float32 blocks are computed in float64 and rounded once.

The cores give derivatives with respect to the reduced variables
xs = sqrt(GSW_SFAC*SA + OFFSET), ys = CT_SCALE*CT, z = P_SCALE*p; the chain
rule is applied here: d/dSA = GSW_SFAC/(2 xs) d/dxs, d/dCT = CT_SCALE d/dys,
d/dP = d/dz / PA_PER_Z with P in Pa.

Example
-------
>>> import numpy as np
>>> round(float(sound_speed(np.array([35.0]), np.array([10.0]), np.array([1000.0]))[0]), 6)
1506.40233
"""

import math

from ._declare import gufunc
from ._eos75 import (
    CP0,
    CT_SCALE,
    GSW_SFAC,
    OFFSET,
    P_SCALE,
    PA_PER_Z,
    dynamic_enthalpy_core,
    specvol_second_core,
    specvol_z_core,
    spiciness0_core,
    spiciness1_core,
    spiciness2_core,
)

_SIG3 = "void({t}[::1], {t}[::1], {t}[::1], {t}[::1])"
_SIG2 = "void({t}[::1], {t}[::1], {t}[::1])"
_SQRT_PA_PER_Z = math.sqrt(PA_PER_Z)
_CT_SCALE2 = CT_SCALE * CT_SCALE
_THERMOBARIC_SCALE = CT_SCALE / PA_PER_Z


@gufunc("(n),(n),(n)->(n)", _SIG3)
def sound_speed(SA, CT, p, out):
    """out = speed of sound, sqrt(-v**2 / (dv/dP)) (m s-1)."""
    for i in range(SA.shape[0]):
        v, v_z = specvol_z_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = _SQRT_PA_PER_Z * v / math.sqrt(-v_z)


@gufunc("(n),(n),(n)->(n)", _SIG3)
def kappa(SA, CT, p, out):
    """out = isentropic compressibility, -(dv/dP)/v (Pa-1)."""
    for i in range(SA.shape[0]):
        v, v_z = specvol_z_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = -v_z / (PA_PER_Z * v)


@gufunc("(n),(n),(n)->(n)", _SIG3)
def enthalpy(SA, CT, p, out):
    """out = specific enthalpy, CP0*CT + integral of v over P from 0 to p (J kg-1)."""
    for i in range(SA.shape[0]):
        h_dyn = dynamic_enthalpy_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = CP0 * CT[i] + PA_PER_Z * h_dyn


@gufunc("(n),(n),(n)->(n)", _SIG3)
def cabbeling(SA, CT, p, out):
    """out = cabbeling coefficient with respect to CT (K-2).

    alpha_CT + 2 (alpha/beta) alpha_SA - (alpha/beta)**2 beta_SA, which with
    r = v_CT/v_SA equals (v_CT_CT - 2 r v_SA_CT + r**2 v_SA_SA) / v (the 1/v**2
    terms cancel); in the reduced variables, with R = v_ys/v_xs:
    CT_SCALE**2 (v_ys_ys - 2 R v_xs_ys + R**2 (v_xs_xs - v_xs/xs)) / v.
    """
    for i in range(SA.shape[0]):
        xs = math.sqrt(GSW_SFAC * SA[i] + OFFSET)
        v, v_xs, v_ys, v_xs_xs, v_xs_ys, v_ys_ys, _, _ = specvol_second_core(xs, CT_SCALE * CT[i], P_SCALE * p[i])
        r = v_ys / v_xs
        out[i] = _CT_SCALE2 * (v_ys_ys - r * (2.0 * v_xs_ys - r * (v_xs_xs - v_xs / xs))) / v


@gufunc("(n),(n),(n)->(n)", _SIG3)
def thermobaric(SA, CT, p, out):
    """out = thermobaric coefficient with respect to CT (K-1 Pa-1).

    (v_CT_P - (v_CT/v_SA) v_SA_P) / v, which in the reduced variables is
    CT_SCALE/PA_PER_Z (v_ys_z - (v_ys/v_xs) v_xs_z) / v.
    """
    for i in range(SA.shape[0]):
        xs = math.sqrt(GSW_SFAC * SA[i] + OFFSET)
        v, v_xs, v_ys, _, _, _, v_xs_z, v_ys_z = specvol_second_core(xs, CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = _THERMOBARIC_SCALE * (v_ys_z - v_ys * v_xs_z / v_xs) / v


@gufunc("(n),(n)->(n)", _SIG2)
def spiciness0(SA, CT, out):
    """out = spiciness referenced to 0 dbar (kg m-3)."""
    for i in range(SA.shape[0]):
        out[i] = spiciness0_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i])


@gufunc("(n),(n)->(n)", _SIG2)
def spiciness1(SA, CT, out):
    """out = spiciness referenced to 1000 dbar (kg m-3)."""
    for i in range(SA.shape[0]):
        out[i] = spiciness1_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i])


@gufunc("(n),(n)->(n)", _SIG2)
def spiciness2(SA, CT, out):
    """out = spiciness referenced to 2000 dbar (kg m-3)."""
    for i in range(SA.shape[0]):
        out[i] = spiciness2_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i])


#: Every kernel of this module by name (dask tasks look kernels up here, never pickle them).
KERNELS = {
    k.__name__: k for k in (sound_speed, kappa, enthalpy, cabbeling, thermobaric, spiciness0, spiciness1, spiciness2)
}
