"""Computing with progress on stderr: a bar on a terminal, a line per 10 % in a log file.

Batch jobs write stderr to a file, where a bar's ``\\r`` frames pile up into one
unreadable line; there each tenth of the tasks done gets a line of its own::

     10% Completed | 12 of 120 tasks | 1.02 s
"""

from __future__ import annotations

import contextlib
import functools
import sys
from timeit import default_timer
from typing import IO, Any

from dask.callbacks import Callback

from ._client import active_client


def compute(*objs: Any, progress: bool | None = None) -> Any:
    """Compute dask-backed ``objs`` (delayed, arrays, xarray objects) and return the results.

    ``progress``: True shows progress on stderr (a bar on a terminal, a line
    per 10 % otherwise), False none, None a bar when stderr is a terminal.
    With an active ``distributed`` client the work runs there; otherwise on
    dask's local scheduler.
    """
    client = active_client()
    if client is not None:
        futures = client.compute(list(objs))
        if _show(progress) and sys.stderr.isatty():
            from distributed import progress as distributed_progress

            with contextlib.redirect_stdout(sys.stderr):
                distributed_progress(futures, multi=False)
                sys.stderr.write("\n")
        elif _show(progress):
            _distributed_lines()(futures, out=sys.stderr)
        results = client.gather(futures)
    else:
        import dask

        with progress_bar(progress):
            results = dask.compute(*objs)
    return results[0] if len(objs) == 1 else tuple(results)


def progress_bar(progress: bool | None = None) -> contextlib.AbstractContextManager:
    """A context showing progress of dask's local scheduler on stderr (see
    :func:`compute` for ``progress``); with a ``distributed`` client, whose work
    does not go through the local scheduler, none."""
    if not _show(progress) or active_client() is not None:
        return contextlib.nullcontext()
    if sys.stderr.isatty():
        from dask.diagnostics import ProgressBar

        return ProgressBar(out=sys.stderr)
    return LocalLines(sys.stderr)


def _show(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


class TenthLines:
    """Writes `` 30% Completed | 36 of 120 tasks | 2.10 s`` each time another tenth is done."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.started = default_timer()
        self.tenths = 0
        self.total = 0

    def update(self, done: int, total: int) -> None:
        from dask.utils import format_time

        self.total = total
        tenths = 10 * done // total if total else 10
        if tenths > self.tenths:
            self.tenths = tenths
            elapsed = format_time(default_timer() - self.started)
            self.out.write(f"{10 * tenths:3d}% Completed | {done} of {total} tasks | {elapsed}\n")
            self.out.flush()


class LocalLines(Callback):
    """dask's local scheduler: a line per tenth of the tasks done (see :class:`TenthLines`)."""

    def __init__(self, out: IO[str]):
        super().__init__()
        self._out = out
        self._lines = TenthLines(out)

    def _start(self, dsk: Any) -> None:
        self._lines = TenthLines(self._out)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict, worker_id: Any) -> None:
        done = len(state["finished"])
        self._lines.update(done, done + sum(len(state[k]) for k in ("ready", "waiting", "running")))

    def _finish(self, dsk: Any, state: dict, errored: bool) -> None:
        if not errored:
            self._lines.update(self._lines.total, self._lines.total)


@functools.cache
def _distributed_lines() -> type:
    """distributed's text progress bar drawing :class:`TenthLines` (defined on first use: distributed is heavy)."""
    from distributed.diagnostics.progressbar import TextProgressBar

    class DistributedLines(TextProgressBar):
        def __init__(self, keys: Any, out: IO[str], **kwargs: Any):
            self._lines = TenthLines(out)
            super().__init__(keys, **kwargs)  # runs until the keys are done

        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:
            self._lines.update(all - remaining, all)

        def _draw_stop(self, **kwargs: Any) -> None:
            pass

    return DistributedLines
