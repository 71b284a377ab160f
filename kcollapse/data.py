"""Key-first sampling of Gaussian designs (in the eigenbasis of ``Sigma``) and noisy labels.

Examples:
  >>> import jax, kcollapse as kc
  >>> s = kc.spectra.isotropic(5)
  >>> X = kc.data.sample_design(jax.random.key(0), s, 10)
  >>> X.shape
  (10, 5)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .spectra import Spectrum

__all__ = ["sample_design", "sample_labels"]


def sample_design(key: jax.Array, spectrum: Spectrum, n_samples: int) -> jax.Array:
    """``n_samples`` iid rows ``x ~ N(0, Sigma)`` expressed in the eigenbasis of ``Sigma``.

    Args:
      key: a JAX PRNG key.
      spectrum: the covariance spectrum (``d`` eigenvalues).
      n_samples: number of rows ``T`` (static).

    Returns:
      ``(n_samples, d)`` design ``X = Z diag(sqrt(lambda))`` with ``Z`` standard normal, in the
      spectrum's dtype.
    """
    z = jax.random.normal(key, (n_samples, spectrum.d), dtype=spectrum.dtype)
    return z * jnp.sqrt(spectrum.eigenvalues)


def sample_labels(key: jax.Array, X: ArrayLike, w: ArrayLike, noise: ArrayLike) -> jax.Array:
    """Labels ``y = X w + noise * eps`` with ``eps ~ N(0, I)``.

    Args:
      key: a JAX PRNG key.
      X: ``(n_samples, d)`` design.
      w: ``(d,)`` labelling model (teacher or an earlier generation's estimate).
      noise: label-noise standard deviation ``sigma >= 0`` (scalar).

    Returns:
      ``(n_samples,)`` labels.
    """
    X = jnp.asarray(X)
    eps = jax.random.normal(key, X.shape[:1], dtype=X.dtype)
    return X @ jnp.asarray(w, X.dtype) + jnp.asarray(noise, X.dtype) * eps
