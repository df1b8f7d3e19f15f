"""``oceanflow polyval``: a polynomial evaluated at every point (e.g. a sensor calibration)."""

from __future__ import annotations

from ._common import UsageError, add_inputs, open_input, save_output

HELP = "evaluate a polynomial at every point (e.g. a sensor calibration)"
EXAMPLES = """examples:
  oceanflow polyval raw.nc -o calibrated.zarr --coeffs 1e-4 -2e-3 1.01 0.05 --var temp
  (coefficients highest power first, as numpy.polyval: 1e-4 x^3 - 2e-3 x^2 + 1.01 x + 0.05)"""


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


def run(args, operation) -> None:
    import numpy as np

    import oceanflow

    ds = open_input(args)
    numeric = [name for name, var in ds.data_vars.items() if var.dtype.kind in "iuf"]
    if not numeric:
        raise UsageError(f"no numeric variable in the input; its variables are {list(ds.data_vars)}")
    result = oceanflow.polyval(ds[numeric], np.asarray(args.coeffs, np.float64))
    save_output(result, args, operation)
