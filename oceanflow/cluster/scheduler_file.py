"""``kind="scheduler_file"``: join a running cluster (dask-mpi, a batch script) through its scheduler file."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .base import ClusterStartError, Kind, Settings, wait_for_workers

if TYPE_CHECKING:
    from distributed import Client


class SchedulerFile(Kind):
    """``scheduler_file=PATH``, waited for up to ``timeout`` seconds; the cluster is left running on exit."""

    default_timeout = 300.0

    @classmethod
    def start(cls, settings: Settings, stack: contextlib.ExitStack) -> Client:
        from distributed import Client

        path = Path(os.path.expanduser(str(settings.get("scheduler_file") or "")))
        timeout = cls.timeout(settings)
        deadline = time.monotonic() + timeout
        while not path.is_file():
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"no scheduler file {str(path)!r} appeared within {timeout} s: start the "
                    "scheduler first (dask-mpi, or `dask scheduler --scheduler-file PATH`)"
                )
            time.sleep(0.2)
        client = stack.enter_context(Client(scheduler_file=str(path), timeout=timeout))
        wait_for_workers(client, 1 if settings.get("wait") is None else settings["wait"], timeout)
        return client
