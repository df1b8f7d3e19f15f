"""The benchmark scripts still run (tiny sizes; the figures come from real runs)."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_polyval_benchmark_runs(capsys):
    pytest.importorskip("numexpr")
    load("bench_polyval").main(["--size", "5000", "--eos-size", "1000", "--repeat", "1", "--slow-repeat", "1", "--chunk-mb", "0.01",
         "--fit-shape", "30", "4", "4"])
    printed = capsys.readouterr().out
    assert "oceanflow.polyval(out=)" in printed and "tasks added" in printed
    assert "eos.rho vs gsw.rho" in printed and "polyfit along time" in printed
