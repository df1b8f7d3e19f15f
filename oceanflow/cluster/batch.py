"""The generic batch cluster: dask-jobqueue's cluster for one batch system, watched until its
workers arrive and its jobs until they are gone.

A batch system is a subclass of :class:`BatchSystem` in a module of its own
(``slurm.py``, ``pbs.py``, ``sge.py``, ``lsf.py``) that names its dask-jobqueue
class and overrides the hooks its system needs, as dask-jobqueue's ``SLURMJob``
does for its ``Job``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar

from .base import OWN_SETTINGS, ClusterStartError, Kind, Settings, wait_for_workers
from .units import check_worker_memory, format_memory, lifetime, parse_memory, parse_walltime

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("oceanflow.cluster")


class BatchSystem(Kind):
    """Worker jobs on a batch system; ``memory`` and ``cores`` are per job, shared by its ``processes``.

    Subclasses set :attr:`name` and :attr:`jobqueue_class` and override the
    hooks below that their system needs; the defaults suit a system about which
    nothing more is known than dask-jobqueue knows.
    """

    #: The batch system's name in messages, e.g. ``"SLURM"``.
    name: ClassVar[str] = "batch"
    #: Its cluster class in ``dask_jobqueue``, e.g. ``"SLURMCluster"``.
    jobqueue_class: ClassVar[str] = ""
    default_timeout = 300.0

    # ------------------------------------------------------------ hooks for one batch system

    @staticmethod
    def walltime(seconds: int) -> str:
        """The walltime as the system's directive wants it (default ``HH:MM:SS``)."""
        hours, rest = divmod(seconds, 3600)
        return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"

    @classmethod
    def memory_directives(cls, job_bytes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Job-class keyword arguments that request exactly ``job_bytes`` from the system
        (default: none, dask-jobqueue's own conversion)."""
        return {}

    def preflight(self, script: str) -> None:
        """Raise :class:`ClusterStartError` if the system says this job could never run."""

    def check_jobs(self, job_ids: list[str]) -> None:
        """Raise :class:`ClusterStartError` if a submitted job will never bring its worker."""

    def describe_jobs(self, job_ids: list[str]) -> str:
        """The jobs' states, for a message."""
        return f"job ids {job_ids}"

    def wait_gone(self, job_ids: list[str]) -> None:
        """Return once the system has forgotten the (cancelled) jobs."""

    # ------------------------------------------------------------ shared by every batch system

    @classmethod
    def check(cls, settings: Settings) -> None:
        cores, processes = settings.get("cores"), settings.get("processes")
        processes = 1 if processes is None else processes
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"cluster setting processes={processes!r} must be a whole number >= 1 (per job)")
        if cores and cores % processes:
            raise ValueError(
                f"cores={cores} is not a multiple of processes={processes}: each worker "
                "process gets cores / processes threads"
            )
        if settings.get("memory") is not None:
            check_worker_memory(
                parse_memory(settings["memory"]) // processes,
                f"memory={settings['memory']!r} per job / processes={processes}",
            )

    @classmethod
    def cluster_kwargs(cls, settings: Settings) -> dict[str, Any]:
        """Keyword arguments for dask-jobqueue's cluster class (and its job class)."""
        kwargs = {k: v for k, v in settings.items() if k not in OWN_SETTINGS and v is not None}
        if "memory" in kwargs:
            job_bytes = parse_memory(kwargs["memory"])
            kwargs["memory"] = format_memory(job_bytes)  # exact, as dask reads it
            kwargs = {**cls.memory_directives(job_bytes, kwargs), **kwargs}  # the user's own directives win
        extra = list(kwargs.pop("worker_extra_args", []) or [])
        if "walltime" in kwargs:
            seconds = parse_walltime(kwargs["walltime"])
            kwargs["walltime"] = cls.walltime(seconds)
            if settings.get("maximum") is not None and "--lifetime" not in extra:
                life, stagger = lifetime(seconds)
                extra += ["--lifetime", f"{life}s", "--lifetime-stagger", f"{stagger}s"]
        kwargs["worker_extra_args"] = extra
        # exec: the job ends when its worker does, so an empty queue means no worker is left
        kwargs["python"] = f"exec {kwargs.get('python') or sys.executable}"
        return kwargs

    @classmethod
    def cluster_class(cls) -> Any:
        import dask_jobqueue

        return getattr(dask_jobqueue, cls.jobqueue_class)

    @classmethod
    def job_class(cls) -> Any:
        return _watched(cls.cluster_class().job_cls)

    @classmethod
    def script(cls, settings: Settings) -> str:
        """The batch script of one worker job; the scheduler address is a placeholder."""
        kwargs = cls.cluster_kwargs(settings)
        kwargs.pop("scheduler_options", None)
        return cls.job_class()("tcp://<scheduler-address>:8786", name="dask-worker", **kwargs).job_script()

    @classmethod
    def start(cls, settings: Settings, stack: contextlib.ExitStack) -> Client:
        from distributed import Client

        batch = cls(settings)
        stack.callback(batch.close)
        client = stack.enter_context(Client(batch.cluster))
        started = time.monotonic()
        jobs = batch.scale()
        wanted = jobs * batch.processes if settings.get("wait") is None else settings["wait"]
        wait_for_workers(
            client, wanted, cls.timeout(settings), check=lambda: batch.watch(jobs), describe=batch.timeout_message
        )
        logger.info("%d %s worker(s) arrived %.1f s after scaling", wanted, cls.name, time.monotonic() - started)
        return client

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        kwargs = self.cluster_kwargs(settings)
        kwargs["scheduler_options"] = {"dashboard_address": ":8787", **(kwargs.get("scheduler_options") or {})}
        self.preflight(self.script(settings))
        self.processes: int = kwargs.get("processes") or 1
        self.log_directory: str | None = kwargs.get("log_directory")
        self.cluster = self.cluster_class()(job_cls=self.job_class(), **kwargs)

    def job_ids(self) -> list[str]:
        return [w.job_id for w in list(self.cluster.workers.values()) if getattr(w, "job_id", None)]

    def scale(self) -> int:
        """Ask for the jobs (or adaptive scaling); return the jobs to wait for."""
        s = self.settings
        if s.get("maximum") is not None:
            self.cluster.adapt(minimum_jobs=s.get("minimum") or 0, maximum_jobs=s["maximum"])
            return s.get("minimum") or 0
        jobs = 1 if s.get("jobs") is None else s["jobs"]
        self.cluster.scale(jobs=jobs)
        return jobs

    def watch(self, expected_jobs: int) -> None:
        """Raise if a submission failed, or a job can never bring its worker."""
        for worker in list(self.cluster.workers.values()):
            if worker.submit_error is not None:
                raise ClusterStartError(
                    f"the {self.name} batch system rejected the worker job:\n{worker.submit_error}\n"
                    "Fix the profile (memory, cores, walltime, queue, account) or preview it with job_script()."
                )
        ids = self.job_ids()
        if len(ids) >= expected_jobs:  # else submissions are still on their way
            self.check_jobs(ids)

    def timeout_message(self, wanted: int, arrived: int, timeout: float) -> str:
        return (
            f"{arrived} of {wanted} dask worker(s) arrived within {timeout} s on {self.name}: "
            f"{self.describe_jobs(self.job_ids())}. A busy queue: raise timeout= (seconds) or pass wait=0 "
            "to go on without waiting."
        )

    def close(self) -> None:
        ids = self.job_ids()
        self.cluster.close()
        self.wait_gone(ids)


@functools.cache
def _watched(job_cls: type) -> type:
    """``job_cls`` keeping the error of a rejected submission (dask-jobqueue only logs it),
    with each worker's memory limit exactly its share of the job's memory."""

    class Watched(job_cls):
        submit_error: BaseException | None = None

        async def start(self) -> None:
            try:
                await super().start()
            except Exception as error:
                from distributed.core import Status

                self.submit_error = error
                self.status = Status.failed  # else closing the cluster asserts on it
                raise

        @property
        def worker_process_memory(self) -> str:
            # dask-jobqueue rounds to two decimals ("1.86GiB" for 2GB), sometimes above the job's share
            return format_memory(self.worker_memory // self.worker_processes)

    Watched.__name__ = Watched.__qualname__ = job_cls.__name__
    return Watched
