"""The files the command line writes pass the CF checker (cfchecker, NCAS/CEDA).

``cfchecks`` needs UDUNITS-2 (Debian's udunits-bin, installed like CDO) and
three XML tables it would download from cfconventions.org: the standard-name
table is taken from the compliance-checker wheel on PyPI (downloaded once per
machine, never imported), and the area-type and region tables are empty
(these files use neither, so any use would be an error).  cfchecker 4.1 knows
CF up to 1.8; the files say CF-1.11 (they use ``units_metadata``), so they
are checked against 1.8, which has the same climatological statistics rules.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import oceanflow_command
import pytest
import xarray as xr
from debian_tools import require

from oceanflow import datasets

pytest.importorskip("cfchecker")

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oceanflow-tests"
EMPTY_TABLE = '<?xml version="1.0"?>\n<table><version_number>0</version_number><date>none</date></table>\n'
CHECKED_VERSION = "1.8"


def _standard_name_table() -> Path:
    """CF's standard-name table, from the compliance-checker wheel (downloaded once)."""
    table = CACHE / "cf-standard-name-table.xml"
    if table.exists():
        return table
    CACHE.mkdir(parents=True, exist_ok=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "compliance-checker==6.1.0"]
    done = subprocess.run([*download, "--dest", str(CACHE)], capture_output=True, text=True)
    wheels = sorted(CACHE.glob("compliance_checker-*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(f"no CF standard-name table: pip download failed: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        table.write_bytes(wheel.read("compliance_checker/data/cf-standard-name-table.xml"))
    return table


@pytest.fixture(scope="module")
def cfchecks(tmp_path_factory):
    """Run cfchecks on a file; returns its ERROR and WARN lines, with the variable each is about."""
    require("udunits2")
    table = _standard_name_table()
    empty = tmp_path_factory.mktemp("cf") / "empty-table.xml"
    empty.write_text(EMPTY_TABLE)
    program = Path(sys.executable).with_name("cfchecks")

    def check(path):
        options = ["-v", CHECKED_VERSION, "-s", table, "-a", empty, "-r", empty]
        done = subprocess.run([program, *map(str, options), str(path)], capture_output=True, text=True, timeout=300)
        assert "ERRORS detected" in done.stdout, done.stdout + done.stderr
        findings, variable = [], None
        for line in done.stdout.splitlines():
            if line.startswith("Checking variable:"):
                variable = line.split(":", 1)[1].strip()
            elif re.match(r"(ERROR|WARN)\b", line):
                findings.append(f"{variable}: {line}")
        return findings

    return check


def _oceanflow(*args, cwd):
    """``python -m oceanflow ARGS -q``, forked from a pre-imported Python (tests/oceanflow_command.py)."""
    done = oceanflow_command.run([*args, "-q"], cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A monthly and a daily sea surface temperature file, with CF grid bounds."""
    folder = tmp_path_factory.mktemp("inputs")
    for name, freq in (("monthly.nc", "month"), ("daily.nc", "day")):
        sst = datasets.sst(years=3, freq=freq, resolution=30.0)
        ds = sst.to_dataset()
        for axis in ("lat", "lon"):
            centre = ds[axis].values
            half = np.diff(centre).mean() / 2
            ds[f"{axis}_bnds"] = ((axis, "bnds"), np.stack([centre - half, centre + half], axis=1))
            ds[axis].attrs["bounds"] = f"{axis}_bnds"
        ds.attrs["Conventions"] = "CF-1.8"
        ds.to_netcdf(folder / name, encoding={f"{axis}_bnds": {"_FillValue": None} for axis in ("lat", "lon")})
    return folder


@pytest.fixture(scope="module")
def input_findings(inputs, cfchecks):
    """What the checker finds in each input file (checked once: the files do not change)."""
    return {path.name: cfchecks(path) for path in sorted(inputs.glob("*.nc"))}


def test_the_checker_finds_errors(cfchecks, tmp_path):
    """The oracle can fail: a made-up standard name and cell method are reported."""
    bad = xr.Dataset({"x": ("t", [1.0], {"standard_name": "made_up_name", "cell_methods": "t: guess"})})
    bad.attrs["Conventions"] = "CF-1.8"
    bad.to_netcdf(tmp_path / "bad.nc")
    findings = " ".join(cfchecks(tmp_path / "bad.nc"))
    assert "made_up_name" in findings and "guess" in findings


CASES = {
    "monthly mean": ("climatology", "monthly.nc", []),
    "monthly std": ("climatology", "monthly.nc", ["--stat", "std"]),
    "seasonal mean": ("climatology", "monthly.nc", ["--freq", "season"]),
    "daily mean": ("climatology", "daily.nc", ["--freq", "dayofyear", "--stat", "mean"]),
    "daily median": ("climatology", "daily.nc", ["--freq", "dayofyear", "--stat", "median", "--window", "5"]),
    "monthly anomaly": ("anomaly", "monthly.nc", []),
    "standardized anomaly": ("anomaly", "monthly.nc", ["--kind", "standardized"]),
    "daily anomaly": ("anomaly", "daily.nc", ["--freq", "dayofyear"]),
}


@pytest.mark.parametrize("case", CASES)
def test_cli_outputs_pass_the_cf_checker(case, inputs, input_findings, cfchecks, tmp_path):
    command, source, options = CASES[case]
    _oceanflow(command, str(inputs / source), "-o", str(tmp_path / "out.nc"), *options, cwd=tmp_path)
    assert input_findings[source] == []  # the input is clean, so any finding is oceanflow's
    assert cfchecks(tmp_path / "out.nc") == []
    assert xr.open_dataset(tmp_path / "out.nc", decode_times=False).attrs["Conventions"] == "CF-1.8"


def test_percentiles_are_the_one_documented_extension(inputs, cfchecks, tmp_path):
    """CF has no percentile cell method: that word is all the checker finds (docs/climatology.rst)."""
    options = ["--freq", "dayofyear", "--stat", "quantile", "--q", "0.9", "--window", "5"]
    _oceanflow("climatology", str(inputs / "daily.nc"), "-o", str(tmp_path / "p90.nc"), *options, cwd=tmp_path)
    findings = cfchecks(tmp_path / "p90.nc")
    assert findings and all(f.endswith("Invalid cell_method: percentile") for f in findings), findings
