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

Interpolation as TEOS-10 specifies (McDougall et al. 2012, GSW's ``gsw_saar``):
bilinear in longitude and latitude on the 4 degree grid, then linear in
pressure between the two bracketing levels; pressures below the deepest level
of the four surrounding columns take that level's value; a missing corner
takes the mean of the corners present (0 if none); near Panama the corners on
the other side of the isthmus are replaced by the mean of those on the point's
side; points with no ocean column among the four corners get 0 (SA = SR);
latitudes outside [-86, 90] and NaN positions give NaN.

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


#: The atlas, loaded once.
ATLAS = load_atlas()


def _level_table(p_ref: np.ndarray, step: float) -> np.ndarray:
    """Level index at each multiple of ``step`` dbar, for :func:`level_index` (no level is
    closer than ``step`` to the next, so one comparison completes the lookup)."""
    assert np.diff(p_ref).min() >= step
    starts = step * np.arange(int(np.ceil(p_ref[-1] / step)) + 1)
    return np.searchsorted(p_ref[1:-1], starts, side="right").astype(np.int8)


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
def level_index(p_ref, p):
    """:func:`grid_index` on the atlas levels ``p_ref`` (those of :data:`ATLAS`), by table."""
    m = min(max(int(p * (1.0 / LEVEL_STEP)), 0), LEVEL_TABLE.shape[0] - 1)
    k = np.int64(LEVEL_TABLE[m])
    return k + (k < p_ref.shape[0] - 2 and p >= p_ref[k + 1])


@njit(inline="always")
def wrap360(lon):
    """Longitude in [0, 360] (degE): equal to C's ``fmod(lon, 360)`` (+360 if negative)
    for lon in [-360, 360), without the branches of Python's ``%``."""
    return lon - 360.0 * math.floor(lon / 360.0)


@njit(inline="always")
def _panama_lat(lon):
    """Latitude of the Panama polyline at ``lon`` (extrapolated beyond its ends)."""
    k = grid_index(PANAMA_LONGS, lon)
    r = (lon - PANAMA_LONGS[k]) / (PANAMA_LONGS[k + 1] - PANAMA_LONGS[k])
    return PANAMA_LATS[k] + r * (PANAMA_LATS[k + 1] - PANAMA_LATS[k])


@njit(inline="always")
def _corners(saar, ix, iy, iz, lon, lat, lats, longs, panama):
    """The four corner values around (lon, lat) at level ``iz``, missing ones filled as TEOS-10 says."""
    c0 = saar[ix, iy, iz]
    c1 = saar[ix + 1, iy, iz]
    c2 = saar[ix + 1, iy + 1, iz]
    c3 = saar[ix, iy + 1, iz]
    if panama:  # corners across the isthmus do not count: replaced by the mean of this side's
        side = lat >= _panama_lat(lon)
        west = _panama_lat(longs[ix])
        east = _panama_lat(longs[ix + 1])
        s0 = ((lats[iy] >= west) == side) and not math.isnan(c0)
        s1 = ((lats[iy] >= east) == side) and not math.isnan(c1)
        s2 = ((lats[iy + 1] >= east) == side) and not math.isnan(c2)
        s3 = ((lats[iy + 1] >= west) == side) and not math.isnan(c3)
    elif math.isnan(c0 + c1 + c2 + c3):  # missing corners take the mean of those present
        s0, s1, s2, s3 = not math.isnan(c0), not math.isnan(c1), not math.isnan(c2), not math.isnan(c3)
    else:
        return c0, c1, c2, c3
    count = s0 + s1 + s2 + s3
    total = (c0 if s0 else 0.0) + (c1 if s1 else 0.0) + (c2 if s2 else 0.0) + (c3 if s3 else 0.0)
    mean = total / count if count > 0 else 0.0
    return (c0 if s0 else mean), (c1 if s1 else mean), (c2 if s2 else mean), (c3 if s3 else mean)


@njit(inline="always")
def saar_cell(lon, lat, ndepth, lats, longs):
    """The horizontal part of :func:`saar_lookup`, once per column: ``(valid, ix, iy, r, s,
    deepest, lon360, panama)``, the grid cell, the weights within it, the deepest atlas level of
    its four corners (<= 0: no ocean, SAAR 0), the longitude in [0, 360] and whether the Panama
    rule applies; ``valid`` is False for NaN positions and latitudes outside the atlas (SAAR NaN)."""
    nx, ny = longs.shape[0], lats.shape[0]
    if math.isnan(lon) or math.isnan(lat) or lat < lats[0] or lat > lats[ny - 1]:
        return False, 0, 0, 0.0, 0.0, 0, 0.0, False
    lon = wrap360(lon)
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
