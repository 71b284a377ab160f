"""Isotropic (``Sigma = I_d``) closed forms, kept as an independent cross-check of the general path.

All functions take the aspect ratios ``phi = d/T`` and ``phi0 = d/T0`` and the effective ridge from
the closed form of eq. (15); none of them calls the general-spectrum solver.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._kappa import effective_ridge_isotropic
from ._types import Decomposition, decomposition

__all__ = ["clean_risk_isotropic", "overparameterised_isotropic", "rho_isotropic"]


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def clean_risk_isotropic(
    ridge: ArrayLike, phi: ArrayLike, sigma: ArrayLike, teacher_norm_sq: ArrayLike = 1.0
) -> Decomposition:
    """Clean ridge risk for ``Sigma = I``: ``(kappa^2 ||w0||^2 + sigma^2 phi) / ((1+kappa)^2 - phi)``.

    Args:
      ridge: ``lambda >= 0``. phi: ``d/T``. sigma: label-noise std.
      teacher_norm_sq: ``||w0||^2`` (``= ||w0||_Sigma^2`` here).

    Returns:
      :class:`Decomposition` with ``collapse = 0``.

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, eqs. (15), (18)-(19)
      (isotropic reading after Corollary 4.7).
    """
    ridge = _float(ridge)
    dt = ridge.dtype
    phi, sigma, r2 = (jnp.asarray(a, dt) for a in (phi, sigma, teacher_norm_sq))
    kappa = effective_ridge_isotropic(ridge, phi)
    denom = (1 + kappa) ** 2 - phi
    bias = kappa**2 * r2 / denom
    var = sigma**2 * phi / denom
    return decomposition(bias, var, jnp.zeros_like(bias))


def rho_isotropic(ridge: ArrayLike, phi: ArrayLike, phi0: ArrayLike) -> jax.Array:
    """Per-generation collapse coefficient ``rho`` for ``Sigma = I`` and ``T0 > d`` (asymptotic).

    ``rho = phi0/(1-phi0) * [1/(1+kappa)^2 + phi kappa^2 / ((1+kappa)^2 ((1+kappa)^2 - phi))]``.

    References:
      arXiv:2402.07712v2, isotropic reading of Corollary 4.7 / eq. (23).
    """
    ridge = _float(ridge)
    phi, phi0 = jnp.asarray(phi, ridge.dtype), jnp.asarray(phi0, ridge.dtype)
    kappa = effective_ridge_isotropic(ridge, phi)
    a = (1 + kappa) ** 2
    return phi0 / (1 - phi0) * (1 / a + phi * kappa**2 / (a * (a - phi)))


def overparameterised_isotropic(
    n: ArrayLike,
    ridge: ArrayLike,
    phi: ArrayLike,
    phi0: ArrayLike,
    sigma: ArrayLike,
    *,
    independent: bool,
    teacher_norm_sq: ArrayLike = 1.0,
) -> Decomposition:
    """Noiseless over-parameterised generator (``sigma0 = 0``, ``phi0 = d/T0``), ``Sigma = I``.

    ``E ≃ p Bias_clean(kappa) + (1 - p) ||w0||^2 + Var_clean(kappa)`` with ``p = min(1, 1/phi0)``
    for one reused design (Thm 4.8, ``n >= 1``), ``p = min(1, 1/phi0)^n`` for independent designs
    (Thm 4.9), ``p = 1`` at ``n = 0``. The ``(1 - p)||w0||^2`` term is reported as ``bias`` (it
    is the lost part of the teacher, ``ΔBias``), and ``collapse = 0`` because no noise is
    injected.

    The printed theorems are ridgeless (``lambda -> 0+``, ``T > d``); the ``lambda > 0`` form is
    the extension derived in shared/THEORY.md §2.4 (apply the deterministic equivalents with the
    teacher ``u = Q w0``, ``||u||^2 ≈ u^T w0 ≈ p ||w0||^2``), verified by simulation in
    ``tests/test_theory_simulation.py``.

    Args:
      n: generation. ridge: downstream ``lambda``. phi: ``d/T``. phi0: ``d/T0``. sigma: downstream noise.
      independent: ``True`` for fresh designs (Thm 4.9), ``False`` for one design (Thm 4.8) (static).

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Theorems 4.8 and 4.9 (§4.6).
    """
    ridge = _float(ridge)
    dt = ridge.dtype
    n, phi0, r2 = (jnp.asarray(a, dt) for a in (n, phi0, teacher_norm_sq))
    clean = clean_risk_isotropic(ridge, phi, sigma, r2)
    keep = jnp.minimum(1, 1 / phi0)
    p = keep**n if independent else jnp.where(n >= 1, keep, jnp.ones_like(keep))
    bias = p * clean.bias + (1 - p) * r2
    return decomposition(bias, clean.variance, jnp.zeros_like(bias))
