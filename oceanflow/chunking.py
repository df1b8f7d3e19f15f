"""Chunk layouts that oceanflow's kernels need.

A kernel with a core dimension (a fit along ``time``, an integral over depth)
sees each series whole, so that dimension must be one dask chunk.
:func:`whole_core_dims` makes it so when that is cheap, and says what it cost.

Example
-------
>>> import warnings, numpy as np, xarray as xr
>>> da = xr.DataArray(np.zeros((10, 4)), dims=("time", "x")).chunk({"time": 5})
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     whole = whole_core_dims(da, "time", operation="polyfit")
>>> whole.chunks, caught[0].category.__name__
(((10,), (4,)), 'RechunkWarning')
"""

from __future__ import annotations

import math
import warnings

import xarray as xr

__all__ = ["GROWTH_LIMIT", "SMALL_CHUNK_BYTES", "RechunkWarning", "whole_core_dims"]

#: A rechunk is done for you when each new chunk holds at most this many times
#: the bytes of the variable's largest chunk before (or at most
#: :data:`SMALL_CHUNK_BYTES`); beyond, you are asked to rechunk yourself.
GROWTH_LIMIT = 4

#: New chunks this small are always acceptable, whatever the old ones were.
SMALL_CHUNK_BYTES = 1 << 20


class RechunkWarning(UserWarning):
    """oceanflow rechunked an input so that its core dimensions are whole."""


def whole_core_dims(obj, dims, *, operation: str):
    """``obj`` with every dimension of ``dims`` in one dask chunk.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        NumPy-backed variables, and dask-backed ones whose ``dims`` are
        already whole, are returned untouched (no warning).
    dims : str or sequence of str
        The core dimensions of the operation.
    operation : str
        Name used in the warning and error messages, e.g. ``"polyfit"``.

    Returns
    -------
    Same type as ``obj``.  Each data variable with a split core dimension is
    rechunked with ``dims`` whole, keeping its other chunks when the new
    chunks hold at most :data:`GROWTH_LIMIT` times the bytes of its largest
    chunk (or :data:`SMALL_CHUNK_BYTES`), else with smaller (``"auto"``)
    chunks along its other dimensions.
    One :class:`RechunkWarning` per call reports the new chunks and their
    size.  Coordinates are left alone.

    Raises
    ------
    ValueError
        When even the smallest chunks with ``dims`` whole would hold more
        than :data:`GROWTH_LIMIT` times the current largest chunk (and more
        than :data:`SMALL_CHUNK_BYTES`): rechunking
        would then be expensive, so it is left to you.
    """
    dims = [dims] if isinstance(dims, str) else list(dims)
    is_array = isinstance(obj, xr.DataArray)
    variables = {None: obj.variable} if is_array else dict(obj.data_vars.items())
    plans, notes = {}, []
    for name, var in variables.items():
        var = getattr(var, "variable", var)
        if var.chunks is None or not any(len(var.chunks[var.get_axis_num(d)]) > 1 for d in dims if d in var.dims):
            continue
        plans[name], note = _plan(var, dims, operation, name)
        notes.append(note)
    if not plans:
        return obj
    warnings.warn(
        f"{operation} needs {_names(dims)} in one chunk: rechunked " + "; ".join(notes)
        + f". Rechunk beforehand, e.g. obj.chunk({{{dims[0]!r}: -1}}), to choose the chunks yourself "
        "and silence this warning.",
        RechunkWarning,
        stacklevel=3,
    )
    if is_array:
        return obj.copy(data=obj.variable.chunk(plans[None]).data)
    return obj.assign({name: obj[name].variable.chunk(chunks) for name, chunks in plans.items()})


def _plan(var, dims, operation, name):
    """New chunks (dim -> tuple) for ``var``, and a note on what they cost."""
    from dask.array.core import normalize_chunks
    from dask.utils import format_bytes

    itemsize = var.dtype.itemsize
    old_bytes = _chunk_bytes(var.chunks, itemsize)
    limit = max(GROWTH_LIMIT * old_bytes, SMALL_CHUNK_BYTES)
    core = [d in dims for d in var.dims]
    keep = tuple((size,) if is_core else chunks for size, chunks, is_core in zip(var.shape, var.chunks, core))
    new = keep
    if _chunk_bytes(keep, itemsize) > limit:
        spec = tuple(size if is_core else "auto" for size, is_core in zip(var.shape, core))
        target = max(old_bytes, SMALL_CHUNK_BYTES)
        new = normalize_chunks(spec, var.shape, limit=target, dtype=var.dtype, previous_chunks=var.chunks)
    new_bytes = _chunk_bytes(new, itemsize)
    label = "the DataArray" if name is None else f"variable {name!r}"
    if new_bytes > limit:
        smallest = itemsize * math.prod(size for size, is_core in zip(var.shape, core) if is_core)
        raise ValueError(
            f"{operation} needs {_names(dims)} of {label} in one chunk, but it is split into chunks of "
            f"{format_bytes(old_bytes)} at most, and one whole series along {_names(dims)} alone takes "
            f"{format_bytes(smallest)} (more than {GROWTH_LIMIT} times that, and more than "
            f"{format_bytes(SMALL_CHUNK_BYTES)}), so oceanflow does not "
            f"rechunk it for you. Rechunk it yourself, e.g. obj.chunk({{{dims[0]!r}: -1}}) with "
            "larger chunks or fewer dimensions chunked elsewhere, or open the data with "
            f"chunks={{{dims[0]!r}: -1}}."
        )
    shape = "x".join(str(max(c)) for c in new)
    note = (
        f"{label} to chunks of {shape} ({format_bytes(new_bytes)} each, "
        f"was {format_bytes(old_bytes)})"
    )
    return dict(zip(var.dims, new)), note


def _chunk_bytes(chunks, itemsize) -> int:
    return itemsize * math.prod(max(c) if len(c) else 0 for c in chunks)


def _names(dims) -> str:
    return ", ".join(repr(d) for d in dims)
