"""``oceanflow polyval``: a polynomial evaluated at every point (e.g. a sensor calibration)."""

from __future__ import annotations

import argparse

from ._common import UsageError, add_inputs, open_input, save_output, say

HELP = "evaluate a polynomial at every point (e.g. a sensor calibration)"
NEEDS_TIME = False  # time is carried to the output as it is in the file, never decoded
EXAMPLES = """examples:
  oceanflow polyval raw.nc -o calibrated.zarr --coeffs 1e-4 -2e-3 1.01 0.05 --var temp --units degC
  oceanflow polyval tos_Omon.nc -o tos_degC.nc --coeffs 1 -273.15 --var tos --units degC
  (coefficients highest power first, as numpy.polyval: 1e-4 x^3 - 2e-3 x^2 + 1.01 x + 0.05;
  CF bounds such as lat_bnds are copied unchanged, float32 input stays float32)"""


def arguments(parser) -> None:
    add_inputs(parser, many=False)
    parser.add_argument(
        "--coeffs",
        nargs="+",
        type=float,
        required=True,
        metavar="C",
        help="coefficients, highest power first (as numpy.polyval)",
    )
    parser.add_argument(
        "--units",
        metavar="UNITS",
        help="units attribute of the results (default: none, since a polynomial changes what the numbers are)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="compute and write in this dtype (default: each variable's own float dtype; float64 for integers)",
    )


def run(args, operation) -> None:
    import numpy as np

    import oceanflow
    from oceanflow._dtypes import working_dtype
    from oceanflow.variables import fields

    ds = open_input(argparse.Namespace(**{**vars(args), "var": None}))  # keep the bounds --var would drop
    candidates = fields(ds)
    selected = args.var or candidates
    refused = [name for name in selected if name not in candidates]
    if refused:
        raise UsageError(
            f"--var {', '.join(map(str, refused))}: not a numeric field of the input (CF bounds and non-numeric "
            f"variables are copied, not evaluated); its fields are {', '.join(map(str, candidates)) or 'none'}"
        )
    if not selected:
        raise UsageError(f"no numeric field in the input; its variables are {list(ds.data_vars)}")
    results = {}
    for name in selected:
        var = ds[name]
        dtype = np.dtype(args.dtype) if args.dtype else working_dtype(var.dtype, names=[name])
        results[name] = oceanflow.polyval(var.astype(dtype), np.asarray(args.coeffs, dtype), units=args.units)
    result = ds.drop_vars([name for name in candidates if name not in selected]).assign(results)
    carried = [name for name in result.data_vars if name not in results]
    copied = ", ".join(map(str, carried)) or "none"
    say(args.quiet, f"polyval: evaluated {', '.join(map(str, selected))}; copied unchanged: {copied}")
    save_output(result, args, operation)
