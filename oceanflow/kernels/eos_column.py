"""TEOS-10 water-column kernels: one vertical profile per gufunc call.

The vertical (core) dimension is the last axis of every array; levels where
any input is NaN (below the sea floor, or missing) are skipped, so profiles
with NaN bottoms are fine.  Each kernel also writes a ``status`` per column:
1.0 when the valid pressures (or depths) do not increase strictly along the
column, else 0.0; the Python layer turns it into an error.  Inputs are
Absolute Salinity SA (g kg-1), Conservative Temperature CT (degC) and sea
pressure p (dbar) or depth (m, positive downwards); float32 blocks are
computed in float64 registers.

Example
-------
>>> import numpy as np
>>> SA, CT = np.array([35.0, 35.0, 35.0]), np.array([20.0, 15.0, 10.0])
>>> p = np.array([0.0, 100.0, 200.0])
>>> N2, status = nsquared(SA, CT, p, 45.0, 0.0)
>>> N2, float(status)
(array([1.16652069e-04, 9.55009778e-05,            nan]), 0.0)
"""

import math

import numpy as np

from ._declare import gufunc, njit
from ._eos75 import CT_SCALE, GSW_SFAC, OFFSET, P_SCALE, specvol_core
from ._gibbs import UPS
from .eos_conversions import GAMMA, ct_from_pt_scalar, ct_from_t_scalar, p_from_z_scalar, z_from_p_scalar
from .saar import in_baltic, level_index, saar_cell, saar_profiles

#: Pa per dbar.
DB2PA = 1e4

#: TEOS-10 Standard Ocean Reference Salinity (g kg-1), the reference of specific volume anomaly.
SSO = 35.16504

#: Code of each mixed-layer criterion in :func:`mixed_layer_depth`.
CRITERIA = {"density": 0, "temperature": 1}

_XS_SSO = math.sqrt(GSW_SFAC * SSO + OFFSET)
_DEG2RAD = math.pi / 180.0


@njit(inline="always")
def grav(lat, p):
    """Gravity (m s-2) at latitude ``lat`` (degrees) and sea pressure ``p`` (dbar), as
    TEOS-10's ``grav``: surface gravity (Moritz 2000) times ``1 - gamma * z``, with the
    height ``z`` (negative in the ocean) of TEOS-10's ``z_from_p(p, lat)``."""
    x = math.sin(lat * _DEG2RAD)
    sin2 = x * x
    gs = 9.780327 * (1.0 + (5.2792e-3 + 2.32e-5 * sin2) * sin2)
    return gs * (1.0 - GAMMA * z_from_p_scalar(p, lat))


@njit(inline="always")
def not_increasing(x):
    """1.0 if the values of ``x`` that are not NaN do not increase strictly, else 0.0 (a kernel's status)."""
    last = -math.inf
    for k in range(x.shape[0]):
        if not math.isnan(x[k]):
            if x[k] <= last:
                return 1.0
            last = x[k]
    return 0.0


@njit(inline="always")
def specvol_anom_standard(SA, CT, p):
    """Specific volume anomaly v(SA, CT, p) - v(SSO, 0, p) (m3 kg-1)."""
    z = P_SCALE * p
    v = specvol_core(math.sqrt(GSW_SFAC * SA + OFFSET), CT_SCALE * CT, z)[0]
    return v - specvol_core(_XS_SSO, 0.0, z)[0]


# ---------------------------------------------------------------- N2


@gufunc("(n),(n),(n),(),()->(n),()", "void({t}[::1], {t}[::1], {t}[::1], {t}, {t}, {t}[::1], {t}[:])")
def nsquared(SA, CT, p, lat, g0, N2, status):
    """N2[k] (s-2) between levels k and k + 1, as TEOS-10's ``Nsquared``; N2[n - 1] is NaN.

    Gravity is ``g0`` when ``g0 > 0`` (gsw's 9.7963 without a latitude), else the
    mean of ``grav(lat, p)`` at the two levels.
    """
    n = SA.shape[0]
    status[0] = not_increasing(p)
    for k in range(n - 1):
        dp = p[k + 1] - p[k]
        SA_mid = 0.5 * (SA[k] + SA[k + 1])
        CT_mid = 0.5 * (CT[k] + CT[k + 1])
        p_mid = 0.5 * (p[k] + p[k + 1])
        xs = math.sqrt(GSW_SFAC * SA_mid + OFFSET)
        v, v_xs, v_ys = specvol_core(xs, CT_SCALE * CT_mid, P_SCALE * p_mid)
        alpha = CT_SCALE * v_ys / v
        beta = -0.5 * GSW_SFAC * v_xs / (xs * v)
        g = g0 if g0 > 0.0 else 0.5 * (grav(lat, p[k]) + grav(lat, p[k + 1]))
        N2[k] = (g * g) / (v * DB2PA * dp) * (beta * (SA[k + 1] - SA[k]) - alpha * (CT[k + 1] - CT[k]))
    N2[n - 1] = math.nan


# ---------------------------------------------------------------- dynamic height


@njit
def _pchip_slopes(x, y, n, d):
    """Shape-preserving derivatives d[:n] of the piecewise cubic Hermite interpolant of
    (x, y) (Fritsch and Butland 1984, as scipy's PchipInterpolator): a weighted harmonic
    mean of the neighbouring secants inside, zero at a local extremum, and a
    three-point estimate kept monotone at the ends."""
    if n == 2:
        d[0] = (y[1] - y[0]) / (x[1] - x[0])
        d[1] = d[0]
        return
    for k in range(1, n - 1):
        h0 = x[k] - x[k - 1]
        h1 = x[k + 1] - x[k]
        m0 = (y[k] - y[k - 1]) / h0
        m1 = (y[k + 1] - y[k]) / h1
        w0 = 2.0 * h1 + h0
        w1 = h1 + 2.0 * h0
        # (w0 + w1) / (w0 / m0 + w1 / m1), written so that no division by zero is ever
        # evaluated (LLVM may compute both branches of the test below)
        den = w0 * m1 + w1 * m0
        if m0 == 0.0 or m1 == 0.0 or (m0 > 0.0) != (m1 > 0.0) or den == 0.0:
            d[k] = 0.0
        else:
            d[k] = (w0 + w1) * m0 * m1 / den
    d[0] = _pchip_end(x[1] - x[0], x[2] - x[1], (y[1] - y[0]) / (x[1] - x[0]), (y[2] - y[1]) / (x[2] - x[1]))
    d[n - 1] = _pchip_end(
        x[n - 1] - x[n - 2],
        x[n - 2] - x[n - 3],
        (y[n - 1] - y[n - 2]) / (x[n - 1] - x[n - 2]),
        (y[n - 2] - y[n - 3]) / (x[n - 2] - x[n - 3]),
    )


@njit(inline="always")
def _sign(x):
    return 1 if x > 0.0 else (-1 if x < 0.0 else 0)


@njit(inline="always")
def _pchip_end(h0, h1, m0, m1):
    d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if _sign(d) != _sign(m0):
        return 0.0
    if _sign(m0) != _sign(m1) and abs(d) > 3.0 * abs(m0):
        return 3.0 * m0
    return d


@njit(inline="always")
def _hermite(x0, x1, y0, y1, d0, d1, x):
    h = x1 - x0
    t = (x - x0) / h
    tt = t * t
    ttt = tt * t
    return (
        y0 * (2.0 * ttt - 3.0 * tt + 1.0)
        + d0 * h * (ttt - 2.0 * tt + t)
        + y1 * (-2.0 * ttt + 3.0 * tt)
        + d1 * h * (ttt - tt)
    )


@gufunc(
    "(n),(n),(n),(),(),()->(n),()",
    "void({t}[::1], {t}[::1], {t}[::1], {t}, {t}, {t}, {t}[::1], {t}[:])",
)
def geo_strf_dyn_height(SA, CT, p, p_ref, max_dp, linear, out, status):
    """Dynamic height anomaly (m2 s-2) relative to ``p_ref`` (dbar), by TEOS-10's method.

    The integral of specific volume anomaly over pressure, by the trapezoidal
    rule, on the valid levels refined so that no step exceeds ``max_dp``
    (dbar; points of the uniform grid ``p[0] + k * max_dp`` within
    ``max_dp / 1000`` of a level are left out, and ``p_ref`` is a point of
    the grid), with SA and CT interpolated in pressure by PCHIP
    (``linear == 0``) or linearly.  No refinement when no step exceeds
    ``max_dp`` and ``p_ref`` is one of the levels.  Above the shallowest valid
    level, when ``p_ref`` is shallower, the water is taken as mixed (the
    shallowest SA and CT) on the grid ``p_ref + k * max_dp``.  NaN for the
    whole column when fewer than two levels are valid or the deepest is above
    ``p_ref``.
    """
    n = SA.shape[0]
    status[0] = not_increasing(p)
    for k in range(n):
        out[k] = math.nan
    m = 0
    for k in range(n):
        if not (math.isnan(p[k]) or math.isnan(SA[k]) or math.isnan(CT[k])):
            m += 1
    if status[0] != 0.0 or m < 2:
        return
    first = 0.0
    deepest = 0.0
    j = 0
    for k in range(n):
        if not (math.isnan(p[k]) or math.isnan(SA[k]) or math.isnan(CT[k])):
            if j == 0:
                first = p[k]
            deepest = p[k]
            j += 1
    if deepest < p_ref:
        return
    top = 0
    if first > p_ref:
        top = int(math.ceil((first - p_ref) / max_dp))  # as numpy.arange(p_ref, first, max_dp)
    size = top + m
    P = np.empty(size)
    S = np.empty(size)
    C = np.empty(size)
    where = np.empty(size, np.int64)  # the level of each original point, -1 for the added top
    j = 0
    for k in range(n):
        if not (math.isnan(p[k]) or math.isnan(SA[k]) or math.isnan(CT[k])):
            if j == 0:
                for i in range(top):
                    P[i] = p_ref + i * max_dp
                    S[i] = SA[k]
                    C[i] = CT[k]
                    where[i] = -1
            P[top + j] = p[k]
            S[top + j] = SA[k]
            C[top + j] = CT[k]
            where[top + j] = k
            j += 1

    fine = True
    exact = False
    for i in range(size):
        if i > 0 and P[i] - P[i - 1] > max_dp:
            fine = False
        if P[i] == p_ref:
            exact = True
    if fine and exact:
        total = 0.0
        b_prev = specvol_anom_standard(S[0], C[0], P[0])
        reference = 0.0
        for i in range(size):
            if i > 0:
                b = specvol_anom_standard(S[i], C[i], P[i])
                total -= 0.5 * (b + b_prev) * (P[i] - P[i - 1]) * DB2PA
                b_prev = b
            if where[i] >= 0:
                out[where[i]] = total
            if P[i] == p_ref:
                reference = total
        for i in range(size):
            if where[i] >= 0:
                out[where[i]] -= reference
        return

    dS = np.empty(size)
    dC = np.empty(size)
    if linear == 0.0:
        _pchip_slopes(P, S, size, dS)
        _pchip_slopes(P, C, size, dC)
    tol = 0.001 * max_dp
    # Walk the refined grid from P[0] down: uniform points P[0] + u * max_dp, the levels and p_ref.
    reference = 0.0
    ref_placed = p_ref <= P[0] + tol
    x_prev = P[0]
    b_prev = specvol_anom_standard(S[0], C[0], P[0])
    total = 0.0
    if where[0] >= 0:
        out[where[0]] = 0.0
    u = 1
    i = 1
    while i < size:
        uniform = P[0] + max_dp * u
        level = -1
        if not ref_placed and p_ref <= uniform and p_ref <= P[i]:
            x = p_ref
            ref_placed = True
            is_ref = True
            if p_ref == P[i]:
                level = i
            if p_ref > uniform - tol:
                u += 1
        else:
            is_ref = False
            if uniform < P[i] - tol:
                x = uniform
                u += 1
            else:
                x = P[i]
                level = i
                if uniform < P[i] + tol:
                    u += 1
        if level >= 0:
            s, c = S[i], C[i]
            i += 1
        elif linear != 0.0:
            f = (x - P[i - 1]) / (P[i] - P[i - 1])
            s = S[i - 1] + f * (S[i] - S[i - 1])
            c = C[i - 1] + f * (C[i] - C[i - 1])
        else:
            s = _hermite(P[i - 1], P[i], S[i - 1], S[i], dS[i - 1], dS[i], x)
            c = _hermite(P[i - 1], P[i], C[i - 1], C[i], dC[i - 1], dC[i], x)
        b = specvol_anom_standard(s, c, x)
        total -= 0.5 * (b + b_prev) * (x - x_prev) * DB2PA
        b_prev = b
        x_prev = x
        if level >= 0 and where[level] >= 0:
            out[where[level]] = total
        if is_ref:
            reference = total
    for i in range(size):
        if where[i] >= 0:
            out[where[i]] -= reference


# ---------------------------------------------------------------- mixed layer depth


@njit(inline="always")
def _mixed_layer_value(SA, CT, criterion):
    """sigma0 (kg m-3) for the density criterion, CT (degC) for the temperature one."""
    if criterion == 0:
        v = specvol_core(math.sqrt(GSW_SFAC * SA + OFFSET), CT_SCALE * CT, 0.0)[0]
        return 1.0 / v - 1000.0
    return CT


@gufunc(
    "(n),(n),(n),(),(),()->(),()",
    "void({t}[::1], {t}[::1], {t}[::1], {t}, {t}, {t}, {t}[:], {t}[:])",
)
def mixed_layer_depth(SA, CT, depth, criterion, threshold, reference_depth, out, status):
    """Mixed layer depth (m) by a threshold criterion (de Boyer Montegut et al. 2004).

    The value (sigma0 when ``criterion == 0``, CT when 1) at ``reference_depth``
    is interpolated linearly between the valid levels around it (the
    shallowest valid level's value when ``reference_depth`` is above it).  The
    mixed layer depth is the first depth below ``reference_depth`` where the
    value has departed from it by ``threshold`` (sigma0 increased by it; CT
    changed by it either way), interpolated linearly between that level and
    the valid point above it (the previous level, or the reference point);
    the deepest valid depth when the column never departs so far; NaN when no
    valid level reaches ``reference_depth``.
    """
    n = SA.shape[0]
    out[0] = math.nan
    crit = int(criterion)
    status[0] = not_increasing(depth)
    if status[0] != 0.0:
        return
    # the reference value
    ref = math.nan
    d_prev = math.nan
    v_prev = math.nan
    start = n
    for k in range(n):
        if math.isnan(depth[k]) or math.isnan(SA[k]) or math.isnan(CT[k]):
            continue
        v = _mixed_layer_value(SA[k], CT[k], crit)
        if depth[k] >= reference_depth:
            if math.isnan(d_prev):
                ref = v
            else:
                ref = v_prev + (reference_depth - d_prev) / (depth[k] - d_prev) * (v - v_prev)
            start = k
            break
        d_prev = depth[k]
        v_prev = v
    if math.isnan(ref):
        return
    d_prev = reference_depth
    v_prev = ref
    deepest = reference_depth
    for k in range(start, n):
        if math.isnan(depth[k]) or math.isnan(SA[k]) or math.isnan(CT[k]):
            continue
        if depth[k] <= reference_depth:
            continue
        v = _mixed_layer_value(SA[k], CT[k], crit)
        change = v - ref
        if crit != 0:
            change = abs(change)
        if change >= threshold:
            target = ref + threshold if v >= ref else ref - threshold
            out[0] = d_prev + (target - v_prev) / (v - v_prev) * (depth[k] - d_prev)
            return
        d_prev = depth[k]
        v_prev = v
        deepest = depth[k]
    out[0] = deepest


# ---------------------------------------------------------------- model variables to density


#: Columns per tile of :func:`from_model` (whole rows; its per-column scratch, the atlas
#: profiles included, stays in the L2 cache).
TILE = 512

#: What :func:`from_model` writes, by output code.
MODEL_OUTPUTS = ("SA", "CT", "p", "rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "N2")
_N2 = MODEL_OUTPUTS.index("N2")


@njit(inline="always")
def _pressure(vertical, lat, v_kind, with_n2, p_ref):
    """For :func:`from_model`: sea pressure (dbar) from the vertical coordinate of kind ``v_kind``
    at ``lat``, gravity there (NaN unless ``with_n2``), and the atlas level ``iz`` and weight ``t``
    of linear interpolation between levels ``iz`` and ``iz + 1`` (pressure clamped to the last)."""
    if v_kind == 0:
        p = vertical
    elif v_kind == 1:
        p = p_from_z_scalar(vertical, lat)
    else:
        p = p_from_z_scalar(-vertical, lat)
    g = grav(lat, p) if with_n2 else math.nan
    if not p == p:
        return p, g, 0, math.nan
    q = min(p, p_ref[p_ref.shape[0] - 1])
    iz = level_index(p_ref, q)
    return p, g, iz, (q - p_ref[iz]) / (p_ref[iz + 1] - p_ref[iz])


@gufunc(
    "(n,a,b),(n,a,b),(n,a,b),(a,b),(a,b),(),(),(k),(r,e),(u,v,w),(u,v),(w),(v),(u)->(k,n,a,b),(r)",
    "void({t}[:, :, :], {t}[:, :, :], {t}[:, :, :], {t}[:, :], {t}[:, :], {t}, {t}, int64[::1], float64[:, ::1], "
    "float64[:, :, ::1], int64[:, ::1], float64[::1], float64[::1], float64[::1], {t}[:, :, :, ::1], float64[::1])",
)
def from_model(SP, T, V, lon, lat, t_kind, v_kind, codes, bounds, saar, ndepth, p_ref, lats, longs, out, outside):
    """Model variables to TEOS-10 properties in one pass over n levels of a x b columns.

    ``SP`` Practical Salinity; ``T`` potential temperature (degC, ``t_kind == 0``)
    or in-situ temperature (``t_kind == 1``); ``V`` sea pressure (dbar,
    ``v_kind == 0``), height (m, negative downwards, 1) or depth (m, positive
    downwards, 2); ``lon``, ``lat`` (degrees) per column; the SAAR atlas arrays
    (:data:`.saar.ATLAS`).  ``out[c]`` is the output ``MODEL_OUTPUTS[codes[c]]``;
    N2 is at the mid-points (level i between levels i and i + 1; the last is NaN).
    ``outside[q]`` counts the values of SP, T and V (q = 0, 1, 2) outside
    ``[bounds[q, 0], bounds[q, 1]]`` (NaN is not counted).  Inputs may be strided
    (views of larger arrays, broadcast coordinates): they are read in place.

    Per point the same arithmetic as ``p_from_z``, ``SA_from_SP``, ``CT_from_pt``
    (or ``CT_from_t``) and the 75-term functions of oceanflow; done once where it
    can be.  The columns are taken a tile of :data:`TILE` or so at a time (whole
    rows of b): the horizontal part of the atlas interpolation once per column and
    atlas level (:func:`.saar.saar_profiles`); then level by level, a scalar pass
    reads the inputs and finds pressure, gravity and the atlas bracket once per run
    of equal vertical coordinate and latitude, and branch-free passes (which LLVM
    vectorises) compute SA, CT and each output across the tile's columns.
    """
    n, a, b = SP.shape
    k = codes.shape[0]
    nz = p_ref.shape[0]
    res = out.reshape((k, n, a * b))
    low0, high0, low1, high1 = bounds[0, 0], bounds[0, 1], bounds[1, 0], bounds[1, 1]
    low2, high2 = bounds[2, 0], bounds[2, 1]
    count0 = count1 = count2 = 0
    with_n2 = False
    for c in range(k):
        if codes[c] == _N2:
            with_n2 = True
    rows = max(1, TILE // b)
    width = rows * b
    # per column of a tile: the atlas cell and profiles; kind 0 atlas, 1 Baltic, 2 NaN (no position,
    # or a latitude outside the atlas)
    lat_col = np.empty(width)
    kind = np.zeros(width, np.int64)
    ix = np.zeros(width, np.int64)
    iy = np.zeros(width, np.int64)
    deepest = np.zeros(width, np.int64)
    r = np.zeros(width)
    s = np.zeros(width)
    lon360 = np.zeros(width)
    panama = np.zeros(width, np.bool_)
    prof = np.empty((width, nz))
    # per level of a tile
    SP_row = np.empty(width)
    T_row = np.empty(width)
    p_row = np.empty(width)
    g_row = np.empty(width)
    # unsigned: no negative-index wrap-around where it indexes; level_index keeps it in [0, nz - 2]
    # (clamped, NaN pressure taken as 0), so iz and iz + 1 are atlas levels
    iz_row = np.empty(width, np.uint64)
    t_row = np.empty(width)
    SA_row = np.empty(width)
    CT_row = np.empty(width)
    prev_SA = np.empty(width)
    prev_CT = np.empty(width)
    prev_p = np.empty(width)
    prev_g = np.empty(width)
    baltic = (SSO - 0.087) / 35.0
    for y0 in range(0, a, rows):
        y1 = min(y0 + rows, a)
        w = (y1 - y0) * b
        j0 = y0 * b
        for j in range(w):
            lo, la = float(lon[y0 + j // b, j % b]), float(lat[y0 + j // b, j % b])
            lat_col[j] = la
            valid, ix[j], iy[j], r[j], s[j], deepest[j], lon360[j], panama[j] = saar_cell(lo, la, ndepth, lats, longs)
            kind[j] = 1 if in_baltic(lo, la) else 0 if valid else 2
        saar_profiles(saar, ix, iy, r, s, deepest, lon360, lat_col, panama, w, lats, longs, prof)
        for i in range(n):
            j = 0
            for y in range(y0, y1):
                # the inputs in float64 and their range counts (through 1-D views: an index j + x
                # into the tile's rows would need numba's negative-index wrap-around at every point)
                sp_in, t_in = SP[i, y], T[i, y]
                sp_out, t_out = SP_row[j : j + b], T_row[j : j + b]
                for x in range(b):
                    sp = float(sp_in[x])
                    temperature = float(t_in[x])
                    sp_out[x] = sp
                    t_out[x] = temperature
                    count0 += (sp < low0) | (sp > high0)
                    count1 += (temperature < low1) | (temperature > high1)
                # pressure, gravity and the atlas bracket: once per row where the vertical coordinate
                # and latitude do not vary along it (1-D depth, a regular grid), else once per run
                # of equal values
                if V.strides[2] == 0 and lat.strides[1] == 0:
                    vertical = float(V[i, y, 0])
                    count2 += b * ((vertical < low2) | (vertical > high2))
                    p, g, iz, t = _pressure(vertical, lat_col[j], v_kind, with_n2, p_ref)
                    p_row[j : j + b] = p
                    g_row[j : j + b] = g
                    iz_row[j : j + b] = iz
                    t_row[j : j + b] = t
                else:
                    v_last = la_last = math.nan
                    for x in range(b):
                        vertical = float(V[i, y, x])
                        la = lat_col[j + x]
                        count2 += (vertical < low2) | (vertical > high2)
                        if vertical != v_last or la != la_last:
                            v_last, la_last = vertical, la
                            p, g, iz, t = _pressure(vertical, la, v_kind, with_n2, p_ref)
                        p_row[j + x] = p
                        g_row[j + x] = g
                        iz_row[j + x] = iz
                        t_row[j + x] = t
                j += b
            # branch-free passes across the columns
            for j in range(w):
                upper = prof[j, iz_row[j]]
                lower = prof[j, iz_row[j] + np.uint64(1)]
                sp = SP_row[j]
                SA = UPS * sp * (1.0 + (upper + t_row[j] * (lower - upper)))  # NaN when t (p) is
                SA = baltic * sp + 0.087 if kind[j] == 1 else SA
                SA_row[j] = math.nan if (kind[j] == 2) | (p_row[j] != p_row[j]) else SA
            if t_kind == 0:
                for j in range(w):
                    CT_row[j] = ct_from_pt_scalar(SA_row[j], T_row[j])
            else:
                for j in range(w):
                    CT_row[j] = ct_from_t_scalar(SA_row[j], T_row[j], p_row[j])
            for c in range(k):
                code = codes[c]
                # this level's (N2: the level above's) row of the output, as a 1-D view
                dst = res[c, i - 1 if code == _N2 and i > 0 else i, j0 : j0 + w]
                if code == 0:
                    for j in range(w):
                        dst[j] = SA_row[j]
                elif code == 1:
                    for j in range(w):
                        dst[j] = CT_row[j]
                elif code == 2:
                    for j in range(w):
                        dst[j] = p_row[j]
                elif code == 3:
                    for j in range(w):
                        xs = math.sqrt(GSW_SFAC * SA_row[j] + OFFSET)
                        dst[j] = 1.0 / specvol_core(xs, CT_SCALE * CT_row[j], P_SCALE * p_row[j])[0]
                elif code <= 8:
                    z = P_SCALE * 1000.0 * (code - 4)
                    for j in range(w):
                        xs = math.sqrt(GSW_SFAC * SA_row[j] + OFFSET)
                        dst[j] = 1.0 / specvol_core(xs, CT_SCALE * CT_row[j], z)[0] - 1000.0
                elif code == 9:
                    for j in range(w):
                        xs = math.sqrt(GSW_SFAC * SA_row[j] + OFFSET)
                        v, _, v_ys = specvol_core(xs, CT_SCALE * CT_row[j], P_SCALE * p_row[j])
                        dst[j] = CT_SCALE * v_ys / v
                elif code == 10:
                    for j in range(w):
                        xs = math.sqrt(GSW_SFAC * SA_row[j] + OFFSET)
                        v, v_xs, _ = specvol_core(xs, CT_SCALE * CT_row[j], P_SCALE * p_row[j])
                        dst[j] = -0.5 * GSW_SFAC * v_xs / (xs * v)
                elif i > 0:  # N2 between the level above and this one, as Nsquared
                    for j in range(w):
                        SA, CT, p = SA_row[j], CT_row[j], p_row[j]
                        xm = math.sqrt(GSW_SFAC * 0.5 * (prev_SA[j] + SA) + OFFSET)
                        ym = CT_SCALE * 0.5 * (prev_CT[j] + CT)
                        vm, vm_xs, vm_ys = specvol_core(xm, ym, P_SCALE * 0.5 * (prev_p[j] + p))
                        alpha = CT_SCALE * vm_ys / vm
                        beta = -0.5 * GSW_SFAC * vm_xs / (xm * vm)
                        g_mid = 0.5 * (prev_g[j] + g_row[j])
                        stability = beta * (SA - prev_SA[j]) - alpha * (CT - prev_CT[j])
                        dst[j] = (g_mid * g_mid) / (vm * DB2PA * (p - prev_p[j])) * stability
            if with_n2:
                for j in range(w):
                    prev_SA[j] = SA_row[j]
                    prev_CT[j] = CT_row[j]
                    prev_p[j] = p_row[j]
                    prev_g[j] = g_row[j]
        for c in range(k):
            if codes[c] == _N2:
                for j in range(w):
                    res[c, n - 1, j0 + j] = math.nan
    outside[0] = count0
    outside[1] = count1
    outside[2] = count2


#: Every kernel of this module by name (dask tasks look kernels up here, never pickle them).
KERNELS = {k.__name__: k for k in (nsquared, geo_strf_dyn_height, mixed_layer_depth, from_model)}
