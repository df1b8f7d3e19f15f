"""The ``OCEANFLOW_*`` switches: one set of values for every variable, the rest refused naming it.

Oracle: the table of values docs/install.rst documents, written out here, and the sources' own list of the
variables they read.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from oceanflow.io.uncached import direct_writes_switched_on
from oceanflow.kernels import cache_enabled

ROOT = Path(__file__).resolve().parents[1]
READERS = {"OCEANFLOW_NUMBA_CACHE": cache_enabled, "OCEANFLOW_NETCDF_DIRECT": direct_writes_switched_on}
DOCUMENTED = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False}
DOCUMENTED |= {"off": False, "": True, " Off ": False, "TRUE": True, " 0 ": False, "No": False}


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.parametrize(("value", "on"), sorted(DOCUMENTED.items()))
def test_every_switch_reads_the_same_values(monkeypatch, name, value, on):
    monkeypatch.setenv(name, value)
    assert READERS[name]() is on


@pytest.mark.parametrize("name", sorted(READERS))
def test_an_unset_switch_is_on(monkeypatch, name):
    monkeypatch.delenv(name, raising=False)
    assert READERS[name]() is True


@pytest.mark.parametrize("name", sorted(READERS))
@pytest.mark.parametrize("value", ["maybe", "2", "offf", "disable"])
def test_every_switch_refuses_a_value_not_understood_naming_it_and_the_values(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rf"{name}='{value}' is not understood: set it to 0 \(or false, no, off\)"):
        READERS[name]()


_KERNEL_CALL = """
import numpy as np, oceanflow
try:
    oceanflow.polyval(np.arange(3.0), [1.0, 0.0])
except ValueError as error:
    print("refused:", error)
"""


def test_a_numba_cache_value_not_understood_is_refused_at_the_first_kernel_not_at_import():
    """Read at import (as the helpers are declared) it must not fail; the first kernel compiled refuses it."""
    env = {**os.environ, "OCEANFLOW_NUMBA_CACHE": "maybe"}
    run = subprocess.run([sys.executable, "-c", _KERNEL_CALL], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("refused: OCEANFLOW_NUMBA_CACHE='maybe' is not understood"), run


_NETCDF_SAVE = """
import os, sys, numpy as np, xarray as xr, oceanflow
ds = xr.Dataset({"sst": (("time", "lat"), np.arange(400.0, dtype="f4").reshape(40, 10))}).chunk({"time": 20})
try:
    oceanflow.save(ds, os.path.join(sys.argv[1], "out.nc"), progress=False)
except ValueError as error:
    print("refused:", error)
print("left:", sorted(os.listdir(sys.argv[1])))
"""


def test_a_numba_cache_value_not_understood_is_refused_by_a_netcdf_save(tmp_path):
    """The deflate helpers, numba functions a save calls directly (not through a kernel), were left uncached."""
    env = {**os.environ, "OCEANFLOW_NUMBA_CACHE": "maybe"}
    command = [sys.executable, "-c", _NETCDF_SAVE, str(tmp_path)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("refused: OCEANFLOW_NUMBA_CACHE='maybe' is not understood"), run
    assert run.stdout.splitlines()[-1] == "left: []", run


def test_the_installation_guide_lists_every_variable_the_sources_read():
    read = set()
    for source in (ROOT / "oceanflow").rglob("*.py"):
        read |= set(re.findall(r"\"(OCEANFLOW_[A-Z_]+)\"", source.read_text()))
    assert read >= set(READERS), read
    guide = (ROOT / "docs" / "install.rst").read_text()
    assert {name for name in read if f"``{name}``" not in guide} == set()
