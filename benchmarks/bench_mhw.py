"""Marine heatwaves: oceanflow.mhw vs marEx vs the reference definitions, against the read floor.

Generates daily float32 SST (seasonal cycle, AR(1) red noise, a trend; default
10 years of 90x180, 0.24 GB), stores it as Zarr chunked (30, ny, nx) and as
time-sliced NetCDF (one file per year, storage chunks of one day), then times,
side by side in one run, each case in a fresh subprocess (its own peak RSS):

* ``read-zarr``, ``read-netcdf``: the read floors, ``ds.sst.sum()``;
* ``pipeline/oceanflow`` (Zarr) and ``pipeline/oceanflow-netcdf``: thresholds,
  detect, events and summary, all written to Zarr by ``oceanflow.mhw.save``
  (as ``oceanflow mhw --events --summary YS`` does);
* ``flags/oceanflow``: thresholds and the daily detection only, written to
  Zarr (``oceanflow.mhw.save``): what marEx's ``preprocess_data`` gives;
* ``flags/marex-exact``, ``flags/marex-approx``: marEx (a benchmark extra)
  ``preprocess_data(method_anomaly="fixed_baseline",
  method_extreme="hobday_extreme", window_days_hobday=11,
  threshold_percentile=90)`` with ``method_percentile="exact"`` and its
  default approximate (histogram) percentiles, written to Zarr; skipped
  when marEx is not installed;
* ``reference``: the reference implementation's definitions
  (``tests/mhw_oracle.py``: a Python loop per day of the year, as the
  reference's ``detect``, plus ``blockAverage``) looped over ``--ref-pixels``
  pixels, scaled to the grid.

Each line gives the median wall time of ``--repeat`` runs, the throughput in
values per second, the ratio to the floor and the peak RSS; then a line per
case splits its median CPU time into user and system time and, for
oceanflow's cases, into the CPU of the threads running each stage's kernel
(thresholds, detect, summary, events: the block functions of
``oceanflow.mhw``, timed in the child) and the rest (reading, writing,
scheduling).  ``--first``
also times, in a fresh process with the numba cache off, the first result
(thresholds and detection computed) on 5 years at 2 degrees: imports and
compilation included.

Usage (a reduced case; the issue's full case is ``--years 30 --ny 180 --nx 360``)::

    nice python benchmarks/bench_mhw.py --years 10 --ny 90 --nx 180 --out /tmp/bench-mhw --first
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings

from _common import ROOT, add_case_arguments, child_result, chosen_cases, data_arguments, medians, run_interleaved

sys.path.insert(0, os.path.join(ROOT, "tests"))  # the oracle

CASES = {  # name: (floor, needs)
    "read-zarr": (None, None),
    "read-netcdf": (None, None),
    "pipeline/oceanflow": ("read-zarr", None),
    "pipeline/oceanflow-netcdf": ("read-netcdf", None),
    "flags/oceanflow": ("read-zarr", None),
    "flags/marex-exact": ("read-zarr", "marEx"),
    "flags/marex-approx": ("read-zarr", "marEx"),
    "reference": (None, None),
}


def generate(out, years, ny, nx, start=1990):
    """Zarr store and yearly NetCDF files, written once (reused when present)."""
    import numpy as np
    import xarray as xr

    tag = f"{years}y_{ny}x{nx}"
    zarr_path = os.path.join(out, f"sst_{tag}.zarr")
    nc_dir = os.path.join(out, f"sst_{tag}_nc")
    if os.path.exists(zarr_path) and os.path.isdir(nc_dir):
        return zarr_path, os.path.join(nc_dir, "*.nc")
    shutil.rmtree(zarr_path, ignore_errors=True)
    os.makedirs(nc_dir, exist_ok=True)
    lat = np.linspace(-90 + 90 / ny, 90 - 90 / ny, ny)
    lon = np.linspace(180 / nx, 360 - 180 / nx, nx)
    rng = np.random.default_rng(0)
    phi = np.float32(np.exp(-1 / 10))  # red noise, 10-day memory, 0.6 degC
    state = rng.standard_normal((ny, nx), dtype=np.float32) * np.float32(0.6)
    mean = (28 * np.cos(np.deg2rad(lat)) - 1).astype(np.float32)[:, None]
    amplitude = (4 * np.sin(np.deg2rad(lat))).astype(np.float32)[:, None]
    elapsed = 0
    for year in range(start, start + years):
        time_ = xr.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        values = np.empty((time_.size, ny, nx), np.float32)
        for t in range(time_.size):
            shock = rng.standard_normal((ny, nx), dtype=np.float32) * np.float32(0.6 * np.sqrt(1 - phi**2))
            state = phi * state + shock
            phase = (elapsed + t) / 365.25
            values[t] = mean + amplitude * np.float32(np.cos(2 * np.pi * (phase - 0.6))) + state + 0.02 * phase
        elapsed += time_.size
        ds = xr.Dataset(
            {"sst": (("time", "lat", "lon"), values, {"units": "degC"})},
            coords={"time": time_, "lat": lat, "lon": lon},
        )
        ds.to_netcdf(os.path.join(nc_dir, f"sst_{year}.nc"), encoding={"sst": {"chunksizes": (1, ny, nx)}})
    files = sorted(glob.glob(os.path.join(nc_dir, "*.nc")))
    with xr.open_mfdataset(files, chunks={"time": 30}) as ds:
        ds.chunk({"time": 30}).to_zarr(zarr_path, mode="w", encoding={"sst": {"chunks": (30, ny, nx)}})
    return zarr_path, os.path.join(nc_dir, "*.nc")


def run_case(case, zarr_path, nc_glob, out, ref_pixels):
    """One case in this process: (seconds, tasks)."""
    import xarray as xr

    import oceanflow

    warnings.simplefilter("ignore")
    if case == "reference":
        return (*_reference(zarr_path, ref_pixels), {})
    if case.endswith("netcdf"):
        ds = oceanflow.open_dataset(sorted(glob.glob(nc_glob)))
    else:
        ds = xr.open_zarr(zarr_path)
    corner = ds.isel(lat=slice(0, 2), lon=slice(0, 2))
    _timed(case, corner, out)  # warm-up: imports, compilation (or numba's cache)
    stages = _stage_clocks() if "/oceanflow" in case else {}
    cpu, before = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    seconds, tasks = _timed(case, ds, out)
    after = resource.getrusage(resource.RUSAGE_SELF)
    split = {"user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime}
    return seconds, tasks, time.process_time() - cpu, {**split, **{f"{k}_s": v for k, v in stages.items()}}


#: The block functions of oceanflow.mhw._engine whose CPU time ``--stages``-style lines report, by stage.
STAGES = {
    "thresholds": "_thresholds_block",
    "detect": "_detect_block",
    "summary": "_summary_block",
    "events": "_event_table",
}


def _stage_clocks():
    """Wrap the kernels' block functions of ``oceanflow.mhw._engine`` (looked up there at each call) so
    that each adds the CPU time of the thread that runs it to its stage: a dict filled as they run."""
    import threading

    from oceanflow.mhw import _engine

    totals = dict.fromkeys(STAGES, 0.0)
    lock = threading.Lock()

    def clocked(stage, func):
        def call(*args, **kwargs):
            start = time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                with lock:
                    totals[stage] += time.thread_time() - start

        return call

    for stage, name in STAGES.items():
        setattr(_engine, name, clocked(stage, getattr(_engine, name)))
    return totals


def _timed(case, ds, out):
    import oceanflow
    from oceanflow import mhw

    sst = ds.sst
    target = os.path.join(out, "result.zarr")
    for previous in glob.glob(os.path.join(out, "result*.zarr")):  # an earlier run's: not this run's work
        shutil.rmtree(previous)
    start = time.perf_counter()
    if case.startswith("read-"):
        tasks = len(sst.sum().data.__dask_graph__())
        sst.sum().compute()
    elif case.startswith("flags/marex"):
        import marEx

        method = "exact" if case.endswith("exact") else "approximate"
        result = marEx.preprocess_data(
            sst,
            method_anomaly="fixed_baseline",
            method_extreme="hobday_extreme",
            threshold_percentile=90,
            window_days_hobday=11,
            method_percentile=method,
            dimensions={"time": "time", "x": "lon", "y": "lat"},
            coordinates={"time": "time", "x": "lon", "y": "lat"},
            quiet=True,
        )
        tasks = sum(len(v.data.__dask_graph__()) for v in result.data_vars.values() if v.chunks)
        oceanflow.save(result, target, overwrite=True)
    else:  # as the command: the summary and the events (pipeline) in the detection's tasks
        pipeline = case.startswith("pipeline")
        computed = []  # the collections save computes (its writes and the blocks' tables), counted after the timing
        from oceanflow.io import write

        compute, prepared_write = write.Writes.compute, write.Target.write

        def kept(self, *targets, others=()):
            computed.extend(others)
            return compute(self, *targets, others=others)

        def kept_write(self, *, now, **options):  # a write's Delayed, or (written directly) its Dataset's tasks
            written = prepared_write(self, now=now, **options)
            computed.extend([self.ds if now else written])
            return written

        write.Writes.compute, write.Target.write = kept, kept_write
        try:
            mhw.save(
                sst,
                target,
                events=os.path.join(out, "result_events.zarr") if pipeline else None,
                summary=os.path.join(out, "result_summary.zarr") if pipeline else None,
                overwrite=True,
            )
        finally:
            write.Writes.compute, write.Target.write = compute, prepared_write
        seconds = time.perf_counter() - start
        keys = set().union(*((c.__dask_graph__() or {}).keys() for c in computed))  # the keys, shared once
        return seconds, len(keys)
    return time.perf_counter() - start, tasks


def _reference(zarr_path, pixels):
    """The reference definitions (tests/mhw_oracle.py) on ``pixels`` ocean pixels: seconds scaled to the grid."""
    import mhw_oracle as ref
    import numpy as np
    import xarray as xr

    ds = xr.open_zarr(zarr_path)
    sst = ds.sst
    step = max(1, sst.sizes["lat"] * sst.sizes["lon"] // pixels)
    flat = sst.stack(pixel=("lat", "lon")).isel(pixel=slice(0, None, step)).isel(pixel=slice(0, pixels)).load()
    dates = [(d.year, d.month, d.day) for d in sst.time.to_index()]
    years = np.array([y for y, _, _ in dates])
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(flat.sizes["pixel"]):
        events, clim = ref.detect(dates, flat.values[:, k])
        ref.block_average(years, events, 1, clim["event"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    scale = sst.sizes["lat"] * sst.sizes["lon"] / flat.sizes["pixel"]
    return seconds * scale, 0, cpu * scale


def first_result(out):
    """Seconds from a fresh interpreter to thresholds and detection computed, numba cache off."""
    code = (
        "import time; t = time.perf_counter(); import warnings; warnings.simplefilter('ignore');"
        "import xarray as xr; from oceanflow import mhw;"
        f"ds = xr.open_zarr({generate(out, 5, 90, 180)[0]!r});"
        "found = mhw.detect(ds.sst); found.event.max().compute(); print(time.perf_counter() - t)"
    )
    env = {**os.environ, "OCEANFLOW_NUMBA_CACHE": "0", "PYTHONPATH": ROOT}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def _child(args, case):
    command = [sys.executable, __file__, "--child", case, args.zarr, args.nc, "--out", args.out]
    return child_result(command + ["--ref-pixels", str(args.ref_pixels)])


def main(argv=None):
    parser = data_arguments(__doc__.split("\n")[0], years=10, ny=90, nx=180, out="bench-mhw")
    parser.add_argument("--ref-pixels", type=int, default=20, help="pixels the reference runs on (scaled)")
    add_case_arguments(parser, CASES)
    parser.add_argument("--first", action="store_true", help="also time the first result (5 years, 2 degrees)")
    args = parser.parse_args(argv)
    if args.child:
        case, zarr_path, nc_glob = args.child
        seconds, tasks, cpu, split = run_case(case, zarr_path, nc_glob, args.out, args.ref_pixels)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "tasks": tasks, "rss_mib": rss, "cpu_s": cpu, **split}))
        return
    _, order = chosen_cases(parser, CASES, args.cases)
    args.zarr, args.nc = generate(args.out, args.years, args.ny, args.nx)
    import xarray as xr

    values = xr.open_zarr(args.zarr).sst.size
    print(
        f"# {args.years} years daily {args.ny}x{args.nx} float32 ({values / 1e6:.1f}M values, "
        f"{4 * values / 1e9:.2f} GB), {os.cpu_count()} cores, median of {args.repeat}"
    )
    print(f"{'case':26s} {'seconds':>8s} {'Mvalues/s':>10s} {'ratio':>6s} {'floor':>12s} {'tasks':>7s} {'RSS MiB':>8s}")
    runs = run_interleaved(CASES, order, args.repeat, lambda case: _child(args, case))
    timed = medians(CASES, runs)
    results = {case: seconds for case, (seconds, _) in timed.items()}
    for case, (seconds, ratio) in timed.items():
        floor, case_runs = CASES[case][0], runs[case]
        print(
            f"{case:26s} {seconds:8.2f} {values / seconds / 1e6:10.2f} {ratio:>6s} {floor or '':>12s} "
            f"{case_runs[0]['tasks']:7d} {max(r['rss_mib'] for r in case_runs):8.0f}"
        )
    cpu = {case: statistics.median(r["cpu_s"] for r in case_runs) for case, case_runs in runs.items()}
    print("# CPU seconds (median; steadier than wall times on a loaded machine): ", end="")
    print(", ".join(f"{case} {seconds:.2f}" for case, seconds in cpu.items()))
    for case, case_runs in runs.items():  # where the CPU went (medians of each figure: they need not add up)
        split = {k[:-2]: statistics.median(r[k] for r in case_runs) for k in case_runs[0] if k.endswith("_s")}
        if "user" in split:
            kernels = sum(split.get(stage, 0.0) for stage in STAGES)
            stages = ", ".join(f"{stage} {split[stage]:.3f}" for stage in STAGES if stage in split)
            rest = f"; kernels' threads {stages}, the rest {split['cpu'] - kernels:.3f}" if stages else ""
            print(f"# {case}: CPU {split['cpu']:.3f} s = user {split['user']:.3f} + sys {split['sys']:.3f}{rest}")
    for peer in ("flags/marex-exact", "flags/marex-approx"):
        if peer in results and "flags/oceanflow" in results:
            print(f"# flags/oceanflow is {results[peer] / results['flags/oceanflow']:.1f}x faster than {peer}")
    if "reference" in results and "pipeline/oceanflow" in results:
        speedup = results["reference"] / results["pipeline/oceanflow"]
        print(f"# pipeline/oceanflow is {speedup:.0f}x faster than the reference")
    if args.first:
        print(f"# first result (5 years, 90x180, imports and compilation included): {first_result(args.out):.1f} s")


if __name__ == "__main__":
    main()
