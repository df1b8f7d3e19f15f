"""``kind="ssh"``: distributed's ``SSHCluster``; the first host runs the scheduler, the others a worker each."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .base import Kind, Settings, wait_for_workers
from .units import check_worker_memory, parse_memory

if TYPE_CHECKING:
    from distributed import Client


class SSH(Kind):
    """``hosts=[scheduler_host, worker_host, ...]``; ``memory`` and ``threads`` are per worker."""

    default_timeout = 120.0

    @classmethod
    def check(cls, settings: Settings) -> None:
        hosts = list(settings.get("hosts") or [])
        if len(hosts) < 2:
            raise ValueError(f"kind 'ssh' needs hosts=[scheduler_host, worker_host, ...], got {hosts!r}")
        if settings.get("memory") is not None:
            check_worker_memory(parse_memory(settings["memory"]), f"memory={settings['memory']!r} per worker")

    @classmethod
    def start(cls, settings: Settings, stack: contextlib.ExitStack) -> Client:
        from distributed import Client

        try:
            from distributed import SSHCluster
        except ImportError as error:  # pragma: no cover - asyncssh is the 'ssh' extra
            raise ImportError("kind 'ssh' needs asyncssh: pip install 'oceanflow[ssh]'") from error
        s = settings
        hosts = list(s["hosts"])
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
        wait_for_workers(client, len(hosts) - 1 if s.get("wait") is None else s["wait"], cls.timeout(s))
        return client
