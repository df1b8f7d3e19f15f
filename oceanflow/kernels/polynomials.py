"""Horner's scheme over contiguous 1-D blocks.

Coefficients are in NumPy order, highest power first: ``c[0] * x**(m-1) + ...
+ c[m-1]``.  The loops are tiled: for a tile of ``TILE`` points the
accumulator is updated once per coefficient, so LLVM vectorises the inner loop
and fuses the multiply-add (``fastmath={"contract"}``); an untiled
per-point loop does not vectorise.  ``benchmarks/bench_polyval.py`` measures
the kernel against the memory floor (``np.copyto``) and its peers.
"""

import numpy as np

from ._declare import gufunc

#: Points per tile: a tile's accumulators stay in registers and vectorise (chosen with
#: ``benchmarks/bench_polyval.py``; much smaller or larger tiles were slower).
TILE = 64


@gufunc("(n),(m)->(n)", "void({t}[::1], {t}[::1], {t}[::1])")
def horner(x, c, out):
    """out = polynomial with constant coefficients ``c`` evaluated at ``x``."""
    n = x.shape[0]
    m = c.shape[0]
    if m == 1:  # a constant: still NaN where x is NaN, as np.polyval
        for i in range(n):
            out[i] = x[i] * 0 + c[0]
        return
    acc = np.empty(TILE, dtype=x.dtype)
    full = n - n % TILE
    for start in range(0, full, TILE):
        for i in range(TILE):
            acc[i] = c[0]
        for k in range(1, m):
            ck = c[k]
            for i in range(TILE):
                acc[i] = acc[i] * x[start + i] + ck
        for i in range(TILE):
            out[start + i] = acc[i]
    for i in range(full, n):
        value = c[0]
        for k in range(1, m):
            value = value * x[i] + c[k]
        out[i] = value


@gufunc("(n),(m)->(n),(n)", "void({t}[::1], {t}[::1], {t}[::1], {t}[::1])")
def horner_deriv(x, c, out, dout):
    """out, dout = polynomial and its first derivative, in one pass."""
    n = x.shape[0]
    m = c.shape[0]
    if m == 1:
        for i in range(n):
            out[i] = x[i] * 0 + c[0]
            dout[i] = x[i] * 0
        return
    acc = np.empty(TILE, dtype=x.dtype)
    dacc = np.empty(TILE, dtype=x.dtype)
    full = n - n % TILE
    for start in range(0, full, TILE):
        for i in range(TILE):
            acc[i] = c[0]
            dacc[i] = 0
        for k in range(1, m):
            ck = c[k]
            for i in range(TILE):
                xi = x[start + i]
                dacc[i] = dacc[i] * xi + acc[i]
                acc[i] = acc[i] * xi + ck
        for i in range(TILE):
            out[start + i] = acc[i]
            dout[start + i] = dacc[i]
    for i in range(full, n):
        value = c[0]
        slope = value * 0
        for k in range(1, m):
            slope = slope * x[i] + value
            value = value * x[i] + c[k]
        out[i] = value
        dout[i] = slope


@gufunc("(n),(m,n)->(n)", "void({t}[:], {t}[:, :], {t}[::1])")
def horner_varying(x, c, out):
    """out[i] = polynomial with coefficients ``c[:, i]`` evaluated at ``x[i]``.

    ``x`` and ``c`` may be strided (broadcast coefficients have stride 0).
    """
    n = x.shape[0]
    m = c.shape[0]
    for i in range(n):
        out[i] = x[i] * 0 + c[0, i]  # NaN where x is NaN, even for a constant
    for k in range(1, m):
        for i in range(n):
            out[i] = out[i] * x[i] + c[k, i]


@gufunc("(n),(m,n)->(n),(n)", "void({t}[:], {t}[:, :], {t}[::1], {t}[::1])")
def horner_varying_deriv(x, c, out, dout):
    """Like :func:`horner_varying`, plus the first derivative in ``dout``."""
    n = x.shape[0]
    m = c.shape[0]
    for i in range(n):
        out[i] = x[i] * 0 + c[0, i]
        dout[i] = x[i] * 0
    for k in range(1, m):
        for i in range(n):
            dout[i] = dout[i] * x[i] + out[i]
            out[i] = out[i] * x[i] + c[k, i]
