"""numba's on-disk cache of this package's kernels, kept fresh when a module they import changes.

numba stamps a function's cache index with a hash of the one file that defines it: a kernel of
``quantiles.py`` or ``mhw.py`` whose helpers live in ``sorting.py`` would go on loading its old machine
code after only ``sorting.py`` changed.  :class:`KernelsLocator`, put first among numba's cache locators
by :func:`install`, finds each function defined in this package where numba's own locators would (the
``__pycache__`` beside it, ``NUMBA_CACHE_DIR``, the user's cache directory) and stamps its index with
:func:`sources_hash`: its module's source and those of the modules of this package that it imports,
transitively.  A change to any of them makes the index stale, so the kernel is compiled again and its
entry replaced.  Functions defined elsewhere keep numba's locators as they are; so does every function
when ``NUMBA_CACHE_LOCATOR_CLASSES`` names the locators.

Each file is read and hashed once per process and again only when its size or modification time
changes (a few ``stat`` calls per compiled function).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from typing import Any

from numba.core import caching

try:  # numba's base class of cache implementations, whose list of locators every cache consults
    from numba.core.caching import CacheImpl as _CacheImpl
except ImportError:  # (older numba)
    from numba.core.caching import _CacheImpl  # type: ignore[attr-defined, no-redef]

#: The folder of this package's modules.
PACKAGE = os.path.dirname(os.path.abspath(__file__))

# "from .name import ..." and "from . import a, b": the modules of this package a module imports
_IMPORT = re.compile(rb"^[ \t]*from[ \t]+\.(\w*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)

_lock = threading.Lock()
_files: dict[str, tuple[tuple[int, int], bytes, tuple[str, ...]]] = {}


def _file(path: str) -> tuple[bytes, tuple[str, ...]]:
    """(sha256 digest, paths of the package's modules it imports) of the module at ``path``."""
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        known = _files.get(path)
    if known is not None and known[0] == stamp:
        return known[1], known[2]
    with open(path, "rb") as f:
        source = f.read()
    names = []
    for module, listed in _IMPORT.findall(source):
        names += [module] if module else re.findall(rb"\w+", listed)
    paths = (os.path.join(PACKAGE, name.decode() + ".py") for name in names)
    imports = tuple(p for p in paths if os.path.isfile(p))
    digest = hashlib.sha256(source).digest()
    with _lock:
        _files[path] = (stamp, digest, imports)
    return digest, imports


def sources_hash(path: str) -> str:
    """The sha256 of the source of the module at ``path`` and of every module of this package it imports,
    transitively (each by its name, in name order)."""
    seen: dict[str, bytes] = {}
    todo = [os.path.abspath(path)]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen[p], imports = _file(p)
            todo += imports
    digest = hashlib.sha256()
    for p in sorted(seen):
        digest.update(os.path.basename(p).encode() + b"\0" + seen[p])
    return digest.hexdigest()


class KernelsLocator(caching._CacheLocator):
    """numba's own locator of a function defined in this package, its source stamp :func:`sources_hash`."""

    def __init__(self, inner: caching._CacheLocator, stamp: str):
        self._inner, self._stamp = inner, stamp

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> str:
        return self._stamp

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        """The locator of ``py_func`` (None: a function defined elsewhere, left to numba's locators)."""
        py_file = os.path.abspath(py_file)
        if os.path.dirname(py_file) != PACKAGE or not os.path.isfile(py_file):
            return None
        locators: list[Any] = _CacheImpl._locator_classes
        for other in locators:
            inner = None if other is cls else other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, sources_hash(py_file))
        return None


def install() -> None:
    """Put :class:`KernelsLocator` first among numba's cache locators (once)."""
    with _lock:
        if KernelsLocator not in _CacheImpl._locator_classes:
            _CacheImpl._locator_classes.insert(0, KernelsLocator)
