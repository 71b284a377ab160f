"""Kernel ridge regression in kcollapse's normalisation, a whole ridge grid from one eigh.

``f(x) = K(x, X) alpha``, ``alpha = (K + ridge T I)^{-1} y`` — the dual form of
``argmin (1/T) sum (f(x_t) - y_t)^2 + ridge ||f||_H^2`` (shared/THEORY.md §1.1 and §2.6). So
scikit-learn's ``KernelRidge(alpha=ridge * T)`` is the same estimator
(:func:`kcollapse._conventions.sklearn_alpha`). ``ridge = 0`` is the minimum-norm interpolant
``K^+ y`` (Gram eigenvalues below ``eps T max`` are treated as zero).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _checks
from ..solvers import _rank_tol, _spectral_weights
from ._functions import Kernel
from ._gram import DEFAULT_MEMORY_BUDGET, gram, kernel_matvec

__all__ = ["KernelRidgeFactor", "kernel_ridge", "kernel_ridge_factor", "kernel_ridge_path"]

_HI = jax.lax.Precision.HIGHEST


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KernelRidgeFactor:
    """``K = V diag(mu) V^T`` of a training Gram; serves every ridge value.

    Attributes:
      eigenvalues: ``(T,)`` eigenvalues ``mu`` of the Gram (ascending).
      eigenvectors: ``(T, T)`` orthonormal eigenvectors (columns).
    """

    eigenvalues: jax.Array
    eigenvectors: jax.Array


def kernel_ridge_factor(K: ArrayLike) -> KernelRidgeFactor:
    """Eigendecompose a symmetric PSD training Gram ``(T, T)`` once."""
    mu, V = jnp.linalg.eigh(jnp.asarray(K))
    return KernelRidgeFactor(mu, V)


def kernel_ridge_path(factor: KernelRidgeFactor | ArrayLike, y: ArrayLike, ridges: ArrayLike) -> jax.Array:
    """Dual coefficients ``alpha(ridge) = (K + ridge T I)^{-1} y`` for a grid of ridge values.

    Args:
      factor: a :class:`KernelRidgeFactor`, or the ``(T, T)`` Gram itself.
      y: ``(T,)`` or ``(T, k)`` targets.
      ridges: ``(n_ridges,)`` values ``>= 0`` (kcollapse normalisation; 0 = min-norm interpolant).

    Returns:
      ``(n_ridges, T)`` or ``(n_ridges, T, k)``.
    """
    if not isinstance(factor, KernelRidgeFactor):
        factor = kernel_ridge_factor(factor)
    mu, V = factor.eigenvalues, factor.eigenvectors
    T = mu.shape[-1]
    y = jnp.asarray(y, mu.dtype)
    wts = _spectral_weights(mu, jnp.asarray(ridges, mu.dtype) * T, _rank_tol(mu, T, T))  # (R, T)
    z = jnp.matmul(V.T, y, precision=_HI)
    if y.ndim == 1:
        return jnp.matmul(wts * z, V.T, precision=_HI)
    return jnp.einsum("ij,rj,jk->rik", V, wts, z, precision=_HI)


def kernel_ridge(kernel: Kernel, X: ArrayLike, y: ArrayLike, ridges: ArrayLike, X_eval: ArrayLike | None = None, *,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET) -> jax.Array:
    """Fit KRR on ``(X, y)`` for every ridge value; return predictions on ``X_eval`` (or the dual coefficients).

    Args:
      kernel: the kernel.
      X: ``(T, p)`` training inputs. y: ``(T,)`` targets.
      ridges: scalar or ``(n_ridges,)`` ridge values ``>= 0`` (``alpha_sklearn = ridge * T``).
      X_eval: ``(n, p)`` evaluation inputs; ``None`` returns the dual coefficients instead.
      memory_budget: bytes for the Gram and the prediction tiles.

    Returns:
      ``(n_ridges, n)`` predictions (``(n_ridges, T)`` dual coefficients); without the leading
      axis for a scalar ridge.

    Examples:
      >>> import jax.numpy as jnp, kcollapse as kc
      >>> X = jnp.linspace(-1, 1, 20)[:, None]; y = jnp.sin(3 * X[:, 0])
      >>> f = kc.kernels.kernel_ridge(kc.kernels.RBF(gamma=2.0), X, y, 1e-3, X_eval=jnp.zeros((1, 1)))
      >>> bool(abs(f[0]) < 0.05)
      True
    """
    ridges_np = _checks.check_nonneg_array("ridges", ridges)
    scalar = ridges_np.ndim == 0
    y_arr = _checks.check_finite_array("y", y, ndim=1)
    K = gram(kernel, X, memory_budget=memory_budget)
    if y_arr.shape[0] != K.shape[0]:
        raise ValueError(f"y has {y_arr.shape[0]} entries but X has {K.shape[0]} rows")
    alpha = kernel_ridge_path(K, jnp.asarray(y_arr, K.dtype), jnp.atleast_1d(jnp.asarray(ridges_np, K.dtype)))
    if X_eval is not None:
        alpha = kernel_matvec(kernel, X_eval, X, alpha.T, memory_budget=memory_budget).T
    return alpha[0] if scalar else alpha
