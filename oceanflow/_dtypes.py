"""The dtype rule shared by every oceanflow computation.

Kernels run in float32 or float64.  The working dtype is NumPy's
``np.result_type`` of the inputs, then:

* float32 stays float32 only when *every* input is float32 or float16 (a
  float32 field with float64 coefficients computes in float64, as NumPy
  would; a Python list of floats counts as float64);
* anything else real (integers, booleans, float64) computes in float64;
* complex, datetime, string and object inputs are refused with a clear error.

Example
-------
>>> working_dtype(np.float32, np.float32)
dtype('float32')
>>> working_dtype(np.int16, np.float32)
dtype('float64')
"""

from __future__ import annotations

import numpy as np


def working_dtype(*dtypes, names=None) -> np.dtype:
    """The float dtype to compute in for inputs of ``dtypes`` (see module doc)."""
    names = names or [f"input {i}" for i in range(len(dtypes))]
    for dtype, name in zip(dtypes, names, strict=True):
        check_real_numeric(dtype, name)
    if all(np.dtype(dtype) in _SINGLE for dtype in dtypes):
        return np.dtype("float32")
    return np.dtype("float64")


_SINGLE = (np.dtype("float16"), np.dtype("float32"))


def check_real_numeric(dtype, name: str) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``dtype`` is a real number type."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(
            f"{name} is complex ({dtype}); oceanflow computes with real numbers: "
            "pass the real and imaginary parts separately"
        )
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has non-numeric dtype {dtype}; pass numbers "
            "(convert datetimes to numbers first, e.g. with (t - t0) / np.timedelta64(1, 'D'))"
        )
