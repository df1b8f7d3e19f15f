"""Climatologies and anomalies: oceanflow vs xarray groupby (flox off / on) vs CDO, against the I/O floor.

Generates daily float32 data (default 20 years of 180x360, 1.9 GB), stores
it as Zarr chunked (365, 90, 90) and as NetCDF chunked (1, 180, 360), then
times, side by side in one run, each case in a fresh subprocess (so that the
peak RSS is that case's own):

* read floors: ``ds.sum()`` with the same chunks (Zarr, NetCDF) and a plain
  Zarr store-to-store copy;
* ``*/oceanflow-netcdf``: the NetCDF copy opened by ``oceanflow.open_dataset``
  with no chunks given (the heuristic's), against the read floor with the
  same chunks (``read-netcdf-auto``);
* monthly and day-of-year mean climatologies: oceanflow, xarray groupby with
  flox off and on (flox is a benchmark-only extra), ``cdo ymonmean`` and
  ``cdo ydaymean`` (Debian package ``cdo``; skipped when not installed);
* monthly anomalies written to Zarr: oceanflow, xarray (flox off / on),
  ``cdo ymonsub``;
* NetCDF in, NetCDF out (``nc-*``): oceanflow's monthly climatology and
  anomalies from ``oceanflow.open_dataset`` saved uncompressed, with
  deflate level 1 + shuffle (the default), deflate level 4 and zstd level 3
  (shuffle too), the same anomalies written by
  xarray's ``to_netcdf`` with the same encoding, ``cdo ymonsub`` and
  ``cdo -z zip_1 ymonsub`` (CDO's compressed output); the ``MB out`` column
  gives the output size.  Each oceanflow case writes large chunks with
  ``O_DIRECT`` (``OCEANFLOW_NETCDF_DIRECT=1``, set in its own process; where the
  output's file system takes it), and its ``*-cached`` twin the same through the
  page cache (``OCEANFLOW_NETCDF_DIRECT=0``), its ratio to the first the
  switch's effect.

Each line gives the median wall time of ``--repeat`` runs (the cases take
turns, so a slow spell of a shared machine hits them alike), the ratio to its
floor (Zarr cases to the Zarr read or copy, CDO to xarray's NetCDF read), the
number of dask tasks, the peak RSS and, for the NetCDF-output and CDO
cases, the median CPU seconds (user + system; CDO's from its processes),
which a busy machine changes less than the wall time.  ``--scaling`` also runs the
chosen oceanflow cases among the Zarr climatologies and anomalies and the
NetCDF anomalies (uncompressed, deflated) on 4x the years and reports the RSS ratio.

Usage (small configuration; the defaults are the full 20-year run)::

    python benchmarks/bench_climatology.py --years 2 --ny 90 --nx 180 --out bench-out
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from _common import (
    add_case_arguments,
    child_result,
    chosen_cases,
    data_arguments,
    medians,
    peak_rss_mib,
    run_interleaved,
)

CASES = {
    # name: (floor, needs)
    "read-zarr": (None, None),
    "read-netcdf": (None, None),
    "read-netcdf-auto": (None, None),
    "copy-zarr": (None, None),
    "month/oceanflow": ("read-zarr", None),
    "month/xarray": ("read-zarr", None),
    "month/xarray+flox": ("read-zarr", "flox"),
    "month/cdo": ("read-netcdf", "cdo"),
    "month/oceanflow-netcdf": ("read-netcdf-auto", None),
    "dayofyear/oceanflow": ("read-zarr", None),
    "dayofyear/xarray": ("read-zarr", None),
    "dayofyear/xarray+flox": ("read-zarr", "flox"),
    "dayofyear/cdo": ("read-netcdf", "cdo"),
    "dayofyear/oceanflow-netcdf": ("read-netcdf-auto", None),
    "anomaly/oceanflow": ("copy-zarr", None),
    "anomaly/xarray": ("copy-zarr", None),
    "anomaly/xarray+flox": ("copy-zarr", "flox"),
    "anomaly/cdo": ("read-netcdf", "cdo"),
    # NetCDF to NetCDF: oceanflow against CDO, and compressed against uncompressed
    "month/nc-oceanflow": ("month/cdo", None),
    "month/nc-oceanflow-zip1": ("month/nc-oceanflow", None),
    "month/cdo-zip1": ("month/nc-oceanflow-zip1", "cdo"),
    "anomaly/nc-oceanflow": ("anomaly/cdo", None),
    "anomaly/nc-oceanflow-zip1": ("anomaly/nc-oceanflow", None),
    "anomaly/nc-oceanflow-cached": ("anomaly/nc-oceanflow", None),
    "anomaly/nc-oceanflow-zip1-cached": ("anomaly/nc-oceanflow-zip1", None),
    "anomaly/nc-oceanflow-zip4": ("anomaly/nc-oceanflow", None),
    "anomaly/nc-oceanflow-zstd3": ("anomaly/nc-oceanflow", None),
    "anomaly/nc-xarray-zip1": ("anomaly/nc-oceanflow-zip1", None),
    "anomaly/cdo-zip1": ("anomaly/nc-oceanflow-zip1", "cdo"),
}


def generate(out, years, ny, nx, netcdf=True):
    """Write the Zarr and NetCDF inputs once (reused when present with the same size)."""
    import numpy as np
    import xarray as xr

    tag = f"{years}y_{ny}x{nx}"
    zarr_path = os.path.join(out, f"sst_{tag}.zarr")
    nc_path = os.path.join(out, f"sst_{tag}.nc")
    if os.path.exists(zarr_path) and (os.path.exists(nc_path) or not netcdf):
        return zarr_path, nc_path
    os.makedirs(out, exist_ok=True)
    time_ = xr.date_range("2000-01-01", periods=365 * years, freq="D", calendar="noleap", use_cftime=True)
    doy = np.arange(time_.size) % 365
    lat = np.linspace(-89.5, 89.5, ny)
    lon = np.linspace(0.5, 359.5, nx)
    import dask.array as dsa

    seasonal = np.sin(2 * np.pi * doy / 365.0).astype("float32")
    field = dsa.random.default_rng(0).standard_normal((time_.size, ny, nx), chunks=(365, 90, 90)).astype("float32")
    field = field + 15 + 5 * dsa.from_array(seasonal, chunks=365)[:, None, None]
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), field, {"units": "degC"})}, coords={"time": time_, "lat": lat, "lon": lon}
    )
    if not os.path.exists(zarr_path):
        ds.to_zarr(zarr_path, mode="w")
    if netcdf:
        ds.to_netcdf(nc_path, encoding={"sst": {"chunksizes": (1, ny, nx)}})
    return zarr_path, nc_path


def run_case(case, zarr_path, nc_path, out):
    """Run one case in this process; return seconds and task count.

    A first run on a 2x2-pixel corner (all time steps, same chunks) warms up
    imports and kernel compilation (or numba's cache) and is not timed.
    """
    import xarray as xr

    kind, _, tool = case.partition("/")
    if tool.startswith("cdo"):
        return _run_cdo(kind, nc_path, out, zip1=tool.endswith("zip1"))
    if tool.startswith("nc-"):
        return _run_netcdf_output(kind, tool, nc_path, out)
    if case == "read-netcdf":
        ds = xr.open_dataset(nc_path, chunks={"time": 1})
    elif case.endswith("-netcdf") or case == "read-netcdf-auto":  # chunks chosen by oceanflow
        import oceanflow

        ds = oceanflow.open_dataset(nc_path)
    else:
        ds = xr.open_zarr(zarr_path)
    target = os.path.join(out, "result.zarr")
    _timed(case, ds.isel(lat=slice(0, 2), lon=slice(0, 2)), target)
    return _timed(case, ds, target)


def _timed(case, ds, target):
    import dask
    import xarray as xr

    import oceanflow

    kind, _, tool = case.partition("/")
    sst = ds.sst
    freq = "time.dayofyear" if kind == "dayofyear" else "month"
    if case.startswith("read-"):
        return _timed_compute(sst.sum())
    if case == "copy-zarr":
        return _timed_store(lambda: ds, target)
    if tool.startswith("oceanflow"):
        if kind == "anomaly":  # anomaly() computes the climatology first: time it too
            return _timed_store(lambda: oceanflow.anomaly(sst, freq="month").to_dataset(), target)
        return _timed_compute(oceanflow.climatology(sst, freq))
    with xr.set_options(use_flox=tool.endswith("flox")), dask.config.set({"array.slicing.split_large_chunks": False}):
        grouped = sst.groupby(f"time.{freq.split('.')[-1]}")
        if kind == "anomaly":  # the textbook way; Zarr needs the store's chunks back
            anom = (grouped - grouped.mean()).chunk(dict(zip(sst.dims, sst.data.chunksize, strict=True)))
            return _timed_store(lambda: anom.to_dataset(name="sst"), target)
        return _timed_compute(grouped.mean())


def _timed_compute(obj):
    tasks = len(obj.data.__dask_graph__())
    start = time.perf_counter()
    obj.compute()
    return time.perf_counter() - start, tasks


def _timed_store(make, target):
    """Seconds to build ``make()`` and write it to Zarr (as ``oceanflow.save`` does:
    ``to_zarr(compute=True)``), and the task count of the data written."""
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    ds = make()
    ds.to_zarr(target, mode="w")
    seconds = time.perf_counter() - start
    return seconds, sum(len(var.data.__dask_graph__()) for var in ds.data_vars.values())


def _run_cdo(kind, nc_path, out, zip1=False):
    operator = {"month": ["ymonmean"], "dayofyear": ["ydaymean"]}.get(kind)
    target = os.path.join(out, "result.nc")
    compress = ["-z", "zip_1"] if zip1 else []  # only the output is compressed, as oceanflow's
    if operator is None:  # anomaly: ymonsub of the data and its ymonmean
        clim = os.path.join(out, "cdo_clim.nc")
        commands = [
            ["cdo", "-O", "ymonmean", nc_path, clim],
            ["cdo", "-O", *compress, "ymonsub", nc_path, clim, target],
        ]
    else:
        commands = [["cdo", "-O", *compress, operator[0], nc_path, target]]
    start, cpu = time.perf_counter(), _children_cpu()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start, 0, _children_cpu() - cpu


def _own_cpu():
    times = os.times()
    return times.user + times.system


def _children_cpu():
    times = os.times()
    return times.children_user + times.children_system


def _run_netcdf_output(kind, tool, nc_path, out):
    """NetCDF in, NetCDF out: ``oceanflow.save`` (uncompressed, ``-zipN``: deflate level N, ``-zstdN``;
    ``-cached``: ``OCEANFLOW_NETCDF_DIRECT=0``, else 1), or xarray's ``to_netcdf`` with deflate level 1;
    after a warm-up on a 2x2 corner."""
    import warnings

    import oceanflow

    warnings.filterwarnings("ignore", message="zstd-compressed NetCDF")
    os.environ["OCEANFLOW_NETCDF_DIRECT"] = "0" if tool.endswith("-cached") else "1"  # this process only
    tool = tool.removesuffix("-cached")
    target = os.path.join(out, "result.nc")
    ds = oceanflow.open_dataset(nc_path)
    codec = tool.split("-")[2] if tool.count("-") == 2 else "none"
    compression = {"zip": "deflate", "zst": "zstd"}.get(codec[:3], "none")
    level = int(codec.lstrip("zipstd")) if compression != "none" else None

    def make(sst):
        if kind == "anomaly":
            return oceanflow.anomaly(sst, freq="month")
        return oceanflow.climatology(sst, "month")

    def write(sst):
        if os.path.exists(target):
            os.remove(target)
        result = make(sst)
        if tool.startswith("nc-xarray"):
            encoding = {"sst": {"zlib": True, "complevel": 1, "shuffle": True}}
            result.to_dataset(name="sst").to_netcdf(target, encoding=encoding)
        else:
            oceanflow.save(result, target, compression=compression, level=level)
        return result

    write(ds.sst.isel(lat=slice(0, 2), lon=slice(0, 2)))
    start, cpu = time.perf_counter(), _own_cpu()
    result = write(ds.sst)
    seconds, cpu = time.perf_counter() - start, _own_cpu() - cpu
    return seconds, len(result.data.__dask_graph__()) if hasattr(result.data, "dask") else 0, cpu


def _child(args, case):
    """One timed run of one case in a fresh interpreter: seconds, tasks, peak RSS (MiB)."""
    return child_result([sys.executable, __file__, "--child", case, args.zarr, args.nc, "--out", args.out])


def main(argv=None):
    parser = data_arguments(__doc__.split("\n")[0], years=20, ny=180, nx=360, out="bench-out")
    add_case_arguments(parser, CASES)
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also run the oceanflow anomaly and climatology cases chosen on 4x the years and compare peak RSS",
    )
    args = parser.parse_args(argv)
    if args.child:
        case, zarr_path, nc_path = args.child
        seconds, tasks, *cpu = run_case(case, zarr_path, nc_path, args.out)  # CPU s: NetCDF output and CDO cases
        written = os.path.join(args.out, "result.nc")
        size = os.path.getsize(written) / 1e6 if os.path.exists(written) else None
        if size is not None:
            os.remove(written)
        result = {"seconds": seconds, "tasks": tasks, "rss_mib": peak_rss_mib(), "mb_out": size}
        print(json.dumps({**result, "cpu": cpu[0] if cpu else None}))
        return
    wanted, order = chosen_cases(parser, CASES, args.cases)
    args.zarr, args.nc = generate(args.out, args.years, args.ny, args.nx)
    size_gb = 4 * 365 * args.years * args.ny * args.nx / 1e9
    print(
        f"# {args.years} years daily {args.ny}x{args.nx} float32 ({size_gb:.2f} GB), {os.cpu_count()} cores, "
        f"median of {args.repeat}"
    )
    print(
        f"{'case':32s} {'seconds':>8s} {'ratio':>6s} {'floor':>26s} {'tasks':>8s} {'peak RSS MiB':>13s} {'MB out':>7s}"
        f" {'CPU s':>6s}"
    )
    runs = run_interleaved(CASES, order, args.repeat, lambda case: _child(args, case))
    for case, (seconds, ratio) in medians(CASES, runs).items():
        floor, case_runs = CASES[case][0], runs[case]
        size = case_runs[0].get("mb_out")
        cpu = [r["cpu"] for r in case_runs if r.get("cpu") is not None]
        print(
            f"{case:32s} {seconds:8.3f} {ratio:>6s} {floor or '':>26s} {case_runs[0]['tasks']:8d} "
            f"{max(r['rss_mib'] for r in case_runs):13.0f} {'' if size is None else f'{size:7.0f}'}"
            f"{'' if not cpu else f' {statistics.median(cpu):6.2f}'}"
        )
    if args.scaling:
        scaled = ("month/oceanflow", "dayofyear/oceanflow", "anomaly/oceanflow")
        for case in (*scaled, "anomaly/nc-oceanflow", "anomaly/nc-oceanflow-zip1"):
            if case not in wanted:
                continue
            rss = []
            for years in (args.years, 4 * args.years):
                netcdf = years == args.years or "/nc-" in case
                args.zarr, args.nc = generate(args.out, years, args.ny, args.nx, netcdf=netcdf)
                rss.append(max(_child(args, case)["rss_mib"] for _ in range(args.repeat)))
            print(
                f"peak RSS of {case}: {args.years} years {rss[0]:.0f} MiB, {4 * args.years} years "
                f"{rss[1]:.0f} MiB, ratio {rss[1] / rss[0]:.2f}"
            )


if __name__ == "__main__":
    main()
