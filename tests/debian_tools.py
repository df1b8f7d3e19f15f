"""Command-line tools from Debian's packages (CDO, NCO, netCDF-C utilities) for oracle tests.

A test that compares with a tool calls :func:`require` with the programs it
needs: missing ones are installed with apt-get (as the SLURM tests install
slurm-wlm), and the test is skipped only where that is impossible (no
apt-get, not root, no package registry).

Example
-------
>>> cdo = require("cdo")  # doctest: +SKIP
>>> subprocess.run([cdo, "sinfon", "clim.nc"], check=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

#: Debian package of each program the tests use.
PACKAGES = {
    "cdo": "cdo",
    "ncks": "nco",
    "ncdump": "netcdf-bin",
    "nccopy": "netcdf-bin",
    "h5dump": "hdf5-tools",
    "udunits2": "udunits-bin",  # UDUNITS-2, which cfchecker loads
    "fincore": "util-linux",  # pages of a file in the page cache
    "findmnt": "util-linux",
}

_FAILED: dict[str, str] = {}


def require(*programs: str) -> str | tuple[str, ...]:
    """The paths of ``programs``, installed when missing; skips the test when that cannot be done."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        reason = _install(sorted({PACKAGES[p] for p in missing}))
        if reason:
            pytest.skip(reason)
    paths = tuple(shutil.which(p) for p in programs)
    return paths[0] if len(paths) == 1 else paths


def _install(packages: list[str]) -> str | None:
    """apt-get install ``packages``; the reason it could not, or None."""
    key = " ".join(packages)
    if key in _FAILED:
        return _FAILED[key]
    if shutil.which("apt-get") is None:
        reason = f"{key} not installed and there is no apt-get to install it"
    elif os.geteuid() != 0:
        reason = f"{key} not installed and installing it needs root"
    else:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
        reason = None if done.returncode == 0 else f"apt-get install {key} failed: {done.stderr.strip()[-300:]}"
    if reason:
        _FAILED[key] = reason
    return reason
