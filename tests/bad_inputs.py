"""Bad inputs and the message each one gets: one table for the tests and the docs.

Every case is a bad request a user could make, from Python or from the shell.
``tests/test_bad_inputs.py`` runs each one and requires a *clear error*: the
expected exception (or, on the command line, exit status and one line on
stderr) whose message matches ``match``, within :data:`TIMEOUT` seconds.  The
documentation page "Bad input" is built from the same list when the docs are
built (``docs/_ext/oceanflow_bad_inputs.py``), with the messages as they are.

Adding a case (any developer): append to :data:`CASES`, either

* a function that makes the bad call, decorated with :func:`case`; it gets a
  :class:`Files` whose attributes are small sample files made on demand, or
* :func:`cli` with the command's arguments, where ``{name}`` stands for the
  path of sample file ``name``.

For example::

    @case("chunks", "open_dataset(path, chunks={'time': 0})", ValueError, "chunk size 0")
    def _(files):
        oceanflow.open_dataset(files.sst_nc, chunks={"time": 0})

    cli("chunks", ["chunks", "{sst_nc}", "--chunks", "time=0"], "chunk size '0'")
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

import oceanflow

#: Seconds a case may take before it counts as a hang.
TIMEOUT = 60


@dataclass
class Case:
    """One bad input: where it belongs, what the user did, and the error it must get."""

    area: str
    input: str
    run: Callable[[Files], object]
    error: type[BaseException] | int  # an exception type, or the exit status of a command
    match: str


@dataclass
class Outcome:
    """What running a case gave: "clear" (the error expected), "unclear" (another error, or
    an unexpected message), "silent" (no error at all) or "hang" (past :data:`TIMEOUT`)."""

    kind: str
    message: str
    seconds: float


CASES: list[Case] = []


def case(area: str, text: str, error: type[BaseException], match: str):
    """Register the decorated function (it gets a :class:`Files`) as a bad input."""

    def register(func):
        CASES.append(Case(area, text, func, error, match))
        return func

    return register


def cli(area: str, argv: list[str], match: str, status: int = 2, text: str | None = None) -> None:
    """Register ``oceanflow ARGV`` as a bad input expected to exit with ``status`` and one line."""

    def run(files: Files):
        return _run_command([a.format_map(files) for a in argv])

    names = re.compile(r"\{(\w+)\}")
    shown = text or "oceanflow " + " ".join(names.sub(lambda m: Files.filename(m[1]), a) for a in argv)
    CASES.append(Case(area, shown, run, status, match))


# ---------------------------------------------------------------- sample files


class Files:
    """Small sample files in ``directory``, each made the first time it is asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def filename(name: str) -> str:
        """``sst_nc`` -> ``sst.nc``."""
        return re.sub(r"_(nc|zarr)$", r".\1", name)

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        path = self.directory / self.filename(name)
        if not path.exists():
            getattr(self, f"_make_{name}")(path)
        return str(path)

    def __getitem__(self, name: str) -> str:  # for str.format_map
        return getattr(self, name)

    @staticmethod
    def _field(nt=48, start="2000-01-01", freq="MS"):
        time = xr.date_range(start, periods=nt, freq=freq)
        values = np.random.default_rng(0).normal(15, 3, (nt, 6, 8)).astype("f4")
        return xr.Dataset(
            {"sst": (("time", "lat", "lon"), values, {"units": "degC"})},
            coords={"time": time, "lat": np.linspace(-5, 5, 6), "lon": np.linspace(0, 7, 8)},
        )

    def _make_sst_nc(self, path):
        self._field().to_netcdf(path, encoding={"sst": {"chunksizes": (12, 6, 8)}})

    def _make_sst_zarr(self, path):
        self._field().to_zarr(path, encoding={"sst": {"chunks": (12, 6, 8)}}, zarr_format=3)

    def _make_damaged_zarr(self, path):
        self._field().to_zarr(path, encoding={"sst": {"chunks": (12, 6, 8)}}, zarr_format=3)
        (path / "sst" / "c" / "1" / "0" / "0").write_bytes(b"not a compressed chunk")

    def _make_garbage_nc(self, path):
        path.write_bytes(b"\x89HDF garbage" * 10)

    def _make_folder(self, path):
        path.mkdir()

    def _make_mask_nc(self, path):
        self._field().isel(time=0, drop=True).to_netcdf(path)

    def _make_part_nc(self, path):
        self._field(start="2004-01-01").to_netcdf(path)

    def _make_days_nc(self, path):
        _raw_time_file(path, "days", "standard", np.arange(5.0))

    def _make_no_units_nc(self, path):
        _raw_time_file(path, None, None, np.arange(5.0))

    def _make_bad_calendar_nc(self, path):
        _raw_time_file(path, "days since 2000-01-01", "gregorian_typo", np.arange(5.0))

    def _make_other_units_nc(self, path):
        _raw_time_file(path, "days since 2001-01-01", "standard", np.arange(5.0) + 400)

    def _make_same_units_nc(self, path):
        _raw_time_file(path, "days since 2000-01-01", "standard", np.arange(5.0))


def _raw_time_file(path, units, calendar, values):
    """A NetCDF file whose time axis carries exactly these attributes (no CF encoder in between)."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", 2)
        time_var = nc.createVariable("time", "f8", ("time",))
        time_var.standard_name = "time"
        if units is not None:
            time_var.units = units
        if calendar is not None:
            time_var.calendar = calendar
        time_var[:] = values
        nc.createVariable("sst", "f4", ("time", "lat"))[:] = np.ones((len(values), 2))


# ---------------------------------------------------------------- running a case


def run_case(item: Case, directory: Path) -> Outcome:
    """Run ``item`` in ``directory`` (its sample files go there) and classify what happened."""
    files = Files(directory)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(TIMEOUT)
    try:
        with warnings.catch_warnings(), _inside(directory):
            warnings.simplefilter("ignore")
            result = item.run(files)
    except _Hang:
        return Outcome("hang", f"no answer within {TIMEOUT} s", time.monotonic() - started)
    except BaseException as err:  # noqa: BLE001 - every outcome is classified
        message = " ".join(str(err).split())
        expected = isinstance(item.error, type) and isinstance(err, item.error)
        kind = "clear" if expected and re.search(item.match, message) else "unclear"
        if kind == "unclear":
            message = f"{type(err).__name__}: {message} | {traceback.format_exc(limit=-3)}"
        return Outcome(kind, message, time.monotonic() - started)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.monotonic() - started
    if isinstance(result, tuple):  # a command: (status, stderr)
        status, stderr = result
        lines = stderr.strip().splitlines()
        message = lines[-1] if lines else ""
        if status == 0:
            return Outcome("silent", f"exit status 0: {stderr.strip()}", seconds)
        one_line = len([line for line in lines if not line.startswith("oceanflow: warning")]) == 1
        clear = status == item.error and one_line and re.search(item.match, message)
        return Outcome("clear" if clear else "unclear", message if clear else f"status {status}: {stderr}", seconds)
    return Outcome("silent", f"returned {type(result).__name__} without an error", seconds)


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts for the closing note: inputs tried, clear errors, silent results, hangs (and unclear)."""
    counts = {"inputs tried": len(outcomes)}
    for kind, label in (("clear", "clear errors"), ("silent", "silent results"), ("hang", "hangs")):
        counts[label] = sum(o.kind == kind for o in outcomes)
    counts["unclear errors"] = sum(o.kind == "unclear" for o in outcomes)
    return counts


class _Hang(BaseException):
    pass


def _too_slow(signum, frame):
    raise _Hang


@contextlib.contextmanager
def _inside(directory: Path):
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def _run_command(argv: list[str]) -> tuple[int, str]:
    """``oceanflow ARGV`` in this process: (exit status, stderr)."""
    from oceanflow.cli import main

    stderr, stdout = io.StringIO(), io.StringIO()
    shown = warnings.showwarning
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            status = main(argv)
    finally:
        warnings.showwarning = shown  # main() prints warnings as one line from now on
    return status, stderr.getvalue()


# ================================================================ the cases

# ---------------------------------------------------------------- chunk sizes


for size, match in (
    ("0", r"chunk size 0 for dimension 'time' is not allowed: give a whole number from 1 to 48"),
    ("-5", "chunk size -5 for dimension 'time' is not allowed"),
    ("2.5", "chunk size 2.5 for dimension 'time' is not a whole number"),
    ("'big'", "chunk size 'big' for dimension 'time' is not a whole number"),
    ("500", r"chunk size 500 for dimension 'time' is larger than the dimension \(48\)"),
):

    @case("chunks", f"open_dataset(path, chunks={{'time': {size}}})", ValueError, match)
    def _(files, size=size):
        oceanflow.open_dataset(files.sst_nc, chunks={"time": eval(size)})


@case("chunks", "open_dataset(path, chunks={'tme': 12})", ValueError, "chunks name 'tme'.*dimensions are 'time'")
def _(files):
    oceanflow.open_dataset(files.sst_nc, chunks={"tme": 12})


@case("chunks", "open_dataset(path, chunks=12)", TypeError, "chunks must be 'auto', None or a dict")
def _(files):
    oceanflow.open_dataset(files.sst_nc, chunks=12)


cli("chunks", ["chunks", "{sst_nc}", "--chunks", "time=0"], "chunk size '0' of 'time' is not allowed")
cli("chunks", ["chunks", "{sst_nc}", "--chunks", "time=-3"], "chunk size '-3' of 'time' is not allowed")
cli("chunks", ["chunks", "{sst_nc}", "--chunks", "time=1.5"], "chunk size '1.5' of 'time' is not allowed")
cli(
    "chunks",
    ["chunks", "{sst_nc}", "--chunks", "time=1000"],
    r"chunk size 1000 for dimension 'time' is larger than the dimension \(48\)",
    status=1,
)
cli("chunks", ["chunks", "{sst_nc}", "--chunks", "tme=5"], "chunks name 'tme'", status=1)

for name, value in (("target", "0"), ("target", "-1"), ("target", "'lots'"), ("memory_per_worker", "'0B'")):

    @case("chunks", f"suggest_chunks(ds, {name}={value})", ValueError, f"{name}=")
    def _(files, name=name, value=value):
        oceanflow.suggest_chunks(xr.open_dataset(files.sst_nc), **{name: eval(value)})


@case("chunks", "explain_chunks(ds, target=0)", ValueError, "target=0 bytes: a size must be positive")
def _(files):
    oceanflow.explain_chunks(xr.open_dataset(files.sst_nc), target=0)


@case("chunks", "suggest_chunks(ds, threads_per_worker=0)", ValueError, "threads_per_worker must be a positive")
def _(files):
    oceanflow.suggest_chunks(xr.open_dataset(files.sst_nc), threads_per_worker=0)


cli("chunks", ["chunks", "{sst_nc}", "--target", "0MB"], "'0MB' is not a size in bytes greater than 0")
cli("chunks", ["chunks", "{sst_nc}", "--target", "lots"], "'lots' is not a size in bytes")

# ---------------------------------------------------------------- graph size


@case("graph size", "set_options(max_tasks=0)", ValueError, "option max_tasks must be a positive integer")
def _(files):
    oceanflow.set_options(max_tasks=0)


@case("graph size", "set_options(max_taks=10)", ValueError, r"unknown oceanflow option\(s\) \['max_taks'\]")
def _(files):
    oceanflow.set_options(max_taks=10)


@case(
    "graph size",
    "climatology of 1,000,000 chunks (default limit)",
    oceanflow.chunking.TooManyTasksError,
    r"climatology would build a graph of about 2,000,\d{3} tasks.*limit of 1,000,000.*\.chunk\(\{",
)
def _(files):
    import dask.array as dsa

    data = dsa.zeros((24, 1000, 1000), chunks=(24, 1, 1), dtype="f4")
    times = xr.date_range("2000-01-01", periods=24, freq="MS")
    oceanflow.climatology(xr.DataArray(data, dims=("time", "lat", "lon"), coords={"time": times}))


@case(
    "graph size",
    "polyval of 48 x 6 x 8 one-element chunks with set_options(max_tasks=1000)",
    oceanflow.chunking.TooManyTasksError,
    r"polyval would build a graph of about \d[\d,]* tasks \(2,304 chunks\).*limit of 1,000",
)
def _(files):
    with oceanflow.set_options(max_tasks=1000):
        oceanflow.polyval(oceanflow.open_dataset(files.sst_nc, chunks={"time": 1, "lat": 1, "lon": 1}).sst, [1, 0])


# ---------------------------------------------------------------- reading files


@case("reading", "open_dataset('missing.nc')", FileNotFoundError, "missing.nc: no such file or directory")
def _(files):
    oceanflow.open_dataset("missing.nc")


@case("reading", "open_dataset('nothing_*.nc')", FileNotFoundError, "no file matches 'nothing_\\*.nc'")
def _(files):
    oceanflow.open_dataset("nothing_*.nc")


@case("reading", "open_dataset of a file that is not NetCDF", OSError, "cannot read .*garbage.nc")
def _(files):
    oceanflow.open_dataset(files.garbage_nc)


@case("reading", "open_dataset of a plain directory", ValueError, "is a directory but not a Zarr store")
def _(files):
    oceanflow.open_dataset(files.folder)


@case(
    "reading",
    "computing from a Zarr store with a corrupted chunk",
    OSError,
    r"cannot read variable 'sst' of .*damaged.zarr, chunk time 12:24, lat 0:6, lon 0:8 \(storage chunk \(1, 0, 0\)\)",
)
def _(files):
    oceanflow.open_dataset(files.damaged_zarr).sst.mean().compute()


@case("reading", "a list of files where one lacks the time dimension", ValueError, "mask.nc has no 'time' dimension")
def _(files):
    oceanflow.open_dataset([files.sst_nc, files.mask_nc])


@case("reading", "the same file twice in a list", ValueError, "times overlap or repeat across the files")
def _(files):
    oceanflow.open_dataset([files.sst_nc, files.sst_nc])


@case(
    "reading",
    "files with different time units combined with decode_times=False",
    ValueError,
    "with decode_times=False, files can only be combined when their times share one encoding",
)
def _(files):
    oceanflow.open_dataset([files.same_units_nc, files.other_units_nc], decode_times=False)


cli("reading", ["chunks", "missing.nc"], "missing.nc: no such file or directory", status=1)

# ---------------------------------------------------------------- time axes


@case(
    "time axes",
    "open_dataset of a file whose time units are 'days' (no reference date)",
    oceanflow.io.times.TimeDecodingError,
    r"units='days', calendar='standard' \(no reference date\)\. Give its reference date: "
    r"time_units='days since YYYY-MM-DD'",
)
def _(files):
    oceanflow.open_dataset(files.days_nc)


@case("time axes", "open_dataset of a file whose time has no units", ValueError, "no units attribute")
def _(files):
    oceanflow.open_dataset(files.no_units_nc)


@case("time axes", "open_dataset of a file with calendar 'gregorian_typo'", ValueError, "unknown calendar.*--calendar")
def _(files):
    oceanflow.open_dataset(files.bad_calendar_nc)


@case("time axes", "open_dataset(path, calendar='gregorain')", ValueError, "calendar='gregorain' is not a CF calendar")
def _(files):
    oceanflow.open_dataset(files.sst_nc, calendar="gregorain")


@case("time axes", "open_dataset(path, time_units='1850-01-01')", ValueError, "not a CF time unit: give 'UNIT since")
def _(files):
    oceanflow.open_dataset(files.sst_nc, time_units="1850-01-01")


cli(
    "time axes",
    ["climatology", "{days_nc}", "-o", "clim.nc"],
    r"no reference date.*--time-units 'days since YYYY-MM-DD'",
    status=1,
)
cli("time axes", ["chunks", "{sst_nc}", "--calendar", "gregorain"], "not a CF calendar", status=1)

# ---------------------------------------------------------------- writing


@case("writing", "save(ds, 'out.csv')", ValueError, r"unknown output format for out.csv: use a name ending in \.zarr")
def _(files):
    oceanflow.save(xr.open_dataset(files.sst_nc), "out.csv")


@case("writing", "save(ds, 'no/such/dir/out.nc')", FileNotFoundError, "directory no/such/dir does not exist")
def _(files):
    oceanflow.save(xr.open_dataset(files.sst_nc), "no/such/dir/out.nc")


@case("writing", "save(ds, existing) without overwrite=True", FileExistsError, "exists; pass overwrite=True")
def _(files):
    oceanflow.save(xr.open_dataset(files.sst_nc), files.sst_zarr)


@case("writing", "save('text', 'out.nc')", TypeError, "save writes xarray Datasets and DataArrays, got str")
def _(files):
    oceanflow.save("text", "out.nc")


@case(
    "writing",
    "save while another live process writes the same path",
    oceanflow.io.atomic.ConcurrentWriteError,
    r"another save \(process 1 on .*\) is writing out.zarr",
)
def _(files):
    host = socket.gethostname().split(".")[0]
    Path(f".out.zarr.oceanflow-tmp-1-0123abcd@{host}").mkdir()  # the temporary of a writer with pid 1, which runs
    oceanflow.save(xr.open_dataset(files.sst_nc), "out.zarr")


cli("writing", ["polyval", "{sst_nc}", "-o", "{sst_zarr}", "--coeffs", "1", "0"], "exists; pass --overwrite")
cli("writing", ["polyval", "{sst_nc}", "-o", "out.csv", "--coeffs", "1", "0"], "must end in .zarr or .nc")


@case(
    "water column",
    "eos.Nsquared(SA, CT, p) with pressures that do not increase along the column",
    ValueError,
    r"p along 'axis 0' does not increase strictly in 1 column\(s\)",
)
def _(files):
    from oceanflow import eos

    eos.Nsquared(np.full(3, 35.0), np.array([10.0, 9.0, 8.0]), np.array([0.0, 200.0, 100.0]), 45.0)


@case(
    "water column",
    "eos.mixed_layer_depth(SA, CT, p) with a pressure (units dbar) as depth",
    ValueError,
    "is a pressure according to its attributes",
)
def _(files):
    from oceanflow import eos

    p = xr.DataArray([5.0, 50.0, 100.0], dims="lev", attrs={"units": "dbar"})
    eos.mixed_layer_depth(xr.full_like(p, 35.0), xr.full_like(p, 10.0), p)


@case(
    "water column",
    "eos.from_model(SP=SA, ...) with Absolute Salinity as practical salinity",
    ValueError,
    "is Absolute",
)
def _(files):
    from oceanflow import eos

    SA = xr.DataArray([[35.0]], dims=("lev", "x"), attrs={"standard_name": "sea_water_absolute_salinity"})
    eos.from_model(SP=SA, pt=xr.full_like(SA, 10.0), depth=xr.DataArray([5.0], dims="lev"), lat=0.0, lon=0.0)


@case(
    "TEOS-10 conversions",
    "eos.p_from_z(depth, lat) with a depth (positive down) as height",
    ValueError,
    r"z is a depth \(positive down\) according to its attributes.*pass z = -depth",
)
def _(files):
    from oceanflow import eos

    depth = xr.DataArray([5.0, 500.0], dims="lev", attrs={"standard_name": "depth", "units": "m", "positive": "down"})
    eos.p_from_z(depth, 45.0)


@case(
    "TEOS-10 conversions",
    "eos.SA_from_SP(SP, depth, lon, lat) with a depth in metres as pressure",
    ValueError,
    r"p is a depth or height according to its attributes.*p_from_z",
)
def _(files):
    from oceanflow import eos

    depth = xr.DataArray([5.0, 500.0], dims="lev", attrs={"units": "m"})
    eos.SA_from_SP(xr.full_like(depth, 35.0), depth, 200.0, 10.0)


@case(
    "TEOS-10 conversions",
    "eos.CT_from_pt(SA, t) with an in-situ temperature as potential temperature",
    ValueError,
    r"pt is in-situ temperature according to its attributes.*CT_from_t",
)
def _(files):
    from oceanflow import eos

    t = xr.DataArray([10.0], dims="lev", attrs={"standard_name": "sea_water_temperature"})
    eos.CT_from_pt(35.0, t)


@case(
    "TEOS-10 conversions",
    "eos.CT_from_t(SA, t, p, check='raise') with temperatures in kelvin",
    ValueError,
    r"CT_from_t: values outside TEOS-10's range: t 2 of 2 outside \[-3, 40\] degC",
)
def _(files):
    from oceanflow import eos

    eos.CT_from_t(np.array([35.0, 35.0]), np.array([283.15, 275.15]), 100.0, check="raise")
