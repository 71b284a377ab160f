"""The conditional-risk (variance-reduced) estimator of the chain's test error.

Given the sampled designs, every fit in the chain is *linear in the label noise*: with ``K`` the
fit operator of a generation (``w = K h``; ``K = (G + T0 lambda0 I)^{-1}``, or the min-norm
pseudo-inverse) and ``h = G_syn w_prev + (G - G_syn) w0 + sigma0 X^T eps``,

* replace / mix: ``w_m = K_m (G_syn,m w_{m-1} + (G_m - G_syn,m) w0) + sigma0 K_m X_m^T eps_m``, so the
  conditional mean ``mu_m`` and covariance ``C_m`` of ``w_m`` follow
  ``mu_m = K_m (G_syn,m mu_{m-1} + (G_m - G_syn,m) w0)``,
  ``C_m = P_m C_{m-1} P_m^T + sigma0^2 K_m G_m K_m^T`` with ``P_m = K_m G_syn,m``
  (an OLS generator on a full-rank Gram: ``P_m = I`` and ``C_m = C_{m-1} + sigma0^2 G_m^{-1}``);
* accumulate: the accumulated moment ``b_m = b_{m-1} + G_m w_{m-1} + sigma0 X_m^T eps_m`` with
  ``w_{m-1} = K_{m-1} b_{m-1} + a_{m-1}`` (``K_0 = 0``, ``a_0 = w0``; ``a_m = 0`` after), so its mean and
  covariance follow with ``L_m = I + G_m K_{m-1}``.

The downstream fit ``w_hat = K_R (G_syn w_n + (G - G_syn) w0 + sigma X^T eps)`` then has the exact
conditional risk ``E[||w_hat - w0||_Sigma^2 | designs] = ||E w_hat - w0||_Sigma^2 + tr(Sigma Cov w_hat)``.
With ``G = V diag(m) V^T`` and ``K_R = V diag(g_k) V^T`` for ridge ``k``, the trace is
``g_k^T (S o C~) g_k`` with ``S = V^T Sigma V`` and ``C~ = V^T Cov(h) V``: one eigendecomposition
serves every ridge value and every generation.

The estimator averages out every label-noise draw exactly, so only the design randomness is left:
same expectation as the plain Monte Carlo error, smaller variance (tested by a paired z-test in
``tests/test_conditional.py``; the speed-up in time-to-a-given-SEM is in ``benchmarks/README.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import solvers

_HI = jax.lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


class ReplaceState(NamedTuple):
    mean: jax.Array  # (d,) E[w_m | designs]
    cov: jax.Array  # (d, d) Cov[w_m | designs]


class AccumulateState(NamedTuple):
    mean_b: jax.Array  # (d,) E[b_m | designs]
    cov_b: jax.Array  # (d, d) Cov[b_m | designs]
    fit: jax.Array  # (d, d) K_m: w_m = K_m b_m + offset
    offset: jax.Array  # (d,) w0 at m = 0, else 0


class Risk(NamedTuple):
    total: jax.Array  # (n_max + 1, n_ridges)


def init_replace(c: jax.Array) -> ReplaceState:
    return ReplaceState(c, jnp.zeros((c.shape[0], c.shape[0]), c.dtype))


def init_accumulate(c: jax.Array) -> AccumulateState:
    d = c.shape[0]
    z = jnp.zeros((d, d), c.dtype)
    return AccumulateState(jnp.zeros_like(c), z, z, c)


def update_replace(state: ReplaceState, K, G, G_syn, c, sigma0) -> ReplaceState:
    P = _mm(K, G_syn)
    mean = _mm(K, _mm(G_syn, state.mean) + _mm(G - G_syn, c))
    KG = _mm(K, G)
    cov = _mm(_mm(P, state.cov), P.T) + sigma0**2 * _mm(KG, K.T)
    return ReplaceState(mean, 0.5 * (cov + cov.T))


def update_replace_ols(state: ReplaceState, G_inv, sigma0) -> ReplaceState:
    return ReplaceState(state.mean, state.cov + sigma0**2 * G_inv)


def update_accumulate(state: AccumulateState, K, G, sigma0) -> AccumulateState:
    L = jnp.eye(G.shape[0], dtype=G.dtype) + _mm(G, state.fit)
    mean_b = _mm(L, state.mean_b) + _mm(G, state.offset)
    cov_b = _mm(_mm(L, state.cov_b), L.T) + sigma0**2 * G
    return AccumulateState(mean_b, 0.5 * (cov_b + cov_b.T), K, jnp.zeros_like(state.offset))


def _quad_risk(lam, c, V, mean_z, cov_z, g):
    """Risk of ``w_hat = V diag(g_k) z`` with ``E z = mean_z``, ``Cov z = cov_z`` (rotated by ``V^T``).

    Shapes: ``V (d, d)``, ``mean_z (d,)``, ``cov_z (d, d)``, ``g (n_ridges, d)`` -> ``(n_ridges,)``.
    """
    mean_w = _mm(g * mean_z, V.T)  # (n_ridges, d)
    bias = jnp.sum(lam * (mean_w - c) ** 2, axis=-1)
    S = _mm(V.T * lam, V)  # V^T Sigma V
    var = jnp.einsum("ri,ij,rj->r", g, S * cov_z, g, precision=_HI)
    return bias + jnp.maximum(var, 0.0)


def downstream_replace(hist: ReplaceState, G, G_syn, lam, c, sigma, ridges, T: int) -> Risk:
    """Conditional downstream risk for every generation ``n`` (rows of ``hist``) and ridge value."""
    d = G.shape[0]
    m, V = jnp.linalg.eigh(G)
    g = solvers._spectral_weights(m, ridges * T, solvers._rank_tol(m, T, d))  # (n_ridges, d)
    Q = _mm(V.T, G_syn)  # V^T G_syn
    mean_z = _mm(hist.mean, Q.T) + _mm(V.T, _mm(G - G_syn, c))  # (N, d): V^T E h_n
    cov_z = jnp.einsum("ij,njk,lk->nil", Q, hist.cov, Q, precision=_HI) + sigma**2 * jnp.diag(jnp.maximum(m, 0.0))
    total = jax.vmap(lambda mz, cz: _quad_risk(lam, c, V, mz, cz, g))(mean_z, cov_z)
    return Risk(total)


def downstream_accumulate(hist: AccumulateState, A_all, G, lam, c, sigma, ridges, n_rows, T: int) -> Risk:
    """Accumulate mode: generation ``n``'s downstream fit uses ``A_n + G`` and ``b_n + G w_n + sigma X^T eps``."""
    d = G.shape[0]
    eye = jnp.eye(d, dtype=G.dtype)

    def one(state, A, N):
        L = eye + _mm(G, state.fit)
        mean_b = _mm(L, state.mean_b) + _mm(G, state.offset)
        cov_b = _mm(_mm(L, state.cov_b), L.T) + sigma**2 * G
        m, V = jnp.linalg.eigh(A)
        g = solvers._spectral_weights(m, ridges * N, solvers._rank_tol(m, T, d))
        return _quad_risk(lam, c, V, _mm(V.T, mean_b), _mm(_mm(V.T, cov_b), V), g)

    total = jax.vmap(one)(hist, A_all, n_rows)
    return Risk(total)


def generator_risk_replace(hist: ReplaceState, lam, c) -> jax.Array:
    """``E[||w_n - w0||_Sigma^2 | designs]`` for every ``n``."""
    bias = jnp.sum(lam * (hist.mean - c) ** 2, axis=-1)
    return bias + jnp.sum(lam * jnp.diagonal(hist.cov, axis1=-2, axis2=-1), axis=-1)


def generator_risk_accumulate(hist: AccumulateState, lam, c) -> jax.Array:
    mean_w = jnp.einsum("nij,nj->ni", hist.fit, hist.mean_b, precision=_HI) + hist.offset
    KC = jnp.einsum("nij,njk->nik", hist.fit, hist.cov_b, precision=_HI)
    var = jnp.sum(lam * jnp.sum(KC * hist.fit, axis=-1), axis=-1)  # diag(K C K^T) weighted by Sigma
    return jnp.sum(lam * (mean_w - c) ** 2, axis=-1) + var
