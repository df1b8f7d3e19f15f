"""Sorting many short columns at once: sorting networks and bitonic merges, all columns in step.

The order statistics of windowed pools (:func:`oceanflow.kernels.quantiles.grouped_quantiles`,
:func:`oceanflow.kernels.mhw.pooled_climatology`) are taken a tile of pixels at a
time, a pixel per column of a scratch array ``s``:

* :func:`load_sorted`: a key's values (NaN as +inf) loaded into a slot of rows
  and sorted down the columns by a sorting network (:func:`sorting_network`,
  Batcher's odd-even merge sort);
* :func:`merge_smallest`: two sorted slots merged, keeping the smallest rows
  (a bitonic merge);
* :func:`merge_plan`: which keys to load into which slots and which slots to
  merge, shared between neighbouring windows, once per climatology.

Every compare-exchange is a loop along a row pair of one array, the same on
every column, no per-column branch: LLVM vectorises it.

Example
-------
>>> lo, hi = sorting_network(3)
>>> list(zip(lo.tolist(), hi.tolist()))
[(0, 1), (0, 2), (1, 2)]
"""

from __future__ import annotations

import numpy as np

from ._declare import njit

#: The kinds of a merge plan's rows (:func:`merge_plan`: (kind, slot, operand, operand)): load a key, merge
#: two slots, a group's values are in a slot.
LOAD, MERGE, EMIT = 0, 1, 2


@njit(fastmath=False, inner=True)  # caching as OCEANFLOW_NUMBA_CACHE says
def compare_exchange(s, a, b, low):
    """Rows ``a`` and ``b`` of ``s`` ordered column by column: the lesser of each pair (row ``b``'s on a tie)
    into row ``a``, the other into row ``b``.  The lesser goes through ``low`` (scratch, a row long): stored
    straight into row ``a``, from which it was just read, LLVM makes that store a masked store of row ``b``'s
    values (``vmaskmovps``), which AMD's cores run several times slower than a plain store (a network of 30
    rows, 128 columns: 3.8x slower)."""
    for j in range(s.shape[1]):
        u, w = s[a, j], s[b, j]
        low[j] = u if u < w else w
        s[b, j] = w if u < w else u
    for j in range(s.shape[1]):
        s[a, j] = low[j]


@njit(fastmath=False, inner=True)
def load_sorted(x, steps, first, last, lo, hi, s, base, rows, width, first_pixel, sign, count, key, sums, sums_sign):
    """The values of steps ``steps[first:last]`` of ``width`` pixels from
    ``first_pixel``, times ``sign`` (1, or -1: the largest first), into rows
    ``base .. base + rows`` of ``s`` (a pixel per column; NaN, padding lanes
    and rows as +inf), sorted down each column by the network ``lo``/``hi``;
    ``count[key]``: the valid values of each column; ``sums[key]`` (unless
    ``sums`` is None: that branch is compiled out): their sums in float64 times
    ``sums_sign``, in step order.  Every compare-exchange is a loop along one
    row pair of one array, which LLVM vectorises."""
    lanes = s.shape[1]
    if first_pixel < 0:  # (never: tells LLVM the columns read are first_pixel + j, contiguous)
        return
    for j in range(lanes):
        count[key, j] = 0
    if sums is not None:
        for j in range(lanes):
            sums[key, j] = 0.0
    for pos in range(rows):
        r = base + pos
        if pos < last - first:
            t = steps[first + pos]
            for j in range(width):
                v = x[t, first_pixel + j]
                valid = v == v
                s[r, j] = v * sign if valid else np.inf
                count[key, j] += valid
            if sums is not None:  # (the row again, from L1: both loops vectorise)
                # NaN adds +0.0, which leaves a sum as it was (begun at +0.0, a sum is never -0.0): a plain
                # store, where keeping the old sum was a masked one (vmaskmovpd, see compare_exchange)
                for j in range(width):
                    f = sums_sign * np.float64(x[t, first_pixel + j])
                    sums[key, j] += f if f == f else 0.0
            for j in range(width, lanes):
                s[r, j] = np.inf
        else:
            for j in range(lanes):
                s[r, j] = np.inf
    low = np.empty((1, lanes), s.dtype)[0]  # (2-D: the type of s, whose np.empty is compiled already)
    for i in range(lo.shape[0]):
        compare_exchange(s, base + lo[i], base + hi[i], low)


@njit(fastmath=False, inner=True)
def merge_smallest(s, dst, a, b, need):
    """Rows ``dst .. dst + need`` of ``s``: the ``need`` smallest values of the
    sorted rows ``a ..`` and ``b ..`` (``need`` of each), in increasing order,
    column by column: the lesser of ``a + i`` and ``b + need - 1 - i`` (rising,
    then falling) sorted by a bitonic half-cleaner network.  That network sorts
    ``depth`` rows, the power of two from ``need``: the ``depth - need`` rows
    before the values stand for -inf (the sequence stays bitonic), so each
    compare-exchange whose lower row is one of them changes nothing and is
    left out (34 rows: 83 compare-exchanges instead of 192).  ``dst`` may be ``a``."""
    lanes = s.shape[1]
    for i in range(need):
        ra, rb, rd = a + i, b + need - 1 - i, dst + i
        for j in range(lanes):
            u, w = s[ra, j], s[rb, j]
            s[rd, j] = u if u < w else w
    depth = 1
    while depth < need:
        depth <<= 1
    pad = depth - need  # (row v of the network is row dst + v - pad of s)
    half = depth >> 1
    low = np.empty((1, lanes), s.dtype)[0]  # (2-D: the type of s, whose np.empty is compiled already)
    while half >= 1:
        for v in range(pad, depth):
            if v & half == 0:  # (the lower row of a pair)
                compare_exchange(s, dst + v - pad, dst + v - pad + half, low)
        half >>= 1


def sorting_network(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Comparators (lower, upper index) of Batcher's odd-even merge sort of ``n`` values."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            j = k % p
            while j + k < n:
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
                j += 2 * k
            k //= 2
        p *= 2
    table = np.array(pairs, np.int64).reshape(-1, 2)
    return np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1])


def merge_plan(
    sizes: np.ndarray, keys: np.ndarray, group_starts: np.ndarray, group_stops: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """The ``ops`` of :func:`oceanflow.kernels.quantiles.grouped_quantiles` with a window (and of
    :func:`oceanflow.kernels.mhw.pooled_climatology`): which keys to load
    into which scratch slots, which slots to merge, which slot holds each
    group's values, shared between neighbouring groups (van Herk 1992,
    Gil and Werman 1993).

    The *main* key of each group code (the key with the most steps among those
    whose steps are that group's, ``centers``) is laid out in group order,
    around the year (the first ones repeated at the end).  A group's window is
    mostly a run of that sequence; the sequence is cut in blocks as long as
    the longest run, and for each block the merges of its prefixes and
    suffixes are kept, so that a run is one merge (a suffix of one block and a
    prefix of the next) instead of one per key.  The group's other keys (ends
    of the series, around 29 February, a key pooled twice) are merged into it
    one by one.  Slots are reused as soon as nothing reads them any more.

    Returns (op, 4) int64 rows: (0, slot, key, 0): load and sort key's values;
    (1, slot, a, b): merge slots a and b (slot may be a); (2, slot, group, 0):
    the group's values are in slot (-1: the group has none).

    Example
    -------
    >>> one = np.ones(4, np.int64)
    >>> merge_plan(one, np.array([3, 0, 1, 0, 1, 2, 1, 2, 3, 2, 3, 0]), np.arange(0, 12, 3),
    ...            np.arange(3, 13, 3), np.arange(4))[:4].tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1], [0, 2, 2, 0]]
    """
    main: dict[int, int] = {}
    for k, c in enumerate(centers.tolist()):
        if c >= 0 and (c not in main or sizes[k] > sizes[main[c]]):
            main[c] = k
    base = [main[c] for c in sorted(main)]
    where = {k: i for i, k in enumerate(base)}
    spans = []
    for g in range(group_starts.size):
        listed = keys[group_starts[g] : group_stops[g]].tolist()
        first, n = _longest_circular_run({where[k] for k in listed if k in where}, len(base))
        for i in range(n):
            listed.remove(base[(first + i) % len(base)])
        spans.append((first, n, listed))
    block = max([n for _, n, _ in spans] + [1])
    sequence = [base[i % len(base)] for i in range(len(base) + block - 1)] if base else []

    ops: list[tuple[int, int, int, int]] = []  # on nodes, before slots are given

    def load(key: int) -> int:
        ops.append((LOAD, len(ops), key, -1))
        return len(ops) - 1

    def merge(a: int, b: int) -> int:
        ops.append((MERGE, len(ops), a, b))
        return len(ops) - 1

    leaves: dict[int, int] = {}
    prefixes: dict[int, int] = {}
    suffixes: dict[int, int] = {}

    def leaf(p: int) -> int:
        if p not in leaves:
            leaves[p] = load(sequence[p])
        return leaves[p]

    def prefix(p: int) -> int:
        for i in range(p - p % block, p + 1):
            if i not in prefixes:
                prefixes[i] = leaf(i) if i % block == 0 else merge(prefixes[i - 1], leaf(i))
        return prefixes[p]

    def suffix(p: int) -> int:
        end = min(p - p % block + block, len(sequence)) - 1
        for i in range(end, p - 1, -1):
            if i not in suffixes:
                suffixes[i] = leaf(i) if i == end else merge(suffixes[i + 1], leaf(i))
        return suffixes[p]

    for g in sorted(range(len(spans)), key=lambda g: spans[g][0] + spans[g][1] if spans[g][1] else -1):
        first, n, rest = spans[g]
        last = first + n - 1
        node = -1
        if n and first // block != last // block:
            node = merge(suffix(first), prefix(last))
        elif n and first % block == 0:
            node = prefix(last)
        elif n and (last % block == block - 1 or last == len(sequence) - 1):
            node = suffix(first)
        else:
            rest = [sequence[i] for i in range(first, first + n)] + rest
        for key in rest:
            node = load(key) if node < 0 else merge(node, load(key))
        ops.append((EMIT, node, g, -1))
    return _slots(ops)


def _longest_circular_run(positions: set[int], size: int) -> tuple[int, int]:
    """(first, length) of the longest run of consecutive ``positions`` modulo ``size``."""
    if len(positions) == size:
        return 0, size
    best = (0, 0)
    for p in sorted(positions):
        if (p - 1) % size not in positions:
            n = 1
            while (p + n) % size in positions:
                n += 1
            best = max(best, (p, n), key=lambda run: run[1])
    return best


def _slots(ops: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Plan rows on nodes -> on scratch slots, each slot reused once its node is read for the last time."""
    last: dict[int, int] = {}
    for i, (kind, node, a, b) in enumerate(ops):
        if kind == MERGE:
            last[a] = last[b] = i
        elif kind == EMIT and node >= 0:
            last[node] = i
    free: list[int] = []
    slot: dict[int, int] = {}
    rows = []
    made = [0]

    def fresh() -> int:
        if free:
            return free.pop()
        made[0] += 1
        return made[0] - 1

    for i, (kind, node, a, b) in enumerate(ops):
        if kind == LOAD:
            slot[node] = fresh()
            rows.append((LOAD, slot[node], a, 0))
        elif kind == MERGE:
            if last[b] == i and last[a] != i:
                a, b = b, a
            slot[node] = slot[a] if last[a] == i else fresh()
            rows.append((MERGE, slot[node], slot[a], slot[b]))
            if last[b] == i:
                free.append(slot[b])
        else:
            rows.append((EMIT, slot[node] if node >= 0 else -1, a, 0))
            if node >= 0 and last[node] == i:
                free.append(slot[node])
    return np.array(rows, np.int64).reshape(-1, 4)
