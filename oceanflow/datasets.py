"""Generated sample data: realistic, deterministic, no download, any size.

:func:`sst` makes sea surface temperature (a seasonal cycle whose amplitude
and phase vary with latitude, a warming trend of :data:`SST_TREND` degC per
year, noise, land as NaN) in any CF calendar, daily or monthly.
:func:`ocean` makes a 3-D Absolute Salinity, Conservative Temperature and
sea pressure field for the equation of state.

Every value is a pure function of its grid indices and ``seed`` (a
counter-based random number generator), so the data do not depend on the
chunking, and with ``chunks=`` they are generated lazily, chunk by chunk:
sizes range from a few kB for tests to many GB for benchmarks without holding
them in memory.

=====================================  ============================  ==========
call                                   shape                         float32
=====================================  ============================  ==========
``sst(years=2, resolution=10)``        (24, 18, 36)                  62 kB
``sst()``                              (120, 180, 360)               31 MB
``sst(years=30, freq="day")``          (10958, 180, 360)             2.8 GB
``ocean()``                            (50, 160, 360)                12 MB
=====================================  ============================  ==========

Example
-------
>>> from oceanflow import datasets
>>> tiny = datasets.sst(years=2, resolution=10)
>>> dict(tiny.sizes), tiny.dtype.name, tiny.attrs["units"]
({'time': 24, 'lat': 18, 'lon': 36}, 'float32', 'degC')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["SST_TREND", "FREQUENCIES", "sst", "ocean", "land_mask"]

#: Warming trend built into :func:`sst`, degC per year.
SST_TREND = 0.02

#: Time steps of :func:`sst`: name -> pandas/xarray frequency.
FREQUENCIES = {"month": "MS", "day": "D"}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------- public generators


def sst(
    years: int = 10,
    *,
    freq: str = "month",
    calendar: str = "standard",
    start: str = "2000-01-01",
    resolution: float = 1.0,
    seed: int = 0,
    noise: float = 0.3,
    chunks: Mapping[str, int] | None = None,
    dtype: DTypeLike = "float32",
) -> xr.DataArray:
    """Sea surface temperature (degC) on a global grid, land as NaN.

    Parameters
    ----------
    years : int
        Length of the record in years.
    freq : {"month", "day"}
        Monthly (first of each month) or daily time steps.
    calendar : str
        Any CF calendar (``"standard"``, ``"noleap"``, ``"360_day"``...);
        ``"standard"`` gives a NumPy ``datetime64`` coordinate, others cftime.
    start : str
        First date.
    resolution : float
        Grid spacing in degrees; cell centres from -90+r/2 to 90-r/2 and
        from r/2 to 360-r/2.
    seed : int
        Seed of the noise; same seed, same data.
    noise : float
        Standard deviation of the noise (degC).
    chunks : dict, optional
        Dask chunks, e.g. ``{"time": 120}``: generated lazily, per chunk.
    dtype : str
        ``"float32"`` (default) or ``"float64"``.

    Returns
    -------
    xarray.DataArray
        ``sst`` with dimensions (time, lat, lon).  Mean 27 degC at the
        equator falling to -1 degC at the poles, a seasonal cycle of up to
        +-4 degC in opposite phase in the two hemispheres (warmest in late
        summer), a trend of :data:`SST_TREND` degC per year and Gaussian
        noise.

    Example
    -------
    >>> daily = sst(years=1, freq="day", calendar="360_day", resolution=30)
    >>> daily.sizes["time"], daily.time.dt.calendar
    (360, '360_day')
    """
    if freq not in FREQUENCIES:
        raise ValueError(f"unknown freq {freq!r}; use one of {list(FREQUENCIES)}")
    if not isinstance(years, (int, np.integer)) or years < 1:
        raise ValueError(f"years must be a positive whole number, got {years!r}")
    lat, lon = _grid(resolution, 90.0)
    time = xr.date_range(
        start,
        periods=_steps(start, years, freq, calendar),
        freq=FREQUENCIES[freq],
        calendar=calendar,
        use_cftime=calendar not in ("standard", "gregorian"),
    )
    time = xr.DataArray(time, dims="time", name="time")
    elapsed = _years_since_start(time)
    phase = elapsed % 1.0
    shape = (time.size, lat.size, lon.size)

    def block(t, y, x):
        coslat = np.cos(np.deg2rad(lat[y]))[None, :, None]
        mean = 28.0 * coslat - 1.0
        amplitude = 4.0 * np.sin(np.deg2rad(lat[y]))[None, :, None]
        season = np.cos(2 * np.pi * (phase[t] - 0.6))[:, None, None]  # northern maximum in August
        trend = SST_TREND * elapsed[t][:, None, None]
        values = mean + amplitude * season + trend + noise * _normal(seed, shape, t, y, x)
        values = np.maximum(values, -1.8)  # sea water freezes
        values[:, land_mask(lat[y], lon[x])] = np.nan
        return values.astype(dtype)

    data = _generate(block, shape, dtype, chunks, ("time", "lat", "lon"))
    return xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={
            "time": ("time", time.values, {"standard_name": "time", "axis": "T"}),
            "lat": _coord(lat, "latitude", "degrees_north"),
            "lon": _coord(lon, "longitude", "degrees_east"),
        },
        name="sst",
        attrs={
            "units": "degC",
            "standard_name": "sea_surface_temperature",
            "long_name": "sea surface temperature (generated sample)",
        },
    )


def ocean(
    *,
    levels: int = 50,
    max_depth: float = 5000.0,
    resolution: float = 1.0,
    max_lat: float = 80.0,
    seed: int = 1,
    noise: float = 0.05,
    chunks: Mapping[str, int] | None = None,
    dtype: DTypeLike = "float64",
) -> xr.Dataset:
    """A 3-D ocean: Absolute Salinity, Conservative Temperature and sea pressure.

    Parameters
    ----------
    levels : int
        Number of depth levels, from the surface to ``max_depth``.
    max_depth : float
        Depth of the deepest level (m).
    resolution : float
        Grid spacing in degrees.
    max_lat : float
        The grid spans latitudes -max_lat to max_lat (degrees).
    seed : int
        Seed of the noise on CT.
    noise : float
        Standard deviation of the CT noise at the surface (degC), decaying
        with depth as the thermocline does (the water column stays stable).
    chunks : dict, optional
        Dask chunks, e.g. ``{"depth": 10}``: generated lazily, per chunk.
    dtype : str
        ``"float64"`` (default) or ``"float32"``.

    Returns
    -------
    xarray.Dataset
        ``SA`` (g/kg), ``CT`` (degC) and ``p`` (dbar), dimensions
        (depth, lat, lon), land (as in :func:`sst`) NaN.  A warm, salty
        subtropical thermocline decaying (e-folding 800 m) to 2 degC and
        34.7 g/kg at depth; pressure from depth and latitude (Saunders 1981,
        within 0.5 dbar of TEOS-10's ``p_from_z``).

    Example
    -------
    >>> ds = ocean(levels=5, resolution=20)
    >>> sorted(ds.data_vars), ds.p.attrs["units"]
    (['CT', 'SA', 'p'], 'dbar')
    """
    if not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ValueError(f"levels must be a whole number >= 2, got {levels!r}")
    depth = np.linspace(0.0, float(max_depth), levels)
    lat, lon = _grid(resolution, float(max_lat))
    shape = (depth.size, lat.size, lon.size)
    dims = ("depth", "lat", "lon")

    def masked(values, y, x):
        values[:, land_mask(lat[y], lon[x])] = np.nan
        return values.astype(dtype)

    def ct(z, y, x):
        surface = (28.0 * np.cos(np.deg2rad(lat[y])) - 1.0)[None, :, None]
        decay = np.exp(-depth[z] / 800.0)[:, None, None]
        values = 2.0 + (surface - 2.0 + noise * _normal(seed, shape, z, y, x)) * decay  # noise in the thermocline
        return masked(np.maximum(values, -1.8), y, x)

    def sa(z, y, x):
        phi = np.deg2rad(lat[y])
        surface = 34.7 + 1.2 * np.sin(2 * phi) ** 2 - 0.6 * np.cos(phi) ** 8 - 0.8 * np.sin(phi) ** 6
        values = 34.7 + (surface[None, :] - 34.7) * np.exp(-depth[z] / 500.0)[:, None]
        return masked(np.repeat(values[:, :, None], x.stop - x.start, axis=2), y, x)

    def pressure(z, y, x):
        return masked(np.repeat(_pressure(depth[z], lat[y])[:, :, None], x.stop - x.start, axis=2), y, x)

    coords = {
        "depth": ("depth", depth, {"units": "m", "positive": "down", "standard_name": "depth"}),
        "lat": _coord(lat, "latitude", "degrees_north"),
        "lon": _coord(lon, "longitude", "degrees_east"),
    }
    return xr.Dataset(
        {
            "SA": (
                dims,
                _generate(sa, shape, dtype, chunks, dims),
                {"units": "g/kg", "long_name": "Absolute Salinity"},
            ),
            "CT": (
                dims,
                _generate(ct, shape, dtype, chunks, dims),
                {"units": "degC", "long_name": "Conservative Temperature"},
            ),
            "p": (
                dims,
                _generate(pressure, shape, dtype, chunks, dims),
                {"units": "dbar", "long_name": "sea pressure"},
            ),
        },
        coords=coords,
        attrs={"title": "generated sample ocean (oceanflow.datasets.ocean)"},
    )


def land_mask(lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
    """Boolean (lat, lon) mask of the sample data's land: blocky continents.

    Example
    -------
    >>> land_mask(np.array([0.0, 80.0]), np.array([90.0, 270.0]))
    array([[ True, False],
           [False, False]])
    """
    lat = np.asarray(lat, np.float64)[:, None]
    lon = np.asarray(lon, np.float64)[None, :]
    continents = (np.abs(lat) < 60) & (np.sin(np.deg2rad(lon)) * np.cos(np.deg2rad(2 * lat)) > 0.6)
    antarctica = lat < -72
    return continents | antarctica


# ---------------------------------------------------------------- helpers


def _grid(resolution, max_lat):
    if not np.isfinite(resolution) or not 0 < resolution <= 90:
        raise ValueError(f"resolution must be a number of degrees in (0, 90], got {resolution!r}")
    lat = np.arange(-max_lat + resolution / 2, max_lat, resolution)
    lon = np.arange(resolution / 2, 360.0, resolution)
    return lat, lon


def _coord(values, standard_name, units):
    return (standard_name[:3], values, {"standard_name": standard_name, "units": units})


def _steps(start, years, freq, calendar):
    """Number of time steps from ``start`` to the same date ``years`` later."""
    use_cftime = calendar not in ("standard", "gregorian")
    first = xr.date_range(start, periods=1, freq="D", calendar=calendar, use_cftime=use_cftime)[0]
    end = first.replace(year=first.year + years)
    return len(
        xr.date_range(first, end, freq=FREQUENCIES[freq], calendar=calendar, use_cftime=use_cftime, inclusive="left")
    )


def _years_since_start(time):
    """Fractional years since the first step's year began (mid-step), calendar-aware."""
    year = time.dt.year.values
    day = time.dt.dayofyear.values - 0.5
    length = time.dt.days_in_year.values
    return (year - year[0]) + day / length


def _splitmix64(x):
    """Counter-based random bits: splitmix64 of each uint64 counter."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _normal(seed, shape, *slices):
    """Standard normal noise at the grid points ``slices`` of an array of ``shape``.

    A function of the flat index and the seed only (Box-Muller on two
    counter-based uniforms), so any chunk is generated independently.
    """
    index = np.zeros((1,) * len(shape), np.uint64)
    stride = 1
    for axis in reversed(range(len(shape))):
        s = slices[axis]
        axis_index = np.arange(s.start, s.stop, dtype=np.uint64) * np.uint64(stride)
        index = index + axis_index.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        stride *= shape[axis]
    counter = index * np.uint64(2) + _splitmix64(np.full(1, seed, np.uint64)) * np.uint64(0x2545F4914F6CDD1D)
    scale = 2.0**-53
    u1 = ((_splitmix64(counter) >> np.uint64(11)).astype(np.float64) + 1.0) * scale
    u2 = (_splitmix64(counter + np.uint64(1)) >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _pressure(depth, lat):
    """Sea pressure (dbar) at ``depth`` (m, positive down) and ``lat`` (deg): Saunders (1981)."""
    c1 = (5.92 + 5.25 * np.sin(np.deg2rad(lat)) ** 2) * 1e-3
    z = np.asarray(depth, np.float64)[:, None]
    return ((1 - c1) - np.sqrt((1 - c1) ** 2 - 8.84e-6 * z)) / 4.42e-6


def _generate(block, shape, dtype, chunks, dims):
    """``block(*slices)`` over the whole array, or lazily per dask chunk."""
    if chunks is None:
        return block(*(slice(0, n) for n in shape))
    import dask.array as dsa

    unknown = set(chunks) - set(dims)
    if unknown:
        raise ValueError(f"chunks name unknown dimension(s) {sorted(unknown)}; the dimensions are {list(dims)}")
    spec = tuple(chunks.get(d, -1) for d in dims)
    template = dsa.empty(shape, chunks=spec, dtype=dtype)

    def generated(_, block_info=None):
        location = block_info[0]["array-location"]
        return block(*(slice(a, b) for a, b in location))

    return dsa.map_blocks(generated, template, dtype=dtype)
