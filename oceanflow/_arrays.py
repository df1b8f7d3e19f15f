"""Small facts about array types, shared by the xarray layers.

Masked arrays: one rule everywhere.  A NumPy masked array (``numpy.ma``), or a
dask array whose blocks are masked arrays, is honoured as NaN: its masked
values become NaN before any kernel sees them, so float results are NaN there
(integer inputs become float64 first).  That is what ``xarray`` does when it
wraps a masked array, so ``polyval``, the ``eos`` functions and the
climatologies agree.  :func:`unmasked` is the one place that applies the rule.

Example
-------
>>> import numpy as np
>>> unmasked(np.ma.masked_array([1.0, 1e6], mask=[False, True]))
array([ 1., nan])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_dask", "numeric_array", "unmasked"]

_EPOCH = np.datetime64("1970-01-01", "ns")


def is_dask(x: Any) -> bool:
    """True for a dask array (checked by module, so dask is imported only when used)."""
    return type(x).__module__.startswith("dask.array")


def unmasked(x: Any) -> Any:
    """``x`` with a NumPy masked array's masked values as NaN (a plain ndarray).

    Float data keep their dtype; integer and boolean data with masked values
    become float64 (NaN needs a float).  Anything that is not a masked array
    is returned as it is.
    """
    if not isinstance(x, np.ma.MaskedArray):
        return x
    data = np.ma.getdata(x)
    mask = np.ma.getmaskarray(x)
    if not mask.any():
        return data
    if data.dtype.kind != "f":
        if data.dtype.kind not in "biu":
            return data  # complex, datetimes, strings: refused by the dtype checks with their own message
        data = data.astype(np.float64)
    return np.where(mask, np.array(np.nan, data.dtype), data)


def numeric_array(x: Any) -> Any:
    """Datetimes as float nanoseconds since 1970-01-01 and timedeltas as float
    nanoseconds (xarray's convention); other arrays unchanged."""
    if x.dtype.kind == "M":
        return (x - _EPOCH).astype("timedelta64[ns]").astype("float64")
    if x.dtype.kind == "m":
        return x.astype("timedelta64[ns]").astype("float64")
    return x
