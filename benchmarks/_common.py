"""What the side-by-side benchmarks share: case selection, one fresh interpreter per timed run,
the cases taking turns, and medians with their ratio to a floor.

A benchmark script defines ``CASES = {name: (floor case or None, library it needs or None)}`` and
runs each case with ``--child CASE ...`` in a subprocess that prints one JSON line
(``{"seconds": ..., "tasks": ..., "rss_mib": ...}``), so that each peak RSS is that case's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable

#: The oceanflow of this checkout, not an installed one.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def data_arguments(description: str, *, years: int, ny: int, nx: int, out: str) -> argparse.ArgumentParser:
    """A parser with the options that say which generated data set to use, and ``--repeat``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--years", type=int, default=years)
    parser.add_argument("--ny", type=int, default=ny)
    parser.add_argument("--nx", type=int, default=nx)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=out)
    return parser


def add_case_arguments(parser: argparse.ArgumentParser, cases: dict) -> None:
    """``--cases`` (a subset of ``cases``) and the hidden ``--child CASE ZARR NC`` of one timed run."""
    parser.add_argument("--cases", default=",".join(cases), help="comma-separated subset of " + ",".join(cases))
    parser.add_argument("--child", nargs=3, metavar=("CASE", "ZARR", "NC"), help=argparse.SUPPRESS)


def chosen_cases(parser: argparse.ArgumentParser, cases: dict, text: str) -> tuple[list[str], list[str]]:
    """(wanted, in order with their floors) from ``--cases``; a parser error names unknown ones."""
    wanted = [c for c in text.split(",") if c]
    unknown = set(wanted) - set(cases)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}")
    floors = {cases[c][0] for c in wanted if cases[c][0]}
    return wanted, [c for c in cases if c in floors or c in wanted]


def available(need: str | None) -> bool:
    """Whether the library (or, for ``"cdo"``, the command) a case needs is installed."""
    if need is None:
        return True
    if need == "cdo":
        return shutil.which("cdo") is not None
    try:
        __import__(need)
    except ImportError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak RSS of this process or of its largest child, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def child_result(command: list[str]) -> dict:
    """Run one timed case in a fresh interpreter; its last line of output, as JSON."""
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=os.getcwd())
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_interleaved(cases: dict, order: list[str], repeat: int, run: Callable[[str], dict]) -> dict[str, list[dict]]:
    """``repeat`` runs of each available case in ``order``, the cases taking turns (a slow spell
    of a shared machine hits every case alike); prints a line for each case skipped."""
    runnable = [c for c in order if available(cases[c][1])]
    for case in order:
        if case not in runnable:
            print(f"{case:26s} skipped: {cases[case][1]} not installed")
    runs: dict[str, list[dict]] = {case: [] for case in runnable}
    for _ in range(repeat):
        for case in runnable:
            runs[case].append(run(case))
    return runs


def medians(cases: dict, runs: dict[str, list[dict]]) -> dict[str, tuple[float, str]]:
    """Per case: the median seconds and its ratio to its floor's (text, empty without a floor)."""
    seconds = {case: statistics.median(r["seconds"] for r in case_runs) for case, case_runs in runs.items()}
    result = {}
    for case, value in seconds.items():
        floor = cases[case][0]
        result[case] = (value, f"{value / seconds[floor]:.2f}" if floor in seconds else "")
    return result
