"""Decompositions against independent numpy/scipy oracles, closed forms, limits and properties."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

import kcollapse as kc
from kcollapse import theory as th
from kcollapse.theory import TheoryNotApplicable

# ---------------------------------------------------------------- independent numpy oracle


def np_kappa(lam, ridge, T):
    lam = np.asarray(lam, float)
    d = lam.size
    if ridge == 0 and T >= d:
        return 0.0

    def g(k):
        return math.fsum([T - d, *(k / (lam + k))]) / T - ridge / k

    lo = ridge if ridge > 0 else lam.min() * min(1.0, (d - T) / T) / 2
    return brentq(g, lo, (ridge + lam.sum() / T) * (1 + 1e-9), xtol=1e-300, rtol=1e-15)


def np_cor47(lam, c, n, T, T0, sigma, sigma0, ridge, d_shift=0.0):
    """Demystified eqs. (18)-(19) and (23), typed directly from shared/THEORY.md §1.3, §2.3."""
    lam, c = np.asarray(lam, float), np.asarray(c, float)
    d = lam.size
    k = np_kappa(lam, ridge, T)
    df2 = np.sum(lam**2 / (lam + k) ** 2)
    bias = k**2 * np.sum(lam * c**2 / (lam + k) ** 2) / (1 - df2 / T)
    var = sigma**2 * (df2 / T) / (1 - df2 / T)
    D0 = T0 - d - d_shift
    rho = df2 / D0 + k**2 * np.sum(1 / (lam + k) ** 2) / D0 * df2 / (T - df2)
    return bias, var, n * sigma0**2 * rho


def np_eq22(lam, c, n, T, T0, sigma, sigma0, ridge):
    """Eq. (22) rho with kappa0 = kappa(0, T0) (one reused design, T0 < d) and the fixed-design bias
    p-form written out for a general spectrum (docs/theory-notes.md): typed independently."""
    lam, c = np.asarray(lam, float), np.asarray(c, float)
    k = np_kappa(lam, ridge, T)
    k0 = np_kappa(lam, 0.0, T0)
    df2 = np.sum(lam**2 / (lam + k) ** 2)
    df2_0 = np.sum(lam**2 / (lam + k0) ** 2)
    D0 = T0 - df2_0
    rho = np.sum(lam**4 / ((lam + k0) ** 2 * (lam + k) ** 2)) / D0 + k**2 * np.sum(
        lam**2 / ((lam + k0) ** 2 * (lam + k) ** 2)
    ) / D0 * df2 / (T - df2)
    return n * sigma0**2 * rho


# ---------------------------------------------------------------- oracles


@pytest.mark.parametrize(
    "n,T,T0,sigma,sigma0,ridge",
    [(3, 700.0, 450.0, 0.3, 0.7, 0.02), (1, 90.0, 333.0, 1.0, 1.0, 1e-4), (7, 2000.0, 1234.0, 0.0, 0.5, 0.5)],
)
def test_chain_error_matches_numpy_oracle_cor47(n, T, T0, sigma, sigma0, ridge):
    s = kc.spectra.power_law(250, beta=1.7, r=0.6)
    lam, c = np.asarray(s.eigenvalues), np.asarray(s.coefficients)
    for finite, shift in [(False, 0.0), (True, 1.0)]:
        got = th.chain_error(s, n, T, T0, sigma, sigma0, ridge, finite_size=finite)
        b, v, col = np_cor47(lam, c, n, T, T0, sigma, sigma0, ridge, d_shift=shift)
        assert float(got.bias) == pytest.approx(b, rel=1e-8)
        assert float(got.variance) == pytest.approx(v, rel=1e-8, abs=1e-300)
        assert float(got.collapse) == pytest.approx(col, rel=1e-8)
        assert float(got.total) == pytest.approx(b + v + col, rel=1e-8)


def test_collapse_matches_numpy_eq22_fixed_design():
    s = kc.spectra.power_law(200, beta=1.3, r=0.4)
    lam, c = np.asarray(s.eigenvalues), np.asarray(s.coefficients)
    for ridge, T in [(1e-3, 500.0), (0.2, 150.0)]:
        got = th.chain_error(s, 4, T, 77.0, 0.2, 0.9, ridge, design="fixed")
        assert float(got.collapse) == pytest.approx(np_eq22(lam, c, 4, T, 77.0, 0.2, 0.9, ridge), rel=1e-8)
        assert float(th.collapse_rho(s, T, 77.0, ridge)) == pytest.approx(
            np_eq22(lam, c, 1, T, 77.0, 0.2, 1.0, ridge), rel=1e-8
        )


def test_ridgeless_is_theorem_4_1_exact():
    s = kc.spectra.power_law(60, beta=2.0, r=0.3)
    for n, T, T0 in [(0, 80, 90), (5, 62, 200), (10, 1000, 62)]:
        got = th.chain_error(s, n, T, T0, 0.4, 0.8, 0.0, design="fresh")
        want = 0.16 * 60 / (T - 61) + n * 0.64 * 60 / (T0 - 61)
        assert float(got.total) == pytest.approx(want, rel=1e-12)
        assert float(th.ols_chain_exact(n, 60, T, T0, 0.4, 0.8)) == pytest.approx(want, rel=1e-12)


def test_isotropic_closed_forms_equal_general_path():
    d = 120
    s = kc.spectra.isotropic(d)
    for ridge, T, T0 in [(1e-3, 200.0, 300.0), (0.5, 60.0, 480.0), (0.0, 80.0, 150.0)]:
        phi, phi0 = d / T, d / T0
        clean_g = th.clean_risk(s, T, ridge, 0.3)
        clean_c = th.clean_risk_isotropic(ridge, phi, 0.3)
        if ridge > 0 or T < d:
            assert float(clean_g.total) == pytest.approx(float(clean_c.total), rel=1e-10)
        if ridge > 0:
            rho_g = th.collapse_rho(s, T, T0, ridge)
            assert float(rho_g) == pytest.approx(float(th.rho_isotropic(ridge, phi, phi0)), rel=1e-10)
    # Theorems 4.8 / 4.9 with lambda > 0 (shared/THEORY.md §2.4) against the general engine.
    for ridge, T, T0, n in [(1e-2, 400.0, 60.0, 1), (0.3, 200.0, 80.0, 3), (1e-4, 90.0, 40.0, 6)]:
        phi, phi0 = d / T, d / T0
        for design, indep in [("fixed", False), ("fresh", True)]:
            g = th.chain_error(s, n, T, T0, 0.2, 0.0, ridge, design=design)
            c = th.overparameterised_isotropic(n, ridge, phi, phi0, 0.2, independent=indep)
            assert float(g.total) == pytest.approx(float(c.total), rel=1e-10)


def test_clean_risk_limits():
    s = kc.spectra.power_law(150, beta=1.5, r=0.5)
    # lambda -> infinity: the null predictor, error ||w0||_Sigma^2 = 1, whatever n.
    for n in (0, 4):
        e = th.chain_error(s, n, 300.0, 400.0, 0.5, 0.5, 1e9)
        assert float(e.total) == pytest.approx(1.0, rel=1e-6)
    # n = 0 is the clean risk.
    e0 = th.chain_error(s, 0, 300.0, 400.0, 0.5, 0.9, 0.01)
    clean = th.clean_risk(s, 300.0, 0.01, 0.5)
    assert float(e0.total) == pytest.approx(float(clean.total), rel=1e-14)
    assert float(e0.collapse) == 0.0


def test_plateau_T_to_infinity():
    d, T0, sigma0 = 300, 600, 0.2
    s = kc.spectra.isotropic(d)
    phi0 = d / T0
    for n in (1, 3, 10):
        e = th.chain_error(s, n, 1e12, T0, 0.1, sigma0, 1e-9)
        assert float(e.total) == pytest.approx(n * sigma0**2 * phi0 / (1 - phi0), rel=1e-6)


def test_gerstgrasser_replace_vs_accumulate():
    n = jnp.arange(1, 11)
    rep, acc = th.replace_vs_accumulate(n, 32, 100, 1.0)
    unit = 32 / 67
    np.testing.assert_allclose(np.asarray(rep), unit * np.arange(1, 11), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(acc), unit * np.cumsum(1.0 / np.arange(1, 11) ** 2), rtol=1e-12)
    assert float(acc[-1]) <= math.pi**2 / 6 * unit
    np.testing.assert_allclose(np.asarray(th.accumulate_ols_exact(np.arange(1, 11), 32, 100, 1.0)), np.asarray(acc), rtol=1e-12)


def test_accumulate_downstream_variance_oracle():
    # n = 0: exact d/(T-d-1). n >= 1: root of the leave-one-out equation, by brentq (independent).
    assert float(th.accumulate_downstream_variance(0, 50, 80, 100)) == pytest.approx(50 / 29, rel=1e-14)
    for n, d, T, T0 in [(1, 50, 80, 100), (4, 60, 70, 200)]:
        delta = brentq(lambda x: n * T0 * x / (1 + n * x) + T * x / (1 + x) - d, 1e-12, 10.0, xtol=1e-300, rtol=1e-15)
        # V = -d delta/dt via a central difference of the root in t (independent of the closed form).
        def root(t):
            return brentq(lambda x: n * T0 * x / (1 + n * x) + t * T * x / (1 + t * x) - d, 1e-12, 10.0, xtol=1e-300, rtol=1e-15)

        h = 1e-5
        want = -(root(1 + h) - root(1 - h)) / (2 * h)
        assert delta > 0
        assert float(th.accumulate_downstream_variance(n, d, T, T0)) == pytest.approx(want, rel=1e-7)


def test_power_law_exponents_values():
    e = th.power_law_exponents(2.0, 0.375, a=0.0, b=0.5)
    assert float(e.ell_crit) == pytest.approx(0.8)
    assert float(e.c) == pytest.approx(0.6)
    assert float(e.ell_star) == pytest.approx(0.4)
    assert float(e.rate_synthetic) == pytest.approx(0.3)
    assert float(e.rate_classical) == pytest.approx(0.6 + 0.5 - 1)
    assert not bool(e.diverges)  # b = 0.5 >= a + 1 - c = 0.4
    assert bool(th.power_law_exponents(2.0, 0.375, a=0.0, b=0.3).diverges)
    # r > 1 saturates (r_bar = min(r, 1)).
    assert float(th.power_law_exponents(1.5, 3.0).ell_crit) == pytest.approx(1.5 / 4)


def test_power_law_curve_slope():
    T = jnp.asarray([1e6, 1e7])
    E = th.power_law_error_curve(T, beta=2.0, r=0.375, ell=0.8, n=1, sigma=0.0, sigma0=1.0, T0=600, d=300)
    slope = float(jnp.log(E[1] / E[0]) / jnp.log(10.0))
    assert slope == pytest.approx(1 / (2 * 2.0 * 0.375 + 1), rel=1e-3)  # grows like T^{ell/beta}


# ---------------------------------------------------------------- dispatch and validation


def test_predict_chain_dispatch_and_errors():
    s = kc.spectra.isotropic(40)
    base = dict(samples_per_generation=80, downstream_samples=60, n_generations=2, generator_noise=0.3, label_noise=0.1)
    res = th.predict_chain(s, kc.ChainConfig(**base), [0.0, 0.1], finite_size=True)
    assert res.theorem_per_ridge == ("Demystified Thm 4.1 (exact)", "Demystified Cor 4.7 (T0-d-1)")
    assert res.total.shape == (3, 2) and not res.heuristic
    with pytest.raises(TheoryNotApplicable, match="generator_ridge"):
        th.predict_chain(s, kc.ChainConfig(**base, generator_ridge=0.1))
    with pytest.raises(TheoryNotApplicable, match="mix"):
        th.predict_chain(s, kc.ChainConfig(**base, mode="mix", synthetic_fraction=0.5))
    with pytest.raises(TheoryNotApplicable, match="fresh generator designs"):
        th.predict_chain(s, kc.ChainConfig(**{**base, "samples_per_generation": 20}))
    with pytest.raises(TheoryNotApplicable, match="design='fixed'"):
        th.predict_chain(s, kc.ChainConfig(**base, mode="accumulate"))
    with pytest.raises(TheoryNotApplicable, match="ridge > 0"):
        th.predict_chain(s, kc.ChainConfig(**base, mode="accumulate", design="fixed"), [0.1])
    assert issubclass(TheoryNotApplicable, ValueError)
    with pytest.raises(TheoryNotApplicable):
        th.chain_error(s, 2, 60, 20, 0.1, 0.3, 0.1, design="fresh")
    with pytest.raises(ValueError, match="ridge"):
        th.chain_error(s, 2, 60, 80, 0.1, 0.3, -0.1)
    with pytest.raises(ValueError, match="design"):
        th.chain_error(s, 2, 60, 80, 0.1, 0.3, 0.1, design="shared")
    # n_max = 0 is always the clean risk, even for configurations no collapse theorem covers.
    clean = th.predict_chain(s, kc.ChainConfig(**{**base, "n_generations": 0}, generator_ridge=1.0), [0.1])
    assert clean.theorem == "Demystified Prop 4.5 (clean risk)"


def test_predict_chain_matches_chain_error_and_per_mode_sums():
    s = kc.spectra.power_law(80, beta=1.5, r=0.5)
    cfg = kc.ChainConfig(samples_per_generation=50, downstream_samples=120, n_generations=4, generator_noise=0.0, label_noise=0.3)
    res = th.predict_chain(s, cfg, [1e-3, 0.1], per_mode=True)
    assert res.per_mode.shape == (5, 2, 80)
    np.testing.assert_allclose(res.per_mode.sum(-1), res.total, rtol=1e-12)
    for n in range(5):
        for j, r in enumerate([1e-3, 0.1]):
            e = th.chain_error(s, n, 120, 50, 0.3, 0.0, r, design="fresh")
            assert float(e.total) == pytest.approx(res.total[n, j], rel=1e-12)


def test_chain_error_jit_vmap_grad():
    s = kc.spectra.power_law(100, beta=2.0, r=0.375)

    def total(ridge, T, n):
        return th.chain_error(s, n, T, 300.0, 1.0, 1.0, ridge).total

    ridges = jnp.asarray([1e-4, 1e-2, 1.0])
    Ts = jnp.asarray([100.0, 1000.0, 1e4])
    ns = jnp.asarray([0, 2, 5])
    f = jax.jit(jax.vmap(total))
    batched = np.asarray(f(ridges, Ts, ns))
    looped = np.asarray([float(total(ridges[i], Ts[i], int(ns[i]))) for i in range(3)])
    np.testing.assert_allclose(batched, looped, rtol=1e-12)
    f(ridges * 2, Ts + 1, ns + 1).block_until_ready()
    assert f._cache_size() == 1
    g = float(jax.grad(total)(0.01, 1000.0, 3))
    h = 1e-7
    fd = (float(total(0.01 + h, 1000.0, 3)) - float(total(0.01 - h, 1000.0, 3))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-5)


# ---------------------------------------------------------------- properties


@given(
    beta=st.floats(1.05, 3.0),
    r=st.floats(0.1, 1.5),
    log_ridge=st.floats(-6, 1),
    T=st.floats(20.0, 5000.0),
    T0=st.floats(10.0, 2000.0),
    sigma=st.floats(0.0, 2.0),
    sigma0=st.floats(0.0, 2.0),
    design=st.sampled_from(["fixed", "fresh"]),
)
def test_properties_nonnegative_and_nondecreasing_in_n(beta, r, log_ridge, T, T0, sigma, sigma0, design):
    s = kc.spectra.power_law(60, beta=beta, r=r)
    if design == "fresh" and T0 < 60:
        sigma0 = 0.0
    ridge = 10.0**log_ridge
    totals = [float(th.chain_error(s, n, T, T0, sigma, sigma0, ridge, design=design).total) for n in range(5)]
    assert all(t >= 0 for t in totals)
    assert all(b >= a * (1 - 1e-12) for a, b in zip(totals, totals[1:]))


def test_generation_vector_equals_scalar_calls():
    s = kc.spectra.power_law(70, beta=1.5, r=0.5)
    for design, T0, sigma0 in [("fresh", 40.0, 0.0), ("fixed", 40.0, 0.5), ("fresh", 150.0, 0.5)]:
        ns = jnp.arange(7)
        vec = th.chain_error(s, ns, 90.0, T0, 0.3, sigma0, 0.05, design=design)
        modes = th.chain_error(s, ns, 90.0, T0, 0.3, sigma0, 0.05, design=design, per_mode=True)
        for n in range(7):
            one = th.chain_error(s, n, 90.0, T0, 0.3, sigma0, 0.05, design=design)
            for a, b, m in zip(vec, one, modes):
                assert float(a[n]) == pytest.approx(float(b), rel=1e-12)
                assert float(m[n].sum()) == pytest.approx(float(b), rel=1e-12)
