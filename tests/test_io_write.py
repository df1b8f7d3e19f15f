"""oceanflow.save's pipeline (oceanflow.io.write.writing) on real files: a failed Zarr write removes
its temporary only once zarr's own concurrent chunk writes have ended."""

import errno
import os
import threading
import time

import numpy as np
import pytest
import xarray as xr

from oceanflow.io import atomic, save


def test_a_failed_zarr_write_is_removed_after_zarrs_writes_in_flight(tmp_path, monkeypatch):
    """zarr writes the chunks of an in-memory variable concurrently; one failing (a full disk)
    while the others are still in flight: they end before the temporary is removed, so none
    recreates it (the others are held until the removal is done, or 0.5 s)."""
    from zarr.storage import _local

    put = _local._put
    removed = threading.Event()
    chunks, ended = [], []

    def full_then_late(path, value, *args, **kwargs):
        if "/c/" not in str(path):  # metadata
            return put(path, value, *args, **kwargs)
        chunks.append(path)
        if len(chunks) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        removed.wait(0.5)
        try:
            return put(path, value, *args, **kwargs)
        finally:
            ended.append(path)

    discard = atomic.Output.discard

    def discarding(self):
        discard(self)
        removed.set()

    monkeypatch.setattr(_local, "_put", full_then_late)
    monkeypatch.setattr(atomic.Output, "discard", discarding)
    ds = xr.Dataset({"v": ("x", np.arange(4000.0))})
    with pytest.raises(OSError, match="no space left on device") as caught:
        save(ds, tmp_path / "out.zarr", encoding={"v": {"chunks": (500,)}})
    assert caught.value.errno == errno.ENOSPC
    for _ in range(100):  # (without the wait in the pipeline: the late writes end after the save failed)
        if len(ended) == len(chunks) - 1 > 0:
            break
        time.sleep(0.05)
    assert len(ended) == len(chunks) - 1 > 0
    assert os.listdir(tmp_path) == []
