"""Generate ``oceanflow/kernels/_gibbs.py``: the TEOS-10 Gibbs-function polynomials
that the temperature and pressure conversions of ``oceanflow.eos`` need.

The Gibbs function of seawater (IOC, SCOR and IAPSO 2010, "The international
thermodynamic equation of seawater - 2010" (TEOS-10 manual), appendix H;
IAPWS 2008 release on seawater, Feistel 2008; pure-water part IAPWS 2009
supplementary release, Feistel 2003) is written out here once, as its
published coefficients, in the reduced variables

    x = sqrt(SA / Su),  Su = 40 g kg-1 * 35.16504/35,   y = t / (40 degC),   z = p / (10^4 dbar)

    g(SA, t, p) = sum_ijk g_ijk x**i y**j z**k  +  x**2 ln(x) * sum_jk g_1jk y**j z**k   (J kg-1)

(``i`` the power of x; i = 1 is the logarithmic term, as in IAPWS 2008).  This
script differentiates it exactly (polynomial arithmetic on the coefficients)
and writes nested Horner expressions that numba compiles with every
coefficient a literal:

* ``entropy_part(x, y, z)``: specific entropy -dg/dT without its terms that
  depend on SA only (they cancel in the Newton iterations for potential
  temperature, and dropping them keeps digits); ``entropy_part_zerop(x, y)``
  the same at p = 0;
* ``gibbs_tt(x, y, z)``: d2g/dT2 (J kg-1 K-2); ``gibbs_tt_zerop(x, y)``;
* ``pot_enthalpy(x, y)``: potential enthalpy h0 = g - (T0 + t) dg/dT at
  p = 0 (J kg-1), whose x**2 ln(x) terms cancel exactly (g_100 = T0/40 * g_110);
  Conservative Temperature is h0 / cp0;
* from the 75-term specific volume of ``tools/generate_eos.py`` (Roquet et
  al. 2015) at SA = SSO, CT = 0: ``specvol_sso_0(z)`` (m3 kg-1) and its
  pressure integral ``enthalpy_sso_0(z)`` (J kg-1), the functions TEOS-10 uses
  to convert height to pressure and back.

The generated file is never edited by hand; change this script and run

    python tools/generate_gibbs.py            # rewrite the generated file
    python tools/generate_gibbs.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "oceanflow" / "kernels" / "_gibbs.py"

_spec = importlib.util.spec_from_file_location("generate_eos", Path(__file__).with_name("generate_eos.py"))
generate_eos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_eos)

#: TEOS-10 Gibbs function coefficients g_ijk (J kg-1): i power of x, j of y, k of z;
#: g_1jk multiply x**2 ln(x).  Pure water (i = 0): IAPWS 2009 / Feistel 2003;
#: saline part: IAPWS 2008 / Feistel 2008 (the values GSW uses in gsw_gibbs).
COEFFICIENTS = """
g000 101.342743139674   g001 100015.695367145   g002 -2544.5765420363   g003 284.517778446287
g004 -33.3146754253611   g005 4.20263108803084   g006 -0.546428511471039   g010 5.90578347909402
g011 -270.983805184062   g012 776.153611613101   g013 -196.51255088122   g014 28.9796526294175
g015 -2.13290083518327   g020 -12357.785933039   g021 1455.0364540468   g022 -756.558385769359
g023 273.479662323528   g024 -55.5604063817218   g025 4.34420671917197   g030 736.741204151612
g031 -672.50778314507   g032 499.360390819152   g033 -239.545330654412   g034 48.8012518593872
g035 -1.66307106208905   g040 -148.185936433658   g041 397.968445406972   g042 -301.815380621876
g043 152.196371733841   g044 -26.3748377232802   g050 58.0259125842571   g051 -194.618310617595
g052 120.520654902025   g053 -55.2723052340152   g054 6.48190668077221   g060 -18.9843846514172
g061 63.5113936641785   g062 -22.2897317140459   g063 8.17060541818112   g070 3.05081646487967
g071 -9.63108119393062   g100 5812.81456626732   g110 851.226734946706   g200 1416.27648484197
g201 -3310.49154044839   g202 384.794152978599   g203 -96.5324320107458   g204 15.8408172766824
g205 -2.62480156590992   g210 168.072408311545   g211 729.116529735046   g212 -343.956902961561
g213 124.687671116248   g214 -31.656964386073   g215 7.04658803315449   g220 880.031352997204
g221 -860.764303783977   g222 337.409530269367   g223 -178.314556207638   g224 44.2040358308
g225 -7.92001547211682   g230 -225.267649263401   g231 694.244814133268   g232 -204.889641964903
g233 113.561697840594   g234 -11.1282734326413   g240 91.4260447751259   g241 -297.728741987187
g242 74.726141138756   g243 -36.4872919001588   g250 -21.6603240875311   g260 2.13016970847183
g300 -2432.14662381794   g301 199.459603073901   g302 -52.2940909281335   g303 68.0444942726459
g304 -3.41251932441282   g310 -493.407510141682   g311 -175.292041186547   g312 83.1923927801819
g313 -29.483064349429   g320 -43.0664675978042   g321 383.058066002476   g322 -54.1917262517112
g323 25.6398487389914   g330 -10.0227370861875   g331 -460.319931801257   g340 0.875600661808945
g341 234.565187611355   g400 2025.80115603697   g401 -54.7919133532887   g402 -4.08193978912261
g403 -30.1755111971161   g410 543.835333000098   g411 -22.6683558512829   g420 -68.5572509204491
g430 49.3667694856254   g440 -17.1397577419788   g450 2.49697009569508   g500 -1091.66841042967
g501 36.0284195611086   g510 -196.028306689776   g600 374.60123787784   g610 36.7571622995805
g700 -48.5891069025409
"""

#: TEOS-10 constants (IOC et al. 2010, table D.5).
CONSTANTS = {
    "GSW_SFAC": "0.0248826675584615",  # 1/Su = 1/(40*(35.16504/35)), kg g-1
    "SSO": "35.16504",  # Standard Ocean Reference Salinity, g kg-1
    "UPS": "35.16504 / 35.0",  # g kg-1 per unit of practical salinity
    "CP0": "3991.86795711963",  # J kg-1 K-1, the "specific heat" of Conservative Temperature
    "T0": "273.15",  # K, Celsius zero
    "DB2PA": "1e4",  # Pa per dbar
}
T0 = 273.15
Y_SCALE = 0.025  # y = t / 40
Z_SCALE = 1e-4  # z = p / 10^4 dbar

Poly = dict[tuple[int, int, int], float]


def parse_coefficients(text: str = COEFFICIENTS) -> tuple[Poly, Poly]:
    """(polynomial part, logarithmic part): ``{(i, j, k): value}``; no key twice."""
    tokens = text.split()
    poly: Poly = {}
    log: Poly = {}
    for name, literal in zip(tokens[::2], tokens[1::2], strict=True):
        i, j, k = int(name[1]), int(name[2]), int(name[3])
        target, key = (log, (2, j, k)) if i == 1 else (poly, (i, j, k))
        if key in target:
            raise ValueError(f"coefficient {name} given twice")
        target[key] = float(literal)
    if len(tokens) % 2 or len(poly) + len(log) != 105:
        raise ValueError(f"expected 105 coefficients, got {len(poly) + len(log)}")
    return poly, log


def d_dy(poly: Poly, scale: float = 1.0) -> Poly:
    return {(i, j - 1, k): scale * j * c for (i, j, k), c in poly.items() if j > 0}


def at_zero_pressure(poly: Poly) -> Poly:
    return {key: c for key, c in poly.items() if key[2] == 0}


def add(*polys: Poly) -> Poly:
    out: Poly = {}
    for poly in polys:
        for key, c in poly.items():
            out[key] = out.get(key, 0.0) + c
    return {key: c for key, c in out.items() if c != 0.0}


def times_y(poly: Poly, scale: float) -> Poly:
    return {(i, j + 1, k): scale * c for (i, j, k), c in poly.items()}


def horner3(poly: Poly) -> str:
    """Nested Horner expression of ``poly`` in x (innermost), then y, then z."""
    z_terms = []
    for k in range(max(key[2] for key in poly) + 1):
        y_terms = []
        top_j = max((j for (_, j, kk) in poly if kk == k), default=-1)
        for j in range(top_j + 1):
            xs = sorted(i for (i, jj, kk) in poly if jj == j and kk == k)
            if not xs:
                y_terms.append("0")
                continue
            terms = [generate_eos._literal(poly[i, j, k]) if (i, j, k) in poly else "0" for i in range(xs[-1] + 1)]
            y_terms.append(_wrap(generate_eos._horner(terms, "x")))
        z_terms.append(_wrap(generate_eos._horner(y_terms, "y")) if y_terms else "0")
    return generate_eos._horner(z_terms, "z")


def _wrap(expr: str) -> str:
    return expr if expr.replace(".", "").replace("-", "").replace("e", "").isdigit() else f"({expr})"


def derived() -> dict[str, Poly]:
    """The polynomials written out, by function name."""
    g, log = parse_coefficients()
    g_t = d_dy(g, Y_SCALE)  # dg/dt without the log term, which is linear in y:
    log_t = d_dy(log, Y_SCALE)  # ... x**2 ln(x) * g_110 / 40, a function of SA only
    assert all(key[1:] == (0, 0) for key in log_t)
    entropy_part = {key: -c for key, c in g_t.items() if key[1:] != (0, 0)}
    g_tt = d_dy(g_t, Y_SCALE)
    # h0 = g - (T0 + 40 y) g_t at p = 0; the log terms: g_100 + g_110 y - (T0/40 + y) g_110 = g_100 - T0/40 g_110
    residual = log[2, 0, 0] - T0 * Y_SCALE * log[2, 1, 0]
    assert abs(residual) < 1e-12 * log[2, 0, 0], residual
    g0, g_t0 = at_zero_pressure(g), at_zero_pressure(g_t)
    h0 = add(g0, {key: -T0 * c for key, c in g_t0.items()}, times_y(g_t0, -1.0 / Y_SCALE))
    return {
        "entropy_part": entropy_part,
        "entropy_part_zerop": at_zero_pressure(entropy_part),
        "gibbs_tt": g_tt,
        "gibbs_tt_zerop": at_zero_pressure(g_tt),
        "pot_enthalpy": h0,
    }


def sso_0() -> tuple[list[float], list[float]]:
    """Coefficients in z of specvol(SSO, 0, p) and of enthalpy(SSO, 0, p) = int_0^p v dp' (J kg-1)."""
    v = generate_eos.parse_coefficients()  # (i: ys power, j: xs power, k: z power) -> literal
    consts = generate_eos.CONSTANTS
    xs = math.sqrt(float(consts["GSW_SFAC"]) * 35.16504 + float(consts["OFFSET"]))
    top = max(k for (_, _, k) in v)
    spec = [math.fsum(float(c) * xs**j for (i, j, kk), c in v.items() if i == 0 and kk == k) for k in range(top + 1)]
    # p = 10^4 z dbar = 10^8 z Pa: h = 10^8 * sum_k spec_k z**(k+1) / (k+1)
    enthalpy = [0.0] + [1e8 * c / (k + 1) for k, c in enumerate(spec)]
    return spec, enthalpy


_FUNCTIONS = {
    "entropy_part": ("x, y, z", "Specific entropy minus its SA-only terms (J kg-1 K-1)."),
    "entropy_part_zerop": ("x, y", "``entropy_part`` at p = 0 (J kg-1 K-1)."),
    "gibbs_tt": ("x, y, z", "d2g/dT2 (J kg-1 K-2)."),
    "gibbs_tt_zerop": ("x, y", "``gibbs_tt`` at p = 0 (J kg-1 K-2)."),
    "pot_enthalpy": ("x, y", "Potential enthalpy h0 (J kg-1) at potential temperature y = pt/40."),
}


def render() -> str:
    """The full text of the generated module."""
    polys = derived()
    spec, enthalpy = sso_0()
    blocks = []
    for name, (args, doc) in _FUNCTIONS.items():
        blocks.append(
            f'@njit(inline="always")\ndef {name}({args}):\n    """{doc}"""\n    return {horner3(polys[name])}\n'
        )
    lit = generate_eos._literal
    blocks.append(
        '@njit(inline="always")\ndef specvol_sso_0(z):\n    """Specific volume at SA = SSO, CT = 0 (m3 kg-1)."""\n'
        f"    return {generate_eos._horner([lit(c) for c in spec], 'z')}\n"
    )
    blocks.append(
        '@njit(inline="always")\ndef enthalpy_sso_0(z):\n    """Enthalpy at SA = SSO, CT = 0 (J kg-1)."""\n'
        f"    return {generate_eos._horner(['0'] + [lit(c) for c in enthalpy[1:]], 'z')}\n"
    )
    constants = "\n".join(f"{name} = {value}" for name, value in CONSTANTS.items())
    functions = "\n\n".join(blocks)
    return f'''\
# GENERATED by tools/generate_gibbs.py -- DO NOT EDIT BY HAND.
# Regenerate with:  python tools/generate_gibbs.py
# (tests/test_eos_conversions.py checks that this file is what the generator writes).
"""TEOS-10 Gibbs-function polynomials for the conversions of ``oceanflow.eos``.

Reduced variables: x = sqrt(GSW_SFAC*SA), y = t/40 (t in degC), z = p*1e-4
(p sea pressure in dbar).  Derived exactly from the published TEOS-10 Gibbs
function (IOC et al. 2010, appendix H) and, for ``*_sso_0``, the 75-term
specific volume (Roquet et al. 2015); see tools/generate_gibbs.py.  Every
function is inlined into its caller, with all coefficients literals.
"""

from ._declare import njit

{constants}
Y_SCALE = 0.025
Z_SCALE = 1e-4


{functions}'''


def main(argv=None) -> int:
    return generate_eos.write_or_check(TARGET, render(), "generate_gibbs.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
