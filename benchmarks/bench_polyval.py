"""polyval and polyfit against their peers, side by side in one run.

Prints medians (ms) and ratios to the memory floor (``np.copyto`` into a
preallocated array) for oceanflow, ``np.polyval``, ``xr.polyval``, numexpr and
``x.copy()``, in memory and on dask (100 MB chunks, threaded scheduler, with
task counts), then ``oceanflow.polyfit`` against ``xr.DataArray.polyfit``
(``oceanflow.eos`` against gsw: ``benchmarks/bench_eos.py``).

Run (about 5 minutes on 2 cores)::

    python benchmarks/bench_polyval.py
    python benchmarks/bench_polyval.py --size 1000000 --repeat 3   # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import dask
import dask.array
import numpy as np
import xarray as xr

import oceanflow
from oceanflow.kernels import COMPILE_SECONDS

DEGREES = (3, 10, 30)


def median_seconds(func, repeat, warmup=True):
    """Median wall time of ``func()`` over ``repeat`` calls (after one warm-up call)."""
    if warmup:
        func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numexpr_horner(coeffs):
    expr = repr(float(coeffs[0]))
    for c in coeffs[1:]:
        expr = f"({expr}) * x + {float(c)!r}"
    return expr


def row(label, seconds, floor, extra=""):
    print(f"  {label:<34s} {seconds * 1e3:10.1f} ms {seconds / floor:8.2f}x  {extra}")


def in_memory(x, coeffs, repeat, slow_repeat):
    dtype = x.dtype
    c = coeffs.astype(dtype)
    out = np.empty_like(x)
    floor = median_seconds(lambda: np.copyto(out, x), repeat)
    da = xr.DataArray(x, dims="i")
    dc = xr.DataArray(c[::-1], dims="degree", coords={"degree": np.arange(len(c))})
    results = {
        "np.copyto (floor)": floor,
        "x.copy()": median_seconds(lambda: x.copy(), repeat),
        "oceanflow.polyval(out=)": median_seconds(lambda: oceanflow.polyval(x, c, out=out), repeat),
        "oceanflow.polyval": median_seconds(lambda: oceanflow.polyval(x, c), repeat),
        "oceanflow.polyval(out=), 1 thread": _one_thread(lambda: oceanflow.polyval(x, c, out=out), repeat),
        "np.polyval": median_seconds(lambda: np.polyval(c, x), slow_repeat, warmup=False),
        "xr.polyval": median_seconds(lambda: xr.polyval(da, dc), slow_repeat, warmup=False),
    }
    try:
        import numexpr

        expr = numexpr_horner(c)
        results["numexpr (out=)"] = median_seconds(lambda: numexpr.evaluate(expr, local_dict={"x": x}, out=out), repeat)
    except ImportError:
        pass
    return floor, results


def _one_thread(func, repeat):
    with oceanflow.set_options(num_threads=1):
        return median_seconds(func, repeat)


def on_dask(x, coeffs, repeat, slow_repeat, chunk_bytes):
    c = coeffs.astype(x.dtype)
    chunk = max(1, chunk_bytes // x.dtype.itemsize)
    data = xr.DataArray(x, dims="i").chunk({"i": chunk})
    dc = xr.DataArray(c[::-1], dims="degree", coords={"degree": np.arange(len(c))})
    ours = oceanflow.polyval(data, c)
    theirs = xr.polyval(data, dc)
    base = len(data.data.__dask_graph__())
    out = np.empty_like(x)
    with dask.config.set(scheduler="threads"):
        return {
            "chunks": data.data.npartitions,
            "oceanflow tasks added": len(ours.data.__dask_graph__()) - base,
            "xr.polyval tasks added": len(theirs.data.__dask_graph__()) - base,
            "oceanflow.polyval (dask)": median_seconds(ours.compute, repeat),
            "oceanflow.polyval (dask, store)": median_seconds(lambda: dask.array.store(ours.data, out), repeat),
            "xr.polyval (dask)": median_seconds(lambda: theirs.compute(), slow_repeat, warmup=False),
        }


def bench_polyval(size, repeat, slow_repeat, chunk_bytes):
    rng = np.random.default_rng(0)
    base = rng.uniform(-1.0, 1.0, size)
    for dtype in ("float64", "float32"):
        x = base.astype(dtype)
        for degree in DEGREES:
            coeffs = rng.normal(size=degree + 1)
            floor, results = in_memory(x, coeffs, repeat, slow_repeat)
            print(f"\npolyval {dtype} degree {degree}, {size:,} values (ratio to np.copyto)")
            for label, seconds in results.items():
                row(label, seconds, floor)
            dask_results = on_dask(x, coeffs, repeat, slow_repeat, chunk_bytes)
            print(f"  dask, {dask_results['chunks']} chunks of {chunk_bytes / 1e6:.0f} MB, threaded scheduler:")
            # compute() allocates every block and then concatenates them: compare with the
            # allocating in-memory call; store() writes into a preallocated array: compare with out=.
            for label, tasks, reference in (
                ("oceanflow.polyval (dask)", "oceanflow tasks added", "oceanflow.polyval"),
                ("oceanflow.polyval (dask, store)", "oceanflow tasks added", "oceanflow.polyval(out=)"),
                ("xr.polyval (dask)", "xr.polyval tasks added", "oceanflow.polyval"),
            ):
                seconds = dask_results[label]
                row(
                    label,
                    seconds,
                    floor,
                    f"tasks added {dask_results[tasks]}; {seconds / results[reference]:.2f}x {reference} in memory",
                )


def bench_polyfit(shape, repeat):
    """oceanflow.polyfit vs xarray's polyfit along a daily time axis, 10 % NaN, on dask."""
    import warnings

    rng = np.random.default_rng(2)
    data = rng.standard_normal(shape).astype("float32")
    data[rng.random(shape) < 0.1] = np.nan
    times = xr.date_range("2000-01-01", periods=shape[0], freq="D")
    chunks = {"time": -1, "y": max(1, shape[1] // 2), "x": max(1, shape[2] // 2)}
    da = xr.DataArray(data, dims=("time", "y", "x"), coords={"time": times}).chunk(chunks).persist()
    base = len(da.data.__dask_graph__())
    print(f"\npolyfit along time, {shape} float32, 10 % NaN, chunks {da.data.chunksize}")
    for deg in (1, 3):
        ours = oceanflow.polyfit(da, "time", deg).polyfit_coefficients
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = da.polyfit("time", deg).polyfit_coefficients
            t_theirs = median_seconds(theirs.compute, repeat, warmup=False)
        t_ours = median_seconds(ours.compute, repeat)
        print(
            f"  deg {deg}: oceanflow {t_ours * 1e3:8.1f} ms ({len(ours.data.__dask_graph__()) - base} tasks added), "
            f"xarray {t_theirs * 1e3:8.1f} ms ({len(theirs.data.__dask_graph__()) - base} tasks added), "
            f"{t_theirs / t_ours:5.1f}x faster"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=50_000_000, help="values for polyval (default 50M)")
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats of fast cases (median)")
    parser.add_argument("--slow-repeat", type=int, default=3, help="timed repeats of slow peers (median)")
    parser.add_argument("--chunk-mb", type=float, default=100.0, help="dask chunk size in MB")
    parser.add_argument("--fit-shape", type=int, nargs=3, default=(3650, 100, 100), help="polyfit input shape")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"oceanflow {oceanflow.__version__}, {os.cpu_count()} cores, numpy {np.__version__}")
    bench_polyval(args.size, args.repeat, args.slow_repeat, int(args.chunk_mb * 1e6))
    bench_polyfit(tuple(args.fit_shape), max(1, args.slow_repeat))
    print("\nfirst-call compile times (s):")
    for (kernel, dtype), seconds in sorted(COMPILE_SECONDS.items()):
        print(f"  {kernel:<28s} {dtype:<8s} {seconds:6.3f}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
