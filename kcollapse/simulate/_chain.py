"""One seed of the chain: every generation n = 0..n_max from one ``lax.scan``, every ridge value
from one eigendecomposition.

Everything is written in *moment form*: a training set ``(X, y)`` enters a ridge fit only through
``G = X^T X`` and ``h = X^T y``, and with labels ``y = X_syn w_prev + X_clean w0 + s e`` we have
``h = G_syn w_prev + (G - G_syn) w0 + s X^T e``. This is algebraically identical to forming the
labels and then ``X^T y``, cheaper (``d^2`` instead of ``T d`` per label vector), and it lets the
downstream stage serve every generation ``n`` and every ridge value from one factorisation.

Common random numbers: within a seed, the downstream design and its noise are shared by all
generations ``n`` and all ridge values. Each ``(n, ridge)`` estimate is still exactly distributed
as in the paper's protocol (the downstream data are independent of the generator chain); only the
*correlation between* different ``n`` is changed, which makes differences between generations
sharper. Seeds are independent.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, solvers
from .._conventions import test_error
from ..data import sample_design, sample_wishart_factor
from ..spectra import Spectrum
from . import _conditional as _cond
from ._config import ChainConfig

__all__ = ["SeedOutput", "run_seed", "stage_keys"]

_HI = jax.lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


class SeedOutput(NamedTuple):
    """Per-seed outputs (shapes for ``n_max`` generations and ``n_ridges`` ridge values).

    Attributes:
      test_error: ``(n_max + 1, n_ridges)`` downstream test error for every ``n`` and ridge.
      generator_error: ``(n_max + 1,)`` ``||w_n - w0||_Sigma^2`` of the generators (0 at ``n = 0``).
      generator_fallbacks: number of generator Cholesky factorisations that were not finite (the
        driver reruns such seeds with the eigh pseudo-inverse).
      per_mode: ``(n_max + 1, n_ridges, d)`` per-eigenmode error ``lambda_i (w_i - c_i)^2`` or an
        empty array when not requested.
      mc_test_error, mc_generator_error: with ``estimator="conditional"``, the plain Monte Carlo
        errors of the same draws (``test_error``/``generator_error`` are then the conditional
        risks); empty arrays with ``estimator="monte-carlo"``.
    """

    test_error: jax.Array
    generator_error: jax.Array
    generator_fallbacks: jax.Array
    per_mode: jax.Array
    mc_test_error: jax.Array
    mc_generator_error: jax.Array


class StageKeys(NamedTuple):
    generator: jax.Array  # fold_in(generator, m) is generation m's key (m = 1..n_max)
    downstream: jax.Array
    fixed_design: jax.Array


def stage_keys(seed_key: jax.Array) -> StageKeys:
    """How one seed's key is split between stages (documented so oracles can reproduce a run).

    Generation ``m``'s key is ``fold_in(generator, m)``, split into (design key, noise key); the
    downstream key is split into (design key, noise key); ``fixed_design`` draws ``X_0``.
    """
    k = jax.random.split(seed_key, 3)
    return StageKeys(k[0], k[1], k[2])


def _syn_mask(n_rows: int, fraction: jax.Array, dtype) -> jax.Array:
    n_syn = jnp.round(fraction * n_rows)
    return (jnp.arange(n_rows, dtype=dtype) < n_syn).astype(dtype)


def _moments(X: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """``G = X^T X`` and ``G_syn = X^T diag(mask) X`` (``G_syn = G`` when every row is synthetic)."""
    G = _mm(X.T, X)
    if mask is None:
        return G, G
    return G, _mm((X * mask[:, None]).T, X)


def run_seed(
    key: jax.Array,
    spectrum: Spectrum,
    config: ChainConfig,
    ridges: jax.Array,
    per_mode: bool = False,
    generator_solver: str = "auto",
    sampler: str = "direct",
    estimator: str = "monte-carlo",
) -> SeedOutput:
    """Simulate one seed of the chain (pure; ``vmap`` over keys for many seeds).

    Args:
      key: this seed's PRNG key.
      spectrum: covariance spectrum and teacher.
      config: the chain (see :class:`ChainConfig`).
      ridges: ``(n_ridges,)`` downstream ridge values.
      per_mode: also return the per-eigenmode errors (static).
      generator_solver: ``"auto"`` (Cholesky when ``T0 >= d``, else eigh), ``"cholesky"`` or
        ``"eigh"`` (static); seeds whose Cholesky fails are rerun by the driver with ``"eigh"``.
      sampler: ``"direct"`` (draw every design row and noise value) or ``"wishart"`` (static):
        draw each training set's sufficient statistics ``(X^T X, X^T eps)`` exactly in
        distribution with the Bartlett decomposition (:func:`kcollapse.data.sample_wishart_factor`)
        wherever that is exact — a set of ``>= d`` rows with one label source (not ``mix``) — and
        directly elsewhere. Needs every eigenvalue ``> 0``. Same law, different random numbers.
      estimator: ``"monte-carlo"`` (the error of the sampled run) or ``"conditional"`` (static):
        the expected error over *all label noise* given the sampled designs, exact because every
        fit is linear in the noise (see :mod:`kcollapse.simulate._conditional`). Same expectation,
        smaller variance; the Monte Carlo errors of the same draws come back as ``mc_*``.
    """
    dt = spectrum.dtype
    lam, c = spectrum.eigenvalues, spectrum.coefficients
    d = lam.shape[0]
    T0, T, n_max = config.samples_per_generation, config.downstream_samples, config.n_generations
    mode, design = config.mode, config.design
    sigma0 = jnp.asarray(config.generator_noise, dt)
    sigma = jnp.asarray(config.label_noise, dt)
    ridge0 = jnp.asarray(config.generator_ridge, dt)
    frac = jnp.asarray(config.synthetic_fraction, dt)
    ridges = jnp.asarray(ridges, dt)
    keys = stage_keys(key)
    accumulate = mode == "accumulate"
    if generator_solver == "auto":
        generator_solver = "cholesky" if T0 >= d else "eigh"
    _checks.check_choice("sampler", sampler, ("direct", "wishart"))
    _checks.check_choice("estimator", estimator, ("monte-carlo", "conditional"))
    conditional = estimator == "conditional"
    eye = jnp.eye(d, dtype=dt)
    # Exact Wishart sampling of the moments needs n_rows >= d and one label source per set.
    gen_wishart = sampler == "wishart" and T0 >= d and mode != "mix"
    down_wishart = sampler == "wishart" and T >= d and mode != "mix"
    mask_gen = _syn_mask(T0, frac, dt) if mode == "mix" else None

    def draw(k, n_rows, mask, wishart):
        """Moments of one training set: (G, G_syn, X^T eps)."""
        k_x, k_e = jax.random.split(k)
        if wishart:
            B = sample_wishart_factor(k_x, spectrum, n_rows)
            z = jax.random.normal(k_e, (d,), dtype=dt)
            G = _mm(B, B.T)
            return G, G, _mm(B, z)
        X = sample_design(k_x, spectrum, n_rows)
        eps = jax.random.normal(k_e, (n_rows,), dtype=dt)
        G, G_syn = _moments(X, mask)
        return G, G_syn, _mm(X.T, eps)

    if design == "fixed":
        k_x0 = keys.fixed_design
        if gen_wishart:
            B0 = sample_wishart_factor(k_x0, spectrum, T0)
            G0 = G0_syn = _mm(B0, B0.T)
        else:
            X0 = sample_design(k_x0, spectrum, T0)
            G0, G0_syn = _moments(X0, mask_gen)
        mu0, V0 = jnp.linalg.eigh(G0)
        tol0 = solvers._rank_tol(mu0, T0, d)
        # (G0 + T0 ridge0 I)^+ ; for accumulate, (m G0 + m T0 ridge0)^+ = that / m.
        wts0 = solvers._spectral_weights(mu0, ridge0 * T0, tol0)
        K0 = _mm(V0 * wts0, V0.T)  # the fit operator: w = K0 h (accumulate: K0 / m)

    def generation(carry, m):
        w_prev, A, b, cstate = carry
        k = jax.random.fold_in(keys.generator, m)
        fallback = jnp.asarray(False)
        if design == "fixed":
            k_e = jax.random.split(k)[1]
            if gen_wishart:  # X0^T eps_m | X0 ~ N(0, G0), independent over m
                noise = _mm(B0, jax.random.normal(k_e, (d,), dtype=dt))
            else:
                noise = _mm(X0.T, jax.random.normal(k_e, (T0,), dtype=dt))
            G, G_syn = G0, G0_syn
        elif gen_wishart and not accumulate and generator_solver == "cholesky":
            # Replace with a fresh Wishart: OLS needs no Gram at all, G^{-1}(G w + s B z) = w + s B^{-T} z.
            k_x, k_e = jax.random.split(k)
            B = sample_wishart_factor(k_x, spectrum, T0)
            z = jax.random.normal(k_e, (d,), dtype=dt)

            def ols(_):
                w = w_prev + sigma0 * jax.scipy.linalg.solve_triangular(B, z, lower=True, trans="T")
                if not conditional:
                    return w, jnp.asarray(True), cstate
                Binv = jax.scipy.linalg.solve_triangular(B, eye, lower=True)
                # P = I, and the noise adds sigma0^2 G^{-1} = sigma0^2 B^{-T} B^{-1} to the covariance.
                return w, jnp.asarray(True), _cond.update_replace_ols(cstate, _mm(Binv.T, Binv), sigma0)

            def ridge(_):
                G = _mm(B, B.T)
                A_reg = G + (ridge0 * T0) * eye
                w, ok = solvers._cholesky_solve(A_reg, _mm(G, w_prev) + sigma0 * _mm(B, z))
                if not conditional:
                    return w, ok, cstate
                K, _ = solvers._cholesky_solve(A_reg, eye)
                return w, ok, _cond.update_replace(cstate, K, G, G, c, sigma0)

            w, ok, cstate = jax.lax.cond(ridge0 == 0, ols, ridge, None)
            return (w, A, b, cstate), (w, A, b, ~ok, cstate)
        else:
            G, G_syn, noise = draw(k, T0, mask_gen, gen_wishart)
        h = _mm(G_syn, w_prev) + _mm(G - G_syn, c) + sigma0 * noise
        if accumulate:
            A, b = A + G, b + h
            G_fit, h_fit, n_fit = A, b, m * T0
        else:
            G_fit, h_fit, n_fit = G, h, T0
        if design == "fixed":
            scale = m.astype(dt) if accumulate else jnp.asarray(1.0, dt)
            K = K0 / scale
            w = _mm(K, h_fit)
        elif generator_solver == "cholesky":
            # T0 >= d: the Gram is a.s. full rank. A non-finite factorisation is flagged; the driver
            # then reruns that seed with generator_solver="eigh" (no in-graph fallback: under vmap a
            # lax.cond would evaluate the expensive branch for every seed).
            A_reg = G_fit + (ridge0 * jnp.asarray(n_fit, dt)) * eye
            if conditional:  # one factorisation serves the solve and the operator
                Kh, ok = solvers._cholesky_solve(A_reg, jnp.concatenate([eye, h_fit[:, None]], axis=1))
                K, w = Kh[:, :d], Kh[:, d]
            else:
                w, ok = solvers._cholesky_solve(A_reg, h_fit)
            fallback = ~ok
        else:  # min-norm / ridge via the eigh pseudo-inverse
            mu_f, V_f = jnp.linalg.eigh(G_fit)
            wts = solvers._spectral_weights(mu_f, ridge0 * jnp.asarray(n_fit, dt), solvers._rank_tol(mu_f, T0, d))
            K = _mm(V_f * wts, V_f.T)
            w = _mm(K, h_fit)
        if conditional:
            if accumulate:
                cstate = _cond.update_accumulate(cstate, K, G, sigma0)
            else:
                cstate = _cond.update_replace(cstate, K, G, G_syn, c, sigma0)
        return (w, A, b, cstate), (w, A, b, fallback, cstate)

    zeros_dd = jnp.zeros((d, d), dt) if accumulate else jnp.zeros((), dt)
    zeros_d = jnp.zeros((d,), dt) if accumulate else jnp.zeros((), dt)
    gens = jnp.arange(1, n_max + 1)
    if not conditional:
        cstate0 = ()
    elif accumulate:
        cstate0 = _cond.init_accumulate(c)
    else:
        cstate0 = _cond.init_replace(c)
    _, (W, A_hist, b_hist, fallbacks, c_hist) = jax.lax.scan(generation, (c, zeros_dd, zeros_d, cstate0), gens)
    W = jnp.concatenate([c[None], W], axis=0)  # (n_max + 1, d): w_0 = w0
    generator_error = test_error(lam, W, c)
    if conditional:  # prepend n = 0 (w_0 = w0 exactly)
        c_hist = jax.tree_util.tree_map(lambda a0, a: jnp.concatenate([a0[None], a], axis=0), cstate0, c_hist)

    # Downstream stage, shared by every n and every ridge value.
    mask_down = _syn_mask(T, frac, dt) if mode == "mix" else None
    G, G_syn, noise = draw(keys.downstream, T, mask_down, down_wishart)
    noise_moment = sigma * noise
    H = _mm(W, G_syn.T) + _mm(G - G_syn, c)[None] + noise_moment[None]  # (n_max + 1, d)

    if accumulate:
        A_all = jnp.concatenate([jnp.zeros((1, d, d), dt), A_hist], axis=0) + G[None]
        b_all = jnp.concatenate([jnp.zeros((1, d), dt), b_hist], axis=0) + H
        n_rows = jnp.arange(n_max + 1) * T0 + T
        path = jax.vmap(lambda Gn, hn, nn: solvers.moments_ridge_path(Gn, hn, nn, ridges, n_rows_hint=T))
        W_pred = path(A_all, b_all, n_rows.astype(dt))  # (n_max + 1, n_ridges, d)
    else:
        W_pred = solvers.moments_ridge_path(G, H.T, T, ridges, n_rows_hint=T)  # (n_ridges, d, n_max + 1)
        W_pred = jnp.transpose(W_pred, (2, 0, 1))
    diff = W_pred - c
    modes = lam * diff * diff
    err = jnp.sum(modes, axis=-1)
    empty = jnp.zeros((0,), dt)
    n_fallbacks = jnp.sum(fallbacks.astype(jnp.int32))
    if not conditional:
        return SeedOutput(err, generator_error, n_fallbacks, modes if per_mode else empty, empty, empty)
    if accumulate:
        risk = _cond.downstream_accumulate(c_hist, A_all, G, lam, c, sigma, ridges, n_rows.astype(dt), T)
        gen_risk = _cond.generator_risk_accumulate(c_hist, lam, c)
    else:
        risk = _cond.downstream_replace(c_hist, G, G_syn, lam, c, sigma, ridges, T)
        gen_risk = _cond.generator_risk_replace(c_hist, lam, c)
    # per-mode values stay the Monte Carlo ones of the same draws (unbiased; the exact per-mode
    # conditional variance would cost a d^3 product per (n, ridge)).
    return SeedOutput(risk.total, gen_risk, n_fallbacks, modes if per_mode else empty, err, generator_error)
