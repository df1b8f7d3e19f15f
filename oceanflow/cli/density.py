"""``oceanflow density``: TEOS-10 density and expansion coefficients."""

from __future__ import annotations

from ._common import UsageError, add_inputs, open_input, save_output

HELP = "TEOS-10 density and expansion coefficients from Absolute Salinity, Conservative Temperature and pressure"
NEEDS_TIME = False  # time is carried to the output as it is in the file, never decoded
EXAMPLES = """examples:
  oceanflow density ts.zarr -o rho.zarr
  oceanflow density ts.nc -o eos.zarr --sa SA --ct CT --p pres --what rho sigma0 alpha beta
  (variables whose units/standard_name say practical salinity, potential or in-situ
  temperature, or depth in metres are refused, with the TEOS-10 conversion to make)"""
OUTPUTS = ("rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "specvol")


def arguments(parser) -> None:
    add_inputs(parser, select=False)
    parser.add_argument("--sa", default="SA", metavar="NAME", help="Absolute Salinity variable, g/kg (default: SA)")
    parser.add_argument(
        "--ct", default="CT", metavar="NAME", help="Conservative Temperature variable, degC (default: CT)"
    )
    parser.add_argument("--p", default="p", metavar="NAME", help="sea pressure variable, dbar (default: p)")
    parser.add_argument(
        "--what",
        nargs="+",
        default=["rho"],
        choices=OUTPUTS,
        metavar="NAME",
        help=f"outputs (default: rho), any of {', '.join(OUTPUTS)}",
    )


def run(args, operation) -> None:
    import xarray as xr

    from oceanflow import eos

    ds = open_input(args)
    missing = [
        f"--{flag} {name}"
        for flag, name in (("sa", args.sa), ("ct", args.ct), ("p", args.p))
        if name not in ds.variables
    ]
    if missing:
        raise UsageError(
            f"the input has no {', '.join(missing)}; its variables are "
            f"{', '.join(ds.data_vars)}: name them with --sa, --ct and --p"
        )
    SA, CT, p = ds[args.sa], ds[args.ct], ds[args.p]
    out = {}
    for name in dict.fromkeys(args.what):
        function = getattr(eos, name)
        out[name] = function(SA, CT) if name.startswith("sigma") else function(SA, CT, p)
    save_output(xr.Dataset(out, attrs=ds.attrs), args, operation)
