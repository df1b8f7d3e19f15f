"""The one place where oceanflow maps kernels over dask chunks: one task per output chunk.

Every xarray layer computes through a *block function*: a module-level
function (so that dask pickles it by name and each worker compiles its kernel
once) that takes NumPy blocks and returns NumPy blocks by calling one numba
kernel.  This module maps block functions over data; use it from any module
(polynomials, fitting and eos do; the climatologies can):

:func:`map_blocks`
    ``dask.array.blockwise`` with axes named by the caller.  Axes of an input
    that are missing from ``out_index`` are *dropped*: the block function sees
    them whole (a fit along time, a water column).  ``new_axes`` adds axes to
    the output (the powers of a fit).  A block function that returns a tuple
    gives several outputs from one task (each output is then one cheap
    ``getitem`` per chunk; no copy).  NumPy inputs call the block function
    directly.  Masked blocks are read with masked values as NaN
    (:func:`oceanflow._arrays.unmasked`), the rule everywhere in oceanflow.
:func:`right_aligned`
    Indices that match axes from the right, as NumPy broadcasts.
:func:`map_fields`
    A Dataset through ``xarray.apply_ufunc``'s own per-variable machinery,
    restricted to its fields (:func:`oceanflow.variables.fields`); bounds and
    other variables are carried unchanged.

Why not ``apply_ufunc(dask="parallelized")``: it goes through
``dask.array.apply_gufunc``, which adds a transpose and a getitem layer per
chunk, three tasks where one does the work.  oceanflow lets ``apply_ufunc``
do the xarray bookkeeping (dimensions, coordinates, Datasets) with
``dask="allowed"`` and builds the graph here.

Working dtype: every caller names the float dtype a kernel computes in
``work_dtype`` (see :func:`oceanflow._dtypes.working_dtype`).

Example
-------
>>> import numpy as np, dask.array as dsa
>>> def column_sums(block):          # drops axis "z": the block holds whole columns
...     return block.sum(axis=0)
>>> x = dsa.ones((4, 6), chunks=(2, 3))
>>> total = map_blocks(column_sums, "x", x, "zx", dtype=x.dtype, name="sums")
>>> total.compute(), total.npartitions
(array([4., 4., 4., 4., 4., 4.]), 2)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import is_dask, unmasked
from .chunking import check_task_count
from .variables import fields

__all__ = ["map_blocks", "map_fields", "right_aligned"]

Index = Sequence[Hashable]


def map_blocks(
    func: Callable[..., Any],
    out_index: Index,
    *args: Any,
    dtype: Any,
    new_axes: Mapping[Hashable, int] | None = None,
    adjust_chunks: Mapping[Hashable, Any] | Sequence[Mapping[Hashable, Any]] | None = None,
    name: str = "oceanflow",
    **kwargs: Any,
) -> Any:
    """Apply ``func`` to aligned blocks of ``args``: one task per output chunk.

    Parameters
    ----------
    func : callable
        Block function, module level: NumPy blocks in, a NumPy block (or a
        tuple of them, one per output) out.
    out_index : sequence of hashable
        Names of the output's axes, e.g. ``"tyx"`` or ``("degree", "y", "x")``.
    *args
        Alternating arrays and their indices, as for ``dask.array.blockwise``:
        ``x, "tyx", coeffs, "d"``.  An index of None passes the argument as
        it is.  An axis named in an input but not in ``out_index`` is dropped
        (each block holds it whole).
    dtype : dtype or tuple of dtypes
        dtype of each output; a tuple means ``func`` returns that many outputs.
    new_axes : dict, optional
        Output axes that no input has, with their lengths.
    adjust_chunks : dict or tuple of dicts, optional
        Output chunk sizes that differ from the inputs' along an axis (an int,
        or a function of the input chunk size), for every output or per output.
    name : str
        Prefix of the graph layer names (the kernel's concept: ``"polyval"``),
        and the operation named when the graph would exceed
        ``set_options(max_tasks=)`` (:func:`oceanflow.chunking.check_task_count`).
    **kwargs
        Passed to ``func`` (constant coefficients, options).

    Returns
    -------
    The output (dask array, or whatever ``func`` returns for NumPy inputs), or
    a tuple of outputs.
    """
    pairs = list(zip(args[::2], args[1::2], strict=True))
    if not any(is_dask(array) for array, index in pairs if index is not None):
        return func(*(unmasked(array) for array, _ in pairs), **kwargs)
    import dask.array as dsa
    from dask.base import tokenize

    dtypes = tuple(np.dtype(d) for d in dtype) if isinstance(dtype, (tuple, list)) else (np.dtype(dtype),)
    arrays = [array for array, index in pairs if index is not None]
    check_task_count(*arrays, operation=name, tasks_per_chunk=1 + len(dtypes) * (len(dtypes) > 1))
    given: list[Any] = (
        list(adjust_chunks) if isinstance(adjust_chunks, (tuple, list)) else [adjust_chunks] * len(dtypes)
    )
    labels: dict[Hashable, str] = {}  # dask sorts index labels: make them all strings

    def canonical(index: Index) -> tuple[str, ...]:
        return tuple(labels.setdefault(label, f"a{len(labels)}") for label in index)

    arguments: list[Any] = []
    for array, index in pairs:
        arguments += [dsa.asarray(array), canonical(index)] if index is not None else [array, None]
    out_index = canonical(out_index)
    new_axes = {labels[label]: size for label, size in (new_axes or {}).items()}
    adjusts = [{labels[label]: rule for label, rule in adjust.items()} if adjust else None for adjust in given]
    token = tokenize(func, out_index, arguments, dtypes, new_axes, adjusts, kwargs)
    common = {
        "new_axes": new_axes,
        "concatenate": True,
        "name": f"{name}-{token}",
        "block_func": func,
    }
    if len(dtypes) == 1:
        return dsa.blockwise(
            _call,
            out_index,
            *arguments,
            dtype=dtypes[0],
            meta=np.empty((0,) * len(out_index), dtypes[0]),
            adjust_chunks=adjusts[0],
            **common,
            **kwargs,
        )
    together = dsa.blockwise(  # chunks of this array are tuples: never computed by itself
        _call, out_index, *arguments, dtype=dtypes[0], meta=np.empty((0,) * len(out_index)), **common, **kwargs
    )
    return tuple(
        _one_output(together, k, dtypes[k], _adjusted(together.chunks, out_index, adjusts[k]), name, token)
        for k in range(len(dtypes))
    )


def _call(*blocks: Any, block_func: Callable[..., Any], **kwargs: Any) -> Any:
    """Run ``block_func`` on one set of blocks (masked values as NaN)."""
    return block_func(*(unmasked(block) for block in blocks), **kwargs)


def _one_output(together: Any, k: int, dtype: np.dtype, chunks: tuple, name: str, token: str) -> Any:
    return together.map_blocks(
        operator.getitem,
        k,
        dtype=dtype,
        chunks=chunks,
        meta=np.empty((0,) * together.ndim, dtype),
        name=f"{name}-output{k}-{token}",
    )


def _adjusted(chunks: tuple, out_index: tuple, adjust: Mapping[str, Any] | None) -> tuple:
    """``chunks`` with ``adjust`` applied along the named axes (as ``dask.array.blockwise`` does)."""
    if not adjust:
        return chunks
    result = list(chunks)
    for axis, label in enumerate(out_index):
        if label in adjust:
            rule = adjust[label]
            result[axis] = tuple(rule(c) if callable(rule) else rule for c in chunks[axis])
    return tuple(result)


def right_aligned(arrays: Sequence[Any], ndim: int) -> list[Any]:
    """``[array, index, array, index, ...]`` for :func:`map_blocks`, matching axes from the
    right as NumPy broadcasts; the output index is ``tuple(range(ndim))``.  Scalars get
    the empty index (every task reads them)."""
    index = tuple(range(ndim))
    flat: list[Any] = []
    for array in arrays:
        flat += [array, index[ndim - np.ndim(array) :]]
    return flat


def map_fields(func: Callable[..., Any], ds: xr.Dataset, *args: Any, **apply_ufunc_kwargs: Any) -> Any:
    """``xarray.apply_ufunc(func, ds[fields], *args, ...)`` with ``ds``'s other variables carried.

    The fields are the numeric data variables that are not CF bounds
    (:func:`oceanflow.variables.fields`); bounds (``lat_bnds``), text and
    other variables reach the result unchanged, with the Dataset's
    attributes.  For several outputs (``output_core_dims`` of several
    entries) a tuple of Datasets comes back, each carrying the same variables.
    """
    names = fields(ds)
    if not names:
        raise ValueError(
            "the Dataset has no field to compute on (numeric data variables that are not CF bounds); "
            f"its variables are {list(ds.data_vars)}"
        )
    result = xr.apply_ufunc(func, ds[names], *args, **apply_ufunc_kwargs)
    results = result if isinstance(result, tuple) else (result,)
    merged = tuple(ds.assign({name: r[name] for name in names}) for r in results)
    return merged if isinstance(result, tuple) else merged[0]
