"""What every subcommand shares: the parser class, common options, input and output."""

from __future__ import annotations

import argparse
import glob
import sys
import warnings
from pathlib import Path
from typing import Any

PROG = "oceanflow"


class UsageError(Exception):
    """Bad command-line arguments found after parsing (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: what is wrong and where to look."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def common_options() -> Parser:
    """The options every subcommand takes (a parent parser)."""
    common = Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--cluster",
        metavar="NAME|PROFILE",
        help="run on a dask cluster: a kind (local, slurm, pbs, ...) or a profile name "
        "(see 'oceanflow cluster'); default: threads of this machine",
    )
    group.add_argument(
        "--chunks",
        metavar="SPEC",
        default="auto",
        type=chunk_spec,
        help="dask chunks of the input: 'auto' (default; storage-aligned, see "
        "'oceanflow chunks'), 'none', or DIM=SIZE,... e.g. time=-1,lat=45",
    )
    group.add_argument(
        "--time-units",
        metavar="UNITS",
        help="time units replacing or completing the input's, e.g. 'days since 1850-01-01' "
        "(for a file whose units are only 'days')",
    )
    group.add_argument(
        "--calendar",
        metavar="NAME",
        help="CF calendar replacing or completing the input's, e.g. noleap or 360_day",
    )
    group.add_argument("--overwrite", action="store_true", help="replace an existing output")
    group.add_argument(
        "--compression",
        choices=("none", "deflate", "zstd"),
        help="NetCDF output codec: deflate (default, with shuffle; read everywhere), none, or zstd "
        "(smaller and fast, but readers need the HDF5 zstd plugin)",
    )
    group.add_argument(
        "--level", type=int, metavar="N", help="codec level: deflate 1-9 (default 1), zstd 1-22 (default 3)"
    )
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no messages")
    group.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return common


def add_inputs(parser, *, many=True, select=True) -> None:
    """Positional inputs, ``-o OUT`` and (with ``select``) ``--var``."""
    parser.add_argument(
        "inputs",
        nargs="+" if many else 1,
        metavar="IN",
        help="NetCDF file(s), glob(s) (quote them) or a Zarr store" if many else "NetCDF file or Zarr store",
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help="output, ending in .zarr or .nc"
    )
    if select:
        parser.add_argument(
            "--var", action="append", metavar="NAME", help="only this variable (repeatable; default: all)"
        )


def add_grouping(parser) -> None:
    """``--freq`` and ``--base``, for the subcommands that group time steps."""
    parser.add_argument(
        "--freq",
        default="month",
        choices=("month", "season", "dayofyear"),
        help="groups: month (default), season (DJF, MAM, JJA, SON) or dayofyear (daily data)",
    )
    parser.add_argument(
        "--base",
        nargs=2,
        metavar=("START", "END"),
        help="reference period, inclusive, e.g. 1991 2020 or 1991-01-01 2020-12-31",
    )


def chunk_spec(text):
    """``--chunks``: 'auto', 'none' or DIM=SIZE,... (sizes: whole numbers from 1, -1 or auto)."""
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    chunks = {}
    for item in text.split(","):
        dim, sep, size = item.partition("=")
        if not sep or not dim.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: give 'auto', 'none' or DIM=SIZE,... e.g. time=-1,lat=45")
        size = size.strip()
        if size == "auto":
            chunks[dim.strip()] = size
            continue
        try:
            value = int(size)
        except ValueError:
            value = None
        if value is None or value == 0 or value < -1:
            raise argparse.ArgumentTypeError(
                f"chunk size {size!r} of {dim.strip()!r} is not allowed: give a whole number from 1, "
                "-1 for the whole dimension, or auto"
            ) from None
        chunks[dim.strip()] = value
    return chunks


def byte_size(text):
    """A positive size in bytes such as 64MB."""
    from oceanflow.chunking import checked_bytes

    try:
        return checked_bytes(text, "size")
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes greater than 0 (e.g. 64MB)") from None


def say(quiet, text) -> None:
    """Print ``text`` unless ``--quiet``."""
    if not quiet:
        print(text)


def open_input(args):
    """The inputs as one lazy Dataset, restricted to ``--var`` when given.

    Subcommands whose module sets ``NEEDS_TIME = False`` get the time axis as
    numbers with its attributes (completed by ``--time-units``/``--calendar``),
    never decoded: a time axis no program could read does not stop them.
    Several files are still combined by their decoded times.
    """
    import oceanflow

    from . import COMMANDS

    options: dict[str, Any] = {key: getattr(args, key, None) for key in ("time_units", "calendar")}
    needs_time = getattr(COMMANDS.get(str(getattr(args, "command", ""))), "NEEDS_TIME", True)
    if not needs_time and len(args.inputs) == 1 and not glob.has_magic(str(args.inputs[0])):
        options["decode_times"] = False
    ds = oceanflow.open_dataset(args.inputs, chunks=args.chunks, **options)
    names = getattr(args, "var", None)
    if names:
        missing = [n for n in names if n not in ds.data_vars]
        if missing:
            raise UsageError(
                f"no variable {', '.join(map(repr, missing))} in the input; "
                f"its variables are {', '.join(map(str, ds.data_vars)) or 'none'}"
            )
        ds = ds[names]
    return ds


def with_time(ds, operation):
    """The variables along time (others are dropped with a note); a clear error if none."""
    if "time" not in ds.dims:
        raise UsageError(f"{operation} needs a time dimension, but the input has dimensions {tuple(ds.dims)}")
    kept = [name for name, var in ds.data_vars.items() if "time" in var.dims and var.dtype.kind in "iuf"]
    if not kept:
        raise UsageError(f"no numeric variable along time in the input; its variables are {list(ds.data_vars)}")
    return ds[kept]


def save_output(result, args, operation) -> None:
    """Write ``result`` to ``-o`` (all or nothing) and say where."""
    import oceanflow

    codec: dict[str, Any] = {key: getattr(args, key, None) for key in ("compression", "level")}
    codec = {key: value for key, value in codec.items() if value is not None}  # --compression, --level
    oceanflow.save(result, args.output, overwrite=args.overwrite, operation=operation, progress=not args.quiet, **codec)
    say(args.quiet, f"wrote {args.output}")


def base_period(args):
    """``--base`` as a (start, end) pair, or None."""
    return tuple(args.base) if args.base else None


def fail(err, debug, status) -> int:
    """Report ``err`` as one line on stderr (or re-raise it with ``--debug``)."""
    if debug and isinstance(err, BaseException):
        raise err
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        message = f"no variable or coordinate {message}"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def quiet_warnings(quiet) -> None:
    """Warnings as one line on stderr (none with --quiet)."""
    if quiet:
        warnings.simplefilter("ignore")
        return

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = show


class on_cluster:
    """Context: a distributed client from ``oceanflow.cluster`` for --cluster, else nothing."""

    def __init__(self, name, quiet):
        self.name, self.quiet, self._context = name, quiet, None

    def __enter__(self):
        if self.name is None:
            return None
        from oceanflow import cluster

        kind = {"kind": self.name} if self.name in cluster.KINDS else {"profile": self.name}
        self._context = cluster.start(**kind)
        client = self._context.__enter__()
        say(self.quiet, f"cluster: {client.dashboard_link}")
        return client

    def __exit__(self, *exc):
        if self._context is not None:
            return self._context.__exit__(*exc)
        return False
