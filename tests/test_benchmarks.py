"""The benchmark scripts still run (tiny sizes; the figures come from real runs)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_polyval_benchmark_runs(capsys):
    pytest.importorskip("numexpr")
    load("bench_polyval").main(
        [
            "--size",
            "5000",
            "--repeat",
            "1",
            "--slow-repeat",
            "1",
            "--chunk-mb",
            "0.01",
            "--fit-shape",
            "30",
            "4",
            "4",
        ]
    )
    printed = capsys.readouterr().out
    assert "oceanflow.polyval(out=)" in printed and "tasks added" in printed
    assert "polyfit along time" in printed and "gsw" not in printed  # eos vs gsw: bench_eos


def run_script(name, tmp_path, *options, years=1):
    """Run ``benchmarks/{name}.py`` on a tiny grid, once per case; its output and its table rows by case."""
    command = [sys.executable, str(BENCHMARKS / f"{name}.py"), "--years", str(years), "--ny", "4", "--nx", "6"]
    command += ["--repeat", "1", "--out", str(tmp_path), *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line and line[0] != "#"}
    return result.stdout, rows


def test_climatology_benchmark_runs(tmp_path):
    _, lines = run_script("bench_climatology", tmp_path, "--cases", "month/oceanflow,anomaly/oceanflow")
    assert {"read-zarr", "copy-zarr", "month/oceanflow", "anomaly/oceanflow"} <= set(lines)
    assert float(lines["month/oceanflow"][1]) > 0


def test_climatology_benchmark_gives_cpu_seconds_of_netcdf_output(tmp_path):
    """The last column: CPU seconds of the timed write, at most all cores busy for its wall time (os.times
    ticks are 10 ms)."""
    import os

    printed, lines = run_script(
        "bench_climatology", tmp_path, "--cases", "anomaly/nc-oceanflow,anomaly/nc-oceanflow-zip1"
    )
    assert printed.splitlines()[1].split()[-2:] == ["CPU", "s"]
    assert len(lines["anomaly/nc-oceanflow-zip1"]) == 8  # case, seconds, ratio, floor, tasks, RSS, MB out, CPU s
    for case in ("anomaly/nc-oceanflow", "anomaly/nc-oceanflow-zip1"):
        row = lines[case]
        seconds, cpu = float(row[1]), float(row[-1])
        assert 0 <= cpu <= (os.cpu_count() or 1) * seconds + 0.05, row


def test_climatology_benchmark_measures_the_netcdf_direct_switch_in_each_case_process(tmp_path, monkeypatch):
    """Each NetCDF case sets OCEANFLOW_NETCDF_DIRECT itself: the parent's value (here one every save refuses)
    reaches none of them, and the page-cache twin's ratio is to the O_DIRECT case."""
    monkeypatch.setenv("OCEANFLOW_NETCDF_DIRECT", "not-a-value")
    cases = "anomaly/nc-oceanflow,anomaly/nc-oceanflow-cached,anomaly/nc-oceanflow-zip1-cached"
    _, lines = run_script("bench_climatology", tmp_path, "--cases", cases)
    for case, floor in (
        ("anomaly/nc-oceanflow-cached", "anomaly/nc-oceanflow"),
        ("anomaly/nc-oceanflow-zip1-cached", "anomaly/nc-oceanflow-zip1"),
    ):
        row = lines[case]
        assert row[3] == floor and float(row[2]) == pytest.approx(
            float(row[1]) / float(lines[floor][1]), rel=0.05, abs=0.01
        )


def test_chunk_benchmark_runs(tmp_path):
    printed, _ = run_script("bench_chunks", tmp_path)
    assert "oceanflow.suggest_chunks" in printed and "oceanflow.open_dataset + oceanflow.save" in printed


def test_memory_benchmark_runs(capsys):
    bench = load("bench_memory")
    seconds = bench.fill_seconds(bench.MIB, 2)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    bench.main(["--mib", "1", "--repeat", "2"])
    assert "fill 1 MiB: first" in capsys.readouterr().out


def test_mhw_benchmark_runs(tmp_path):
    cases = "read-zarr,pipeline/oceanflow,pipeline/oceanflow-netcdf,reference"
    printed, lines = run_script("bench_mhw", tmp_path, "--ref-pixels", "2", "--cases", cases, years=3)
    assert {"read-zarr", "pipeline/oceanflow", "pipeline/oceanflow-netcdf", "reference"} <= set(lines)
    assert float(lines["pipeline/oceanflow"][1]) > 0 and "faster than the reference" in printed
    # the CPU split: user + sys is the process's CPU time (rusage's split is sampled and adjusted, so loosely:
    # 4 % apart in a loaded full-size run); each kernel's threads ran, within that total
    split = re.search(
        r"# pipeline/oceanflow: CPU ([\d.]+) s = user ([\d.]+) \+ sys ([\d.]+); kernels' threads (.*), the rest",
        printed,
    )
    assert split, printed
    cpu, user, system = map(float, split.groups()[:3])
    assert abs(user + system - cpu) <= 0.05 + 0.2 * cpu
    stages = dict(part.split() for part in split.group(4).split(", "))
    assert set(stages) == {"thresholds", "detect", "summary", "events"}
    assert all(float(v) >= 0 for v in stages.values()) and 0 < sum(map(float, stages.values())) <= cpu


def test_percentile_benchmark_runs(tmp_path):
    cases = (
        "doy-p90/oceanflow,doy-p90/oceanflow-planned,month-median/oceanflow,doy-mean-w11/oceanflow,"
        "month-q90/oceanflow-ofopen"
    )
    printed, lines = run_script("bench_percentiles", tmp_path, "--cases", cases, years=2)
    assert {"read-netcdf", "read-zarr", "doy-p90/oceanflow", "doy-mean/oceanflow"} <= set(lines)
    assert float(lines["doy-p90/oceanflow-planned"][1]) > 0
    # opened with oceanflow.open_dataset: its ratio is to the floor read with the same reader
    assert lines["month-q90/oceanflow-ofopen"][3] == "read-netcdf-ofopen" and "read-netcdf-ofopen" in lines
    assert lines["case"][-2:] == ["THP", "fb"]  # the header's last columns: huge pages faulted, fallen back
    said = [line for line in printed.splitlines() if line.startswith("# THP")]  # what the columns count, and how
    assert len(said) == 1 and "thp_fault_alloc" in said[0] and "whole machine" in said[0], printed
    counts = [row[-2:] for case, row in lines.items() if case != "case"]
    # counted for the whole machine where /proc/vmstat has the counter (whole numbers), "-" where it has not
    # (no /proc/vmstat, or a kernel without transparent huge pages)
    vmstat = Path("/proc/vmstat")
    text = vmstat.read_text() if vmstat.exists() else ""
    counted = [name in text for name in ("thp_fault_alloc", "thp_fault_fallback")]
    for row in counts:
        assert all(c.isdigit() if known else c == "-" for c, known in zip(row, counted, strict=True)), (row, counted)


def test_eos_benchmark_runs(capsys):
    pytest.importorskip("gsw")
    from oceanflow import eos

    bench = load("bench_eos")
    ratios = bench.main(["--size", "2000", "--repeat", "1"])
    printed = capsys.readouterr().out
    assert set(ratios) == {name for name in bench.FUNCTIONS if hasattr(eos, name)} >= {"rho", "cabbeling"}
    assert all(ratio > 0 for ratio in ratios.values())
    assert "spiciness2" in printed and "ratio gsw/oceanflow over" in printed
    assert "SR_from_SP bound" in printed and "SP.copy() " in printed and "np.multiply(SP, c) " in printed
    assert set(bench.main(["--size", "20000", "--repeat", "1", "--functions", "SAAR", "--positions", "gridded"])) == {
        "SAAR"
    }
    assert "18,000 float64 points (gridded positions)" in capsys.readouterr().out


def test_eos_benchmark_bound_line_runs_on_one_thread(monkeypatch):
    pytest.importorskip("gsw")
    from oceanflow import eos
    from oceanflow.options import OPTIONS

    bench = load("bench_eos")
    monkeypatch.setitem(OPTIONS, "num_threads", 4)  # a default of several threads, whatever this machine has
    threads = []
    convert = eos.SR_from_SP
    monkeypatch.setattr(eos, "SR_from_SP", lambda SP: threads.append(OPTIONS["num_threads"]) or convert(SP))
    bench.memory_bound(np.linspace(30.0, 36.0, 2000), 1)
    assert threads and set(threads) == {1}  # as the table above it: the default would split it over 4 threads


def test_eos_column_benchmark_runs(capsys):
    pytest.importorskip("gsw")
    load("bench_eos_column").main(["--shape", "6", "8", "10", "--chunks", "4", "5", "--repeat", "1"])
    printed = capsys.readouterr().out
    assert "oceanflow from_model (dask)" in printed and "gsw NumPy chain" in printed
    assert "4 kernel tasks (one per chunk), 8 getitem views" in printed
