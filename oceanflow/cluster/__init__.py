"""Start a dask cluster for oceanflow: on this machine, over SSH, or on a batch system.

:func:`start` is the one switch; ``docs/hpc.md`` describes the kinds, profiles,
units and errors, ``oceanflow.yaml`` beside this module the shipped profiles.

>>> with oceanflow.cluster.start("slurm", jobs=4, memory="16GiB") as client:  # doctest: +SKIP
...     clim = oceanflow.climatology(sst).compute()
"""

from .api import job_script, start
from .base import ClusterStartError
from .batch import BatchSystem
from .config import profiles, resolve
from .kinds import BATCH_SYSTEMS, KINDS
from .units import MIN_WORKER_MEMORY, lifetime, parse_memory, parse_walltime

__all__ = [
    "BATCH_SYSTEMS",
    "KINDS",
    "MIN_WORKER_MEMORY",
    "BatchSystem",
    "ClusterStartError",
    "job_script",
    "lifetime",
    "parse_memory",
    "parse_walltime",
    "profiles",
    "resolve",
    "start",
]
