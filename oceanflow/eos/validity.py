"""Inputs outside TEOS-10's range of validity: said once per call, with the count, or refused.

TEOS-10's functions are fitted over the oceanographic range (IOC et al. 2010,
section 2.1 and appendix K); outside it they extrapolate silently, so a fill
value, a temperature in kelvin or a depth passed as height gives numbers that
look plausible.  Every eos function with a ``check`` argument counts the
input values outside their range (NaN is never counted) and:

* ``check="warn"`` (default): one :class:`TEOS10RangeWarning` per call,
  naming each input, its range and how many values lie outside it;
* ``check="raise"``: ``ValueError`` with the same text, nothing computed;
* ``check=None`` (or ``"ignore"``): no check, no cost.

Cost.  NumPy inputs (and NumPy-backed DataArrays): one read of each checked
input by a counting kernel (no temporaries), small beside the conversion
(``SR_from_SP``, a single multiplication, counts inside its own kernel instead:
:func:`counted` and :func:`report` give kernels that count the same message).  dask inputs stay
lazy: counting them before computing would read the data twice, so the check
runs inside each chunk's own task (dask fuses it with the conversion: no extra
task, no extra pass) and warns, or raises, when that chunk is computed; a
warning then says which input and range, not the total count (that needs a
pass over the data: ``((x < low) | (x > high)).sum()``), and Python shows a
given warning once per place.

Example
-------
>>> import numpy as np, warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     _ = check_ranges("demo", {"p": np.array([-5.0, 10.0, np.nan])}, {"p": (0.0, 10000.0, "dbar")})
>>> print(str(caught[0].message).split(". ")[0])
demo: values outside TEOS-10's range: p 1 of 3 outside [0, 10000] dbar
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .._arrays import is_dask, unmasked
from ..kernels import FLOAT_DTYPES
from ..kernels.validity import count_outside

__all__ = ["RANGES", "TEOS10RangeWarning", "check_range", "check_ranges", "counted", "report"]

#: Each input's range (low, high, units); the oceanographic range of TEOS-10
#: (SA 0-42 g kg-1, p 0-10^4 dbar, 40 degC at most), with temperatures bounded
#: below at -3 degC: colder than any seawater found in the ocean.
RANGES: dict[str, tuple[float, float, str]] = {
    "SP": (0.0, 42.0, ""),
    "SA": (0.0, 42.0, "g kg-1"),
    "SR": (0.0, 42.0, "g kg-1"),
    "CT": (-3.0, 40.0, "degC"),
    "pt": (-3.0, 40.0, "degC"),
    "t": (-3.0, 40.0, "degC"),
    "p": (0.0, 10000.0, "dbar"),
    "z": (-10000.0, 5.0, "m"),
    "depth": (-5.0, 10000.0, "m"),
    "lat": (-90.0, 90.0, "degN"),
}

_CHECKS = ("warn", "raise", "ignore", None)
_FOOTER = 'The results there are extrapolations; check=None to skip this check, check="raise" to refuse such input'


class TEOS10RangeWarning(UserWarning):
    """Input values outside the range over which TEOS-10's functions are valid."""


def _number(value: float) -> str:
    return f"{value:g}"


def _describe(name: str, low: float, high: float, units: str) -> str:
    return f"{name} outside [{_number(low)}, {_number(high)}]{' ' + units if units else ''}"


def _validated(check: Any) -> str | None:
    if check not in _CHECKS:
        raise ValueError(f"check must be 'warn', 'raise' or None, got {check!r}")
    return None if check in ("ignore", None) else check


def _count(values: np.ndarray, low: float, high: float) -> int:
    values = unmasked(values)
    if values.dtype.kind not in "fiu":
        return 0  # not numbers: refused later with the dtype checks' own message
    if values.dtype in FLOAT_DTYPES:
        with np.errstate(invalid="ignore"):  # vectorised comparisons with NaN raise the flag
            return int(count_outside(np.ravel(values), low, high))
    return int(np.count_nonzero((values < low) | (values > high)))


def _check_block(block: np.ndarray, *, function: str, text: str, low: float, high: float, check: str) -> np.ndarray:
    """The dask side of the check: runs inside the chunk's task, returns the block as it is."""
    if _count(np.asarray(block), low, high):
        message = f"{function}: values outside TEOS-10's range in a chunk: {text}. {_FOOTER}"
        if check == "raise":
            raise ValueError(message)
        warnings.warn(message, TEOS10RangeWarning, stacklevel=2)
    return block


def check_range(
    name: str,
    array: Any,
    low: float,
    high: float,
    *,
    units: str = "",
    check: str | None = "warn",
    function: str = "",
) -> Any:
    """Check one input: :func:`check_ranges` with one entry; returns ``array``
    (a dask array, or a DataArray holding one, with the check in its chunks' tasks)."""
    return check_ranges(function, {name: array}, {name: (low, high, units)}, check=check)[name]


def check_ranges(
    function: str,
    arrays: Mapping[str, Any],
    ranges: Mapping[str, tuple] | None = None,
    *,
    check: str | None = "warn",
) -> dict[str, Any]:
    """Count the values of each of ``arrays`` outside its range; one warning (or error) in all.

    ``ranges`` maps names to ``(low, high)`` or ``(low, high, units)``;
    by default :data:`RANGES`, names without a range are not checked.
    Returns the arrays, the dask ones (bare or in DataArrays) with the check
    added to their chunks' tasks (see the module doc); NumPy inputs are
    checked now.
    """
    check = _validated(check)
    arrays = dict(arrays)
    if check is None:
        return arrays
    ranges = RANGES if ranges is None else ranges
    found = []
    for name, array in arrays.items():
        if name not in ranges:
            continue
        low, high, *rest = ranges[name]
        text = _describe(name, low, high, rest[0] if rest else "")
        data = array.data if isinstance(array, xr.DataArray) else array
        if is_dask(data):
            if data.dtype.kind not in "fiu":
                continue
            lazy = data.map_blocks(
                _check_block,
                function=function,
                text=text,
                low=low,
                high=high,
                check=check,
                dtype=data.dtype,
                token="teos10-range-check",
            )
            arrays[name] = array.copy(data=lazy) if isinstance(array, xr.DataArray) else lazy
            continue
        try:
            values = np.asanyarray(data)
        except (TypeError, ValueError):
            continue
        count = _count(values, low, high)
        if count:
            found.append(counted(name, count, values.size, ranges[name]))
    report(function, found, check, stacklevel=4)
    return arrays


def counted(name: str, count: int, size: int, limits: tuple) -> str:
    """The text of one input's count in :func:`report`: ``"SP 3 of 10 outside [0, 42]"``."""
    low, high, *rest = limits
    return f"{name} {count} of {size}" + _describe(name, low, high, rest[0] if rest else "")[len(name) :]


def report(function: str, found: list[str], check: str | None, *, stacklevel: int = 3) -> None:
    """One :class:`TEOS10RangeWarning` (``check="warn"``) or ``ValueError`` (``"raise"``) for the
    counts ``found`` (texts of :func:`counted`), for kernels that count while they compute; nothing
    when ``found`` is empty."""
    if not found or _validated(check) is None:
        return
    message = f"{function}: values outside TEOS-10's range: {'; '.join(found)}. {_FOOTER}"
    if check == "raise":
        raise ValueError(message)
    warnings.warn(message, TEOS10RangeWarning, stacklevel=stacklevel)
