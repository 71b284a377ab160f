"""Adaptive regularisation ``lambda = lambda0 T^{-ell}``: the exponent choices and a data-driven fit."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["RidgeExponentFit", "RidgeExponents", "adaptive_ridge", "effective_b", "fit_ridge_exponent", "ridge_exponents"]


def adaptive_ridge(T: ArrayLike, exponent: ArrayLike, ridge0: ArrayLike = 1.0) -> jax.Array:
    """The ridge schedule ``lambda = lambda0 * T^{-ell}`` (kcollapse normalisation).

    Args:
      T: downstream sample sizes (any shape). exponent: ``ell``. ridge0: ``lambda0``.

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> round(float(adaptive_ridge(1e4, 0.8)), 12)    # Demystified Fig. 2: T^{-ell_crit}
      0.000630957344

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, §5 (``lambda ≍ T^{-ell}``) and Fig. 2/5.
    """
    if not isinstance(T, jax.core.Tracer):
        arr = _checks.check_finite_array("T", T)
        if arr.size and (arr <= 0).any():
            raise ValueError(f"T must be > 0, got {arr.min()}")
    T = jnp.asarray(T)
    if not jnp.issubdtype(T.dtype, jnp.floating):
        T = T.astype(jnp.result_type(float))
    return jnp.asarray(ridge0, T.dtype) * T ** (-jnp.asarray(exponent, T.dtype))


def effective_b(T0: ArrayLike, T: ArrayLike) -> jax.Array:
    """``b = log T0 / log T``: the exponent with ``T0 = T^b`` (Demystified Fig. 5 uses it for ``ell* = b ell_crit``).

    With ``a = 0``, ``T^{-b ell_crit} = T0^{-ell_crit}``: regularise as if only the ``T0`` real samples
    the generator saw were available (shared/THEORY.md §2.5).
    """
    T = jnp.asarray(T)
    if not jnp.issubdtype(T.dtype, jnp.floating):
        T = T.astype(jnp.result_type(float))
    return jnp.log(jnp.asarray(T0, T.dtype)) / jnp.log(T)


class RidgeExponents(NamedTuple):
    """Ridge-schedule exponents of Corollary 5.3.

    Attributes:
      ell_crit: ``beta/(1 + 2 beta r_bar)``: optimal for clean data (the "classical" choice).
      ell_star: ``min((b - a) ell_crit, beta)``: optimal with synthetic data (``n sigma0^2 ≍ T^a``,
        ``T0 ≍ T^b``).
      rate_classical: error decay rate with ``ell_crit`` under synthetic data, ``c + b - a - 1``
        (negative: the error grows with ``T``).
      rate_star: decay rate with ``ell_star``, ``(b - a) c``.
    """

    ell_crit: jax.Array
    ell_star: jax.Array
    rate_classical: jax.Array
    rate_star: jax.Array


def ridge_exponents(beta: ArrayLike, r: ArrayLike, *, a: ArrayLike = 0.0, b: ArrayLike = 1.0) -> RidgeExponents:
    """The ridge exponents ``ell_crit`` and ``ell* = (b - a) ell_crit`` of Corollary 5.3.

    A thin view of :func:`kcollapse.theory.power_law_exponents` (which carries the corrections to the
    printed corollary: ``r_bar`` in ``ell_crit``, ``n sigma0^2 ≍ T^a``).

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> e = ridge_exponents(2.0, 0.375, b=0.5)
      >>> round(float(e.ell_crit), 6), round(float(e.ell_star), 6)
      (0.8, 0.4)

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Corollary 5.3.
    """
    from ..theory import power_law_exponents

    e = power_law_exponents(beta, r, a, b)
    return RidgeExponents(e.ell_crit, e.ell_star, e.rate_classical, e.rate_synthetic)


class RidgeExponentFit(NamedTuple):
    """A fitted schedule ``lambda*(T) ≈ lambda0 T^{-ell}``.

    Attributes:
      ell, ell_se, ci_low, ci_high: the fitted ``ell`` (minus the log-log slope), its standard error
        and confidence interval.
      ridge0: the fitted ``lambda0``.
      fit: the underlying :class:`kcollapse.scaling.PowerLawFit` of ``lambda*`` against ``T``.
    """

    ell: jax.Array
    ell_se: jax.Array
    ci_low: jax.Array
    ci_high: jax.Array
    ridge0: jax.Array
    fit: object


def fit_ridge_exponent(
    T: ArrayLike,
    optimal_ridges: ArrayLike,
    sem: ArrayLike | None = None,
    *,
    window: tuple[float | None, float | None] | None = None,
    confidence: float = 0.95,
) -> RidgeExponentFit:
    """Fit ``ell`` from an optimal-ridge curve ``lambda*(T)`` (theory or simulation).

    ``log lambda* = log lambda0 - ell log T`` by (weighted) least squares
    (:func:`kcollapse.scaling.fit_power_law`). Theory curves (no ``sem``) get the residual-based error;
    for simulated ``lambda*`` pass ``sem`` (e.g. half the bootstrap CI width divided by 1.96).

    Clean data gives ``ell -> ell_crit``; with a fixed number ``T0`` of real samples behind the
    generator (``b = 0``) and ``n >= 1`` it tends to ``0`` (``lambda* -> const ≍ T0^{-ell_crit}``);
    with ``T0 = T^b`` to ``(b - a) ell_crit`` (Corollary 5.3).

    Args:
      T: ``(k,)`` sample sizes. optimal_ridges: ``(k,)`` ``lambda*``. sem: their standard errors or ``None``.
      window, confidence: as in :func:`kcollapse.scaling.fit_power_law`.

    Returns:
      :class:`RidgeExponentFit`.
    """
    from ..scaling import fit_power_law

    fit = fit_power_law(T, optimal_ridges, sem, window=window, confidence=confidence)
    return RidgeExponentFit(-fit.exponent, fit.exponent_se, -fit.ci_high, -fit.ci_low, fit.prefactor, fit)
