"""Run an eos kernel on NumPy, dask or xarray inputs: one shared path for every function.

Inputs are checked (real numbers, declared meaning), broadcast as NumPy (by
position) or xarray (by dimension name, aligned by label), computed in the
working dtype (float32 only when every input is float32) and mapped over dask
with one task per chunk; in-memory NumPy input runs on all cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._arrays import is_dask, unmasked
from .._blockwise import map_blocks, right_aligned
from .._dtypes import check_real_numeric, working_dtype
from .._parallel import run_sliced
from ..alignment import align
from ..chunking import chunked_for
from ..kernels import eos as density_kernels
from ..kernels import eos_conversions as conversion_kernels
from ..kernels import eos_properties as property_kernels
from .declared import check_declared
from .validity import check_ranges

#: Every eos kernel by name (dask tasks look kernels up here, never pickle them).
KERNELS: dict[str, Any] = {**density_kernels.KERNELS, **property_kernels.KERNELS, **conversion_kernels.KERNELS}


def evaluate(
    kernel: str,
    args: Sequence[Any],
    names: Sequence[str],
    outputs: Sequence[str],
    attrs: Mapping[str, Mapping[str, str]],
    extra: Sequence[float] = (),
    *,
    check: str | None = "warn",
    function: str | None = None,
) -> Any:
    """Check ``args`` (called ``names`` in messages), pick the dtype and run ``kernel``.

    ``kernel`` names an entry of :data:`KERNELS`; ``outputs`` name the results,
    whose DataArrays get ``attrs[output]``; ``extra`` are scalar arguments passed
    to the kernel after the arrays (a reference pressure, say); ``check`` is
    the range check of :func:`.validity.check_ranges` on the inputs, by name,
    in messages from ``function`` (default ``kernel``).  Returns one result, or
    a tuple when there are several outputs.
    """
    args = checked_inputs(function or kernel, args, names, check)
    work_dtype = working_dtype(*(arg.dtype for arg in args), names=names)
    options = {
        "kernel": kernel,
        "work_dtype": work_dtype,
        "extra": tuple(extra),
        "nout": len(outputs),
    }
    if any(isinstance(arg, xr.DataArray) for arg in args):
        return _evaluate_xarray(args, names, outputs, attrs, options)
    shapes = [arg.shape for arg in args]
    if not any(np.isnan(size) for shape in shapes for size in shape):  # dask: unknown sizes are NaN
        broadcast_shape(shapes, names)
    results = _evaluate_arrays(*args, **options)
    if any(is_dask(arg) for arg in args):
        return results
    results = results if len(outputs) > 1 else (results,)
    results = tuple(r[()] if r.ndim == 0 else r for r in results)
    return results if len(outputs) > 1 else results[0]


def _block(*arrays, kernel, work_dtype, extra=(), nout=1, threaded=False):
    """Broadcast NumPy ``arrays``, run ``kernel`` in ``work_dtype`` on them flat and
    C-contiguous, reshape.

    Module-level so that dask pickles it by name; ``threaded`` splits the call
    over oceanflow's threads (in-memory input only, never inside dask tasks).
    """
    dtype = np.dtype(work_dtype)
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    flat = [np.asarray(np.broadcast_to(a, shape), dtype=dtype, order="C").reshape(-1) for a in arrays]
    size = flat[0].size
    outs = [np.empty(size, dtype) for _ in range(nout)]
    scalars = [dtype.type(value) for value in extra]
    compiled = KERNELS[kernel].for_dtype(dtype)

    def run(part):
        compiled(*(a[part] for a in flat), *scalars, *(o[part] for o in outs))

    if threaded:
        run_sliced(run, size)
    else:
        run(slice(None))
    results = tuple(o.reshape(shape) for o in outs)
    return results if nout > 1 else results[0]


def _evaluate_dask(args, options):
    """One task per output chunk; blocks of the inputs matched from the right, as in NumPy."""
    ndim = max(np.ndim(arg) for arg in args)
    nout = options["nout"]
    work_dtype = options["work_dtype"]
    return map_blocks(
        _block,
        tuple(range(ndim)),
        *right_aligned(args, ndim),
        dtype=(work_dtype,) * nout if nout > 1 else work_dtype,
        name=f"eos-{options['kernel']}",
        **options,
    )


def _evaluate_arrays(*args, **options):
    """NumPy blocks on all cores, or a dask graph of one task per chunk."""
    if any(is_dask(arg) for arg in args):
        return _evaluate_dask(args, options)
    return _block(*(unmasked(arg) for arg in args), threaded=True, **options)


def _evaluate_xarray(args, names, outputs, attrs, options):
    refuse_unnamed(args, names)
    args = [chunked_for(a, operation="eos") if isinstance(a, xr.DataArray) else xr.DataArray(a) for a in args]
    args = list(align(*args, names=names))
    nout = len(outputs)
    results = xr.apply_ufunc(
        _evaluate_arrays, *args, kwargs=options, dask="allowed", output_core_dims=[()] * nout, keep_attrs=False
    )
    results = results if nout > 1 else (results,)
    for result, name in zip(results, outputs, strict=True):
        result.name = name
        result.attrs = dict(attrs[name])
    return results if nout > 1 else results[0]


def checked_inputs(function: str, args: Sequence[Any], names: Sequence[str], check: str | None) -> list[Any]:
    """``args`` checked as :func:`checked` does, then their ranges (:func:`.validity.check_ranges`:
    a warning or error now for in-memory values, a check in each chunk's task for dask ones)."""
    checked_args = [checked(arg, name) for arg, name in zip(args, names, strict=True)]
    ranged = check_ranges(function, dict(zip(names, checked_args, strict=True)), check=check)
    return [ranged[name] for name in names]


def checked(arg: Any, name: str, fixes: Mapping[str, str] | None = None) -> Any:
    """``arg`` as a DataArray, dask array or NumPy array of real numbers; a DataArray's
    attributes must not say it is something else than ``name`` (:func:`.declared.check_declared`,
    with ``fixes``)."""
    if isinstance(arg, xr.Dataset):
        raise TypeError(f"{name} is a Dataset; pass its DataArray, e.g. ds[{name!r}]")
    arg = unmasked(arg)  # masked values are NaN, as everywhere in oceanflow
    if isinstance(arg, xr.DataArray):
        check_declared(arg, name, fixes=fixes)
    elif not is_dask(arg):
        try:
            arg = np.asarray(arg)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a number or an array of numbers: {err}") from None
    check_real_numeric(arg.dtype, name)
    return arg


def refuse_unnamed(args: Sequence[Any], names: Sequence[str]) -> None:
    """Refuse arrays of one dimension or more among DataArrays: their dimensions are ambiguous."""
    for arg, name in zip(args, names, strict=True):
        if not isinstance(arg, xr.DataArray) and np.ndim(arg) > 0:
            raise TypeError(
                f"{name} is a {np.ndim(arg)}-D {type(arg).__name__} but another input is a DataArray: "
                f"its dimensions are ambiguous; wrap it, e.g. xr.DataArray({name}, dims=(...))"
            )


def broadcast_shape(shapes: Sequence[tuple], names: Sequence[str]) -> tuple[int, ...]:
    """The NumPy broadcast of ``shapes`` (of the inputs ``names``), or an error that says how to match them."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        given = ", ".join(f"{name} {tuple(shape)}" for name, shape in zip(names, shapes, strict=True))
        raise ValueError(
            f"input shapes do not broadcast together: {given}.  Axes are matched from the right "
            "and must be equal or 1, e.g. a pressure profile of shape (nz, 1, 1) for fields of "
            "shape (nz, ny, nx); or use DataArrays, matched by dimension name"
        ) from None
