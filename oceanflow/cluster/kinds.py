"""The kinds of cluster :func:`oceanflow.cluster.start` knows, one row each.

Adding a batch system: a module beside this one with a :class:`~.batch.BatchSystem`
subclass, and its row in :data:`BATCH_SYSTEMS`.
"""

from __future__ import annotations

from .base import Kind
from .batch import BatchSystem
from .local import Local
from .lsf import LSF
from .pbs import PBS
from .scheduler_file import SchedulerFile
from .sge import SGE
from .slurm import SLURM
from .ssh import SSH

#: Batch systems, each a dask-jobqueue cluster; their profiles start from ``batch-defaults`` in oceanflow.yaml.
BATCH_SYSTEMS: dict[str, type[BatchSystem]] = {"slurm": SLURM, "pbs": PBS, "sge": SGE, "lsf": LSF}

#: Every kind and what checks and starts it.
STARTERS: dict[str, type[Kind]] = {"local": Local, **BATCH_SYSTEMS, "ssh": SSH, "scheduler_file": SchedulerFile}

#: The kinds of cluster :func:`oceanflow.cluster.start` knows.
KINDS: tuple[str, ...] = tuple(STARTERS)
