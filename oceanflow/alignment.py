"""Two objects meet by their coordinate labels, never by position.

:func:`align` is what every oceanflow function that combines arrays (data and
climatology, data and weights, polynomial input and coefficients, salinity,
temperature and pressure) calls first.  Its semantics are xarray's, made
strict:

* along a dimension that both objects index with a coordinate, values are
  matched by label: a reversed or permuted axis (``lat`` stored north to
  south) is reordered to the first object's order;
* labels equal up to floating-point noise (float32 against float64, rounding
  in a file) count as equal, and take the first object's values;
* labels that differ beyond that are an error naming the dimension, how many
  labels differ and the fix;
* a dimension without a coordinate in one of the objects keeps the size check.

Example
-------
>>> import numpy as np, xarray as xr
>>> data = xr.DataArray([1.0, 2.0, 3.0], dims="lat", coords={"lat": [-10.0, 0.0, 10.0]})
>>> clim = xr.DataArray([30.0, 20.0, 10.0], dims="lat", coords={"lat": [10.0, 0.0, -10.0]})
>>> _, aligned = align(data, clim, names=("data", "climatology"))
>>> aligned.values
array([10., 20., 30.])
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

__all__ = ["align", "LabelMismatchError"]


class LabelMismatchError(ValueError):
    """Two objects have different coordinate labels along a dimension they share."""


def align(
    *objects: xr.DataArray | xr.Dataset,
    names: Sequence[str] | None = None,
    exclude: Iterable[Hashable] = (),
) -> tuple[xr.DataArray | xr.Dataset, ...]:
    """``objects`` with every shared dimension in the first one's label order.

    Parameters
    ----------
    *objects : DataArray or Dataset
        The first object is the reference; the others are reordered onto it.
        Objects that are not xarray objects are passed through unchanged.
    names : sequence of str, optional
        What each object is, for the error messages (``"data"``, ``"climatology"``).
    exclude : iterable of str
        Dimensions not to align (e.g. time against a climatology's ``month``).

    Raises
    ------
    LabelMismatchError
        Labels that differ beyond floating-point noise, or sizes that differ
        along a dimension without coordinates.
    """
    names = list(names) if names is not None else [f"input {i}" for i in range(len(objects))]
    excluded = set(exclude)
    result = list(objects)
    for i in range(1, len(result)):
        if not isinstance(result[i], (xr.DataArray, xr.Dataset)):
            continue
        for j in range(i):
            if not isinstance(result[j], (xr.DataArray, xr.Dataset)):
                continue
            shared = [d for d in result[j].dims if d in result[i].dims and d not in excluded]
            for dim in shared:
                result[i] = _onto(result[i], result[j], dim, names[i], names[j])
    return tuple(result)


def _onto(obj, reference, dim: Hashable, name: str, reference_name: str):
    """``obj`` reordered and relabelled along ``dim`` to match ``reference``."""
    obj_index, ref_index = obj.xindexes.get(dim), reference.xindexes.get(dim)
    if obj_index is None or ref_index is None:
        if obj.sizes[dim] != reference.sizes[dim]:
            raise LabelMismatchError(
                f"the {name} has {obj.sizes[dim]} values along {dim!r}, the {reference_name} "
                f"{reference.sizes[dim]}; select or interpolate one onto the other"
            )
        return obj
    if obj_index is ref_index:  # the same index object (coordinates taken from one another): same labels
        return obj
    labels = np.asarray(obj.indexes[dim])
    target = np.asarray(reference.indexes[dim])
    if labels.shape == target.shape and labels.dtype.kind == target.dtype.kind and np.array_equal(labels, target):
        return obj
    if labels.shape == target.shape and _same(labels, target):
        return obj.assign_coords({dim: reference[dim]})
    order = _permutation(labels, target)
    if order is None:
        raise LabelMismatchError(_mismatch_message(labels, target, dim, name, reference_name))
    return obj.isel({dim: order}).assign_coords({dim: reference[dim]})


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal labels, floats up to noise."""
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        if a.dtype.kind not in "iuf" or b.dtype.kind not in "iuf":
            return False
        return bool(np.all(np.abs(a.astype(np.float64) - b.astype(np.float64)) <= _noise(a, b)))
    return bool(np.array_equal(a, b))


def _noise(a: np.ndarray, b: np.ndarray) -> float:
    """What counts as floating-point noise between two label arrays: float32
    rounding of the largest label, or a millionth of the label spacing."""
    both = np.concatenate([a.astype(np.float64), b.astype(np.float64)])
    finite = both[np.isfinite(both)]
    if finite.size == 0:
        return 0.0
    scale = float(np.max(np.abs(finite)))
    steps = np.diff(np.unique(finite))
    spacing = float(np.median(steps)) if steps.size else 0.0
    return max(4 * float(np.finfo(np.float32).eps) * scale, 1e-6 * spacing)


def _permutation(labels: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Positions of ``target``'s labels in ``labels``, or None when the label sets differ."""
    if labels.shape != target.shape:
        return None
    by_label, by_target = np.argsort(labels, kind="stable"), np.argsort(target, kind="stable")
    if not _same(labels[by_label], target[by_target]):
        return None
    order = np.empty_like(by_label)
    order[by_target] = by_label
    return order


def _mismatch_message(labels, target, dim, name, reference_name) -> str:
    if labels.shape == target.shape:
        differ = int(np.count_nonzero(~_close_each(np.sort(labels), np.sort(target))))
        count = f"{differ} of {target.size} labels differ"
    else:
        count = f"the {name} has {labels.size} labels, the {reference_name} {target.size}"
    example = f"{name} {_preview(labels)}, {reference_name} {_preview(target)}"
    return (
        f"the {name} and the {reference_name} have different {dim!r} coordinates ({count}: {example}); "
        f"reindex or interpolate one onto the other (e.g. {name}.interp({dim}={reference_name}.{dim}) or "
        f".reindex(...)), or, when you know the grids are the same, "
        f"xr.align({reference_name}, {name}, join='override')"
    )


def _close_each(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iuf" and b.dtype.kind in "iuf":
        return np.abs(a.astype(np.float64) - b.astype(np.float64)) <= _noise(a, b)
    return a == b


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(str(v) for v in values[:3])
    return f"[{shown}{', ...' if values.size > 3 else ''}]"
