"""LSF: walltime as ``HH:MM`` and ``-M`` in binary units."""

from __future__ import annotations

import math
from typing import Any

import dask.config

from .batch import BatchSystem


class LSF(BatchSystem):
    name = "LSF"
    jobqueue_class = "LSFCluster"

    @staticmethod
    def walltime(seconds: int) -> str:
        """``bsub -W [hours:]minutes``, rounded up to a minute."""
        hours, rest = divmod(seconds, 3600)
        return f"{hours:02d}:{math.ceil(rest / 60):02d}"

    @classmethod
    def memory_directives(cls, job_bytes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``-M`` in LSF_UNIT_FOR_LIMITS, whose KB, MB, GB are 2**10, 2**20, 2**30 bytes.

        dask-jobqueue divides by 1000**k (4GiB in MB units would ask for 4295: 5 % more); handing it
        the count of binary units times 1000**k makes it write that count.
        """
        from dask_jobqueue.lsf import lsf_detect_units

        units = kwargs.get("lsf_units") or dask.config.get("jobqueue.lsf.lsf-units", None) or lsf_detect_units()
        power = "kmgtpez".index(units.lower()[0]) + 1
        return {"lsf_units": units, "mem": math.ceil(job_bytes / 1024**power) * 1000**power}
