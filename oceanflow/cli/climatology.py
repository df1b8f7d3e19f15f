"""``oceanflow climatology``: a climatology of each variable over months, seasons or days of the year."""

from __future__ import annotations

from ._common import add_grouping, add_inputs, base_period, open_input, save_output, with_time

HELP = "climatology of each variable over months, seasons or days of the year"
EXAMPLES = """examples:
  oceanflow climatology sst.nc -o clim.zarr
  oceanflow climatology 'sst_*.nc' -o clim_djf.nc --freq season --var sst
  oceanflow climatology sst.zarr -o daily.zarr --freq dayofyear --stat std --base 1991-01-01 2020-12-31
  oceanflow climatology sst.nc -o p90.zarr --freq dayofyear --stat quantile --q 0.9 --window 11 \\
      --method median_unbiased"""


def arguments(parser) -> None:
    from ..kernels.climatology import STATISTICS
    from ..kernels.quantiles import METHODS

    add_inputs(parser)
    add_grouping(parser)
    parser.add_argument(
        "--stat",
        default="mean",
        choices=tuple(STATISTICS),
        help="statistic of each group (default: mean; NaN skipped): "
        + "; ".join(f"{name}: {s.summary}" for name, s in STATISTICS.items()),
    )
    parser.add_argument(
        "--q",
        type=float,
        nargs="+",
        metavar="Q",
        help="quantile(s) in [0, 1] for --stat quantile, e.g. --q 0.9 or --q 0.1 0.5 0.9",
    )
    parser.add_argument(
        "--method",
        default="linear",
        choices=tuple(METHODS),
        help="NumPy's quantile method for --stat quantile/median (default: linear; xclim's: median_unbiased)",
    )
    parser.add_argument(
        "--window",
        type=int,
        metavar="STEPS",
        help="pool the STEPS (odd) time steps centred on each day (--freq dayofyear), e.g. 11 as Hobday et al.",
    )


def run(args, operation) -> None:
    import oceanflow

    ds = with_time(open_input(args), "climatology")
    q = args.q[0] if args.q is not None and len(args.q) == 1 else args.q
    result = oceanflow.climatology(
        ds, args.freq, args.stat, q=q, method=args.method, window=args.window, base=base_period(args)
    )
    save_output(result, args, operation)
