"""numba generalized ufuncs: NumPy in, NumPy out; no xarray, no dask.

Each kernel is declared once with :func:`oceanflow.kernels._declare.gufunc`,
its layout next to it, and compiled lazily per float dtype.
"""

from ._declare import COMPILE_SECONDS, FLOAT_DTYPES, Kernel, cache_enabled, gufunc, njit

__all__ = ["COMPILE_SECONDS", "FLOAT_DTYPES", "Kernel", "cache_enabled", "gufunc", "njit"]
