"""``oceanflow density``: TEOS-10 density and expansion coefficients."""

from __future__ import annotations

from ._common import UsageError, add_inputs, open_input, save_output, say

HELP = (
    "TEOS-10 density and expansion coefficients from Absolute Salinity, Conservative Temperature and "
    "pressure, or from model variables (practical salinity, potential or in-situ temperature, depth)"
)
NEEDS_TIME = False  # time is carried to the output as it is in the file, never decoded
EXAMPLES = """examples:
  oceanflow density ts.zarr -o rho.zarr
  oceanflow density ts.nc -o eos.zarr --sa SA --ct CT --p pres --what rho sigma0 alpha beta
  oceanflow density so_thetao_Omon.nc -o rho.zarr --sp so --pt thetao --depth lev --what rho N2
  oceanflow density so_thetao_Omon.nc -o rho.zarr --what sigma0 N2
  (without --sa/--ct/--p or --sp/--pt/--t/--depth, the variables are found by their
  standard_name: practical salinity, potential or in-situ temperature and a depth
  axis are converted with TEOS-10's SA_from_SP, CT_from_pt or CT_from_t and p_from_z,
  in one pass per chunk, latitude and longitude taken from the coordinates;
  variables given as --sa/--ct/--p whose units/standard_name say practical salinity,
  potential or in-situ temperature, or depth in metres are refused)"""
OUTPUTS = ("rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "specvol")
MODEL_OUTPUTS = ("SA", "CT", "p", "rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "N2")

#: standard_name -> the model role it gives a variable.
_ROLES = {
    "sea_water_practical_salinity": "sp",
    "sea_water_salinity": "sp",
    "sea_water_potential_temperature": "pt",
    "sea_water_temperature": "t",
    "sea_water_in_situ_temperature": "t",
    "depth": "depth",
}


def arguments(parser) -> None:
    add_inputs(parser, select=False)
    teos = parser.add_argument_group("TEOS-10 variables")
    teos.add_argument("--sa", metavar="NAME", help="Absolute Salinity variable, g/kg (default: SA)")
    teos.add_argument("--ct", metavar="NAME", help="Conservative Temperature variable, degC (default: CT)")
    teos.add_argument("--p", metavar="NAME", help="sea pressure variable, dbar (default: p)")
    model = parser.add_argument_group(
        "model variables (converted to SA, CT and p with TEOS-10 in the same pass; default: found by standard_name)"
    )
    model.add_argument("--sp", metavar="NAME", help="practical salinity variable, PSS-78 (e.g. so)")
    model.add_argument("--pt", metavar="NAME", help="potential temperature variable, degC (e.g. thetao)")
    model.add_argument("--t", metavar="NAME", help="in-situ temperature variable, degC")
    model.add_argument(
        "--depth",
        metavar="NAME",
        help="depth variable or coordinate, m, positive down (e.g. lev); or --p for sea pressure in dbar",
    )
    parser.add_argument(
        "--what",
        nargs="+",
        default=["rho"],
        choices=sorted(set(OUTPUTS) | set(MODEL_OUTPUTS), key=(OUTPUTS + MODEL_OUTPUTS).index),
        metavar="NAME",
        help=f"outputs (default: rho), any of {', '.join(OUTPUTS)}; "
        "from model variables also N2, SA, CT and p (not specvol)",
    )


def run(args, operation) -> None:
    import xarray as xr

    from oceanflow import eos

    ds = open_input(args)
    teos_flags = [flag for flag in ("sa", "ct") if getattr(args, flag)]
    model_flags = [flag for flag in ("sp", "pt", "t", "depth") if getattr(args, flag)]
    if args.p and args.depth:
        raise UsageError("--p and --depth do not go together: give sea pressure (dbar) or depth (m)")
    if args.p and not model_flags:
        teos_flags.append("p")
    if teos_flags and model_flags:
        raise UsageError(
            f"--{', --'.join(teos_flags)} and --{', --'.join(model_flags)} do not go together: give the TEOS-10 "
            "variables (--sa, --ct, --p) or the model variables (--sp, --pt or --t, --depth)"
        )
    if model_flags or (not teos_flags and not {"SA", "CT", "p"} <= set(ds.variables) and _found(ds)):
        return _run_model(ds, args, operation)
    names = {"sa": args.sa or "SA", "ct": args.ct or "CT", "p": args.p or "p"}
    missing = [f"--{flag} {name}" for flag, name in names.items() if name not in ds.variables]
    if missing:
        raise UsageError(
            f"the input has no {', '.join(missing)}; its variables are "
            f"{', '.join(map(str, ds.data_vars))}: name them with --sa, --ct and --p "
            "(or --sp, --pt or --t and --depth for model variables)"
        )
    model_only = [name for name in args.what if name not in OUTPUTS]
    if model_only:
        raise UsageError(f"--what {' '.join(model_only)}: only from model variables (--sp, --pt or --t, --depth)")
    SA, CT, p = ds[names["sa"]], ds[names["ct"]], ds[names["p"]]
    out = {}
    for name in dict.fromkeys(args.what):
        function = getattr(eos, name)
        out[name] = function(SA, CT) if name.startswith("sigma") else function(SA, CT, p)
    save_output(xr.Dataset(out, attrs=ds.attrs), args, operation)


def _found(ds) -> dict:
    """{role: variable name} of the variables whose standard_name says what they are."""
    found: dict = {}
    for name, var in ds.variables.items():
        role = _ROLES.get(str(var.attrs.get("standard_name", "")).strip().lower())
        if role == "depth" and var.ndim != 1:
            continue
        if role and role not in found:
            found[role] = name
    if "sp" in found and ("pt" in found or "t" in found) and "depth" in found:
        return found
    return {}


def _coordinate(ds, kind: str):
    """The latitude or longitude of ``ds``: by standard_name, then units, then usual names."""
    units = {
        "latitude": ("degrees_north", "degree_north", "degn"),
        "longitude": ("degrees_east", "degree_east", "dege"),
    }
    names = {"latitude": ("lat", "latitude", "nav_lat"), "longitude": ("lon", "longitude", "nav_lon")}
    for name, var in ds.variables.items():
        if str(var.attrs.get("standard_name", "")).lower() == kind:
            return ds[name]
    for name, var in ds.variables.items():
        if str(var.attrs.get("units", "")).lower() in units[kind]:
            return ds[name]
    for name in names[kind]:
        if name in ds.variables:
            return ds[name]
    raise UsageError(
        f"the input has no {kind} (no variable with standard_name {kind!r}, units {units[kind][0]!r} or "
        f"named {', '.join(names[kind][:2])}), which the conversion from practical salinity needs"
    )


def _vertical_dim(ds, vertical):
    """The vertical dimension of ``vertical``: the one whose coordinate says so (axis Z, positive
    up or down), else its first."""
    for dim in vertical.dims:
        attrs = ds[dim].attrs if dim in ds.coords else {}
        if str(attrs.get("axis", "")).upper() == "Z" or str(attrs.get("positive", "")).lower() in ("up", "down"):
            return dim
    return vertical.dims[0]


def _run_model(ds, args, operation) -> None:
    import xarray as xr

    from oceanflow import eos

    if args.pt and args.t:
        raise UsageError("--pt and --t do not go together: give potential or in-situ temperature")
    explicit = any(getattr(args, flag) for flag in ("sp", "pt", "t", "depth"))
    found = {} if explicit else _found(ds)
    sp, depth = args.sp or found.get("sp"), args.depth or args.p or found.get("depth")
    vertical = "p" if args.p else "depth"
    if args.t or (not args.pt and "pt" not in found and "t" in found):
        kind, temperature = "t", args.t or found.get("t")
    else:
        kind, temperature = "pt", args.pt or found.get("pt")
    given = {"--sp": sp, f"--{kind}": temperature, f"--{vertical}": depth}
    missing = [flag for flag, name in given.items() if not name]
    if missing:
        raise UsageError(f"from model variables, also give {', '.join(missing)} (see 'oceanflow density --help')")
    absent = [f"{flag} {name}" for flag, name in given.items() if name not in ds.variables]
    if absent:
        raise UsageError(f"the input has no {', '.join(absent)}; its variables are {', '.join(map(str, ds.variables))}")
    specvol = [name for name in args.what if name not in MODEL_OUTPUTS]
    if specvol:
        raise UsageError(f"--what {' '.join(specvol)}: not from model variables; use the TEOS-10 variables")
    lat, lon = _coordinate(ds, "latitude"), _coordinate(ds, "longitude")
    say(
        args.quiet,
        f"density: practical salinity {sp}, {'potential' if kind == 'pt' else 'in-situ'} temperature "
        f"{temperature}, {'pressure' if vertical == 'p' else 'depth'} {depth}, latitude {lat.name}, longitude "
        f"{lon.name}: converted with TEOS-10 (SA_from_SP, {'CT_from_pt' if kind == 'pt' else 'CT_from_t'}"
        f"{', p_from_z' if vertical == 'depth' else ''}) in one pass",
    )
    result = eos.from_model(
        SP=ds[sp],
        **{kind: ds[temperature]},
        **{vertical: ds[depth]},
        lat=lat,
        lon=lon,
        outputs=tuple(dict.fromkeys(args.what)),
        dim=_vertical_dim(ds, ds[depth]),
    )
    save_output(xr.Dataset(result.data_vars, attrs=ds.attrs), args, operation)
