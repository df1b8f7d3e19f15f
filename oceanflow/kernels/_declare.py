"""Declare a numba generalized ufunc once; compile it lazily, per dtype.

Every kernel of oceanflow is a plain Python loop plus one :func:`gufunc`
declaration that states its layout (NumPy's gufunc signature, e.g.
``"(n),(m)->(n)"``) and a typed signature template in which ``{t}`` stands for
the floating-point type.  Everything about compilation lives here:

* ``nopython`` and the serial ``cpu`` target only: dask already parallelises
  over chunks, and numba's ``parallel`` target aborts when entered from
  several threads.
* Lazy compilation per dtype: importing oceanflow compiles nothing; the first
  float32 call compiles the float32 loop only.  The time each compilation took
  is kept in :data:`COMPILE_SECONDS` and logged at DEBUG level.
* ``fastmath={"contract"}`` by default: it lets LLVM fuse multiply-adds
  (needed to vectorise Horner's scheme) but keeps IEEE NaN/Inf semantics, so
  NaN propagates.  Results differ from NumPy by rounding only.
* On-disk caching (``cache=True``) is on by default and can be switched off
  with the environment variable ``OCEANFLOW_NUMBA_CACHE=0``; helpers compiled
  into kernels are declared with :func:`njit`, which honours the same
  setting (never ``numba.njit(cache=True)`` directly).  A cached kernel is
  compiled again once its module or a module of this package that it imports
  changes (:mod:`oceanflow.kernels._cache`: numba alone looks at the kernel's
  own file).  The compiled gufunc object is never pickled: dask tasks call
  module-level functions that look the kernel up by name, so each worker
  process compiles (or loads from the cache) once.

Example
-------
>>> import numpy as np
>>> @gufunc("(n)->(n)", "void({t}[::1], {t}[::1])", cache=False)
... def double(x, out):
...     for i in range(x.shape[0]):
...         out[i] = 2 * x[i]
>>> double(np.arange(3.0))
array([0., 2., 4.])
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from .._env import switch
from . import _cache

logger = logging.getLogger("oceanflow.kernels")

#: The floating-point types every kernel is compiled for.
FLOAT_DTYPES = (np.dtype("float32"), np.dtype("float64"))

#: Seconds each (kernel, dtype) compilation took in this process.
COMPILE_SECONDS: dict[tuple[str, str], float] = {}

CONTRACT = frozenset({"contract"})

_cache.install()  # (before any helper below is declared: each makes its cache then)


def cache_enabled() -> bool:
    """Whether compiled kernels are cached on disk: ``OCEANFLOW_NUMBA_CACHE`` (default on; values as every
    ``OCEANFLOW_*`` switch, :mod:`oceanflow._env`: any other is refused with a ``ValueError`` naming it)."""
    return switch("OCEANFLOW_NUMBA_CACHE", default=True, what="the on-disk cache of compiled kernels")


def _cache_at_import() -> bool:
    """:func:`cache_enabled` for helpers declared as a module is imported, which must not fail: a value not
    understood leaves them uncached, and the first kernel compiled (:meth:`Kernel._compile`) refuses it."""
    try:
        return cache_enabled()
    except ValueError:
        return False


def njit(func: Callable | None = None, *, fastmath: Any = CONTRACT, inner: bool = False, **options: Any) -> Any:
    """``numba.njit`` for helpers that kernels call: nopython, ``fastmath={"contract"}``
    by default, and on-disk caching as :func:`cache_enabled` says.

    ``inner=True``: a helper called by compiled code only, compiled without the entry points
    from Python and C (less to compile; calling it from Python then fails).

    Use as ``@njit``, ``@njit(inline="always")`` or ``@njit(inner=True)``.
    """
    options.setdefault("cache", _cache_at_import())
    if inner:
        options.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    fastmath = set(fastmath) if isinstance(fastmath, (set, frozenset)) else fastmath
    decorate = numba.njit(fastmath=fastmath, **options)
    return decorate if func is None else decorate(func)


class Kernel:
    """A numba gufunc declared once and compiled lazily for each float dtype."""

    def __init__(self, pyfunc, layout: str, signature: str, *, fastmath=CONTRACT, cache=None):
        self.pyfunc = pyfunc
        self.layout = layout
        self.signature = signature
        self.fastmath = set(fastmath) if isinstance(fastmath, (set, frozenset)) else fastmath
        self._cache = cache  # None: as cache_enabled() says when compiled, not at import (see .cache)
        self.__name__ = pyfunc.__name__
        self.__qualname__ = pyfunc.__qualname__
        self.__module__ = pyfunc.__module__
        self.__doc__ = pyfunc.__doc__
        self._compiled: dict[np.dtype, np.ufunc] = {}
        self._lock = threading.Lock()
        layouts = re.findall(r"\{t\}(\[[^\]]*\])?", signature)
        self._contiguous = ["::1" in layout for layout in layouts]
        self._n_inputs = layout.split("->")[0].count("(")

    @property
    def cache(self) -> bool:
        """Whether compilations are cached on disk: as declared, else :func:`cache_enabled` (read here,
        when a kernel is compiled, so that a value not understood is refused then, not at import)."""
        return cache_enabled() if self._cache is None else self._cache

    def __repr__(self) -> str:
        return f"<oceanflow kernel {self.__name__} {self.layout!r}>"

    def for_dtype(self, dtype) -> np.ufunc:
        """The compiled gufunc for ``dtype`` (float32 or float64)."""
        dtype = np.dtype(dtype)
        compiled = self._compiled.get(dtype)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(dtype)
                if compiled is None:
                    compiled = self._compile(dtype)
                    self._compiled[dtype] = compiled
        return compiled

    def _compile(self, dtype: np.dtype) -> np.ufunc:
        if dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"kernel {self.__name__} is compiled for float32 and float64 only, got {dtype}; "
                "cast the input with .astype('float64') first"
            )
        start = time.perf_counter()
        compiled = numba.guvectorize(
            [self.signature.format(t=dtype.name)],
            self.layout,
            nopython=True,
            target="cpu",
            fastmath=self.fastmath,
            cache=self.cache,
        )(self.pyfunc)
        seconds = time.perf_counter() - start
        COMPILE_SECONDS[(self.__name__, dtype.name)] = seconds
        logger.debug("compiled kernel %s for %s in %.3f s", self.__name__, dtype.name, seconds)
        return compiled

    def __call__(self, *args, **kwargs):
        """Call the kernel; the dtype is that of the first argument.

        Inputs declared C-contiguous (``[::1]``) are made so (a strided array
        would otherwise be read as if it were contiguous); a strided output
        declared contiguous is refused.  Hot paths that already hold
        contiguous blocks call :meth:`for_dtype` directly.
        """
        arrays = list(args)
        for i, (arg, contiguous) in enumerate(zip(arrays, self._contiguous, strict=False)):
            if contiguous and isinstance(arg, np.ndarray) and not arg.flags.c_contiguous:
                if i >= self._n_inputs:
                    raise ValueError(f"kernel {self.__name__}: output {i - self._n_inputs} must be C-contiguous")
                arrays[i] = np.ascontiguousarray(arg)
        return self.for_dtype(np.asarray(arrays[0]).dtype)(*arrays, **kwargs)


def gufunc(layout: str, signature: str, *, fastmath=CONTRACT, cache=None):
    """Declare ``pyfunc`` as a lazily compiled gufunc (see the module docstring).

    Parameters
    ----------
    layout : str
        NumPy gufunc layout, e.g. ``"(n),(m)->(n)"``.
    signature : str
        numba signature with ``{t}`` for the float type, e.g.
        ``"void({t}[::1], {t}[::1], {t}[::1])"``.  ``[::1]`` declares
        C-contiguous core arrays (unit stride, so loops vectorise); the caller must pass them.
    fastmath : set or bool
        numba fastmath flags; default ``{"contract"}`` (fused multiply-add only).
    cache : bool, optional
        On-disk caching; default from ``OCEANFLOW_NUMBA_CACHE`` (on).
    """

    def declare(pyfunc) -> Kernel:
        return Kernel(pyfunc, layout, signature, fastmath=fastmath, cache=cache)

    return declare
