"""PBS: the memory in ``-l select=...:mem=`` exact."""

from __future__ import annotations

from typing import Any

from .batch import BatchSystem


def pbs_memory(size: int) -> str:
    """``mem=`` for ``size`` bytes, exactly: PBS reads kb, mb, gb as 2**10, 2**20, 2**30 bytes.

    dask-jobqueue rounds up to whole MiB, or whole GiB from 10 GiB (12GB would ask for 12 GiB: 7 % more).

    >>> pbs_memory(6 * 2**30), pbs_memory(2 * 10**9), pbs_memory(10**9 + 1)
    ('6gb', '1953125kb', '1000000001b')
    """
    for unit, factor in (("gb", 2**30), ("mb", 2**20), ("kb", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


class PBS(BatchSystem):
    name = "PBS"
    jobqueue_class = "PBSCluster"

    @classmethod
    def memory_directives(cls, job_bytes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        # dask-jobqueue's default resource_spec, with the memory exact
        return {"resource_spec": f"select=1:ncpus={kwargs.get('cores') or 1}:mem={pbs_memory(job_bytes)}"}
