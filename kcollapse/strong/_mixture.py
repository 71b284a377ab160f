"""Theorem 1 of Strong Model Collapse (classical linear model on real/synthetic mixtures).

Notation (shared/THEORY.md §4.1-§4.2): ``n`` pooled samples, a fraction ``p2`` synthetic
(labelled by ``w2 = w1 + delta``, ``delta ~ N(0, Delta)``), ``p1 = 1 - p2`` real; ridge ``lambda``
in kcollapse's normalisation (identical to the paper's, see :mod:`._normalisation`);
``kappa = kappa(lambda, n)`` from :func:`kcollapse.theory.effective_ridge` and
``u = (df_2/n) / (1 - df_2/n)``. Per eigen-direction write ``g_i = lambda_i/(lambda_i + kappa)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ..theory import effective_ridge, effective_ridge_isotropic
from ..theory._types import Decomposition, decomposition

__all__ = [
    "mixture_error",
    "mixture_error_isotropic",
    "overparameterised_mixture_error",
    "ridgeless_mixture_error",
]


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def check_concrete(**values) -> None:
    """Boundary checks on concrete inputs (traced values pass): fractions in [0, 1], the rest >= 0."""
    for name, v in values.items():
        if v is None or isinstance(v, jax.core.Tracer):
            continue
        arr = _checks.check_finite_array(name, v)
        if arr.size == 0:
            continue
        if name in ("synthetic_fraction", "weight") and ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"{name} must lie in [0, 1], got {arr.min() if (arr < 0).any() else arr.max()}")
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0, got {arr.min()}")
        if name in ("n_samples", "width", "dim") and (arr <= 0).any():
            raise ValueError(f"{name} must be > 0, got {arr.min()}")


def pooled_noise(synthetic_fraction: jax.Array, label_noise: jax.Array, synthetic_noise: jax.Array | None) -> jax.Array:
    """``sigma^2 = p1 sigma1^2 + p2 sigma2^2`` (``sigma2 = sigma1`` when not given)."""
    s2 = label_noise if synthetic_noise is None else synthetic_noise
    return (1 - synthetic_fraction) * label_noise**2 + synthetic_fraction * s2**2


def mixture_error(
    spectrum: Spectrum,
    mismatch: ArrayLike,
    n_samples: ArrayLike,
    synthetic_fraction: ArrayLike,
    ridge: ArrayLike,
    label_noise: ArrayLike,
    synthetic_noise: ArrayLike | None = None,
    *,
    finite_size: bool = False,
) -> Decomposition:
    """Test error of ridge on a real/synthetic mixture, Theorem 1 (any diagonal ``Sigma``, ``Delta``).

    With ``g_i = lambda_i/(lambda_i + kappa)`` and ``kappa = kappa(lambda, n)``::

        B    = kappa^2 w1^T Sigma (Sigma + kappa)^{-2} w1 / (1 - df_2/n) = sum_i lambda_i c_i^2 (1 - g_i)^2 / (1 - df_2/n)
        V    = sigma^2 u,    sigma^2 = p1 sigma1^2 + p2 sigma2^2,    u = (df_2/n) / (1 - df_2/n)
        zeta = p2^2 (1 + p1 u) tr[Delta Sigma^3 (Sigma+kappa)^{-2}] + p2 u tr[Delta Sigma (p1 Sigma + kappa)^2 (Sigma+kappa)^{-2}]
             = sum_i Delta_i lambda_i [p2^2 (1 + p1 u) g_i^2 + p2 u (1 - p2 g_i)^2]

    ``zeta`` is the collapse term; it keeps the floor ``p2^2 c^2`` as ``n -> infinity``
    (Corollary 1). The teacher ``w1`` is the spectrum's (fixed) teacher, i.e. the paper's prior
    ``Gamma`` replaced by ``w1 w1^T``; ``delta`` is random with covariance ``Delta``. Valid in the
    proportional regime for any ``d/n`` (over-parameterised ``n < d`` included: Corollary 4).

    Args:
      spectrum: eigenvalues ``lambda_i`` of ``Sigma`` and the real teacher ``c = w1``.
      mismatch: ``(d,)`` diagonal of ``Delta`` (e.g. from :func:`mismatch_covariance`).
      n_samples: ``n = n1 + n2 > 0``.
      synthetic_fraction: ``p2 = n2/n`` in ``[0, 1]``.
      ridge: ``lambda >= 0`` (kcollapse normalisation = the paper's).
      label_noise: ``sigma1``, noise std of the real labels.
      synthetic_noise: ``sigma2`` (default ``sigma1``).
      finite_size: at ``lambda = 0`` and ``n >= rank + 2`` replace ``V`` by the exact
        ``sigma^2 rank/(n - rank - 1)`` (Wishart identity, exact for any ``Sigma``; static).

    Returns:
      :class:`kcollapse.theory.Decomposition` (``bias = B``, ``variance = V``, ``collapse = zeta``).
      Traceable: ``jit``/``vmap``/``grad`` in every argument but the static ``finite_size``.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(100)
      >>> e = kc.strong.mixture_error(s, kc.strong.mismatch_covariance(s, 1.0), 1e6, 0.1, 0.0, 0.0)
      >>> round(float(e.collapse), 4)   # floor p2^2 c^2 = 0.01 (plus O(d/n))
      0.01

    References:
      Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse", arXiv:2410.04840v2, Theorem 1
      (shared/THEORY.md §4.2); Corollary 4 (over-parameterised) follows from it with ``kappa = phi - 1``.
    """
    check_concrete(n_samples=n_samples, synthetic_fraction=synthetic_fraction, ridge=ridge,
                   label_noise=label_noise, synthetic_noise=synthetic_noise, mismatch=mismatch)
    lam = spectrum.eigenvalues
    dt = lam.dtype
    args = [jnp.asarray(a, dt) for a in (mismatch, n_samples, synthetic_fraction, ridge, label_noise)]
    s2 = args[-1] if synthetic_noise is None else jnp.asarray(synthetic_noise, dt)
    return _mixture_core(lam, spectrum.coefficients.astype(dt), *args, s2, finite_size=finite_size)


@functools.partial(jax.jit, static_argnames=("finite_size",))
def _mixture_core(lam, c, delta, n, p2, ridge, s1, s2, finite_size):
    p1 = 1 - p2
    kappa = effective_ridge(lam, ridge, n)
    denom = lam + kappa
    g = jnp.where(denom > 0, lam / jnp.where(denom > 0, denom, 1), 0)
    df2 = jnp.sum(g * g)
    inv = 1 / (1 - df2 / n)
    u = df2 / n * inv
    bias = jnp.sum(lam * c * c * (1 - g) ** 2) * inv
    sigma2 = pooled_noise(p2, s1, s2)
    variance = sigma2 * u
    if finite_size:
        rank = jnp.sum((lam > 0).astype(lam.dtype))
        exact = (ridge == 0) & (n >= rank + 2)
        variance = jnp.where(exact, sigma2 * rank / jnp.where(exact, n - rank - 1, 1), variance)
    zeta = jnp.sum(delta * lam * (p2**2 * (1 + p1 * u) * g * g + p2 * u * (1 - p2 * g) ** 2))
    return decomposition(bias, variance, zeta)


def mixture_error_isotropic(
    phi: ArrayLike,
    synthetic_fraction: ArrayLike,
    quality: ArrayLike,
    ridge: ArrayLike,
    label_noise: ArrayLike,
    teacher_norm_sq: ArrayLike = 1.0,
) -> Decomposition:
    """Theorem 1 for ``Sigma = I``, ``||w1||^2 = r^2``, ``Delta = (c^2/d) I`` (closed form).

    ``kappa = (lambda + phi - 1 + sqrt((lambda + phi - 1)^2 + 4 lambda))/2``, ``u = phi/((1+kappa)^2 - phi)``::

        B = kappa^2 r^2 / ((1+kappa)^2 - phi),   V = sigma^2 u,
        zeta = [p2 (1 + p1 u) + (p1 + kappa)^2 u] p2 c^2 / (1 + kappa)^2

    Written independently of :func:`mixture_error` (no spectrum, no root-finder), so the two are
    a cross-check of each other.

    Args:
      phi: ``d/n``. synthetic_fraction: ``p2``. quality: ``c^2``. ridge: ``lambda >= 0``.
      label_noise: pooled ``sigma``. teacher_norm_sq: ``r^2``.

    References:
      arXiv:2410.04840v2, Theorem 1, isotropic case (shared/THEORY.md §4.2).
    """
    check_concrete(phi=phi, synthetic_fraction=synthetic_fraction, quality=quality, ridge=ridge,
                   label_noise=label_noise, teacher_norm_sq=teacher_norm_sq)
    ridge = _float(ridge)
    dt = ridge.dtype
    phi, p2, c2, sigma, r2 = (jnp.asarray(a, dt) for a in (phi, synthetic_fraction, quality, label_noise, teacher_norm_sq))
    p1 = 1 - p2
    kappa = effective_ridge_isotropic(ridge, phi)
    denom = (1 + kappa) ** 2 - phi
    u = phi / denom
    bias = kappa**2 * r2 / denom
    zeta = (p2 * (1 + p1 * u) + (p1 + kappa) ** 2 * u) * p2 * c2 / (1 + kappa) ** 2
    return decomposition(bias, sigma**2 * u, zeta)


def ridgeless_mixture_error(phi: ArrayLike, synthetic_fraction: ArrayLike, quality: ArrayLike,
                            label_noise: ArrayLike) -> Decomposition:
    """Corollary 1 (``phi = d/n < 1``, ``lambda -> 0+``), valid for any ``Sigma`` and ``Delta``.

    ``E ≃ sigma^2 phi/(1 - phi) + (p2^2 + p2 p1 phi/(1 - phi)) c^2``; for small ``phi``,
    ``sigma^2 d/n + p2^2 c^2``: the floor ``p2^2 c^2`` does not vanish as ``n -> infinity``
    unless ``p2 -> 0`` ("strong model collapse").

    Any ``Sigma``: ridgeless least squares is affine-equivariant, so whitening maps the problem to
    ``Sigma = I`` with quality ``tr(Sigma Delta) = c^2``; by rotation invariance only ``c^2`` matters.

    Raises:
      ValueError: concrete ``phi >= 1`` (use :func:`overparameterised_mixture_error`).

    References:
      arXiv:2410.04840v2, Corollary 1 (shared/THEORY.md §4.2).
    """
    check_concrete(phi=phi, synthetic_fraction=synthetic_fraction, quality=quality, label_noise=label_noise)
    if not isinstance(phi, jax.core.Tracer) and np.any(np.asarray(phi) >= 1):
        raise ValueError(f"phi must be < 1 for Corollary 1 (under-parameterised), got {phi}; "
                         "use overparameterised_mixture_error for phi > 1")
    phi = _float(phi)
    p2, c2, sigma = (jnp.asarray(a, phi.dtype) for a in (synthetic_fraction, quality, label_noise))
    u = phi / (1 - phi)
    return decomposition(jnp.zeros_like(u), sigma**2 * u, (p2**2 + p2 * (1 - p2) * u) * c2)


def overparameterised_mixture_error(phi: ArrayLike, synthetic_fraction: ArrayLike, quality: ArrayLike,
                                    label_noise: ArrayLike, teacher_norm_sq: ArrayLike = 1.0) -> Decomposition:
    """Corollary 4, corrected (``Sigma = I``, ``phi = d/n > 1``, ``lambda -> 0+``).

    ``kappa -> phi - 1``, ``u = 1/(phi - 1)``::

        B = r^2 (1 - 1/phi),   V = sigma^2/(phi - 1),   zeta = p2 c^2 (phi - p2) / (phi (phi - 1))

    Note:
      The paper prints ``u -> phi/(phi-1)`` (that is ``1 + u``) and
      ``zeta = (p2 c^2/phi^2)[p2(phi - p2)/(phi - 1) + (phi - p2)]`` with the large-``phi`` claim
      ``E - (B + V) ≃ (1 - 2/phi) p2 c^2``; both disagree with Theorem 1 and with simulation. The
      form here is Theorem 1 evaluated at ``kappa = phi - 1`` (derived; shared/THEORY.md §4.2;
      simulation evidence in docs/notes/strong.md). ``zeta -> 0`` like ``p2 c^2/phi``.

    Raises:
      ValueError: concrete ``phi <= 1``.

    References:
      arXiv:2410.04840v2, App. B.1, Corollary 4 (corrected).
    """
    check_concrete(phi=phi, synthetic_fraction=synthetic_fraction, quality=quality, label_noise=label_noise,
                   teacher_norm_sq=teacher_norm_sq)
    if not isinstance(phi, jax.core.Tracer) and np.any(np.asarray(phi) <= 1):
        raise ValueError(f"phi must be > 1 for Corollary 4 (over-parameterised), got {phi}; "
                         "use ridgeless_mixture_error for phi < 1")
    phi = _float(phi)
    p2, c2, sigma, r2 = (jnp.asarray(a, phi.dtype) for a in (synthetic_fraction, quality, label_noise, teacher_norm_sq))
    return decomposition(r2 * (1 - 1 / phi), sigma**2 / (phi - 1), p2 * c2 * (phi - p2) / (phi * (phi - 1)))
