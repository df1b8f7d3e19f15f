"""Percentile and median climatologies: oceanflow vs xclim, CDO, flox and xarray, against the read floor.

Generates daily float32 data (default 20 years of 90x180, 473 MB) with
``bench_climatology.generate`` (Zarr chunked (365, 90, 90)) and stores it also
as NetCDF in one-year chunks (365, ny, nx), the usual layout of archives.
Times, side by side in one run, each case in a fresh subprocess (so that the
peak RSS is that case's own), the median of ``--repeat`` interleaved runs:

* ``read-netcdf``, ``read-zarr``: ``ds.sst.sum()`` with the chunks the cases use;
* ``doy-p90/*``: day-of-year 90th percentile pooled over an 11-day window
  (Hobday et al. 2016), ``method="median_unbiased"`` (xclim's): oceanflow on
  the NetCDF opened with one-year dask chunks and on the Zarr store; xclim's
  ``percentile_doy(window=11, per=90)`` on the same dask chunks; CDO's
  ``ydrunmin``, ``ydrunmax`` and ``ydrunpctl,90,11`` (three passes,
  histogram-based, approximate);
* ``month-median/*``, ``month-q90/*``: monthly median and 0.9 quantile:
  oceanflow; flox's ``groupby().median()``/``.quantile()`` on data chunked in
  space (``time`` whole: the layout flox needs for them); xarray without flox;
  ``cdo ymonpctl,50`` (with its ``ymonmin``/``ymonmax`` passes);
* ``doy-mean/*``: the day-of-year mean with and without ``window=11``;
* ``*-ofopen``: the same NetCDF opened with ``oceanflow.open_dataset`` instead
  of ``xarray.open_dataset`` (NetCDF-4 chunks read by their byte offsets, on
  both threads at once: :mod:`oceanflow.io.direct`), with the same chunks:
  their floor is ``read-netcdf-ofopen``, and ``month-q90/flox-ofopen`` gives
  flox the same reader, so that the ratio to flox compares computations.

``doy-p90/oceanflow-planned`` opens the Zarr store without dask chunks, so
that oceanflow plans them for the quantile (``explain_chunks(obj,
operation="quantile")``: spatial blocks whose whole series fit the task
memory target); ``--scaling`` runs it on 4x the years and reports the peak
RSS ratio.  The CPU seconds (user + system), system seconds and minor
page faults of each timed run (medians) show what the wall clock hides on a
shared machine: an order statistic holds every time chunk of a spatial block
at once, so its run faults in fresh pages for all of them, where the read
floor reuses a few chunks' memory.  ``THP`` counts the transparent huge pages
faulted in during the timed run and ``THP fb`` those the kernel tried and fell
back from (``/proc/vmstat``'s ``thp_fault_alloc``/``thp_fault_fallback``:
counted for the whole machine, so exact only when nothing else runs; ``-``
where the system has none): on the benchmarks' virtual machine the first touch
of a huge page costs from a little to many times what small pages cost, so
they tell a slow run's system seconds from the code's.  xclim and flox are
benchmark extras, CDO the Debian package ``cdo`` (cases skipped when missing).

Usage (small configuration; the defaults are the issue's 20 years of 90x180)::

    python benchmarks/bench_percentiles.py --years 2 --ny 20 --nx 30 --out bench-out
"""

from __future__ import annotations

import json
import math
import os
import resource
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
from bench_climatology import generate  # the same data as the climatology benchmark

CASES = {
    # name: (floor, needs)
    "read-netcdf": (None, None),
    "read-zarr": (None, None),
    "read-netcdf-ofopen": (None, None),
    "doy-p90/oceanflow": ("read-netcdf", None),
    "doy-p90/oceanflow-zarr": ("read-zarr", None),
    "doy-p90/oceanflow-planned": ("read-zarr", None),
    "doy-p90/xclim": ("read-netcdf", "xclim"),
    "doy-p90/cdo": ("read-netcdf", "cdo"),
    "month-median/oceanflow": ("read-netcdf", None),
    "month-median/flox": ("read-netcdf", "flox"),
    "month-median/xarray": ("read-netcdf", None),
    "month-median/cdo": ("read-netcdf", "cdo"),
    "month-q90/oceanflow": ("read-netcdf", None),
    "month-q90/flox": ("read-netcdf", "flox"),
    "month-median/oceanflow-ofopen": ("read-netcdf-ofopen", None),
    "month-q90/oceanflow-ofopen": ("read-netcdf-ofopen", None),
    "month-q90/flox-ofopen": ("read-netcdf-ofopen", "flox"),
    "doy-mean/oceanflow": ("read-netcdf", None),
    "doy-mean-w11/oceanflow": ("doy-mean/oceanflow", None),
}


def yearly_netcdf(zarr_path):
    """The Zarr data as NetCDF in one-year chunks (written once)."""
    import xarray as xr

    path = zarr_path.replace(".zarr", "_yearly.nc")
    if not os.path.exists(path):
        ds = xr.open_zarr(zarr_path)
        shape = (365,) + ds.sst.shape[1:]
        ds.to_netcdf(path, encoding={"sst": {"chunksizes": shape}})
    return path


def run_case(case, zarr_path, nc_path, out):
    """Run one case in this process (after an untimed warm-up on a 2x2 corner): seconds, tasks."""
    import xarray as xr

    kind, _, tool = case.partition("/")
    if tool == "cdo":
        return _run_cdo(kind, nc_path, out)
    if tool.endswith("-planned"):  # opened without dask chunks: oceanflow plans them for the quantile
        ds = xr.open_zarr(zarr_path, chunks=None)
    elif case == "read-zarr" or tool.endswith("-zarr"):
        ds = xr.open_zarr(zarr_path)
    else:
        opener = xr.open_dataset
        if case.endswith("-ofopen"):  # oceanflow's reader (chunks read by their offsets, in parallel)
            import oceanflow

            opener = oceanflow.open_dataset
        if tool.startswith(("flox", "xarray")):  # time whole, about 64 MB chunks: the layout flox needs
            sizes = xr.open_dataset(nc_path).sizes
            rows = max(1, 2**26 // (4 * sizes["time"] * sizes["lon"]))
            ds = opener(nc_path, chunks={"time": -1, "lat": rows})
        else:
            ds = opener(nc_path, chunks={"time": 365})
    _timed(case, ds.isel(lat=slice(0, 2), lon=slice(0, 2)))
    before = _usage()
    seconds, tasks = _timed(case, ds)
    return seconds, tasks, tuple(b - a for a, b in zip(before, _usage(), strict=True))


def _timed(case, ds):
    import xarray as xr

    import oceanflow

    kind, _, tool = case.partition("/")
    sst = ds.sst
    if case.startswith("read-"):
        return _timed_compute(sst.sum)
    if tool.startswith("oceanflow"):
        options = {
            "doy-p90": ("dayofyear", "quantile", {"q": 0.9, "window": 11, "method": "median_unbiased"}),
            "month-median": ("month", "median", {}),
            "month-q90": ("month", "quantile", {"q": 0.9}),
            "doy-mean": ("dayofyear", "mean", {}),
            "doy-mean-w11": ("dayofyear", "mean", {"window": 11}),
        }[kind]
        return _timed_compute(lambda: oceanflow.climatology(sst, options[0], options[1], **options[2]))
    if tool == "xclim":
        import warnings

        from xclim.core.calendar import percentile_doy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _timed_compute(lambda: percentile_doy(sst, window=11, per=90))
    with xr.set_options(use_flox=tool.startswith("flox")):
        grouped = sst.groupby("time.month")
        return _timed_compute(grouped.median if kind == "month-median" else lambda: grouped.quantile(0.9))


def _timed_compute(make):
    """Seconds to make the result (graph or eager computation) and compute it, and its task count."""
    start = time.perf_counter()
    obj = make()
    tasks = len(obj.data.__dask_graph__()) if obj.chunks is not None else 0
    obj.compute()
    return time.perf_counter() - start, tasks


def _usage():
    """(user + system CPU seconds, system seconds, minor page faults) of this process so far, and the
    machine's huge-page faults and fallbacks (:func:`_huge_pages`)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (own.ru_utime + own.ru_stime, own.ru_stime, own.ru_minflt, *_huge_pages())


def _huge_pages():
    """The machine's transparent huge pages faulted in and fallen back from so far (NaN where unknown)."""
    counts = dict.fromkeys(("thp_fault_alloc", "thp_fault_fallback"), float("nan"))
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                name, value = line.split()
                if name in counts:
                    counts[name] = int(value)
    except OSError:
        pass
    return tuple(counts.values())


def _run_cdo(kind, nc_path, out):
    """CDO's percentiles need the range first: a min and a max pass, then the percentile pass."""
    files = [os.path.join(out, f"cdo_{name}.nc") for name in ("min", "max", "pctl")]
    if kind == "doy-p90":
        passes = [["ydrunmin,11"], ["ydrunmax,11"], ["ydrunpctl,90,11"]]
    else:
        passes = [["ymonmin"], ["ymonmax"], ["ymonpctl,50"]]
    commands = [
        ["cdo", "-O", *passes[0], nc_path, files[0]],
        ["cdo", "-O", *passes[1], nc_path, files[1]],
        ["cdo", "-O", *passes[2], nc_path, files[0], files[1], files[2]],
    ]
    start, before, huge = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), _huge_pages()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = (
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        after.ru_stime - before.ru_stime,
        after.ru_minflt - before.ru_minflt,
        *(b - a for a, b in zip(huge, _huge_pages(), strict=True)),
    )
    return seconds, 0, usage


def _count(value):
    return "-" if math.isnan(value) else f"{value:.0f}"


def _child(args, case):
    return child_result([sys.executable, __file__, "--child", case, args.zarr, args.nc, "--out", args.out])


def main(argv=None):
    parser = data_arguments(__doc__.split("\n")[0], years=20, ny=90, nx=180, out="bench-out")
    add_case_arguments(parser, CASES)
    parser.add_argument("--scaling", action="store_true", help="also run doy-p90/oceanflow-planned on 4x the years")
    args = parser.parse_args(argv)
    if args.child:
        case, zarr_path, nc_path = args.child
        seconds, tasks, (cpu, system, faults, thp, fallback) = run_case(case, zarr_path, nc_path, args.out)
        result = {"seconds": seconds, "tasks": tasks, "rss_mib": peak_rss_mib(), "cpu": cpu, "sys": system}
        print(json.dumps(result | {"faults": faults, "thp": thp, "thp_fb": fallback}))
        return
    _, order = chosen_cases(parser, CASES, args.cases)
    args.zarr, _ = generate(args.out, args.years, args.ny, args.nx, netcdf=False)
    args.nc = yearly_netcdf(args.zarr)
    size_gb = 4 * 365 * args.years * args.ny * args.nx / 1e9
    print(
        f"# {args.years} years daily {args.ny}x{args.nx} float32 ({size_gb:.3f} GB), {os.cpu_count()} cores, "
        f"median of {args.repeat}"
    )
    print(
        "# THP, THP fb: /proc/vmstat thp_fault_alloc/thp_fault_fallback during the timed run, "
        "whole machine (exact only when nothing else runs)"
    )
    print(
        f"{'case':26s} {'seconds':>8s} {'ratio':>6s} {'to':>20s} {'tasks':>7s} {'peak RSS MiB':>13s} "
        f"{'CPU s':>6s} {'sys s':>6s} {'faults':>7s} {'THP':>5s} {'THP fb':>6s}"
    )
    runs = run_interleaved(CASES, order, args.repeat, lambda case: _child(args, case))
    for case, (seconds, ratio) in medians(CASES, runs).items():
        floor, case_runs = CASES[case][0], runs[case]
        usage = [statistics.median(r[k] for r in case_runs) for k in ("cpu", "sys", "faults", "thp", "thp_fb")]
        print(
            f"{case:26s} {seconds:8.3f} {ratio:>6s} {floor or '':>20s} {case_runs[0]['tasks']:7d} "
            f"{max(r['rss_mib'] for r in case_runs):13.0f} {usage[0]:6.2f} {usage[1]:6.2f} {usage[2]:7.0f} "
            f"{_count(usage[3]):>5s} {_count(usage[4]):>6s}"
        )
    if args.scaling:
        rss = []
        for years in (args.years, 4 * args.years):
            args.zarr, _ = generate(args.out, years, args.ny, args.nx, netcdf=False)
            rss.append(max(_child(args, "doy-p90/oceanflow-planned")["rss_mib"] for _ in range(args.repeat)))
        print(
            f"peak RSS of doy-p90/oceanflow-planned: {args.years} years {rss[0]:.0f} MiB, "
            f"{4 * args.years} years {rss[1]:.0f} MiB, ratio {rss[1] / rss[0]:.2f}"
        )


if __name__ == "__main__":
    main()
