"""The two entry points: :func:`start` a cluster, or preview a batch :func:`job_script`."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .config import resolve
from .kinds import BATCH_SYSTEMS, STARTERS

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("oceanflow.cluster")


@contextlib.contextmanager
def start(kind: str = "local", *, profile: str | None = None, **overrides: Any) -> Iterator[Client]:
    """A connected ``distributed.Client`` on a new (or joined) cluster; closed on exit.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`, or a profile name.
    profile : str, optional
        A name from :func:`profiles`; its ``kind`` is used.
    **overrides
        Settings over the profile's, e.g. ``memory="8GiB"`` (or ``"8GB"``, 8 * 10**9
        bytes; per job for batch kinds, per worker for ``local`` and ``ssh``),
        ``walltime="02:00:00"``, ``jobs=4``, ``minimum=1, maximum=20``
        (adaptive), ``interface="ib0"``, ``wait=`` (workers to wait for),
        ``timeout=`` (seconds); anything else goes to the cluster class
        (``queue=``, ``job_extra_directives=`` ...).  See ``docs/hpc.md``.

    Raises
    ------
    ValueError
        Unknown kind or profile, malformed or ambiguous memory or walltime,
        counts that start no worker, less memory per worker than a worker
        needs, more local memory than this machine has; nothing was started.
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
        client = STARTERS[kind].start(settings, stack)
        _announce(client, kind)
        yield client


def job_script(kind: str = "slurm", *, profile: str | None = None, **overrides: Any) -> str:
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
    if kind not in BATCH_SYSTEMS:
        raise ValueError(
            f"job_script() previews batch jobs: kind must be one of {', '.join(BATCH_SYSTEMS)}, not {kind!r}"
        )
    return BATCH_SYSTEMS[kind].script(settings)


_announced: set[str] = set()


def _announce(client: Client, kind: str) -> None:
    """Print the dashboard link once per cluster, and log it."""
    link = client.dashboard_link
    logger.info("oceanflow %s cluster: dashboard at %s", kind, link)
    if link not in _announced:
        _announced.add(link)
        print(f"oceanflow: {kind} cluster, dask dashboard at {link}", file=sys.stderr)
