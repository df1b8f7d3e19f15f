"""README's demonstration runs through the real entry point and finds what was built in."""

import re
import subprocess
import sys


def test_demo_recovers_the_built_in_trend():
    run = subprocess.run([sys.executable, "-m", "oceanflow.demo"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    trend = float(re.search(r"linear trend: ([-\d.]+) degC/decade", run.stdout).group(1))
    assert abs(trend - 0.2) < 0.01  # sample_sst warms by 0.02 degC per year
    assert "NaN kept over land: True" in run.stdout
    sigma_min, sigma_max = map(float, re.search(r"sigma0 ([\d.]+) to ([\d.]+)", run.stdout).groups())
    assert 20 < sigma_min < sigma_max < 28.5  # the ocean's range of potential density anomaly
