"""Make ``oceanflow/eos/data/saar.npz``, the TEOS-10 Absolute Salinity Anomaly Ratio atlas.

Source: the SAAR atlas of TEOS-10 (McDougall, Jackett, Millero, Pawlowicz and
Barker 2012, "A global algorithm for estimating Absolute Salinity", Ocean
Science 8, 1123-1134), as distributed with GSW version 3.06 in the file
``gsw_saar_data.h`` of GSW-C (also in the gsw sdist on PyPI,
``src/c_gsw/gsw_saar_data.h``, "extracted from gsw_data_v3_0.mat").  Only the
data are taken: the grid (``p_ref``, ``lats_ref``, ``longs_ref``), ``saar_ref``
and ``ndepth_ref``.

Compact, lossless form (every float64 kept bit for bit):

* ``ndepth`` int8 (lon, lat): deepest usable level (1-based) of each column,
  -1 where the atlas has none (GSW's 9e90 / NaN);
* ``valid`` packed bits of the (lon, lat, p) nodes that hold a value;
* ``values`` those values in C order, as float64 bytes shuffled into 8 byte
  planes (the high bytes of neighbouring values repeat, so zlib shrinks them);

``oceanflow.eos.saar.atlas()`` rebuilds the dense (lon, lat, p) array with NaN
at the missing nodes.  Reproduce with::

    pip download --no-binary gsw --no-deps gsw==3.6.23
    tar xzf gsw-3.6.23.tar.gz
    python tools/extract_saar.py gsw-3.6.23/src/c_gsw/gsw_saar_data.h
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "oceanflow" / "eos" / "data" / "saar.npz"
MISSING = 1e90  # GSW marks missing nodes with 9e90


def _array(text: str, name: str) -> np.ndarray:
    match = re.search(rf"\b{name}\[(\d+)\]\s*=\s*\{{(.*?)\}};", text, re.S)
    if match is None:
        raise ValueError(f"{name} not found")
    values = np.array([float(v) for v in match.group(2).split(",") if v.strip()])
    if values.size != int(match.group(1)):
        raise ValueError(f"{name}: {values.size} values, declared {match.group(1)}")
    return values


def extract(header: Path) -> dict[str, np.ndarray]:
    text = header.read_text()
    dims = re.search(r"gsw_nx\s*=\s*(\d+),\s*gsw_ny\s*=\s*(\d+),\s*gsw_nz\s*=\s*(\d+)", text)
    nx, ny, nz = (int(n) for n in dims.groups())
    version = re.search(r'gsw_version_number\s*=\s*"([^"]*)"', text).group(1)
    p_ref, lats, longs = _array(text, "p_ref"), _array(text, "lats_ref"), _array(text, "longs_ref")
    # GSW-C indexes saar_ref[k + nz*(j + ny*i)] for longitude i, latitude j, pressure k.
    saar = _array(text, "saar_ref").reshape(nx, ny, nz)
    ndepth = _array(text, "ndepth_ref").reshape(nx, ny)
    assert (p_ref.size, lats.size, longs.size) == (nz, ny, nx)
    valid = saar < MISSING
    depth = np.where(ndepth < MISSING, ndepth, -1)
    assert np.all(depth == np.round(depth)) and depth.max() <= nz
    values = np.ascontiguousarray(saar[valid])
    return {
        "p_ref": p_ref,
        "lats_ref": lats,
        "longs_ref": longs,
        "ndepth": depth.astype(np.int8),
        "valid": np.packbits(valid.ravel()),
        "values": values.view(np.uint8).reshape(-1, 8).T.copy(),
        "source": np.array(f"TEOS-10 SAAR atlas, GSW {version} (gsw_saar_data.h); McDougall et al. 2012"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("header", type=Path, help="GSW-C's gsw_saar_data.h")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    arrays = extract(args.header)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
