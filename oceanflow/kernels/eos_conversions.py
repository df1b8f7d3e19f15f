"""TEOS-10 conversions over contiguous 1-D blocks, and their scalar cores.

The scalar functions (``*_scalar``, :func:`.saar.saar_lookup`) are ``njit``
and take and return plain floats, so that other kernels (the fused
model-variables-to-density kernel, say) can call them inside their own loops;
each gufunc below is a plain loop over one of them.  The Gibbs-function
polynomials they evaluate are generated (:mod:`._gibbs`, from
``tools/generate_gibbs.py``).  float32 blocks are computed in float64
registers and rounded once on output.

Algorithms (TEOS-10; IOC et al. 2010; McDougall et al. 2003; McDougall and
Wotherspoon 2014; McDougall and Barker 2011, the GSW toolbox):

* Conservative Temperature from potential temperature: potential enthalpy / cp0;
* potential temperature from CT: a rational-function first guess, then one and
  a half modified Newton-Raphson steps on CT(pt);
* potential temperature from in-situ temperature: a polynomial first guess,
  then two modified Newton-Raphson steps on entropy, which is the same at the
  two pressures;
* pressure from height: Saunders (1981) first guess, then one modified
  Newton-Raphson step on the dynamic-enthalpy balance with the 75-term
  enthalpy at SSO, 0 degC; height from pressure solves the quadratic in z;
* Absolute Salinity from Practical Salinity: SA = (35.16504/35) SP (1 + SAAR),
  SAAR from the atlas; in the Baltic, SA = (SSO - 0.087)/35 SP + 0.087.

Example
-------
>>> import numpy as np
>>> CT_from_pt(np.array([35.0]), np.array([10.0]))
array([9.99285475])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._declare import Kernel, gufunc, njit
from ._gibbs import (
    CP0,
    DB2PA,
    GSW_SFAC,
    SSO,
    T0,
    UPS,
    Y_SCALE,
    Z_SCALE,
    enthalpy_sso_0,
    entropy_part,
    entropy_part_zerop,
    gibbs_tt,
    gibbs_tt_zerop,
    pot_enthalpy,
    specvol_sso_0,
)
from .saar import ATLAS, BLOCK, TOPS, in_baltic, saar_lookup, saar_range

DEG2RAD = math.pi / 180.0
GAMMA = 2.26e-7  # m-1, vertical gradient of gravity (TEOS-10)


# ---------------------------------------------------------------- scalar cores


@njit(inline="always")
def ct_from_pt_scalar(sa, pt):
    """Conservative Temperature (degC) from SA (g kg-1) and potential temperature (degC)."""
    return pot_enthalpy(math.sqrt(GSW_SFAC * sa), Y_SCALE * pt) * (1.0 / CP0)


@njit(inline="always")
def pt_from_ct_scalar(sa, ct):
    """Potential temperature (degC, p_ref = 0) from SA (g kg-1) and CT (degC)."""
    x = math.sqrt(GSW_SFAC * sa)
    s = sa * (1.0 / UPS)
    # rational first guess (McDougall et al. 2003), then 1.5 modified Newton steps
    num_ct = 9.477566673794488e-1 + 2.166591947736613e-3 * s + 3.828842955039902e-3 * ct
    num = -1.446013646344788e-2 + s * (-3.305308995852924e-3 + 1.062415929128982e-4 * s) + ct * num_ct
    den_ct = 3.830289486850898e-3 + 1.247811760368034e-6 * ct
    rec = 1.0 / (1.0 + 6.506097115635800e-4 * s + ct * den_ct)
    pt = num * rec
    dpt_dct = rec * (num_ct + 3.828842955039902e-3 * ct - (den_ct + 1.247811760368034e-6 * ct) * pt)
    miss = pot_enthalpy(x, Y_SCALE * pt) * (1.0 / CP0) - ct
    start = pt
    pt = start - miss * dpt_dct
    mid = 0.5 * (pt + start)
    dpt_dct = -CP0 / ((mid + T0) * gibbs_tt_zerop(x, Y_SCALE * mid))
    pt = start - miss * dpt_dct
    miss = pot_enthalpy(x, Y_SCALE * pt) * (1.0 / CP0) - ct
    return pt - miss * dpt_dct


@njit(inline="always")
def pt_from_t_scalar(sa, t, p, p_ref):
    """Potential temperature (degC) at reference pressure ``p_ref`` (dbar) of water
    at SA (g kg-1), in-situ temperature ``t`` (degC) and sea pressure ``p`` (dbar)."""
    x = math.sqrt(GSW_SFAC * sa)
    s = sa * (1.0 / UPS)
    dp, sp = p - p_ref, p + p_ref
    pt = t + dp * (
        8.65483913395442e-6
        - s * 1.41636299744881e-6
        - sp * 7.38286467135737e-9
        + t * (-8.38241357039698e-6 + s * 2.83933368585534e-8 + t * 1.77803965218656e-8 + sp * 1.71155619208233e-10)
    )
    dentropy_dt = CP0 / ((T0 + pt) * (1.0 - 0.05 * (1.0 - sa * (1.0 / SSO))))
    target = entropy_part(x, Y_SCALE * t, Z_SCALE * p)
    z_ref = Z_SCALE * p_ref
    for _ in range(2):
        start = pt
        miss = entropy_part(x, Y_SCALE * start, z_ref) - target
        pt = start - miss / dentropy_dt
        mid = 0.5 * (pt + start)
        dentropy_dt = -gibbs_tt(x, Y_SCALE * mid, z_ref)
        pt = start - miss / dentropy_dt
    return pt


@njit(inline="always")
def pt0_from_t_scalar(sa, t, p):
    """Potential temperature (degC, p_ref = 0) from SA (g kg-1), t (degC), p (dbar)."""
    x = math.sqrt(GSW_SFAC * sa)
    s = sa * (1.0 / UPS)
    pt = t + p * (
        8.65483913395442e-6
        - s * 1.41636299744881e-6
        - p * 7.38286467135737e-9
        + t * (-8.38241357039698e-6 + s * 2.83933368585534e-8 + t * 1.77803965218656e-8 + p * 1.71155619208233e-10)
    )
    dentropy_dt = CP0 / ((T0 + pt) * (1.0 - 0.05 * (1.0 - sa * (1.0 / SSO))))
    target = entropy_part(x, Y_SCALE * t, Z_SCALE * p)
    for _ in range(2):
        start = pt
        miss = entropy_part_zerop(x, Y_SCALE * start) - target
        pt = start - miss / dentropy_dt
        mid = 0.5 * (pt + start)
        dentropy_dt = -gibbs_tt_zerop(x, Y_SCALE * mid)
        pt = start - miss / dentropy_dt
    return pt


@njit(inline="always")
def ct_from_t_scalar(sa, t, p):
    """Conservative Temperature (degC) from SA (g kg-1), in-situ t (degC), p (dbar)."""
    return ct_from_pt_scalar(sa, pt0_from_t_scalar(sa, t, p))


@njit(inline="always")
def t_from_ct_scalar(sa, ct, p):
    """In-situ temperature (degC) from SA (g kg-1), CT (degC), p (dbar)."""
    return pt_from_t_scalar(sa, pt_from_ct_scalar(sa, ct), 0.0, p)


# Taylor coefficients of sin(x)/x in x**2: to x**23 the remainder is below 1e-20 for |x| <= pi/2.
_SIN = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(12))


@njit(inline="always")
def sin2_degrees(lat):
    """sin(lat)**2 for ``lat`` in degrees, as a polynomial that vectorises (libm's sin does not).

    sin**2 has period 180 degrees: reduced to [-90, 90], the series of sin
    converges to double precision (within a few ulp of libm).
    """
    x = (lat - 180.0 * math.floor(lat * (1.0 / 180.0) + 0.5)) * DEG2RAD
    x2 = x * x
    c = _SIN
    s = c[0] + x2 * (
        c[1]
        + x2
        * (
            c[2]
            + x2
            * (
                c[3]
                + x2
                * (
                    c[4]
                    + x2 * (c[5] + x2 * (c[6] + x2 * (c[7] + x2 * (c[8] + x2 * (c[9] + x2 * (c[10] + x2 * c[11]))))))
                )
            )
        )
    )
    return (x * s) * (x * s)


@njit(inline="always")
def _gravity(lat):
    """Surface gravity (m s-2) at latitude ``lat`` (degN), and sin(lat)**2."""
    sin2 = sin2_degrees(lat)
    return 9.780327 * (1.0 + (5.2792e-3 + 2.32e-5 * sin2) * sin2), sin2


@njit(inline="always")
def p_from_z_scalar(z, lat):
    """Sea pressure (dbar) at height ``z`` (m, negative below the sea surface), ``lat`` (degN).

    NaN above z = 5 m, as GSW.
    """
    if z > 5.0:
        return math.nan
    g, sin2 = _gravity(lat)
    c1 = 5.25e-3 * sin2 + 5.92e-3
    p = -2.0 * z / ((1.0 - c1) + math.sqrt((1.0 - c1) * (1.0 - c1) + 8.84e-6 * z))  # Saunders (1981)
    slope = DB2PA * specvol_sso_0(Z_SCALE * p)
    miss = enthalpy_sso_0(Z_SCALE * p) + g * (z - 0.5 * GAMMA * z * z)
    start = p
    p = start - miss / slope
    slope = DB2PA * specvol_sso_0(Z_SCALE * 0.5 * (p + start))
    return start - miss / slope


@njit(inline="always")
def z_from_p_scalar(p, lat):
    """Height (m, negative below the sea surface) at sea pressure ``p`` (dbar), ``lat`` (degN)."""
    b, _ = _gravity(lat)
    a = -0.5 * GAMMA * b
    c = enthalpy_sso_0(Z_SCALE * p)
    return -2.0 * c / (b + math.sqrt(b * b - 4.0 * a * c))


@njit(inline="always")
def sa_from_sp_flag(sp, p, baltic, saar):
    """Absolute Salinity (g kg-1) from Practical Salinity ``sp``, ``p`` (dbar), whether the
    point is in the Baltic (:func:`.saar.in_baltic`) and the atlas's ``saar`` there (unused in
    the Baltic, where a NaN ``p`` gives NaN)."""
    in_baltic_sa = ((SSO - 0.087) / 35.0) * sp + 0.087
    in_baltic_sa = in_baltic_sa if p == p else math.nan
    return in_baltic_sa if baltic else UPS * sp * (1.0 + saar)


@njit(inline="always")
def sp_from_sa_flag(sa, p, baltic, saar):
    """Practical Salinity from Absolute Salinity ``sa`` (g kg-1), ``p``, the Baltic flag, ``saar``."""
    in_baltic_sp = (35.0 / (SSO - 0.087)) * (sa - 0.087)
    in_baltic_sp = in_baltic_sp if p == p else math.nan
    return in_baltic_sp if baltic else sa / (UPS * (1.0 + saar))


@njit(inline="always")
def sa_from_sp_saar(sp, p, lon, lat, saar):
    """Absolute Salinity (g kg-1) from Practical Salinity ``sp``, ``p`` (dbar), ``lon``, ``lat``
    and the atlas's ``saar`` there: :func:`sa_from_sp_flag`."""
    return sa_from_sp_flag(sp, p, in_baltic(lon, lat), saar)


@njit(inline="always")
def sp_from_sa_saar(sa, p, lon, lat, saar):
    """Practical Salinity from Absolute Salinity ``sa`` (g kg-1), ``p``, ``lon``, ``lat``, ``saar``."""
    return sp_from_sa_flag(sa, p, in_baltic(lon, lat), saar)


@njit(inline="always")
def sa_from_sp_scalar(sp, p, lon, lat, saar, ndepth, p_ref, lats, longs):
    """Absolute Salinity (g kg-1) from Practical Salinity ``sp``, ``p`` (dbar), ``lon``, ``lat``;
    the atlas arrays as in :data:`.saar.ATLAS` (``*ATLAS``)."""
    return sa_from_sp_saar(sp, p, lon, lat, saar_lookup(p, lon, lat, saar, ndepth, p_ref, lats, longs))


@njit(inline="always")
def sp_from_sa_scalar(sa, p, lon, lat, saar, ndepth, p_ref, lats, longs):
    """Practical Salinity from Absolute Salinity ``sa`` (g kg-1), ``p`` (dbar), ``lon``, ``lat``."""
    return sp_from_sa_saar(sa, p, lon, lat, saar_lookup(p, lon, lat, saar, ndepth, p_ref, lats, longs))


# ---------------------------------------------------------------- gufuncs

_SIG2 = "void({t}[::1], {t}[::1], {t}[::1])"
_SIG3 = "void({t}[::1], {t}[::1], {t}[::1], {t}[::1])"
_SIG4 = "void({t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1])"


@gufunc("(n),(n)->(n)", _SIG2)
def _CT_from_pt(SA, pt, out):
    """out = Conservative Temperature (degC)."""
    for i in range(SA.shape[0]):
        out[i] = ct_from_pt_scalar(SA[i], pt[i])


@gufunc("(n),(n)->(n)", _SIG2)
def _pt_from_CT(SA, CT, out):
    """out = potential temperature, p_ref = 0 (degC)."""
    for i in range(SA.shape[0]):
        out[i] = pt_from_ct_scalar(SA[i], CT[i])


@gufunc("(n),(n),(n)->(n)", _SIG3)
def _CT_from_t(SA, t, p, out):
    """out = Conservative Temperature (degC)."""
    for i in range(SA.shape[0]):
        out[i] = ct_from_t_scalar(SA[i], t[i], p[i])


@gufunc("(n),(n),(n)->(n)", _SIG3)
def _t_from_CT(SA, CT, p, out):
    """out = in-situ temperature (degC)."""
    for i in range(SA.shape[0]):
        out[i] = t_from_ct_scalar(SA[i], CT[i], p[i])


@gufunc("(n),(n),(n)->(n)", _SIG3)
def _pt0_from_t(SA, t, p, out):
    """out = potential temperature, p_ref = 0 (degC)."""
    for i in range(SA.shape[0]):
        out[i] = pt0_from_t_scalar(SA[i], t[i], p[i])


@gufunc("(n),(n)->(n)", _SIG2)
def _p_from_z(z, lat, out):
    """out = sea pressure (dbar)."""
    for i in range(z.shape[0]):
        out[i] = p_from_z_scalar(z[i], lat[i])


@gufunc("(n),(n)->(n)", _SIG2)
def _z_from_p(p, lat, out):
    """out = height (m, negative downwards)."""
    for i in range(p.shape[0]):
        out[i] = z_from_p_scalar(p[i], lat[i])


@gufunc("(n)->(n)", "void({t}[::1], {t}[::1])")
def _SR_from_SP(SP, out):
    """out = Reference Salinity (g kg-1)."""
    for i in range(SP.shape[0]):
        out[i] = UPS * SP[i]


@gufunc("(n),(),()->(n),()", "void({t}[::1], float64, float64, {t}[::1], int64[:])")
def SR_from_SP_counted(SP, low, high, out, outside):
    """out = Reference Salinity (g kg-1); ``outside`` = how many SP lie outside ``[low, high]``
    (NaN not counted), counted in the same pass: SP is read once."""
    count = 0
    for i in range(SP.shape[0]):
        sp = SP[i]
        out[i] = UPS * sp
        count += (sp < low) | (sp > high)
    outside[0] = count


# The atlas kernels take the atlas arrays as core inputs after the point inputs (numba
# cannot cache a kernel with large arrays as globals); :class:`Quiet` appends them
# (:data:`.saar.ATLAS` with :data:`.saar.TOPS` for ``ndepth``).  They interpolate the
# atlas :data:`.saar.BLOCK` points at a time (:func:`.saar.saar_range`) into float64 scratch.
_ATLAS_SIG = "float64[:, :, ::1], float64[:, ::1], float64[::1], float64[::1], float64[::1]"
_ATLAS_LAYOUT = "(a,b,c),(d,e),(c),(b),(a)"


_ONLY_SAAR, _TO_SA, _TO_SP = 0, 1, 2


@njit
def _through_saar(x, p, lon, lat, saar, tops, p_ref, lats, longs, out, to):
    """out = SAAR, or ``x`` (SP or SA) converted with it (``to``), :data:`.saar.BLOCK` points at a time."""
    index, work, values = np.empty((2, BLOCK), np.int64), np.empty((13, BLOCK)), np.empty(BLOCK)
    baltic = work[12]  # saar_range's Baltic flags
    for start in range(0, p.shape[0], BLOCK):
        stop = min(start + BLOCK, p.shape[0])
        saar_range(p, lon, lat, start, stop, values, saar, tops, p_ref, lats, longs, index, work)
        if to == _TO_SA:
            for i in range(start, stop):
                out[i] = sa_from_sp_flag(x[i], p[i], baltic[i - start] != 0.0, values[i - start])
        elif to == _TO_SP:
            for i in range(start, stop):
                out[i] = sp_from_sa_flag(x[i], p[i], baltic[i - start] != 0.0, values[i - start])
        else:
            for i in range(start, stop):
                out[i] = values[i - start]


_CONVERT_SIG = f"void({{t}}[::1], {{t}}[::1], {{t}}[::1], {{t}}[::1], {_ATLAS_SIG}, {{t}}[::1])"


@gufunc(f"(n),(n),(n),(n),{_ATLAS_LAYOUT}->(n)", _CONVERT_SIG)
def _SA_from_SP(SP, p, lon, lat, saar, tops, p_ref, lats, longs, out):
    """out = Absolute Salinity (g kg-1)."""
    _through_saar(SP, p, lon, lat, saar, tops, p_ref, lats, longs, out, _TO_SA)


@gufunc(f"(n),(n),(n),(n),{_ATLAS_LAYOUT}->(n)", _CONVERT_SIG)
def _SP_from_SA(SA, p, lon, lat, saar, tops, p_ref, lats, longs, out):
    """out = Practical Salinity (unitless)."""
    _through_saar(SA, p, lon, lat, saar, tops, p_ref, lats, longs, out, _TO_SP)


@gufunc(f"(n),(n),(n),{_ATLAS_LAYOUT}->(n)", f"void({{t}}[::1], {{t}}[::1], {{t}}[::1], {_ATLAS_SIG}, {{t}}[::1])")
def _SAAR(p, lon, lat, saar, tops, p_ref, lats, longs, out):
    """out = Absolute Salinity Anomaly Ratio (unitless)."""
    _through_saar(p, p, lon, lat, saar, tops, p_ref, lats, longs, out, _ONLY_SAAR)


class Quiet:
    """A conversion kernel as :data:`KERNELS` holds it: called with the point arrays only
    (the atlas arrays appended when ``atlas``), with NumPy's
    floating-point warnings off: vectorised comparisons with NaN (land points) raise the
    "invalid" flag, and every NaN an input makes is meant (see ``oceanflow.eos.validity``).
    """

    def __init__(self, kernel: Kernel, name: str, n_inputs: int, atlas: bool = False):
        self.kernel = kernel
        self.n_inputs = n_inputs
        self.atlas = (ATLAS.saar, TOPS, ATLAS.p_ref, ATLAS.lats_ref, ATLAS.longs_ref) if atlas else ()
        self.__name__ = name
        self.__doc__ = kernel.__doc__

    def __repr__(self) -> str:
        return f"<oceanflow kernel {self.__name__} {self.kernel.layout!r}>"

    def for_dtype(self, dtype) -> Callable[..., Any]:
        """The compiled gufunc for ``dtype``, taking the point inputs (and outputs) only."""
        compiled = self.kernel.for_dtype(dtype)
        n, atlas = self.n_inputs, self.atlas

        def call(*arrays, **kwargs):
            with np.errstate(invalid="ignore"):
                return compiled(*arrays[:n], *atlas, *arrays[n:], **kwargs)

        return call

    def __call__(self, *arrays, **kwargs):
        contiguous = [np.ascontiguousarray(a) for a in arrays]
        return self.for_dtype(contiguous[0].dtype)(*contiguous, **kwargs)


SA_from_SP = Quiet(_SA_from_SP, "SA_from_SP", 4, atlas=True)
SP_from_SA = Quiet(_SP_from_SA, "SP_from_SA", 4, atlas=True)
SAAR = Quiet(_SAAR, "SAAR", 3, atlas=True)
CT_from_pt = Quiet(_CT_from_pt, "CT_from_pt", 2)
pt_from_CT = Quiet(_pt_from_CT, "pt_from_CT", 2)
CT_from_t = Quiet(_CT_from_t, "CT_from_t", 3)
t_from_CT = Quiet(_t_from_CT, "t_from_CT", 3)
pt0_from_t = Quiet(_pt0_from_t, "pt0_from_t", 3)
p_from_z = Quiet(_p_from_z, "p_from_z", 2)
z_from_p = Quiet(_z_from_p, "z_from_p", 2)
SR_from_SP = Quiet(_SR_from_SP, "SR_from_SP", 1)

#: Every kernel of this module by name (dask tasks look kernels up here, never pickle them).
KERNELS = {
    k.__name__: k
    for k in (CT_from_pt, pt_from_CT, CT_from_t, t_from_CT, pt0_from_t, p_from_z, z_from_p)
    + (SR_from_SP, SA_from_SP, SP_from_SA, SAAR)
}
