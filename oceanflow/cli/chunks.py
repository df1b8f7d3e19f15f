"""``oceanflow chunks``: the suggested dask chunks of a dataset, and why."""

from __future__ import annotations

from ._common import UsageError, byte_size, open_input

HELP = "suggested dask chunks for a dataset, and why"
NEEDS_TIME = False  # time is carried to the output as it is in the file, never decoded
EXAMPLES = """examples:
  oceanflow chunks sst.zarr                         # chunks for point-wise work
  oceanflow chunks sst_*.nc --core-dim time --target 64MB"""


def arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="NetCDF file(s), glob(s) or Zarr store")
    parser.add_argument("--var", action="append", metavar="NAME", help="only this variable (repeatable)")
    parser.add_argument(
        "--core-dim",
        action="append",
        default=[],
        metavar="DIM",
        help="a dimension the computation needs whole, e.g. time for a fit (repeatable)",
    )
    parser.add_argument(
        "--target",
        metavar="BYTES",
        type=byte_size,
        help="bytes per chunk, e.g. 64MB (default: from worker memory and threads)",
    )


def run(args, operation) -> None:
    import oceanflow

    ds = open_input(args)
    for dim in args.core_dim:
        if dim not in ds.dims:
            raise UsageError(f"--core-dim {dim!r} is not a dimension of the input {tuple(ds.dims)}")
    options = {"core_dims": args.core_dim, "target": args.target}
    chunks = oceanflow.suggest_chunks(ds, **options)
    print("chunks: " + ",".join(f"{dim}={size}" for dim, size in chunks.items()))
    if not args.quiet:
        print(oceanflow.explain_chunks(ds, **options))
