"""TEOS-10 75-term equation of state over contiguous 1-D blocks.

Inputs are Absolute Salinity SA (g kg-1), Conservative Temperature CT (degC)
and sea pressure p (dbar).  Every kernel is a plain loop that computes each
point independently from the generated core :func:`._eos75.specvol_core`
(inlined, all coefficients literals), so LLVM vectorises it: sqrt, division
and the fused multiply-adds run on whole SIMD registers.  float32 blocks are
read and written as float32 but computed in float64 registers (the reduction
constants are float64), so a float32 result is the float64 one rounded once.

Example
-------
>>> import numpy as np
>>> SA, CT, p = (np.array([35.0]), np.array([10.0]), np.array([1000.0]))
>>> rho(SA, CT, p)
array([1031.28107437])
"""

import math

from ._declare import gufunc
from ._eos75 import CT_SCALE, GSW_SFAC, OFFSET, P_SCALE, specvol_core, specvol_surface_core

_SIG3 = "void({t}[::1], {t}[::1], {t}[::1], {t}[::1])"
_HALF_SFAC = 0.5 * GSW_SFAC


@gufunc("(n),(n),(n)->(n)", _SIG3)
def specvol(SA, CT, p, out):
    """out = specific volume (m3 kg-1)."""
    for i in range(SA.shape[0]):
        v = specvol_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])[0]
        out[i] = v


@gufunc("(n),(n),(n)->(n)", _SIG3)
def rho(SA, CT, p, out):
    """out = in-situ density (kg m-3)."""
    for i in range(SA.shape[0]):
        v = specvol_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])[0]
        out[i] = 1.0 / v


@gufunc("(n),(n),(n)->(n)", _SIG3)
def alpha(SA, CT, p, out):
    """out = thermal expansion coefficient with respect to CT (1/K)."""
    for i in range(SA.shape[0]):
        v, _, v_ys = specvol_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = CT_SCALE * v_ys / v


@gufunc("(n),(n),(n)->(n)", _SIG3)
def beta(SA, CT, p, out):
    """out = saline contraction coefficient at constant CT (kg g-1)."""
    for i in range(SA.shape[0]):
        xs = math.sqrt(GSW_SFAC * SA[i] + OFFSET)
        v, v_xs, _ = specvol_core(xs, CT_SCALE * CT[i], P_SCALE * p[i])
        out[i] = -_HALF_SFAC * v_xs / (xs * v)


@gufunc("(n),(n),(n)->(n),(n),(n)", "void({t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1], {t}[::1])")
def rho_alpha_beta(SA, CT, p, rho_out, alpha_out, beta_out):
    """rho (kg m-3), alpha (1/K) and beta (kg g-1) in one pass."""
    for i in range(SA.shape[0]):
        xs = math.sqrt(GSW_SFAC * SA[i] + OFFSET)
        v, v_xs, v_ys = specvol_core(xs, CT_SCALE * CT[i], P_SCALE * p[i])
        r = 1.0 / v
        rho_out[i] = r
        alpha_out[i] = CT_SCALE * v_ys * r
        beta_out[i] = -_HALF_SFAC * v_xs * r / xs


@gufunc("(n),(n),()->(n)", "void({t}[::1], {t}[::1], {t}, {t}[::1])")
def sigma(SA, CT, p_ref, out):
    """out = potential density anomaly rho(SA, CT, p_ref) - 1000 (kg m-3); p_ref a scalar (dbar)."""
    z = P_SCALE * p_ref
    for i in range(SA.shape[0]):
        v = specvol_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i], z)[0]
        out[i] = 1.0 / v - 1000.0


@gufunc("(n),(n)->(n)", "void({t}[::1], {t}[::1], {t}[::1])")
def sigma_surface(SA, CT, out):
    """out = rho(SA, CT, 0) - 1000 (kg m-3), from the polynomial's terms without pressure."""
    for i in range(SA.shape[0]):
        v = specvol_surface_core(math.sqrt(GSW_SFAC * SA[i] + OFFSET), CT_SCALE * CT[i])
        out[i] = 1.0 / v - 1000.0


#: Every kernel of this module by name (dask tasks look kernels up here, never pickle them).
KERNELS = {k.__name__: k for k in (specvol, rho, alpha, beta, rho_alpha_beta, sigma, sigma_surface)}
