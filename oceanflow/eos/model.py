"""From the variables of ocean model and observation files to TEOS-10 properties, in one pass.

:func:`from_model` takes Practical Salinity, potential (or in-situ)
temperature and depth (or height, or pressure) as files hold them, and
returns Absolute Salinity, Conservative Temperature, sea pressure and any of
density, potential density, the expansion coefficients and N2: one numba
kernel per chunk (:func:`oceanflow.kernels.eos_column.from_model`) converts
each point and evaluates every output from it, so no intermediate field is
ever made.

Example
-------
>>> import numpy as np, xarray as xr
>>> so = xr.DataArray([[35.0], [35.2]], dims=("lev", "x"), attrs={"units": "0.001"})
>>> thetao = xr.DataArray([[15.0], [10.0]], dims=("lev", "x"), attrs={"units": "degC"})
>>> lev = xr.DataArray([5.0, 100.0], dims="lev", attrs={"units": "m", "positive": "down"})
>>> ds = from_model(SP=so, pt=thetao, depth=lev, lat=30.0, lon=200.0, outputs=("rho", "N2"))
>>> sorted(ds.data_vars), ds.rho.values.round(3).tolist()
(['N2', 'rho'], [[1025.998], [1027.564]])
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._blockwise import map_blocks
from .._dtypes import working_dtype
from ..alignment import align
from ..chunking import chunked_for, whole_core_dims
from ..kernels import eos_column as column_kernels
from . import declared
from ._evaluate import broadcast_shape, checked, refuse_unnamed
from .column import check_latitude, profiles_along_axis
from .density import ATTRS as DENSITY_ATTRS
from .validity import RANGES, check_ranges

__all__ = ["from_model"]

#: Every output :func:`from_model` can return, in its order.
OUTPUTS = column_kernels.MODEL_OUTPUTS

#: A scalar, NumPy array, dask array or xarray DataArray.
Field = Any

_ATTRS = {
    "SA": {"units": "g kg-1", "standard_name": "sea_water_absolute_salinity", "long_name": "Absolute Salinity"},
    "CT": {
        "units": "degC",
        "standard_name": "sea_water_conservative_temperature",
        "long_name": "Conservative Temperature",
    },
    "p": {"units": "dbar", "standard_name": "sea_water_pressure_due_to_sea_water", "long_name": "sea pressure"},
    "N2": {
        "units": "s-2",
        "standard_name": "square_of_brunt_vaisala_frequency_in_sea_water",
        "long_name": "buoyancy frequency squared at the mid-points between levels",
    },
    **{name: DENSITY_ATTRS[name] for name in OUTPUTS if name in DENSITY_ATTRS},
}

_VERTICAL_KINDS = {"p": 0, "z": 1, "depth": 2}
#: The fix from_model gives for an argument whose attributes say it is something else.
_FIXES = {
    declared.ABSOLUTE_SALINITY: "compute with eos.rho(SA, CT, p) etc.",
    declared.CONSERVATIVE_TEMPERATURE: "it is Conservative Temperature already: compute with eos.rho(SA, CT, p) etc.",
    declared.POTENTIAL_TEMPERATURE: "pass it as pt=",
    declared.IN_SITU_TEMPERATURE: "pass it as t=",
    declared.DEPTH_OR_HEIGHT: "pass it as depth= (positive down) or z= (negative down)",
    declared.PRESSURE: "pass it as p=",
    declared.POSITIVE_DOWN: "pass it as depth=",
    declared.HEIGHT: "pass it as z=",
}


def from_model(
    *,
    SP: Field,
    pt: Field = None,
    t: Field = None,
    z: Field = None,
    depth: Field = None,
    p: Field = None,
    lat: Field,
    lon: Field,
    outputs: Sequence[str] = ("SA", "CT", "p", "rho"),
    dim: Hashable | None = None,
    axis: int = 0,
    check: str | None = "warn",
) -> Any:
    """TEOS-10 properties from Practical Salinity, potential or in-situ temperature and depth.

    Per point: ``p = p_from_z(-depth, lat)`` (or ``p_from_z(z, lat)``, or
    ``p`` as given), ``SA = SA_from_SP(SP, p, lon, lat)`` (with the TEOS-10
    SAAR atlas), ``CT = CT_from_pt(SA, pt)`` (or ``CT_from_t(SA, t, p)``), then
    the requested outputs from SA, CT and p with the 75-term polynomial, all in
    one numba kernel per chunk: the same numbers as that chain of functions,
    without its intermediate arrays.  N2 is computed as :func:`Nsquared` does,
    between adjacent levels.

    Parameters
    ----------
    SP : array-like
        Practical Salinity (PSS-78, unitless), e.g. CMIP's ``so``.
    pt, t : array-like
        Potential temperature referenced to the sea surface (degC, e.g.
        ``thetao``) or in-situ temperature (degC): exactly one of them.
    z, depth, p : array-like
        Height (m, negative downwards, TEOS-10's z), depth (m, positive
        downwards, e.g. the ``lev`` coordinate) or sea pressure (dbar):
        exactly one of them, with the vertical dimension.
    lat, lon : array-like
        Latitude (degrees north) and longitude (degrees east) of each column.
    outputs : sequence of str
        Any of ``SA``, ``CT``, ``p``, ``rho``, ``sigma0`` ... ``sigma4``,
        ``alpha``, ``beta``, ``N2`` (default SA, CT, p, rho).
    dim : hashable, optional
        The vertical dimension of DataArray inputs (default: that of the 1-D
        vertical coordinate).
    axis : int
        The vertical axis of NumPy and dask inputs (default 0); they are
        broadcast as NumPy, e.g. depth of shape (nz, 1, 1) for fields of
        shape (nz, ny, nx).
    check : {"warn", "raise", None}
        Values of SP, the temperature and the vertical coordinate outside
        TEOS-10's range (:mod:`oceanflow.eos.validity`): one
        ``TEOS10RangeWarning`` with the counts (per chunk for dask input,
        checked inside the chunk's own task), a ``ValueError``, or no check.

    Returns
    -------
    xarray.Dataset (any DataArray input) or dict of arrays, one variable per
    output, with CF attributes.  N2 has one level fewer, along the dimension
    ``f"{dim}_mid"`` (for arrays: along ``axis``).  float32 when SP and the
    temperature are float32 (and the vertical, unless it is 1-D: a ``lev``
    coordinate is often float64), else float64; computed in float64.

    Notes
    -----
    Attributes that say what a variable is are checked: salinity whose
    ``standard_name`` says Absolute Salinity, a temperature declared as the
    other kind (potential, in-situ or Conservative), a height declared
    positive down (a depth) or a depth declared positive up, and pressures
    given as depths (or the reverse) are refused, each with the argument to
    use.  The vertical dimension must be one dask chunk (rechunked with a
    :class:`~oceanflow.chunking.RechunkWarning` otherwise); tasks: one kernel
    task per chunk, plus one view (``getitem``) per output and chunk when
    there are several outputs and they are computed (written with
    ``to_zarr`` or ``dask.array.store``, each view runs inside its chunk's
    store task: no task of its own).

    Example
    -------
    >>> ds = from_model(SP=np.array([[35.0], [35.2]]), pt=np.array([[15.0], [10.0]]),
    ...                 depth=np.array([[5.0], [100.0]]), lat=30.0, lon=200.0, outputs=("SA", "N2"))
    >>> ds["SA"].round(4), ds["N2"].round(6)
    (array([[35.1653],
           [35.3664]]), array([[0.000114]]))
    """
    temperatures = {name: value for name, value in (("pt", pt), ("t", t)) if value is not None}
    verticals = {name: value for name, value in (("z", z), ("depth", depth), ("p", p)) if value is not None}
    if len(temperatures) != 1:
        raise TypeError("pass exactly one of pt= (potential temperature, degC) and t= (in-situ temperature, degC)")
    if len(verticals) != 1:
        raise TypeError(
            "pass exactly one of depth= (m, positive down), z= (height, m, negative down) and p= (sea pressure, dbar)"
        )
    outputs = _checked_outputs(outputs)
    if check not in ("warn", "raise", "ignore", None):
        raise ValueError(f"check must be 'warn', 'raise' or None, got {check!r}")
    (t_name, temperature), (v_name, vertical) = next(iter(temperatures.items())), next(iter(verticals.items()))
    check_latitude(lat)
    names = ["SP", t_name, v_name, "lon", "lat"]
    fields = [checked(f, name, _FIXES) for f, name in zip((SP, temperature, vertical, lon, lat), names, strict=True)]
    # float32 when the fields are: a vertical coordinate (lev) is often float64 in files
    dtype_of = fields[:3] if np.ndim(fields[2]) > 1 else fields[:2]
    work_dtype = working_dtype(*(f.dtype for f in dtype_of), names=names[: len(dtype_of)])
    options = {
        "t_kind": 0.0 if t_name == "pt" else 1.0,
        "v_kind": float(_VERTICAL_KINDS[v_name]),
        "codes": np.array([OUTPUTS.index(name) for name in outputs], dtype=np.int64),
        "work_dtype": work_dtype,
        "check": None if check == "ignore" else check,
        "checked": (t_name, v_name),
    }
    if any(isinstance(f, xr.DataArray) for f in fields):
        return _from_model_xarray(fields, names, outputs, dim, options)
    return _from_model_arrays(fields, names, outputs, axis, options)


def _checked_outputs(outputs) -> list[str]:
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    unknown = [name for name in outputs if name not in OUTPUTS]
    if unknown or not outputs:
        raise ValueError(f"outputs must be some of {', '.join(OUTPUTS)}; got {outputs!r}")
    return list(dict.fromkeys(outputs))


def _from_model_arrays(fields, names, outputs, axis, options):
    """NumPy or dask inputs: named by position from the right, computed as DataArrays."""
    fields = profiles_along_axis(fields, 3, axis)
    full = broadcast_shape([np.shape(f) for f in fields], names)
    ndim = len(full)
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is not an axis of the inputs (broadcast shape {full})")
    axis %= ndim
    dims = [f"axis {i}" for i in range(ndim)]
    wrapped = []
    for field in fields:
        own = range(ndim - np.ndim(field), ndim)
        sizes = zip(own, np.shape(field), strict=True)
        index = tuple(0 if size == 1 and full[i] != 1 else slice(None) for i, size in sizes)
        kept = [dims[i] for i, ix in zip(own, index, strict=True) if not isinstance(ix, int)]
        wrapped.append(xr.DataArray(field[index] if index else field, dims=kept))
    ds = _from_model_xarray(wrapped, names, outputs, dims[axis], options)
    mid = f"{dims[axis]}_mid"
    result = {}
    for name in outputs:
        order = [mid if d == dims[axis] and name == "N2" else d for d in dims]
        result[name] = ds[name].transpose(*order).data
    return result


def _from_model_xarray(fields, names, outputs, dim, options):
    refuse_unnamed(fields, names)
    fields = [f if isinstance(f, xr.DataArray) else xr.DataArray(f) for f in fields]
    if dim is None:
        if fields[2].ndim != 1:
            raise ValueError(
                f"from_model: name the vertical dimension with dim= ({names[2]} has dimensions {fields[2].dims})"
            )
        dim = fields[2].dims[0]
    for field, name in zip(fields, names, strict=True):
        if (dim in field.dims) != (name in names[:3]):
            raise ValueError(
                f"{name} {'has no' if name in names[:3] else 'must not vary along the'} vertical dimension {dim!r} "
                f"(its dimensions are {field.dims}); SP, the temperature and {names[2]} have it, lat and lon do not"
            )
    fields = list(align(*fields, names=names))
    fields = [chunked_for(f, core_dims=dim, operation="from_model") for f in fields]
    # from here on Variables and arrays, not DataArrays: each DataArray copy, transpose or
    # coordinate lookup costs tens of microseconds of graph building
    variables = [f.variable for f in fields]
    if any(v.chunks is not None and len(v.chunks[v.get_axis_num(dim)]) > 1 for v in variables if dim in v.dims):
        together = whole_core_dims(
            xr.Dataset({f"_{i}": v for i, v in enumerate(variables)}), dim, operation="from_model"
        )
        variables = [together[f"_{i}"].variable for i in range(len(variables))]
    # in-memory coordinates (lat, lon, lev) in the fields' chunks: sliced once each, not rechunked by dask
    chunks: dict = {}
    for var in variables:
        if var.chunks is not None:
            chunks.update({d: c for d, c in zip(var.dims, var.chunks, strict=True) if d not in chunks})
    # the output's dimensions: those of SP, then any others, the vertical before the horizontal ones
    out_dims = list(variables[0].dims)
    for var in variables[1:]:
        out_dims += [d for d in var.dims if d not in out_dims]
    position = {d: i for i, d in enumerate(out_dims)}
    label = {d: f"d{i}" for i, d in enumerate(out_dims)}
    args: list = []
    layouts = []
    for var in variables:
        order = sorted(var.dims, key=lambda d: position[d])
        data = var.data if chunks and var.chunks is not None else np.asarray(var.values)
        if chunks and var.chunks is None:
            data = _chunked_like(data, [chunks.get(d, -1) for d in var.dims])
        if list(var.dims) != order:
            data = data.transpose([var.dims.index(d) for d in order])
        args += [data, tuple(label[d] for d in order)]
        layouts.append(tuple(position[d] for d in order))
    vertical = position[dim]
    nout = len(outputs)
    n_levels = next(v.sizes[dim] for v in variables if dim in v.dims)
    adjust = [{label[dim]: n_levels - 1} if name == "N2" else None for name in outputs]  # dim is one chunk
    results = map_blocks(
        _model_block,
        tuple(label[d] for d in out_dims),
        *args,
        dtype=(options["work_dtype"],) * nout if nout > 1 else options["work_dtype"],
        adjust_chunks=adjust if nout > 1 else adjust[0],
        name="eos-from_model",
        layouts=tuple(layouts),
        ndim=len(out_dims),
        vertical=vertical,
        **options,
    )
    results = results if nout > 1 else (results,)
    coords: dict = {}
    indexes: dict = {}
    for field in fields:
        for name, var in field.coords.variables.items():
            coords.setdefault(name, var)
        for name, index in field.xindexes.items():
            indexes.setdefault(name, index)
    data_vars = {}
    mid = f"{dim}_mid"
    for name, data in zip(outputs, results, strict=True):
        dims = [mid if d == dim and name == "N2" else d for d in out_dims]
        data_vars[name] = xr.Variable(dims, data, attrs=dict(_ATTRS[name]))
    present = {d for var in data_vars.values() for d in var.dims}
    kept = {n: c for n, c in coords.items() if set(c.dims) <= present}
    if "N2" in outputs and dim in coords and coords[dim].dtype.kind in "iuf" and coords[dim].ndim == 1:
        values = np.asarray(coords[dim].values, dtype=float)
        kept[mid] = xr.Variable(mid, 0.5 * (values[1:] + values[:-1]), dict(coords[dim].attrs))
        indexes[mid] = xr.indexes.PandasIndex.from_variables({mid: kept[mid]}, options={})
    kept_indexes = {n: i for n, i in indexes.items() if n in kept}
    return xr.Dataset(data_vars, coords=xr.Coordinates(kept, indexes=kept_indexes))


def _chunked_like(values: np.ndarray, chunks: list) -> Any:
    """In-memory ``values`` (a coordinate: lat, lon, lev) as a dask array of ``chunks`` (-1: whole),
    one key per block holding its NumPy slice (a view): no task of dask's ``from_array`` getter,
    built without its per-call overhead."""
    import dask.array as dsa
    from dask.array.core import normalize_chunks
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    whole = tuple(n if c == -1 else c for c, n in zip(chunks, values.shape, strict=True))
    chunks = normalize_chunks(whole, values.shape)
    name = f"eos-coordinate-{tokenize(values, chunks)}"
    bounds = [np.cumsum((0,) + c) for c in chunks]
    graph: dict[Any, Any] = {}
    for index in np.ndindex(*(len(c) for c in chunks)):
        where = tuple(slice(b[i], b[i + 1]) for b, i in zip(bounds, index, strict=True))
        graph[(name,) + index] = values[where]
    layers = HighLevelGraph.from_collections(name, graph, dependencies=())
    return dsa.Array(layers, name, chunks, meta=np.empty((0,) * values.ndim, values.dtype))


def _model_block(*blocks, layouts, ndim, vertical, t_kind, v_kind, codes, work_dtype, check, checked):
    """Expand the blocks to the output's dimensions (views), run the kernel over (levels,
    columns) with the range count, split the outputs."""
    from ..kernels.saar import ATLAS

    dtype = np.dtype(work_dtype)
    expanded = []
    for block, layout in zip(blocks, layouts, strict=True):
        own = [1] * ndim
        for axis, size in zip(layout, np.shape(block), strict=True):
            own[axis] = size
        expanded.append(np.asarray(block, dtype=dtype).reshape(own))
    shape = np.broadcast_shapes(*(e.shape for e in expanded))
    before, n, after = shape[:vertical], shape[vertical], shape[vertical + 1 :]
    columns = (int(np.prod(after[:-1])), after[-1]) if after else (1, 1)
    # strided views, no copies (the kernel reads them in place): levels x columns, columns
    cores = [np.broadcast_to(e, shape).reshape(*before, n, *columns) for e in expanded[:3]]
    flat = shape[:vertical] + (1,) + after
    lon, lat = (np.broadcast_to(e, flat).reshape(*before, *columns) for e in expanded[3:])
    names = ("SP", *checked)
    bounds = np.array([RANGES[name][:2] if check else (-np.inf, np.inf) for name in names], dtype=np.float64)
    kernel = column_kernels.KERNELS["from_model"].for_dtype(dtype)
    with np.errstate(invalid="ignore"):
        out, outside = kernel(*cores, lon, lat, dtype.type(t_kind), dtype.type(v_kind), codes, bounds, *ATLAS)
    if check is not None and np.any(outside):  # the counts and the message of eos.validity, from the blocks
        check_ranges("from_model", dict(zip(names, blocks, strict=False)), check=check)
    results = []
    for c, code in enumerate(codes):
        result = out[..., c, :, :, :].reshape(shape)
        if OUTPUTS[code] == "N2":
            result = result[(slice(None),) * vertical + (slice(0, n - 1),)]
        results.append(result)
    return tuple(results) if len(results) > 1 else results[0]
