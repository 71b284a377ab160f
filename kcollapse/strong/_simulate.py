"""Simulators of the classical linear model on real/synthetic mixtures (Strong Model Collapse §2, §5).

Protocol (shared/THEORY.md §4.1), per seed: ``n`` inputs ``x ~ N(0, Sigma)`` (eigenbasis), the
mismatch ``delta ~ N(0, Delta)`` drawn afresh, the last ``n2 = round(p2 n)`` rows labelled by
``w2 = w1 + delta`` with noise ``sigma2``, the others by the real teacher ``w1`` with noise
``sigma1``; ridge in kcollapse's normalisation (= the paper's); error ``||w_hat - w1||_Sigma^2``.

Common random numbers: within a seed, one design, one ``delta`` and one noise vector serve every
``p2``, ``alpha`` and ridge value (and the rows change role as ``p2`` changes). Each grid point is
still exactly distributed as in the protocol; only the correlation between grid points changes
(differences along the grid are sharper). Seeds are independent.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from .._conventions import test_error
from ..data import sample_design
from ..solvers import moments_ridge_path
from ..spectra import Spectrum
from ._driver import (DEFAULT_MEMORY_BUDGET, GridSimulation, check_mismatch, check_spectrum, itemsize, nonneg_grid,
                      run_seeds, synthetic_counts)

__all__ = ["simulate_iterative_mixture", "simulate_mixture", "simulate_weighted_mixture"]

_HI = jax.lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


def draw_mixture(key: jax.Array, spectrum: Spectrum, mismatch: jax.Array, n: int, counts: jax.Array,
                 label_noise: jax.Array, synthetic_noise: jax.Array):
    """One seed's design ``X (n, d)`` and labels ``Y (n, k)`` for each synthetic count in ``counts (k,)``."""
    dt = spectrum.dtype
    k_x, k_d, k_e = jax.random.split(key, 3)
    X = sample_design(k_x, spectrum, n)
    delta = jnp.sqrt(mismatch) * jax.random.normal(k_d, mismatch.shape, dtype=dt)
    eps = jax.random.normal(k_e, (n,), dtype=dt)
    syn = jnp.arange(n, dtype=dt)[:, None] >= (n - counts)[None, :]  # last n2 rows are synthetic
    clean = _mm(X, spectrum.coefficients)[:, None]
    shift = _mm(X, delta)[:, None]
    Y = clean + jnp.where(syn, shift + synthetic_noise * eps[:, None], label_noise * eps[:, None])
    return X, Y, syn


def _mixture_seed(key, spectrum, mismatch, n, counts, ridges, label_noise, synthetic_noise):
    X, Y, _ = draw_mixture(key, spectrum, mismatch, n, counts, label_noise, synthetic_noise)
    W = moments_ridge_path(_mm(X.T, X), _mm(X.T, Y), n, ridges, n_rows_hint=n)  # (r, d, k)
    err = test_error(spectrum.eigenvalues, jnp.swapaxes(W, 1, 2), spectrum.coefficients)  # (r, k)
    return err.T


@functools.partial(jax.jit, static_argnames=("n",))
def _mixture_batch(keys, spectrum, mismatch, n, counts, ridges, label_noise, synthetic_noise):
    return jax.vmap(lambda k: _mixture_seed(k, spectrum, mismatch, n, counts, ridges, label_noise,
                                            synthetic_noise))(keys)


def _common(spectrum, mismatch, n_samples, synthetic_fractions, label_noise, synthetic_noise, fraction_name):
    spectrum = check_spectrum(spectrum)
    check_mismatch(mismatch, spectrum.d)
    n = _checks.check_int("n_samples", n_samples, minimum=1)
    counts = synthetic_counts(fraction_name, synthetic_fractions, n)
    s1 = _checks.check_nonneg_float("label_noise", label_noise)
    s2 = s1 if synthetic_noise is None else _checks.check_nonneg_float("synthetic_noise", synthetic_noise)
    dt = spectrum.dtype
    return spectrum, jnp.asarray(mismatch, dt), n, counts, jnp.asarray(s1, dt), jnp.asarray(s2, dt)


def simulate_mixture(
    key: jax.Array,
    spectrum: Spectrum,
    mismatch: ArrayLike,
    n_samples: int,
    synthetic_fractions: ArrayLike,
    ridges: ArrayLike = (0.0,),
    label_noise: float = 0.0,
    synthetic_noise: float | None = None,
    n_seeds: int = 32,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> GridSimulation:
    """Ridge on ``n`` pooled real + synthetic samples (the setting of Theorem 1).

    Every ``p2`` and ridge value of a seed comes from one design and one eigendecomposition of
    ``X^T X`` (:func:`kcollapse.solvers.moments_ridge_path`); seeds are ``vmap``-ed and jitted.

    Args:
      key: ``jax.random.key``; seed ``i`` uses ``fold_in(key, i)``.
      spectrum: ``Sigma`` and the real teacher ``w1``.
      mismatch: ``(d,)`` diagonal of ``Delta`` (:func:`mismatch_covariance`).
      n_samples: ``n = n1 + n2``.
      synthetic_fractions: ``(k,)`` fractions ``p2``; ``n2 = round(p2 n)``.
      ridges: ``(r,)`` ridge values ``>= 0`` (0 = min-norm least squares).
      label_noise: ``sigma1``. synthetic_noise: ``sigma2`` (default ``sigma1``).
      n_seeds: independent seeds (``>= 2`` for a standard error); seeds ``seed_offset ..`` are run.
      batch_size: seeds per compiled call, at most (default: as many as fit ``memory_budget`` bytes,
        balanced); every call has the same shape (the last batch is padded), so it compiles once.

    Returns:
      :class:`GridSimulation` with ``per_seed`` of shape ``(seeds, k, r)`` and axes
      ``synthetic_fraction`` (the realised ``n2/n``) and ``ridge``.

    Examples:
      >>> import jax, kcollapse as kc
      >>> s = kc.spectra.isotropic(20)
      >>> res = kc.strong.simulate_mixture(jax.random.key(0), s, kc.strong.mismatch_covariance(s, 0.5),
      ...                                  80, [0.0, 0.5], [0.0, 0.1], label_noise=0.1, n_seeds=4)
      >>> res.mean.shape
      (2, 2)
    """
    spectrum, mismatch, n, counts, s1, s2 = _common(spectrum, mismatch, n_samples, synthetic_fractions,
                                                    label_noise, synthetic_noise, "synthetic_fractions")
    ridges = nonneg_grid("ridges", ridges)
    dt = spectrum.dtype
    d, k, r = spectrum.d, counts.size, ridges.size
    words = 2 * n * d + 4 * d * d + (n + d) * k + 2 * r * d * k
    batch = functools.partial(_mixture_batch, spectrum=spectrum, mismatch=mismatch, n=n, counts=jnp.asarray(counts, dt),
                              ridges=jnp.asarray(ridges, dt), label_noise=s1, synthetic_noise=s2)
    per_seed, idx = run_seeds(batch, key, n_seeds, seed_offset, batch_size, words * itemsize(spectrum), memory_budget,
                              "mixture")
    return GridSimulation(per_seed, (("synthetic_fraction", counts / n), ("ridge", ridges)), idx, "mixture")


def _weighted_seed(key, spectrum, mismatch, n, counts, weights, ridges, label_noise, synthetic_noise):
    X, Y, syn = draw_mixture(key, spectrum, mismatch, n, counts, label_noise, synthetic_noise)
    dt = X.dtype

    def per_fraction(y, is_syn, n2):
        n1 = n - n2
        syn_f = is_syn.astype(dt)
        Xs, Xr = X * syn_f[:, None], X * (1 - syn_f)[:, None]
        G1, G2 = _mm(Xr.T, X) / n1, _mm(Xs.T, X) / n2
        h1, h2 = _mm(Xr.T, y) / n1, _mm(Xs.T, y) / n2

        def per_weight(alpha):
            A = (1 - alpha) * G1 + alpha * G2
            b = (1 - alpha) * h1 + alpha * h2
            W = moments_ridge_path(A, b, 1.0, ridges, n_rows_hint=n)  # (r, d): (A + ridge I)^{-1} b
            return test_error(spectrum.eigenvalues, W, spectrum.coefficients)

        return jax.lax.map(per_weight, weights)  # (a, r), one d x d matrix at a time

    return jax.vmap(per_fraction, in_axes=(1, 1, 0))(Y, syn, counts)  # (k, a, r)


@functools.partial(jax.jit, static_argnames=("n",))
def _weighted_batch(keys, spectrum, mismatch, n, counts, weights, ridges, label_noise, synthetic_noise):
    return jax.vmap(lambda k: _weighted_seed(k, spectrum, mismatch, n, counts, weights, ridges, label_noise,
                                             synthetic_noise))(keys)


def simulate_weighted_mixture(
    key: jax.Array,
    spectrum: Spectrum,
    mismatch: ArrayLike,
    n_samples: int,
    synthetic_fractions: ArrayLike,
    weights: ArrayLike,
    ridges: ArrayLike = (0.0,),
    label_noise: float = 0.0,
    synthetic_noise: float | None = None,
    n_seeds: int = 32,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> GridSimulation:
    """Weighted single-step mixing (Corollary 2's estimator).

    ``w_hat = argmin (1-alpha)/n1 sum_real (x^T w - y)^2 + alpha/n2 sum_synth (x^T w - y)^2 + ridge ||w||^2``
    with ``n1 = n - n2`` real and ``n2 = round(p2 n)`` synthetic rows. ``alpha = p2`` is plain pooling.

    Args:
      weights: ``(a,)`` weights ``alpha`` in ``[0, 1]`` on the synthetic group.
      Other arguments as in :func:`simulate_mixture`; every ``p2`` must give ``1 <= n2 <= n - 1``.

    Returns:
      :class:`GridSimulation`, ``per_seed`` of shape ``(seeds, k, a, r)``; axes
      ``synthetic_fraction``, ``weight``, ``ridge``.
    """
    spectrum, mismatch, n, counts, s1, s2 = _common(spectrum, mismatch, n_samples, synthetic_fractions,
                                                    label_noise, synthetic_noise, "synthetic_fractions")
    if np.any((counts < 1) | (counts > n - 1)):
        raise ValueError(f"weighted mixing needs 1 <= round(p2 n) <= n - 1 for every p2 (both groups non-empty), "
                         f"got n2 = {counts.astype(int).tolist()} with n = {n}")
    weights = nonneg_grid("weights", weights)
    for a in weights:
        _checks.check_fraction("weights", a)
    ridges = nonneg_grid("ridges", ridges)
    dt = spectrum.dtype
    d, k, r = spectrum.d, counts.size, ridges.size
    words = 2 * n * d + k * (2 * n * d + 8 * d * d + r * d) + (n + d) * k
    batch = functools.partial(_weighted_batch, spectrum=spectrum, mismatch=mismatch, n=n,
                              counts=jnp.asarray(counts, dt), weights=jnp.asarray(weights, dt),
                              ridges=jnp.asarray(ridges, dt), label_noise=s1, synthetic_noise=s2)
    per_seed, idx = run_seeds(batch, key, n_seeds, seed_offset, batch_size, words * itemsize(spectrum), memory_budget,
                              "weighted-mixing")
    axes = (("synthetic_fraction", counts / n), ("weight", weights), ("ridge", ridges))
    return GridSimulation(per_seed, axes, idx, "weighted")


def _iterative_seed(key, spectrum, mismatch, n, n_generations, counts, ridge, label_noise, synthetic_noise):
    dt = spectrum.dtype
    lam, c = spectrum.eigenvalues, spectrum.coefficients
    k_0, k_gen = jax.random.split(key)
    w_start = c + jnp.sqrt(mismatch) * jax.random.normal(k_0, mismatch.shape, dtype=dt)
    w = jnp.broadcast_to(w_start, (counts.size, c.shape[0]))  # one chain per p2, same start

    def step(w_prev, t):
        k_x, k_e = jax.random.split(jax.random.fold_in(k_gen, t))
        X = sample_design(k_x, spectrum, n)
        eps = jax.random.normal(k_e, (n,), dtype=dt)
        syn = jnp.arange(n, dtype=dt)[:, None] >= (n - counts)[None, :]
        Y = _mm(X, c)[:, None] + jnp.where(syn, _mm(X, (w_prev - c).T) + synthetic_noise * eps[:, None],
                                           label_noise * eps[:, None])
        W = moments_ridge_path(_mm(X.T, X), _mm(X.T, Y), n, ridge[None], n_rows_hint=n)[0].T  # (k, d)
        return W, test_error(lam, W, c)

    _, errs = jax.lax.scan(step, w, jnp.arange(1, n_generations + 1))
    return jnp.concatenate([test_error(lam, w, c)[None], errs]).T  # (k, n_generations + 1)


@functools.partial(jax.jit, static_argnames=("n", "n_generations"))
def _iterative_batch(keys, spectrum, mismatch, n, n_generations, counts, ridge, label_noise, synthetic_noise):
    return jax.vmap(lambda k: _iterative_seed(k, spectrum, mismatch, n, n_generations, counts, ridge, label_noise,
                                              synthetic_noise))(keys)


def simulate_iterative_mixture(
    key: jax.Array,
    spectrum: Spectrum,
    initial_mismatch: ArrayLike,
    n_samples: int,
    synthetic_fractions: ArrayLike,
    n_generations: int,
    ridge: float = 0.0,
    label_noise: float = 0.0,
    synthetic_noise: float | None = None,
    n_seeds: int = 32,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> GridSimulation:
    """Iterative mixing (Corollary 3's protocol), all rounds from one ``lax.scan``.

    Round 0 is a generator ``w^(0) = w1 + delta0``, ``delta0 ~ N(0, Delta0)``. Round ``t >= 1`` draws
    ``n`` fresh inputs, labels the last ``n2 = round(p2 n)`` with ``w^(t-1)`` (noise ``sigma2``) and
    the rest with ``w1`` (noise ``sigma1``), and fits ``w^(t)`` by ridge. Round ``t``'s key is
    ``fold_in(k_gen, t)``; the chains of different ``p2`` share inputs and noise (common random numbers).

    Args:
      initial_mismatch: ``(d,)`` diagonal of ``Delta0`` (quality ``c0^2 = tr(Sigma Delta0)``).
      n_generations: rounds ``t = 1..n_generations`` (static).
      ridge: one ridge value ``>= 0``.
      Other arguments as in :func:`simulate_mixture`.

    Returns:
      :class:`GridSimulation`, ``per_seed`` of shape ``(seeds, k, n_generations + 1)`` (round 0 is
      ``||w^(0) - w1||_Sigma^2``); axes ``synthetic_fraction`` and ``generation``.
    """
    spectrum, mismatch, n, counts, s1, s2 = _common(spectrum, initial_mismatch, n_samples, synthetic_fractions,
                                                    label_noise, synthetic_noise, "synthetic_fractions")
    n_gen = _checks.check_int("n_generations", n_generations, minimum=0)
    ridge = _checks.check_nonneg_float("ridge", ridge)
    dt = spectrum.dtype
    d, k = spectrum.d, counts.size
    words = 2 * n * d + 4 * d * d + 3 * (n + d) * k + (n_gen + 1) * k
    batch = functools.partial(_iterative_batch, spectrum=spectrum, mismatch=mismatch, n=n, n_generations=n_gen,
                              counts=jnp.asarray(counts, dt), ridge=jnp.asarray(ridge, dt), label_noise=s1,
                              synthetic_noise=s2)
    per_seed, idx = run_seeds(batch, key, n_seeds, seed_offset, batch_size, words * itemsize(spectrum), memory_budget,
                              "iterative-mixing")
    axes = (("synthetic_fraction", counts / n), ("generation", np.arange(n_gen + 1)))
    return GridSimulation(per_seed, axes, idx, "iterative")
