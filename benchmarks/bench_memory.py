"""What fresh memory costs on this machine, to read the other benchmarks by.

Fills a new 256 MiB array several times in one process: the first fill pays
for the pages the process gets from the operating system; later fills get
pages freed a moment before.  On bare metal the first fill costs ~0.25 s/GB
more than the others; on a VM whose host backs guest memory lazily it can
cost several times that, which weighs on every case that allocates more
than its floor.

Usage::

    python benchmarks/bench_memory.py --repeat 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

MIB = 2**20


def fill_seconds(nbytes: int, repeat: int) -> list[float]:
    """Seconds to allocate and fill ``nbytes`` with ones, ``repeat`` times in a row."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        block = np.ones(nbytes // 8)
        seconds.append(time.perf_counter() - start)
        del block
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    seconds = fill_seconds(args.mib * MIB, max(2, args.repeat))
    gib = args.mib / 1024
    print(
        f"fill {args.mib} MiB: first {seconds[0]:.3f} s ({seconds[0] / gib:.2f} s/GiB), "
        f"then {min(seconds[1:]):.3f} s ({min(seconds[1:]) / gib:.2f} s/GiB)"
    )


if __name__ == "__main__":
    main()
