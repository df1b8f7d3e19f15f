"""oceanflow._memory: blocks freed by oceanflow's tasks are given back to the system (glibc)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"),
    reason="glibc's mallopt only",
)

# Blocks of 30 MiB (oceanflow's chunks grow to 32 MiB, glibc's largest adaptive mmap threshold), allocated
# in turn by two threads as dask's would be; the resident memory after they are freed, against before.
_PROBE = """
import threading, numpy as np, oceanflow

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

def blocks():
    for _ in range(8):
        block = np.ones(30 << 20, np.uint8)
        del block

before = rss()
for _ in range(2):
    threads = [threading.Thread(target=blocks) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
print(rss() - before)
"""


def _kept_mib(env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


@glibc
def test_freed_blocks_are_given_back():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _kept_mib(env) < 8  # glibc's own thresholds keep 32 MiB (or more) per heap


@glibc
def test_the_environment_wins():
    from oceanflow import _memory

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = "import oceanflow, oceanflow._memory as m; print(m.return_freed_blocks())"
    said = subprocess.run(
        [sys.executable, "-c", code], env={**env, "MALLOC_TRIM_THRESHOLD_": "65536"}, capture_output=True, text=True
    )
    assert said.stdout.split()[-1] == "False"  # the user's (or distributed's nanny's) choice kept
    assert _memory.return_freed_blocks() in (True, False)
