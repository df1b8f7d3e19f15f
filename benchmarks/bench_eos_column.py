"""eos.from_model against the same chain through gsw, side by side in one run.

The issue's case: Practical Salinity, potential temperature, depth (1-D),
latitude and longitude (1-D) of a (50, 180, 360) float32 field to in-situ
density and N2.  Compared (medians of wall times, seconds, and ratios):

* ``oceanflow`` -- ``eos.from_model(SP=, pt=, depth=, lat=, lon=, outputs=("rho", "N2"))``
  on dask DataArrays with the given chunks (threaded scheduler), computed;
* ``gsw NumPy`` -- ``p_from_z``, ``SA_from_SP``, ``CT_from_pt``, ``rho`` and
  ``Nsquared`` on the whole NumPy arrays (gsw is single-threaded C);
* ``gsw dask`` -- the same chain per chunk with ``dask.array.map_blocks``,
  same chunks, same scheduler;
* ``oceanflow (one thread)`` -- from_model with dask's synchronous scheduler.

Wall time and the process's CPU time (all threads) are both given: on a
shared machine the CPU times compare the work done, the wall times what a
user waits.

It also prints the number of tasks of oceanflow's graph against the number
of input chunks.

Run (a few minutes on 2 cores)::

    python benchmarks/bench_eos_column.py
    python benchmarks/bench_eos_column.py --shape 50 45 90 --repeat 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from oceanflow import eos


def median_seconds(func, repeat, warmup=True):
    """Medians of the wall time, of the process's CPU time (all threads) and of the calling
    thread's CPU time of ``func()`` over ``repeat`` calls, after one warm-up call."""
    if warmup:
        func()
    walls, cpus, threads = [], [], []
    for _ in range(repeat):
        start, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
        func()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        threads.append(time.thread_time() - thread)
    return statistics.median(walls), statistics.median(cpus), statistics.median(threads)


class TaskCount:
    """The tasks dask's local scheduler runs, by layer, with the seconds spent inside them."""

    def __init__(self):
        from dask.callbacks import Callback

        self.counts, self.seconds, started = {}, {}, {}

        def pretask(key, dsk, state):
            started[key] = time.perf_counter()

        def posttask(key, result, dsk, state, worker_id):
            layer = _layer(key)
            self.counts[layer] = self.counts.get(layer, 0) + 1
            self.seconds[layer] = self.seconds.get(layer, 0.0) + time.perf_counter() - started.pop(key)

        self.callback = Callback(pretask=pretask, posttask=posttask)

    def __enter__(self):
        self.callback.__enter__()
        return self

    def __exit__(self, *exc):
        self.callback.__exit__(*exc)

    def total(self):
        return sum(self.counts.values())

    def views(self):
        names = [layer for layer in self.counts if "-output" in layer]
        return sum(self.counts[n] for n in names), sum(self.seconds[n] for n in names)


def task_keys(*arrays):
    """The keys of the tasks of the graph of ``arrays`` together."""
    keys = set()
    for array in arrays:
        keys |= set(dict(array.__dask_graph__()))
    return keys


def _layer(key) -> str:
    """The layer name of a task key: 'eos-from_model', 'eos-from_model-output0', ..."""
    name = key[0] if isinstance(key, tuple) else key
    return str(name).rsplit("-", 1)[0]


def fields(shape, dtype="float32", seed=0):
    """A model-like (lev, lat, lon) field: SP, pt with NaN below a sea floor, depth, lat, lon."""
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    depth = np.geomspace(5.0, 5500.0, nz)
    lat = np.linspace(-78.0, 89.0, ny)
    lon = np.linspace(0.5, 359.5, nx)
    profile = np.exp(-depth / 700.0)[:, None, None]
    SP = 34.7 + 0.5 * profile + rng.normal(0, 0.05, shape)
    pt = 1.5 + 20.0 * profile * np.cos(np.deg2rad(lat))[None, :, None] + rng.normal(0, 0.1, shape)
    bottom = rng.integers(nz // 3, nz + 1, (ny, nx))
    below = np.arange(nz)[:, None, None] >= bottom
    SP[below] = np.nan
    pt[below] = np.nan
    return SP.astype(dtype), pt.astype(dtype), depth.astype(dtype), lat.astype(dtype), lon.astype(dtype)


def gsw_chain(SP, pt, depth, lat, lon):
    """rho and N2 through gsw, as a user would chain it (NumPy blocks of shape (nz, ny, nx))."""
    import gsw

    p = gsw.p_from_z(-depth[:, None, None], lat[None, :, None])
    p = np.broadcast_to(p, SP.shape)
    SA = gsw.SA_from_SP(SP, p, lon[None, None, :], lat[None, :, None])
    CT = gsw.CT_from_pt(SA, pt)
    rho = gsw.rho(SA, CT, p)
    N2, _ = gsw.Nsquared(SA, CT, p, np.broadcast_to(lat[None, :, None], SP.shape), axis=0)
    return rho, N2


def _gsw_block(SP, pt, lat, lon, depth):
    rho, N2 = gsw_chain(SP, pt, depth, lat.ravel(), lon.ravel())
    return np.stack([rho, np.concatenate([N2, np.full((1,) + N2.shape[1:], np.nan)])])


def bench(shape, chunks, repeat):
    import gsw

    SP, pt, depth, lat, lon = fields(shape)
    ny, nx = chunks
    coords = {"lev": depth, "lat": lat, "lon": lon}
    dims = ("lev", "lat", "lon")
    so = xr.DataArray(SP, dims=dims, coords=coords, name="so").chunk({"lev": -1, "lat": ny, "lon": nx})
    thetao = xr.DataArray(pt, dims=dims, coords=coords, name="thetao").chunk({"lev": -1, "lat": ny, "lon": nx})

    def ours():
        ds = eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, outputs=("rho", "N2"))
        return dask.compute(ds.rho.data, ds.N2.data)

    SP_d = dsa.from_array(SP, chunks=(-1, ny, nx))
    pt_d = dsa.from_array(pt, chunks=(-1, ny, nx))
    lat_d = dsa.from_array(lat, chunks=ny)
    lon_d = dsa.from_array(lon, chunks=nx)

    def theirs_dask():
        stacked = dsa.map_blocks(
            _gsw_block,
            SP_d,
            pt_d,
            lat_d[None, :, None],
            lon_d[None, None, :],
            depth=depth,
            new_axis=0,
            dtype=np.float64,
        )
        return stacked.compute()

    ds = eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, outputs=("rho", "N2"))
    graph = task_keys(ds.rho.data, ds.N2.data)
    input_chunks = so.data.npartitions
    input_tasks = len(task_keys(so.data, thetao.data))
    print(f"# from_model (SP, pt, depth, lat, lon) -> rho, N2 on {shape} float32, chunks lat={ny} lon={nx}")
    added = graph - task_keys(so.data, thetao.data)
    kernel = sum(1 for key in added if _layer(key) == "eos-from_model")
    views = sum(1 for key in added if _layer(key).startswith("eos-from_model-output"))
    print(
        f"# tasks: {len(graph)} in all; input chunks {input_chunks} per field ({input_tasks} tasks for SP and pt); "
        f"added {len(added)}: {kernel} kernel tasks (one per chunk), {views} getitem views (one per output and "
        f"chunk), {len(added) - kernel - views} for lat, lon and depth (sliced to the chunks)"
    )
    rho_ours, N2_ours = ours()
    rho_gsw, N2_gsw = gsw_chain(SP, pt, depth, lat, lon)
    np.testing.assert_allclose(rho_ours, rho_gsw, rtol=1e-6)
    np.testing.assert_allclose(N2_ours, N2_gsw, rtol=2e-3, atol=2e-3 * np.nanmax(np.abs(N2_gsw)))
    print(f"# results checked against gsw (rho rtol 1e-6, N2 2e-3 of its range); gsw {gsw.__version__}")
    optimized = task_keys(*dask.optimize(ds.rho.data, ds.N2.data))
    print(
        f"# dask.optimize(rho, N2): {len(optimized)} keys (it optimizes each output's graph apart, "
        "so the kernel is fused into both: not the graph compute runs)"
    )
    targets = [np.empty(ds.rho.shape, ds.rho.dtype), np.empty(ds.N2.shape, ds.N2.dtype)]

    def rho_only():
        return eos.from_model(SP=so, pt=thetao, depth=so.lev, lat=so.lat, lon=so.lon, outputs=("rho",)).rho

    with dask.config.set(scheduler="threads"):
        for label, run in (
            ("dask.compute(rho, N2)", ours),
            ("dask.array.store([rho, N2]) (as to_zarr)", lambda: dsa.store([ds.rho.data, ds.N2.data], targets)),
            ("from_model(outputs=('rho',)) computed", lambda: dsa.compute(rho_only().data)),
        ):
            with TaskCount() as count:
                run()
            n_views, view_seconds = count.views()
            kernel = count.counts.get("eos-from_model", 0)
            others = ", ".join(
                f"{k} {v}" for k, v in count.counts.items() if k != "eos-from_model" and "-output" not in k
            )
            print(
                f"# tasks run by the scheduler, {label}: {count.total()} ({input_chunks} input chunks; "
                f"{kernel} kernel, "
                f"{n_views} per-output views taking {1e3 * view_seconds:.1f} ms in all, "
                f"{count.total() - kernel - n_views} others: {others})"
            )
    with dask.config.set(scheduler="threads"):
        results = {
            "oceanflow from_model (dask)": median_seconds(ours, repeat),
            "gsw NumPy chain": median_seconds(lambda: gsw_chain(SP, pt, depth, lat, lon), repeat),
            "gsw chain per chunk (dask)": median_seconds(theirs_dask, repeat),
        }
    with dask.config.set(scheduler="synchronous"):
        results["oceanflow from_model (one thread)"] = median_seconds(ours, repeat)
    wall, cpu, thread = results["gsw NumPy chain"]
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other processes share them)")
    print(
        "# CPU: the process's, all threads; thread CPU: the calling thread's, for the one-thread cases "
        "(the least disturbed by other processes on a shared machine)"
    )
    print(f"{'case':<36s} {'wall s':>7s} {'CPU s':>7s} {'thread s':>8s}   gsw NumPy / this: wall, CPU, thread")
    for label, (w, c, t) in results.items():
        one = label.endswith("(one thread)") or label == "gsw NumPy chain"
        shown = f"{t:8.3f}" if one else f"{'-':>8s}"
        ratio = f"{thread / t:6.2f}x" if one else f"{'-':>7s}"
        print(f"{label:<36s} {w:7.3f} {c:7.3f} {shown}   {'':>16s} {wall / w:5.2f}x {cpu / c:5.2f}x {ratio}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(50, 180, 360), metavar=("NZ", "NY", "NX"))
    parser.add_argument("--chunks", type=int, nargs=2, default=(45, 90), metavar=("NY", "NX"), help="lat, lon chunks")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (median)")
    args = parser.parse_args(argv)
    bench(tuple(args.shape), tuple(args.chunks), args.repeat)


if __name__ == "__main__":
    main()
