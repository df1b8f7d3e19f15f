"""Real-world time axes, built as awkward files: months/years since (checked against CDO), units
without a reference date, overrides, time_bnds, several files, and commands that need no time."""

import datetime
import subprocess
import sys
import warnings

import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from debian_tools import require

import oceanflow
from oceanflow.io import open_dataset, save
from oceanflow.io.times import TimeAxisWarning, TimeDecodingError

# Whole, fractional and negative offsets; reference days past the end of shorter months.
VALUES = np.array([0, 1, 2.5, 13, 0.5, 1.25, 12.9, -0.5, -13, 1 / 3, 0.1, 25, 47.75])
REFERENCES = ["1958-1-1", "1958-01-31 06:00", "2000-02-29", "1899-12-15 12:00:00"]
CALENDARS = ["standard", "proleptic_gregorian", "noleap", "all_leap", "360_day"]  # CDO reads these


def months_after(reference, months, calendar):
    """The rule CDO applies, one date at a time with cftime: whole months (towards zero) move the
    month of the reference date, a day past its end runs on; the fraction is of the month reached."""
    whole = int(np.trunc(months))
    year, month = divmod(reference.year * 12 + reference.month - 1 + whole, 12)
    first = cftime.datetime(year, month + 1, 1, calendar=calendar)
    following = cftime.datetime(year + (month + 1) // 12, (month + 1) % 12 + 1, 1, calendar=calendar)
    offset = datetime.timedelta(
        days=reference.day - 1, hours=reference.hour, minutes=reference.minute, seconds=reference.second
    )
    return first + offset + (months - whole) * (following - first)


def time_file(path, units, calendar, values, *, bounds=None, extra=None):
    """A NetCDF file with a time axis exactly as given (no CF library in between)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", 2)
        time = nc.createVariable("time", "f8", ("time",))
        if units is not None:
            time.units = units
        if calendar is not None:
            time.calendar = calendar
        time.standard_name = "time"
        time[:] = values
        if bounds is not None:
            nc.createDimension("bnds", 2)
            time.bounds = "time_bnds"
            nc.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = bounds
        for key, value in (extra or {}).items():
            time.setncattr(key, value)
        sst = nc.createVariable("sst", "f4", ("time", "lat"))
        sst.units = "degC"
        sst[:] = np.arange(2 * len(values), dtype="f4").reshape(-1, 2)
    return path


def cdo_timestamps(path):
    cdo = require("cdo")
    out = subprocess.run([cdo, "-s", "showtimestamp", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def stamps(values):
    """Dates as CDO's showtimestamp prints them (to the second, rounded)."""
    if np.asarray(values).dtype.kind == "M":
        values = pd.DatetimeIndex(values).round("s").to_pydatetime()
    else:
        values = [t + datetime.timedelta(microseconds=500_000) for t in values]  # rounded by the format below
    return [f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}" for t in values]


@pytest.mark.parametrize("calendar", CALENDARS)
@pytest.mark.parametrize("unit", ["months", "years"])
def test_months_and_years_since_are_calendar_months_as_cdo_reads_them(tmp_path, calendar, unit):
    values = VALUES if unit == "months" else VALUES / 4
    for i, reference in enumerate(REFERENCES):
        if calendar == "360_day" and "-31" in reference or (calendar == "noleap" and "02-29" in reference):
            continue  # no such date in that calendar
        path = time_file(tmp_path / f"{i}.nc", f"{unit} since {reference}", calendar, values)
        with pytest.warns(TimeAxisWarning, match="decoded as calendar months, as CDO does|12 per year"):
            ds = open_dataset(path)
        assert stamps(ds.time.values) == cdo_timestamps(path), (reference, calendar)


@pytest.mark.parametrize("unit, per_unit", [("months", 1), ("years", 12)])
def test_months_since_on_the_julian_calendar_which_cdo_lacks(tmp_path, unit, per_unit):
    path = time_file(tmp_path / "j.nc", f"{unit} since 1899-12-15 12:00", "julian", VALUES)
    with pytest.warns(TimeAxisWarning):
        ds = open_dataset(path)
    reference = cftime.datetime(1899, 12, 15, 12, calendar="julian")
    expected = [months_after(reference, v * per_unit, "julian") for v in VALUES]
    assert stamps(ds.time.values) == stamps(expected)
    if unit == "months":  # 1900-02-15 12:00 plus half of February's 29 days: 1900 is a Julian leap year
        assert ds.time.values[2] == cftime.datetime(1900, 3, 1, 0, calendar="julian")


def test_months_since_survive_a_save_that_cdo_reads_back_alike(tmp_path):
    path = time_file(tmp_path / "m.nc", "months since 1958-1-1", "standard", np.arange(24) + 0.5)
    with pytest.warns(TimeAxisWarning, match="'days since 1958-1-1' in outputs"):
        ds = open_dataset(path)
    save(ds, tmp_path / "out.nc")
    assert netCDF4.Dataset(tmp_path / "out.nc")["time"].units.startswith("days since 1958-01-01")
    assert cdo_timestamps(tmp_path / "out.nc") == cdo_timestamps(path)


def test_units_without_a_reference_date_are_refused_with_the_option_that_fixes_them(tmp_path):
    path = time_file(tmp_path / "days.nc", "days", "noleap", np.arange(5.0))
    with pytest.raises(TimeDecodingError) as caught:
        open_dataset(path)
    message = str(caught.value)
    assert "units='days'" in message and "calendar='noleap'" in message and str(path) in message
    assert "time_units='days since YYYY-MM-DD'" in message and "--time-units" in message
    with pytest.warns(TimeAxisWarning, match="units 'days' replaced by time_units='days since 1850-01-01'"):
        ds = open_dataset(path, time_units="days since 1850-01-01")
    expected = cftime.num2date(np.arange(5.0), "days since 1850-01-01", "noleap")
    assert list(ds.time.values) == list(expected)
    with pytest.warns(TimeAxisWarning, match="replaced by time_units"):
        raw = open_dataset(path, decode_times=False, time_units="days since 1850-01-01")
    assert raw.time.attrs["units"] == "days since 1850-01-01" and raw.time.dtype == "f8"


@pytest.mark.parametrize(
    "units, calendar, found",
    [
        (None, None, "no units attribute"),
        ("hours after 2000-01-01", "standard", "not 'UNIT since DATE'"),
        ("days since 2000-01-01", "gregorian_typo", "unknown calendar"),
    ],
)
def test_undecodable_time_axes_quote_the_attributes(tmp_path, units, calendar, found):
    path = time_file(tmp_path / "t.nc", units, calendar, np.arange(3.0))
    with pytest.raises(TimeDecodingError, match=found) as caught:
        open_dataset(path)
    assert ("--calendar" if "calendar" in found else "--time-units") in str(caught.value)


def test_calendar_overrides_and_completes_the_files_encoding(tmp_path):
    missing = time_file(tmp_path / "missing.nc", "days since 2000-01-01", None, np.array([0.0, 59, 365]))
    with pytest.warns(TimeAxisWarning, match="no calendar: completed with calendar='noleap'"):
        ds = open_dataset(missing, calendar="noleap")
    assert list(ds.time.values) == list(cftime.num2date([0.0, 59, 365], "days since 2000-01-01", "noleap"))
    wrong = time_file(tmp_path / "wrong.nc", "days since 2000-01-01", "standard", np.array([0.0, 59, 365]))
    with pytest.warns(TimeAxisWarning, match="calendar 'standard' replaced by calendar='360_day'"):
        ds = open_dataset(wrong, calendar="360_day")
    assert list(ds.time.values) == list(cftime.num2date([0.0, 59, 365], "days since 2000-01-01", "360_day"))
    with pytest.raises(ValueError, match="not a CF calendar"):
        open_dataset(wrong, calendar="gregorain")
    with pytest.raises(ValueError, match="not a CF time unit"):
        open_dataset(wrong, time_units="1850-01-01")


def test_time_bounds_are_decoded_with_their_axis_and_a_climatology_runs(tmp_path):
    months = np.arange(24.0)
    bounds = np.stack([months, months + 1], axis=1)
    path = time_file(tmp_path / "b.nc", "months since 1958-1-1", "standard", months + 0.5, bounds=bounds)
    with pytest.warns(TimeAxisWarning):
        ds = open_dataset(path)
    starts = xr.date_range("1958-01-01", periods=25, freq="MS").values
    np.testing.assert_array_equal(ds.time_bnds.values[:, 0], starts[:-1])
    np.testing.assert_array_equal(ds.time_bnds.values[:, 1], starts[1:])
    clim = oceanflow.climatology(ds.sst)
    expected = ds.sst.load().groupby("time.month").mean()
    np.testing.assert_allclose(clim.values, expected.values)


def test_several_files_with_their_own_reference_dates_combine_in_time_order(tmp_path):
    for year in (1960, 1958, 1959):
        time_file(tmp_path / f"sst_{year}.nc", f"months since {year}-01-01", "standard", np.arange(12.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset(tmp_path / "sst_*.nc")
    notes = [str(w.message) for w in caught if issubclass(w.category, TimeAxisWarning)]
    assert len(notes) == 1 and "the same for 2 more of the 3 files" in notes[0]
    np.testing.assert_array_equal(ds.time.values, xr.date_range("1958-01-01", periods=36, freq="MS").values)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "oceanflow", *map(str, args)], capture_output=True, text=True)


def test_commands_that_need_no_time_never_decode_it(tmp_path):
    path = time_file(tmp_path / "days.nc", "days", None, np.arange(5.0))
    chunks = run_cli("chunks", path)
    assert chunks.returncode == 0 and "time=5" in chunks.stdout, chunks.stderr
    polyval = run_cli("polyval", path, "-o", tmp_path / "p.nc", "--coeffs", "2", "0", "-q")
    assert polyval.returncode == 0, polyval.stderr
    with netCDF4.Dataset(tmp_path / "p.nc") as nc:
        assert nc["time"].units == "days" and list(nc["time"][:]) == [0, 1, 2, 3, 4]
        np.testing.assert_array_equal(nc["sst"][:], 2 * np.arange(10).reshape(5, 2))
    refused = run_cli("climatology", path, "-o", tmp_path / "c.nc")
    assert refused.returncode == 1 and "--time-units 'days since YYYY-MM-DD'" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr  # one line
    fixed = run_cli("climatology", path, "-o", tmp_path / "c.nc", "--time-units", "days since 2000-01-01", "-q")
    assert fixed.returncode == 0, fixed.stderr
    with pytest.warns(TimeAxisWarning, match="replaced by time_units"):
        api = oceanflow.climatology(open_dataset(path, time_units="days since 2000-01-01").sst)
    np.testing.assert_allclose(xr.open_dataset(tmp_path / "c.nc").sst.values, api.values)
