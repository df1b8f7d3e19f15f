"""What an input's CF attributes say it is, when that is not what a function takes.

An Absolute Salinity given as practical salinity, a Conservative Temperature
given as potential temperature, a sea pressure given as depth: refused with
the TEOS-10 conversion that makes the right input.
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr

# What the attributes can say a variable is (the keys of a ``fixes=`` mapping).
_PRACTICAL_SALINITY = "practical salinity"
POTENTIAL_TEMPERATURE = "potential temperature"
IN_SITU_TEMPERATURE = "in-situ temperature"
DEPTH_OR_HEIGHT = "a depth or height"
ABSOLUTE_SALINITY = "Absolute (or Reference) Salinity"
CONSERVATIVE_TEMPERATURE = "Conservative Temperature"
PRESSURE = "a pressure"
POSITIVE_DOWN = "a depth (positive down)"
HEIGHT = "a height (positive up)"
KELVIN = "in kelvin"

# units spellings (lower case, no spaces), as UDUNITS-2 reads them
_DBAR = ("dbar", "dbars", "decibar", "decibars")
_OTHER_PRESSURES: tuple[str, ...] = ("pa", "pascal", "pascals", "hpa", "kpa", "mpa", "bar", "bars", "mbar", "mbars")
_OTHER_PRESSURES += ("millibar", "millibars", "cbar", "centibar", "centibars", "atm", "atmosphere", "psi", "torr")
_OTHER_PRESSURES += ("mmhg", "nm-2", "n/m2", "n/m^2", "n/m**2", "kgm-1s-2")
_METRES = ("m", "meter", "meters", "metre", "metres")
_OTHER_LENGTHS = ("km", "cm", "dm", "mm", "ft", "feet", "foot", "fathom", "fathoms")

#: standard_name -> what the values are, for each input.
_WRONG_STANDARD_NAMES = {
    "SA": {
        "sea_water_practical_salinity": _PRACTICAL_SALINITY,
        "sea_water_salinity": _PRACTICAL_SALINITY,  # CMIP's so, Argo's PSAL: PSS-78 in practice
        "sea_surface_salinity": _PRACTICAL_SALINITY,
        "sea_water_cox_salinity": "Cox salinity",
        "sea_water_knudsen_salinity": "Knudsen salinity",
    },
    "CT": {
        "sea_water_potential_temperature": POTENTIAL_TEMPERATURE,
        "sea_surface_temperature": POTENTIAL_TEMPERATURE,  # at the surface, in-situ = potential
        "sea_water_temperature": IN_SITU_TEMPERATURE,
        "sea_water_in_situ_temperature": IN_SITU_TEMPERATURE,
    },
    "p": {
        "depth": DEPTH_OR_HEIGHT,
        "height": DEPTH_OR_HEIGHT,
        "altitude": DEPTH_OR_HEIGHT,
        "depth_below_geoid": DEPTH_OR_HEIGHT,
        "height_above_geoid": DEPTH_OR_HEIGHT,
        "height_above_reference_ellipsoid": DEPTH_OR_HEIGHT,
        "ocean_depth": DEPTH_OR_HEIGHT,
    },
    "SP": {
        "sea_water_absolute_salinity": ABSOLUTE_SALINITY,
        "sea_water_reference_salinity": ABSOLUTE_SALINITY,
        "sea_water_preformed_salinity": ABSOLUTE_SALINITY,
        "sea_water_cox_salinity": "Cox salinity",
        "sea_water_knudsen_salinity": "Knudsen salinity",
    },
    "pt": {
        "sea_water_conservative_temperature": CONSERVATIVE_TEMPERATURE,
        "sea_water_temperature": IN_SITU_TEMPERATURE,
        "sea_water_in_situ_temperature": IN_SITU_TEMPERATURE,
    },
    "t": {
        "sea_water_conservative_temperature": CONSERVATIVE_TEMPERATURE,
        "sea_water_potential_temperature": POTENTIAL_TEMPERATURE,
    },
    "z": {
        "depth": POSITIVE_DOWN,
        "depth_below_geoid": POSITIVE_DOWN,
        "ocean_depth": POSITIVE_DOWN,
        "sea_water_pressure": PRESSURE,
        "sea_water_pressure_due_to_sea_water": PRESSURE,
        "sea_water_pressure_at_sea_floor": PRESSURE,
        "sea_water_pressure_at_sea_water_surface": PRESSURE,
    },
    "depth": {
        "height": HEIGHT,
        "altitude": HEIGHT,
        "height_above_geoid": HEIGHT,
        "height_above_reference_ellipsoid": HEIGHT,
        "sea_water_pressure": PRESSURE,
        "sea_water_pressure_due_to_sea_water": PRESSURE,
        "sea_water_pressure_at_sea_floor": PRESSURE,
        "sea_water_pressure_at_sea_water_surface": PRESSURE,
    },
}

#: units (lower case, no spaces) -> what the values are, for each input.
_WRONG_UNITS = {
    "SA": {
        **dict.fromkeys(
            ("psu", "pss", "pss-78", "pss78", "0.001", "1e-3", "10-3", "1", "pss-78(psu)"), _PRACTICAL_SALINITY
        ),
        **dict.fromkeys(("kg/kg", "kgkg-1", "kgkg**-1"), "a mass fraction (kg/kg)"),
    },
    "CT": dict.fromkeys(("k", "kelvin", "degk", "deg_k", "degreek", "degrees_k"), KELVIN),
    "p": {**dict.fromkeys(_METRES + _OTHER_LENGTHS, DEPTH_OR_HEIGHT), **dict.fromkeys(_OTHER_PRESSURES, "not in dbar")},
    "SP": dict.fromkeys(("kg/kg", "kgkg-1", "kgkg**-1"), "a mass fraction (kg/kg)"),
    "pt": dict.fromkeys(("k", "kelvin", "degk", "deg_k", "degreek", "degrees_k"), KELVIN),
    "t": dict.fromkeys(("k", "kelvin", "degk", "deg_k", "degreek", "degrees_k"), KELVIN),
    "z": {**dict.fromkeys(_DBAR + _OTHER_PRESSURES, PRESSURE), **dict.fromkeys(_OTHER_LENGTHS, "not in metres")},
    "depth": {**dict.fromkeys(_DBAR + _OTHER_PRESSURES, PRESSURE), **dict.fromkeys(_OTHER_LENGTHS, "not in metres")},
}

_FIXES = {
    _PRACTICAL_SALINITY: "convert it with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "Cox salinity": "convert it to practical salinity, then with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "Knudsen salinity": "convert it to practical salinity, then with TEOS-10's SA_from_SP(SP, p, lon, lat)",
    "a mass fraction (kg/kg)": "multiply it by 1000 to get g/kg",
    POTENTIAL_TEMPERATURE: "convert it with TEOS-10's CT_from_pt(SA, pt)",
    IN_SITU_TEMPERATURE: "convert it with TEOS-10's CT_from_t(SA, t, p)",
    KELVIN: "subtract 273.15 to get degC",
    DEPTH_OR_HEIGHT: "convert depth to sea pressure with TEOS-10's p_from_z(z, lat), z = -depth (negative downwards)",
    "not in dbar": "convert it to sea pressure in dbar (1 dbar = 10 kPa)",
    ABSOLUTE_SALINITY: "it needs no conversion: pass it where SA is taken (or get SP with SP_from_SA(SA, p, lon, lat))",
    CONSERVATIVE_TEMPERATURE: "it needs no conversion: pass it where CT is taken (or convert it with "
    "pt_from_CT(SA, CT) or t_from_CT(SA, CT, p))",
    PRESSURE: "pass it as p where a sea pressure (dbar) is taken, or convert it: z = z_from_p(p, lat)",
    POSITIVE_DOWN: "TEOS-10's z is height, negative below the sea surface: pass z = -depth with attributes "
    "that say so, e.g. p_from_z((-depth).assign_attrs(standard_name='height', positive='up'), lat)",
    "not in metres": "convert it to metres",
    HEIGHT: "depth is positive downwards: pass -z (with attributes that say so: positive='down')",
}

#: fixes for one input only
_FIXES_FOR = {("depth", PRESSURE): "convert it: depth = -z_from_p(p, lat) (with p in dbar)"}

_WANTED = {
    "SA": ("Absolute Salinity", "sea_water_absolute_salinity", "g kg-1"),
    "CT": ("Conservative Temperature", "sea_water_conservative_temperature", "degC"),
    "p": ("sea pressure", "sea_water_pressure_due_to_sea_water", "dbar"),
    "SP": ("Practical Salinity", "sea_water_practical_salinity", "1"),
    "pt": ("potential temperature", "sea_water_potential_temperature", "degC"),
    "t": ("in-situ temperature", "sea_water_temperature", "degC"),
    "z": ("height, negative below the sea surface", "height", "m"),
    "depth": ("depth in m, positive downwards", "depth", "m"),
}


def check_declared(arg: xr.DataArray, name: str, *, fixes: Mapping[str, str] | None = None) -> None:
    """Refuse a DataArray whose ``standard_name`` or ``units`` say it is not ``name``.

    ``name`` is ``"SA"``, ``"CT"``, ``"p"`` or, for the conversions, ``"SP"``,
    ``"pt"``, ``"t"``, ``"z"``, ``"depth"`` (m, positive down).  ``fixes`` replace
    the suggested fix for what the attributes say (:data:`PRESSURE`,
    :data:`HEIGHT`...), e.g. the argument of the caller that takes it.  Practical salinity where SA is taken (and
    Absolute Salinity where SP is), the wrong kind of temperature, temperatures
    in kelvin, depths or heights where pressure is taken (``units`` of a
    length, ``positive`` without units of pressure), pressures where height or
    depth is taken, positive-down depths where height is taken (and heights
    where depth is), pressures not in dbar and lengths not in metres are
    refused with the conversion to make; attributes that say nothing known are
    accepted.
    """
    if name not in _WANTED:
        return
    standard_name = str(arg.attrs.get("standard_name", "")).strip().lower()
    units = "".join(str(arg.attrs.get("units", "")).split()).lower()
    what = _WRONG_STANDARD_NAMES[name].get(standard_name) or _WRONG_UNITS[name].get(units)
    positive = str(arg.attrs.get("positive", "")).lower()
    if what is None and name == "p" and positive in ("up", "down") and units not in _DBAR:  # CF lets a
        # pressure coordinate say positive="down": its units say it is a pressure
        what = DEPTH_OR_HEIGHT
    if what is None and name == "z" and positive == "down":
        what = POSITIVE_DOWN
    if what is None and name == "depth" and positive == "up":
        what = HEIGHT
    if what is None:
        return
    wanted, wanted_standard_name, wanted_units = _WANTED[name]
    declared = ", ".join(
        f"{key} {arg.attrs[key]!r}" for key in ("standard_name", "units", "positive") if key in arg.attrs
    )
    label = f"{name} ({arg.name!r})" if arg.name is not None else name
    positive = ", positive='up'" if name == "z" and "positive" in arg.attrs else ""
    fix = (fixes or {}).get(what) or _FIXES_FOR.get((name, what)) or _FIXES[what]
    raise ValueError(
        f"{label} is {what} according to its attributes ({declared}), but {name} must be {wanted} "
        f"({wanted_units}): {fix}.  If the values are {wanted} already, correct the attributes, "
        f"e.g. .assign_attrs(standard_name={wanted_standard_name!r}, units={wanted_units!r}{positive})"
    )
