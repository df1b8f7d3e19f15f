"""HDF5's byte shuffle filter: byte 0 of every element, then byte 1, ..., before deflate.

Example
-------
>>> words = np.array([0x04030201, 0x08070605], np.uint32)
>>> out = np.empty(8, np.uint8)
>>> byte_shuffle(words, out)
>>> out.tolist()
[1, 5, 2, 6, 3, 7, 4, 8]
"""

from __future__ import annotations

import numpy as np

from ._declare import njit


@njit(nogil=True)
def byte_shuffle(words, out):
    """``out`` (uint8, ``words.size`` x itemsize bytes): byte ``b`` of ``words[i]`` at ``b * words.size + i``
    (little-endian bytes, as HDF5 stores them on little-endian machines); ``words``: C-contiguous unsigned
    integers of the elements' size (a ``view`` of the data)."""
    n = words.shape[0]
    for b in range(out.shape[0] // max(n, 1)):
        shift = words.dtype.type(8 * b)
        first = b * n
        for i in range(n):
            out[first + i] = np.uint8((words[i] >> shift) & 0xFF)
