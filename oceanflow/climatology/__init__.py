"""Climatologies and anomalies over every CF calendar, one kernel pass per chunk.

``oceanflow.climatology`` reduces each chunk to per-group partial results
with one numba kernel (see :mod:`oceanflow.kernels.climatology`): a time-contiguous
chunk is one task; the time chunks of time-chunked data are folded in order
into one partial per spatial block, or combined by a tree of tasks when
``split_every`` is given (O(chunks) tasks either way, never a rechunk).  ``oceanflow.anomaly`` subtracts (or
divides by) the climatology with one kernel per chunk, keeping the input's
shape, chunks and coordinates.  Groups (``freq``) are those of
:mod:`oceanflow.timegroups`.
"""

from .api import EmptyGroupsWarning, anomaly, climatology

__all__ = ["climatology", "anomaly", "EmptyGroupsWarning"]
