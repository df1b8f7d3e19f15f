"""Literal-only deflate blocks against zlib's inflate (the independent oracle)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from oceanflow.kernels.deflate import huffman_block, huffman_bound


def _fibonacci_counts(n: int) -> np.ndarray:
    counts = [1, 1]
    while len(counts) < n:
        counts.append(counts[-1] + counts[-2])
    return np.repeat(np.arange(n, dtype=np.uint8), counts)  # an optimal code would need n - 1 bits


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
        "deep code (length-limited)": _fibonacci_counts(27),
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
