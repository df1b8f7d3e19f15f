"""SLURM: ``--mem`` to the MiB, ``sbatch --test-only`` before submitting, and ``squeue`` states in every error."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import time
from typing import Any

from .base import ClusterStartError
from .batch import BatchSystem

logger = logging.getLogger("oceanflow.cluster")

#: Reasons for a pending job that never clear by waiting.
NEVER = {
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "ReqNodeNotAvail",
    "JobHeldAdmin",
    "JobHeldUser",
    "DependencyNeverSatisfied",
    "PartitionDown",
    "PartitionInactive",
    "InactiveLimit",
    "AssocGrpMemLimit",
    "QOSMaxMemoryPerJob",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
}

#: States of a job that has ended (or is ending): its worker is not coming.
ENDED = {
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "COMPLETED",
    "REVOKED",
}


def slurm_memory(size: int) -> str:
    """``--mem`` for ``size`` bytes: SLURM reads M and G as 2**20 and 2**30 bytes and keeps memory
    in whole MiB (it rounds ``--mem=1464844K`` up to 1431M), so ``size`` rounded up to a MiB.

    dask-jobqueue rounds up to whole GiB from 1 GiB (2GB, 2 * 10**9 bytes, would ask for 2G: 7 % more).

    >>> slurm_memory(6 * 2**30), slurm_memory(1536 * 2**20), slurm_memory(2 * 10**9), slurm_memory(1)
    ('6G', '1536M', '1908M', '1M')
    """
    if size % 2**30 == 0:
        return f"{size // 2**30}G"
    return f"{math.ceil(size / 2**20)}M"


class SLURM(BatchSystem):
    name = "SLURM"
    jobqueue_class = "SLURMCluster"

    @classmethod
    def memory_directives(cls, job_bytes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"job_mem": slurm_memory(job_bytes)}

    def preflight(self, script: str) -> None:
        """``sbatch --test-only``: SLURM says whether the job could ever run, submitting nothing."""
        result = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            asked = " ".join(line[len("#SBATCH ") :] for line in script.splitlines() if line.startswith("#SBATCH "))
            raise ClusterStartError(
                "SLURM refuses the worker job (sbatch --test-only): "
                + " ".join(result.stderr.split())
                + f"\nThe job asked for: {asked}. Fix the profile (memory per job, cores, walltime, queue); "
                "job_script() shows the whole script."
            )

    def check_jobs(self, job_ids: list[str]) -> None:
        states = squeue(job_ids)
        for job_id in job_ids:
            state, reason = states.get(job_id, ("ENDED", "left the queue"))
            if (state == "PENDING" and reason in NEVER) or state in ENDED | {"ENDED"}:
                raise ClusterStartError(
                    f"SLURM job {job_id} is {state} ({reason}) and will never bring its dask worker; "
                    f"all jobs: {self.describe_jobs(job_ids)}. The job's output is in {self._output(job_id)}."
                )

    def describe_jobs(self, job_ids: list[str]) -> str:
        states = squeue(job_ids)
        described = (
            f"job {j} {states[j][0]} ({states[j][1]})" if j in states else f"job {j} no longer queued" for j in job_ids
        )
        return ", ".join(described) or "no job submitted"

    def wait_gone(self, job_ids: list[str], timeout: float = 60.0) -> None:
        """Wait until ``squeue`` lists none of the jobs (they may be completing); cancel stragglers."""
        deadline = time.monotonic() + timeout
        while job_ids and squeue(job_ids):
            if time.monotonic() > deadline:
                subprocess.run(["scancel", *job_ids], capture_output=True)
                logger.warning("SLURM jobs %s still queued %.0f s after closing; cancelled again", job_ids, timeout)
                return
            time.sleep(0.2)

    def _output(self, job_id: str) -> str:
        if self.log_directory:
            return f"{self.log_directory}/*-{job_id}.err"
        return f"slurm-{job_id}.out in the submitting directory"


def squeue(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job_id: (state, reason)}`` for those of ``job_ids`` that ``squeue`` still lists."""
    if not job_ids:
        return {}
    result = subprocess.run(
        ["squeue", "-h", "-o", "%i|%T|%r", "-u", str(os.getuid())], capture_output=True, text=True, timeout=60
    )
    states = {}
    for line in result.stdout.splitlines():
        job_id, state, reason = (line.split("|") + ["", ""])[:3]
        if job_id in job_ids:
            states[job_id] = (state, reason)
    return states
