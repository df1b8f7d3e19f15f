"""Shared by the eos tests: GSW's check values and the comparison with gsw on random inputs.

GSW's check values ship in the gsw wheel (``gsw/tests/gsw_cv_v3_0.npz``);
the tests that import this module skip without gsw.
"""

import os

import numpy as np
import pytest

gsw = pytest.importorskip("gsw")

CV = np.load(os.path.join(os.path.dirname(gsw.__file__), "tests", "gsw_cv_v3_0.npz"))
CAST = (CV["SA_chck_cast"], CV["CT_chck_cast"], CV["p_chck_cast"])


def args(name, SA, CT, p):
    """The arguments of eos/gsw function ``name``: sigma and spiciness take no pressure."""
    return (SA, CT) if name.startswith(("sigma", "spiciness")) else (SA, CT, p)


def assert_check_value(got, key):
    """GSW's rule: NaN in the same places, elsewhere |computed - check value| < key_ca."""
    expected, tol = CV[key], CV[key + "_ca"]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    assert np.all(np.abs(got[ok] - expected[ok]) < tol), (key, np.abs(got[ok] - expected[ok]).max(), tol)


def random(n, dtype="float64", seed=0):
    """The oceanographic range: SA 0-42 g/kg, CT -2-35 degC, p 0-6000 dbar."""
    rng = np.random.default_rng(seed)
    SA = rng.uniform(0, 42, n).astype(dtype)
    CT = rng.uniform(-2, 35, n).astype(dtype)
    p = rng.uniform(0, 6000, n).astype(dtype)
    return SA, CT, p


def assert_close_to_gsw(got, name, SA, CT, p, rtol):
    ref = getattr(gsw, name)(*args(name, *(np.asarray(a, "float64") for a in (SA, CT, p))))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.nanmax(np.abs(ref)))
