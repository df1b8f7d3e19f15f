"""Literal-only deflate blocks against zlib's inflate (the independent oracle)."""

from __future__ import annotations

import threading
import time
import zlib

import numpy as np
import pytest

from oceanflow.kernels.deflate import (
    HUFFMAN,
    LITERAL_LIMIT,
    LZ,
    SAMPLED_HISTOGRAM,
    STORED,
    _code_lengths,
    huffman_block,
    huffman_bound,
    judge_segments,
    zlib_stream,
    zlib_stream_bound,
)
from oceanflow.kernels.shuffle import byte_shuffle


def _fibonacci_counts(n: int) -> np.ndarray:
    counts = [1, 1]
    while len(counts) < n:
        counts.append(counts[-1] + counts[-2])
    return np.repeat(np.arange(n, dtype=np.uint8), counts)  # an optimal code would need n - 1 bits


def _optimal_depth(data: np.ndarray) -> int:
    """The longest code of an optimal Huffman code (no length limit) of ``data``'s bytes and the end of block."""
    freq = np.append(np.bincount(data, minlength=256), 1)
    lengths = np.zeros(257, np.int64)
    _code_lengths(freq, 64, lengths)
    return int(lengths.max())


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    normal = rng.normal(size=50_000).astype(np.float32).view(np.uint8).reshape(-1, 4)
    return {
        "exponent bytes": np.ascontiguousarray(normal[:, 3]),
        "low mantissa bytes": np.ascontiguousarray(normal[:, 0]),
        "skewed": rng.geometric(0.05, 70_001).clip(0, 255).astype(np.uint8),
        "constant": np.full(9_000, 7, np.uint8),
        "one byte": np.array([42], np.uint8),
        "every value": rng.integers(0, 256, 65_280).astype(np.uint8),
        "deep code (length-limited)": _fibonacci_counts(22),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_literal_blocks_inflate_to_the_data(name):
    data = _cases()[name]
    out = np.empty(huffman_bound(data.size), np.uint8)
    size = huffman_block(data, out)
    assert size <= huffman_bound(data.size)
    # within a zlib stream, between stored blocks (as _deflate_planes writes it): the flush leaves a byte boundary
    head = b"\x00" + (3).to_bytes(2, "little") + (3 ^ 0xFFFF).to_bytes(2, "little") + b"abc"
    tail = b"\x01\x00\x00\xff\xff"
    stream = b"\x78\x01" + head + out[:size].tobytes() + tail
    payload = b"abc" + data.tobytes()
    stream += zlib.adler32(payload).to_bytes(4, "big")
    assert zlib.decompress(stream) == payload


def test_literal_blocks_beat_zlib_on_independent_skewed_bytes():
    data = _cases()["exponent bytes"]
    out = np.empty(huffman_bound(data.size), np.uint8)
    assert huffman_block(data, out) < len(zlib.compress(data.tobytes(), 1))


@pytest.mark.parametrize("order", ["shuffled", "longest codes in a row"])
def test_codes_at_the_length_limit_for_all_256_values_stay_within_the_bound(order):
    # Fibonacci counts for 22 values and the other 234 values once each: an optimal code deeper than the limit, so
    # the rare values share codes at it.  In a row: the bit buffer takes four codes of the longest length (and the
    # bits left over) between its stores.  Under SAMPLED_HISTOGRAM bytes: the code fits every byte's count
    data = np.concatenate([_fibonacci_counts(22), np.arange(22, 256, dtype=np.uint8)])
    assert data.size < SAMPLED_HISTOGRAM and _optimal_depth(data) > LITERAL_LIMIT
    if order == "shuffled":
        data = np.random.default_rng(5).permutation(data)
    bound = huffman_bound(data.size)
    marker = np.frombuffer(b"OCEANFLOW-MARKER" * 64, np.uint8)
    out = np.empty(bound + marker.size, np.uint8)
    out[bound:] = marker
    size = huffman_block(data, out[:bound])  # numba checks no bounds: a write past the bound would hit the marker
    assert size <= bound
    assert np.array_equal(out[bound:], marker)
    stream = b"\x78\x01" + out[:size].tobytes() + b"\x01\x00\x00\xff\xff" + zlib.adler32(data).to_bytes(4, "big")
    assert zlib.decompress(stream) == data.tobytes()


def test_sampled_histogram_gives_every_byte_value_a_code():
    # a block long enough for its code to come from sampled windows: bytes that no window sees still inflate
    data = np.random.default_rng(6).geometric(0.3, SAMPLED_HISTOGRAM + 40_000).clip(0, 60).astype(np.uint8)
    data[1000], data[2000], data[-300] = 200, 255, 128  # 200, 255: between the first two windows; 128: in the last
    out = np.empty(huffman_bound(data.size), np.uint8)
    size = huffman_block(data, out)
    stream = b"\x78\x01" + out[:size].tobytes() + b"\x01\x00\x00\xff\xff" + zlib.adler32(data).to_bytes(4, "big")
    assert zlib.decompress(stream) == data.tobytes()
    assert size < len(zlib.compress(data.tobytes(), 1))


def _exponent_plane(field: np.ndarray) -> np.ndarray:
    """The high byte plane (sign and exponent) of float32 ``field``, as HDF5's shuffle lays it out."""
    return np.ascontiguousarray(field.astype(np.float32).reshape(-1).view(np.uint8).reshape(-1, 4)[:, 3])


def test_judged_literals_where_a_drifting_histogram_makes_the_runs_and_back_references_where_smoothness_does():
    rng = np.random.default_rng(8)
    days = np.arange(16)[:, None, None]
    lat = np.linspace(-80, 80, 45)[None, :, None]
    fields = {
        # anomalies whose mean changes from day to day (a monthly climatology removed from a seasonal cycle)
        "anomalies": 1.3 * np.sin(days / 3.0) + rng.standard_normal((16, 45, 90)),
        "smooth": 15 + 12 * np.cos(np.radians(lat)) + 0.3 * rng.standard_normal((16, 45, 90)),
    }
    kinds = {}
    for name, field in fields.items():
        plane = _exponent_plane(field)
        judged = np.empty(1, np.int64)
        judge_segments(plane, np.array([0, plane.size]), judged)
        kinds[name] = judged[0]
        literals = huffman_block(plane, np.empty(huffman_bound(plane.size), np.uint8))
        deflated = len(zlib.compress(plane.tobytes(), 1))
        assert (literals < deflated) == (name == "anomalies"), (name, literals, deflated)  # the oracle: sizes
    assert kinds == {"anomalies": HUFFMAN, "smooth": LZ}


def _streamed(flat, bounds, kinds, deflated=b"", ends=()):
    """``zlib_stream`` of the segments into a buffer of exactly its bound, checked for writes past it."""
    deflated, ends = np.frombuffer(deflated, np.uint8), np.array(ends, np.int64)
    bound = zlib_stream_bound(flat.size, kinds.size, deflated.size)
    marker = np.frombuffer(b"OCEANFLOW-MARKER" * 64, np.uint8)
    out = np.empty(bound + marker.size, np.uint8)
    out[bound:] = marker
    size = zlib_stream(flat, bounds, kinds, zlib.adler32(flat), deflated, ends, out[:bound])
    assert np.array_equal(out[bound:], marker)  # nothing written past the bound
    return out[:size].tobytes()


def test_zlib_stream_of_literals_and_stored_segments_is_one_zlib_stream():
    # byte planes of noisy floats: the low ones stored, the exponents as literals, and random bytes marked as
    # literals (not smaller coded so: stored instead) between them
    rng = np.random.default_rng(4)
    planes = np.ascontiguousarray(rng.normal(size=30_000).astype(np.float32).view(np.uint8).reshape(-1, 4).T)
    flat = np.concatenate([planes[3], planes[0], rng.integers(0, 256, 20_000).astype(np.uint8), planes[1], planes[3]])
    bounds = np.array([0, 30_000, 60_000, 80_000, 110_000, flat.size])
    kinds = np.array([HUFFMAN, STORED, HUFFMAN, STORED, HUFFMAN])
    stream = _streamed(flat, bounds, kinds)
    assert zlib.decompress(stream) == flat.tobytes()  # checks the Adler-32 too
    assert flat[60_000:80_000].tobytes() in stream  # the random literals stored as they are
    assert len(stream) < flat.size - 20_000  # the exponent planes coded in fewer bits


@pytest.mark.parametrize("kind", [STORED, HUFFMAN])
def test_zlib_stream_stores_a_segment_longer_than_one_stored_block_in_several(kind):
    """A random segment over 65,535 bytes (a stored block's length is 16 bits), kept stored or marked as literals
    that would not be smaller: stored blocks zlib inflates to the segment, between two others."""
    rng = np.random.default_rng(9)
    flat = rng.integers(0, 256, 3 * 65_535 + 1_000).astype(np.uint8)
    bounds = np.array([0, 500, flat.size - 500, flat.size])
    stream = _streamed(flat, bounds, np.array([STORED, kind, STORED]))
    assert zlib.decompress(stream) == flat.tobytes()


def test_zlib_stream_takes_runs_deflated_elsewhere_between_its_own_blocks():
    """Runs of LZ segments (two in one run, and one after) come deflated by zlib (the oracle's own deflate, raw,
    ended by a sync flush); the stream zlib inflates is every segment in order."""
    rng = np.random.default_rng(5)
    ramp = (np.arange(40_000) // 7).astype(np.uint8)
    exponents = rng.normal(size=30_000).astype(np.float32).view(np.uint8)[3::4].copy()
    noise = rng.integers(0, 256, 20_000).astype(np.uint8)
    segments = [ramp[:20_000], ramp[20_000:], exponents, noise, ramp[:9_000], exponents]
    flat = np.concatenate(segments)
    bounds = np.cumsum([0] + [segment.size for segment in segments])
    kinds = np.array([LZ, LZ, HUFFMAN, STORED, LZ, HUFFMAN])
    runs = [flat[bounds[0] : bounds[2]], flat[bounds[4] : bounds[5]]]
    deflated = []
    for run in runs:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated.append(packer.compress(run.tobytes()) + packer.flush(zlib.Z_SYNC_FLUSH))
    stream = _streamed(flat, bounds, kinds, b"".join(deflated), np.cumsum([len(d) for d in deflated]))
    assert zlib.decompress(stream) == flat.tobytes()  # checks the Adler-32 too
    assert all(run in stream for run in deflated)  # the runs as given, not deflated again


@pytest.mark.parametrize("kernel", [huffman_block, byte_shuffle, judge_segments, zlib_stream])
def test_kernels_called_from_writer_threads_release_the_gil(kernel):
    assert kernel.targetoptions.get("nogil") is True


def _ticks_inside(call) -> tuple[int, float]:
    """Ticks of a pure-Python thread while ``call()`` runs (away from its first and last 20 ms), and its seconds."""
    stamps: list[float] = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.05)
    start = time.perf_counter()
    call()
    end = time.perf_counter()
    stop.set()
    thread.join()
    return sum(start + 0.02 < t < end - 0.02 for t in stamps), end - start


def test_another_thread_runs_python_while_a_block_is_coded():
    # no speed is assumed: the block grows until one call lasts long enough to watch (CI's machine is faster than ours)
    block = np.random.default_rng(0).geometric(0.05, 10_000_000).clip(0, 255).astype(np.uint8)
    huffman_block(block[:10], np.empty(huffman_bound(10), np.uint8))  # compiled before timing
    for copies in (1, 4, 16, 64):
        data = np.tile(block, copies)
        out = np.empty(huffman_bound(data.size), np.uint8)
        ticks, seconds = _ticks_inside(lambda data=data, out=out: huffman_block(data, out))
        if seconds > 0.2:
            break
    assert seconds > 0.2, "even 640 MB coded too fast to watch"
    assert ticks > 1000  # holding the GIL: none


@pytest.mark.parametrize("step", [2, 3, 7])
def test_sampled_statistics_match_numpy_up_to_the_end_of_the_bytes(step):
    """The sample judge_segments takes (deflate._sampled), its last bytes the last but one of the array: only
    bytes inside it counted, not those after (here equal to its last ones, as a run going on would be).
    Oracle: NumPy's bincount and comparisons of the same sampled positions."""
    from oceanflow.kernels.deflate import _sampled

    rng = np.random.default_rng(step)
    buffer = rng.integers(0, 3, 3000).astype(np.uint8)  # three values: runs of every length
    size, sample = 2000, 250
    buffer[size - 2 : size + 3] = 1  # the last sample begins a run that goes on past the array's end
    flat = buffer[:size]
    start = size - 2 - (sample - 1) * step
    at = start + step * np.arange(sample)
    byte = flat[at]
    counts = np.bincount(byte, minlength=256)
    inside = at[at + 3 < size]
    expected = (
        int((byte == flat[at + 1]).sum()),
        int((counts**2).sum()),
        int(counts.max()),
        int(
            (
                (flat[inside] == flat[inside + 1])
                & (flat[inside] == flat[inside + 2])
                & (flat[inside] == flat[inside + 3])
            ).sum()
        ),
    )
    assert _sampled(flat, start, step, sample, np.zeros(256, np.int64)) == expected
