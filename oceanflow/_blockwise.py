"""One dask task per output chunk for element-wise block functions.

``xr.apply_ufunc(dask="parallelized")`` goes through ``dask.array.apply_gufunc``,
which adds two more layers per chunk (a no-op transpose and a getitem): three
tasks per chunk where one does the work.  These helpers call
``dask.array.blockwise`` directly, so the graph grows by one task per chunk
(plus one cheap view per extra output).
"""

from __future__ import annotations

import numpy as np


def right_aligned(arrays, ndim):
    """``[(dask_array, index), ...]`` matching axes from the right, as NumPy broadcasts."""
    import dask.array as dsa

    index = tuple(range(ndim))
    pairs = []
    for array in arrays:
        array = dsa.asarray(array)
        pairs.append((array, index[ndim - array.ndim :]))
    return pairs


def apply_blockwise(func, pairs, ndim, *, dtype, nout=1, kwargs=None):
    """Map ``func`` over aligned blocks; outputs have ``ndim`` axes (0..ndim-1).

    ``pairs`` holds ``(dask_array, index)`` with integer indices; an index
    ``>= ndim`` names an extra axis that ``func`` consumes whole (e.g. the
    polynomial's powers).  With ``nout > 1`` the outputs
    are stacked on a trailing axis in the task and returned as views.
    """
    import dask.array as dsa

    args = [item for pair in pairs for item in pair]
    index = tuple(range(ndim))
    kwargs = kwargs or {}
    if nout == 1:
        return dsa.blockwise(func, index, *args, dtype=dtype, concatenate=True, **kwargs)
    new_axis = 1 + max([ndim - 1, *(i for _, idx in pairs for i in idx)])
    stacked = dsa.blockwise(
        _stack_outputs,
        index + (new_axis,),
        *args,
        new_axes={new_axis: nout},
        dtype=dtype,
        concatenate=True,
        block_func=func,
        **kwargs,
    )
    return tuple(stacked[..., k] for k in range(nout))


def _stack_outputs(*blocks, block_func, **kwargs):
    return np.stack(block_func(*blocks, **kwargs), axis=-1)
