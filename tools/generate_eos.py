"""Generate ``oceanflow/kernels/_eos75.py``, the numerical core of the TEOS-10 EOS.

The 75-term polynomial for the specific volume of seawater (Roquet et al.
2015, the expression GSW uses for ``gsw_specvol``) is written out here once,
as the published coefficients ``v_ijk``; this script turns them into nested
Horner expressions for v, dv/dxs and dv/dys that numba compiles with every
coefficient a compile-time constant.  The generated file is never edited by
hand: change this script and run

    python tools/generate_eos.py            # rewrite the generated file
    python tools/generate_eos.py --check    # exit 1 if it is out of date

Index convention (verified against ``gsw.specvol``): in ``v_ijk`` the first
index ``i`` is the power of ``ys`` (Conservative Temperature), ``j`` the power
of ``xs`` (Absolute Salinity) and ``k`` the power of ``z`` (pressure), as in
GSW-C's ``gsw_specvol``:  v = sum v_ijk * ys**i * xs**j * z**k.  (Reading ``i``
as the power of ``xs`` gives densities wrong by up to 14 %.)

Structure of the generated core: for every (k, i) a polynomial in ``xs``,
``q{k}{i}(xs) = sum_j v_ijk xs**j``, and its xs-derivative, each an
independent short Horner chain (good instruction-level parallelism); then
Horner in ``ys`` and in ``z`` over those.  dv/dys reuses the ``q`` chains.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "oceanflow" / "kernels" / "_eos75.py"

#: TEOS-10 75-term specific-volume coefficients v_ijk (m3 kg-1), as published in
#: GSW-C gsw_internal_const.h (Roquet et al. 2015).  i: power of ys (CT),
#: j: power of xs (SA), k: power of z (p).
COEFFICIENTS = """
v000  1.0769995862e-3   v001 -6.0799143809e-5   v002  9.9856169219e-6   v003 -1.1309361437e-6
v004  1.0531153080e-7   v005 -1.2647261286e-8   v006  1.9613503930e-9   v010 -3.1038981976e-4
v011  2.4262468747e-5   v012 -5.8484432984e-7   v013  3.6310188515e-7   v014 -1.1147125423e-7
v020  6.6928067038e-4   v021 -3.4792460974e-5   v022 -4.8122251597e-6   v023  1.6746303780e-8
v030 -8.5047933937e-4   v031  3.7470777305e-5   v032  4.9263106998e-6   v040  5.8086069943e-4
v041 -1.7322218612e-5   v042 -1.7811974727e-6   v050 -2.1092370507e-4   v051  3.0927427253e-6
v060  3.1932457305e-5   v100 -1.5649734675e-5   v101  1.8505765429e-5   v102 -1.1736386731e-6
v103 -3.6527006553e-7   v104  3.1454099902e-7   v110  3.5009599764e-5   v111 -9.5677088156e-6
v112 -5.5699154557e-6   v113 -2.7295696237e-7   v120 -4.3592678561e-5   v121  1.1100834765e-5
v122  5.4620748834e-6   v130  3.4532461828e-5   v131 -9.8447117844e-6   v132 -1.3544185627e-6
v140 -1.1959409788e-5   v141  2.5909225260e-6   v150  1.3864594581e-6   v200  2.7762106484e-5
v201 -1.1716606853e-5   v202  2.1305028740e-6   v203  2.8695905159e-7   v210 -3.7435842344e-5
v211 -2.3678308361e-7   v212  3.9137387080e-7   v220  3.5907822760e-5   v221  2.9283346295e-6
v222 -6.5731104067e-7   v230 -1.8698584187e-5   v231 -4.8826139200e-7   v240  3.8595339244e-6
v300 -1.6521159259e-5   v301  7.9279656173e-6   v302 -4.6132540037e-7   v310  2.4141479483e-5
v311 -3.4558773655e-6   v312  7.7618888092e-9   v320 -1.4353633048e-5   v321  3.1655306078e-7
v330  2.2863324556e-6   v400  6.9111322702e-6   v401 -3.4102187482e-6   v402 -6.3352916514e-8
v410 -8.7595873154e-6   v411  1.2956717783e-6   v420  4.3703680598e-6   v500 -8.0539615540e-7
v501  5.0736766814e-7   v510 -3.3052758900e-7   v600  2.0543094268e-7
"""

#: Reduced variables: xs = sqrt(SFAC*SA + OFFSET), ys = CT*CT_SCALE, z = p*P_SCALE.
CONSTANTS = {
    "GSW_SFAC": "0.0248826675584615",  # 1/(40*(35.16504/35)), kg g-1
    "OFFSET": "5.971840214030754e-1",  # deltaS*GSW_SFAC, deltaS = 24 g kg-1
    "CT_SCALE": "0.025",  # 1/(40 degC)
    "P_SCALE": "1e-4",  # 1/(10^4 dbar)
}


def parse_coefficients(text: str = COEFFICIENTS) -> dict[tuple[int, int, int], str]:
    """``{(i, j, k): literal}`` from the table; checks there are exactly 75, none twice."""
    tokens = text.split()
    coeffs: dict[tuple[int, int, int], str] = {}
    for name, literal in zip(tokens[::2], tokens[1::2], strict=True):
        key = (int(name[1]), int(name[2]), int(name[3]))
        if key in coeffs:
            raise ValueError(f"coefficient {name} given twice")
        float(literal)  # must parse
        coeffs[key] = literal
    if len(tokens) % 2 or len(coeffs) != 75:
        raise ValueError(f"expected 75 coefficients, got {len(coeffs)}")
    return coeffs


def _literal(value: float) -> str:
    return repr(float(value))


def _horner(terms: list[str], var: str) -> str:
    """Horner form of ``sum_n terms[n] * var**n`` (terms are expressions or '0')."""
    while len(terms) > 1 and terms[-1] == "0":
        terms = terms[:-1]
    expr = terms[-1]
    for term in reversed(terms[:-1]):
        expr = f"{var} * ({expr})" if term == "0" else f"{term} + {var} * ({expr})"
    return expr


def _xs_polynomials(coeffs):
    """Lines defining q{k}{i} (sum_j v_ijk xs**j) and dq{k}{i} (its xs-derivative)."""
    lines, q_names, dq_names = [], {}, {}
    for k in sorted({key[2] for key in coeffs}):
        for i in sorted({key[0] for key in coeffs if key[2] == k}):
            powers = sorted(j for (ii, j, kk) in coeffs if ii == i and kk == k)
            terms = [coeffs.get((i, j, k), "0") for j in range(powers[-1] + 1)]
            q_names[k, i] = f"q{k}{i}"
            lines.append(f"q{k}{i} = {_horner(terms, 'xs')}")
            if len(terms) > 1:
                dterms = [_literal(n * float(terms[n])) if terms[n] != "0" else "0" for n in range(1, len(terms))]
                dq_names[k, i] = f"dq{k}{i}"
                lines.append(f"dq{k}{i} = {_horner(dterms, 'xs')}")
    return lines, q_names, dq_names


def _nested(names: dict[tuple[int, int], str], scale: bool = False) -> str:
    """Horner in ys then z over ``names[k, i]``; ``scale`` multiplies by i (d/dys)."""
    z_terms = []
    for k in range(max(key[0] for key in names) + 1):
        ys_terms = []
        top = max((i for (kk, i) in names if kk == k), default=-1)
        for i in range(top + 1):
            name = names.get((k, i))
            if name is None:
                ys_terms.append("0")
            elif scale:
                ys_terms.append(name if i == 1 else f"{float(i)!r} * {name}")
            else:
                ys_terms.append(name)
        if scale:
            ys_terms = ys_terms[1:]  # d/dys lowers every power by one
        z_terms.append(_horner(ys_terms, "ys") if ys_terms else "0")
    return _horner(z_terms, "z")


def render() -> str:
    """The full text of the generated module."""
    coeffs = parse_coefficients()
    lines, q_names, dq_names = _xs_polynomials(coeffs)
    constants = "\n".join(f"{name} = {value}" for name, value in CONSTANTS.items())
    body = "\n    ".join(lines)
    v = _nested(q_names)
    v_ys = _nested({key: name for key, name in q_names.items() if key[1] >= 1}, scale=True)
    v_xs = _nested(dq_names)
    return f'''\
# GENERATED by tools/generate_eos.py -- DO NOT EDIT BY HAND.
# Regenerate with:  python tools/generate_eos.py
# (tests/test_eos.py checks that this file is what the generator writes).
"""TEOS-10 75-term specific volume and its first derivatives (Roquet et al. 2015).

v(xs, ys, z) = sum v_ijk * ys**i * xs**j * z**k  (m3 kg-1), with the reduced
variables xs = sqrt(GSW_SFAC*SA + OFFSET), ys = CT*CT_SCALE, z = p*P_SCALE
(SA in g kg-1, CT in degC, p sea pressure in dbar): the polynomial of GSW's
``gsw_specvol``.  All coefficients are literals, so numba folds them into the
machine code; ``inline="always"`` puts the core inside each calling kernel,
whose fastmath flags then apply and whose unused outputs LLVM removes.
"""

from ._declare import njit

{constants}


@njit(inline="always")
def specvol_core(xs, ys, z):
    """Return (v, dv/dxs, dv/dys) at the reduced variables (xs, ys, z)."""
    {body}
    v = {v}
    v_xs = {v_xs}
    v_ys = {v_ys}
    return v, v_xs, v_ys
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the generated file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
        if current != text:
            print(f"{TARGET} is out of date; run python tools/generate_eos.py", file=sys.stderr)
            return 1
        return 0
    with open(TARGET, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
