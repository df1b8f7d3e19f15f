"""Zlib streams of shuffled byte planes: deflate blocks of literals only (RFC 1951 dynamic Huffman codes, no back
references), stored blocks, and runs deflated elsewhere with back references.

After HDF5's shuffle, the sign-and-exponent and the low mantissa bytes of
noisy float fields are nearly independent draws from a skewed histogram, or
from one that drifts slowly along the plane (anomalies whose mean changes
from map to map): back references find almost nothing there, and an LZ77
deflate (zlib, ISA-L) spends most of its time looking for them.  A block of
literals coded with its own Huffman code (fitted to the histogram of all its
bytes or, from :data:`SAMPLED_HISTOGRAM` bytes on, of windows spread over
them) is as small or smaller and faster to write.

:func:`judge_segments` tells, from a sample of each segment of the planes,
which to store (random-looking), which to code as literals and which to
leave to back references (runs: land, smooth fields); :func:`zlib_stream`
writes a chunk's zlib stream from the judged segments, the back-reference
runs deflated by the caller.  :func:`huffman_block` writes one non-final
dynamic-Huffman block followed by an empty stored block, as zlib's
``Z_SYNC_FLUSH`` does, so that what follows starts on a byte boundary
(stored blocks, other raw deflate runs).

Example
-------
>>> import zlib
>>> data = np.frombuffer(b"abracadabra" * 50, np.uint8)
>>> out = np.empty(huffman_bound(data.size), np.uint8)
>>> n = huffman_block(data, out)
>>> zlib.decompressobj(-15).decompress(out[:n].tobytes()) == data.tobytes()
True
"""

from __future__ import annotations

import numpy as np

from ._declare import njit

__all__ = [
    "HUFFMAN",
    "SAMPLED_HISTOGRAM",
    "LZ",
    "STORED",
    "huffman_block",
    "huffman_bound",
    "judge_segments",
    "zlib_stream",
    "zlib_stream_bound",
]

# the order in which the code length code's lengths are sent (RFC 1951, 3.2.7)
_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)


#: How a segment of byte planes is written (:func:`judge_segments`): kept in stored blocks, deflated with back
#: references (zlib, ISA-L), or coded as literals (:func:`huffman_block`).
STORED, LZ, HUFFMAN = 0, 1, 2
#: Bytes of a segment :func:`judge_segments` looks at.
SAMPLE = 4096
#: A segment is deflated if at least this fraction of the sampled bytes equal the byte before (random bytes: 1/256) ...
RUNS = 0.01
#: ... or if one byte value takes this many of the :data:`SAMPLE` sampled bytes (random bytes: about 30) ...
COMMONEST = 64
#: Deflated with back references (not as literals) where equal neighbours exceed by this fraction of the sample
#: those that independent draws from its histogram would give.
EXCESS_RUNS = 0.05
#: ... where this fraction of the sampled bytes begin runs of four (which back references code in a few bits), or
#: a code of single repeats would beat literals (:func:`_repeats_pay`).
LONG_RUNS = 0.1
#: ... or where one byte value takes this fraction of the sample (a literal costs at least a bit).
MOSTLY = 0.75

#: Blocks of at least this many bytes take their Huffman code from the histogram of :data:`HISTOGRAM_WINDOWS`
#: windows of :data:`HISTOGRAM_WINDOW` bytes spread evenly over them (1/4 of the bytes or fewer; windows, not
#: single bytes, so that a pattern repeating with any period is seen whole), every byte value counted once more
#: so that each has a code: the code needs only the byte values' frequencies, which the windows' 16 KiB estimate
#: closely, while counting every byte is a second pass over the block beside the coding pass.
SAMPLED_HISTOGRAM = 64 << 10
HISTOGRAM_WINDOWS = 32
HISTOGRAM_WINDOW = 512
#: Most bytes in one stored block: its length (LEN) is 16 bits.
STORED_BLOCK = 65535
#: Longest literal code (deflate allows 15): four codes and the 7 bits left over fill at most 63 bits of the 64-bit
#: bit buffer, which :func:`huffman_block` then stores 8 bytes at a time without a branch.
LITERAL_LIMIT = 14


def huffman_bound(size: int) -> int:
    """Bytes :func:`huffman_block` may write (or store past its end) for ``size`` bytes: codes of at most
    :data:`LITERAL_LIMIT` bits, the header, the flush, and the 8-byte stores."""
    return 2 * size + 512


@njit(nogil=True)
def _code_lengths(freq, limit, lengths):
    """Huffman code lengths (at most ``limit`` bits) for the symbols of nonzero ``freq``: into ``lengths``.

    Where the optimal code is deeper than ``limit``, the counts are halved
    (a present symbol keeps at least 1) and the code is built again.
    """
    n = freq.shape[0]
    f = freq.astype(np.int64)
    while True:
        for i in range(n):
            lengths[i] = 0
        present = np.nonzero(f)[0]
        m = present.size
        if m == 0:
            return
        if m == 1:
            lengths[present[0]] = 1
            return
        order = present[np.argsort(f[present], kind="mergesort")]
        weight = np.empty(2 * m - 1, np.int64)
        parent = np.empty(2 * m - 1, np.int64)
        for i in range(m):
            weight[i] = f[order[i]]
        leaf, inner = 0, m
        for node in range(m, 2 * m - 1):  # two queues: sorted leaves, inner nodes made in increasing weight
            pair = np.empty(2, np.int64)
            for k in range(2):
                if leaf < m and (inner >= node or weight[leaf] <= weight[inner]):
                    pair[k] = leaf
                    leaf += 1
                else:
                    pair[k] = inner
                    inner += 1
            weight[node] = weight[pair[0]] + weight[pair[1]]
            parent[pair[0]] = node
            parent[pair[1]] = node
        depth = np.zeros(2 * m - 1, np.int64)
        deepest = 0
        for node in range(2 * m - 3, -1, -1):
            depth[node] = depth[parent[node]] + 1
            if node < m and depth[node] > deepest:
                deepest = depth[node]
        if deepest <= limit:
            for i in range(m):
                lengths[order[i]] = depth[i]
            return
        for i in range(n):
            if f[i] > 0:
                f[i] = (f[i] + 1) // 2


@njit(nogil=True)
def _canonical(lengths, codes):
    """Canonical codes of ``lengths`` (RFC 1951, 3.2.2), bit-reversed for deflate's LSB-first bit order."""
    count = np.zeros(16, np.int64)
    for length in lengths:
        count[length] += 1
    count[0] = 0
    following = np.zeros(16, np.int64)
    code = 0
    for bits in range(1, 16):
        code = (code + count[bits - 1]) << 1
        following[bits] = code
    for i in range(lengths.shape[0]):
        length = lengths[i]
        if length:
            value = following[length]
            following[length] += 1
            reversed_ = 0
            for _ in range(length):
                reversed_ = (reversed_ << 1) | (value & 1)
                value >>= 1
            codes[i] = reversed_


@njit(nogil=True, inline="always")
def _put(acc, held, entry):
    """``acc`` and ``held`` (its bit count) with the code of ``entry`` (code | length << 32) appended."""
    return acc | ((entry & np.uint64(0xFFFFFFFF)) << held), held + (entry >> np.uint64(32))


@njit(nogil=True, inline="always")
def _count(data, counts):
    """Add the byte values of ``data`` to the four histograms ``counts`` (4 x 256), in turn."""
    whole = data.shape[0] // 4 * 4
    for i in range(0, whole, 4):
        counts[0, data[i]] += 1
        counts[1, data[i + 1]] += 1
        counts[2, data[i + 2]] += 1
        counts[3, data[i + 3]] += 1
    for i in range(whole, data.shape[0]):
        counts[0, data[i]] += 1


@njit(nogil=True)
def huffman_block(data, out):
    """Write ``data`` (uint8) into ``out`` as one non-final deflate block of literals, then an empty stored block;
    return the bytes written (``out`` needs :func:`huffman_bound` bytes).  The code fits the histogram of all of
    ``data``, or of sampled windows of it from :data:`SAMPLED_HISTOGRAM` bytes on."""
    counts = np.zeros((4, 256), np.int64)  # four histograms: no wait on the last increment of the same count
    freq = np.zeros(257, np.int64)
    if data.shape[0] >= SAMPLED_HISTOGRAM:  # windows spread evenly; every byte value gets a code
        for w in range(HISTOGRAM_WINDOWS):
            start = (data.shape[0] - HISTOGRAM_WINDOW) * w // (HISTOGRAM_WINDOWS - 1)
            _count(data[start : start + HISTOGRAM_WINDOW], counts)
        freq[:256] = 1
    else:
        _count(data, counts)
    for k in range(4):
        freq[:256] += counts[k]
    freq[256] = 1  # end of block
    lit_len = np.zeros(257, np.int64)
    _code_lengths(freq, LITERAL_LIMIT, lit_len)
    lit_code = np.zeros(257, np.int64)
    _canonical(lit_len, lit_code)
    # two distance codes of one bit (a complete code, never used): accepted by every inflater
    sent = np.zeros(259, np.int64)
    sent[:257] = lit_len
    sent[257] = 1
    sent[258] = 1
    cl_freq = np.zeros(19, np.int64)
    for length in sent:
        cl_freq[length] += 1
    cl_len = np.zeros(19, np.int64)
    _code_lengths(cl_freq, 7, cl_len)
    cl_code = np.zeros(19, np.int64)
    _canonical(cl_len, cl_code)
    hclen = 19
    while hclen > 4 and cl_len[_ORDER[hclen - 1]] == 0:
        hclen -= 1

    pos = 0
    acc = np.uint64(0)
    nbits = 0
    # header: BFINAL 0, BTYPE 2 (dynamic), HLIT 0 (257 codes), HDIST 1 (2 codes), HCLEN
    head = np.array([0, 2, 0, 1, hclen - 4], np.int64)
    widths = np.array([1, 2, 5, 5, 4], np.int64)
    for k in range(5):
        acc |= np.uint64(head[k]) << np.uint64(nbits)
        nbits += widths[k]
    for k in range(hclen):
        acc |= np.uint64(cl_len[_ORDER[k]]) << np.uint64(nbits)
        nbits += 3
        while nbits >= 8:
            out[pos] = np.uint8(acc & np.uint64(0xFF))
            pos += 1
            acc >>= np.uint64(8)
            nbits -= 8
    for length in sent:
        acc |= np.uint64(cl_code[length]) << np.uint64(nbits)
        nbits += cl_len[length]
        while nbits >= 8:
            out[pos] = np.uint8(acc & np.uint64(0xFF))
            pos += 1
            acc >>= np.uint64(8)
            nbits -= 8
    table = np.empty(257, np.uint64)  # code | length << 32: one lookup per byte
    for i in range(257):
        table[i] = np.uint64(lit_code[i]) | (np.uint64(lit_len[i]) << np.uint64(32))
    at = np.uint64(pos)  # unsigned indices: no negative-index wraparound, so the eight byte stores merge into one
    held = np.uint64(nbits)
    whole = data.shape[0] // 4 * 4
    for i in range(0, whole, 4):  # at most 7 + 4 x LITERAL_LIMIT = 63 bits held: four codes, then 8 bytes stored
        acc, held = _put(acc, held, table[data[i]])
        acc, held = _put(acc, held, table[data[i + 1]])
        acc, held = _put(acc, held, table[data[i + 2]])
        acc, held = _put(acc, held, table[data[i + 3]])
        for k in range(8):
            out[at + np.uint64(k)] = np.uint8((acc >> np.uint64(8 * k)) & np.uint64(0xFF))
        step = held >> np.uint64(3)
        at += step
        acc >>= step << np.uint64(3)
        held &= np.uint64(7)
    for i in range(whole, data.shape[0]):
        acc, held = _put(acc, held, table[data[i]])
        while held >= np.uint64(8):
            out[at] = np.uint8(acc & np.uint64(0xFF))
            at += np.uint64(1)
            acc >>= np.uint64(8)
            held -= np.uint64(8)
    pos = np.int64(at)
    nbits = np.int64(held)
    acc |= np.uint64(lit_code[256]) << np.uint64(nbits)
    nbits += lit_len[256]
    nbits += 3  # an empty stored block: BFINAL 0, BTYPE 0, then to the byte boundary, LEN 0, NLEN 0xFFFF
    while nbits > 0:
        out[pos] = np.uint8(acc & np.uint64(0xFF))
        pos += 1
        acc >>= np.uint64(8)
        nbits -= 8
    out[pos] = 0
    out[pos + 1] = 0
    out[pos + 2] = 0xFF
    out[pos + 3] = 0xFF
    return pos + 4


@njit(nogil=True, inline="always")
def _sampled(flat, start, step, sample, counts):
    """Bytes ``flat[start + i * step]`` (``i < sample``) counted by value into ``counts`` (zeroed first): the
    number equal to the byte after them (runs), the sum of squared counts, the commonest value's count, and the
    number equal to the three bytes after them (long runs)."""
    counts[:] = 0
    runs = 0
    long_runs = 0
    at = start
    for _ in range(sample):
        byte = flat[at]
        counts[byte] += 1
        runs += byte == flat[at + 1]
        if at + 3 < flat.shape[0]:
            long_runs += byte == flat[at + 1] and byte == flat[at + 2] and byte == flat[at + 3]
        at += step
    squares = 0
    commonest = 0
    for value in range(256):
        squares += counts[value] * counts[value]
        commonest = max(commonest, counts[value])
    return runs, squares, commonest, long_runs


@njit(nogil=True, inline="always")
def _repeats_pay(repeat, chance):
    """Whether bytes that equal the one before with probability ``repeat``, and are otherwise drawn from a
    histogram whose draws are equal with probability ``chance``, cost fewer bits coded as "a repeat, or a
    literal" (a flag of entropy h(repeat), then a literal for the others) than as literals alone (at least
    -log2(chance) bits each): ``repeat * -log2(chance) > h(repeat)``.

    The exponent bytes of anomalies whose mean drifts from one map to the next repeat more often than their
    segment's histogram says (repeat 0.30, chance 0.21), yet literals code them smaller than ISA-L's deflate
    (0.7%, and faster); smooth fields and runs (repeat near 1) pass.
    """
    if repeat >= 1.0:
        return True
    if repeat <= 0.0 or chance <= 0.0:
        return False
    flag = -repeat * np.log2(repeat) - (1.0 - repeat) * np.log2(1.0 - repeat)
    return repeat * -np.log2(chance) > flag


@njit(nogil=True)
def judge_segments(flat, bounds, kinds):
    """Into ``kinds[k]``: how to write the segment ``flat[bounds[k]:bounds[k + 1]]`` of the byte planes.

    :data:`LZ` (deflate with back references) where equal bytes follow each other more often than the
    segment's histogram explains (:data:`EXCESS_RUNS`) and either make runs of four (:data:`LONG_RUNS`) or
    would be coded smaller as repeats than as literals (:func:`_repeats_pay`): smooth fields, constant land,
    not a histogram that merely drifts along the segment; or where one byte value is most of them
    (:data:`MOSTLY`), or the segment is shorter than two samples.  :data:`HUFFMAN` (literals) where one byte
    value is much commoner than others (:data:`COMMONEST`); else :data:`STORED` (random-looking) unless equal
    bytes follow each other often (:data:`RUNS`).  Judged on :data:`SAMPLE` bytes spread evenly over each
    segment (and the three bytes after each, for the runs).
    """
    counts = np.zeros(256, np.int64)
    for k in range(bounds.shape[0] - 1):
        size = bounds[k + 1] - bounds[k]
        if size < 2 * SAMPLE:
            kinds[k] = LZ
            continue
        runs, squares, commonest, long_runs = _sampled(flat, bounds[k], size // SAMPLE, SAMPLE, counts)
        chance = squares / SAMPLE  # equal neighbours expected of independent draws from the histogram
        repeats = long_runs >= LONG_RUNS * SAMPLE or _repeats_pay(runs / SAMPLE, chance / SAMPLE)
        runs_pay = runs - chance >= EXCESS_RUNS * SAMPLE and repeats
        if runs_pay or commonest >= MOSTLY * SAMPLE:
            kinds[k] = LZ  # literals cost a bit or more each
        elif commonest >= COMMONEST:
            kinds[k] = HUFFMAN
        elif runs >= RUNS * SAMPLE:
            kinds[k] = LZ
        else:
            kinds[k] = STORED


def zlib_stream_bound(size: int, segments: int, deflated: int = 0) -> int:
    """Bytes :func:`zlib_stream` may write for ``size`` bytes in ``segments`` segments, ``deflated`` of them
    already deflated."""
    return huffman_bound(size) + 8 * segments + 16 + deflated


@njit(nogil=True)
def zlib_stream(flat, bounds, kinds, adler, deflated, ends, out):
    """Write ``flat`` into ``out`` as one zlib stream (header, deflate blocks, Adler-32 ``adler`` of ``flat``);
    return the bytes written (``out`` needs :func:`zlib_stream_bound` bytes).  Each run of segments
    ``flat[bounds[k]:bounds[k + 1]]`` of one kind is written as its kind says: :data:`LZ`, as the run's raw
    deflate stream given in ``deflated`` (the ``r``-th run of them ``deflated[ends[r - 1]:ends[r]]``, ended by
    a sync flush: byte aligned, not final); :data:`HUFFMAN`, as one block of literals (stored where that is
    not smaller); :data:`STORED`, each segment in stored blocks (of at most :data:`STORED_BLOCK` bytes).  One
    call per chunk, the GIL released throughout."""
    out[0] = 0x78  # deflate, 32 KiB window, fastest level; (0x78 * 256 + 0x01) % 31 == 0
    out[1] = 0x01
    pos = 2
    segments = kinds.shape[0]
    i = 0
    deflated_runs = 0
    while i < segments:
        j = i
        while j < segments and kinds[j] == kinds[i]:
            j += 1
        if kinds[i] == LZ:
            begin = ends[deflated_runs - 1] if deflated_runs else 0
            pos = _copied(deflated[begin : ends[deflated_runs]], out, pos)
            deflated_runs += 1
            i = j
            continue
        if kinds[i] == HUFFMAN:
            size = huffman_block(flat[bounds[i] : bounds[j]], out[pos:])
            if size < bounds[j] - bounds[i]:
                pos += size
                i = j
                continue
        for k in range(i, j):  # stored blocks (or literals that would not have been smaller)
            pos = _stored_blocks(flat[bounds[k] : bounds[k + 1]], 0, out, pos)
        i = j
    pos = _stored_blocks(flat[:0], 1, out, pos)
    for k in range(4):
        out[pos + k] = (adler >> (24 - 8 * k)) & 0xFF
    return pos + 4


@njit(nogil=True)
def _stored_blocks(data, final, out, pos):
    """``data`` written at ``out[pos]`` as stored blocks of at most :data:`STORED_BLOCK` bytes (one empty block
    for no bytes; ``final`` 1: the last of them ends the stream): the position after them."""
    start = 0
    while True:
        size = min(data.shape[0] - start, STORED_BLOCK)
        last = start + size == data.shape[0]
        out[pos] = final if last else 0
        out[pos + 1] = size & 0xFF
        out[pos + 2] = size >> 8
        out[pos + 3] = ~size & 0xFF
        out[pos + 4] = (~size >> 8) & 0xFF
        pos = _copied(data[start : start + size], out, pos + 5)
        start += size
        if last:
            return pos


@njit(nogil=True, inline="always")
def _copied(data, out, pos):
    """``data`` copied to ``out[pos:]``: the position after it."""
    size = data.shape[0]
    into = out[pos : pos + size]
    # a plain loop over two contiguous views, which LLVM compiles to a vector copy; a slice assignment would take
    # numba's generic path (a check whether the arrays overlap, then strided indexing per element)
    for i in range(size):
        into[i] = data[i]
    return pos + size
