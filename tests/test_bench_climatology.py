"""Smoke test: the climatology benchmark runs end to end on a tiny configuration."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_climatology.py"


def test_benchmark_runs(tmp_path):
    command = [sys.executable, str(BENCH), "--years", "1", "--ny", "4", "--nx", "6", "--repeat", "1",
               "--out", str(tmp_path), "--cases", "month/oceanflow,anomaly/oceanflow"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line and line[0] != "#"}
    assert {"read-zarr", "copy-zarr", "month/oceanflow", "anomaly/oceanflow"} <= set(lines)
    assert float(lines["month/oceanflow"][1]) > 0
