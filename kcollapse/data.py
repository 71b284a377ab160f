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

__all__ = ["sample_design", "sample_labels", "sample_wishart_factor"]


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


def sample_wishart_factor(key: jax.Array, spectrum: Spectrum, n_samples: int) -> jax.Array:
    """A lower-triangular ``B`` with ``B B^T ~ Wishart_d(Sigma, n_samples)``: the law of ``X^T X``.

    Bartlett decomposition: ``A = L L^T ~ Wishart_d(I, n)`` for lower-triangular ``L`` with
    ``L_ii = sqrt(chi^2_{n - i + 1})`` (``i = 1..d``) and ``L_ij ~ N(0, 1)`` below the diagonal,
    all independent; ``B = Sigma^{1/2} L``. Together with ``X^T eps | X ~ N(0, X^T X)`` (so
    ``X^T eps`` can be drawn as ``B z``, ``z ~ N(0, I_d)``) this samples the sufficient statistics
    of a Gaussian design and its noise *exactly in distribution* in ``O(d^2)`` random numbers
    instead of ``O(n d)``; ``B`` is also the Cholesky factor of ``X^T X``.

    Args:
      key: a JAX PRNG key.
      spectrum: the covariance spectrum (``d`` eigenvalues).
      n_samples: the number of rows ``n >= d`` the Gram stands for (static).

    Returns:
      ``(d, d)`` lower-triangular factor in the spectrum's dtype.

    Raises:
      ValueError: if ``n_samples < d`` (the Wishart is then singular; sample the design instead).

    References:
      Bartlett (1933); e.g. Anderson, *An Introduction to Multivariate Statistical Analysis*, Thm 7.2.1.
    """
    d = spectrum.d
    if n_samples < d:
        raise ValueError(f"n_samples must be >= d ({d}) for the Bartlett factor, got {n_samples}; sample the design instead")
    dt = spectrum.dtype
    k_off, k_diag = jax.random.split(key)
    off = jnp.tril(jax.random.normal(k_off, (d, d), dtype=dt), k=-1)
    df = jnp.asarray(n_samples, dt) - jnp.arange(d, dtype=dt)
    diag = jnp.sqrt(jax.random.chisquare(k_diag, df, (d,), dtype=dt))
    L = off + jnp.diag(diag)
    return jnp.sqrt(spectrum.eigenvalues)[:, None] * L
