"""Start a dask cluster for oceanflow: on this machine, over SSH, or on a batch system.

The same oceanflow graph runs on threads, on a local cluster or on hundreds of
batch-queue nodes; :func:`start` is the one switch::

    import oceanflow
    with oceanflow.cluster.start("slurm", jobs=4, memory="16GiB", walltime="02:00:00") as client:
        clim = oceanflow.climatology(oceanflow.open_dataset("sst_*.nc").sst).compute()

Kinds (:data:`KINDS`): ``local`` (a ``LocalCluster`` sized from this machine),
``slurm``, ``pbs``, ``sge``, ``lsf`` (dask-jobqueue's clusters), ``ssh``
(``SSHCluster``) and ``scheduler_file`` (join a running cluster, e.g. one
started by dask-mpi; it is left running on exit).

Profiles are named settings, shipped in ``oceanflow/oceanflow.yaml`` and merged
with ``~/.config/dask/oceanflow.yaml`` through ``dask.config`` (as
dask-jobqueue does with ``jobqueue.yaml``); :func:`profiles` lists them.  A
profile of your own names its ``kind`` and inherits what it leaves out from the
profile of that kind; keyword arguments to :func:`start` override both::

    # ~/.config/dask/oceanflow.yaml
    oceanflow:
      cluster:
        profiles:
          big:
            kind: slurm
            queue: compute
            cores: 32
            processes: 4
            memory: 120GiB
            walltime: "04:00:00"
            minimum: 1
            maximum: 20

Units, one convention: **memory in binary units**, as
``dask.utils.parse_bytes("4GiB")`` reads them (``KiB``, ``MiB``, ``GiB``,
``TiB``, or an integer number of bytes); ``"4GB"`` and ``"4G"`` are refused as
ambiguous, because dask reads ``GB`` as 10**9 bytes and batch systems read it
as 2**30.  Memory is per job for batch kinds, per worker for ``local`` and
``ssh``.  **Walltime** is ``"HH:MM:SS"`` (hours may exceed 24) or
``"D-HH:MM:SS"``; **timeout** is in seconds.

Adaptive scaling: give ``maximum`` (and ``minimum``), in jobs for batch kinds,
in workers for ``local``.  Adaptive batch workers then get ``--lifetime``
shorter than the walltime, with ``--lifetime-stagger``, so they leave
gracefully, one at a time, and are replaced before the batch system kills them.

Failures are reported, never waited on silently: an unknown kind, malformed
memory or walltime raise :class:`ValueError` before anything is submitted;
SLURM profiles are checked with ``sbatch --test-only`` first (memory or cores
the nodes cannot provide, a bad walltime or partition); a rejected
submission, a job pending for a reason that can never clear
(``PartitionConfig`` ...), a job that ends before its worker connects, and
workers that do not arrive within ``timeout`` raise :class:`ClusterStartError`
naming the jobs' states and reasons.

Batch mode, one SLURM job running a whole oceanflow script: see
``docs/hpc.md``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dask.config
import yaml

__all__ = ["KINDS", "ClusterStartError", "job_script", "parse_memory", "parse_walltime", "profiles", "start"]

logger = logging.getLogger("oceanflow.cluster")

#: The kinds of cluster :func:`start` knows.
KINDS = ("local", "slurm", "pbs", "sge", "lsf", "ssh", "scheduler_file")

#: Batch kinds and their dask-jobqueue cluster classes.
_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}

#: Settings oceanflow interprets itself; everything else goes to the cluster class.
_OWN = {"kind", "jobs", "workers", "minimum", "maximum", "wait", "timeout"}

#: SLURM reasons for a pending job that never clear by waiting.
SLURM_NEVER = {
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

_SLURM_ENDED = {
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

_CONFIG_FILE = Path(__file__).with_name("oceanflow.yaml")


class ClusterStartError(RuntimeError):
    """Workers could not be started: the message says which jobs, in what state and why."""


def _register_defaults() -> None:
    """Ship ``oceanflow.yaml`` as dask.config defaults, as dask-jobqueue ships ``jobqueue.yaml``."""
    dask.config.ensure_file(source=str(_CONFIG_FILE))
    with open(_CONFIG_FILE) as f:
        dask.config.update_defaults(yaml.safe_load(f))


_register_defaults()


# ------------------------------------------------------------------ settings


def profiles() -> dict[str, dict]:
    """The named cluster profiles: shipped defaults merged with the user's
    ``~/.config/dask/oceanflow.yaml`` (any dask config path or ``DASK_CONFIG``).

    Keys are returned with underscores (``log_directory``), whichever spelling
    the YAML used.

    >>> profiles()["slurm"]["memory"]
    '4GiB'
    """
    found = dask.config.get("oceanflow.cluster.profiles", default=None) or {}
    return {
        str(name): {str(k).replace("-", "_"): v for k, v in (settings or {}).items()}
        for name, settings in found.items()
    }


def parse_memory(value) -> int:
    """Bytes from a memory setting in oceanflow's one convention: binary units.

    >>> parse_memory("4GiB"), parse_memory("512 MiB"), parse_memory(1024)
    (4294967296, 536870912, 1024)
    >>> parse_memory("4GB")
    Traceback (most recent call last):
    ...
    ValueError: memory '4GB' is ambiguous: dask reads GB as 10**9 bytes, batch systems as 2**30; write '4GiB' (oceanflow's convention: binary units KiB, MiB, GiB, TiB, as dask.utils.parse_bytes('4GiB') reads them)
    """  # noqa: E501
    if isinstance(value, bool):
        raise ValueError(f"memory {value!r} is not a size: write e.g. '4GiB'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"memory {value!r} must be a positive number of bytes, e.g. '4GiB'")
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([KMGTP]i?B?|[kmgtp]i?b?)?", text)
    if match is None:
        raise ValueError(f"memory {value!r} is malformed: write a number and a binary unit, e.g. '4GiB' or '512MiB'")
    number, unit = match.groups()
    if not unit or not unit.lower().endswith("ib"):
        suggestion = f"{number}{(unit or 'G')[0].upper()}iB"
        raise ValueError(
            f"memory {value!r} is ambiguous: dask reads {unit or 'a bare number'} as "
            f"{'10**9 bytes, batch systems as 2**30' if unit else 'bytes, batch systems as megabytes'}; "
            f"write {suggestion!r} (oceanflow's convention: binary units KiB, MiB, GiB, TiB, "
            "as dask.utils.parse_bytes('4GiB') reads them)"
        )
    power = "KMGTP".index(unit[0].upper()) + 1
    return int(float(number) * 1024**power)


def parse_walltime(value) -> int:
    """Seconds from a walltime ``"HH:MM:SS"`` or ``"D-HH:MM:SS"``.

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


def resolve(kind="local", *, profile=None, **overrides) -> tuple[str, dict]:
    """``(kind, settings)`` that :func:`start` would use, validated.

    ``kind`` may also name a profile (so a command line's ``--cluster NAME``
    takes either).  A profile's own ``kind`` wins over the default ``"local"``.
    """
    available = profiles()
    if profile is None and kind not in KINDS and kind in available:
        kind, profile = "local", kind
    named = {}
    if profile is not None:
        if profile not in available:
            raise ValueError(
                f"unknown cluster profile {profile!r}: the profiles are {sorted(available)} (shipped ones merged "
                "with ~/.config/dask/oceanflow.yaml); define it there under oceanflow.cluster.profiles"
            )
        named = available[profile]
        own_kind = named.get("kind", kind)
        if kind not in ("local", own_kind):
            raise ValueError(f"profile {profile!r} is of kind {own_kind!r}, not {kind!r}: pass one of them only")
        kind = own_kind
    if kind not in KINDS:
        raise ValueError(
            f"unknown cluster kind {kind!r}: choose one of {', '.join(KINDS)}, "
            f"or a profile name from oceanflow.cluster.profiles(): {', '.join(sorted(available))}"
        )
    overrides = {k.replace("-", "_"): v for k, v in overrides.items()}
    settings = {**available.get(kind, {}), **named, **overrides}
    settings.pop("kind", None)
    _validate(kind, settings)
    return kind, settings


def _validate(kind, s) -> None:
    if s.get("memory") is not None:
        parse_memory(s["memory"])
    if s.get("walltime") is not None:
        parse_walltime(s["walltime"])
    for key in ("jobs", "workers", "threads", "cores", "processes", "minimum", "maximum", "wait"):
        value = s.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"cluster setting {key}={value!r} must be a whole number >= 0")
    if s.get("maximum") is not None and (s.get("minimum") or 0) > s["maximum"]:
        raise ValueError(
            f"minimum={s['minimum']} exceeds maximum={s['maximum']}: adaptive scaling needs minimum <= maximum"
        )
    if kind in _JOBQUEUE and s.get("processes") and s.get("cores") and s["cores"] % s["processes"]:
        raise ValueError(
            f"cores={s['cores']} is not a multiple of processes={s['processes']}: each worker "
            "process gets cores / processes threads"
        )


# ------------------------------------------------------------------ batch jobs


def _jobqueue_class(kind):
    try:
        import dask_jobqueue
    except ImportError as error:  # pragma: no cover - a runtime dependency
        raise ImportError(f"kind {kind!r} needs dask-jobqueue: pip install dask-jobqueue") from error
    return getattr(dask_jobqueue, _JOBQUEUE[kind])


def _batch_walltime(kind, seconds) -> str:
    """The walltime as the batch system's directive wants it."""
    hours, rest = divmod(seconds, 3600)
    if kind == "lsf":  # bsub -W [hours:]minutes
        return f"{hours:02d}:{math.ceil(rest / 60):02d}"
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _jobqueue_kwargs(kind, s) -> dict:
    """Keyword arguments for dask-jobqueue's cluster class (and its Job class)."""
    kwargs = {k: v for k, v in s.items() if k not in _OWN and v is not None}
    if "memory" in kwargs:
        kwargs["memory"] = f"{parse_memory(kwargs['memory'])}B"
    extra = list(kwargs.pop("worker_extra_args", []) or [])
    if "walltime" in kwargs:
        seconds = parse_walltime(kwargs["walltime"])
        kwargs["walltime"] = _batch_walltime(kind, seconds)
        if s.get("maximum") is not None and "--lifetime" not in extra:
            life, stagger = lifetime(seconds)
            extra += ["--lifetime", f"{life}s", "--lifetime-stagger", f"{stagger}s"]
    kwargs["worker_extra_args"] = extra
    # exec: the job ends when its worker does, so an empty queue means no worker is left
    kwargs["python"] = f"exec {kwargs.get('python') or sys.executable}"
    return kwargs


def job_script(kind="slurm", *, profile=None, **overrides) -> str:
    """The batch script one worker job would submit, without submitting anything.

    Same arguments as :func:`start`; the scheduler address is a placeholder.

    >>> print(job_script("slurm", memory="8GiB", walltime="02:00:00"))  # doctest: +SKIP
    #!/usr/bin/env bash
    #SBATCH -J dask-worker
    #SBATCH -n 1
    #SBATCH --cpus-per-task=1
    #SBATCH --mem=8G
    #SBATCH -t 02:00:00
    ... -m distributed.cli.dask_worker tcp://<scheduler-address>:8786 --name dask-worker ...
    """
    kind, settings = resolve(kind, profile=profile, **overrides)
    if kind not in _JOBQUEUE:
        raise ValueError(f"job_script() previews batch jobs: kind must be one of {', '.join(_JOBQUEUE)}, not {kind!r}")
    kwargs = _jobqueue_kwargs(kind, settings)
    kwargs.pop("scheduler_options", None)
    job = _jobqueue_class(kind).job_cls("tcp://<scheduler-address>:8786", name="dask-worker", **kwargs)
    return job.job_script()


def _watched(job_cls):
    """``job_cls`` keeping the error of a rejected submission (dask-jobqueue only logs it)."""

    class Watched(job_cls):
        submit_error = None

        async def start(self):
            try:
                await super().start()
            except Exception as error:
                from distributed.core import Status

                self.submit_error = error
                self.status = Status.failed  # else closing the cluster asserts on it
                raise

    Watched.__name__ = Watched.__qualname__ = job_cls.__name__
    return Watched


def _slurm_preflight(script: str) -> None:
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


def _slurm_states(job_ids) -> dict:
    """``{job_id: (state, reason)}`` for those of ``job_ids`` still in ``squeue``."""
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


def _describe(states, job_ids) -> str:
    return (
        ", ".join(
            f"job {j} {states[j][0]} ({states[j][1]})" if j in states else f"job {j} no longer queued" for j in job_ids
        )
        or "no job submitted"
    )


class _Batch:
    """A dask-jobqueue cluster watched until its workers arrive, and its jobs until they are gone."""

    def __init__(self, kind, settings):
        self.kind = kind
        self.settings = settings
        kwargs = _jobqueue_kwargs(kind, settings)
        kwargs["scheduler_options"] = {"dashboard_address": ":8787", **(kwargs.get("scheduler_options") or {})}
        if kind == "slurm":
            _slurm_preflight(job_script(kind, **settings))
        cls = _jobqueue_class(kind)
        self.processes = kwargs.get("processes") or 1
        self.cluster = cls(job_cls=_watched(cls.job_cls), **kwargs)
        self.log_directory = kwargs.get("log_directory")

    def job_ids(self) -> list[str]:
        return [w.job_id for w in list(self.cluster.workers.values()) if getattr(w, "job_id", None)]

    def scale(self):
        s = self.settings
        if s.get("maximum") is not None:
            self.cluster.adapt(minimum_jobs=s.get("minimum") or 0, maximum_jobs=s["maximum"])
            jobs = s.get("minimum") or 0
        else:
            jobs = 1 if s.get("jobs") is None else s["jobs"]
            self.cluster.scale(jobs=jobs)
        return jobs * self.processes

    def check(self, expected_jobs) -> None:
        """Raise if a submission failed, or a job can never bring its worker."""
        for worker in list(self.cluster.workers.values()):
            if worker.submit_error is not None:
                raise ClusterStartError(
                    f"the {self.kind} batch system rejected the worker job:\n{worker.submit_error}\n"
                    "Fix the profile (memory, cores, walltime, queue, account) or preview it with job_script()."
                )
        if self.kind != "slurm":
            return
        ids = self.job_ids()
        if len(ids) < expected_jobs:  # submissions still on their way
            return
        states = _slurm_states(ids)
        for job_id in ids:
            state, reason = states.get(job_id, ("ENDED", "left the queue"))
            if (state == "PENDING" and reason in SLURM_NEVER) or state in _SLURM_ENDED | {"ENDED"}:
                raise ClusterStartError(
                    f"SLURM job {job_id} is {state} ({reason}) and will never bring its dask worker; "
                    f"all jobs: {_describe(states, ids)}. {self._log_hint(job_id)}"
                )

    def _log_hint(self, job_id) -> str:
        if self.kind != "slurm":
            return ""
        where = (
            f"{self.log_directory}/*-{job_id}.err"
            if self.log_directory
            else f"slurm-{job_id}.out in the submitting directory"
        )
        return f"The job's output is in {where}."

    def timeout_message(self, wanted, arrived, timeout) -> str:
        ids = self.job_ids()
        states = _slurm_states(ids) if self.kind == "slurm" else {}
        detail = _describe(states, ids) if self.kind == "slurm" else f"job ids {ids}"
        return (
            f"{arrived} of {wanted} dask worker(s) arrived within {timeout} s on {self.kind}: {detail}. "
            "A busy queue: raise timeout= (seconds) or pass wait=0 to go on without waiting."
        )

    def close(self) -> None:
        ids = self.job_ids()
        self.cluster.close()
        if self.kind == "slurm":
            _wait_slurm_gone(ids)


def _wait_slurm_gone(ids, timeout=60.0) -> None:
    """Wait until ``squeue`` lists none of ``ids`` (they may be completing); cancel stragglers."""
    deadline = time.monotonic() + timeout
    while ids and _slurm_states(ids):
        if time.monotonic() > deadline:
            subprocess.run(["scancel", *ids], capture_output=True)
            logger.warning("SLURM jobs %s still queued %.0f s after closing; cancelled again", ids, timeout)
            return
        time.sleep(0.2)


# ------------------------------------------------------------------ starting


def _wait_for_workers(client, wanted, timeout, check=None, describe=None) -> None:
    deadline = time.monotonic() + timeout
    last_check = 0.0
    while True:
        arrived = len(client.nthreads())
        if arrived >= wanted:
            return
        if check is not None and time.monotonic() - last_check > 0.5:
            check()
            last_check = time.monotonic()
        if time.monotonic() > deadline:
            message = (
                describe(wanted, arrived, timeout)
                if describe
                else (f"{arrived} of {wanted} dask worker(s) arrived within {timeout} s")
            )
            raise ClusterStartError(message)
        time.sleep(0.05)


def _start_local(s, stack):
    import psutil
    from distributed import Client, LocalCluster
    from distributed.deploy.utils import nprocesses_nthreads

    machine_workers, machine_threads = nprocesses_nthreads()
    threads = s.get("threads") or (machine_threads if not s.get("workers") else max(1, os.cpu_count() // s["workers"]))
    workers = s.get("workers") or (machine_workers if not s.get("threads") else max(1, os.cpu_count() // threads))
    if s.get("maximum") is not None:
        workers = s.get("minimum") or 0
    total = psutil.virtual_memory().total
    per_worker = max(workers, s.get("maximum") or 0, 1)
    memory = parse_memory(s["memory"]) if s.get("memory") is not None else total // per_worker
    if memory * per_worker > total:
        raise ValueError(
            f"{per_worker} local worker(s) of memory {s['memory']} need {memory * per_worker / 2**30:.1f} GiB, "
            f"but this machine has {total / 2**30:.1f} GiB: lower memory= (per worker) or workers="
        )
    extra = {k: v for k, v in s.items() if k not in _OWN | {"threads", "memory", "dashboard_address"}}
    cluster = stack.enter_context(
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            memory_limit=memory,
            processes=True,
            dashboard_address=s.get("dashboard_address"),
            **extra,
        )
    )
    client = stack.enter_context(Client(cluster))
    if s.get("maximum") is not None:
        cluster.adapt(minimum=s.get("minimum") or 0, maximum=s["maximum"])
    _wait_for_workers(client, workers if s.get("wait") is None else s["wait"], s.get("timeout") or 60)
    return client


def _start_batch(kind, s, stack):
    from distributed import Client

    batch = _Batch(kind, s)
    stack.callback(batch.close)
    client = stack.enter_context(Client(batch.cluster))
    started = time.monotonic()
    wanted = batch.scale()
    jobs = wanted // batch.processes
    wanted = wanted if s.get("wait") is None else s["wait"]
    _wait_for_workers(
        client, wanted, s.get("timeout") or 300, check=lambda: batch.check(jobs), describe=batch.timeout_message
    )
    logger.info("%d %s worker(s) arrived %.1f s after scaling", wanted, kind, time.monotonic() - started)
    return client


def _start_ssh(s, stack):
    from distributed import Client

    try:
        from distributed import SSHCluster
    except ImportError as error:  # pragma: no cover
        raise ImportError("kind 'ssh' needs asyncssh: pip install asyncssh") from error
    hosts = list(s.get("hosts") or [])
    if len(hosts) < 2:
        raise ValueError(f"kind 'ssh' needs hosts=[scheduler_host, worker_host, ...], got {hosts!r}")
    worker_options = {"nthreads": s.get("threads") or 1, **(s.get("worker_options") or {})}
    if s.get("memory") is not None:
        worker_options["memory_limit"] = parse_memory(s["memory"])
    cluster = stack.enter_context(
        SSHCluster(
            hosts,
            connect_options=s.get("connect_options") or {},
            worker_options=worker_options,
            scheduler_options=s.get("scheduler_options") or {},
        )
    )
    client = stack.enter_context(Client(cluster))
    wanted = len(hosts) - 1 if s.get("wait") is None else s["wait"]
    _wait_for_workers(client, wanted, s.get("timeout") or 120)
    return client


def _start_scheduler_file(s, stack):
    from distributed import Client

    path = Path(os.path.expanduser(str(s.get("scheduler_file") or "")))
    timeout = s.get("timeout") or 300
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise ClusterStartError(
                f"no scheduler file {str(path)!r} appeared within {timeout} s: start the "
                "scheduler first (dask-mpi, or `dask scheduler --scheduler-file PATH`)"
            )
        time.sleep(0.2)
    client = stack.enter_context(Client(scheduler_file=str(path), timeout=timeout))
    _wait_for_workers(client, 1 if s.get("wait") is None else s["wait"], timeout)
    return client


_announced = set()


def _announce(client, kind) -> None:
    """Print the dashboard link once per cluster, and log it."""
    link = client.dashboard_link
    logger.info("oceanflow %s cluster: dashboard at %s", kind, link)
    if link not in _announced:
        _announced.add(link)
        print(f"oceanflow: {kind} cluster, dask dashboard at {link}", file=sys.stderr)


@contextlib.contextmanager
def start(kind="local", *, profile=None, **overrides):
    """A connected ``distributed.Client`` on a new (or joined) cluster; closed on exit.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`, or a profile name.
    profile : str, optional
        A name from :func:`profiles`; its ``kind`` is used.
    **overrides
        Settings over the profile's, e.g. ``memory="8GiB"`` (binary units, per
        job for batch kinds), ``walltime="02:00:00"``, ``jobs=4``,
        ``minimum=1, maximum=20`` (adaptive), ``interface="ib0"``,
        ``wait=`` (workers to wait for), ``timeout=`` (seconds); anything else
        goes to the cluster class (``queue=``, ``job_extra_directives=`` ...).

    Raises
    ------
    ValueError
        Unknown kind or profile, malformed memory or walltime, more local
        memory than this machine has; nothing was started.
    ClusterStartError
        The batch system refused the job, or workers did not arrive within
        ``timeout`` seconds; the message gives the jobs' states and reasons.

    On exit (also on an exception) the client and the cluster are closed, and
    for SLURM, ``start`` returns once ``squeue`` no longer lists its jobs.

    Example
    -------
    >>> with start("local", workers=2, threads=1, memory="1GiB") as client:  # doctest: +SKIP
    ...     oceanflow.polyval(sst.chunk({"lat": 45}), [1.0, 0.0]).compute()
    """
    kind, settings = resolve(kind, profile=profile, **overrides)
    with contextlib.ExitStack() as stack:
        if kind == "local":
            client = _start_local(settings, stack)
        elif kind in _JOBQUEUE:
            client = _start_batch(kind, settings, stack)
        elif kind == "ssh":
            client = _start_ssh(settings, stack)
        else:
            client = _start_scheduler_file(settings, stack)
        _announce(client, kind)
        yield client
