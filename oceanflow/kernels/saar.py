"""The TEOS-10 Absolute Salinity Anomaly Ratio atlas and its interpolation (scalar njit).

The atlas (McDougall et al. 2012, as distributed with GSW 3.06; package data
``oceanflow/eos/data/saar.npz`` made by ``tools/extract_saar.py``) is loaded
once, on import, into :data:`ATLAS`: five read-only arrays

* ``saar`` float64 (lon, lat, p) = (91, 45, 45), NaN where the atlas has no value;
* ``ndepth`` int64 (lon, lat): the deepest usable level of each column (1-based), -1 if none;
* ``p_ref`` (45,) dbar, ``lats_ref`` (45,) degN, ``longs_ref`` (91,) degE: the grid.

:func:`saar_lookup` takes them as arguments, so any kernel can call it; pass
them to a gufunc as core inputs (``eos_conversions.Quiet`` does that
without putting them in dask graphs).  Naming them as globals inside a kernel
would freeze them into its machine code, and numba then refuses to cache it.

:func:`saar_range` gives the same values for a block of points at once, with
:data:`TOPS` (each grid cell's deepest usable pressure, derived on import) for
``ndepth``: on random positions most atlas reads miss the cache, and it
issues those of many points before using any (the gufuncs use it).

Interpolation as TEOS-10 specifies (McDougall et al. 2012, GSW's ``gsw_saar``):
bilinear in longitude and latitude on the 4 degree grid, then linear in
pressure between the two bracketing levels; pressures below the deepest level
of the four surrounding columns take that level's value; a missing corner
takes the mean of the corners present (0 if none); near Panama the corners on
the other side of the isthmus are replaced by the mean of those on the point's
side; points with no ocean column among the four corners get 0 (SA = SR);
latitudes outside [-86, 90] and NaN or infinite positions give NaN.

Example
-------
>>> round(float(saar_lookup(1000.0, 190.0, 10.0, *ATLAS)), 8)
0.00030637
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._declare import njit

DATA = Path(__file__).resolve().parent.parent / "eos" / "data" / "saar.npz"

#: The isthmus of Panama as a polyline (degE, degN), TEOS-10's barrier.
PANAMA_LONGS = np.array([260.00, 272.59, 276.50, 278.65, 280.73, 292.0])
PANAMA_LATS = np.array([19.55, 13.97, 9.60, 8.10, 9.33, 3.4])


class Atlas(NamedTuple):
    """The SAAR atlas arrays, in the order :func:`saar_lookup` takes them."""

    saar: np.ndarray
    ndepth: np.ndarray
    p_ref: np.ndarray
    lats_ref: np.ndarray
    longs_ref: np.ndarray


def load_atlas(path: Path = DATA) -> Atlas:
    """Read the compact atlas file (see ``tools/extract_saar.py``) into dense read-only arrays."""
    with np.load(path) as data:
        p_ref, lats, longs = data["p_ref"], data["lats_ref"], data["longs_ref"]
        shape = (longs.size, lats.size, p_ref.size)
        valid = np.unpackbits(data["valid"], count=int(np.prod(shape))).astype(bool).reshape(shape)
        values = np.ascontiguousarray(data["values"].T).view(np.float64).ravel()
        ndepth = data["ndepth"].astype(np.int64)
    saar = np.full(shape, np.nan)
    saar[valid] = values
    arrays = Atlas(saar, ndepth, p_ref.astype(np.float64), lats.astype(np.float64), longs.astype(np.float64))
    for array in arrays:
        array.setflags(write=False)
    return arrays


def cell_tops(atlas: Atlas) -> np.ndarray:
    """The deepest usable pressure (dbar) of each grid cell, (lon cell, lat cell) float64, for
    :func:`saar_range`: that of the deepest of its four corner columns (TEOS-10 clamps pressures
    below it), -1 where none of them has a level (SAAR 0 there).  Derived from ``atlas.ndepth``;
    read-only.  Also checks that the grid is uniform, as :func:`saar_range` assumes."""
    for nodes in (atlas.longs_ref, atlas.lats_ref):
        step = nodes[1] - nodes[0]
        if not np.array_equal(nodes, nodes[0] + step * np.arange(nodes.size)):
            raise ValueError("the SAAR atlas grid must be uniform in longitude and latitude")
    n = atlas.ndepth
    deepest = np.maximum(np.maximum(n[:-1, :-1], n[1:, :-1]), np.maximum(n[1:, 1:], n[:-1, 1:]))
    tops = np.where(deepest > 0, atlas.p_ref[np.maximum(deepest - 1, 0)], -1.0)
    tops.setflags(write=False)
    return tops


#: The atlas, loaded once.
ATLAS = load_atlas()


def _level_table(p_ref: np.ndarray, step: float) -> np.ndarray:
    """Level index at each multiple of ``step`` dbar, for :func:`level_index` (no level is
    closer than ``step`` to the next, so one comparison completes the lookup)."""
    assert np.diff(p_ref).min() >= step
    starts = step * np.arange(int(np.ceil(p_ref[-1] / step)) + 1)
    return np.searchsorted(p_ref[1:-1], starts, side="right").astype(np.int8)


#: :func:`cell_tops` of :data:`ATLAS`.
TOPS = cell_tops(ATLAS)

#: Level of the atlas at 0, 10, 20, ... dbar (a small constant array: numba embeds it).
LEVEL_STEP = 10.0
LEVEL_TABLE = _level_table(ATLAS.p_ref, LEVEL_STEP)


@njit(inline="always")
def grid_index(x, z):
    """k with x[k] <= z < x[k+1] for x increasing; 0 below x[0], len(x) - 2 from x[-1] on.

    Counts the inner nodes at or below ``z``: no branches (a binary search on
    random input mispredicts at every step).
    """
    k = 0
    for j in range(1, x.shape[0] - 1):
        k += z >= x[j]
    return k


@njit(inline="always")
def _clamp(x, low, high):
    """``x`` within [low, high]; NaN gives ``low``."""
    x = x if x >= low else low
    return x if x <= high else high


@njit(inline="always")
def level_index(p_ref, p):
    """:func:`grid_index` on the atlas levels ``p_ref`` (those of :data:`ATLAS`), by table
    (the same bracket up to rounding just below a level); any ``p``, -inf included."""
    m = int(_clamp(p * (1.0 / LEVEL_STEP), 0.0, LEVEL_TABLE.shape[0] - 1.0))  # float clamp: int(-inf) undefined
    k = np.int64(LEVEL_TABLE[m])
    return k + (k < p_ref.shape[0] - 2 and p >= p_ref[k + 1])


@njit(inline="always")
def wrap360(lon):
    """Longitude in [0, 360] (degE): equal to C's ``fmod(lon, 360)`` (+360 if negative)
    for lon in [-360, 360), without the branches of Python's ``%``; NaN for an infinite
    ``lon`` and outside [0, 360] for a huge one (positions the callers refuse)."""
    return lon - 360.0 * np.floor(lon / 360.0)


@njit(inline="always")
def in_baltic360(lon, lat):
    """Whether (lon degE in [0, 360], lat degN) is in the Baltic Sea polygon of TEOS-10, where
    Absolute Salinity has its own formula (branch-free)."""
    # the polygon's sides, piecewise linear in latitude (the west side has a corner at 59N)
    left = max(12.6 + ((lat - 50.0) / 9.0) * (7.0 - 12.6), 7.0 + ((lat - 59.0) / 10.0) * (26.0 - 7.0))
    right = 45.0 + ((lat - 50.0) / 19.0) * (26.0 - 45.0)
    return (7.0 < lon) & (lon < 45.0) & (50.0 < lat) & (lat < 69.0) & (left <= lon) & (lon <= right)


@njit(inline="always")
def in_baltic(lon, lat):
    """:func:`in_baltic360` for ``lon`` in any range (degE)."""
    return in_baltic360(wrap360(lon), lat)


@njit(inline="always")
def _panama_lat(lon):
    """Latitude of the Panama polyline at ``lon`` (extrapolated beyond its ends)."""
    k = grid_index(PANAMA_LONGS, lon)
    r = (lon - PANAMA_LONGS[k]) / (PANAMA_LONGS[k + 1] - PANAMA_LONGS[k])
    return PANAMA_LATS[k] + r * (PANAMA_LATS[k + 1] - PANAMA_LATS[k])


@njit(inline="always")
def _filled(c0, c1, c2, c3):
    """Four corner values with the missing (NaN) ones replaced by the mean of those present
    (0 if none), as TEOS-10 fills them away from Panama; without branches."""
    o0, o1, o2, o3 = c0 == c0, c1 == c1, c2 == c2, c3 == c3
    count = (1.0 if o0 else 0.0) + (1.0 if o1 else 0.0) + (1.0 if o2 else 0.0) + (1.0 if o3 else 0.0)
    total = (c0 if o0 else 0.0) + (c1 if o1 else 0.0) + (c2 if o2 else 0.0) + (c3 if o3 else 0.0)
    mean = total / max(count, 1.0)
    return (c0 if o0 else mean), (c1 if o1 else mean), (c2 if o2 else mean), (c3 if o3 else mean)


@njit(inline="always")
def _corners(saar, ix, iy, iz, lon, lat, lats, longs, panama):
    """The four corner values around (lon, lat) at level ``iz``, missing ones filled as TEOS-10 says:
    :func:`_filled`, and near Panama the corners across the isthmus replaced too."""
    c0 = saar[ix, iy, iz]
    c1 = saar[ix + 1, iy, iz]
    c2 = saar[ix + 1, iy + 1, iz]
    c3 = saar[ix, iy + 1, iz]
    if panama:  # corners across the isthmus do not count: treated as missing
        side = lat >= _panama_lat(lon)
        west = _panama_lat(longs[ix])
        east = _panama_lat(longs[ix + 1])
        c0 = c0 if (lats[iy] >= west) == side else math.nan
        c1 = c1 if (lats[iy] >= east) == side else math.nan
        c2 = c2 if (lats[iy + 1] >= east) == side else math.nan
        c3 = c3 if (lats[iy + 1] >= west) == side else math.nan
    return _filled(c0, c1, c2, c3)


@njit(inline="always")
def saar_cell(lon, lat, ndepth, lats, longs):
    """The horizontal part of :func:`saar_lookup`, once per column: ``(valid, ix, iy, r, s,
    deepest, lon360, panama)``, the grid cell, the weights within it, the deepest atlas level of
    its four corners (<= 0: no ocean, SAAR 0), the longitude in [0, 360] and whether the Panama
    rule applies; ``valid`` is False for NaN or infinite positions and latitudes outside the atlas (SAAR NaN)."""
    nx, ny = longs.shape[0], lats.shape[0]
    if math.isnan(lon) or math.isnan(lat) or lat < lats[0] or lat > lats[ny - 1]:
        return False, 0, 0, 0.0, 0.0, 0, 0.0, False
    lon = wrap360(lon)
    if not 0.0 <= lon <= 360.0:  # infinite or huge
        return False, 0, 0, 0.0, 0.0, 0, 0.0, False
    ix = min(int(math.floor((nx - 1) * (lon - longs[0]) / (longs[nx - 1] - longs[0]))), nx - 2)
    iy = min(int(math.floor((ny - 1) * (lat - lats[0]) / (lats[ny - 1] - lats[0]))), ny - 2)
    deepest = max(max(ndepth[ix, iy], ndepth[ix + 1, iy]), max(ndepth[ix + 1, iy + 1], ndepth[ix, iy + 1]))
    r = (lon - longs[ix]) / (longs[ix + 1] - longs[ix])
    s = (lat - lats[iy]) / (lats[iy + 1] - lats[iy])
    panama = PANAMA_LONGS[0] <= lon <= PANAMA_LONGS[-1] - 0.001 and PANAMA_LATS[-1] <= lat <= PANAMA_LATS[0]
    return True, ix, iy, r, s, deepest, lon, panama


@njit(inline="always")
def saar_at_level(saar, ix, iy, iz, lon360, lat, lats, longs, panama, r, s):
    """The atlas at level ``iz`` interpolated to the point of a :func:`saar_cell` (bilinear)."""
    c0, c1, c2, c3 = _corners(saar, ix, iy, iz, lon360, lat, lats, longs, panama)
    return (1.0 - s) * (c0 + r * (c1 - c0)) + s * (c3 + r * (c2 - c3))


@njit(inline="always")
def saar_lookup(p, lon, lat, saar, ndepth, p_ref, lats, longs):
    """Absolute Salinity Anomaly Ratio (unitless) at sea pressure ``p`` (dbar),
    ``lon`` (degE, any range), ``lat`` (degN); the atlas arrays as in :data:`ATLAS`:
    :func:`saar_cell`, then :func:`saar_at_level` at the two levels around ``p``."""
    if math.isnan(p):
        return math.nan
    valid, ix, iy, r, s, deepest, lon360, panama = saar_cell(lon, lat, ndepth, lats, longs)
    if not valid:
        return math.nan
    if deepest <= 0:
        return 0.0  # far from the ocean
    p = min(p, p_ref[deepest - 1])
    iz = level_index(p_ref, p)
    t = (p - p_ref[iz]) / (p_ref[iz + 1] - p_ref[iz])
    upper = saar_at_level(saar, ix, iy, iz, lon360, lat, lats, longs, panama, r, s)
    lower = saar_at_level(saar, ix, iy, iz + 1, lon360, lat, lats, longs, panama, r, s)
    return upper + t * (lower - upper)


@njit(inline="always")
def saar_profiles(saar, ix, iy, r, s, deepest, lon360, lat, panama, width, lats, longs, prof):
    """``prof[j, k]`` = the atlas at level ``k`` interpolated to column ``j < width`` (one
    :func:`saar_cell` each: ``ix[j]``, ``iy[j]``...), every level: :func:`saar_at_level`; from
    the column's deepest level down, that level's value (0 where ``deepest[j] <= 0``), so that
    linear interpolation in pressure between ``prof[j, k]`` and ``prof[j, k + 1]`` gives
    :func:`saar_lookup` without its clamp (pressures beyond the atlas's last level excepted).

    For the columns of a model file: the horizontal part of the interpolation once per column
    and level, down each column (contiguous reads, branch-free: LLVM vectorises it); the
    columns near Panama again with its barrier.
    """
    nz = saar.shape[2]
    for j in range(width):
        x, y, rj, sj, deep = ix[j], iy[j], r[j], s[j], deepest[j]
        a0, a1, a2, a3 = saar[x, y], saar[x + 1, y], saar[x + 1, y + 1], saar[x, y + 1]  # (slices: no
        row = prof[j]  # index wrap-around in the loop, which would stop LLVM from vectorising it)
        for k in range(nz):
            c0, c1, c2, c3 = _filled(a0[k], a1[k], a2[k], a3[k])
            row[k] = (1.0 - sj) * (c0 + rj * (c1 - c0)) + sj * (c3 + rj * (c2 - c3))
        if panama[j]:
            for k in range(deep):
                row[k] = saar_at_level(saar, x, y, k, lon360[j], lat[j], lats, longs, True, rj, sj)
        bottom = row[deep - 1] if deep > 0 else 0.0
        for k in range(nz):
            row[k] = row[k] if k < deep else bottom


# ---------------------------------------------------------------- many points at once

#: Points per block of :func:`saar_range` (its scratch arrays stay in the L1 cache).
BLOCK = 256


@njit(inline="always")
def saar_range(p, lon, lat, start, stop, values, saar, tops, p_ref, lats, longs, index, work):
    """``values[j]`` = :func:`saar_lookup` of point ``start + j`` of ``p``, ``lon``, ``lat``,
    for ``start + j < stop`` (at most ``values.shape[0]`` points); the atlas as in :data:`ATLAS`
    with :data:`TOPS` for ``ndepth``; scratch ``index`` (2, BLOCK) int64 and ``work`` (13, BLOCK)
    float64 (:data:`BLOCK` or more), whose row 12 it leaves holding 1.0 for the points in the Baltic
    (:func:`in_baltic`), else 0.0.

    The same interpolation in four passes over the block, so that the atlas reads of many
    points are in flight at once (on random positions they miss the cache): the grid cell,
    weights and flags of each point (arithmetic only); the level and the 8 atlas values
    (reads only); the missing-corner fill and interpolation (arithmetic only, no branches);
    then the few points near Panama again with its barrier.
    """
    nx, ny, nz = saar.shape
    flat = saar.reshape(-1)
    top_of = tops.reshape(-1)
    sx, sy = ny * nz, nz
    x0, dx = longs[0], longs[1] - longs[0]
    y0, dy = lats[0], lats[1] - lats[0]
    # (the atlas's steps are 4 degrees: multiplying by their reciprocals is exact)
    inv_dx, inv_dy = 1.0 / dx, 1.0 / dy
    m = stop - start
    cell, base = index[0], index[1]
    # pass 1: cell, weights and flags (work[8] r, 9 s, 10 t, 11 code: 0 ocean, 1 land, 2 NaN,
    # 3 Panama; 12 Baltic)
    for j in range(m):
        la = np.float64(lat[start + j])
        lo = wrap360(np.float64(lon[start + j]))
        fx = _clamp(np.floor((lo - x0) * inv_dx), 0.0, nx - 2.0)
        fy = _clamp(np.floor((la - y0) * inv_dy), 0.0, ny - 2.0)
        ix, iy = int(fx), int(fy)
        cell[j] = ix * (ny - 1) + iy
        base[j] = ix * sx + iy * sy
        work[8, j] = (lo - (x0 + dx * fx)) * inv_dx
        work[9, j] = (la - (y0 + dy * fy)) * inv_dy
        work[12, j] = 1.0 if in_baltic360(lo, la) else 0.0
        valid = (la >= y0) & (la <= lats[ny - 1]) & (lo >= 0.0) & (lo <= 360.0) & (p[start + j] == p[start + j])
        panama = (PANAMA_LONGS[0] <= lo) & (lo <= PANAMA_LONGS[-1] - 0.001)
        panama &= (PANAMA_LATS[-1] <= la) & (la <= PANAMA_LATS[0])
        work[11, j] = 3.0 if panama else 0.0
        work[11, j] = work[11, j] if valid else 2.0
    # pass 2: the level (pressures below the cell's deepest level take its value) and the reads
    for j in range(m):
        top = top_of[cell[j]]
        q = np.float64(p[start + j])
        q = q if q < top else top
        k = np.int64(LEVEL_TABLE[int(_clamp(q * (1.0 / LEVEL_STEP), 0.0, LEVEL_TABLE.shape[0] - 1.0))])
        iz = k + np.int64((k < nz - 2) & (q >= p_ref[k + 1]))
        work[10, j] = (q - p_ref[iz]) / (p_ref[iz + 1] - p_ref[iz])
        work[11, j] = 1.0 if (top < 0.0) & (work[11, j] != 2.0) else work[11, j]
        b = base[j] + iz
        base[j] = b
        work[0, j] = flat[b]
        work[1, j] = flat[b + sx]
        work[2, j] = flat[b + sx + sy]
        work[3, j] = flat[b + sy]
        work[4, j] = flat[b + 1]
        work[5, j] = flat[b + sx + 1]
        work[6, j] = flat[b + sx + sy + 1]
        work[7, j] = flat[b + sy + 1]
    # pass 3: missing corners filled, bilinear at the two levels, linear between them
    for j in range(m):
        a0, a1, a2, a3 = _filled(work[0, j], work[1, j], work[2, j], work[3, j])
        b0, b1, b2, b3 = _filled(work[4, j], work[5, j], work[6, j], work[7, j])
        r, s, t, code = work[8, j], work[9, j], work[10, j], work[11, j]
        upper = (1.0 - s) * (a0 + r * (a1 - a0)) + s * (a3 + r * (a2 - a3))
        lower = (1.0 - s) * (b0 + r * (b1 - b0)) + s * (b3 + r * (b2 - b3))
        v = upper + t * (lower - upper)
        v = 0.0 if code == 1.0 else v
        values[j] = math.nan if code == 2.0 else v
    # pass 4: near Panama, the corners across the isthmus do not count
    for j in range(m):
        if work[11, j] == 3.0:
            la = np.float64(lat[start + j])
            lo = wrap360(np.float64(lon[start + j]))
            b = base[j]
            ix = b // sx
            iy = (b - ix * sx) // sy
            iz = b - ix * sx - iy * sy
            r, s, t = work[8, j], work[9, j], work[10, j]
            upper = saar_at_level(saar, ix, iy, iz, lo, la, lats, longs, True, r, s)
            lower = saar_at_level(saar, ix, iy, iz + 1, lo, la, lats, longs, True, r, s)
            values[j] = upper + t * (lower - upper)
