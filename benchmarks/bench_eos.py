"""Every point-wise ``oceanflow.eos`` function against gsw, one thread each, side by side.

gsw (GSW-C) runs one point after another on one core; oceanflow here is held to
one thread too (``oceanflow.set_options(num_threads=1)``: in-memory calls
split over ``OPTIONS["num_threads"]`` threads in ``oceanflow._parallel``, and
the gufuncs themselves are serial), so the ratio measures the kernels, not the
core count.  For each function, on the same float64 inputs (default 10M
points over the oceanographic range), the two are timed alternately
``--repeat`` times after one warm-up call each (compilation excluded); the
table gives the medians, ns per point, the ratio gsw/oceanflow (the issue's
target: at least 3x) and the largest relative difference between the two
results.  Functions of the list that ``oceanflow.eos`` does not have yet are
reported as such.

Run (about 10 minutes at 10M points on a loaded 2-core machine)::

    python benchmarks/bench_eos.py
    python benchmarks/bench_eos.py --size 1000000 --repeat 3 --functions rho,sound_speed
    python benchmarks/bench_eos.py --functions SA_from_SP,SP_from_SA,SR_from_SP,SAAR --positions gridded
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the oceanflow of this checkout

#: gsw name (= oceanflow.eos name): its arguments, in gsw's order.
FUNCTIONS = {
    "specvol": ("SA", "CT", "p"),
    "rho": ("SA", "CT", "p"),
    "alpha": ("SA", "CT", "p"),
    "beta": ("SA", "CT", "p"),
    "rho_alpha_beta": ("SA", "CT", "p"),
    "sigma0": ("SA", "CT"),
    "sigma1": ("SA", "CT"),
    "sigma2": ("SA", "CT"),
    "sigma3": ("SA", "CT"),
    "sigma4": ("SA", "CT"),
    "sound_speed": ("SA", "CT", "p"),
    "kappa": ("SA", "CT", "p"),
    "enthalpy": ("SA", "CT", "p"),
    "cabbeling": ("SA", "CT", "p"),
    "thermobaric": ("SA", "CT", "p"),
    "spiciness0": ("SA", "CT"),
    "spiciness1": ("SA", "CT"),
    "spiciness2": ("SA", "CT"),
    # conversions (issue 15 item 1)
    "SAAR": ("p", "lon", "lat"),
    "SA_from_SP": ("SP", "p", "lon", "lat"),
    "SR_from_SP": ("SP",),
    "SP_from_SA": ("SA", "p", "lon", "lat"),
    "CT_from_pt": ("SA", "pt"),
    "pt_from_CT": ("SA", "CT"),
    "CT_from_t": ("SA", "t", "p"),
    "t_from_CT": ("SA", "CT", "p"),
    "pt0_from_t": ("SA", "t", "p"),
    "p_from_z": ("z", "lat"),
    "z_from_p": ("p", "lat"),
}


def inputs(size: int, seed: int = 0, positions: str = "random") -> dict[str, np.ndarray]:
    """float64 inputs over the oceanographic range, one array per argument name.

    ``positions="random"``: every point at its own random position and pressure;
    ``"gridded"``: as a model file holds them, a (50 levels, lat, lon) field flattened
    in C order: pressure from 0 to 6000 dbar by level, longitude fastest (``size`` is
    rounded down to a whole number of levels and rows).
    """
    rng = np.random.default_rng(seed)
    if positions == "gridded":
        nz, ny = 50, 180
        nx = max(size // (nz * ny), 1)
        size = nz * ny * nx
        lev, lat, lon = np.meshgrid(
            np.linspace(0.0, 6000.0, nz),
            np.linspace(-80.0, 80.0, ny),
            np.linspace(0.0, 360.0, nx, endpoint=False),
            indexing="ij",
        )
        p, lat, lon = lev.ravel(), lat.ravel(), lon.ravel()
    else:
        p, lon, lat = rng.uniform(0.0, 6000.0, size), rng.uniform(0.0, 360.0, size), rng.uniform(-80.0, 80.0, size)
    SA = rng.uniform(30.0, 38.0, size)
    CT = rng.uniform(-1.5, 30.0, size)
    return {
        "SA": SA,
        "CT": CT,
        "p": p,
        "SP": SA * (35.0 / 35.16504),
        "pt": CT,  # potential and in-situ temperatures in the same range
        "t": CT,
        "z": -p,  # metres, negative downwards, as TEOS-10
        "lon": lon,
        "lat": lat,
    }


def timed_side_by_side(ours, theirs, args, repeat: int) -> tuple[float, float, object, object]:
    """Medians (s) of ``repeat`` alternating calls of each on ``args``, after one warm-up call each."""
    mine, gsws = ours(*args), theirs(*args)
    t_ours, t_theirs = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        theirs(*args)
        t_theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours(*args)
        t_ours.append(time.perf_counter() - start)
    return statistics.median(t_ours), statistics.median(t_theirs), mine, gsws


def max_relative_difference(mine, gsws) -> float:
    pairs = zip(mine, gsws, strict=True) if isinstance(gsws, tuple) else [(mine, gsws)]
    worst = 0.0
    for a, b in pairs:
        a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
        scale = np.nanmax(np.abs(b))
        if scale > 0:
            worst = max(worst, float(np.nanmax(np.abs(a - b)) / scale))
    return worst


def memory_bound(SP: np.ndarray, repeat: int) -> dict[str, float]:
    """SR_from_SP (one multiplication per point) beside what any one-thread implementation pays for
    one read and one write into a fresh array: NumPy's own ``np.multiply(SP, c)`` and a plain
    copy, timed alternately with gsw's, on one thread (``set_options(num_threads=1)`` inside, as
    the table); printed as ratios gsw/that (the most SR_from_SP can reach)."""
    import gsw

    import oceanflow
    from oceanflow import eos

    ups = 35.16504 / 35.0
    cases = {
        "gsw.SR_from_SP": lambda: gsw.SR_from_SP(SP),
        "oceanflow SR_from_SP": lambda: eos.SR_from_SP(SP),
        "np.multiply(SP, c)": lambda: np.multiply(SP, ups),
        "SP.copy()": SP.copy,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    with oceanflow.set_options(num_threads=1):
        for call in cases.values():
            call()
        for _ in range(repeat):
            for name, call in cases.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    gsw_s = medians["gsw.SR_from_SP"]
    shown = ", ".join(f"{name} {t * 1e3:.1f} ms ({gsw_s / t:.2f}x)" for name, t in medians.items())
    print(
        f"SR_from_SP bound ({SP.nbytes / 1e6:.0f} MB read, the same written to a fresh array; gsw/that): {shown}; "
        "a plain copy is the floor of any one-thread implementation that returns a new array"
    )
    return medians


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000_000, help="points (default 10M)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls of each (median; default 5)")
    parser.add_argument("--functions", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--target", type=float, default=3.0, help="ratio to flag (default 3)")
    parser.add_argument(
        "--positions",
        choices=("random", "gridded"),
        default="random",
        help="random positions and pressures (default), or gridded as in a model file (see inputs)",
    )
    args = parser.parse_args(argv)

    import gsw

    import oceanflow
    from oceanflow import eos

    names = [n for n in args.functions.split(",") if n] or list(FUNCTIONS)
    unknown = sorted(set(names) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) {unknown}; choose from {', '.join(FUNCTIONS)}")
    data = inputs(args.size, positions=args.positions)
    args.size = data["SA"].size
    print(
        f"oceanflow {oceanflow.__version__}, gsw {gsw.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores; {args.size:,} float64 points ({args.positions} positions), one thread each, "
        f"median of {args.repeat} alternating calls"
    )
    print(
        f"{'function':<16s} {'gsw ms':>10s} {'oceanflow ms':>12s} {'gsw ns/pt':>10s} {'ours ns/pt':>10s} "
        f"{'ratio':>7s}  {'max rel diff':>12s}"
    )
    ratios = {}
    with oceanflow.set_options(num_threads=1):
        for name in names:
            if not hasattr(eos, name):
                print(f"{name:<16s} {'(not in oceanflow.eos yet)':>36s}")
                continue
            call = [data[a] for a in FUNCTIONS[name]]
            ours, theirs = getattr(eos, name), getattr(gsw, name)
            t_ours, t_theirs, mine, gsws = timed_side_by_side(ours, theirs, call, args.repeat)
            ratio = ratios[name] = t_theirs / t_ours
            flag = "" if ratio >= args.target else f"  below {args.target:g}x"
            print(
                f"{name:<16s} {t_theirs * 1e3:10.1f} {t_ours * 1e3:12.1f} {t_theirs / args.size * 1e9:10.1f} "
                f"{t_ours / args.size * 1e9:10.1f} {ratio:6.2f}x  {max_relative_difference(mine, gsws):12.1e}{flag}",
                flush=True,
            )
        if "SR_from_SP" in ratios:  # one thread too: oceanflow's default splits the call over its threads
            memory_bound(data["SP"], args.repeat)
    if ratios:
        values = list(ratios.values())
        print(
            f"ratio gsw/oceanflow over {len(values)} functions: min {min(values):.2f}x "
            f"({min(ratios, key=ratios.get)}), median {statistics.median(values):.2f}x, max {max(values):.2f}x"
        )
    return ratios


if __name__ == "__main__":
    main()
