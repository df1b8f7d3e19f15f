"""SGE (Grid Engine): nothing beyond dask-jobqueue's ``SGECluster``; memory directives are
site-specific (``resource_spec="h_vmem=..."``), the workers' limits are exact."""

from __future__ import annotations

from .batch import BatchSystem


class SGE(BatchSystem):
    name = "SGE"
    jobqueue_class = "SGECluster"
