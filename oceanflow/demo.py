"""The demonstration behind ``oceanflow demo`` (also ``python -m oceanflow.demo``).

Generates sample sea surface temperature and a 3-D ocean
(:mod:`oceanflow.datasets`, no download), writes them to Zarr, reads them
back as a user's files would be read, then computes

1. the monthly climatology of SST (:func:`oceanflow.climatology`),
2. SST anomalies from it (:func:`oceanflow.anomaly`) and the warming trend of
   their area mean (:func:`oceanflow.polyfit`; the data hold
   :data:`oceanflow.datasets.SST_TREND` degC per year),
3. in-situ density, sigma0, alpha and beta (TEOS-10, :mod:`oceanflow.eos`),

writes each to a Zarr store, draws a four-panel PNG figure, and prints where
everything is.

Example
-------
>>> paths = run("oceanflow-demo", size="tiny", quiet=True)   # doctest: +SKIP
>>> sorted(paths)                                            # doctest: +SKIP
['anomaly', 'climatology', 'density', 'figure', 'ocean', 'sst']
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

#: Sample sizes: arguments of :func:`oceanflow.datasets.sst` and ``ocean``, and dask chunks.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "sst": {"years": 3, "resolution": 10.0},
        "ocean": {"resolution": 10.0, "levels": 20},
        "chunks": {"lat": 9},
    },
    "small": {
        "sst": {"years": 10, "resolution": 1.0},
        "ocean": {"resolution": 1.0, "levels": 50},
        "chunks": {"lat": 45},
    },
    "medium": {
        "sst": {"years": 30, "resolution": 1.0},
        "ocean": {"resolution": 0.5, "levels": 50},
        "chunks": {"lat": 30},
    },
}

OUTPUTS = {
    "sst": "sample_sst.zarr",
    "ocean": "sample_ocean.zarr",
    "climatology": "sst_climatology.zarr",
    "anomaly": "sst_anomaly.zarr",
    "density": "density.zarr",
    "figure": "oceanflow-demo.png",
}


def run(directory="oceanflow-demo", *, size="small", overwrite=False, quiet=False) -> dict:
    """Run the demonstration into ``directory``; return ``{output: Path}`` (see :data:`OUTPUTS`).

    Raises ``FileExistsError`` naming the outputs that exist unless ``overwrite``, and
    ``ImportError`` without matplotlib (the ``plot`` extra), both before any work.
    """
    import importlib.util

    import oceanflow

    from . import datasets, eos
    from ._progress import compute

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; use one of {list(SIZES)}")
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("the demo draws its figure with matplotlib: pip install 'oceanflow[plot]'")
    directory = Path(directory)
    paths = {key: directory / name for key, name in OUTPUTS.items()}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} exist(s); pass --overwrite (overwrite=True) "
            "to replace them, or choose another directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    config = SIZES[size]
    say = (lambda *a: None) if quiet else print
    started = time.perf_counter()

    def save(obj, key, what):
        oceanflow.save(obj, paths[key], overwrite=overwrite, operation=f"demo: {what}", progress=not quiet)

    say(f"oceanflow {oceanflow.__version__} demonstration ({size} sample data) in {directory}/")
    save(
        datasets.sst(chunks={"time": -1, **config["chunks"]}, **config["sst"]).to_dataset(),
        "sst",
        "generated sample SST",
    )
    save(datasets.ocean(chunks=config["chunks"], **config["ocean"]), "ocean", "generated sample ocean")
    ds = oceanflow.open_dataset(paths["sst"])
    say(f"sample SST: {dict(ds.sst.sizes)}, {ds.sst.nbytes / 1e6:.1f} MB in {ds.sst.data.npartitions} chunks")

    save(oceanflow.climatology(ds, "month"), "climatology", "monthly climatology of SST")
    clim = oceanflow.open_dataset(paths["climatology"])
    save(oceanflow.anomaly(ds, clim, freq="month"), "anomaly", "SST anomalies from the monthly climatology")
    anom = oceanflow.open_dataset(paths["anomaly"])

    ocean = oceanflow.open_dataset(paths["ocean"])
    rho, alpha, beta = eos.rho_alpha_beta(ocean.SA, ocean.CT, ocean.p)
    dens = ocean[[]].assign(rho=rho, sigma0=eos.sigma0(ocean.SA, ocean.CT), alpha=alpha, beta=beta)
    save(dens, "density", "TEOS-10 density from the sample ocean")
    dens = oceanflow.open_dataset(paths["density"])

    weights = np.cos(np.deg2rad(anom.lat))
    mean_sst, mean_anom, sigma0 = compute(
        ds.sst.weighted(weights).mean(("lat", "lon")),
        anom.sst.weighted(weights).mean(("lat", "lon")),
        dens.sigma0,
        progress=not quiet,
    )
    fit = oceanflow.polyfit(mean_anom, "time", 1).polyfit_coefficients
    per_decade = float(fit.sel(degree=1)) * 86400e9 * 365.25 * 10  # from per nanosecond
    say(
        f"climatology: {dict(clim.sst.sizes)}; anomalies: area-mean trend {per_decade:.3f} degC/decade "
        f"({datasets.SST_TREND * 10:.3f} built in)"
    )
    say(
        f"density: sigma0 {float(sigma0.min()):.2f} to {float(sigma0.max()):.2f} kg m-3, "
        f"in-situ rho up to {float(dens.rho.max()):.1f} kg m-3"
    )

    _figure(paths["figure"], clim.sst, anom.sst, mean_sst, mean_anom, fit, sigma0)
    say(f"\ndone in {time.perf_counter() - started:.1f} s; outputs in {directory}/:")
    for path in paths.values():
        say(f"  {path}")
    say(
        f"next: open {paths['figure']}, or try\n  oceanflow climatology {paths['sst']} "
        f"-o {directory / 'seasons.zarr'} --freq season"
    )
    return paths


def _figure(path, clim, anom, mean_sst, mean_anom, fit, sigma0):
    """Four panels: January climatology, last anomaly map, area-mean series, sigma0 section."""
    from matplotlib.figure import Figure

    import oceanflow

    fig = Figure(figsize=(12, 8), layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    january = clim.sel(month=1)
    image = a.pcolormesh(clim.lon, clim.lat, january, cmap="RdYlBu_r", shading="auto")
    fig.colorbar(image, ax=a, label="degC")
    a.set(title="SST climatology, January", xlabel="longitude", ylabel="latitude")

    last = anom.isel(time=-1).load()
    limit = float(np.nanmax(np.abs(last))) or 1.0
    image = b.pcolormesh(anom.lon, anom.lat, last, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="auto")
    fig.colorbar(image, ax=b, label="degC")
    b.set(title=f"SST anomaly, {str(last.time.values)[:7]}", xlabel="longitude", ylabel="latitude")

    c.plot(mean_sst.time, mean_sst - float(mean_sst.mean()), lw=0.8, color="0.6", label="area-mean SST - its mean")
    c.plot(mean_anom.time, mean_anom, lw=1.2, label="area-mean anomaly")
    c.plot(mean_anom.time, oceanflow.polyval(mean_anom.time, fit), "k--", label="linear trend")
    c.legend(loc="upper left", fontsize="small")
    c.set(title="Area-weighted mean over the ocean", ylabel="degC")

    ocean_column = int(np.argmax(np.isfinite(sigma0.isel(depth=0)).sum("lat").values))
    section = sigma0.isel(lon=ocean_column)
    filled = d.contourf(section.lat, section.depth, section, levels=20, cmap="viridis_r")
    d.contour(section.lat, section.depth, section, levels=[26.0, 27.0, 27.5], colors="white", linewidths=0.8)
    d.invert_yaxis()
    fig.colorbar(filled, ax=d, label="kg m-3")
    d.set(title=f"sigma0 (TEOS-10) at {float(section.lon):.1f}E", xlabel="latitude", ylabel="depth (m)")
    fig.suptitle("oceanflow demo: generated sample data")
    fig.savefig(path, dpi=90)


def main() -> None:
    """``python -m oceanflow.demo``: the same as ``oceanflow demo``."""
    from .cli import main as cli_main

    raise SystemExit(cli_main(["demo", *__import__("sys").argv[1:]]))


if __name__ == "__main__":
    main()
