"""oceanflow: polynomials, seawater density and climatologies at any size.

Every computation is one numba generalized ufunc per chunk, mapped over dask
chunks by ``xarray.apply_ufunc``: the task graph follows the flow of
information, not the arithmetic.

>>> import numpy as np, oceanflow
>>> oceanflow.polyval(np.array([1.0, 2.0]), [1.0, 0.0, -1.0])
array([0., 3.])
"""

from __future__ import annotations

from types import ModuleType

from . import chunking, eos, mhw
from .chunking import explain_chunks, suggest_chunks
from .climatology import anomaly, climatology
from .fitting import detrend, polyfit
from .io import open_dataset, save
from .options import set_options
from .polynomials import polyval

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "anomaly",
    "chunking",
    "climatology",
    "cluster",
    "detrend",
    "eos",
    "explain_chunks",
    "mhw",
    "open_dataset",
    "polyfit",
    "polyval",
    "save",
    "set_options",
    "suggest_chunks",
]


def __getattr__(name: str) -> ModuleType:
    """``oceanflow.cluster`` on first use: importing oceanflow starts nothing and writes nothing."""
    if name == "cluster":
        import importlib

        return importlib.import_module(f"{__name__}.cluster")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
