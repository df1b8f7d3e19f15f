"""oceanflow.variables: fields, bounds and carried variables of CF datasets."""

import numpy as np
import xarray as xr

from oceanflow.variables import bounds_names, carried, fields


def cmip_like():
    time = xr.date_range("2000-01-01", periods=2, freq="MS")
    ds = xr.Dataset(
        {
            "thetao": (("time", "lev", "lat"), np.zeros((2, 3, 4), np.float32)),
            "time_bnds": (("time", "bnds"), np.zeros((2, 2), "datetime64[ns]")),
            "lat_bnds": (("lat", "bnds"), np.zeros((4, 2))),
            "lev_bnds": (("lev", "bnds"), np.zeros((3, 2))),
            "areacello": ("lat", np.ones(4)),
            "label": ("lat", np.array(list("abcd"))),
        },
        coords={"time": time, "lat": np.arange(4.0), "lev": np.arange(3.0)},
    )
    ds.time.attrs["bounds"] = "time_bnds"
    ds.lat.attrs["bounds"] = "lat_bnds"
    ds.lev.encoding["bounds"] = "lev_bnds"  # as a file read with decode_cf leaves it
    return ds


def test_bounds_are_named_by_attributes_or_encoding():
    assert bounds_names(cmip_like()) == {"time_bnds", "lat_bnds", "lev_bnds"}


def test_fields_are_numeric_non_bounds_variables_along_the_dimension():
    ds = cmip_like()
    assert fields(ds) == ["thetao", "areacello"]
    assert fields(ds, dim="time") == ["thetao"]


def test_an_operation_along_time_carries_grid_bounds_and_static_variables_but_not_time_bounds():
    assert carried(cmip_like(), dim="time") == ["lat_bnds", "lev_bnds", "areacello", "label"]
