"""The conventions every kcollapse module shares, defined once.

Both the simulation side and the theory side import from here, so the two cannot drift
(shared/THEORY.md header; STYLE.md practice 7).

* **Ridge normalisation.** ``w = argmin (1/T)||X w - y||^2 + ridge ||w||^2``, i.e.
  ``w = (X^T X / T + ridge I)^{-1} X^T y / T``. ``ridge = 0`` means the minimum-norm least-squares
  solution ``X^+ y``. In kernel form the matrix inverted is ``K + ridge * T * I``, so
  scikit-learn's ``alpha`` equals ``ridge * T``.
* **Test error.** The excess risk ``(w_hat - w0)^T Sigma (w_hat - w0)`` against the *true* teacher
  ``w0``; the label-noise floor is not included. kcollapse works in the eigenbasis of ``Sigma``, so
  this is ``sum_i lambda_i (w_hat_i - c_i)^2``.
* **Teacher normalisation.** Unless the user supplies teacher coefficients and asks otherwise,
  ``||w0||_Sigma^2 = sum_i lambda_i c_i^2 = 1``, so the null predictor ``w = 0`` has test error 1.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    "CONVENTIONS",
    "ridge_gram_shift",
    "sklearn_alpha",
    "sigma_norm_sq",
    "test_error",
]

#: Human- and machine-readable statement of the conventions; written into every output's metadata.
CONVENTIONS: dict[str, str] = {
    "ridge": "w = argmin (1/T)||Xw - y||^2 + ridge*||w||^2 = (X^T X/T + ridge*I)^{-1} X^T y/T; "
    "ridge = 0 is min-norm least squares; kernel form inverts (K + ridge*T*I), "
    "so scikit-learn alpha = ridge*T",
    "test_error": "excess risk (w_hat - w0)^T Sigma (w_hat - w0) against the true teacher w0 "
    "(label-noise floor not included)",
    "teacher": "||w0||_Sigma^2 = sum_i lambda_i c_i^2 = 1 unless the user gives the teacher "
    "(null predictor has error ||w0||_Sigma^2)",
    "basis": "inputs are sampled in the eigenbasis of Sigma: x = sqrt(lambda) * z, z ~ N(0, I_d)",
    "sem": "standard error of the mean over independent seeds: std(ddof=1)/sqrt(seeds)",
}


def ridge_gram_shift(ridge: ArrayLike, n_samples: int | ArrayLike) -> jnp.ndarray:
    """The shift added to ``X^T X`` (or the Gram ``X X^T``) for a ridge value: ``ridge * T``.

    ``(X^T X / T + ridge I)^{-1} X^T y / T = (X^T X + ridge T I)^{-1} X^T y``.
    """
    return jnp.asarray(ridge) * n_samples


def sklearn_alpha(ridge: float, n_samples: int) -> float:
    """scikit-learn ``Ridge``/``KernelRidge`` ``alpha`` equivalent to kcollapse's ``ridge``."""
    return float(ridge) * int(n_samples)


def sigma_norm_sq(eigenvalues: ArrayLike, v: ArrayLike) -> jnp.ndarray:
    """``||v||_Sigma^2 = sum_i lambda_i v_i^2`` over the last axis (``v`` in the eigenbasis)."""
    v = jnp.asarray(v)
    return jnp.sum(jnp.asarray(eigenvalues) * v * v, axis=-1)


def test_error(eigenvalues: ArrayLike, w_hat: ArrayLike, w0: ArrayLike) -> jnp.ndarray:
    """Excess risk ``(w_hat - w0)^T Sigma (w_hat - w0)`` with ``Sigma = diag(eigenvalues)``.

    Args:
      eigenvalues: ``(d,)`` eigenvalues of the input covariance.
      w_hat: ``(..., d)`` estimates in the eigenbasis.
      w0: ``(d,)`` teacher in the eigenbasis.

    Returns:
      ``(...)`` test errors.
    """
    return sigma_norm_sq(eigenvalues, jnp.asarray(w_hat) - jnp.asarray(w0))


test_error.__test__ = False  # not a pytest test, despite the name
