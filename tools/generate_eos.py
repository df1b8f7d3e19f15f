"""Generate ``oceanflow/kernels/_eos75.py``, the numerical core of the TEOS-10 EOS.

The 75-term polynomial for the specific volume of seawater (Roquet et al.
2015, the expression GSW uses for ``gsw_specvol``) is written out here once,
as the published coefficients ``v_ijk``; this script turns them into nested
Horner expressions that numba compiles with every coefficient a compile-time
constant: v and its first and second derivatives, and its integral in
pressure (dynamic enthalpy).  The spiciness polynomials of McDougall and
Krzysik (2015), fitted to the same equation of state, are written out here
too, as published.  The generated file is never edited by
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
Horner in ``ys`` and in ``z`` over those.  Derivatives with respect to ``ys``
and ``z``, and the integral in ``z``, reuse the ``q`` chains with constant
factors; those with respect to ``xs`` use the chains' own derivatives
(``dq``, ``ddq``).
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
    "PA_PER_Z": "1e8",  # sea pressure in Pa per unit of z (10^4 dbar = 10^8 Pa)
    "CP0": "3991.86795711963",  # TEOS-10 cp0 (J kg-1 K-1): potential enthalpy = CP0 * CT
}

#: Spiciness referenced to 0, 1000 and 2000 dbar (kg m-3), McDougall and Krzysik
#: (2015), as published in GSW-C gsw_spiciness0/1/2: spiciness = sum_j sum_i
#: s[j][i] * xs**j * ys**i, with xs and ys the reduced variables above; the 49
#: numbers are s[0][0..6], s[1][0..6], ... (each row of 7 over two lines).
SPICINESS = {
    0: """
 -9.22982898371678e1  -1.35727873628866e1   1.87353650994010e1  -1.61360047373455e1
  3.76112762286425e1  -4.27086671461257e1   2.00820111041594e1
  2.87969717584045e2   1.13747111959674e1   6.07377192990680e1  -7.37514033570187e1
 -7.51171878953574e1   1.63310989721504e2  -8.83222751638095e1
 -6.41725302237048e2   2.79732530789261e1  -2.49466901993728e2   3.26691295035416e2
  2.66389243708181e1  -2.93170905757579e2   1.76053907144524e2
  8.27634318120224e2  -7.02156220126926e1   3.82973336590803e2  -5.06206828083959e2
  6.69626565169529e1   3.02851235050766e2  -1.96345285604621e2
 -5.74040806713526e2   7.03285905478333e1  -2.97870298879716e2   3.88340373735118e2
 -8.29188936089122e1  -1.87602137195354e2   1.27096944425793e2
  2.11671167892147e2  -3.15140919876285e1   1.16458864953602e2  -1.50029730802344e2
  3.76293848660589e1   6.47247424373200e1  -4.47159994408867e1
 -3.23533339449055e1     5.30648562097667  -1.82051249177948e1   2.33184351090495e1
   -6.22909903460368    -9.55975464301446     6.61877073960113
""",
    1: """
 -9.19874584868912e1  -1.33517268529408e1   2.18352211648107e1  -2.01491744114173e1
  3.70004204355132e1  -3.78831543226261e1   1.76337834294554e1
  2.87838842773396e2   2.14531420554522e1   3.14679705198796e1  -4.04398864750692e1
 -7.70796428950487e1   1.36783833820955e2  -7.36834317044850e1
 -6.41753415180701e2     1.33701981685590  -1.75289327948412e2   2.42666160657536e2
  3.17062400799114e1  -2.28131490440865e2   1.39564245068468e2
  8.27747934506435e2  -3.50901590694775e1   2.87473907262029e2  -4.00227341144928e2
  6.48307189919433e1   2.16433334701578e2  -1.48273032774305e2
 -5.74545648799754e2   4.50446431127421e1  -2.30714981343772e2   3.15958389253065e2
 -8.60635313930106e1  -1.22978455069097e2   9.18287282626261e1
  2.12120473062203e2  -2.21528216973820e1   9.19013417923270e1  -1.24400776026014e2
  4.08512871163839e1   3.91127352213516e1  -3.10508021853093e1
 -3.24790035899152e1     3.91029016556786  -1.45362719385412e1   1.96136194246355e1
   -7.06035474689088    -5.36884688614009     4.43247303092448
""",
    2: """
 -9.17327320732265e1  -1.31200235147912e1   2.49574345782503e1  -2.41678075247398e1
  3.61654631402053e1  -3.22582164667710e1   1.45092623982509e1
  2.87776645983195e2   3.13902307672447e1     1.69777467534459    -5.69630115740438
 -7.97586359017987e1   1.07507460387751e2  -5.58234404964787e1
 -6.41708068766557e2  -2.53494801286161e1  -9.86755437385364e1   1.52406930795842e2
  4.23888258264105e1  -1.60118811141438e2   9.67497898053989e1
  8.27674355478637e2  5.27561234412133e-1   1.87440206992396e2  -2.83295392345171e2
  5.14485994597635e1   1.29975755062696e2  -9.36526588377456e1
 -5.74911728972948e2   1.91175851862772e1  -1.59347231968841e2   2.33884725744938e2
 -7.87744010546157e1  -6.04757235443685e1   5.27869695599657e1
  2.12517758478878e2  -1.24351794740528e1   6.53904308937490e1  -9.44804080763788e1
  3.93874257887364e1   1.49425448888996e1  -1.62350721656367e1
 -3.25936844276669e1     2.44035700301595  -1.05079633683795e1   1.51515796259082e1
   -7.06609886460683    -1.48043337052968     2.10066653978515
""",
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


def parse_spiciness(text: str) -> list[list[str]]:
    """The 7 x 7 table of one spiciness polynomial: ``rows[j][i]`` multiplies xs**j * ys**i."""
    tokens = text.split()
    if len(tokens) != 49:
        raise ValueError(f"a spiciness table has 49 coefficients, got {len(tokens)}")
    for literal in tokens:
        float(literal)  # must parse
    return [tokens[7 * j : 7 * j + 7] for j in range(7)]


def _falling(n: int, m: int) -> int:
    """n (n-1) ... (n-m+1): the factor d^m/dx^m brings down from x**n."""
    result = 1
    for step in range(m):
        result *= n - step
    return result


def _xs_polynomials(coeffs, order=1):
    """Lines defining q{k}{i} (sum_j v_ijk xs**j) and its xs-derivatives up to ``order``
    (dq{k}{i}, ddq{k}{i}); returns the lines and, per order, ``{(k, i): name}``."""
    prefixes = ("q", "dq", "ddq")[: order + 1]
    lines, names = [], [{} for _ in prefixes]
    for k in sorted({key[2] for key in coeffs}):
        for i in sorted({key[0] for key in coeffs if key[2] == k}):
            top = max(j for (ii, j, kk) in coeffs if ii == i and kk == k)
            for m, prefix in enumerate(prefixes):
                if top < m:
                    break
                terms = []
                for j in range(m, top + 1):
                    literal = coeffs.get((i, j, k))
                    if literal is None:
                        terms.append("0")
                    else:
                        terms.append(literal if m == 0 else _literal(_falling(j, m) * float(literal)))
                names[m][k, i] = f"{prefix}{k}{i}"
                lines.append(f"{prefix}{k}{i} = {_horner(terms, 'xs')}")
    return lines, names


def _nested(names: dict[tuple[int, int], str], d_ys: int = 0, d_z: int = 0, integrate_z: bool = False) -> str:
    """Horner in ys then z over ``names[k, i]`` (the xs-polynomial of ys**i z**k).

    ``d_ys``/``d_z`` differentiate that many times in ys/z (constant factors
    i(i-1).., k(k-1)..; powers lowered); ``integrate_z`` gives the integral in z
    from 0 (factors 1/(k+1) and one more power of z).
    """
    z_terms = []
    for k in range(d_z, max(key[0] for key in names) + 1):
        top = max((i for (kk, i) in names if kk == k), default=-1)
        ys_terms = []
        for i in range(d_ys, top + 1):
            name = names.get((k, i))
            factor = _falling(i, d_ys)
            if name is None:
                ys_terms.append("0")
            else:
                ys_terms.append(name if factor == 1 else f"{float(factor)!r} * {name}")
        expr = _horner(ys_terms, "ys") if ys_terms else "0"
        z_factor = _falling(k, d_z) / (k + 1 if integrate_z else 1)
        if expr != "0" and z_factor != 1:
            expr = f"{z_factor!r} * ({expr})"
        z_terms.append(expr)
    nested = _horner(z_terms, "z")
    return f"z * ({nested})" if integrate_z else nested


def _spiciness(rows: list[list[str]]) -> str:
    """Horner in xs over one Horner chain in ys per power of xs."""
    return _horner([f"({_horner(list(row), 'ys')})" for row in rows], "xs")


def render() -> str:
    """The full text of the generated module."""
    coeffs = parse_coefficients()
    lines, (q_names, dq_names) = _xs_polynomials(coeffs)
    lines2, (_, _, ddq_names) = _xs_polynomials(coeffs, order=2)
    q_lines = "\n    ".join(line for line in lines if line.startswith("q"))
    q0_lines = "\n    ".join(line for line in lines if line.startswith("q0"))
    v_surface = _nested({key: name for key, name in q_names.items() if key[0] == 0})
    constants = "\n".join(f"{name} = {value}" for name, value in CONSTANTS.items())
    body = "\n    ".join(lines)
    body2 = "\n    ".join(lines2)
    v = _nested(q_names)
    v_ys = _nested(q_names, d_ys=1)
    v_xs = _nested(dq_names)
    spiciness = "".join(
        f'''

@njit(inline="always")
def spiciness{n}_core(xs, ys):
    """Spiciness referenced to {1000 * n} dbar (kg m-3) at the reduced variables (xs, ys)."""
    return {_spiciness(parse_spiciness(SPICINESS[n]))}
'''
        for n in sorted(SPICINESS)
    )
    return f'''\
# GENERATED by tools/generate_eos.py -- DO NOT EDIT BY HAND.
# Regenerate with:  python tools/generate_eos.py
# (tests/test_eos.py checks that this file is what the generator writes).
"""TEOS-10 75-term specific volume, its derivatives and its integral in pressure
(Roquet et al. 2015), and the spiciness polynomials of McDougall and Krzysik (2015).

v(xs, ys, z) = sum v_ijk * ys**i * xs**j * z**k  (m3 kg-1), with the reduced
variables xs = sqrt(GSW_SFAC*SA + OFFSET), ys = CT*CT_SCALE, z = p*P_SCALE
(SA in g kg-1, CT in degC, p sea pressure in dbar): the polynomial of GSW's
``gsw_specvol``.  Derivatives here are with respect to the reduced variables
(chain rule in the callers).  All coefficients are literals, so numba folds
them into the machine code; ``inline="always"`` puts each core inside each
calling kernel, whose fastmath flags then apply and whose unused outputs LLVM
removes.
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


@njit(inline="always")
def specvol_surface_core(xs, ys):
    """Return v at the sea surface (z = 0): the terms without z only, as GSW's sigma0."""
    {q0_lines}
    return {v_surface}


@njit(inline="always")
def specvol_z_core(xs, ys, z):
    """Return (v, dv/dz) at the reduced variables (xs, ys, z)."""
    {q_lines}
    v = {v}
    v_z = {_nested(q_names, d_z=1)}
    return v, v_z


@njit(inline="always")
def specvol_second_core(xs, ys, z):
    """Return (v, v_xs, v_ys, v_xs_xs, v_xs_ys, v_ys_ys, v_xs_z, v_ys_z): v, its first
    derivatives in xs and ys and its second derivatives at the reduced variables."""
    {body2}
    v = {v}
    v_xs = {v_xs}
    v_ys = {v_ys}
    v_xs_xs = {_nested(ddq_names)}
    v_xs_ys = {_nested(dq_names, d_ys=1)}
    v_ys_ys = {_nested(q_names, d_ys=2)}
    v_xs_z = {_nested(dq_names, d_z=1)}
    v_ys_z = {_nested(q_names, d_ys=1, d_z=1)}
    return v, v_xs, v_ys, v_xs_xs, v_xs_ys, v_ys_ys, v_xs_z, v_ys_z


@njit(inline="always")
def dynamic_enthalpy_core(xs, ys, z):
    """Return the integral of v over z from 0 (m3 kg-1); times PA_PER_Z it is the
    dynamic enthalpy (J kg-1), the integral of v over sea pressure in Pa."""
    {q_lines}
    return {_nested(q_names, integrate_z=True)}
{spiciness}'''


def write_or_check(target: Path, text: str, script: str, description: str, argv=None) -> int:
    """The command line of a generator: write ``text`` to ``target``, or with
    ``--check`` exit 1 if ``target`` differs from it (shared by tools/generate_*.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the generated file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            print(f"{target} is out of date; run python tools/{script}", file=sys.stderr)
            return 1
        return 0
    with open(target, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    print(f"wrote {target}")
    return 0


def main(argv=None) -> int:
    return write_or_check(TARGET, render(), "generate_eos.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
