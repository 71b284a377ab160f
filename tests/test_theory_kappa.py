"""kappa(lambda, T) against a bracketing root-finder, implicit gradients, batching, compilation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

from kcollapse.theory import (
    degrees_of_freedom,
    effective_ridge,
    effective_ridge_derivative,
    effective_ridge_isotropic,
)


def kappa_brentq(lam, ridge, T):
    """Independent reference: brentq on the residual in the form (T - d + sum k/(l+k))/T - ridge/k.

    Each summand k/(l_i + k) is accurate to machine precision, and math.fsum adds them exactly,
    so the residual has no cancellation beyond the conditioning of the problem itself.
    """
    lam = np.asarray(lam, dtype=np.float64)
    d = lam.size
    rank = int(np.sum(lam > 0))
    if ridge == 0 and T >= rank:
        return 0.0

    def g(k):
        return math.fsum([T - d, *(k / (lam + k))]) / T - ridge / k

    lo = ridge if ridge > 0 else lam[lam > 0].min() * min(1.0, (rank - T) / T) / 2
    hi = (ridge + lam.sum() / T) * (1 + 1e-9)
    assert g(lo) <= 0 <= g(hi)
    return brentq(g, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=1000)


def wide_spectrum(d, rng):
    lam = 10.0 ** rng.uniform(-12, 0, d)
    lam[0] = 1.0
    if d > 1:
        lam[-1] = 1e-12
    return lam


@pytest.mark.parametrize("d", [1, 7, 300, 100_000])
def test_kappa_matches_brentq(d):
    rng = np.random.default_rng(d)
    lam = wide_spectrum(d, rng)
    f = jax.jit(effective_ridge)
    worst = 0.0
    Ts = sorted({0.5, max(1.0, 0.3 * d), max(1.0, d - 1.0), float(d), 3.0 * d, 1e7})
    for ridge in [0.0, 1e-14, 1e-8, 1e-3, 1.0, 100.0]:
        for T in Ts:
            got = float(f(jnp.asarray(lam), ridge, T))
            want = kappa_brentq(lam, ridge, T)
            if want == 0.0:
                assert got == 0.0
                continue
            worst = max(worst, abs(got - want) / want)
    assert worst <= 1e-10


@given(
    logs=st.lists(st.floats(-12, 0), min_size=1, max_size=40),
    log_ridge=st.one_of(st.just(None), st.floats(-12, 2)),
    T=st.floats(0.3, 200.0),
)
def test_kappa_matches_brentq_hypothesis(logs, log_ridge, T):
    lam = 10.0 ** np.asarray(logs)
    ridge = 0.0 if log_ridge is None else 10.0**log_ridge
    got = float(effective_ridge(jnp.asarray(lam), ridge, T))
    want = kappa_brentq(lam, ridge, T)
    if want == 0.0:
        assert got == 0.0
    else:
        assert abs(got - want) <= 1e-10 * want


def test_kappa_zero_eigenvalues_and_lambda_zero():
    lam = jnp.asarray([1.0, 0.5, 0.0, 0.0])
    assert float(effective_ridge(lam, 0.0, 2.0)) == 0.0  # T >= rank = 2
    k = float(effective_ridge(lam, 0.0, 1.0))  # df_1(k) = 1
    assert abs(1.0 / (1.0 + k) + 0.5 / (0.5 + k) - 1.0) < 1e-14


@pytest.mark.parametrize("ridge", [0.0, 1e-4, 0.3, 5.0])
@pytest.mark.parametrize("phi", [0.2, 0.99, 1.0, 1.5, 4.0])
def test_isotropic_closed_form_equals_general_path(ridge, phi):
    d = 200
    T = d / phi
    general = float(effective_ridge(jnp.ones(d), ridge, T))
    closed = float(effective_ridge_isotropic(ridge, phi))
    assert abs(general - closed) <= 1e-12 * max(closed, 1e-300) or (closed == 0.0 and general == 0.0)


@pytest.mark.parametrize("ridge", [1e-6, 1e-2, 1.0])
@pytest.mark.parametrize("T", [30.0, 150.0, 1000.0])
def test_grad_matches_implicit_derivative(ridge, T):
    lam = jnp.asarray(np.arange(1, 101, dtype=np.float64) ** -1.5)
    grad = jax.grad(effective_ridge, argnums=1)(lam, ridge, T)
    kappa = effective_ridge(lam, ridge, T)
    df2 = float(np.sum((np.asarray(lam) / (np.asarray(lam) + float(kappa))) ** 2))
    assert abs(float(grad) - 1.0 / (1.0 - df2 / T)) <= 1e-10 * float(grad)
    assert float(grad) == pytest.approx(float(effective_ridge_derivative(lam, kappa, T)), rel=1e-12)


def test_grad_in_T_and_spectrum_matches_finite_differences():
    lam = np.arange(1, 51, dtype=np.float64) ** -2.0
    ridge, T = 1e-3, 40.0
    gT = float(jax.grad(effective_ridge, argnums=2)(jnp.asarray(lam), ridge, T))
    h = 1e-4
    fd = (kappa_brentq(lam, ridge, T + h) - kappa_brentq(lam, ridge, T - h)) / (2 * h)
    assert gT == pytest.approx(fd, rel=1e-6)
    glam = np.asarray(jax.grad(effective_ridge, argnums=0)(jnp.asarray(lam), ridge, T))
    e = np.zeros_like(lam)
    e[3] = 1e-6
    fd3 = (kappa_brentq(lam + e, ridge, T) - kappa_brentq(lam - e, ridge, T)) / 2e-6
    assert glam[3] == pytest.approx(fd3, rel=1e-5)


def test_vmapped_equals_looped_and_compiles_once():
    rng = np.random.default_rng(0)
    lams = jnp.asarray(np.stack([wide_spectrum(64, rng) for _ in range(3)]))
    ridges = jnp.asarray([0.0, 1e-6, 0.1])
    Ts = jnp.asarray([20.0, 64.0, 500.0])
    f = jax.jit(jax.vmap(effective_ridge))
    batched = np.asarray(f(lams, ridges, Ts))
    looped = np.asarray([float(effective_ridge(lams[i], ridges[i], Ts[i])) for i in range(3)])
    np.testing.assert_allclose(batched, looped, rtol=1e-13, atol=0)
    f(lams * 2, ridges + 1, Ts + 3).block_until_ready()
    assert f._cache_size() == 1


def test_float32_keeps_dtype():
    k = effective_ridge(jnp.ones(10, jnp.float32), jnp.float32(0.1), jnp.float32(20.0))
    assert k.dtype == jnp.float32
    assert float(k) == pytest.approx(float(effective_ridge_isotropic(0.1, 0.5)), rel=1e-5)


@given(
    logs=st.lists(st.floats(-8, 1), min_size=1, max_size=30),
    log_ridge=st.floats(-10, 2),
    T=st.floats(0.5, 100.0),
)
def test_properties_df_bounded_and_derivative_at_least_one(logs, log_ridge, T):
    lam = jnp.asarray(10.0 ** np.asarray(logs))
    ridge = 10.0**log_ridge
    kappa = effective_ridge(lam, ridge, T)
    d = lam.shape[0]
    for m in (1, 2, 3):
        assert float(degrees_of_freedom(lam, kappa, m)) <= d * (1 + 1e-12)
    g = float(jax.grad(effective_ridge, argnums=1)(lam, ridge, T))
    assert g >= 1.0 - 1e-12
    assert float(kappa) >= ridge * (1 - 1e-14)
