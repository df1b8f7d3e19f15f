"""``kind="local"``: a ``LocalCluster`` on this machine, sized from its cores and memory.

Worker processes are started with multiprocessing's ``spawn``: each imports the
main script anew.  A script that starts the cluster outside an
``if __name__ == "__main__":`` block would start it again in every worker, so
there the workers run as threads of the script's own process instead.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from .base import OWN_SETTINGS, Kind, Settings, wait_for_workers
from .units import check_worker_memory, format_memory, parse_memory

if TYPE_CHECKING:
    from distributed import Client

_GUARD = 'if __name__ == "__main__":'


class Local(Kind):
    """Workers on this machine; ``memory`` is per worker, ``maximum``/``minimum`` count workers."""

    default_timeout = 60.0

    @classmethod
    def check(cls, settings: Settings) -> None:
        cls.plan(settings)
        if settings.get("processes") not in (None, True, False):
            raise ValueError(f"processes={settings['processes']!r} must be True, False or None (decided here)")

    @classmethod
    def plan(cls, s: Settings) -> tuple[int, int, int, int]:
        """``(workers, threads per worker, memory per worker in bytes, most workers ever)``."""
        import psutil
        from distributed.deploy.utils import nprocesses_nthreads

        cpus = os.cpu_count() or 1
        machine_workers, machine_threads = nprocesses_nthreads()
        threads = s.get("threads") or (machine_threads if not s.get("workers") else max(1, cpus // s["workers"]))
        workers = s.get("workers") or (machine_workers if not s.get("threads") else max(1, cpus // threads))
        if s.get("maximum") is not None:
            workers = s.get("minimum") or 0
        most = max(workers, s.get("maximum") or 0, 1)
        total = psutil.virtual_memory().total
        if s.get("memory") is not None:
            memory = parse_memory(s["memory"])
            check_worker_memory(memory, f"memory={s['memory']!r} per worker")
        else:
            memory = total // most
            check_worker_memory(memory, f"this machine's {format_memory(total)} shared by {most} workers")
        if memory * most > total:
            raise ValueError(
                f"{most} local worker(s) of memory {s['memory']} need {memory * most / 2**30:.1f} GiB, "
                f"but this machine has {total / 2**30:.1f} GiB: lower memory= (per worker) or workers="
            )
        return workers, threads, memory, most

    @classmethod
    def start(cls, settings: Settings, stack: contextlib.ExitStack) -> Client:
        from distributed import Client, LocalCluster

        s = settings
        workers, threads, memory, most = cls.plan(s)
        processes = _worker_processes(s.get("processes"))
        adaptive = s.get("maximum") is not None
        wanted = workers if s.get("wait") is None else s["wait"]
        if not processes and not adaptive:  # one worker with all the threads: the memory monitor sees one process
            workers, threads, memory, wanted = 1, workers * threads, memory * workers, min(wanted, 1)
        elif not processes:
            memory = memory * most
        extra = {k: v for k, v in s.items() if k not in OWN_SETTINGS | {"memory", "processes", "dashboard_address"}}
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=workers,
                threads_per_worker=threads,
                memory_limit=memory,
                processes=processes,
                dashboard_address=s.get("dashboard_address"),
                **extra,
            )
        )
        client = stack.enter_context(Client(cluster))
        if adaptive:
            cluster.adapt(minimum=s.get("minimum") or 0, maximum=s["maximum"])
        wait_for_workers(client, wanted, cls.timeout(s))
        return client


def _worker_processes(asked: bool | None) -> bool:
    """Whether workers can be processes; threads, with a warning, where the script has no main guard."""
    if not spawned_workers_rerun_this_call():
        return True if asked is None else asked
    if asked:
        raise ValueError(
            f"processes=True: worker processes import this script anew and would start the cluster again, "
            f"because it is started outside an `{_GUARD}` block. Put the script's code under `{_GUARD}`, "
            "or leave processes unset to run the workers as threads in this process"
        )
    if asked is None:
        warnings.warn(
            f"this script starts the local cluster outside an `{_GUARD}` block, where worker processes would "
            "start it again: its workers run as threads in this process instead (one worker, no separate "
            f"memory limits, Python code between kernels shares one interpreter). Put the code under `{_GUARD}` "
            "for worker processes.",
            UserWarning,
            stacklevel=_user_stacklevel(),
        )
    return False


def spawned_workers_rerun_this_call() -> bool:
    """Whether a spawned worker process, importing the main script anew, would run this call again.

    True when the call comes from the top-level code of a script (run by path or
    with ``python -m``) outside an ``if __name__ == "__main__":`` block, and
    distributed starts workers with ``spawn`` or ``forkserver`` (its default).
    Interactive sessions, notebooks and ``python -c`` have no script to rerun.
    """
    import dask.config

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return False
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if main is None or path is None or (spec_name or "").endswith("__main__"):
        return False  # multiprocessing does not rerun a package's __main__ module, nor an interactive main
    frame = _main_module_frame(main.__dict__)
    if frame is None:
        return False  # not reached from the script's top-level code
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return False
    return not _under_main_guard(tree, frame.f_lineno)


def _main_module_frame(main_globals: dict) -> FrameType | None:
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_globals is main_globals and frame.f_code.co_name == "<module>":
            return frame
        frame = frame.f_back
    return None


def _under_main_guard(tree: ast.Module, line: int) -> bool:
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return (
                isinstance(node, ast.If)
                and _is_main_guard(node)
                and any(child.lineno <= line <= (child.end_lineno or child.lineno) for child in node.body)
            )
    return False


def _is_main_guard(node: ast.If) -> bool:
    """``if __name__ == "__main__":`` (either way round)."""
    if not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
    return sides == {ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))}


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside oceanflow and contextlib, for warnings."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    package = str(Path(__file__).parents[1])
    while frame is not None and _internal(frame.f_code.co_filename, package):
        frame, level = frame.f_back, level + 1
    return level


def _internal(filename: str, package: str) -> bool:
    return filename.startswith(package) or filename == contextlib.__file__
