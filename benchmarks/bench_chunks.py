"""How big should a dask chunk be on this machine?  And what do open_dataset + save cost?

1. Reads and sums the 20-year daily Zarr store of ``bench_climatology.py``
   (storage chunks (365, 90, 90), 11.8 MB) with dask chunks of 1, 2, 4 and 10
   storage chunks, and the time-sliced NetCDF copy (storage (1, 180, 360)) with
   dask chunks of 8 to 365 time steps; prints medians side by side.  This is
   how :data:`oceanflow.chunking.PREFERRED_MAX_BYTES` was chosen.
2. Copies the Zarr store with ``oceanflow.open_dataset(...)`` +
   ``oceanflow.save(...)`` (chunks chosen by the heuristic, safe write) and
   with ``xr.open_dataset(..., chunks=storage chunks).to_zarr(...)``
   (hand-picked chunks), and prints the ratio.

Run (after ``bench_climatology.py`` has generated the data, or it generates it)::

    python benchmarks/bench_chunks.py --out bench-out
"""

from __future__ import annotations

import os
import shutil

import dask
import xarray as xr
from _common import data_arguments
from bench_climatology import generate
from bench_polyval import median_seconds

import oceanflow
from oceanflow.chunking import plan_chunks


def read_sum(path, engine, chunks):
    ds = xr.open_dataset(path, engine=engine, chunks=chunks)
    return lambda: ds.sst.sum().compute()


def chunk_sizes(zarr_path, nc_path, repeat):
    ds = xr.open_dataset(zarr_path, engine="zarr", chunks={})
    ny, nx = ds.sizes["lat"], ds.sizes["lon"]
    print("read + sum of the Zarr store, dask chunks as multiples of the (365, 90, 90) storage chunk:")
    rows = []
    for factor, chunks in (
        (1, {"time": 365, "lat": 90, "lon": 90}),
        (2, {"time": 365, "lat": 90, "lon": 180}),
        (4, {"time": 365, "lat": 180, "lon": 180}),
        (10, {"time": 3650, "lat": 90, "lon": 90}),
    ):
        chunks = {d: min(c, ds.sizes[d]) for d, c in chunks.items()}
        mb = 4 * chunks["time"] * chunks["lat"] * chunks["lon"] / 1e6
        rows.append(
            (
                f"  {factor:>2} storage chunks ({mb:6.1f} MB)",
                median_seconds(read_sum(zarr_path, "zarr", chunks), repeat),
            )
        )
    auto = oceanflow.suggest_chunks(ds)
    rows.append((f"  oceanflow.suggest_chunks {auto}", median_seconds(read_sum(zarr_path, "zarr", auto), repeat)))
    _print(rows)
    print("read + sum of the NetCDF copy, dask chunks of k time steps (storage: 1 x 180 x 360):")
    rows = []
    for steps in (8, 32, 128, 365):
        mb = 4 * steps * ny * nx / 1e6
        rows.append(
            (
                f"  {steps:>3} steps ({mb:6.1f} MB)",
                median_seconds(read_sum(nc_path, "netcdf4", {"time": steps}), repeat),
            )
        )
    nc = xr.open_dataset(nc_path, chunks={})
    auto = oceanflow.suggest_chunks(nc)
    rows.append((f"  oceanflow.suggest_chunks {auto}", median_seconds(read_sum(nc_path, "netcdf4", auto), repeat)))
    _print(rows)
    print(plan_chunks(nc).explain())


def _print(rows):
    best = min(seconds for _, seconds in rows)
    for label, seconds in rows:
        print(f"{label:<60s} {seconds:7.2f} s {seconds / best:6.2f}x best")


def open_and_save(zarr_path, out, repeat):
    target = os.path.join(out, "copy.zarr")

    def ours():
        shutil.rmtree(target, ignore_errors=True)
        oceanflow.save(oceanflow.open_dataset(zarr_path), target)

    def theirs():
        shutil.rmtree(target, ignore_errors=True)
        xr.open_dataset(zarr_path, engine="zarr", chunks={"time": 365, "lat": 90, "lon": 90}).to_zarr(target, mode="w")

    t_theirs = median_seconds(theirs, repeat)
    t_ours = median_seconds(ours, repeat)
    shutil.rmtree(target, ignore_errors=True)
    print("copy of the Zarr store:")
    print(f"  xr.open_dataset(chunks=storage).to_zarr     {t_theirs:7.2f} s")
    print(f"  oceanflow.open_dataset + oceanflow.save      {t_ours:7.2f} s  {t_ours / t_theirs:5.2f}x")


def main(argv=None):
    args = data_arguments(__doc__.split("\n")[0], years=20, ny=180, nx=360, out="bench-out").parse_args(argv)
    zarr_path, nc_path = generate(args.out, args.years, args.ny, args.nx)
    with dask.config.set(scheduler="threads"):
        chunk_sizes(zarr_path, nc_path, args.repeat)
        open_and_save(zarr_path, args.out, args.repeat)


if __name__ == "__main__":
    main()
