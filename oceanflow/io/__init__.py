"""NetCDF and Zarr in and out: lazy reads, storage-aligned chunks, safe writes.

``open_dataset`` reads one or several NetCDF files or a Zarr store lazily and
chooses dask chunks that never split a storage chunk; ``save`` writes to a
temporary sibling and renames it on success, so a failed or interrupted write
leaves no half-written output and an existing output untouched.

Example
-------
>>> ds = oceanflow.open_dataset("sst_*.nc")                 # doctest: +SKIP
>>> oceanflow.save(oceanflow.climatology(ds.sst), "clim.zarr")  # doctest: +SKIP
"""

from .read import open_dataset
from .write import save

__all__ = ["open_dataset", "save"]
