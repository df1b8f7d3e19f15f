"""What a vertical input's attributes say it is (oceanflow.eos.declared), for p, z and depth.

Oracles: UDUNITS-2 (through cfunits) says whether a ``units`` spelling is a
pressure or a length; gsw computes what a correctly declared input gives.
"""

import gsw
import numpy as np
import pytest
import xarray as xr
from debian_tools import require

from oceanflow import eos

PRESSURES = ["dbar", "dbars", "decibar", "decibars", "Pa", "pascals", "hPa", "kPa", "MPa", "bar", "bars", "mbar"]
PRESSURES += ["millibars", "cbar", "atm", "atmosphere", "psi", "N m-2", "N/m2", "Torr"]
METRES = ["m", "meter", "meters", "metre", "metres"]
OTHER_LENGTHS = ["km", "cm", "dm", "mm", "ft", "feet", "fathoms"]


def vertical(values, **attrs):
    return xr.DataArray(np.asarray(values, float), dims="lev", attrs=attrs, name="lev")


def model_args(**vertical_arg):
    """from_model's arguments for one column of three levels, with the vertical one given."""
    one = {"dims": "lev", "coords": {"lev": [10.0, 100.0, 500.0]}}
    return {
        "SP": xr.DataArray([35.0, 34.8, 34.6], **one),
        "pt": xr.DataArray([20.0, 15.0, 5.0], **one),
        "lat": xr.DataArray(30.0),
        "lon": xr.DataArray(-40.0),
        "outputs": ("rho",),
        **vertical_arg,
    }


def test_the_oracle_knows_the_spellings():
    require("udunits2")  # Debian's UDUNITS-2, which cfunits (a dependency of cfchecker) loads
    from cfunits import Units

    pressure, metre = Units("Pa"), Units("m")
    assert all(Units(u).isvalid and Units(u).equivalent(pressure) for u in PRESSURES)
    assert all(Units(u).isvalid and Units(u).equivalent(metre) for u in METRES + OTHER_LENGTHS)


@pytest.mark.parametrize("units", PRESSURES)
def test_a_pressure_given_as_height_or_depth_is_refused_with_p(units):
    with pytest.raises(ValueError, match=r"is a pressure according to its .* pass it as p .* z = z_from_p\(p, lat\)"):
        eos.p_from_z(vertical([-10.0, -100.0], units=units), 30.0)
    column = {"SA": vertical([35.0, 35.0, 35.0]), "CT": vertical([20.0, 10.0, 5.0])}
    with pytest.raises(ValueError, match=r"is a pressure .* depth = -z_from_p\(p, lat\)"):
        eos.mixed_layer_depth(**column, depth=vertical([10.0, 100.0, 500.0], units=units))
    for name in ("z", "depth"):
        with pytest.raises(ValueError, match=rf"{name} \('lev'\) is a pressure .* pass it as p="):
            eos.from_model(**model_args(**{name: vertical([10.0, 100.0, 500.0], units=units)}))


@pytest.mark.parametrize("units", METRES + OTHER_LENGTHS)
def test_a_length_given_as_pressure_is_refused_and_one_not_in_metres_as_depth(units):
    with pytest.raises(ValueError, match=r"is a depth or height .* p_from_z"):
        eos.rho(35.0, 10.0, vertical([10.0, 100.0], units=units))
    depth = vertical([10.0, 100.0, 500.0], units=units)
    if units in METRES:
        expected = gsw.rho(35.0, 10.0, gsw.p_from_z(-depth.values, 30.0))
        got = eos.rho(35.0, 10.0, eos.p_from_z((-depth).assign_attrs(units=units), 30.0))
        np.testing.assert_allclose(got.values, expected, rtol=1e-12)
    else:
        with pytest.raises(ValueError, match="not in metres.* convert it to metres"):
            eos.from_model(**model_args(depth=depth))


@pytest.mark.parametrize("positive", ["down", "up", "DOWN"])
def test_a_pressure_in_dbar_with_a_positive_attribute_is_a_pressure(positive):
    # CF: a pressure coordinate may carry positive=; its units say it is a pressure
    p = vertical([10.0, 100.0, 500.0], units="dbar", positive=positive)
    np.testing.assert_allclose(eos.rho(35.0, 10.0, p).values, gsw.rho(35.0, 10.0, p.values), rtol=1e-12)
    with pytest.raises(ValueError, match="is a depth or height"):
        eos.rho(35.0, 10.0, vertical([10.0, 100.0, 500.0], units="m", positive=positive))


@pytest.mark.parametrize(
    "attrs", [{"positive": "down"}, {"standard_name": "depth"}, {"standard_name": "depth", "units": "m"}]
)
def test_a_positive_down_depth_given_as_height_is_refused(attrs):
    depth = vertical([10.0, 100.0, 500.0], **attrs)
    with pytest.raises(ValueError, match=r"is a depth \(positive down\).*z = -depth"):
        eos.p_from_z(depth, 30.0)
    with pytest.raises(ValueError, match="pass it as depth="):
        eos.from_model(**model_args(z=depth))
    height = (-depth).assign_attrs(standard_name="height", positive="up", units="m")
    np.testing.assert_allclose(eos.p_from_z(height, 30.0).values, gsw.p_from_z(height.values, 30.0), rtol=1e-12)


@pytest.mark.parametrize("attrs", [{"positive": "up"}, {"standard_name": "height"}, {"standard_name": "altitude"}])
def test_a_height_given_as_depth_is_refused(attrs):
    with pytest.raises(ValueError, match=r"is a height \(positive up\).*pass it as z="):
        eos.from_model(**model_args(depth=vertical([-10.0, -100.0, -500.0], **attrs)))
