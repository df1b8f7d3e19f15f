"""oceanflow._memory: blocks freed while oceanflow writes are given back to the system (glibc)."""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"),
    reason="glibc's mallopt only",
)

# Blocks of 30 MiB (oceanflow's chunks grow to 32 MiB, glibc's largest adaptive mmap threshold), allocated
# in turn by two threads as dask's would be: the resident memory kept after they are freed, while a
# save is in progress ("inside"), after it ("after") and in a process that never saved ("never").
_PROBE = """
import sys, threading, numpy as np
from oceanflow._memory import returning_freed_blocks

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

def blocks():
    for _ in range(8):
        block = np.ones(30 << 20, np.uint8)
        del block

def kept():
    before = rss()
    for _ in range(2):
        threads = [threading.Thread(target=blocks) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    return rss() - before

if sys.argv[1] == "inside":
    with returning_freed_blocks():
        print(kept())
elif sys.argv[1] == "after":
    with returning_freed_blocks():
        pass
    print(kept())
else:
    print(kept())
"""


def _kept_mib(when: str, **environment: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    out = subprocess.run([sys.executable, "-c", _PROBE, when], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


@glibc
def test_freed_blocks_are_given_back_while_writing():
    assert _kept_mib("inside") < 8
    assert _kept_mib("never") > 25  # glibc's own adaptive thresholds keep a freed block per heap


@glibc
def test_blocks_are_reused_after_writing():
    assert _kept_mib("after") > 25  # no fresh pages (page faults) for every block once the save is over


# A stored chunk of just under 8 MiB read as a Zarr read does it (its decoded bytes and the block they are
# copied into, both below the mmap threshold, so from the heap), in turn, inside a save: the page faults per
# chunk, against the chunk's pages (the oracle: the kernel's fault count, resource.getrusage).
_REREAD = """
import resource, numpy as np
from oceanflow._memory import returning_freed_blocks

def read():
    decoded = np.ones(6 << 20, np.uint8)
    block = decoded.copy()
    del decoded, block

with returning_freed_blocks():
    read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        read()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20 / (12 << 20 >> 12))
"""


@glibc
def test_chunks_below_the_mmap_threshold_reuse_the_heap_while_writing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _REREAD], env=env, capture_output=True, text=True, check=True)
    assert float(out.stdout.split()[-1]) < 0.1  # not a chunk's pages faulted in afresh by each read (0.3 with 8 MiB)


@glibc
def test_the_environment_wins():
    assert _kept_mib("inside", MALLOC_TRIM_THRESHOLD_="268435456", MALLOC_MMAP_THRESHOLD_="268435456") > 25
    code = "from oceanflow._memory import returning_freed_blocks as r\nwith r() as fixed: print(fixed)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | {"MALLOC_TRIM_THRESHOLD_": "65536"}
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert said.stdout.split()[-1] == "False"  # the user's (or distributed's nanny's) choice kept


@glibc
def test_a_local_cluster_started_earlier_does_not_switch_the_settings_off():
    """distributed's Nanny writes MALLOC_TRIM_THRESHOLD_ into its own process's os.environ before it
    spawns a worker; glibc read its settings at start, so that is not the user's choice and saves
    after a LocalCluster still fix the thresholds (oracle: glibc's own behaviour in _kept_mib)."""
    code = (
        "import os\n"
        "from distributed import LocalCluster\n"
        "from oceanflow._memory import returning_freed_blocks as r\n"
        "with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None):\n"
        "    pass\n"
        "print('MALLOC_TRIM_THRESHOLD_' in os.environ)\n"
        "with r() as fixed: print(fixed)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert said.stdout.split()[-2:] == ["True", "True"]  # the nanny set it in os.environ; the settings still fixed


def _three_saves(environment, fail_first_read=False, nanny=False):
    """Whether each of three saves in a fresh process fixed the thresholds, then how often
    /proc/self/environ was opened (seen by an audit hook on open; the first open made to fail
    with ``fail_first_read``; with ``nanny``, MALLOC_TRIM_THRESHOLD_ put into os.environ first,
    as distributed's Nanny does)."""
    code = (
        "import os, sys\n"
        "opened = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]) == '/proc/self/environ':\n"
        "        opened.append(1)\n"
        f"        if {fail_first_read} and len(opened) == 1:\n"
        "            raise OSError(24, 'Too many open files')\n"
        "sys.addaudithook(hook)\n"
        f"if {nanny}:\n"
        "    os.environ['MALLOC_TRIM_THRESHOLD_'] = '65536'\n"
        "from oceanflow._memory import returning_freed_blocks as r\n"
        "for _ in range(3):\n"
        "    with r() as fixed:\n"
        "        print(fixed)\n"
        "print(len(opened))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return said.stdout.split()


@glibc
@pytest.mark.parametrize("environment", [{}, {"MALLOC_TRIM_THRESHOLD_": "65536"}])
def test_the_startup_environment_is_read_once_per_process(environment):
    """The environment a process started with does not change: the first save reads
    /proc/self/environ, later saves do not, and every save still follows it (thresholds
    fixed, or the user's MALLOC_ setting kept)."""
    fixed = str(not environment)
    assert _three_saves(environment) == [fixed, fixed, fixed, "1"]


@glibc
def test_a_failed_read_of_the_startup_environment_is_not_kept():
    """A read of /proc/self/environ that fails once (no descriptor left, say) falls back to
    os.environ for that save only: the next save reads the file again, so a MALLOC_ name that
    distributed's Nanny put into os.environ does not switch the settings off for good."""
    # the failed read: os.environ's name kept the settings (that save only); then the file, read once
    assert _three_saves({}, fail_first_read=True, nanny=True) == ["False", "True", "True", "2"]


def test_blocks_reuse_freed_memory_only_while_writing_and_never_while_used():
    """Run in a fresh interpreter: glibc raises its mmap threshold (dynamically) when an earlier test frees a
    large mapped block, and then a plain 32 MiB np.empty reuses freed heap memory instead of fresh pages."""
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import test_memory; "
        "test_memory._blocks_reuse_freed_memory_only_while_writing(); print('checked')"
    )
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert said.returncode == 0 and said.stdout.split() == ["checked"], said.stderr[-3000:]


def _blocks_reuse_freed_memory_only_while_writing():
    import resource

    import numpy as np

    from oceanflow import _memory
    from oceanflow._memory import empty_block, returning_freed_blocks

    def faults(block, value):  # page faults writing a block: none in used memory, 16 or more in 32 MiB of new
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block.fill(value)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    shape = (128, 180, 360)  # 32 MiB: mapped on its own by malloc while writing, fresh pages each time
    with returning_freed_blocks():
        first = empty_block(shape, np.float32)
        first[...] = 1
        kept = first[3:5]  # a view keeps the block in use
        del first
        second = empty_block(shape, np.float32)
        assert faults(second, 2) >= 16  # new memory, not the first block's
        np.testing.assert_array_equal(kept, 1)  # not overwritten
        del kept
        third = empty_block((64, 180, 360), np.float64)  # another dtype, the same size: the first block's memory
        assert faults(third, 3) < 4
        np.testing.assert_array_equal(second, 2)
        assert empty_block((3,), np.float32).base is None  # small blocks: plain np.empty
    del second, third
    outside = empty_block(shape, np.float32)
    assert faults(outside, 4) >= 16  # plain np.empty outside a save
    assert _memory._POOL == []  # the pool is emptied after the save


def test_pool_emptied_by_the_last_writer_while_other_threads_take_blocks():
    import threading
    import time

    import numpy as np

    from oceanflow import _memory

    errors, stop = [], threading.Event()

    def writer():
        while not stop.is_set():
            with _memory.returning_freed_blocks():
                time.sleep(0.0005)

    def user():
        held = []
        while not stop.is_set():
            try:
                held.append(_memory.empty_block((1 << 18,), np.float32))  # 1 MiB: pooled while a save runs
            except Exception as err:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(err))
            if len(held) > 40:
                held.clear()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: the clear lands inside another thread's lookup
    try:
        threads = [threading.Thread(target=f) for f in (writer, user, user)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert _memory._writers[0] == 0 and _memory._POOL == []  # nothing pooled after the last save left


def test_a_block_in_use_never_looks_free_where_getrefcount_counts_differently():
    code = """
import sys
real = sys.getrefcount
sys.getrefcount = lambda o: real(o) - 2  # a Python counting one reference fewer than this one (the lambda adds one)
import numpy as np
from oceanflow._memory import empty_block, returning_freed_blocks
with returning_freed_blocks():
    first = empty_block((1 << 18,), np.float32)
    first[:] = 1
    second = empty_block((1 << 18,), np.float32)
    second[:] = 2
    print(first[0], np.shares_memory(first, second))
"""
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert said.stdout.split() == ["1.0", "False"]  # the block in use kept, not handed out again


def test_full_pool_drops_free_buffers_of_other_sizes_never_used_ones(monkeypatch):
    import numpy as np

    from oceanflow import _memory

    monkeypatch.setattr(_memory, "POOL_BYTES", 6 << 20)
    mib = 1 << 18  # float32 values in 1 MiB
    with _memory.returning_freed_blocks():
        used = _memory.empty_block((2 * mib,), np.float32)  # 2 MiB, kept in use
        idle = [_memory.empty_block((2 * mib,), np.float32) for _ in range(2)]  # 2 x 2 MiB, then freed: pool full
        del idle
        block = _memory.empty_block((3 * mib,), np.float32)  # a size no longer requested makes room for the new one
        assert block.base is not None  # cut from a pooled buffer, not plain np.empty
        assert sorted(b.nbytes >> 20 for b in _memory._POOL) == [2, 3]  # the buffer in use stays
        assert not np.shares_memory(block, used)
        used[:] = 1
        block[:] = 2
        np.testing.assert_array_equal(used, 1)


def test_a_request_the_pool_cannot_hold_keeps_its_free_buffers(monkeypatch):
    """Larger than the pool, or more than the buffers in use leave room for: plain
    np.empty, and the free buffers stay for the sizes that reuse them."""
    import numpy as np

    from oceanflow import _memory

    monkeypatch.setattr(_memory, "POOL_BYTES", 6 << 20)
    mib = 1 << 18  # float32 values in 1 MiB
    with _memory.returning_freed_blocks():
        used = _memory.empty_block((4 * mib,), np.float32)  # 4 MiB in use
        idle = _memory.empty_block((mib,), np.float32)  # 1 MiB, then free
        del idle
        for size in (7 * mib, 3 * mib):  # larger than the pool; more than the in-use 4 MiB leave room for
            assert _memory.empty_block((size,), np.float32).base is None  # plain np.empty
            assert sorted(b.nbytes >> 20 for b in _memory._POOL) == [1, 4]
        assert used.base is not None


def test_held_elsewhere_counts_other_references_of_a_list_item_and_an_attribute(monkeypatch):
    """The one check both the block pool and the climatology fold's spare buffer use; the oracle is who holds what."""
    import numpy as np

    from oceanflow import _memory
    from oceanflow.climatology.engine import FoldState, _claim_spare

    # each answer taken before its assert: pytest's rewritten assert keeps the argument in a variable of its own
    pool = [np.empty(4)]
    alone = _memory.held_elsewhere(pool[0])
    other = pool[0]
    shared = _memory.held_elsewhere(pool[0])
    del other
    again = _memory.held_elsewhere(pool[0])
    assert (alone, shared, again) == (False, True, False)

    state = FoldState(None, np.empty((1, 2, 3)))
    alone = _memory.held_elsewhere(state.spare)
    claimed = _claim_spare(state, (1, 2, 3)) is state.spare
    view = state.spare[0]  # a view holds its base
    shared = _memory.held_elsewhere(state.spare)
    refused = _claim_spare(state, (1, 2, 3)) is None
    del view
    assert (alone, claimed, shared, refused) == (False, True, True, True)
    monkeypatch.setattr(_memory, "COUNTS_REFERENCES", False)  # free-threaded: nothing looks free
    answers = _memory.held_elsewhere(pool[0]), _memory.held_elsewhere(state.spare), _claim_spare(state, (1, 2, 3))
    assert answers == (True, True, None)


def _mapping_flags(array) -> tuple[str, int]:
    """The kernel's view of the mapping holding the middle of ``array``: its VmFlags and AnonHugePages (kB),
    from smaps.  Not its first byte: for a NumPy array that lies in malloc's head page, which NumPy never
    advises (it advises from the next page boundary on)."""
    address = array.__array_interface__["data"][0] + array.nbytes // 2
    flags, huge, inside = "", -1, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "AnonHugePages:":
                huge = int(line.split()[1])
            elif inside and head == "VmFlags:":
                flags = line
    return flags, huge


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads the kernel's page tables (Linux)")
@pytest.mark.skipif(
    not os.path.exists("/sys/kernel/mm/transparent_hugepage"), reason="a kernel without transparent huge pages"
)
def test_pool_blocks_are_mapped_in_small_pages_others_keep_numpys_advice():
    """Oracle: the kernel's smaps, whose VmFlags say ``nh`` (no huge pages) or ``hg`` (NumPy's huge-page
    advice) for the mapping of a block, and AnonHugePages how much of it is in huge pages once touched."""
    import numpy as np

    from oceanflow._memory import empty_block, returning_freed_blocks

    with returning_freed_blocks():
        block = empty_block((4, 1 << 20), np.float32)  # 16 MiB, from the pool
        block[...] = 1.0
        flags, huge = _mapping_flags(block)
        assert " nh" in flags and " hg" not in flags and huge == 0, (flags, huge)
        assert block.flags.writeable and block.sum() == block.size
    plain = np.empty((4, 1 << 20), np.float32)  # outside a save: NumPy's array, with its advice where it gives one
    flags, _ = _mapping_flags(plain)
    assert " nh" not in flags


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads the kernel's page tables (Linux)")
@pytest.mark.skipif(
    not os.path.exists("/sys/kernel/mm/transparent_hugepage"), reason="a kernel without transparent huge pages"
)
def test_a_folds_partials_are_kept_in_small_pages_and_equal_numpys_sums():
    """Oracle: the kernel's smaps (VmFlags ``nh``: no huge pages) for the partials a fold's chain keeps from
    one time chunk to the next, both its buffers (the second step's and the reused spare); NumPy's per-group
    count and sum for their values.  Small ones stay plain NumPy memory."""
    import numpy as np

    from oceanflow._memory import COUNTS_REFERENCES, HUGE_ADVICE_BYTES, kept_block
    from oceanflow.climatology.engine import _fold_block

    rng = np.random.default_rng(0)
    ngroups, pixels = 64, 8192  # partials (2, 64, 8192) float64: 8 MiB
    codes = rng.integers(0, ngroups, 40)
    blocks = [rng.normal(size=(40, pixels)).astype(np.float32) for _ in range(3)]
    options = {"stat": "mean_unweighted", "ngroups": ngroups, "work": np.float32}
    state, buffers = None, []
    for block in blocks:
        state = _fold_block(state, block, codes, np.ones(40), slice(None), **options)
        buffers.append(state.partials.__array_interface__["data"][0])  # its address: no reference kept
        flags, huge = _mapping_flags(state.partials)
        assert state.partials.nbytes >= HUGE_ADVICE_BYTES and " nh" in flags and huge == 0, (flags, huge)
    assert buffers[0] != buffers[1]
    if COUNTS_REFERENCES:  # two buffers: the first one's reused as the spare (never where refs are not counted)
        assert buffers[2] == buffers[0]
    values = np.concatenate(blocks).astype(np.float64)
    every = np.tile(codes, 3)
    expected = np.stack([np.bincount(every, minlength=ngroups)[:, None].repeat(pixels, 1), np.zeros((ngroups, pixels))])
    for g in range(ngroups):
        expected[1, g] = values[every == g].sum(axis=0)
    np.testing.assert_allclose(state.partials, expected, rtol=1e-12)
    small = kept_block((4, 1 << 10), np.float32)  # 16 KiB: plain NumPy memory
    assert small.base is None and small.shape == (4, 1 << 10)


def test_a_folds_spare_is_not_reused_while_a_view_of_it_is_read():
    """A view of one step's partials (8 MiB: the small-page mapping of kept_block) held after dask released
    that step: the next-but-one step must not write into it.  Oracle: a NumPy copy of the view taken before,
    and NumPy's per-group sums for the third step's partials.  Without the view, the spare is reused (where
    references are counted), so the chain does reach the claim."""
    import numpy as np

    from oceanflow._memory import COUNTS_REFERENCES, HUGE_ADVICE_BYTES
    from oceanflow.climatology.engine import _fold_block

    rng = np.random.default_rng(0)
    ngroups, pixels = 64, 8192  # partials (2, 64, 8192) float64: 8 MiB
    codes = rng.integers(0, ngroups, 40)
    blocks = [rng.normal(size=(40, pixels)).astype(np.float32) for _ in range(3)]
    options = {"stat": "mean_unweighted", "ngroups": ngroups, "work": np.float32}
    expected = np.zeros((ngroups, pixels))
    np.add.at(expected, np.tile(codes, 3), np.concatenate(blocks).astype(np.float64))
    for hold_a_view in (True, False):
        first = _fold_block(None, blocks[0], codes, np.ones(40), slice(None), **options)
        second = _fold_block(first, blocks[1], codes, np.ones(40), slice(None), **options)
        assert first.partials.nbytes >= HUGE_ADVICE_BYTES
        address = first.partials.__array_interface__["data"][0]
        view = first.partials[1] if hold_a_view else None  # someone still reads step 1's sums
        kept = first.partials[1].copy()
        del first  # dask releases step 1: only second.spare refers to its partials (and the view)
        third = _fold_block(second, blocks[2], codes, np.ones(40), slice(None), **options)
        if hold_a_view:
            assert not np.shares_memory(view, third.partials)
            np.testing.assert_array_equal(view, kept)
        elif COUNTS_REFERENCES:
            assert third.partials.__array_interface__["data"][0] == address  # the spare, reused
        np.testing.assert_allclose(third.partials[1], expected, rtol=1e-12)
        del view, second, third


_ADVICE_PROBE = """
import os, sys, numpy as np
from oceanflow import _memory

if sys.argv[1] == "late":
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "1"  # after NumPy's import, which alone reads it: not the user's choice


def owner(a):
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return type(a.obj if isinstance(a, memoryview) else a).__name__


kept = owner(_memory.kept_block((2, 1 << 20), np.float64))
with _memory.returning_freed_blocks():
    pooled = owner(_memory.empty_block((2, 1 << 20), np.float64))
switch = _memory._madvise_switch()
switch(True)
with _memory.small_pages_while():
    inside = switch(False)  # the advice inside, read by replacing it
    switch(inside)
print(kept, pooled, inside)
"""


@pytest.mark.skipif(not hasattr(mmap, "MAP_PRIVATE"), reason="small-page blocks are mapped on their own on POSIX only")
@pytest.mark.parametrize(("where", "expected"), [("start", "ndarray ndarray True"), ("late", "mmap mmap False")])
def test_numpys_huge_page_advice_chosen_by_the_user_is_kept_by_every_allocation(where, expected):
    """``NUMPY_MADVISE_HUGEPAGE`` as NumPy read it at import: the user's choice, kept alike by kept blocks,
    the pool's buffers and small_pages_while; set after NumPy's import (which ignores it) it is no choice.
    Oracle: what a 16 MiB block's memory belongs to (NumPy's own allocation: an ndarray; the small-page
    mapping: an mmap), and NumPy's advice inside small_pages_while; without the variable, small pages."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    said = [
        subprocess.run(
            [sys.executable, "-c", _ADVICE_PROBE, w], env=e, capture_output=True, text=True, check=True
        ).stdout.strip()
        for w, e in ((where, env | {"NUMPY_MADVISE_HUGEPAGE": "1"} if where == "start" else env), ("none", env))
    ]
    assert said == [expected, "mmap mmap False"], said


_ADVICE_READ = """
import numpy as np
from oceanflow import _memory

numpys = bool(_memory._madvise_switch()(True))  # NumPy's advice as NumPy read the variable at its import
block = _memory.kept_block((2, 1 << 20), np.float64)
while isinstance(block, np.ndarray) and block.base is not None:
    block = block.base
print(_memory.huge_page_advice_chosen(), numpys, type(block).__name__)
"""


@pytest.mark.skipif(not hasattr(mmap, "MAP_PRIVATE"), reason="small-page blocks are mapped on their own on POSIX only")
@pytest.mark.parametrize("value", ["0", "00", " -0 ", "1", " 2 ", "+1"])
def test_numpys_huge_page_advice_is_read_from_the_variable_as_numpy_reads_it(value):
    """``NUMPY_MADVISE_HUGEPAGE=0`` switches NumPy's advice off: it was taken as huge pages chosen (kept
    blocks then left to NumPy).  Oracle: NumPy's own advice after its import, read back through its switch;
    a kept block of 16 MiB in small pages (an mmap) where it is off, NumPy's own (an ndarray) where on."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": value}
    run = subprocess.run([sys.executable, "-c", _ADVICE_READ], env=env, capture_output=True, text=True, check=True)
    chosen, numpys, owner = run.stdout.split()
    assert chosen == numpys and owner == ("ndarray" if numpys == "True" else "mmap"), run.stdout


# A pool buffer the system cannot map: address space limited to what the process maps now plus 100 MiB,
# then a 200 MiB block asked for inside a save; or a kept block of 200 MiB (5, 5 Mi) float64.
_NO_ROOM = """
import resource, sys, numpy as np
from oceanflow._memory import empty_block, kept_block, returning_freed_blocks

with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + (100 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
with returning_freed_blocks():
    try:
        if sys.argv[1] == "pool":
            empty_block((200 << 20,), np.uint8)
        else:
            kept_block((5, 5 << 20), np.float64)
    except BaseException as error:
        print(type(error).__name__, "(5, 5242880)" in str(error) and "float64" in str(error))
    else:
        print("allocated")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the process's mapped size (Linux)")
def test_a_pool_buffer_the_system_cannot_map_raises_memoryerror_as_numpy_does():
    """Oracle: NumPy's own failure, MemoryError (the mapping's own is OSError: ENOMEM)."""
    said = subprocess.run([sys.executable, "-c", _NO_ROOM, "pool"], capture_output=True, text=True, check=True)
    assert said.stdout.split()[0] == "MemoryError", said


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the process's mapped size (Linux)")
def test_a_kept_block_the_system_cannot_map_raises_numpys_memoryerror_for_its_shape():
    """Oracle: NumPy's own failure, MemoryError, naming the shape and dtype asked for (not the bytes)."""
    said = subprocess.run([sys.executable, "-c", _NO_ROOM, "kept"], capture_output=True, text=True, check=True)
    assert said.stdout.split() == ["MemoryError", "True"], said
