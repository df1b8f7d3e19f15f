"""oceanflow.climatology and oceanflow.anomaly against xarray's groupby (flox off)."""

import contextlib
import datetime
import json
import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from conftest import CALENDARS, added_tasks, make_field, monthday_labels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oceanflow
from oceanflow.climatology import EmptyGroupsWarning

pytestmark = pytest.mark.usefixtures("no_flox")

STATS = ["mean", "sum", "count", "std", "var", "min", "max"]
GROUP_DIM = {"month": "month", "season": "season", "dayofyear": "dayofyear", "time.dayofyear": "dayofyear"}


def oracle_key(time, freq, feb29="own"):
    """Group labels of each time step, computed without oceanflow."""
    if freq == "month":
        return time.dt.month.rename("month")
    if freq == "season":
        return time.dt.season.rename("season")
    if freq == "time.dayofyear":
        return time.dt.dayofyear.rename("dayofyear")
    labels = xr.DataArray(monthday_labels(time, feb29), dims=time.dims, coords=time.coords, name="dayofyear")
    return labels.where(labels > 0)


def oracle(obj, freq, stat, *, min_count=1, ddof=0, feb29="own"):
    grouped = obj.groupby(oracle_key(obj.time, freq, feb29))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat == "sum":
            return grouped.sum(min_count=min_count)
        if stat == "count":
            return grouped.count()
        kwargs = {"ddof": ddof} if stat in ("std", "var") else {}
        result = getattr(grouped, stat)(**kwargs)
    return result.where(grouped.count() >= min_count)


def assert_matches(result, expected, dim, rtol):
    expected = expected.sel({dim: result[dim].values}).transpose(*result.dims)
    assert result[dim].size == expected[dim].size
    np.testing.assert_allclose(result.values, expected.values, rtol=rtol, atol=rtol, equal_nan=True)


CHUNKINGS = ["numpy", "numpy-threads", "time-contiguous", "time-chunked", "time-chunked-one-block"]


def chunked(obj, chunking, tchunk=50):
    if chunking.startswith("numpy"):
        return obj
    if chunking == "time-contiguous":
        return obj.chunk({"time": -1, "x": 2})
    if chunking == "time-chunked-one-block":  # the folds split the block's rows between cores
        return obj.chunk({"time": tchunk, "x": -1})
    return obj.chunk({"time": tchunk, "x": 3})


def threads_for(chunking):
    """In memory, "numpy-threads" splits even a few pixels between 3 threads."""
    if chunking == "numpy-threads":
        return oceanflow.set_options(num_threads=3, min_elements_per_thread=1)
    return contextlib.nullcontext()


# ---------------------------------------------------------------- oracle, every stat and freq


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("freq", ["month", "season", "dayofyear", "time.dayofyear"])
@pytest.mark.parametrize("stat", STATS)
def test_every_stat_and_freq(stat, freq, chunking):
    obj = make_field("standard", start="1999-06-01", periods=3 * 365 + 20)
    with threads_for(chunking):
        result = oceanflow.climatology(chunked(obj, chunking), freq, stat)
    if not chunking.startswith("numpy"):
        assert result.chunks is not None
    assert_matches(result, oracle(obj, freq, stat), GROUP_DIM[freq], 1e-10)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calendar=st.sampled_from(CALENDARS),
    year=st.integers(1901, 2099),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    periods=st.integers(2, 800),
    nan_fraction=st.sampled_from([0.0, 0.2, 0.7, 1.0]),
    freq=st.sampled_from(["month", "season", "dayofyear", "time.dayofyear"]),
    feb29=st.sampled_from(["own", "merge", "drop"]),
    stat=st.sampled_from(STATS),
    chunking=st.sampled_from(CHUNKINGS),
    tchunk=st.integers(10, 300),
    dtype=st.sampled_from(["float32", "float64"]),
    min_count=st.integers(0, 3),
)
def test_oracle_hypothesis(
    calendar, year, month, day, periods, nan_fraction, freq, feb29, stat, chunking, tchunk, dtype, min_count
):
    obj = make_field(
        calendar,
        start=f"{year:04d}-{month:02d}-{day:02d}",
        periods=periods,
        shape=(2, 5),
        dtype=dtype,
        nan_fraction=nan_fraction,
        seed=periods,
    )
    with threads_for(chunking):
        result = oceanflow.climatology(chunked(obj, chunking, tchunk), freq, stat, min_count=min_count, feb29=feb29)
    expected = oracle(obj, freq, stat, min_count=min_count, feb29=feb29)
    assert result.dtype == (np.int64 if stat == "count" else dtype)
    assert_matches(result, expected, GROUP_DIM[freq], 2e-5 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_ddof_and_min_count(ddof):
    obj = make_field(periods=400, nan_fraction=0.5).chunk(time=100)
    for stat in ("std", "var"):
        result = oceanflow.climatology(obj, "month", stat, ddof=ddof, min_count=4)
        assert_matches(result, oracle(obj, "month", stat, ddof=ddof, min_count=4), "month", 1e-10)


def test_time_not_first_and_dataset():
    obj = make_field("noleap", periods=500)
    ds = xr.Dataset(
        {"sst": obj.transpose("y", "time", "x"), "depth": ("y", [1.0, 2.0, 3.0]), "salt": obj * 2},
        attrs={"title": "test"},
    )
    result = oceanflow.climatology(ds.chunk(time=120), "season", "max")
    assert result.sst.dims == ("y", "season", "x")
    assert result.attrs == {"title": "test"}
    assert_matches(result.sst, oracle(obj, "season", "max"), "season", 1e-12)
    assert_matches(result.salt, oracle(obj * 2, "season", "max"), "season", 1e-12)
    xr.testing.assert_identical(result.depth, ds.depth)
    assert result.season.attrs["climatology"] == "climatology_bounds"
    groups = oracle_key(obj.time, "season")
    for label, (first, last) in zip(result.season.values, result.climatology_bounds.values, strict=True):
        times = obj.time.values[groups.values == label]  # daily steps at midnight: each covers one day
        assert (first, last) == (times[0], times[-1] + datetime.timedelta(days=1))


def test_metadata():
    obj = make_field(periods=400).assign_attrs(cell_methods="area: mean")
    result = oceanflow.climatology(obj, "month", "std")
    assert result.attrs["cell_methods"] == (
        "area: mean time: standard_deviation within years time: standard_deviation over years"
    )
    assert result.attrs["units"] == "degC" and result.name == "sst"
    xr.testing.assert_identical(result.y, obj.y)
    assert oceanflow.climatology(obj, "month", "var").attrs["units"] == "(degC)2"


def test_user_labels_and_seasons():
    obj = make_field(periods=400)
    labels = xr.DataArray(
        np.where(obj.time.dt.month < 7, "H1", "H2"), dims="time", coords={"time": obj.time}, name="half"
    )
    assert_matches(oceanflow.climatology(obj.chunk(time=90), labels), obj.groupby(labels).mean(), "half", 1e-12)
    result = oceanflow.climatology(obj, "season", seasons=["DJFM", "JJAS"])
    month = obj.time.dt.month
    expected = obj.groupby(
        xr.where(month.isin([12, 1, 2, 3]), "DJFM", "JJAS")
        .where(month.isin([12, 1, 2, 3, 6, 7, 8, 9]))
        .rename("season")
    ).mean()
    assert_matches(result, expected, "season", 1e-12)


def test_annual_has_no_group_dimension():
    obj = make_field(periods=400)
    result = oceanflow.climatology(obj.chunk(time=100), "annual", "min")
    np.testing.assert_allclose(result.values, obj.min("time").values)
    assert result.dims == ("y", "x")


# ---------------------------------------------------------------- base, weights, smoothing


@pytest.mark.parametrize("calendar", ["numpy", "360_day"])
def test_base_period(calendar):
    obj = make_field(calendar, periods=4 * 365)
    result = oceanflow.climatology(obj.chunk(time=200), "month", base=("2001-01-01", "2002-12"))
    assert_matches(result, oracle(obj.sel(time=slice("2001-01-01", "2002-12")), "month", "mean"), "month", 1e-12)


def test_days_in_month_weights_by_hand():
    time = xr.date_range("2001-12-01", periods=3, freq="MS", calendar="noleap", use_cftime=True)
    obj = xr.DataArray([1.0, 2.0, 4.0], dims="time", coords={"time": time})
    result = oceanflow.climatology(obj, "season", weights="days_in_month")
    assert result.sel(season="DJF").item() == pytest.approx((31 * 1 + 31 * 2 + 28 * 4) / 90)
    leap = obj.assign_coords(
        time=xr.date_range("2003-12-01", periods=3, freq="MS", calendar="all_leap", use_cftime=True)
    )
    assert oceanflow.climatology(leap, "annual", weights="days_in_month").item() == pytest.approx(
        (31 * 1 + 31 * 2 + 29 * 4) / 91
    )


@pytest.mark.parametrize("calendar", ["standard", "360_day", "julian"])
def test_days_in_month_weights_match_weighted(calendar):
    obj = make_field(calendar, periods=30, freq="MS")
    result = oceanflow.climatology(obj.chunk(time=7), "season", "mean", weights="days_in_month")
    days = obj.time.dt.days_in_month
    key = oracle_key(obj.time, "season")
    expected = xr.concat(
        [
            obj.where(key == s).weighted(days.where(key == s, 0)).mean("time").expand_dims(season=[s])
            for s in np.unique(key.values)
        ],
        "season",
    )
    assert_matches(result, expected, "season", 1e-12)


@pytest.mark.parametrize(
    "freq, calendar, feb29",
    [("dayofyear", "standard", "own"), ("dayofyear", "standard", "merge"), ("time.dayofyear", "360_day", "own")],
)
def test_smoothing_is_fft_truncation(freq, calendar, feb29):
    obj = make_field(calendar, periods=5 * 365, nan_fraction=0.0)
    raw = oracle(obj, freq, "mean", feb29=feb29)
    spectrum = np.fft.rfft(raw.transpose(..., "dayofyear").values, axis=-1)
    spectrum[..., 4:] = 0
    smoothed = np.fft.irfft(spectrum, n=raw.dayofyear.size, axis=-1)
    expected = raw.transpose(..., "dayofyear").copy(data=smoothed)
    result = oceanflow.climatology(obj.chunk(time=400), freq, smooth=3, feb29=feb29)
    assert_matches(result, expected, "dayofyear", 1e-10)


# ---------------------------------------------------------------- anomaly


@pytest.mark.parametrize("chunking", ["numpy", "time-contiguous", "time-chunked"])
@pytest.mark.parametrize("freq", ["month", "dayofyear"])
def test_anomaly_kinds(freq, chunking):
    obj = make_field("all_leap", periods=800, dtype="float32")
    data = chunked(obj, chunking, 100)
    key = oracle_key(obj.time, freq)
    mean, std = obj.groupby(key).mean(), obj.groupby(key).std()
    expected = {
        "absolute": obj.groupby(key) - mean,
        "relative": obj.groupby(key) / mean,
        "standardized": (obj.groupby(key) - mean).groupby(key) / std,
    }
    for kind, want in expected.items():
        result = oceanflow.anomaly(data, freq=freq, kind=kind)
        assert result.dims == obj.dims and result.chunks == data.chunks
        xr.testing.assert_identical(result.time, obj.time)
        np.testing.assert_allclose(result.values, want.transpose(*obj.dims).values, rtol=1e-5, atol=1e-5)


def test_anomaly_with_given_climatology_and_base():
    obj = make_field(periods=3 * 365).chunk(time=100)
    clim = oceanflow.climatology(obj, "month", base=("2000", "2001"))
    result = oceanflow.anomaly(obj, clim)
    base = obj.sel(time=slice("2000", "2001"))
    expected = obj.groupby("time.month") - base.groupby("time.month").mean()
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-12, atol=1e-12)
    again = oceanflow.anomaly(obj, freq="month", base=("2000", "2001"))
    np.testing.assert_allclose(again.values, expected.values, rtol=1e-12, atol=1e-12)
    ds = oceanflow.anomaly(obj.to_dataset(), oceanflow.climatology(obj.to_dataset(), "month"))
    np.testing.assert_allclose(ds.sst.values, (obj.groupby("time.month") - obj.groupby("time.month").mean()).values)


def test_anomaly_is_one_task_per_chunk():
    obj = make_field(periods=400).chunk(time=50, x=2)
    clim = oceanflow.climatology(obj, "month").compute()
    result = oceanflow.anomaly(obj, clim)
    assert added_tasks(result, obj) <= 2 * obj.data.npartitions
    assert _layer_size(result, "anomaly_block") == obj.data.npartitions
    assert not any("rechunk" in name for name in result.data.dask.layers)


# ---------------------------------------------------------------- graph size


def _layer_size(result, name):
    layers = [layer for key, layer in result.data.dask.layers.items() if name in key]
    assert len(layers) == 1
    return len(layers[0])


@pytest.mark.parametrize("tchunk", [100, 25])
def test_time_chunked_graph_is_linear_in_chunks(tchunk):
    obj = make_field(periods=1000, shape=(4, 6))
    data = obj.chunk(time=tchunk, x=3)
    result = oceanflow.climatology(data, "dayofyear", "std", split_every=4)
    assert not any("rechunk" in name for name in result.data.dask.layers)
    # per block: partials, codes and weights slices, a pass-through; plus the combine tree
    assert added_tasks(result, data) <= 4 * data.data.npartitions
    assert_matches(result.compute(), oracle(obj, "dayofyear", "std"), "dayofyear", 1e-10)


@pytest.mark.parametrize("stat", ["mean", "var", "min", "count"])
def test_day_of_year_on_time_chunks_folds_in_order(stat):
    obj = make_field(periods=4 * 365, shape=(4, 6))
    data = obj.chunk(time=365, x=3)
    with dask.config.set(num_workers=2):  # as many threads as spatial blocks: no block is split
        result = oceanflow.climatology(data, "dayofyear", stat)
        tree = oceanflow.climatology(data, "month", stat, split_every=2)  # in parallel over time
    tasks = data.data.npartitions + data.data.numblocks[2] * (1 + (stat == "count"))  # count: + astype(int)
    assert _folded(result) and added_tasks(result, data) == tasks
    assert_matches(result.compute(), oracle(obj, "dayofyear", stat), "dayofyear", 1e-10)
    assert not _folded(tree)
    assert_matches(tree.compute(), oracle(obj, "month", stat), "month", 1e-10)


@pytest.mark.parametrize("stat", ["mean", "std", "max"])
def test_fewer_spatial_blocks_than_threads_fold_on_row_pieces(stat):
    obj = make_field(periods=3 * 365, shape=(5, 6))
    data = obj.chunk(time=100, x=3)  # 2 spatial blocks
    with dask.config.set(num_workers=5):
        monthly = oceanflow.climatology(data, "month", stat)
    with dask.config.set(num_workers=1):
        alone = oceanflow.climatology(data, "month", stat)
    tree = oceanflow.climatology(data, "month", stat, split_every=4)
    assert _folded(monthly) and not _folded(tree)
    np.testing.assert_array_equal(monthly.values, alone.values)  # the same numbers on any number of threads
    # 5 threads, 2 blocks: the 5 rows of each block in ceil(5 / 2) = 3 pieces
    assert monthly.chunks[monthly.dims.index("y")] == (1, 2, 2)
    assert monthly.data.npartitions == 6
    for result in (monthly, tree):
        assert_matches(result.compute(), oracle(obj, "month", stat), "month", 1e-10)


def _folded(result):
    return any(str(key[0]).startswith("climatology-fold") for key in result.data.__dask_graph__())


# ---------------------------------------------------------------- pure tasks


def _fold_tasks(result):
    graph = dict(result.data.__dask_graph__())
    return graph, sorted(key for key in graph if str(key[0]).startswith("climatology-fold"))


@pytest.mark.parametrize("stat", ["mean", "std", "max"])
def test_a_fold_task_rerun_on_its_stored_input_gives_the_same_partial(stat):
    obj = make_field(periods=4 * 365, shape=(4, 6))
    data = obj.chunk(time=365, x=3)
    result = oceanflow.climatology(data, "month", stat)
    graph, folds = _fold_tasks(result)
    key = next(k for k in folds if k[1] == 2)  # a task with a previous partial
    function, previous_key, block_key, *rest = graph[key]
    previous, block = dask.get(graph, [previous_key, block_key])
    kept = previous.partials.copy()
    first = function(previous, block, *rest)
    again = function(previous, block, *rest)  # a retry, or a recomputation while the input is held
    np.testing.assert_array_equal(previous.partials, kept)  # its input is untouched
    np.testing.assert_array_equal(again.partials, first.partials)
    np.testing.assert_array_equal(first.partials, dask.get(graph, key).partials)


def test_a_fold_reuses_the_buffers_of_released_steps_only():
    obj = make_field(periods=4 * 365, shape=(4, 6))
    result = oceanflow.climatology(obj.chunk(time=365, x=-1), "dayofyear", "mean")
    graph, folds = _fold_tasks(result)
    chain = [k for k in folds if k[2:] == folds[0][2:]]
    inputs = dask.get(graph, [graph[k][2] for k in chain])
    step = graph[chain[0]][0]

    def run(k, previous):
        return step(previous, inputs[k], *graph[chain[k]][3:])

    first = run(0, None)
    second = run(1, first)  # its spare is the buffer of the first step's partials
    kept = first.partials.copy()
    third = run(2, second)  # while the first step's result is held, its buffer is not touched
    assert not np.shares_memory(third.partials, first.partials)
    np.testing.assert_array_equal(first.partials, kept)
    expected = third.partials.copy()
    address = _address(first.partials)
    del first, third  # as dask releases a step's result once the next step has run
    third = run(2, second)
    assert _address(third.partials) == address  # the released buffer is reused
    np.testing.assert_array_equal(third.partials, expected)


def _address(array):
    return array.__array_interface__["data"][0]


def _flaky_read(path, rows, markers):
    """Read rows of a .npy file; the first read of each chunk fails, as a flaky file system would."""
    marker = markers / f"read-{rows.start}"
    if not marker.exists():
        marker.touch()
        raise OSError(f"flaky read of rows {rows}")
    return np.load(path, mmap_mode="r")[rows].copy()


def _fails_once_after(function, name, markers, *args):
    """Run a task, then fail the first time (the task's work done, its input still held: a retry re-runs it)."""
    value = function(*args)
    marker = markers / name
    if not marker.exists():
        marker.touch()
        raise OSError(f"lost the result of {name}")
    return value


def test_retried_tasks_on_a_local_cluster_give_the_exact_result(tmp_path):
    import dask.array as dsa
    import distributed
    from dask.highlevelgraph import HighLevelGraph

    obj = make_field(periods=4 * 365, shape=(4, 6))
    path = tmp_path / "sst.npy"
    np.save(path, obj.values)
    markers = tmp_path / "markers"
    markers.mkdir()
    step = 365
    name = "flaky-read"
    loads = {(name, k, 0, 0): (_flaky_read, path, slice(k * step, (k + 1) * step), markers) for k in range(4)}
    chunks = ((step,) * 4, (4,), (6,))
    read = dsa.Array(HighLevelGraph.from_collections(name, loads, dependencies=[]), name, chunks, dtype=obj.dtype)
    expected = oceanflow.climatology(obj, "month", "mean")
    result = oceanflow.climatology(obj.copy(data=read), "month", "mean")
    graph, folds = _fold_tasks(result)
    for key in folds:  # every fold task fails once after doing its work
        function, *args = graph[key]
        graph[key] = (_fails_once_after, function, f"fold-{key[1:]}", markers, *args)
    layers = HighLevelGraph.from_collections(result.data.name, graph, dependencies=[])
    flaky = dsa.Array(layers, result.data.name, result.data.chunks, meta=result.data._meta)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        values = client.compute(flaky, retries=2).result()
    assert len(list(markers.iterdir())) == 4 + len(folds)  # every read and every fold failed once
    np.testing.assert_array_equal(values, expected.values)


def test_time_contiguous_is_one_task_per_chunk():
    obj = make_field(periods=400, shape=(4, 6)).chunk(time=-1, x=2, y=2)
    result = oceanflow.climatology(obj, "month")
    assert _layer_size(result, "climatology_block") == obj.data.npartitions
    assert added_tasks(result, obj) == obj.data.npartitions + 2


# ---------------------------------------------------------------- bad input


def test_integer_data_is_cast_to_float64():
    obj = (make_field(periods=400, nan_fraction=0) * 10).astype("int16")
    result = oceanflow.climatology(obj, "month")
    assert result.dtype == np.float64
    assert_matches(result, oracle(obj, "month", "mean"), "month", 1e-12)


def test_all_nan_groups_give_nan_quietly():
    obj = make_field(periods=400, nan_fraction=0.0)
    obj[:, 0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for stat in STATS:
            result = oceanflow.climatology(obj.chunk(time=100), "month", stat).compute()
            assert (result[:, 0, 0] == 0).all() if stat == "count" else result[:, 0, 0].isnull().all()
        oceanflow.anomaly(obj, kind="standardized").compute()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda o: oceanflow.climatology(o.rename(time="t")), ValueError, "no dimension 'time'"),
        (lambda o: oceanflow.climatology(o.drop_vars("time")), ValueError, "has no coordinate"),
        (lambda o: oceanflow.climatology(o.isel(time=slice(None, None, -1))), ValueError, "not increasing"),
        (lambda o: oceanflow.climatology(xr.concat([o, o[:2]], "time")), ValueError, "duplicate"),
        (lambda o: oceanflow.climatology(o, "weekly"), ValueError, "unknown freq"),
        (lambda o: oceanflow.climatology(o, stat="mode"), ValueError, "unknown stat"),
        (lambda o: oceanflow.climatology(o, base=("1991", "2020")), ValueError, "outside the data"),
        (lambda o: oceanflow.climatology(o, base="1991"), ValueError, "pair"),
        (lambda o: oceanflow.climatology(o.resample(time="MS").mean(), "dayofyear"), ValueError, "daily"),
        (lambda o: oceanflow.climatology(o, stat="max", weights="days_in_month"), ValueError, "weights apply"),
        (lambda o: oceanflow.climatology(o, weights="days_in_month"), ValueError, "monthly data"),
        (lambda o: oceanflow.climatology(o, smooth=3), ValueError, "daily climatologies"),
        (lambda o: oceanflow.climatology(o[:365], "dayofyear", smooth=3), ValueError, "every day"),
        (lambda o: oceanflow.climatology(o.astype(complex)), TypeError, "complex"),
        (lambda o: oceanflow.climatology(o.values), TypeError, "DataArray"),
        (lambda o: oceanflow.anomaly(o, kind="zscore"), ValueError, "unknown anomaly kind"),
        (lambda o: oceanflow.anomaly(o, oceanflow.climatology(o[:100])), ValueError, "has no 'month' group"),
        (lambda o: oceanflow.anomaly(o, oceanflow.climatology(o, "season")), ValueError, "climatology groups seasons"),
        (lambda o: oceanflow.anomaly(o, kind="standardized", clim=o), TypeError, "mean, std"),
        (lambda o: oceanflow.anomaly(o, oceanflow.climatology(o), base=("2001", "2001")), ValueError, "leave base"),
    ],
)
def test_bad_input(call, error, message):
    obj = make_field("standard", start="2001-01-01", periods=2 * 365)
    with pytest.raises(error, match=message):
        call(obj)


# ---------------------------------------------------------------- results a scientist can trust (issue 9)


def _monthly_sst(lat=(-30.0, -15.0, 0.0, 15.0, 30.0), years=4, calendar="numpy"):
    """Monthly SST warmest at the equator and with a seasonal cycle, so that a
    climatology used on the wrong latitude is off by degrees."""
    obj = make_field(calendar, start="2001-01-01", periods=12 * years, freq="MS", shape=(len(lat), 3), nan_fraction=0)
    lat = np.asarray(lat)
    seasonal = 3 * np.cos(2 * np.pi * (obj.time.dt.month.values - 1) / 12)
    values = 24 + 0.2 * lat[None, :, None] + seasonal[:, None, None] + obj.values * 0.1  # warmer northwards
    return obj.copy(data=values).rename(y="lat").assign_coords(lat=lat, x=[10.0, 11.0, 12.0])


@pytest.mark.parametrize("dask_input", [False, True])
def test_anomaly_meets_a_reversed_climatology_by_labels(dask_input):
    sst = _monthly_sst()
    clim = oceanflow.climatology(sst).isel(lat=slice(None, None, -1))  # stored north to south
    data = sst.chunk(time=12) if dask_input else sst
    result = oceanflow.anomaly(data, clim)
    expected = sst.groupby("time.month") - clim  # xarray meets them by label
    np.testing.assert_allclose(result.values, expected.transpose(*result.dims).values, atol=1e-12)
    by_position = sst.groupby("time.month") - clim.assign_coords(lat=sst.lat.values)
    assert float(abs(by_position - expected).max()) > 7  # what matching by position gave: degrees off


def test_anomaly_refuses_a_climatology_on_another_grid():
    sst = _monthly_sst()
    shifted = oceanflow.climatology(sst).assign_coords(lat=lambda c: c.lat + 5.0)
    with pytest.raises(ValueError, match=r"different 'lat' coordinates \(5 of 5 labels differ.*interp"):
        oceanflow.anomaly(sst, shifted)
    lon_cut = oceanflow.climatology(sst).isel(x=slice(0, 2))
    with pytest.raises(ValueError, match="'x'"):
        oceanflow.anomaly(sst, lon_cut)


def test_weights_meet_the_data_by_time_labels():
    sst = _monthly_sst()
    days = sst.time.dt.days_in_month.astype(float)
    expected = oceanflow.climatology(sst, weights="days_in_month")
    reversed_weights = days.isel(time=slice(None, None, -1))
    xr.testing.assert_allclose(oceanflow.climatology(sst, weights=reversed_weights), expected)
    oracle_value = (sst * days).groupby("time.month").sum() / days.groupby("time.month").sum()
    np.testing.assert_allclose(expected.values, oracle_value.transpose(*expected.dims).values, rtol=1e-12)
    shifted = days.assign_coords(time=days.time + np.timedelta64(1, "D"))
    with pytest.raises(ValueError, match="different 'time' coordinates"):
        oceanflow.climatology(sst, weights=shifted)


def _daily_sst():
    obj = make_field("standard", start="2001-01-01", periods=4 * 365 + 1, shape=(2, 2), nan_fraction=0)
    ramp = (obj.time.dt.dayofyear.values - 1) / 4.0  # 1 degC between neighbouring ordinal days x 4
    return obj.copy(data=obj.values * 0.01 + ramp[:, None, None])


@pytest.mark.parametrize(
    "made, used, message",
    [
        ({"freq": "time.dayofyear"}, {"freq": "dayofyear"}, "ordinal number"),
        ({"freq": "dayofyear", "feb29": "merge"}, {"freq": "dayofyear"}, "feb29='merge'"),
        ({"freq": "season", "seasons": ["DJFM", "AMJJASON"]}, {"freq": "season"}, "seasons"),
        ({"freq": "season"}, {"freq": "month"}, "seasons"),
    ],
)
def test_anomaly_refuses_a_climatology_of_another_grouping(made, used, message, tmp_path):
    sst = _daily_sst()
    clim = oceanflow.climatology(sst, **made)
    with pytest.raises(ValueError, match=f"the climatology groups .*{message}"):
        oceanflow.anomaly(sst, clim, **used)
    oceanflow.save(clim, tmp_path / "clim.nc")  # also when read back from a file
    read = oceanflow.open_dataset(tmp_path / "clim.nc", chunks=None)
    with pytest.raises(ValueError, match=f"the climatology groups .*{message}"):
        oceanflow.anomaly(sst.to_dataset(), read, **used)
    oceanflow.anomaly(sst.to_dataset(), read, **made)  # the same grouping is accepted


def test_ordinal_and_month_day_climatologies_differ_by_a_degree_in_leap_years():
    sst = _daily_sst()
    ordinal = oceanflow.climatology(sst, "time.dayofyear")
    month_day = oceanflow.climatology(sst, "dayofyear")
    assert ordinal.attrs["grouping"] == "time.dayofyear" and month_day.attrs["grouping"] == "dayofyear"
    assert month_day.dayofyear.attrs["feb29"] == "own" and "feb29" not in ordinal.dayofyear.attrs
    right = oceanflow.anomaly(sst, month_day, freq="dayofyear")
    with xr.set_options(use_flox=False):
        expected = sst.groupby(oracle_key(sst.time, "dayofyear")) - month_day
    np.testing.assert_allclose(right.values, expected.values, atol=1e-12)


def test_the_grouping_travels_with_the_climatology():
    sst = _daily_sst()
    seasons = oceanflow.climatology(sst, "season", seasons={"wet": [11, 12, 1, 2], "dry": [5, 6, 7, 8]})
    for attrs in (seasons.attrs, seasons.season.attrs):
        assert attrs["grouping"] == "season"
        assert json.loads(attrs["seasons"]) == {"wet": [11, 12, 1, 2], "dry": [5, 6, 7, 8]}
    days = oceanflow.climatology(sst.to_dataset(), "dayofyear", feb29="merge")
    assert days.sst.attrs["feb29"] == days.dayofyear.attrs["feb29"] == "merge"
    assert days.dayofyear.attrs["calendar"] == "standard"
    assert days.dayofyear.attrs["climatology_period"] == "2001-01-01T00:00:00/2005-01-01T00:00:00"


@pytest.mark.parametrize(
    "attrs, kind, expected",
    [
        (
            {"standard_name": "sea_surface_temperature", "long_name": "SST", "units": "degC"},
            "absolute",
            {"long_name": "SST anomaly", "units": "degC", "units_metadata": "temperature: difference"},
        ),
        (
            {"standard_name": "air_temperature", "units": "K"},
            "absolute",
            {
                "standard_name": "air_temperature_anomaly",
                "long_name": "air temperature anomaly",
                "units": "K",
                "units_metadata": "temperature: difference",
            },
        ),
        ({"standard_name": "sea_surface_temperature", "units": "degC"}, "relative", {"units": "1"}),
        (
            {"standard_name": "sea_water_salinity", "units": "0.001", "valid_max": 40.0},
            "standardized",
            {"long_name": "standardized sea water salinity anomaly", "units": "1"},
        ),
    ],
)
def test_anomaly_metadata_says_what_the_numbers_are(attrs, kind, expected):
    sst = _monthly_sst()
    sst.attrs = dict(attrs)
    result = oceanflow.anomaly(sst, kind=kind)
    for key, value in expected.items():
        assert result.attrs[key] == value
    if "standard_name" not in expected:
        assert "standard_name" not in result.attrs
    assert "valid_max" not in result.attrs and "grouping" not in result.attrs


@pytest.mark.parametrize(
    "previous, expected",
    [
        (None, "time: mean within years time: mean over years"),
        ("time: mean", "time: mean within years time: mean over years"),  # monthly means: said once
        ("area: mean time: maximum", "area: mean time: maximum within years time: mean over years"),
    ],
)
def test_cell_methods_say_each_operation_once(previous, expected):
    sst = _monthly_sst()
    if previous:
        sst.attrs["cell_methods"] = previous
    assert oceanflow.climatology(sst).attrs["cell_methods"] == expected


def test_daily_data_keep_their_own_time_method_before_the_climatology():
    daily = _daily_sst().assign_attrs(cell_methods="time: maximum")
    cell = oceanflow.climatology(daily, "month").attrs["cell_methods"]
    assert cell == "time: maximum time: mean within years time: mean over years"


def test_datasets_compute_fields_and_carry_or_drop_the_rest():
    sst = _monthly_sst()
    edges = sst.time.values
    ds = xr.Dataset(
        {
            "sst": sst,
            "lat_bnds": (("lat", "bnds"), np.stack([sst.lat - 7.5, sst.lat + 7.5], axis=1)),
            "time_bnds": (("time", "bnds"), np.stack([edges, edges + np.timedelta64(28, "D")], axis=1)),
            "area": ("lat", np.cos(np.deg2rad(sst.lat.values))),
            "platform": ("time", np.array(["ship"] * sst.time.size)),
        }
    )
    ds.lat.attrs["bounds"] = "lat_bnds"
    ds.time.attrs["bounds"] = "time_bnds"
    clim = oceanflow.climatology(ds)
    assert sorted(clim.data_vars) == ["area", "climatology_bounds", "lat_bnds", "sst"]
    xr.testing.assert_identical(clim.lat_bnds, ds.lat_bnds)
    xr.testing.assert_allclose(clim.sst, oceanflow.climatology(sst))
    anom = oceanflow.anomaly(ds)
    assert sorted(anom.data_vars) == sorted(ds.data_vars)
    for name in ("lat_bnds", "time_bnds", "area", "platform"):
        xr.testing.assert_identical(anom[name], ds[name])
    np.testing.assert_allclose(anom.sst.values, (sst.groupby("time.month") - oceanflow.climatology(sst)).values)


@pytest.mark.parametrize(
    "obj, freq, message",
    [
        (lambda: _monthly_sst(years=30).resample(time="YS").mean(), "month", "monthly groups need monthly"),
        (lambda: _monthly_sst(years=30).resample(time="YS").mean(), "season", "seasonal groups need seasonal"),
        (lambda: _monthly_sst(), "dayofyear", "day-of-year groups need daily"),
        (lambda: _monthly_sst(), "time.dayofyear", "day-of-year groups need daily"),
    ],
)
def test_a_grouping_finer_than_the_data_is_an_error(obj, freq, message):
    with pytest.raises(ValueError, match=message):
        oceanflow.climatology(obj(), freq)


def test_one_step_can_take_its_anomaly():
    sst = _daily_sst()
    clim = oceanflow.climatology(sst, "dayofyear")
    one = oceanflow.anomaly(sst.isel(time=[400]), clim, freq="dayofyear")
    np.testing.assert_allclose(one.values, oceanflow.anomaly(sst, clim, freq="dayofyear").isel(time=[400]).values)


def test_groups_nan_everywhere_are_counted_in_one_warning():
    sst = _daily_sst().isel(time=slice(0, 400))  # January twice, the rest (about) once
    with pytest.warns(EmptyGroupsWarning, match=r"^11 of 12 month groups are NaN at every point") as caught:
        result = oceanflow.climatology(sst, "month", min_count=40)
    assert len(caught) == 1
    assert result.isnull().all(dim=("y", "x")).sum() == 11  # only January has 2 x 31 >= 40 days
    flat = sst.where(sst.time.dt.month != 3, 7.0)  # March: no spread at all
    with pytest.warns(EmptyGroupsWarning, match=r"1 of 12 month groups have .*std that is zero"):
        anom = oceanflow.anomaly(flat, kind="standardized")
    assert anom.where(flat.time.dt.month == 3, drop=True).isnull().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oceanflow.anomaly(sst, kind="standardized")


@pytest.mark.parametrize(
    "base, error, message",
    [
        ((2001, 2002), TypeError, r"base=\('2001', '2002'\)"),
        (("abc", "def"), ValueError, "base period start 'abc' is not a date"),
        (("2001", [2002]), TypeError, "give the period's start and end as dates"),
    ],
)
def test_base_periods_that_are_not_dates(base, error, message):
    with pytest.raises(error, match=message):
        oceanflow.climatology(_daily_sst(), base=base)


def test_missing_times_are_named():
    sst = _daily_sst()
    times = sst.time.values.copy()
    times[3] = np.datetime64("NaT")
    with pytest.raises(ValueError, match=r"1 missing time\(s\) \(NaT\) at position\(s\) \[3\].*isnull"):
        oceanflow.climatology(sst.assign_coords(time=times))
