"""Memory sizes and walltimes as users write them, read one way for every kind of cluster."""

from __future__ import annotations

import re
from fractions import Fraction

#: The least memory a dask worker process running oceanflow can work with, in bytes: Python,
#: distributed, numba and the compiled kernels take about 250 MiB, and dask pauses a worker
#: at 80 % of its limit (measured with tests/cluster_workloads.py: 300 MiB hung, 400 MiB ran).
MIN_WORKER_MEMORY = 512 * 2**20

_PREFIXES = "kmgtp"
#: Units as dask.utils.parse_bytes reads them, lower case: decimal "gb", binary "gib" and "gi".
_UNITS = {
    "b": 1,
    **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate(_PREFIXES)},
    **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate(_PREFIXES)},
    **{f"{p}i": 1024 ** (i + 1) for i, p in enumerate(_PREFIXES)},
}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)")


def parse_memory(value: str | int) -> int:
    """Bytes from a memory size, read as ``dask.utils.parse_bytes`` reads it.

    Binary units (``KiB``, ``MiB``, ``GiB``, ``TiB``, also ``Gi``) count powers of
    1024, decimal units (``kB``, ``MB``, ``GB``, ``TB``) powers of 1000, an integer
    counts bytes.  ``"4G"`` and a bare ``"4096"`` are refused: dask reads them as
    4 * 10**9 and 4096 bytes, SLURM and PBS as 4 * 2**30 and 4096 * 2**20.

    >>> parse_memory("4GiB"), parse_memory("2GB"), parse_memory("512 MiB"), parse_memory(1024)
    (4294967296, 2000000000, 536870912, 1024)
    >>> parse_memory("4G")
    Traceback (most recent call last):
    ...
    ValueError: memory '4G' is ambiguous: dask reads G as 10**9 bytes, SLURM and PBS as 2**30; write '4GiB' (2**30) or '4GB' (10**9)
    """  # noqa: E501
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"memory {value!r} is not a size: write e.g. '4GiB'")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"memory {value!r} is malformed: write a number and a unit, e.g. '4GiB' or '2GB'")
        number, unit = match.group(1), match.group(2).lower()
        if unit == "" or unit in _PREFIXES:
            raise ValueError(_ambiguous(value, number, unit))
        if unit not in _UNITS:
            raise ValueError(
                f"memory {value!r} has an unknown unit {match.group(2)!r}: use B, KiB, MiB, GiB, TiB or kB, MB, GB, TB"
            )
        size = int(Fraction(number) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"memory {value!r} must be more than zero, e.g. '4GiB'")
    return size


def _ambiguous(value: str, number: str, prefix: str) -> str:
    if not prefix:
        return (
            f"memory {value!r} is ambiguous: dask reads a bare number as bytes, SLURM and PBS as megabytes; "
            f"write '{number}MiB', or an integer number of bytes"
        )
    power = _PREFIXES.index(prefix) + 1
    letter = prefix.upper()
    return (
        f"memory {value!r} is ambiguous: dask reads {letter} as 10**{3 * power} bytes, SLURM and PBS as "
        f"2**{10 * power}; write '{number}{letter}iB' (2**{10 * power}) or '{number}{letter}B' (10**{3 * power})"
    )


def format_memory(size: int) -> str:
    """``size`` bytes exactly, in the largest unit that divides it (binary first), for dask.

    >>> format_memory(3 * 2**30), format_memory(2 * 10**9), format_memory(1000000001)
    ('3GiB', '2GB', '1000000001')
    """
    for unit in ("PiB", "PB", "TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "kB"):
        factor = _UNITS[unit.lower()]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def check_worker_memory(size: int, where: str) -> None:
    """Refuse less memory per worker process than :data:`MIN_WORKER_MEMORY`.

    ``where`` says how ``size`` came about, e.g. ``"memory='1GiB' per job / processes=4"``.
    """
    if size < MIN_WORKER_MEMORY:
        raise ValueError(
            f"{where} gives each dask worker {format_memory(size)}, below the {MIN_WORKER_MEMORY // 2**20}MiB "
            "a worker running oceanflow needs (Python, dask and numba take about 250 MiB, and dask pauses a "
            "worker at 80 % of its limit): ask for more memory per worker"
        )


def parse_walltime(value: str) -> int:
    """Seconds from a walltime ``"HH:MM:SS"`` (hours may exceed 24) or ``"D-HH:MM:SS"``.

    >>> parse_walltime("01:30:00"), parse_walltime("2-00:00:00")
    (5400, 172800)
    """
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)", str(value).strip())
    if match is None:
        raise ValueError(
            f"walltime {value!r} is malformed: write 'HH:MM:SS' (hours may exceed 24) or 'D-HH:MM:SS', e.g. '01:30:00'"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"walltime {value!r} must be longer than zero, e.g. '01:00:00'")
    return total


def lifetime(walltime_seconds: int) -> tuple[int, int]:
    """``(lifetime, stagger)`` in seconds for adaptive workers of a job with this walltime.

    The stagger is 5 % of the walltime (at most 5 minutes) and the lifetime the
    walltime less three staggers: the last worker leaves a stagger before the
    batch system would kill it.

    >>> lifetime(3600)
    (3060, 180)
    """
    stagger = max(1, min(300, walltime_seconds // 20))
    return walltime_seconds - 3 * stagger, stagger
