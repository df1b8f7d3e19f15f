"""The streamed selection's collect kernel and its bit helper against plain NumPy/Python loops, its
finish kernel against ``np.quantile``.

The climatology tests reach :func:`stream_collect` only through whole order
statistics; these call it directly (in a child process: a broken kernel can
crash or loop), on marks that put hits at every position of the words of 8
pixels' marks, on pixel counts that are not multiples of 8 or 64, and on bins
that take every value or none.
"""

import subprocess
import sys

import numpy as np

from oceanflow.kernels.quantiles import trailing_zeros


def test_trailing_zeros_counts_the_zero_bits_below_the_lowest_set_one():
    rng = np.random.default_rng(0)
    words = [1 << i for i in range(64)]
    words += [
        int(w) | (1 << int(i)) for w, i in zip(rng.integers(0, 2**63, 200), rng.integers(0, 64, 200), strict=True)
    ]
    words += [2**64 - 1, 2**63 + 2**40, 0x0101010101010100]
    for word in words:
        expected = (word & -word).bit_length() - 1  # Python integers: the lowest set bit's position
        assert int(trailing_zeros(np.uint64(word))) == expected, hex(word)


def collect_oracle(x, codes, low, high, start, first, values):
    """:func:`stream_collect` as a loop over steps, quantiles and pixels, in time order."""
    position, values = first.copy(), values.copy()
    for t in range(x.shape[0]):
        g = codes[t]
        if g < 0 or g >= low.shape[1]:
            continue
        for r in range(low.shape[0]):
            for p in range(low.shape[2]):
                v = x[t, start + p]
                if v >= low[r, g, p] and not v >= high[r, g, p]:  # high NaN: no upper bound
                    values[position[r, g, p]] = v
                    position[r, g, p] += 1
    return position, values


def random_bins(rng, x, nq, ngroups, width, dtype):
    """Bounds (quantile, group, pixel): a third of the bins take nothing (low NaN), a sixth every
    value (no bounds), the others the values between two random quantiles of the data."""
    a, b = np.sort(
        np.nanquantile(x, rng.uniform(0, 1, 2 * nq * ngroups * width)).reshape(2, nq, ngroups, width), axis=0
    )
    kind = rng.integers(0, 6, (nq, ngroups, width))
    low = np.where(kind < 2, np.nan, np.where(kind == 2, -np.inf, a)).astype(dtype)
    high = np.where(kind == 2, np.nan, b).astype(dtype)
    low[:, 0, 8:16], high[:, 0, 8:16] = -np.inf, np.nan  # whole words of hits
    return low, high


CASES = [(1, 0), (7, 2), (8, 0), (63, 1), (64, 0), (65, 3), (130, 5), (200, 0)]  # (pixels, first pixel)

#: Runs stream_collect on each saved case in a child process: a broken kernel crashes or loops there.
CHILD = """
import sys
import numpy as np
from oceanflow.kernels.quantiles import stream_collect
for path in sys.argv[1:]:
    a = dict(np.load(path))
    position, values = a["first"].copy(), a["values"].copy()
    shapes = (np.broadcast_to(np.int64(0), position.shape), np.broadcast_to(values.dtype.type(0), values.shape))
    with np.errstate(invalid="ignore"):
        stream_collect(a["x"], a["codes"], a["low"], a["high"], int(a["start"]), *shapes, out=(position, values))
    np.savez(path, **a, position=position, collected=values)
"""


def collect_case(width, start, dtype, *, hits=True):
    """The arguments of one call: NaN-riddled data, runs of 1-6 steps per group (-1 and ``ngroups``: none),
    bins from :func:`random_bins` (none at all unless ``hits``), a slot per possible hit and a spare."""
    rng = np.random.default_rng(width * 10 + start)
    ntime, nq, ngroups = 37, 2, 3
    x = rng.standard_normal((ntime, start + width + 4)).astype(dtype)
    x[rng.uniform(size=x.shape) < 0.1] = np.nan
    codes = np.repeat(rng.integers(-1, ngroups + 1, 12), rng.integers(1, 7, 12))[:ntime]
    codes = np.concatenate([codes, np.full(ntime - codes.size, 1)]).astype(np.int64)
    low, high = random_bins(rng, x, nq, ngroups, width, dtype)
    if not hits:
        low[:] = np.nan
    with np.errstate(invalid="ignore"):
        below = [(x[codes == g, start : start + width] >= low[:, g, None]) for g in range(ngroups)]
    slots = np.stack([b.sum(axis=1) for b in below], axis=1) + 1
    first = (np.cumsum(slots) - slots.ravel()).reshape(slots.shape).astype(np.int64)
    values = np.full(int(slots.sum()), -7.0, dtype)  # what no hit writes stays -7
    return {"x": x, "codes": codes, "low": low, "high": high, "start": start, "first": first, "values": values}


def test_stream_collect_against_a_numpy_loop(tmp_path):
    """Every case in one child process (a timeout: no hang can stall the suite, nor a crash end it)."""
    cases = {
        f"{w}-{s}-{np.dtype(t).name}-{'hits' if h else 'none'}": collect_case(w, s, t, hits=h)
        for w, s in CASES
        for t in (np.float32, np.float64)
        for h in (True, False)
    }
    paths = [str(tmp_path / f"{name}.npz") for name in cases]
    for path, case in zip(paths, cases.values(), strict=True):
        np.savez(path, **case)
    child = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, f"stream_collect failed or crashed ({child.returncode}): {child.stderr[-2000:]}"
    for path, (name, case) in zip(paths, cases.items(), strict=True):
        got = np.load(path)
        position, values = collect_oracle(
            **{k: case[k] for k in ("x", "codes", "low", "high", "start")}, first=case["first"], values=case["values"]
        )
        assert np.array_equal(got["position"], position), name
        assert np.array_equal(got["collected"], values), name
        hits = (position - case["first"]).sum()
        assert (0 < hits < values.size - position.size) if name.endswith("hits") else hits == 0, name


def test_stream_finish_against_nanquantile_of_each_group():
    """:func:`stream_finish` picks each quantile in its bin (the group's values of ranks ``base ..
    base + size``, in any order) as ``np.quantile`` does on the group's values: bins sorted a tile of
    pixels at a time by a network (tiles of 64 and a last partial one) and bins larger than the largest
    network by quickselect; ties, infinities, groups of too few values (NaN)."""
    from oceanflow.kernels.quantiles import FINISH_SIZES, finish_networks, quantile_params, stream_finish

    rng = np.random.default_rng(5)
    qs, ngroups, width, min_count = np.array([0.5, 0.9, 0.03]), 2, 150, 25
    for method in ("linear", "median_unbiased", "nearest", "weibull", "inverted_cdf"):
        for dtype in (np.float32, np.float64):
            n = rng.integers(2, 400, (ngroups, width))
            n[0, :40] = rng.integers(2, 60, 40)  # tiles of small bins only
            counts = n.astype(np.int32)[:, None, :]
            pieces, first, base, size, expected = [], [], [], [], np.full((qs.size, ngroups, width), np.nan)
            at = 0
            for r, q in enumerate(qs):
                for g in range(ngroups):
                    for p in range(width):
                        group = np.round(rng.normal(size=n[g, p]) * 4) / 4  # ties
                        group[rng.random(n[g, p]) < 0.02] = np.inf
                        group = np.sort(group.astype(dtype))
                        centre = n[g, p] * q
                        lo = max(0, int(centre) - 3 - rng.integers(0, 60))  # bins of 6 to about 120 values
                        hi = min(n[g, p], int(np.ceil(centre)) + 3 + rng.integers(0, 60))
                        pieces.append(rng.permutation(group[lo:hi]))
                        first.append(at)
                        base.append(lo)
                        size.append(hi - lo)
                        at += hi - lo
                        if n[g, p] >= min_count:
                            with np.errstate(invalid="ignore"):
                                expected[r, g, p] = np.quantile(group, q, method=method)
            shape = (qs.size, ngroups, width)
            first, base, size = (np.array(a, np.int64).reshape(shape) for a in (first, base, size))
            assert (size > FINISH_SIZES[-1]).mean() > 0.1 and (size <= FINISH_SIZES[-1]).mean() > 0.3
            out, values = np.empty(shape, dtype), np.concatenate(pieces)
            params = quantile_params(method, min_count)
            with np.errstate(invalid="ignore"):  # inf - inf interpolated
                stream_finish(values, first, base, size, counts, qs, params, *finish_networks(), out, out=out)
            np.testing.assert_array_equal(out, expected.astype(dtype), err_msg=f"{method} {dtype.__name__}")


def test_stream_thresholds_are_the_sorted_samples_values_around_each_quantiles_rank():
    """:func:`stream_thresholds` sorts each group's sample down the columns (a network, all pixels in
    step): its thresholds are ``np.sort``'s values at the ranks around each quantile's among the
    sample's finite values; missing steps (+inf), ties and a pixel count that is not a multiple of 8."""
    from oceanflow.kernels.quantiles import STREAM_SAMPLE, STREAM_SPREAD, STREAM_THRESHOLDS, stream_thresholds
    from oceanflow.kernels.sorting import sorting_network

    rng = np.random.default_rng(11)
    qs, ngroups, width, m = np.array([0.5, 0.9, 0.03]), 3, 70, STREAM_SAMPLE
    for dtype in (np.float32, np.float64):
        sample = (np.round(rng.normal(size=(ngroups * m, width)) * 3) / 2).astype(dtype)  # ties, +-0
        sample[rng.random(sample.shape) < 0.1] = np.inf  # missing steps
        sample[m : 2 * m - 5, 3] = np.inf  # a pixel of 5 values
        sample[2 * m : 3 * m, 4] = np.inf  # and one of none
        out = np.empty((ngroups, qs.size * STREAM_THRESHOLDS, width), dtype)
        stream_thresholds(sample, *sorting_network(m), qs, out, out=out)
        for g in range(ngroups):
            ordered = np.sort(sample[g * m : (g + 1) * m], axis=0)
            top = np.maximum(np.isfinite(ordered).sum(axis=0) - 1, 0)
            for r, q in enumerate(qs):
                sigma, offsets, last = np.sqrt(m * q * (1 - q)), [], 0
                for spread in STREAM_SPREAD[STREAM_THRESHOLDS // 2 :]:
                    last = max(last + 1, int(np.floor(spread * sigma + 0.5)))
                    offsets.append(last)
                around = np.array([-o for o in offsets[::-1]] + offsets)[:, None]
                ranks = np.floor(q * top + 0.5).astype(int)[None, :] + around
                expected = np.take_along_axis(ordered, np.clip(ranks, 0, top), axis=0)
                found = out[g, r * STREAM_THRESHOLDS : (r + 1) * STREAM_THRESHOLDS]
                np.testing.assert_array_equal(found, expected, err_msg=f"{dtype.__name__} group {g} q {q}")
