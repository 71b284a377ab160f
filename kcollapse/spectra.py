"""Input covariance spectra and teachers, in the eigenbasis of ``Sigma``.

A :class:`Spectrum` holds the eigenvalues ``lambda_i`` of the input covariance ``Sigma`` and the
teacher coefficients ``c_i = v_i^T w0`` (shared/THEORY.md §1.1). kcollapse always works in this
eigenbasis: inputs are ``x = sqrt(lambda) * z`` with ``z ~ N(0, I_d)``, and the test error is
``sum_i lambda_i (w_hat_i - c_i)^2``.

Examples:
  >>> import kcollapse as kc
  >>> s = kc.spectra.power_law(100, beta=2.0, r=0.375)
  >>> round(float(s.teacher_norm_sq()), 12)
  1.0
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from . import _checks
from ._conventions import sigma_norm_sq

__all__ = ["Spectrum", "from_arrays", "isotropic", "power_law"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of ``Sigma`` and the teacher in its eigenbasis (a frozen pytree).

    Attributes:
      eigenvalues: ``(d,)`` eigenvalues ``lambda_i >= 0`` of the input covariance.
      coefficients: ``(d,)`` teacher coefficients ``c_i = v_i^T w0``.

    Both fields are array leaves, so a batch of spectra of one size can be ``vmap``-ed over.
    Build one with :func:`isotropic`, :func:`power_law` or :func:`from_arrays`, which validate.
    """

    eigenvalues: jax.Array
    coefficients: jax.Array

    @property
    def d(self) -> int:
        """Dimension (number of eigen-directions)."""
        return int(self.eigenvalues.shape[-1])

    @property
    def dtype(self) -> Any:
        return self.eigenvalues.dtype

    def teacher_norm_sq(self) -> jax.Array:
        """``||w0||_Sigma^2 = sum_i lambda_i c_i^2``: the null predictor's test error."""
        return sigma_norm_sq(self.eigenvalues, self.coefficients)

    def df(self, t: ArrayLike, m: int = 1) -> jax.Array:
        """Degrees of freedom ``df_m(t) = sum_i lambda_i^m / (lambda_i + t)^m`` (THEORY.md §1.1)."""
        lam = self.eigenvalues
        return jnp.sum((lam / (lam + jnp.asarray(t)[..., None])) ** m, axis=-1)

    def astype(self, dtype: DTypeLike) -> Spectrum:
        return Spectrum(self.eigenvalues.astype(dtype), self.coefficients.astype(dtype))


def _dtype(dtype: DTypeLike | None) -> Any:
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def from_arrays(
    eigenvalues: ArrayLike,
    coefficients: ArrayLike | None = None,
    *,
    normalize: bool = True,
    dtype: DTypeLike | None = None,
) -> Spectrum:
    """A spectrum from user arrays.

    Args:
      eigenvalues: ``(d,)`` non-negative eigenvalues of ``Sigma``, at least one positive.
      coefficients: ``(d,)`` teacher coefficients ``c_i``; default: equal energy in every
        direction, ``c_i^2 lambda_i = 1/d``.
      normalize: rescale ``c`` so that ``||w0||_Sigma^2 = 1`` (the kcollapse default). Pass
        ``False`` to keep the teacher as given.
      dtype: floating dtype of the stored arrays (default: JAX's default float).

    Raises:
      ValueError: wrong rank or length, NaN/inf, negative eigenvalues, or a teacher with zero
        ``Sigma``-norm while ``normalize=True``.
    """
    lam = _checks.check_nonneg_array("eigenvalues", eigenvalues, ndim=1)
    if lam.shape[0] == 0:
        raise ValueError("eigenvalues must have at least one entry, got an empty array")
    if not np.any(lam > 0):
        raise ValueError("eigenvalues must contain at least one positive value, got all zeros")
    lam = lam.astype(np.float64)
    if coefficients is None:
        c = np.where(lam > 0, 1.0 / np.sqrt(np.where(lam > 0, lam, 1.0) * lam.shape[0]), 0.0)
    else:
        c = _checks.check_finite_array("coefficients", coefficients, ndim=1).astype(np.float64)
        if c.shape[0] != lam.shape[0]:
            raise ValueError(
                f"coefficients must have the same length as eigenvalues ({lam.shape[0]}), got {c.shape[0]}"
            )
    if normalize:
        norm = float(np.sum(lam * c * c))
        if not norm > 0:
            raise ValueError(
                "coefficients have zero Sigma-norm (sum lambda_i c_i^2 = 0), so they cannot be "
                "normalised to ||w0||_Sigma = 1; pass a nonzero teacher or normalize=False"
            )
        c = c / np.sqrt(norm)
    dt = _dtype(dtype)
    return Spectrum(jnp.asarray(lam, dtype=dt), jnp.asarray(c, dtype=dt))


def isotropic(d: int, *, teacher: ArrayLike | None = None, normalize: bool = True, dtype: DTypeLike | None = None) -> Spectrum:
    """``Sigma = I_d``; the default teacher is ``w0 = 1/sqrt(d)`` in every coordinate (``||w0|| = 1``).

    Args:
      d: dimension, ``>= 1``.
      teacher: optional ``(d,)`` teacher; normalised to unit norm unless ``normalize=False``.
    """
    d = _checks.check_int("d", d, minimum=1)
    return from_arrays(np.ones(d), teacher, normalize=normalize, dtype=dtype)


def power_law(d: int, beta: float, r: float, *, dtype: DTypeLike | None = None) -> Spectrum:
    """Capacity/source power law (THEORY.md header and §1.5).

    ``lambda_i = i^{-beta}`` and ``c_i^2 ∝ i^{-delta}`` with ``delta = 1 + beta (2r - 1)``,
    normalised to ``sum_i lambda_i c_i^2 = 1``; ``c_i > 0``.

    Args:
      d: dimension, ``>= 1``.
      beta: capacity exponent ``> 0`` (the asymptotic theory assumes ``beta > 1``).
      r: source exponent ``>= 0``.

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, §5 and App. B;
      Cui, Loureiro, Krzakala, Zdeborová (2022).
    """
    d = _checks.check_int("d", d, minimum=1)
    beta = _checks.check_positive_float("beta", beta)
    r = _checks.check_nonneg_float("r", r)
    i = np.arange(1, d + 1, dtype=np.float64)
    delta = 1.0 + beta * (2.0 * r - 1.0)
    lam = i**-beta
    c = i ** (-delta / 2.0)
    return from_arrays(lam, c, normalize=True, dtype=dtype)
