"""What every kind of cluster shares: the :class:`Kind` interface, the start error, waiting for workers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

#: A kind's settings: a profile merged with keyword arguments, keys with underscores.
Settings = dict[str, Any]

#: Settings oceanflow interprets itself; a kind passes the others to its cluster class.
OWN_SETTINGS = frozenset({"kind", "jobs", "workers", "threads", "minimum", "maximum", "wait", "timeout"})


class ClusterStartError(RuntimeError):
    """Workers could not be started: the message says which jobs, in what state and why."""


class Kind:
    """How one kind of cluster is checked and started: one row of :data:`oceanflow.cluster.kinds.STARTERS`."""

    #: Seconds :meth:`start` waits for workers when the settings give no ``timeout``.
    default_timeout: float = 60.0

    @classmethod
    def check(cls, settings: Settings) -> None:
        """Raise ``ValueError`` for settings this kind cannot start, before anything starts."""

    @classmethod
    def start(cls, settings: Settings, stack: contextlib.ExitStack) -> Client:
        """A client connected to a new (or joined) cluster; ``stack`` closes what was started."""
        raise NotImplementedError

    @classmethod
    def timeout(cls, settings: Settings) -> float:
        return settings.get("timeout") or cls.default_timeout


def wait_for_workers(
    client: Client,
    wanted: int,
    timeout: float,
    check: Callable[[], None] | None = None,
    describe: Callable[[int, int, float], str] | None = None,
) -> None:
    """Return when ``wanted`` workers are connected; ``check()`` every 0.5 s may raise on the way.

    Raises :class:`ClusterStartError` after ``timeout`` seconds, with ``describe(wanted, arrived, timeout)``.
    """
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
                else f"{arrived} of {wanted} dask worker(s) arrived within {timeout} s"
            )
            raise ClusterStartError(message)
        time.sleep(0.05)
