"""Small facts about array types, shared by the xarray layers."""


def is_dask(x) -> bool:
    """True for a dask array (checked by module, so dask is imported only when used)."""
    return type(x).__module__.startswith("dask.array")
