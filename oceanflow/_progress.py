"""Computing with a progress bar: dask's ProgressBar, or distributed's with a cluster."""

from __future__ import annotations

import contextlib
import sys


def compute(*objs, progress=None):
    """Compute dask-backed ``objs`` (delayed, arrays, xarray objects) and return the results.

    ``progress``: True shows a bar on stderr, False none, None one when stderr
    is a terminal.  With an active ``distributed`` client the work runs there
    and the bar is distributed's; otherwise dask's local ProgressBar.
    """
    client = active_client()
    if client is not None:
        futures = client.compute(list(objs))
        if _show(progress):
            from distributed import progress as distributed_progress

            with contextlib.redirect_stdout(sys.stderr):
                distributed_progress(futures, multi=False)
                sys.stderr.write("\n")
        results = client.gather(futures)
    else:
        import dask

        with progress_bar(progress):
            results = dask.compute(*objs)
    return results[0] if len(objs) == 1 else tuple(results)


def active_client():
    """The current ``distributed`` client, or None."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def progress_bar(progress=None):
    """A context showing dask's local ProgressBar on stderr (see :func:`compute` for
    ``progress``); with a ``distributed`` client, whose work does not go through
    the local scheduler, none."""
    if not _show(progress) or active_client() is not None:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr)


def _show(progress) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)
