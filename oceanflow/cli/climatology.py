"""``oceanflow climatology``: a climatology of each variable over months, seasons or days of the year."""

from __future__ import annotations

from ._common import add_grouping, add_inputs, base_period, open_input, save_output, with_time

HELP = "climatology of each variable over months, seasons or days of the year"
EXAMPLES = """examples:
  oceanflow climatology sst.nc -o clim.zarr
  oceanflow climatology 'sst_*.nc' -o clim_djf.nc --freq season --var sst
  oceanflow climatology sst.zarr -o daily.zarr --freq dayofyear --stat std --base 1991-01-01 2020-12-31"""


def arguments(parser) -> None:
    add_inputs(parser)
    add_grouping(parser)
    parser.add_argument(
        "--stat",
        default="mean",
        choices=("mean", "sum", "count", "std", "var", "min", "max"),
        help="statistic of each group (default: mean; NaN skipped)",
    )


def run(args, operation) -> None:
    import oceanflow

    ds = with_time(open_input(args), "climatology")
    result = oceanflow.climatology(ds, args.freq, args.stat, base=base_period(args))
    save_output(result, args, operation)
