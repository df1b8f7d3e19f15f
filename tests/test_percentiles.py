"""Median, quantile and running-window climatologies against np.nanquantile, xarray and xclim.

The oracles pool each group's values by hand (a loop over its time steps and
their windows), independently of oceanflow's pooling, and apply NumPy's
nan-functions; every statistic of the registry must have one.
"""

import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from conftest import added_tasks, make_field, monthday_labels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oceanflow
from oceanflow.kernels.climatology import STATISTICS
from oceanflow.kernels.quantiles import METHODS

pytestmark = pytest.mark.usefixtures("no_flox")

GROUP_DIM = {"month": "month", "season": "season", "dayofyear": "dayofyear", "time.dayofyear": "dayofyear"}


def _nan_stat(stat, q=0.9, method="linear", ddof=0):
    """NumPy's nan-function of ``stat`` over axis 0 of pooled values."""
    return {
        "mean": lambda v: np.nanmean(v, axis=0),
        "sum": lambda v: np.nansum(v, axis=0),
        "count": lambda v: np.sum(~np.isnan(v), axis=0),
        "std": lambda v: np.nanstd(v, axis=0, ddof=ddof),
        "var": lambda v: np.nanvar(v, axis=0, ddof=ddof),
        "min": lambda v: np.nanmin(v, axis=0),
        "max": lambda v: np.nanmax(v, axis=0),
        "median": lambda v: np.nanquantile(v, 0.5, axis=0, method=method),  # median(method=) as NumPy
        "quantile": lambda v: np.nanquantile(v, q, axis=0, method=method),
    }[stat]


def group_labels(time, freq, feb29="own"):
    """Label of each time step, without oceanflow; -1: none."""
    if freq == "month":
        return time.dt.month.values
    if freq == "season":
        return time.dt.season.values
    if freq == "time.dayofyear":
        return time.dt.dayofyear.values
    return monthday_labels(time, feb29)


def pooled_oracle(obj, freq, stat, *, window=None, q=0.9, method="linear", min_count=1, ddof=0, feb29="own"):
    """The statistic of each group's pooled values: a loop over the group's steps and their windows."""
    values = obj.transpose("time", ...).values
    labels = group_labels(obj.time, freq, feb29)
    half = (window or 1) // 2
    found = [label for label in np.unique(labels) if not (isinstance(label, (int, np.integer)) and label < 0)]
    results = []
    for label in found:
        steps = np.flatnonzero(labels == label)
        pooled = np.concatenate([values[max(0, t - half) : t + half + 1] for t in steps])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = np.asarray(_nan_stat(stat, q, method, ddof)(pooled.astype(np.float64)), np.float64)
        valid = np.sum(~np.isnan(pooled), axis=0)
        if stat != "count":
            result = np.where(valid >= max(min_count, 1 if stat != "sum" else 0), result, np.nan)
        results.append(result)
    gdim = GROUP_DIM[freq]
    lead = ("quantile",) if np.ndim(q) and stat == "quantile" else ()
    dims = (gdim, *lead, *obj.transpose("time", ...).dims[1:])
    out = xr.DataArray(np.stack(results), dims=dims, coords={gdim: found})
    return out.transpose(*lead, gdim, ...)


def assert_matches(result, expected, rtol):
    gdim = next(d for d in expected.dims if d in GROUP_DIM.values())
    assert sorted(result[gdim].values.tolist()) == sorted(expected[gdim].values.tolist())
    expected = expected.sel({gdim: result[gdim].values}).transpose(*result.dims)
    np.testing.assert_allclose(result.values, expected.values, rtol=rtol, atol=rtol, equal_nan=True)


def chunked(obj, chunking, tchunk=50):
    if chunking == "numpy":
        return obj
    if chunking == "time-contiguous":
        return obj.chunk({"time": -1, "x": 2})
    if chunking == "one-block":  # one spatial block: row pieces per thread
        return obj.chunk({"time": tchunk, "x": -1, "y": -1})
    return obj.chunk({"time": tchunk, "x": 3})


CHUNKINGS = ["numpy", "time-contiguous", "time-chunked", "one-block"]


# ---------------------------------------------------------------- the registry drives the oracle tests


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("stat", list(STATISTICS))
def test_every_registered_statistic_with_window(stat, chunking):
    obj = make_field("noleap", start="1999-11-01", periods=3 * 365 + 40, nan_fraction=0.1)
    kwargs = {"q": [0.1, 0.9]} if "q" in STATISTICS[stat].parameters else {}
    result = oceanflow.climatology(chunked(obj, chunking), "dayofyear", stat, window=5, **kwargs)
    expected = pooled_oracle(obj, "dayofyear", stat, window=5, q=kwargs.get("q", 0.9))
    assert_matches(result, expected, 1e-10)
    if stat in ("mean", "std", "quantile"):  # without a window too
        plain = oceanflow.climatology(chunked(obj, chunking), "month", stat, **kwargs)
        assert_matches(plain, pooled_oracle(obj, "month", stat, q=kwargs.get("q", 0.9)), 1e-10)


def test_cli_choices_and_docs_table_come_from_the_registry():
    import importlib.util
    from pathlib import Path

    from oceanflow.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    stat = next(a for a in sub.choices["climatology"]._actions if a.dest == "stat")
    assert list(stat.choices) == list(STATISTICS)
    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "oceanflow_statistics.py"
    spec = importlib.util.spec_from_file_location("oceanflow_statistics", path)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    rows = list(table.rows())
    assert [row[0] for row in rows] == [f"``{name}``" for name in STATISTICS]
    assert [row[3] for row in rows] == [f"``time: {s.cell_method}``" for s in STATISTICS.values()]


@pytest.mark.parametrize("stat", ["mean", "var", "min", "count"])
def test_window_in_a_tree_of_combines(stat):
    obj = make_field("all_leap", start="2000-12-20", periods=3 * 366, nan_fraction=0.1)
    result = oceanflow.climatology(obj.chunk(time=100, x=2), "dayofyear", stat, window=7, split_every=3)
    assert_matches(result, pooled_oracle(obj, "dayofyear", stat, window=7), 1e-10)


@pytest.mark.parametrize("stat", ["var", "mean", "min", "quantile"])
def test_a_window_longer_than_a_year_pools_steps_twice(stat):
    obj = make_field("360_day", periods=3 * 360, nan_fraction=0.1)
    kwargs = {"q": [0.2, 0.7]} if stat == "quantile" else {}
    result = oceanflow.climatology(obj.chunk(time=200), "dayofyear", stat, window=451, **kwargs)
    expected = pooled_oracle(obj, "dayofyear", stat, window=451, q=kwargs.get("q", 0.9))
    assert_matches(result, expected, 1e-10)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_quantile_method(method):
    obj = make_field("360_day", periods=2 * 360, nan_fraction=0.3)
    obj = obj.round(0)  # ties
    q = [0.0, 0.05, 0.5, 0.77, 1.0]
    result = oceanflow.climatology(obj.chunk(time=100), "month", "quantile", q=q, method=method)
    assert_matches(result, pooled_oracle(obj, "month", "quantile", q=q, method=method), 1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calendar=st.sampled_from(["numpy", "standard", "noleap", "all_leap", "360_day", "julian"]),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    periods=st.integers(2, 900),
    nan_fraction=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    freq=st.sampled_from(["month", "season", "dayofyear", "time.dayofyear"]),
    feb29=st.sampled_from(["own", "merge", "drop"]),
    window=st.sampled_from([None, 1, 3, 11, 31]),
    stat=st.sampled_from(["median", "quantile", "mean", "var", "max"]),
    q=st.sampled_from([0.9, [0.0, 0.25, 1.0], [0.5]]),
    method=st.sampled_from(["linear", "median_unbiased", "hazen", "weibull", "nearest"]),
    tchunk=st.integers(1, 400),
    xchunk=st.integers(1, 4),
    dtype=st.sampled_from(["float32", "float64"]),
    min_count=st.integers(0, 30),
)
def test_oracle_hypothesis(
    calendar, month, day, periods, nan_fraction, freq, feb29, window, stat, q, method, tchunk, xchunk, dtype, min_count
):
    if freq not in ("dayofyear", "time.dayofyear"):
        window = None
    obj = make_field(
        calendar,
        start=f"1999-{month:02d}-{day:02d}",
        periods=periods,
        shape=(2, 4),
        dtype=dtype,
        nan_fraction=nan_fraction,
        seed=periods,
    )
    options = {"q": q, "method": method} if stat == "quantile" else {}
    if stat == "median":
        options = {"method": method}
    data = obj.chunk({"time": tchunk, "x": xchunk})
    result = oceanflow.climatology(data, freq, stat, window=window, min_count=min_count, feb29=feb29, **options)
    q = q if stat == "quantile" else 0.5
    expected = pooled_oracle(obj, freq, stat, window=window, min_count=min_count, feb29=feb29, q=q, method=method)
    assert result.dtype == dtype
    assert_matches(result, expected, 2e-5 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_window_quantiles_across_lane_tiles(dtype):
    """More pixels than one pass of the merge kernel takes (and not a multiple), NaN everywhere:
    columns with different numbers of values side by side."""
    from oceanflow.kernels.quantiles import LANES

    obj = make_field("noleap", start="2000-12-01", periods=2 * 365 + 20, shape=(3, LANES // 2 + 7), dtype=dtype)
    obj = obj.where(np.random.default_rng(1).random(obj.shape) > 0.3)
    q = [0.0, 0.1, 0.5, 0.9, 1.0]
    result = oceanflow.climatology(obj.chunk(time=100), "dayofyear", "quantile", q=q, window=7, method="hazen")
    expected = pooled_oracle(obj, "dayofyear", "quantile", window=7, q=q, method="hazen")
    assert_matches(result, expected, 2e-6 if dtype == "float32" else 1e-12)


# ---------------------------------------------------------------- against xarray and xclim


@pytest.mark.parametrize("freq", ["month", "season", "time.dayofyear"])
def test_against_xarray_groupby(freq):
    obj = make_field("standard", periods=3 * 365, nan_fraction=0.2)
    key = {"month": "time.month", "season": "time.season", "time.dayofyear": "time.dayofyear"}[freq]
    data = obj.chunk(time=73, x=2)
    grouped = obj.groupby(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = grouped.median()
        quantiles = grouped.quantile([0.1, 0.9], method="median_unbiased")
    gdim = GROUP_DIM[freq]
    result = oceanflow.climatology(data, freq, "median")
    assert_matches(result, median.rename({key.split(".")[1]: gdim}), 1e-12)
    result = oceanflow.climatology(data, freq, "quantile", q=[0.1, 0.9], method="median_unbiased")
    assert_matches(result, quantiles.rename({key.split(".")[1]: gdim}), 1e-12)
    np.testing.assert_array_equal(result["quantile"].values, [0.1, 0.9])


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "standard"])
def test_against_xclim_percentile_doy(calendar):
    xclim_calendar = pytest.importorskip("xclim.core.calendar")
    obj = make_field(calendar, start="2001-01-01", periods=5 * 365 + 30, nan_fraction=0.05, dtype="float64")
    data = obj.chunk(time=365)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = xclim_calendar.percentile_doy(obj, window=5, per=[10, 90]).compute()
    result = oceanflow.climatology(data, "time.dayofyear", "quantile", q=[0.1, 0.9], window=5, method="median_unbiased")
    result = result.rename(quantile="percentiles").assign_coords(percentiles=[10, 90])
    if calendar == "standard":  # xclim interpolates days 1-365 onto 1-366 for calendars with leap years
        result = xclim_calendar.adjust_doy_calendar(result.sel(dayofyear=result.dayofyear < 366), obj)
    np.testing.assert_allclose(
        result.values, expected.transpose(*result.dims).values, rtol=1e-12, atol=1e-12, equal_nan=True
    )


# ---------------------------------------------------------------- shape, metadata, graph


def test_scalar_q_and_metadata():
    obj = make_field(periods=400).assign_attrs(cell_methods="area: mean")
    result = oceanflow.climatology(obj, "month", "quantile", q=0.9)
    assert result.dims == ("month", "y", "x") and float(result["quantile"]) == 0.9
    assert result.attrs["units"] == "degC"
    assert result.attrs["cell_methods"] == "area: mean time: percentile within years time: percentile over years"
    median = oceanflow.climatology(obj.to_dataset(), "month", "median")
    assert median.sst.attrs["cell_methods"].endswith("time: median over years")
    assert "climatology_bounds" in median


def test_quantile_dimension_comes_first_on_datasets():
    obj = make_field("noleap", periods=2 * 365)
    ds = xr.Dataset({"sst": obj.transpose("y", "time", "x"), "depth": ("y", [1.0, 2.0, 3.0])})
    result = oceanflow.climatology(ds.chunk(time=100), "dayofyear", "quantile", q=[0.5, 0.9], window=11)
    assert result.sst.dims == ("quantile", "y", "dayofyear", "x")
    xr.testing.assert_identical(result.depth, ds.depth)


@pytest.mark.parametrize("stat", ["median", "quantile", "mean", "std"])
def test_tasks_follow_the_chunks(stat):
    obj = make_field("noleap", periods=6 * 365, shape=(4, 6))
    data = obj.chunk(time=365, x=3, y=2)
    spatial_blocks = data.data.numblocks[1] * data.data.numblocks[2]
    options = {"q": [0.1, 0.9]} if stat == "quantile" else {}
    with dask.config.set(num_workers=2):
        result = oceanflow.climatology(data, "dayofyear", stat, window=11, **options)
    assert not any("rechunk" in name for name in result.data.dask.layers)
    assert added_tasks(result, data) <= data.data.npartitions + 2 * spatial_blocks + 10
    assert_matches(result.compute(), pooled_oracle(obj, "dayofyear", stat, window=11, q=[0.1, 0.9]), 1e-10)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stat": "quantile"}, "needs q="),
        ({"stat": "quantile", "q": 90}, r"\[0, 1\]"),
        ({"stat": "quantile", "q": [0.5, -0.1]}, r"\[0, 1\]"),
        ({"stat": "quantile", "q": []}, "empty"),
        ({"stat": "quantile", "q": "0.9"}, "number"),
        ({"stat": "quantile", "q": 0.9, "method": "type7"}, "unknown quantile method"),
        ({"stat": "median", "q": 0.9}, "q= applies"),
        ({"stat": "mean", "method": "hazen"}, "method= applies"),
        ({"stat": "mean", "window": 4}, "odd"),
        ({"stat": "mean", "window": -3}, "odd"),
        ({"stat": "mean", "window": 2.5}, "odd"),
        ({"stat": "quantile", "q": 0.9, "window": 5, "freq": "month"}, "daily climatologies"),
        ({"stat": "median", "weights": "days_in_month"}, "weights apply"),
        ({"stat": "mode"}, "unknown stat"),
    ],
)
def test_bad_input(kwargs, message):
    obj = make_field("standard", start="2001-01-01", periods=2 * 365)
    kwargs = {"freq": "dayofyear", **kwargs}
    with pytest.raises(ValueError, match=message):
        oceanflow.climatology(obj, **kwargs)


def test_min_count_gives_nan_quietly():
    obj = make_field(periods=400, nan_fraction=0.0)
    obj[:, 0, 0] = np.nan
    obj[: 400 - 40, 1, 1] = np.nan  # the last 40 days only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = oceanflow.climatology(obj.chunk(time=100), "month", "median", min_count=20).compute()
    assert result[:, 0, 0].isnull().all()
    counts = obj[:, 1, 1].groupby("time.month").count()
    np.testing.assert_array_equal(result[:, 1, 1].notnull().values, (counts >= 20).values)


# ---------------------------------------------------------------- command line


def test_cli_day_of_year_percentile(tmp_path):
    import subprocess
    import sys

    obj = make_field("noleap", periods=3 * 365, nan_fraction=0.1, dtype="float32")
    obj.to_dataset().to_netcdf(tmp_path / "in.nc")
    out = tmp_path / "p90.zarr"
    command = [sys.executable, "-m", "oceanflow", "climatology", tmp_path / "in.nc", "-o", out, "--quiet"]
    options = ["--freq", "dayofyear", "--stat", "quantile", "--q", "0.9", "--window", "11"]
    run = subprocess.run([*map(str, command), *options, "--method", "median_unbiased"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = oceanflow.open_dataset(out).sst.load()  # the CF climatological time axis read back as dayofyear
    expected = pooled_oracle(obj, "dayofyear", "quantile", window=11, q=0.9, method="median_unbiased")
    assert_matches(result, expected, 2e-6)
    assert result.attrs["cell_methods"] == "time: percentile within years time: percentile over years"
    no_q = ["--overwrite", "--freq", "dayofyear", "--stat", "quantile", "--window", "5"]
    bad = subprocess.run([*map(str, command), *no_q], capture_output=True, text=True)
    assert bad.returncode != 0 and "needs q=" in bad.stderr


# ---------------------------------------------------------------- memory: chunks planned and checked


def test_explain_chunks_plans_whole_series_blocks(tmp_path):
    from oceanflow.chunking import explain_chunks, plan_chunks, series_target

    obj = make_field("noleap", periods=4 * 365, shape=(40, 30), dtype="float32")
    path = tmp_path / "sst.nc"
    obj.to_dataset().to_netcdf(path, encoding={"sst": {"chunksizes": (365, 40, 30)}})
    lazy = xr.open_dataset(path).sst
    memory = {"memory_per_worker": 4 * 2**20, "threads_per_worker": 1}  # 1 MiB of series per task
    plan = plan_chunks(lazy, operation="quantile", **memory)
    assert plan.chunks["time"] % 365 == 0  # whole storage chunks along time
    assert plan.task_bytes <= series_target(**memory) == 2**20
    assert plan.chunks["y"] < 40  # storage chunks split in space so that a block's series fits
    text = explain_chunks(lazy, operation="quantile", **memory)
    assert "whole series along 'time' of one spatial block" in text
    with pytest.raises(ValueError, match="one pixel's series"):
        plan_chunks(lazy, operation="quantile", memory_per_worker=4000, threads_per_worker=1)
    result = oceanflow.climatology(lazy.chunk(plan.chunks), "dayofyear", "quantile", q=0.9, window=5)
    assert_matches(result, pooled_oracle(obj, "dayofyear", "quantile", window=5, q=0.9), 2e-6)


@pytest.mark.parametrize("step", [365, 73])  # storage chunks (step, 40, 30) of 1.75 MB and 350 kB
def test_planned_reads_decode_storage_chunks_within_the_target(tmp_path, monkeypatch, step):
    """Spatial blocks split the storage chunks: a read decodes every storage chunk it overlaps
    whole and holds their compressed bytes too, so the planned time chunks keep both within the
    chunk target, and explain_chunks says them (counted on a real Zarr store: the chunks each
    read fetches)."""
    import zarr

    from oceanflow.chunking import READ_COPIES, default_target, explain_chunks, plan_chunks

    obj = make_field("noleap", periods=2 * 365, shape=(40, 30), dtype="float32")
    obj.to_dataset().to_zarr(tmp_path / "sst.zarr", encoding={"sst": {"chunks": (step, 40, 30)}})
    fetched, get = [], zarr.storage.LocalStore.get

    async def counting(self, key, prototype=None, byte_range=None):
        fetched.append(key)
        return await get(self, key, prototype, byte_range)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting)  # every store xarray opens for the path
    lazy = xr.open_zarr(tmp_path / "sst.zarr", chunks=None).sst
    memory = {"memory_per_worker": 4 * 2**20, "threads_per_worker": 1}  # 1 MiB series and chunk target
    plan = plan_chunks(lazy, operation="quantile", **memory)
    assert plan.chunks["y"] < 40 and plan.chunks["time"] == step  # one storage chunk per read
    storage_bytes = step * 40 * 30 * 4
    data = lazy.chunk(plan.chunks).data
    decoded = []
    for index in np.ndindex(data.numblocks):
        fetched.clear()
        data.blocks[index].compute(scheduler="synchronous")
        decoded.append(len({k for k in fetched if k.startswith("sst/c/")}) * storage_bytes)
    assert max(decoded) == plan.decoded
    assert READ_COPIES * (plan.decoded + storage_bytes) > default_target(**memory)  # two would not fit
    assert "decodes the whole storage chunks it overlaps" in explain_chunks(lazy, operation="quantile", **memory)
    corner = {"y": slice(8, 12), "x": slice(27, 30)}  # the oracle on a corner of pixels (it loops over them)
    result = oceanflow.climatology(lazy, "dayofyear", "quantile", q=0.9, window=5).isel(corner)
    assert_matches(result, pooled_oracle(obj.isel(corner), "dayofyear", "quantile", window=5, q=0.9), 2e-6)


def test_chunks_that_cannot_fit_are_refused_before_anything_runs(monkeypatch):
    import oceanflow.chunking

    blocks = make_field("noleap", periods=2 * 365, shape=(2, 10)).chunk(time=365)  # 116,800 bytes of series
    monkeypatch.setattr(oceanflow.chunking, "_worker_resources", lambda: (120_000, 1))  # just fits
    assert_matches(oceanflow.climatology(blocks, "month", "median"), pooled_oracle(blocks, "month", "median"), 1e-12)
    monkeypatch.setattr(oceanflow.chunking, "_worker_resources", lambda: (100_000, 1))  # a small worker
    with pytest.raises(ValueError, match="smaller spatial chunks"):
        oceanflow.climatology(blocks, "month", "median")
    long = make_field("noleap", periods=40 * 365, shape=(1, 1)).chunk(time=3650)
    with pytest.raises(ValueError, match="one pixel's series"):
        oceanflow.climatology(long, "month", "quantile", q=0.5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_monthly_series_selected_on_time_chunks(monkeypatch, dtype):
    """Months of many years: the order statistics are selected on the time-major chunks
    (sampled thresholds, counts, the values of one bin per pixel), exactly, whatever the
    sample says: pixels almost all NaN (a sample of few values), all NaN, ties, infinities."""
    from oceanflow.climatology import engine

    obj = make_field("noleap", start="1990-01-01", periods=12 * 365, shape=(3, 7), dtype=dtype, nan_fraction=0.1)
    values = obj.values
    rng = np.random.default_rng(3)
    values[:, 0, 0] = np.where(rng.random(values.shape[0]) < 0.97, np.nan, values[:, 0, 0])
    values[:, 0, 1] = np.nan
    values[:, 0, 2] = np.round(values[:, 0, 2] / 4)  # ties
    values[:, 1, 4] = np.round(values[:, 1, 4] / 4)  # ties in the last pixel of a tile's second word of marks
    values[::97, 1, 0] = np.inf
    values[::89, 1, 1] = -np.inf
    values[: 6 * 365, 2, :] += 100  # the first half far above the second: thresholds from both
    used = []
    monkeypatch.setattr(engine, "STREAM_PIXELS", 12)  # tiles of 12 and 9 pixels: the collect's marks in 8-pixel words
    monkeypatch.setattr(engine, "GATHER_BYTES", 64)  # the bins collected a few groups at a time
    monkeypatch.setattr(engine, "streamed", lambda *a, seen=engine.streamed: used.append(seen(*a)) or used[-1])
    q = [0.0, 0.1, 0.5, 0.9, 1.0]
    for method in ("linear", "median_unbiased", "nearest"):
        result = oceanflow.climatology(obj.chunk(time=365), "month", "quantile", q=q, method=method, min_count=20)
        expected = pooled_oracle(obj, "month", "quantile", q=q, method=method, min_count=20)
        assert_matches(result, expected, 2e-6 if dtype == "float32" else 1e-12)
    assert used and all(used)


def _chain_keys(result):
    graph = dict(result.data.__dask_graph__())
    return graph, sorted((k for k in graph if str(k[0]).startswith("climatology-order-fold")), key=str)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calendar=st.sampled_from(["numpy", "noleap", "360_day", "standard"]),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    periods=st.integers(700, 2200),
    tchunk=st.integers(3, 600),
    xchunk=st.integers(1, 5),
    freq=st.sampled_from(["month", "season"]),
    q=st.sampled_from([0.5, [0.0, 0.1, 0.9, 1.0], [0.33]]),
    nan_fraction=st.sampled_from([0.0, 0.4, 0.95]),
    trend=st.sampled_from([0.0, 0.01]),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_streamed_chain_on_any_time_chunking(
    calendar, month, day, periods, tchunk, xchunk, freq, q, nan_fraction, trend, dtype
):
    """Monthly and seasonal order statistics of time-chunked data: one task per chunk counts it as it
    arrives (thresholds sampled from the first chunks, however many steps they hold; a trend makes the
    first years' sample miss the quantiles, which only widens the bins), then exact selection."""
    obj = make_field(
        calendar,
        start=f"1999-{month:02d}-{day:02d}",
        periods=periods,
        shape=(2, 5),
        dtype=dtype,
        nan_fraction=nan_fraction,
    )
    obj = (obj + trend * np.arange(periods)[:, None, None]).astype(dtype)
    result = oceanflow.climatology(obj.chunk(time=tchunk, x=xchunk), freq, "quantile", q=q, method="hazen")
    selected_on_chunks = (12 if freq == "month" else 4) * np.size(q) * 26 <= periods  # else gathered
    assert bool(_chain_keys(result)[1]) == selected_on_chunks
    expected = pooled_oracle(obj, freq, "quantile", q=q, method="hazen")
    assert_matches(result, expected, 2e-6 if dtype == "float32" else 1e-12)


def test_streamed_chain_tasks_purity_and_no_copies():
    """One step per input chunk and one final task per spatial block (as many blocks as threads);
    a step re-run on its stored input gives the same counts and leaves its input untouched; the
    chunks are held, not copied."""
    obj = make_field("noleap", periods=6 * 365, shape=(4, 6), nan_fraction=0.2)
    data = obj.chunk(time=200, x=3)  # 2 spatial blocks
    data = data.copy(data=data.data.map_blocks(np.array))  # chunks in memory of their own, as a file's
    with dask.config.set(num_workers=2):
        result = oceanflow.climatology(data, "month", "median")
    assert added_tasks(result, data) <= data.data.npartitions + 2 * 2 + 10
    graph, steps = _chain_keys(result)
    finals = [k for k in graph if str(k[0]).startswith("climatology-order-") and k not in steps]
    assert len(steps) == data.data.npartitions and len(finals) == 2
    key = next(k for k in steps if k[1] == 5)  # counted, with counts before it
    function, previous_key, block_key, *rest = graph[key]
    previous, block = dask.get(graph, [previous_key, block_key])
    rest = [graph[r] if isinstance(r, str) and r in graph else r for r in rest]  # the shared arguments
    assert previous.counts is not None
    kept = [c.copy() for c in previous.counts]
    first, again = function(previous, block, *rest), function(previous, block, *rest)
    for a, b, c in zip(first.counts, again.counts, kept, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    for c, k in zip(previous.counts, kept, strict=True):
        np.testing.assert_array_equal(c, k)
    assert np.shares_memory(first.blocks[-1], block) and first.blocks[0] is previous.blocks[0]
    assert_matches(result.compute(), pooled_oracle(obj, "month", "median"), 1e-12)
