"""NetCDF-4 chunks read by byte offset (oceanflow.io.direct) against xarray's netCDF4 backend.

Oracle: ``xarray.open_dataset(path).load()`` (netCDF-C decodes every chunk and
xarray applies the CF decoding).  Each eligible layout is checked both
through ``open_dataset`` and by calling the reader itself (so that a reader
falling back to xarray in silence cannot pass), and each ineligible one is
checked to be read by xarray.
"""

import os
import re
import shutil
import warnings

import numpy as np
import pytest
import xarray as xr
from xarray.coding.variables import SerializationWarning

from oceanflow.io import direct, open_dataset
from oceanflow.io.read import GuardedArray


def field(nt=37, ny=7, nx=9, dtype="f4"):
    rng = np.random.default_rng(5)
    sst = rng.normal(15, 3, size=(nt, ny, nx)).astype(dtype)
    sst[rng.random(sst.shape) < 0.1] = np.nan if sst.dtype.kind == "f" else 0
    times = xr.date_range("2001-01-01", periods=nt, freq="D", calendar="noleap", use_cftime=True)
    return xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), sst, {"units": "degC"}),
            "count": (("time", "lat", "lon"), rng.integers(-5, 9, size=(nt, ny, nx)).astype("i2")),
            "depth": (("lat", "lon"), rng.normal(size=(ny, nx))),
        },
        coords={"time": times, "lat": np.linspace(-60, 60, ny), "lon": np.linspace(0, 320, nx)},
    )


def guarded(da) -> GuardedArray:
    """The GuardedArray under a variable opened by open_dataset."""
    (array,) = [v for k, v in da.data.__dask_graph__().items() if isinstance(v, GuardedArray)] or [None]
    if array is None:  # the getter's source sits in a layer of its own
        layers = da.data.__dask_graph__().layers.values()
        (array,) = [v for layer in layers for v in layer.values() if isinstance(v, GuardedArray)]
    return array


def same_as_xarray(path, chunks, **kwargs):
    ours = open_dataset(path, chunks=chunks, **kwargs)
    with xr.open_dataset(path, **kwargs) as theirs:
        theirs = theirs.load()
        for name in ("sst", "count", "depth"):
            if name in ours:
                xr.testing.assert_identical(ours[name].compute().variable, theirs[name].variable)
    return ours


LAYOUTS = {
    "chunked": {"chunksizes": (4, 3, 9)},
    "deflate+shuffle": {"chunksizes": (5, 7, 4), "zlib": True, "shuffle": True, "complevel": 1},
    "deflate": {"chunksizes": (1, 7, 9), "zlib": True, "shuffle": False},
    "shuffle": {"chunksizes": (3, 2, 2), "shuffle": True},
    "contiguous": {"contiguous": True},
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunks", [{"time": 10, "lat": 4}, {"time": 3}, {}], ids=["blocks", "small", "whole"])
def test_eligible_layouts_are_read_directly_and_match_xarray(tmp_path, layout, chunks):
    path = tmp_path / "in.nc"
    ds = field()
    ds.to_netcdf(path, encoding={name: LAYOUTS[layout] for name in ("sst", "count")})
    ours = same_as_xarray(path, chunks or {"time": -1})
    for name in ("sst", "count"):
        reader = guarded(ours[name]).direct
        assert reader is not None, f"{name} ({layout}) should be read by offset"
        with xr.open_dataset(path) as theirs:
            expected = theirs[name].values
        # the reader itself, with the keys dask passes after slicing: slices, steps, integers; negative
        # ones as NumPy counts them
        keys = [(slice(None),) * 3, (slice(2, 31), slice(1, 6), slice(0, 9, 2)), (5, slice(None), 3), (-1,)]
        keys += [(slice(-5, None), Ellipsis, -2), (slice(None, None, -3), slice(-2, 0, -1)), (slice(30, 2, -7), 0)]
        keys += [(np.int64(-37), slice(-100, 100, 4)), (slice(5, 1), slice(0, 5, -1))]
        for key in keys:
            np.testing.assert_array_equal(reader.read(key), expected[key])


@pytest.mark.parametrize(
    "selection",
    [
        {"time": -1},
        {"lat": slice(-5, None)},
        {"time": slice(None, None, -1)},
        {"time": slice(-3, -30, -4), "lon": -2},
        {"time": np.int64(-37), "lat": slice(-1, 0, -2)},
        {"time": [-1, 0, -20]},
        {"time": slice(-100, 100, 7), "lon": slice(-2, 2, -1)},
    ],
    ids=str,
)
def test_negative_indices_and_steps_select_what_xarray_selects(tmp_path, selection):
    path = tmp_path / "in.nc"
    field().to_netcdf(path, encoding={"sst": LAYOUTS["chunked"], "count": LAYOUTS["deflate+shuffle"]})
    ours = open_dataset(path, chunks={"time": 10, "lat": 4})
    with xr.open_dataset(path) as theirs:
        for name in ("sst", "count"):
            assert guarded(ours[name]).direct is not None
            xr.testing.assert_identical(ours[name].isel(selection).compute(), theirs[name].isel(selection).load())


def test_a_float_fill_value_and_missing_value_are_masked_as_xarray_does(tmp_path):
    path = tmp_path / "in.nc"
    ds = field()
    ds["sst"] = ds.sst.fillna(1e20)
    ds.sst.attrs["missing_value"] = np.float32(-999.0)
    ds["sst"][0, 0, 0] = -999.0
    ds.to_netcdf(path, encoding={"sst": {"_FillValue": np.float32(1e20), "chunksizes": (6, 7, 9)}})
    ours = same_as_xarray(path, {"time": 8})
    assert guarded(ours.sst).direct is not None
    assert np.isnan(ours.sst[0, 0, 0].values)


@pytest.mark.parametrize(
    ("dtype", "attrs"),
    [
        ("f4", {"missing_value": np.float64(-999.9)}),  # compared in float64 by xarray: -999.9f is not -999.9
        ("f4", {"_FillValue": np.float32(-999.9), "missing_value": np.float64(-999.9)}),
        ("f4", {"missing_value": np.array([-999.9, 1e20])}),
        ("f8", {"missing_value": np.float32(-999.9)}),
        ("f4", {"missing_value": np.int16(-999)}),
        ("i2", {"_FillValue": np.int16(-1), "missing_value": np.int16(-999)}),
    ],
    ids=["f8-missing", "f4-fill-f8-missing", "two-missing", "f4-missing-of-f8", "i2-missing", "int-fill-and-missing"],
)
def test_fill_values_of_another_dtype_are_masked_as_xarray_does(tmp_path, dtype, attrs):
    import netCDF4

    path = tmp_path / "fills.nc"
    big = 1e20 if dtype.startswith("f") else 9
    values = np.array([1, -999.9, 2, -999, big, -1, 3, 4, 5, 6, 7, 8]).astype(dtype)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", values.size)
        fill = attrs.get("_FillValue", False)
        var = nc.createVariable("sst", dtype, ("time",), chunksizes=(4,), fill_value=fill)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # netCDF4: missing_value cannot be safely cast to variable dtype
            var.missing_value = attrs["missing_value"]
        var[:] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SerializationWarning)  # multiple fill values
        ours = same_as_xarray(path, {"time": 5}, decode_times=False)
        reader = guarded(ours.sst).direct
        if dtype.startswith("f"):
            assert reader is not None
            with xr.open_dataset(path, decode_times=False) as theirs:
                np.testing.assert_array_equal(reader.read((slice(None),)), theirs.sst.values)
        else:
            assert reader is None  # xarray makes it float


def test_unwritten_chunks_hold_the_fill_value(tmp_path):
    import netCDF4

    path = tmp_path / "sparse.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 10)
        var = nc.createVariable("sst", "f4", ("time", "x"), chunksizes=(2, 5), fill_value=-1.5)
        var[0:2, 0:5] = 1.0
        var[6:8, 5:10] = 2.0  # the chunks between are never written
        nc.createVariable("x", "f8", ("x",))[:] = np.arange(10)
    ours = same_as_xarray(path, {"time": 3}, decode_times=False)
    assert guarded(ours.sst).direct is not None
    assert np.isnan(ours.sst.values).sum() == 80 - 20
    raw = same_as_xarray(path, {"time": 3}, decode_times=False, mask_and_scale=False)
    assert (raw.sst.values == -1.5).sum() == 60


def big_endian(path):
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 12)
        nc.createVariable("sst", "f4", ("time",), endian="big", chunksizes=(4,))[:] = np.arange(12.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda ds, p: ds.to_netcdf(p, encoding={"sst": {"dtype": "i2", "scale_factor": 0.01, "_FillValue": -999}}),
        lambda ds, p: ds.to_netcdf(p, encoding={"count": {"_FillValue": -1}, "sst": {"fletcher32": True}}),
        lambda ds, p: ds.to_netcdf(p, format="NETCDF3_64BIT"),
        lambda ds, p: big_endian(p),
    ],
    ids=["packed", "int-fill-and-fletcher32", "netcdf3", "big-endian"],
)
def test_what_is_not_stored_as_decoded_is_read_by_xarray(tmp_path, make):
    path = tmp_path / "in.nc"
    make(field(), path)
    ours = same_as_xarray(path, {"time": 10})
    assert guarded(ours.sst).direct is None


def test_a_group_and_a_variable_named_like_a_dimension(tmp_path):
    import netCDF4

    path = tmp_path / "groups.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 12)
        nc.createVariable("sst", "f4", ("time",), chunksizes=(4,))[:] = np.zeros(12)
        ocean = nc.createGroup("ocean")
        ocean.createDimension("time", 12)
        ocean.createDimension("x", 7)
        ocean.createDimension("y", 7)
        ocean.createVariable("sst", "f4", ("time",), chunksizes=(5,))[:] = np.arange(12.0)
        # a variable "x" along "y" beside a dimension "x": netCDF-C stores it as _nc4_non_coord_x
        ocean.createVariable("x", "f8", ("y",), chunksizes=(3,))[:] = np.arange(7.0) + 100
    ours = open_dataset(path, chunks={"time": 5, "y": 2}, group="ocean", decode_times=False)
    assert guarded(ours.sst).direct is not None and guarded(ours.x).direct is not None
    np.testing.assert_array_equal(ours.sst.values, np.arange(12.0))  # the group's, not the root's
    np.testing.assert_array_equal(ours.x.values, np.arange(7.0) + 100)


def _replace(path, other):
    os.replace(other, path)


def _rewrite(path, other):
    shutil.copyfile(other, path)  # the same inode, truncated and written again


def _touch(path, other):
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))


def _rewrite_keeping_times(path, other):  # as cp -p, rsync -t or touch -r leave it: same size and mtime
    before = os.stat(path)
    shutil.copyfile(other, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize(
    "change",
    [_replace, _rewrite, _touch, _rewrite_keeping_times],
    ids=["replaced", "rewritten", "touched", "rewritten-same-times"],
)
@pytest.mark.parametrize("layout", [(4, 7, 9), (2, 7, 9)], ids=["same-layout", "other-layout"])
def test_a_file_changed_after_opening_is_refused_never_read_half_old(tmp_path, change, layout):
    # every read after the change refused (xarray's open handle would serve the old file's numbers)
    path, other = tmp_path / "in.nc", tmp_path / "other.nc"
    encoding = {"sst": {"chunksizes": (4, 7, 9)}, "count": {"_FillValue": -1}}  # count: read by xarray
    field().to_netcdf(path, encoding=encoding)
    (field() + 1).to_netcdf(other, encoding={**encoding, "sst": {"chunksizes": layout}})
    ours = open_dataset(path, chunks={"time": 10})
    assert guarded(ours.sst).direct is not None and guarded(ours["count"]).direct is None
    ours.sst[:10].values, ours["count"][:10].values  # noqa: B018 - read before the change
    change(path, other)
    for name in ("sst", "count"):
        with pytest.raises(OSError, match=f"{re.escape(str(path))} changed since it was opened.*open it again"):
            ours[name].values  # noqa: B018
    with pytest.raises(direct.Stale):
        guarded(ours.sst).direct.read((slice(0, 4), slice(None), slice(None)))


def test_a_file_opened_by_a_relative_path_is_read_after_a_change_of_directory(tmp_path, monkeypatch):
    field().to_netcdf(tmp_path / "in.nc", encoding={"sst": {"chunksizes": (4, 7, 9)}})
    monkeypatch.chdir(tmp_path)
    ours = open_dataset("in.nc", chunks={"time": 10})
    monkeypatch.chdir(tmp_path.parent)
    with xr.open_dataset(tmp_path / "in.nc") as theirs:
        xr.testing.assert_identical(ours.sst.compute(), theirs.sst.load())
    reader = guarded(ours.sst).direct
    assert reader is not None
    np.testing.assert_array_equal(reader.read((slice(0, 4),)), field().sst.values[:4])
