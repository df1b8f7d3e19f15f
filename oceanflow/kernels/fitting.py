"""Least-squares polynomial fits of many series at once, NaN-aware.

Each kernel takes a block ``y`` of shape ``(n, s)``: ``s`` series of ``n``
points, the fitting dimension first (any strides).  The abscissa enters as a
table ``cheb[i, p] = T_p(t_i)`` of Chebyshev polynomials of the abscissa
scaled to ``t`` in [-1, 1], for ``p = 0 .. 2 * deg``.

Method: normal equations in the Chebyshev basis.  Because ``T_j T_k =
(T_{j+k} + T_{|j-k|}) / 2``, the Gram matrix of a series is determined by the
``2 * deg + 1`` sums ``S_p = sum_i T_p(t_i)`` over its valid points, so one
pass over the data accumulates only ``3 * deg + 2`` float64 sums per series
(``S_p`` and ``b_k = sum_i T_k(t_i) y_i``), whatever its NaN pattern.  Series
are processed in tiles of :data:`TILE` so that the inner loops run over
contiguous accumulators (vectorised) and both time-first and time-last
layouts stay cache friendly.  The small ``(deg + 1)``-square system of each
series is then solved by Cholesky factorisation.

Accuracy: the Gram matrix of well-spread points in the Chebyshev basis of the
scaled abscissa is well conditioned (condition number below 10 for daily data
and degree 3), so the coefficients are accurate to a few ulps.  A series
whose Gram matrix is singular to within :data:`RANK_TOL` (relative pivot),
or which has ``deg`` or fewer valid points, gets NaN coefficients: it is
rank deficient.

Accumulation is in float64 whatever the data type; ``y`` may be float32 or
float64 (the ``{t}`` of the signatures).
"""

import numpy as np

from ._declare import gufunc, njit

#: Series per tile: accumulators ``(3 * deg + 2, TILE)`` float64 stay in L1.
TILE = 64

#: Relative Cholesky pivot below which a fit counts as rank deficient (NaN):
#: a Gram matrix this close to singular leaves fewer than ~5 correct digits.
RANK_TOL = 1e-11


@gufunc(
    "(n,s),(n,q),(m,m),()->(m,s)",
    "void({t}[:, :], float64[:, ::1], float64[:, ::1], boolean, float64[:, ::1])",
)
def chebyshev_lstsq(y, cheb, to_power, skipna, coeffs):
    """Fit every column of ``y``; ``coeffs[:, j] = to_power @ (Chebyshev coefficients)``.

    ``to_power`` maps Chebyshev coefficients (ascending) to the wanted basis
    (oceanflow passes powers of the unscaled abscissa, highest first).  With
    ``skipna`` each series uses its own valid (non-NaN) points; without, a
    series containing NaN gets NaN coefficients.
    """
    n, s = y.shape
    m = to_power.shape[0]
    sums = np.empty((2 * m - 1, TILE))
    rhs = np.empty((m, TILE))
    weight = np.empty(TILE)
    value = np.empty(TILE)
    work = np.empty((m, m))
    solution = np.empty(m)
    for start in range(0, s, TILE):
        width = min(TILE, s - start)
        _accumulate(y, cheb, skipna, start, width, sums, rhs, weight, value)
        for j in range(width):
            ok = _solve(sums, rhs, j, work, solution)
            for r in range(m):
                acc = 0.0
                for k in range(m):
                    acc += to_power[r, k] * solution[k]
                coeffs[r, start + j] = acc if ok else np.nan


@gufunc(
    "(n,s),(n,q),()->(n,s)",
    "void({t}[:, :], float64[:, ::1], boolean, {t}[:, ::1])",
)
def chebyshev_detrend(y, cheb, skipna, out):
    """``out = y - fit``: fit every column of ``y`` and subtract it, in one call.

    The fit is evaluated in the Chebyshev basis (no power-basis round trip);
    NaN stays NaN, and rank-deficient series are all NaN.
    """
    n, s = y.shape
    m = (cheb.shape[1] + 1) // 2
    sums = np.empty((2 * m - 1, TILE))
    rhs = np.empty((m, TILE))
    weight = np.empty(TILE)
    value = np.empty(TILE)
    work = np.empty((m, m))
    solution = np.empty(m)
    fitted = np.empty((m, TILE))
    for start in range(0, s, TILE):
        width = min(TILE, s - start)
        _accumulate(y, cheb, skipna, start, width, sums, rhs, weight, value)
        for j in range(width):
            ok = _solve(sums, rhs, j, work, solution)
            for k in range(m):
                fitted[k, j] = solution[k] if ok else np.nan
        for i in range(n):
            for j in range(width):
                value[j] = y[i, start + j]
            for k in range(m):
                tk = cheb[i, k]
                for j in range(width):
                    value[j] -= tk * fitted[k, j]
            for j in range(width):
                out[i, start + j] = value[j]


# ---------------------------------------------------------------- helpers
# Plain jitted functions, compiled into the kernels that call them.


@njit
def _accumulate(y, cheb, skipna, start, width, sums, rhs, weight, value):
    """Sums over the valid points of series ``start .. start+width`` (float64)."""
    q = sums.shape[0]
    m = rhs.shape[0]
    for p in range(q):
        for j in range(width):
            sums[p, j] = 0.0
    for k in range(m):
        for j in range(width):
            rhs[k, j] = 0.0
    for i in range(y.shape[0]):
        for j in range(width):
            v = np.float64(y[i, start + j])
            valid = v == v or not skipna
            weight[j] = 1.0 if valid else 0.0
            value[j] = v if valid else 0.0
        for p in range(q):
            tp = cheb[i, p]
            for j in range(width):
                sums[p, j] += tp * weight[j]
        for k in range(m):
            tk = cheb[i, k]
            for j in range(width):
                rhs[k, j] += tk * value[j]


@njit
def _solve(sums, rhs, j, work, solution):
    """Chebyshev coefficients of series ``j`` into ``solution``; False if rank deficient."""
    m = rhs.shape[0]
    if not sums[0, j] >= m:  # deg or fewer valid points (or NaN sums)
        return False
    # Gram matrix G[a, b] = (S[a + b] + S[|a - b|]) / 2, Cholesky factor in place.
    for a in range(m):
        for b in range(a + 1):
            work[a, b] = 0.5 * (sums[a + b, j] + sums[a - b, j])
    for k in range(m):
        pivot = work[k, k]
        for c in range(k):
            pivot -= work[k, c] * work[k, c]
        if not pivot > RANK_TOL * work[k, k]:
            return False
        root = np.sqrt(pivot)
        work[k, k] = root
        for r in range(k + 1, m):
            acc = work[r, k]
            for c in range(k):
                acc -= work[r, c] * work[k, c]
            work[r, k] = acc / root
    # Solve L L^T c = b.
    for k in range(m):
        acc = rhs[k, j]
        for c in range(k):
            acc -= work[k, c] * solution[c]
        solution[k] = acc / work[k, k]
    for k in range(m - 1, -1, -1):
        acc = solution[k]
        for c in range(k + 1, m):
            acc -= work[c, k] * solution[c]
        solution[k] = acc / work[k, k]
    return True
