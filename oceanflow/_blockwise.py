"""The one place where oceanflow maps kernels over dask chunks.

Every xarray layer computes through a *block function*: a module-level
function (so that dask pickles it by name and each worker compiles its kernel
once) that takes NumPy blocks and returns NumPy blocks by calling one numba
kernel.  This module maps block functions over data and is the only module
that builds dask graphs (polynomials, fitting, eos and the climatologies use
it).  Every task is pure: it reads its inputs and returns a new value, so
that dask may re-run it (a retry, a recomputation) with the same result.

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
:func:`fold`
    Reduce along the first axis in order: per output block (or per spatial
    block) a chain of tasks, each adding one chunk to the state of the one
    before, then one task per output block that finishes the state (the
    climatologies' partials; the order statistics' counts of each chunk).
:func:`gather`
    One task per output block that receives the block's whole series, all
    its chunks along the first axis (order statistics).
:func:`combine_tree`
    Combine per-chunk values along the first axis in a tree
    (``dask.array.reduction``).
:func:`row_pieces`
    The output blocks of :func:`fold` and :func:`gather`: spatial blocks,
    split into row ranges when there are fewer blocks than threads.
:func:`delayed_together`, :func:`compute_together`, :func:`as_delayed`
    Collections computed as one graph optimised once: ``dask.compute``
    optimises each kind of collection apart (Delayed objects, arrays), which
    runs a task that two of them share twice.
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

import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import is_dask, unmasked
from .chunking import check_task_count, worker_threads
from .variables import fields

__all__ = [
    "as_delayed",
    "combine_tree",
    "compute_together",
    "delayed_together",
    "fold",
    "gather",
    "map_blocks",
    "map_fields",
    "right_aligned",
    "row_pieces",
]

Index = Sequence[Hashable]


def map_blocks(
    func: Callable[..., Any],
    out_index: Index,
    *args: Any,
    dtype: Any,
    new_axes: Mapping[Any, int] | None = None,
    adjust_chunks: Mapping[Any, Any] | Sequence[Mapping[Any, Any] | None] | None = None,
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
    depths = _single_block_depths(arguments, out_index)
    common = {
        "new_axes": new_axes,
        "concatenate": depths is None,
        "name": f"{name}-{token}",
        "block_func": func,
    }
    if depths is not None and any(depths):  # dropped axes, each one chunk: the blocks passed as they are
        common["block_depths"] = depths
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
    return tuple(_one_output(together, k, dtypes[k], out_index, adjusts[k], name, token) for k in range(len(dtypes)))


def _single_block_depths(arguments: list[Any], out_index: tuple[str, ...]) -> tuple[int, ...] | None:
    """Per input of ``arguments`` (dask arrays and their indices, as given to ``blockwise``), its
    number of dropped axes (not in ``out_index``), when each of them is one chunk in every input;
    else None (some dropped axis in several chunks: dask concatenates them).

    dask's ``concatenate=True`` joins the chunks along the dropped axes into a new array even when
    there is one, a copy of the whole input (the mhw blocks' whole series: a fresh block and a pass
    over it); with ``concatenate=False`` dask passes each such block in one list per dropped
    axis, unwrapped by :func:`_call`."""
    depths = []
    for array, index in zip(arguments[::2], arguments[1::2], strict=True):
        if index is None:
            depths.append(0)
            continue
        dropped = [axis for axis, label in enumerate(index) if label not in out_index]
        if any(array.numblocks[axis] > 1 for axis in dropped):
            return None
        depths.append(len(dropped))
    return tuple(depths)


def _call(
    *blocks: Any, block_func: Callable[..., Any], block_depths: tuple[int, ...] | None = None, **kwargs: Any
) -> Any:
    """Run ``block_func`` on one set of blocks (masked values as NaN); ``block_depths``: per
    block, the lists (one per dropped axis, one chunk each) it is wrapped in, taken off."""
    if block_depths is not None:
        blocks = tuple(_unwrapped(block, depth) for block, depth in zip(blocks, block_depths, strict=True))
    return block_func(*(unmasked(block) for block in blocks), **kwargs)


def _unwrapped(block: Any, depth: int) -> Any:
    """``block`` out of the ``depth`` one-item lists dask wraps it in."""
    for _ in range(depth):
        (block,) = block
    return block


def _output(outputs: tuple, k: int) -> Any:
    """Output ``k`` of a block function's tuple (not ``operator.getitem``: dask reads the
    signature of the function of every ``map_blocks``, slowly for a builtin)."""
    return outputs[k]


def _one_output(
    together: Any, k: int, dtype: np.dtype, index: tuple, adjust: Mapping[str, Any] | None, name: str, token: str
) -> Any:
    """Output ``k`` of ``together``'s blocks, one ``_output`` per block (``dask.array.blockwise``
    named directly: ``map_blocks`` would tokenize and inspect again)."""
    import dask.array as dsa

    return dsa.blockwise(
        _output,
        index,
        together,
        index,
        k,
        None,
        dtype=dtype,
        adjust_chunks=adjust,
        meta=np.empty((0,) * together.ndim, dtype),
        name=f"{name}-output{k}-{token}",
        concatenate=True,
    )


def right_aligned(arrays: Sequence[Any], ndim: int) -> list[Any]:
    """``[array, index, array, index, ...]`` for :func:`map_blocks`, matching axes from the
    right as NumPy broadcasts; the output index is ``tuple(range(ndim))``.  Scalars get
    the empty index (every task reads them)."""
    index = tuple(range(ndim))
    flat: list[Any] = []
    for array in arrays:
        flat += [array, index[ndim - np.ndim(array) :]]
    return flat


# ---------------------------------------------------------------- along the first axis

#: An output block of :func:`fold` and :func:`gather`: (its index among the output's spatial
#: blocks, the index of the input's spatial block it reads, its pixel range in that block, its shape).
Piece = tuple[tuple[int, ...], tuple[int, ...], slice, tuple[int, ...]]


def row_pieces(space_chunks: tuple[tuple[int, ...], ...], pieces: int | None = None) -> tuple[tuple, list[Piece]]:
    """Split the spatial blocks along their first axis until there are ``pieces``
    (default: the threads of one worker, :func:`oceanflow.chunking.worker_threads`),
    so that tasks sequential along time still run on every thread.  Every piece
    of a block needs the whole block: on a cluster, more pieces than one
    worker's threads would ship a block to several workers.

    Rows of a C-ordered block are a contiguous pixel range, which kernels read
    in place (no rechunk copy).  Returns the output's spatial chunks and one
    :data:`Piece` per output block.

    Example
    -------
    >>> chunks, pieces = row_pieces(((5,), (3, 3)), pieces=4)
    >>> chunks
    ((2, 3), (3, 3))
    >>> pieces[1]
    ((0, 1), (0, 1), slice(0, 6, None), (2, 3))
    """
    if not space_chunks:  # a time series: one pixel
        return (), [((), (), slice(0, 1), ())]
    pieces = pieces or worker_threads()
    blocks = math.prod(len(c) for c in space_chunks)
    split = math.ceil(pieces / blocks)
    rows: list[tuple[int, int, int]] = []  # (input block index along axis 1, first row, last row + 1)
    for i, size in enumerate(space_chunks[0]):
        parts = max(1, min(split, size))
        edges = [size * j // parts for j in range(parts + 1)]
        rows.extend((i, lo, hi) for lo, hi in itertools.pairwise(edges))
    out_chunks = (tuple(hi - lo for _, lo, hi in rows),) + tuple(space_chunks[1:])
    result: list[Piece] = []
    for o, (i, lo, hi) in enumerate(rows):
        for rest in itertools.product(*(range(len(c)) for c in space_chunks[1:])):
            tail = tuple(c[j] for c, j in zip(space_chunks[1:], rest, strict=True))
            width = math.prod(tail)
            result.append(((o,) + rest, (i,) + rest, slice(lo * width, hi * width), (hi - lo,) + tail))
    return out_chunks, result


def fold(
    step: Callable[..., Any],
    finish: Callable[..., Any],
    data: Any,
    *aligned: np.ndarray,
    lead: Sequence[int],
    dtype: Any,
    name: str,
    per_block: bool = False,
    shared: Any = None,
) -> Any:
    """Fold the chunks of dask array ``data`` along its first axis, in order, into one state
    per output block (or per spatial block), then finish each state: (*lead, *spatial) out.

    The graph: for each output block (a :func:`row_pieces` piece of a spatial
    block), a chain of one task per chunk along axis 0,
    ``state_k = step(state_{k-1}, block_k, *slices_k, pixels)`` with
    ``state_{-1} = None``, then one task ``finish(state_last, pixels, shape)``.
    Tasks = chunks x output blocks + output blocks, memory = one state per
    output block, whatever the length of axis 0; every pixel sees its values
    in order, so the result does not depend on the number of threads.

    With ``per_block=True``, one chain per spatial block instead, whose steps
    get the pixel ranges of all the block's pieces (a tuple of slices) in
    place of ``pixels``; each piece's ``finish`` reads the chain's last state.
    Tasks = chunks x spatial blocks + output blocks: for a chain that mostly
    holds its chunks (an order statistic's series) and whose finishing does
    the work, in parallel over the pieces.

    Parameters
    ----------
    step, finish : callable
        Module-level block functions (``functools.partial`` for options).
        ``step`` must not write ``state_{k-1}`` (a pure task: a retry re-runs
        it on the same input); ``block_k`` has masked values as NaN;
        ``pixels`` is the piece's range of the block's C-ordered pixels.
        ``finish`` returns the output block, shape ``(*lead, *shape)``.
        Both get ``shared`` last when it is given.
    data : dask array
        (time, ...).
    *aligned : NumPy arrays
        Along ``data``'s first axis (group codes, weights): ``step`` gets
        ``slices_k``, their rows of chunk k.
    lead : sequence of int
        Lengths of the output's leading axes (one chunk each), in place of axis 0.
    dtype : dtype
        Of the output.
    name : str
        Prefix of the keys: ``{name}-fold-{token}`` for the steps, ``{name}-{token}`` for the
        output, ``{name}-shared-{token}`` for ``shared``.
    per_block : bool
        A chain per spatial block rather than per output block (above).
    shared : optional
        Tables or options every task reads, put in the graph once (not once per task),
        passed through as they are (a tuple starting with a callable is not run).

    Example
    -------
    >>> import dask.array as dsa
    >>> def add(state, block, pixels):
    ...     return block.sum(axis=0).ravel()[pixels] + (0 if state is None else state)
    >>> def done(state, pixels, shape):
    ...     return state.reshape((1,) + shape)
    >>> x = dsa.ones((6, 4), chunks=(2, 4))
    >>> total = fold(add, done, x, lead=[1], dtype=float, name="sum")
    >>> total.compute().tolist()
    [[6.0, 6.0, 6.0, 6.0]]
    """
    import dask.array as dsa
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(step, finish, data, aligned, tuple(lead), np.dtype(dtype), per_block, shared)
    steps, final, shared_key = f"{name}-fold-{token}", f"{name}-{token}", f"{name}-shared-{token}"
    task = partial(_fold_step, block_func=step)
    bounds = np.cumsum((0,) + data.chunks[0])
    zeros = (0,) * len(lead)
    out_chunks, pieces = row_pieces(data.chunks[1:])
    graph: dict[Any, Any] = {}
    extra: tuple[Any, ...] = ()
    if shared is not None:
        graph[shared_key], extra = _literal(shared), (shared_key,)
    chains: dict[tuple[int, ...], list[slice]] = {}  # chain -> the pixel ranges its steps get
    for space_out, space_in, pixels, _ in pieces:
        chains.setdefault(space_in if per_block else space_out, []).append(pixels)
    sources = {space_out: space_in for space_out, space_in, _, _ in pieces}
    for chain, ranges in chains.items():
        previous = None
        given = tuple(ranges) if per_block else ranges[0]
        for k in range(data.numblocks[0]):
            rows = slice(bounds[k], bounds[k + 1])
            key = (steps, k) + chain
            block = (data.name, k) + (chain if per_block else sources[chain])
            graph[key] = (task, previous, block, *(a[rows] for a in aligned), given, *extra)
            previous = key
    for space_out, space_in, pixels, shape in pieces:
        last = (steps, data.numblocks[0] - 1) + (space_in if per_block else space_out)
        graph[(final,) + zeros + space_out] = (finish, last, pixels, shape, *extra)
    layers = HighLevelGraph.from_collections(final, graph, dependencies=[data])
    chunks = tuple((n,) for n in lead) + out_chunks
    return dsa.Array(layers, final, chunks, meta=np.empty((0,) * len(chunks), dtype))


def _literal(value: Any) -> tuple[Any]:
    """A task returning ``value`` as it is: put raw in a graph, a tuple starting with a callable
    would be run and keys inside it resolved (``dask.core.literal``, as dask.array wraps values)."""
    from dask.core import literal

    return (literal(value),)


def _fold_step(previous: Any, block: Any, *args: Any, block_func: Callable[..., Any]) -> Any:
    return block_func(previous, unmasked(block), *args)


def gather(func: Callable[..., Any], data: Any, shared: Any, *, lead: Sequence[int], dtype: Any, name: str) -> Any:
    """One task per output block with the whole series of its spatial block:
    ``func(blocks, shared, pixels, shape)`` -> (*lead, *shape).

    ``blocks`` are the chunks of dask array ``data`` (time, ...) along its first
    axis, in order, for one spatial block (masked values as NaN); ``pixels``
    and ``shape`` are a :func:`row_pieces` piece of it.  ``shared`` (tables,
    options) is put in the graph once, not once per task, and passed through as it is.  Tasks = output
    blocks; memory per task = one spatial block's series, which the caller
    checks fits.  ``func`` is a module-level block function and must not write
    its inputs (a pure task).  Keys: ``{name}-{token}``.

    Example
    -------
    >>> import dask.array as dsa
    >>> def middle(blocks, shared, pixels, shape):
    ...     series = np.concatenate(blocks).reshape(-1, 4)[:, pixels]
    ...     return np.median(series, axis=0).reshape((1,) + shape)
    >>> x = dsa.arange(24.0, chunks=6).reshape(6, 4)
    >>> gather(middle, x, None, lead=[1], dtype=float, name="median").compute().tolist()
    [[10.0, 11.0, 12.0, 13.0]]
    """
    import dask.array as dsa
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(func, data, shared, tuple(lead), np.dtype(dtype))
    key, shared_key = f"{name}-{token}", f"{name}-shared-{token}"
    graph: dict[Any, Any] = {shared_key: _literal(shared)}
    task = partial(_gather_call, block_func=func)
    zeros = (0,) * len(lead)
    out_chunks, pieces = row_pieces(data.chunks[1:])
    for space_out, space_in, pixels, shape in pieces:
        blocks = [(data.name, k) + space_in for k in range(data.numblocks[0])]
        graph[(key,) + zeros + space_out] = (task, blocks, shared_key, pixels, shape)
    layers = HighLevelGraph.from_collections(key, graph, dependencies=[data])
    chunks = tuple((n,) for n in lead) + out_chunks
    return dsa.Array(layers, key, chunks, meta=np.empty((0,) * len(chunks), dtype))


def _gather_call(blocks: list[Any], *args: Any, block_func: Callable[..., Any]) -> Any:
    return block_func([unmasked(b) for b in blocks], *args)


def combine_tree(combine: Callable[[np.ndarray], np.ndarray], parts: Any, *, split_every: int, dtype: Any) -> Any:
    """Combine the chunks of dask array ``parts`` along its first axis in a tree:
    ``combine(stacked)`` takes up to ``split_every`` blocks concatenated along
    axis 0 and returns one, first axis of length 1 (``dask.array.reduction``).
    The result has one chunk of length 1 along axis 0."""
    import dask.array as dsa

    combined = partial(_combined, combine=combine)
    return dsa.reduction(
        parts,
        _as_is,
        combined,
        axis=0,
        keepdims=True,
        combine=combined,
        dtype=dtype,
        concatenate=True,
        split_every=split_every,
        meta=np.empty((0,) * parts.ndim, dtype),
    )


def _as_is(block: Any, axis: Any = None, keepdims: bool = True) -> Any:
    return block


def _combined(blocks: Any, axis: Any = None, keepdims: bool = True, *, combine: Callable[..., Any]) -> Any:
    return combine(blocks)


# ---------------------------------------------------------------- Datasets


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


def delayed_together(func: Callable[..., Any], *collections: Any) -> Any:
    """A Delayed of ``func(*results)``, the results of the dask ``collections``, over their graphs as they
    are, not optimised: to be computed with other collections, all optimised (culled) together.

    ``dask.compute`` optimises each kind of collection apart (and ``dask.delayed(array)`` optimises the
    array on its own): a dask array's optimisation fuses a task that it shares with a Delayed into its own
    tasks, so the task runs twice, once in each (every block of a kernel computed twice; a block read
    back from a scratch file, which may be read only once, refused).

    Example
    -------
    >>> import dask, dask.array as dsa
    >>> x = dsa.arange(6, chunks=3)
    >>> dask.compute(delayed_together(sum, x), dask.delayed(len)(x))
    (np.int64(15), 6)
    """
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    name = f"{getattr(func, '__name__', 'together')}-{tokenize(func, *collections)}"
    results = []
    for collection in collections:
        finalize, extra = collection.__dask_postcompute__()
        results.append((finalize, collection.__dask_keys__(), *extra))
    layer: dict[Any, Any] = {name: (func, *results)}
    return Delayed(name, HighLevelGraph.from_collections(name, layer, dependencies=collections))


def compute_together(*objects: Any, **compute_kwargs: Any) -> tuple:
    """The values of ``objects`` (dask collections of any kind, or values returned as they are), computed
    from one graph: their graphs as they are (:func:`delayed_together`), culled, not fused, so that a task
    any two of them share runs once.  ``compute_kwargs``: ``dask.compute``'s (``scheduler``, ``pool``, ...).

    Build Delayed objects of arrays under ``dask.config.set(array_optimize=False)`` (xarray's
    ``to_zarr(compute=False)``, ``dask.delayed(f)(array)``): dask would optimise (fuse) the array apart.
    (Fusing the whole graph again would need each layer's dependencies, which a Delayed's graph lacks:
    blockwise fusion then inlined a shared task into one of them, and it ran twice.)

    Example
    -------
    >>> import dask, dask.array as dsa
    >>> x = dsa.arange(6, chunks=3)
    >>> compute_together(x.sum(), dask.delayed(len)(x), "as it is")
    (np.int64(15), 6, 'as it is')
    """
    import dask
    from dask.base import is_dask_collection

    lazy = [k for k, one in enumerate(objects) if is_dask_collection(one)]
    if not lazy:
        return objects
    (values,) = dask.compute(delayed_together(_as_tuple, *(objects[k] for k in lazy)), **compute_kwargs)
    computed = dict(zip(lazy, values, strict=True))
    return tuple(computed.get(k, one) for k, one in enumerate(objects))


def as_delayed(collection: Any) -> Any:
    """A dask ``collection`` as a Delayed over its graph as it is (:func:`delayed_together`); a Delayed, or
    anything else, as it is: for a compute that takes Delayed objects and arrays side by side (a
    ``distributed`` client's), which would optimise them apart and run a task they share twice.

    Example
    -------
    >>> import dask.array as dsa
    >>> as_delayed(dsa.arange(4, chunks=2)).compute()
    array([0, 1, 2, 3])
    """
    from dask.base import is_dask_collection
    from dask.delayed import Delayed

    if isinstance(collection, Delayed) or not is_dask_collection(collection):
        return collection
    return delayed_together(_itself, collection)


def _as_tuple(*values: Any) -> tuple:
    return values


def _itself(value: Any) -> Any:
    return value
