"""Exact finite-sample results for OLS chains (valid for any spectrum ``Sigma`` and any teacher)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["accumulate_ols_exact", "ols_chain_exact", "ols_chain_proportional"]


def _wishart_trace(d: ArrayLike, n_rows: ArrayLike) -> jnp.ndarray:
    """``E tr(Sigma (X^T X)^{-1}) = d / (T - d - 1)`` for ``T >= d + 2`` Gaussian rows (Lemma A.1)."""
    d = jnp.asarray(d, jnp.result_type(float))
    return d / (jnp.asarray(n_rows, d.dtype) - d - 1.0)


def ols_chain_exact(
    n: ArrayLike, d: ArrayLike, T: ArrayLike, T0: ArrayLike, sigma: ArrayLike, sigma0: ArrayLike
) -> jnp.ndarray:
    """Exact expected test error of the OLS chain with an OLS downstream model.

    ``E_test = sigma^2 d/(T - d - 1) + n sigma0^2 d/(T0 - d - 1)``, for ``T, T0 >= d + 2``, any
    ``Sigma`` and any ``w0``, fresh or fixed generator designs (replace mode).

    Args:
      n: number of synthetic generations (0 = clean training).
      d: dimension. T: downstream samples. T0: samples per generation.
      sigma: downstream label-noise std. sigma0: generator label-noise std.

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified: The Case of Regression",
      arXiv:2402.07712v2, Theorem 4.1 (the exact identity is the proof's last step before the
      proportional limit; Lemma A.1 gives E (X^T X)^{-1} = Sigma^{-1}/(T - d - 1)).
    """
    n = jnp.asarray(n, jnp.result_type(float))
    return sigma**2 * _wishart_trace(d, T) + n * sigma0**2 * _wishart_trace(d, T0)


def ols_chain_proportional(
    n: ArrayLike, d: ArrayLike, T: ArrayLike, T0: ArrayLike, sigma: ArrayLike, sigma0: ArrayLike
) -> jnp.ndarray:
    """Proportional-limit form of Theorem 4.1: ``sigma^2 phi/(1-phi) + n sigma0^2 phi0/(1-phi0)``.

    ``phi = d/T``, ``phi0 = d/T0``. References: arXiv:2402.07712v2, Theorem 4.1.
    """
    n = jnp.asarray(n, jnp.result_type(float))
    d = jnp.asarray(d, n.dtype)
    phi, phi0 = d / T, d / T0
    return sigma**2 * phi / (1 - phi) + n * sigma0**2 * phi0 / (1 - phi0)


def accumulate_ols_exact(iterations: ArrayLike, d: ArrayLike, T: ArrayLike, sigma: ArrayLike) -> jnp.ndarray:
    """Gerstgrasser et al.'s accumulate result for the OLS model after ``iterations`` fits.

    ``E ||w_n - w*||_Sigma^2 = sigma^2 d/(T - d - 1) * sum_{i=1}^{n} 1/i^2 <= (pi^2/6) sigma^2 d/(T-d-1)``
    for one design reused at every iteration (``T >= d + 2``), the same noise ``sigma`` at every
    iteration. In kcollapse's chain this is the *generator* error at generation ``n`` with
    ``mode="accumulate"``, ``design="fixed"`` (iteration 1 is the fit on real data).

    References:
      Gerstgrasser et al., "Is Model Collapse Inevitable?", arXiv:2404.01413v2, Theorems 1-2
      (stated for Sigma = I; holds for any Sigma since E tr(Sigma (X^T X)^{-1}) = d/(T-d-1)).
    """
    n = jnp.asarray(iterations)
    i = jnp.arange(1, jnp.max(n) + 1 if n.size else 1, dtype=jnp.result_type(float))
    partial = jnp.concatenate([jnp.zeros(1, i.dtype), jnp.cumsum(1.0 / i**2)])
    return sigma**2 * _wishart_trace(d, T) * partial[n]
