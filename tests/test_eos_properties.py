"""oceanflow.eos properties (sound speed, kappa, enthalpy, cabbeling, thermobaric, spiciness)
against TEOS-10: GSW's published check values, gsw itself, and identities between
the functions (finite differences of density, alpha and beta)."""

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import oceanflow
from oceanflow import eos

gsw = pytest.importorskip("gsw")
from teos10_oracle import CAST  # noqa: E402
from teos10_oracle import args as _args  # noqa: E402
from teos10_oracle import assert_check_value as _assert_check_value  # noqa: E402
from teos10_oracle import assert_close_to_gsw as _assert_close_to_gsw  # noqa: E402
from teos10_oracle import random as _random  # noqa: E402

THREE_ARGS = ["sound_speed", "kappa", "enthalpy", "cabbeling", "thermobaric"]
SPICINESS = ["spiciness0", "spiciness1", "spiciness2"]
ALL = THREE_ARGS + SPICINESS


# ---------------------------------------------------------------- TEOS-10 check values


@pytest.mark.parametrize("name", ALL)
def test_check_values(name):
    _assert_check_value(getattr(eos, name)(*_args(name, *CAST)), name)


def test_check_values_dask_dataarray():
    cast = [xr.DataArray(a, dims=("z", "cast")).chunk({"z": 10}) for a in CAST]
    for name in ALL:
        got = getattr(eos, name)(*_args(name, *cast))
        assert got.chunks == cast[0].chunks
        _assert_check_value(got.values, name)


# ---------------------------------------------------------------- gsw on random input


@pytest.mark.parametrize("name", ALL)
def test_matches_gsw_float64(name):
    SA, CT, p = _random(20_000)
    got = getattr(eos, name)(*_args(name, SA, CT, p))
    assert got.dtype == np.float64
    _assert_close_to_gsw(got, name, SA, CT, p, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_float32_in_float32_out(name):
    SA, CT, p = _random(5_000, dtype="float32", seed=2)
    got = getattr(eos, name)(*_args(name, SA, CT, p))
    assert got.dtype == np.float32
    # computed in float64 and rounded once: within one float32 rounding of gsw
    _assert_close_to_gsw(got, name, SA, CT, p, rtol=1.5e-7)


def test_both_threads_give_the_same_result():
    SA, CT, p = _random(50_001, seed=3)
    with oceanflow.set_options(num_threads=1):
        one = [eos.cabbeling(SA, CT, p), eos.spiciness1(SA, CT)]
    with oceanflow.set_options(num_threads=2, min_elements_per_thread=1000):
        two = [eos.cabbeling(SA, CT, p), eos.spiciness1(SA, CT)]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_scalars_give_scalars():
    got = eos.sound_speed(35.0, 10.0, 1000.0)
    assert np.ndim(got) == 0 and isinstance(got, np.floating)
    assert abs(got - gsw.sound_speed(35.0, 10.0, 1000.0)) < 1e-9
    assert eos.spiciness0(np.zeros(0), np.zeros(0)).shape == (0,)


# ---------------------------------------------------------------- identities (no gsw)


def test_kappa_is_one_over_rho_c_squared():
    """Isentropic compressibility and sound speed come from the same dv/dP: kappa rho c**2 = 1."""
    SA, CT, p = _random(10_000, seed=4)
    product = eos.kappa(SA, CT, p) * eos.rho(SA, CT, p) * eos.sound_speed(SA, CT, p) ** 2
    np.testing.assert_allclose(product, 1.0, rtol=1e-13)


def test_enthalpy_derivatives():
    """dh/dP at constant SA, CT is specific volume (P in Pa); at p = 0, h = cp0 CT."""
    SA, CT, p = _random(2_000, seed=5)
    dp = 1.0  # dbar
    dh_dP = (eos.enthalpy(SA, CT, p + dp) - eos.enthalpy(SA, CT, p - dp)) / (2 * dp * 1e4)
    np.testing.assert_allclose(dh_dP, eos.specvol(SA, CT, p), rtol=1e-9)
    np.testing.assert_allclose(eos.enthalpy(SA, CT, 0.0), 3991.86795711963 * CT, rtol=1e-15, atol=1e-10)


def test_cabbeling_and_thermobaric_from_alpha_and_beta():
    """The definitions, by central differences of eos.alpha and eos.beta:
    cabbeling = alpha_CT + 2 (alpha/beta) alpha_SA - (alpha/beta)**2 beta_SA,
    thermobaric = alpha_P - (alpha/beta) beta_P (P in Pa)."""
    rng = np.random.default_rng(6)
    SA, CT, p = rng.uniform(30, 38, 500), rng.uniform(0, 25, 500), rng.uniform(0, 5000, 500)
    a, b = eos.alpha(SA, CT, p), eos.beta(SA, CT, p)
    h = {"SA": 1e-3, "CT": 1e-3, "p": 1.0}

    def d(func, var):
        up = {"SA": SA, "CT": CT, "p": p}
        down = dict(up)
        up[var], down[var] = up[var] + h[var], down[var] - h[var]
        return (func(**up) - func(**down)) / (2 * h[var])

    cab = d(eos.alpha, "CT") + 2 * (a / b) * d(eos.alpha, "SA") - (a / b) ** 2 * d(eos.beta, "SA")
    np.testing.assert_allclose(eos.cabbeling(SA, CT, p), cab, rtol=1e-6)
    thermo = (d(eos.alpha, "p") - (a / b) * d(eos.beta, "p")) / 1e4
    np.testing.assert_allclose(eos.thermobaric(SA, CT, p), thermo, rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_spiciness_definition_along_isopycnals(n):
    """McDougall and Krzysik (2015) define spiciness{n} so that along an isopycnal of
    sigma{n}, d(spiciness)/rho = beta dSA + alpha dCT = 2 alpha dCT (at 1000 n dbar);
    their polynomial meets it to ~1e-5."""
    sigma, spiciness, p_ref = getattr(eos, f"sigma{n}"), getattr(eos, f"spiciness{n}"), 1000.0 * n
    for SA0, CT0 in [(35.0, 10.0), (34.5, 2.0), (36.5, 20.0), (34.0, 25.0), (20.0, 5.0)]:
        CT = np.linspace(CT0 - 2.0, CT0 + 2.0, 201)
        SA = np.full_like(CT, SA0)
        for _ in range(30):  # Newton along CT = const for sigma_n(SA, CT) = sigma_n(SA0, CT0)
            SA = SA - (sigma(SA, CT) - sigma(SA0, CT0)) / (eos.beta(SA, CT, p_ref) * eos.rho(SA, CT, p_ref))
        slope = np.gradient(spiciness(SA, CT), CT)[1:-1]
        expected = (2.0 * eos.rho(SA, CT, p_ref) * eos.alpha(SA, CT, p_ref))[1:-1]
        np.testing.assert_allclose(slope, expected, rtol=1e-4)


# ---------------------------------------------------------------- NaN, dask, xarray


@pytest.mark.parametrize("name", ALL)
def test_nan_propagates(name):
    SA, CT, p = _random(8, seed=7)
    SA[1], CT[3], p[5] = np.nan, np.nan, np.nan
    expected = np.zeros(8, bool)
    expected[[1, 3] if name.startswith("spiciness") else [1, 3, 5]] = True
    np.testing.assert_array_equal(np.isnan(getattr(eos, name)(*_args(name, SA, CT, p))), expected)


@pytest.mark.parametrize("name", ALL)
def test_dask_one_task_per_chunk_and_same_values(name):
    rng = np.random.default_rng(8)
    SA, CT = rng.uniform(33, 37, (6, 4, 5)), rng.uniform(-1, 28, (6, 4, 5))
    p = np.linspace(0, 5000, 6)
    fields = [xr.DataArray(a, dims=("z", "y", "x")).chunk({"z": 2, "y": 2}) for a in (SA, CT)]
    p_da = xr.DataArray(p, dims="z").chunk({"z": 2})
    lazy = getattr(eos, name)(*_args(name, *fields, p_da))
    layers = lazy.data.__dask_graph__().layers
    kernel = [len(layer) for key, layer in layers.items() if key.startswith(f"eos-{name}")]
    assert kernel == [lazy.data.npartitions] == [6]
    eager = getattr(eos, name)(*_args(name, SA, CT, p[:, None, None]))
    np.testing.assert_array_equal(lazy.values, eager)  # same kernel, same rounding
    on_dask = getattr(eos, name)(*_args(name, dsa.from_array(SA, chunks=3), CT, p[:, None, None]))
    assert isinstance(on_dask, dsa.Array)
    np.testing.assert_array_equal(dask.compute(on_dask)[0], eager)


def test_dataarrays_broadcast_by_name():
    rng = np.random.default_rng(9)
    SA = xr.DataArray(rng.uniform(33, 37, (3, 4)), dims=("z", "x"))
    CT = xr.DataArray(rng.uniform(0, 20, (4, 3)), dims=("x", "z"))
    p = xr.DataArray([0.0, 1000.0, 4000.0], dims="z")
    got = eos.thermobaric(SA, CT, p)
    assert got.dims == ("z", "x")
    ref = gsw.thermobaric(SA.values, CT.values.T, p.values[:, None])
    np.testing.assert_allclose(got.values, ref, rtol=1e-12)


EXPECTED_ATTRS = {
    "sound_speed": ("m s-1", "speed_of_sound_in_sea_water"),
    "kappa": ("Pa-1", None),
    "enthalpy": ("J kg-1", None),
    "cabbeling": ("K-2", None),
    "thermobaric": ("K-1 Pa-1", None),
    **{name: ("kg m-3", None) for name in SPICINESS},
}


@pytest.mark.parametrize("name", ALL)
def test_dataarray_attrs(name):
    SA = xr.DataArray([35.0, 34.0], dims="z", attrs={"units": "g/kg"})
    got = getattr(eos, name)(*_args(name, SA, 5.0, 100.0))
    units, standard_name = EXPECTED_ATTRS[name]
    assert got.name == name
    assert got.attrs["units"] == units
    assert got.attrs.get("standard_name") == standard_name
    assert got.attrs["long_name"]


@pytest.mark.parametrize("name", ["sound_speed", "spiciness0"])
def test_practical_salinity_and_depth_are_refused(name):
    """Declared meaning (issue 9) holds for the properties too."""
    SP = xr.DataArray([35.0], dims="z", attrs={"standard_name": "sea_water_practical_salinity", "units": "1"})
    with pytest.raises(ValueError, match="SA_from_SP"):
        getattr(eos, name)(*_args(name, SP, 10.0, 100.0))
    if name == "sound_speed":
        depth = xr.DataArray([100.0], dims="z", attrs={"units": "m"})
        with pytest.raises(ValueError, match="p_from_z"):
            eos.sound_speed(35.0, 10.0, depth)
