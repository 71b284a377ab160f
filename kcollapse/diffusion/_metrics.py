"""Distances between the Gaussian fit of a sample and the truth ``N(0, sigma^2 I_d)`` (closed forms)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jax.typing import ArrayLike

__all__ = ["gaussian_fit_metrics", "gaussian_tv_1d", "gaussian_w2_sq"]


def gaussian_w2_sq(mean: ArrayLike, cov: ArrayLike, sigma: ArrayLike) -> jax.Array:
    """``W2^2(N(mean, cov), N(0, sigma^2 I)) = ||mean||^2 + sum_i (sqrt(lam_i) - sigma)^2`` (``lam_i``: eigenvalues of ``cov``)."""
    mean, cov = jnp.asarray(mean), jnp.asarray(cov)
    lam = jnp.clip(jnp.linalg.eigvalsh(cov), 0.0)
    return jnp.sum(mean**2) + jnp.sum((jnp.sqrt(lam) - sigma) ** 2)


def gaussian_tv_1d(mu1: ArrayLike, s1: ArrayLike, mu0: ArrayLike, s0: ArrayLike) -> jax.Array:
    """``TV(N(mu1, s1^2), N(mu0, s0^2)) = (1/2) int |p1 - p0|``, exact (``d = 1``).

    The densities cross at the roots ``r1 <= r2`` of ``log p1 = log p0`` (a quadratic; one root when
    ``s1 = s0``), and ``TV = |P1(r1, r2) - P0(r1, r2)|``. Equal scales: ``TV = erf(|mu1 - mu0|/(2 sqrt 2 s))``.
    Roots by the cancellation-free quadratic formula; a relative scale gap below 1e-6 uses the
    equal-scale form (error ``O(1e-6)``).
    """
    mu1, s1, mu0, s0 = (jnp.asarray(x) for x in (mu1, s1, mu0, s0))
    A = 0.5 / s0**2 - 0.5 / s1**2
    B = mu1 / s1**2 - mu0 / s0**2
    C = 0.5 * mu0**2 / s0**2 - 0.5 * mu1**2 / s1**2 + jnp.log(s0 / s1)
    near = jnp.abs(s1 - s0) < 1e-6 * s0
    A_ = jnp.where(near, 1.0, A)
    disc = jnp.sqrt(jnp.clip(B**2 - 4 * A_ * C, 0.0))
    q = -0.5 * (B + jnp.where(B >= 0, 1.0, -1.0) * disc)
    q = jnp.where(q == 0, jnp.finfo(q.dtype).tiny, q)
    ra, rb = q / A_, C / q
    r1, r2 = jnp.minimum(ra, rb), jnp.maximum(ra, rb)
    p1 = ndtr((r2 - mu1) / s1) - ndtr((r1 - mu1) / s1)
    p0 = ndtr((r2 - mu0) / s0) - ndtr((r1 - mu0) / s0)
    s = 0.5 * (s1 + s0)
    equal = jax.scipy.special.erf(jnp.abs(mu1 - mu0) / (2 * jnp.sqrt(2.0) * s))
    return jnp.where(near, equal, jnp.abs(p1 - p0))


def gaussian_fit_metrics(y: ArrayLike, sigma: ArrayLike) -> dict[str, jax.Array]:
    """Per-sample metrics of the Gaussian fit ``N(mean(y), cov(y))`` (divisor ``n``) against ``N(0, sigma^2 I_d)``.

    Returns ``mean_sq_error`` ``||mean||^2``, ``trace_cov`` ``tr cov``, ``w2_sq`` (:func:`gaussian_w2_sq`) and,
    for ``d = 1`` only, ``tv`` (:func:`gaussian_tv_1d`; it is the TV of the Gaussian fit, not of the model).
    """
    y = jnp.asarray(y)
    n, d = y.shape
    m = y.mean(axis=0)
    yc = y - m
    cov = yc.T @ yc / n
    out = {"mean_sq_error": jnp.sum(m**2), "trace_cov": jnp.trace(cov), "w2_sq": gaussian_w2_sq(m, cov, sigma)}
    if d == 1:
        out["tv"] = gaussian_tv_1d(m[0], jnp.sqrt(cov[0, 0]), jnp.zeros((), y.dtype), jnp.asarray(sigma, y.dtype))
    return out
