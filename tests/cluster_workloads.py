"""One oceanflow workload (polyval, eos.rho, climatology) for every scheduler,
with its independent oracles: np.polyval, gsw.rho and xarray's groupby."""

import os

import numpy as np
import xarray as xr

import oceanflow
from oceanflow import eos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COEFFS = [1e-4, -2e-3, 1.01, 0.05]


def inputs(seed=0):
    """Monthly SST (time, y, x) with NaN, and an ocean section SA, CT, p; all on dask."""
    rng = np.random.default_rng(seed)
    time = xr.date_range("2000-01-01", periods=120, freq="MS")
    sst = xr.DataArray(rng.normal(15, 5, (120, 12, 20)), dims=("time", "y", "x"), coords={"time": time}, name="sst")
    sst = sst.where(rng.random(sst.shape) > 0.05)
    shape = (30, 12, 20)
    SA = xr.DataArray(rng.uniform(30, 38, shape), dims=("z", "y", "x"))
    CT = xr.DataArray(rng.uniform(-1, 28, shape), dims=("z", "y", "x"))
    p = xr.DataArray(np.linspace(0, 5000, shape[0]), dims="z")
    return sst.chunk({"time": 30, "y": 6}), SA.chunk({"y": 4}), CT.chunk({"y": 4}), p


def compute(sst, SA, CT, p):
    """The three results as NumPy arrays, computed by whatever scheduler is active."""
    import dask

    return dict(
        zip(
            ("polyval", "rho", "climatology"),
            (
                r.values
                for r in dask.compute(
                    oceanflow.polyval(sst, COEFFS), eos.rho(SA, CT, p), oceanflow.climatology(sst, "month")
                )
            ),
            strict=False,
        )
    )


def check_oracles(results, sst, SA, CT, p):
    import gsw

    np.testing.assert_allclose(results["polyval"], np.polyval(COEFFS, sst.values), rtol=1e-13)
    np.testing.assert_allclose(results["rho"], gsw.rho(SA.values, CT.values, p.values[:, None, None]), rtol=1e-12)
    expected = sst.compute().groupby("time.month").mean().values
    np.testing.assert_allclose(results["climatology"], expected, rtol=1e-12)


def assert_identical(a, b):
    """Bit-for-bit equality, NaN in the same places."""
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def worker_facts():
    """Where workers import oceanflow from, and whether their numba cache is on."""
    import oceanflow
    from oceanflow.kernels._declare import cache_enabled

    return os.path.dirname(os.path.dirname(oceanflow.__file__)), cache_enabled()


def _by_value():
    """Workers cannot import this test helper: ship its functions by value."""
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


_by_value()
