"""The ``oceanflow`` command: climatologies, anomalies, polynomials and density from the shell.

Every subcommand reads NetCDF files or Zarr stores with
:func:`oceanflow.open_dataset`, computes with a progress bar on stderr and
writes with :func:`oceanflow.save` (all or nothing; an existing output is
kept unless ``--overwrite``).  Errors are one line on stderr and a non-zero
exit status (1: the computation failed, 2: bad arguments); ``--debug`` shows
the traceback.  ``oceanflow SUBCOMMAND --help`` lists the options with
examples.

Each subcommand is one module of this package with ``HELP``, ``EXAMPLES``,
``arguments(parser)``, ``run(args, operation)`` and optionally
``check(args)``; adding one means writing that module and naming it in
:data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import anomaly, chunks, climatology, cluster, demo, density, mhw, polyval
from ._common import PROG, Parser, UsageError, common_options, fail, on_cluster, quiet_warnings

__all__ = ["COMMANDS", "main", "build_parser"]

#: Every subcommand, by name, in the order ``--help`` lists them.
COMMANDS = {
    "demo": demo,
    "climatology": climatology,
    "anomaly": anomaly,
    "polyval": polyval,
    "density": density,
    "chunks": chunks,
    "cluster": cluster,
    "mhw": mhw,
}

EXAMPLES = """examples:
  oceanflow demo                                   # sample data, outputs and a figure in ./oceanflow-demo
  oceanflow climatology sst_*.nc -o clim.zarr --freq month --base 1991 2020
  oceanflow anomaly sst_*.nc -o anom.zarr --clim clim.zarr
  oceanflow density ts.zarr -o rho.zarr --sa SA --ct CT --p p
  oceanflow chunks sst_*.nc --core-dim time
  oceanflow SUBCOMMAND --help                      # options of one subcommand"""

_OUTPUT_SUFFIXES = (".zarr", ".nc", ".nc4")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``oceanflow`` command (used by the docs, too)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog=PROG,
        description="climatologies, anomalies, polynomials and seawater density "
        "of NetCDF/Zarr data, on dask chunks, from the shell",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=Parser)
    common = common_options()
    for name, command in COMMANDS.items():
        subparser = sub.add_parser(
            name,
            help=command.HELP,
            description=command.HELP,
            epilog=command.EXAMPLES,
            formatter_class=formatter,
            parents=[common],
        )
        command.arguments(subparser)
    return parser


def _version() -> str:
    from oceanflow import __version__

    return __version__


def main(argv=None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(f"choose a subcommand: {', '.join(COMMANDS)} (see '{PROG} --help')")
        _check(args)
    except UsageError as err:
        return fail(err, debug, status=2)
    quiet_warnings(args.quiet)
    try:
        with on_cluster(args.cluster, args.quiet):
            COMMANDS[args.command].run(args, operation=shlex.join(argv))
    except KeyboardInterrupt:
        return fail("interrupted", debug, status=130)
    except Exception as err:  # every failure becomes one line (or a traceback with --debug)
        return fail(err, debug, status=2 if isinstance(err, UsageError) else 1)
    return 0


def _check(args) -> None:
    """Checks of the arguments that argparse cannot make (exit status 2)."""
    output: Path | None = getattr(args, "output", None)
    if output is not None and output.suffix not in _OUTPUT_SUFFIXES:
        raise UsageError(f"output {str(output)!r} must end in .zarr or .nc")
    if output is not None and output.exists() and not args.overwrite:
        raise UsageError(f"output {str(output)!r} exists; pass --overwrite to replace it, or choose another -o")
    check = getattr(COMMANDS[args.command], "check", None)
    if check is not None:
        check(args)
