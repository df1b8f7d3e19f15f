"""The ``oceanflow`` command: climatologies, anomalies, polynomials and density from the shell.

Every subcommand reads NetCDF files or Zarr stores with
:func:`oceanflow.open_dataset`, computes with a progress bar on stderr and
writes with :func:`oceanflow.save` (all or nothing; an existing output is
kept unless ``--overwrite``).  Errors are one line on stderr and a non-zero
exit status (1: the computation failed, 2: bad arguments); ``--debug`` shows
the traceback.  ``oceanflow SUBCOMMAND --help`` lists the options with
examples.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser"]

PROG = "oceanflow"
DEMO_DIR = "oceanflow-demo"

EXAMPLES = {
    None: """examples:
  oceanflow demo                                   # sample data, outputs and a figure in ./oceanflow-demo
  oceanflow climatology sst_*.nc -o clim.zarr --freq month --base 1991 2020
  oceanflow anomaly sst_*.nc -o anom.zarr --clim clim.zarr
  oceanflow density ts.zarr -o rho.zarr --sa SA --ct CT --p p
  oceanflow chunks sst_*.nc --core-dim time
  oceanflow SUBCOMMAND --help                      # options of one subcommand""",
    "demo": """examples:
  oceanflow demo                       # ./oceanflow-demo, small sample (about 30 MB)
  oceanflow demo -d /tmp/demo --size tiny --overwrite""",
    "climatology": """examples:
  oceanflow climatology sst.nc -o clim.zarr
  oceanflow climatology 'sst_*.nc' -o clim_djf.nc --freq season --var sst
  oceanflow climatology sst.zarr -o daily.zarr --freq dayofyear --stat std --base 1991-01-01 2020-12-31""",
    "anomaly": """examples:
  oceanflow anomaly sst.nc -o anom.zarr --base 1991 2020
  oceanflow anomaly sst.nc -o anom.zarr --clim clim.zarr
  oceanflow anomaly sst.zarr -o z.zarr --kind standardized --freq dayofyear""",
    "polyval": """examples:
  oceanflow polyval raw.nc -o calibrated.zarr --coeffs 1e-4 -2e-3 1.01 0.05 --var temp
  (coefficients highest power first, as numpy.polyval: 1e-4 x^3 - 2e-3 x^2 + 1.01 x + 0.05)""",
    "density": """examples:
  oceanflow density ts.zarr -o rho.zarr
  oceanflow density ts.nc -o eos.zarr --sa so --ct thetao --p pres --what rho sigma0 alpha beta""",
    "chunks": """examples:
  oceanflow chunks sst.zarr                         # chunks for point-wise work
  oceanflow chunks sst_*.nc --core-dim time --target 64MB""",
    "cluster": """examples:
  oceanflow cluster                                 # list the cluster profiles
  oceanflow cluster --job-script slurm --profile mycluster""",
}


class UsageError(Exception):
    """Bad command-line arguments found after parsing (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: what is wrong and where to look."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``oceanflow`` command (used by the docs, too)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog=PROG, description="climatologies, anomalies, polynomials and seawater density "
                     "of NetCDF/Zarr data, on dask chunks, from the shell",
                     epilog=EXAMPLES[None], formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    common = _Parser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--cluster", metavar="NAME|PROFILE",
                       help="run on a dask cluster: a kind (local, slurm, pbs, ...) or a profile name "
                            "(see 'oceanflow cluster'); default: threads of this machine")
    group.add_argument("--chunks", metavar="SPEC", default="auto", type=_chunks,
                       help="dask chunks of the input: 'auto' (default; storage-aligned, see "
                            "'oceanflow chunks'), 'none', or DIM=SIZE,... e.g. time=-1,lat=45")
    group.add_argument("--overwrite", action="store_true", help="replace an existing output")
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no messages")
    group.add_argument("--debug", action="store_true", help="show the full traceback of an error")

    def add(name, help_text, **kwargs):
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                              formatter_class=formatter, parents=[common], **kwargs)

    demo = add("demo", "generate sample data; compute a climatology, anomalies and density; "
                       "write Zarr outputs and a PNG figure")
    demo.add_argument("-d", "--dir", default=DEMO_DIR, type=Path,
                      help=f"output directory (default: ./{DEMO_DIR})")
    demo.add_argument("--size", choices=("tiny", "small", "medium"), default="small",
                      help="tiny: 10-degree grid, 3 years; small (default): 1 degree, 10 years; "
                           "medium: 1 degree, 30 years")

    clim = add("climatology", "climatology of each variable over months, seasons or days of the year")
    _inputs(clim)
    _grouping(clim)
    clim.add_argument("--stat", default="mean", choices=("mean", "sum", "count", "std", "var", "min", "max"),
                      help="statistic of each group (default: mean; NaN skipped)")

    anom = add("anomaly", "departures from a climatology (computed here, or read with --clim)")
    _inputs(anom)
    _grouping(anom)
    anom.add_argument("--kind", default="absolute", choices=("absolute", "relative", "standardized"),
                      help="data - clim (default), data / clim, or (data - mean) / std")
    anom.add_argument("--clim", metavar="CLIM", type=Path,
                      help="climatology file (from 'oceanflow climatology', same --freq) instead of computing it")

    poly = add("polyval", "evaluate a polynomial at every point (e.g. a sensor calibration)")
    _inputs(poly, many=False)
    poly.add_argument("--coeffs", nargs="+", type=float, required=True, metavar="C",
                      help="coefficients, highest power first (as numpy.polyval)")

    dens = add("density", "TEOS-10 density and expansion coefficients from Absolute Salinity, "
                          "Conservative Temperature and pressure")
    _inputs(dens, select=False)
    dens.add_argument("--sa", default="SA", metavar="NAME", help="Absolute Salinity variable, g/kg (default: SA)")
    dens.add_argument("--ct", default="CT", metavar="NAME",
                      help="Conservative Temperature variable, degC (default: CT)")
    dens.add_argument("--p", default="p", metavar="NAME", help="sea pressure variable, dbar (default: p)")
    dens.add_argument("--what", nargs="+", default=["rho"], choices=DENSITY_OUTPUTS, metavar="NAME",
                      help=f"outputs (default: rho), any of {', '.join(DENSITY_OUTPUTS)}")

    chunks = add("chunks", "suggested dask chunks for a dataset, and why")
    chunks.add_argument("inputs", nargs="+", metavar="IN", help="NetCDF file(s), glob(s) or Zarr store")
    chunks.add_argument("--var", action="append", metavar="NAME", help="only this variable (repeatable)")
    chunks.add_argument("--core-dim", action="append", default=[], metavar="DIM",
                        help="a dimension the computation needs whole, e.g. time for a fit (repeatable)")
    chunks.add_argument("--target", metavar="BYTES", type=_bytes,
                        help="bytes per chunk, e.g. 64MB (default: from worker memory and threads)")

    cluster = add("cluster", "list the cluster profiles, or print a batch job script")
    cluster.add_argument("--job-script", metavar="KIND", help="print the job script of KIND (slurm, pbs, ...)")
    cluster.add_argument("--profile", metavar="NAME", help="profile for --job-script")
    return parser


def _inputs(parser, *, many=True, select=True):
    parser.add_argument("inputs", nargs="+" if many else 1, metavar="IN",
                        help="NetCDF file(s), glob(s) (quote them) or a Zarr store" if many
                        else "NetCDF file or Zarr store")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="output, ending in .zarr or .nc")
    if select:
        parser.add_argument("--var", action="append", metavar="NAME",
                            help="only this variable (repeatable; default: all)")


def _grouping(parser):
    parser.add_argument("--freq", default="month", choices=("month", "season", "dayofyear"),
                        help="groups: month (default), season (DJF, MAM, JJA, SON) or dayofyear (daily data)")
    parser.add_argument("--base", nargs=2, metavar=("START", "END"),
                        help="reference period, inclusive, e.g. 1991 2020 or 1991-01-01 2020-12-31")


DENSITY_OUTPUTS = ("rho", "sigma0", "sigma1", "sigma2", "sigma3", "sigma4", "alpha", "beta", "specvol")


def _chunks(text):
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    chunks = {}
    for item in text.split(","):
        dim, sep, size = item.partition("=")
        if not sep or not dim.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: give 'auto', 'none' or DIM=SIZE,... e.g. time=-1,lat=45")
        try:
            chunks[dim.strip()] = size.strip() if size.strip() == "auto" else int(size)
        except ValueError:
            raise argparse.ArgumentTypeError(f"chunk size {size!r} of {dim!r} is not a whole number, -1 or auto")
    return chunks


def _bytes(text):
    from dask.utils import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (e.g. 64MB)")


def _version():
    from . import __version__

    return __version__


# ---------------------------------------------------------------- running


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
        return _fail(err, debug, status=2)
    _quiet_warnings(args.quiet)
    try:
        with _cluster(args.cluster, args.quiet):
            COMMANDS[args.command](args, operation=shlex.join(argv))
    except KeyboardInterrupt:
        return _fail("interrupted", debug, status=130)
    except Exception as err:  # every failure becomes one line (or a traceback with --debug)
        return _fail(err, debug, status=2 if isinstance(err, UsageError) else 1)
    return 0


def _check(args):
    output = getattr(args, "output", None)
    if output is not None and output.suffix not in (".zarr", ".nc", ".nc4"):
        raise UsageError(f"output {str(output)!r} must end in .zarr or .nc")
    if output is not None and output.exists() and not args.overwrite:
        raise UsageError(f"output {str(output)!r} exists; pass --overwrite to replace it, or choose another -o")
    if args.command == "cluster" and args.profile and not args.job_script:
        raise UsageError("--profile goes with --job-script KIND")
    if args.command == "demo" and args.dir.exists() and not args.dir.is_dir():
        raise UsageError(f"{args.dir} exists and is not a directory; choose another with --dir")


def _fail(err, debug, status):
    if debug and isinstance(err, BaseException):
        raise err
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        message = f"no variable or coordinate {message}"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _quiet_warnings(quiet):
    """Warnings as one line on stderr (none with --quiet)."""
    if quiet:
        warnings.simplefilter("ignore")
        return

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = show


class _cluster:
    """Context: a distributed client from ``oceanflow.cluster`` for --cluster, else nothing."""

    def __init__(self, name, quiet):
        self.name, self.quiet, self._context = name, quiet, None

    def __enter__(self):
        if self.name is None:
            return None
        try:
            from . import cluster
        except ImportError:
            raise UsageError("--cluster needs oceanflow.cluster, which this installation lacks; "
                             "run without --cluster (threads of this machine)") from None
        kind = {"kind": self.name} if self.name in cluster.KINDS else {"profile": self.name}
        self._context = cluster.start(**kind)
        client = self._context.__enter__()
        _say(self.quiet, f"cluster: {client.dashboard_link}")
        return client

    def __exit__(self, *exc):
        if self._context is not None:
            return self._context.__exit__(*exc)
        return False


def _say(quiet, text):
    if not quiet:
        print(text)


def _open(args):
    import oceanflow

    ds = oceanflow.open_dataset(args.inputs, chunks=args.chunks)
    names = getattr(args, "var", None)
    if names:
        missing = [n for n in names if n not in ds.data_vars]
        if missing:
            raise UsageError(f"no variable {', '.join(map(repr, missing))} in the input; "
                             f"its variables are {', '.join(ds.data_vars) or 'none'}")
        ds = ds[names]
    return ds


def _with_time(ds, operation):
    """The variables along time (others are dropped with a note); a clear error if none."""
    if "time" not in ds.dims:
        raise UsageError(f"{operation} needs a time dimension, but the input has dimensions {tuple(ds.dims)}")
    kept = [name for name, var in ds.data_vars.items() if "time" in var.dims and var.dtype.kind in "iuf"]
    if not kept:
        raise UsageError(f"no numeric variable along time in the input; its variables are {list(ds.data_vars)}")
    return ds[kept]


def _save(result, args, operation):
    import oceanflow

    oceanflow.save(result, args.output, overwrite=args.overwrite, operation=operation, progress=not args.quiet)
    _say(args.quiet, f"wrote {args.output}")


def _base(args):
    return tuple(args.base) if args.base else None


def run_climatology(args, operation):
    import oceanflow

    ds = _with_time(_open(args), "climatology")
    result = oceanflow.climatology(ds, args.freq, args.stat, base=_base(args))
    _save(result, args, operation)


def run_anomaly(args, operation):
    import oceanflow

    ds = _with_time(_open(args), "anomaly")
    clim = None
    if args.clim is not None:
        if args.base:
            raise UsageError("--base sets the period of a climatology computed here; with --clim, leave it out")
        if args.kind == "standardized":
            raise UsageError("--kind standardized computes its own mean and std; leave out --clim")
        clim = oceanflow.open_dataset(args.clim, chunks=None)
        missing = [name for name in ds.data_vars if name not in clim.data_vars]
        if missing:
            raise UsageError(f"the climatology {args.clim} has no variable {', '.join(map(repr, missing))}; "
                             "compute it from the same input, or select variables with --var")
    result = oceanflow.anomaly(ds, clim, freq=args.freq, kind=args.kind, base=_base(args))
    _save(result, args, operation)


def run_polyval(args, operation):
    import numpy as np
    import oceanflow

    ds = _open(args)
    numeric = [name for name, var in ds.data_vars.items() if var.dtype.kind in "iuf"]
    if not numeric:
        raise UsageError(f"no numeric variable in the input; its variables are {list(ds.data_vars)}")
    result = oceanflow.polyval(ds[numeric], np.asarray(args.coeffs, np.float64))
    _save(result, args, operation)


def run_density(args, operation):
    import xarray as xr
    from . import eos

    ds = _open(args)
    missing = [f"--{flag} {name}" for flag, name in (("sa", args.sa), ("ct", args.ct), ("p", args.p))
               if name not in ds.variables]
    if missing:
        raise UsageError(f"the input has no {', '.join(missing)}; its variables are "
                         f"{', '.join(ds.data_vars)}: name them with --sa, --ct and --p")
    SA, CT, p = ds[args.sa], ds[args.ct], ds[args.p]
    out = {}
    for name in dict.fromkeys(args.what):
        function = getattr(eos, name)
        out[name] = function(SA, CT) if name.startswith("sigma") else function(SA, CT, p)
    _save(xr.Dataset(out, attrs=ds.attrs), args, operation)


def run_chunks(args, operation):
    import oceanflow

    ds = _open(args)
    for dim in args.core_dim:
        if dim not in ds.dims:
            raise UsageError(f"--core-dim {dim!r} is not a dimension of the input {tuple(ds.dims)}")
    options = {"core_dims": args.core_dim, "target": args.target}
    chunks = oceanflow.suggest_chunks(ds, **options)
    print("chunks: " + ",".join(f"{dim}={size}" for dim, size in chunks.items()))
    if not args.quiet:
        print(oceanflow.explain_chunks(ds, **options))


def run_cluster(args, operation):
    try:
        from . import cluster
    except ImportError:
        raise UsageError("'oceanflow cluster' needs oceanflow.cluster, which this installation lacks") from None
    if args.job_script:
        print(cluster.job_script(args.job_script, profile=args.profile))
        return
    profiles = cluster.profiles()
    print(f"kinds: {', '.join(cluster.KINDS)}")
    if not profiles:
        print("profiles: none")
    for name, profile in profiles.items():
        print(f"{name}: {profile}")


def run_demo(args, operation):
    from . import demo

    demo.run(args.dir, size=args.size, overwrite=args.overwrite, quiet=args.quiet)


COMMANDS = {
    "demo": run_demo,
    "climatology": run_climatology,
    "anomaly": run_anomaly,
    "polyval": run_polyval,
    "density": run_density,
    "chunks": run_chunks,
    "cluster": run_cluster,
}
