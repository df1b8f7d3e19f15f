"""``oceanflow anomaly``: departures from a climatology computed here or read from a file."""

from __future__ import annotations

from pathlib import Path

from ._common import UsageError, add_grouping, add_inputs, base_period, save_output
from .climatology import open_fields, report

HELP = "departures from a climatology (computed here, or read with --clim)"
EXAMPLES = """examples:
  oceanflow anomaly sst.nc -o anom.zarr --base 1991 2020
  oceanflow anomaly sst.nc -o anom.zarr --clim clim.zarr
  oceanflow anomaly sst.zarr -o z.zarr --kind standardized --freq dayofyear"""


def arguments(parser) -> None:
    add_inputs(parser)
    add_grouping(parser)
    parser.add_argument(
        "--kind",
        default="absolute",
        choices=("absolute", "relative", "standardized"),
        help="data - clim (default), data / clim, or (data - mean) / std",
    )
    parser.add_argument(
        "--clim",
        metavar="CLIM",
        type=Path,
        help="climatology file (from 'oceanflow climatology', same --freq) instead of computing it",
    )


def run(args, operation) -> None:
    import oceanflow

    ds, names = open_fields(args, "anomaly")
    clim = None
    if args.clim is not None:
        if args.base:
            raise UsageError("--base sets the period of a climatology computed here; with --clim, leave it out")
        if args.kind == "standardized":
            raise UsageError("--kind standardized computes its own mean and std; leave out --clim")
        clim = oceanflow.open_dataset(args.clim, chunks=None)
        missing = [name for name in names if name not in clim.data_vars]
        if missing:
            raise UsageError(
                f"the climatology {args.clim} has no variable {', '.join(map(repr, missing))}; "
                "compute it from the same input, or select variables with --var"
            )
    result = oceanflow.anomaly(ds, clim, freq=args.freq, kind=args.kind, base=base_period(args))
    report(args, "anomaly", names, ds, result)
    save_output(result, args, operation)
