"""``oceanflow climatology``: a climatology of each variable over months, seasons or days of the year."""

from __future__ import annotations

from ._common import UsageError, add_grouping, add_inputs, base_period, save_output, say

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

    ds, names = open_fields(args, "climatology")
    q = args.q[0] if args.q is not None and len(args.q) == 1 else args.q
    result = oceanflow.climatology(
        ds, args.freq, args.stat, q=q, method=args.method, window=args.window, base=base_period(args)
    )
    report(args, "climatology", names, ds, result)
    save_output(result, args, operation)


def open_fields(args, operation):
    """The input and the names of its fields along time (``--var`` selects among
    them); other variables (grid bounds, ``time_bnds``, masks) stay for the
    operation to carry or drop."""
    import oceanflow
    from oceanflow.variables import fields

    ds = oceanflow.open_dataset(
        args.inputs,
        chunks=args.chunks,
        time_units=getattr(args, "time_units", None),
        calendar=getattr(args, "calendar", None),
    )
    if "time" not in ds.dims:
        raise UsageError(f"{operation} needs a time dimension, but the input has dimensions {tuple(ds.dims)}")
    candidates = fields(ds, "time")
    names = args.var or candidates
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise UsageError(
            f"no variable {', '.join(map(repr, missing))} in the input; "
            f"its variables are {', '.join(map(str, ds.data_vars))}"
        )
    refused = [n for n in names if n not in candidates]
    if refused:
        raise UsageError(
            f"{', '.join(map(repr, refused))}: not a numeric field along time (a CF bounds variable, text, "
            f"or no time dimension); the fields are {', '.join(map(str, candidates)) or 'none'}"
        )
    if not names:
        raise UsageError(f"no numeric variable along time in the input; its variables are {list(ds.data_vars)}")
    others = [n for n in ds.data_vars if n not in candidates]
    return ds[list(names) + others], list(names)


def report(args, operation, names, ds, result) -> None:
    """Say which variables were computed, carried unchanged and dropped."""
    carried = [n for n in ds.data_vars if n not in names and n in result.data_vars]
    dropped = [n for n in ds.data_vars if n not in names and n not in result.data_vars]
    line = f"{operation} of {', '.join(map(str, names))}"
    details = [
        f"{label}: {', '.join(map(str, items))}"
        for label, items in (("carried", carried), ("dropped", dropped))
        if items
    ]
    say(args.quiet, line + (f" ({'; '.join(details)})" if details else ""))
