"""No kernel writes into its inputs.

Since :func:`oceanflow._blockwise.map_blocks` hands block functions their input
blocks without a copy, a kernel that wrote into an input would change the
user's array or another task's input; a gufunc ignores NumPy's writeable flag,
so read-only blocks would not catch it.  Here every compiled kernel
(:meth:`oceanflow.kernels.Kernel.for_dtype`) is wrapped so that each call
compares its inputs' bytes before and after, and the user's arrays are
compared with copies taken before the work.
"""

import warnings

import dask.array as dsa
import numpy as np
import pytest
from conftest import make_field
from test_mhw import red_sst

import oceanflow
from oceanflow import mhw
from oceanflow.kernels import Kernel


class _Guarded:
    """A compiled gufunc whose calls fail if they change an input's bytes."""

    def __init__(self, gufunc, name):
        self._gufunc, self._name = gufunc, name

    def __getattr__(self, attribute):
        return getattr(self._gufunc, attribute)

    def __call__(self, *args, **kwargs):
        inputs = [np.asarray(a) for a in args[: self._gufunc.nin]]
        before = [a.tobytes() for a in inputs]
        result = self._gufunc(*args, **kwargs)
        for k, (a, old) in enumerate(zip(inputs, before, strict=True)):
            assert a.tobytes() == old, f"kernel {self._name} wrote into its input {k}"
        return result


@pytest.fixture
def guarded(monkeypatch):
    """Every kernel compiled or looked up from here on checks that its calls leave their inputs unchanged;
    returns the names of the kernels called."""
    called = set()
    for_dtype = Kernel.for_dtype

    def checked(self, dtype):
        called.add(self.__name__)
        return _Guarded(for_dtype(self, dtype), self.__name__)

    monkeypatch.setattr(Kernel, "for_dtype", checked)
    return called


def _inputs(dtype):
    """The same SST in memory, as a dask view of it with each series whole, and time-chunked; a land pixel."""
    sst = red_sst(seed=3, years=5, shape=(3, 4), dtype=dtype)
    sst[:, 2, 3] = np.nan
    sst[::7, 0, 1] = np.nan  # gaps
    whole = sst.copy(data=dsa.from_array(sst.data, chunks=(-1, 2, 2)))  # blocks are views of sst's own array
    return sst, {"numpy": sst, "series-whole": whole, "time-chunked": sst.chunk({"time": 300, "y": 2})}


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mhw.BaseLengthWarning)
        out = call(*args, **kwargs)
        return out.compute() if hasattr(out, "compute") else out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["numpy", "series-whole", "time-chunked"])
def test_mhw_kernels_leave_their_inputs_unchanged(guarded, kind, dtype):
    sst, given = _inputs(dtype)
    kept = sst.values.copy()
    data = given[kind]
    clim = _quiet(mhw.thresholds, data, cold=True, pctile=10)
    found = _quiet(mhw.detect, data, min_duration=3)
    _quiet(mhw.detect, data, clim, cold=True)
    _quiet(mhw.events, found)
    _quiet(mhw.summary, found, "2YS")
    assert {"pooled_climatology", "detect_events", "event_properties", "period_summary"} <= guarded
    np.testing.assert_array_equal(sst.values.view(np.uint8), kept.view(np.uint8))


@pytest.mark.parametrize("kind", ["series-whole", "time-chunked"])
def test_mhw_save_leaves_its_inputs_unchanged(guarded, kind, tmp_path):
    sst, given = _inputs("float32")
    kept = sst.values.copy()
    paths = {name: tmp_path / f"{name}.zarr" for name in ("detection", "events", "summary")}
    _quiet(mhw.save, given[kind], paths["detection"], events=paths["events"], summary=paths["summary"])
    assert {"pooled_climatology", "detect_events", "event_properties"} <= guarded
    np.testing.assert_array_equal(sst.values.view(np.uint8), kept.view(np.uint8))


@pytest.mark.parametrize("time_chunk", [None, -1, 200])
def test_climatology_and_percentile_kernels_leave_their_inputs_unchanged(guarded, time_chunk):
    obj = make_field("noleap", periods=3 * 365 + 40, nan_fraction=0.1)
    kept = obj.values.copy()
    data = obj if time_chunk is None else obj.copy(data=dsa.from_array(obj.data, chunks=(time_chunk, -1, 2)))
    clim = oceanflow.climatology(data, "dayofyear", "mean", window=5).compute()
    oceanflow.climatology(data, "month", "std").compute()
    oceanflow.climatology(data, "dayofyear", "quantile", q=[0.1, 0.9], window=5).compute()
    oceanflow.climatology(data, "month", "median").compute()
    oceanflow.anomaly(data, clim, freq="dayofyear").compute()
    assert {"sum_chunk", "moments_chunk", "grouped_quantiles", "stream_collect", "grouped_anomaly"} <= guarded
    np.testing.assert_array_equal(obj.values.view(np.uint8), kept.view(np.uint8))
