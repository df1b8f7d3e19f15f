"""CF metadata of climatologies (conventions 1.11, section 7.4)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..kernels.climatology import cell_method


def with_cf_metadata(out, plan, gdim):
    method = cell_method(plan.stat)
    dim = plan.dim
    cell = f"{dim}: {method} within years {dim}: {method} over years"
    previous = out.attrs.get("cell_methods")
    out.attrs["cell_methods"] = f"{previous} {cell}" if previous else cell
    return out.assign_coords({gdim: plan.groups.labels})


def climatology_bounds(plan, gdim):
    """CF climatology bounds: first and last time step of each group, (group, nv)."""
    codes, times = plan.groups.codes, plan.time.values
    steps = [np.flatnonzero(codes == g) for g in range(plan.groups.labels.size)]
    values = np.array([[times[s[0]], times[s[-1]]] for s in steps])
    return xr.DataArray(
        values, dims=(gdim, "nv"), attrs={"long_name": "first and last time step of each climatological group"}
    )
