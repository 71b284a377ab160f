"""The formulas exactly as printed in Strong Model Collapse v2, where they are wrong.

Not exported and never used for output: the tests and the notes (docs/notes/strong.md) evaluate
them next to the simulation to document *why* kcollapse implements corrected forms.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

from ..spectra import Spectrum
from ..theory._types import Decomposition, decomposition
from ._mixture import pooled_noise
from ._projection import _order_jit

__all__ = ["printed_corollary2", "printed_corollary4_collapse", "printed_theorem2"]


def printed_theorem2(spectrum: Spectrum, mismatch: ArrayLike, n_samples, width, synthetic_fraction, ridge,
                     label_noise) -> Decomposition:
    """Theorem 2 as printed: ``V = (sigma^2/e)(...)`` (no ``1/n``) and ``p2 omega'`` in ``zeta``."""
    lam = spectrum.eigenvalues
    dt = lam.dtype
    c = spectrum.coefficients.astype(dt)
    delta = jnp.asarray(mismatch, dt)
    n, m, p2, ridge, s1 = (jnp.asarray(a, dt) for a in (n_samples, width, synthetic_fraction, ridge, label_noise))
    p1 = 1 - p2
    params, g, df1, df2, theta_a, ratio = _order_jit(lam, n, m, ridge)
    u, om = params.u, params.omega_prime
    bias = (1 + u) * jnp.sum(lam * c * c * (1 - g) ** 2) + om * jnp.sum(c * c * g * g)
    variance = pooled_noise(p2, s1, None) / params.e * (df2 + theta_a * (ratio * (1 + u) - u))
    zeta = (p2**2 * (1 + p1 * u) * jnp.sum(delta * lam * g * g) + p2 * om * jnp.sum(delta * g * g)
            + p2 * u * jnp.sum(delta * lam * (1 - p2 * g) ** 2))
    return decomposition(bias, variance, zeta)


def printed_corollary4_collapse(phi: ArrayLike, synthetic_fraction: ArrayLike, quality: ArrayLike) -> jnp.ndarray:
    """Corollary 4's printed ``zeta = (p2 c^2/phi^2) [p2 (phi - p2)/(phi - 1) + (phi - p2)]``."""
    phi = jnp.asarray(phi, jnp.result_type(float))
    p2, c2 = jnp.asarray(synthetic_fraction, phi.dtype), jnp.asarray(quality, phi.dtype)
    return p2 * c2 / phi**2 * (p2 * (phi - p2) / (phi - 1) + (phi - p2))


def printed_corollary2(phi: ArrayLike, synthetic_fraction: ArrayLike, weight: ArrayLike, quality: ArrayLike,
                       sigma1: ArrayLike, sigma2: ArrayLike) -> jnp.ndarray:
    """Corollary 2 as printed: ``p2^2 alpha^2 c^2 + ((1-alpha) p1 sigma1^2 + alpha p2 sigma2^2) phi``."""
    phi = jnp.asarray(phi, jnp.result_type(float))
    p2, a, c2, s1, s2 = (jnp.asarray(x, phi.dtype) for x in (synthetic_fraction, weight, quality, sigma1, sigma2))
    p1 = 1 - p2
    return p2**2 * a**2 * c2 + ((1 - a) * p1 * s1**2 + a * p2 * s2**2) * phi
