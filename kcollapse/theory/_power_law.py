"""Power-law ("collapsed") scaling laws: Demystified Theorem 5.2 and Corollary 5.3.

Capacity ``lambda_j ≍ j^{-beta}`` (``beta > 1``), source exponent ``r`` (``r_bar = min(r, 1)``),
adaptive ridge ``lambda ≍ T^{-ell}``, ``n sigma0^2 ≍ T^a`` and ``T0 = T^b`` (shared/THEORY.md §1.5, §2.5).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["PowerLawExponents", "power_law_error_curve", "power_law_exponents"]


class PowerLawExponents(NamedTuple):
    """Exponents of Corollary 5.3 (errors decay like ``T^{-rate}``; a negative rate means growth).

    Attributes:
      ell_crit: ``beta / (1 + 2 beta r_bar)``, the clean optimal ridge exponent (eq. 65, with ``r_bar``).
      ell_star: ``min((b - a) ell_crit, beta)``, the optimal ridge exponent with synthetic data.
      c: ``2 beta r_bar / (2 beta r_bar + 1)``, the clean noisy rate (eq. 66).
      rate_clean_noiseless: ``2 beta r_bar`` (``ell = beta``, eq. 64).
      rate_clean_noisy: ``c``.
      rate_synthetic: ``(b - a) c``, the optimal rate with synthetic data (Cor. 5.3).
      rate_classical: ``c + b - a - 1``, the rate when keeping the clean choice ``ell = ell_crit``.
      diverges: ``b < a + 1 - c`` (the classical choice makes the error grow with ``T``).
      rate_noisy_classical: ``gamma - 1/(2 beta r_bar + 1)`` with ``gamma = min(1, b - a)`` (noisy regime).
      noisy_vanishes: ``b > a + 1/(2 beta r_bar + 1)``.
    """

    ell_crit: jax.Array
    ell_star: jax.Array
    c: jax.Array
    rate_clean_noiseless: jax.Array
    rate_clean_noisy: jax.Array
    rate_synthetic: jax.Array
    rate_classical: jax.Array
    diverges: jax.Array
    rate_noisy_classical: jax.Array
    noisy_vanishes: jax.Array


def power_law_exponents(beta: ArrayLike, r: ArrayLike, a: ArrayLike = 0.0, b: ArrayLike = 1.0) -> PowerLawExponents:
    """Scaling exponents of the collapsed power law (Theorem 5.2, Corollary 5.3).

    Args:
      beta: capacity exponent ``> 1``.
      r: source exponent ``> 0`` (``r_bar = min(r, 1)`` is used, see below).
      a: ``n sigma0^2 ≍ T^a`` (``a = 0``: a constant number of generations).
      b: ``T0 = T^b``.

    Returns:
      :class:`PowerLawExponents`.

    Notes:
      Corrections to the printed text (arXiv:2402.07712v2), following shared/THEORY.md §1.5/§2.5:
      ``ell_crit`` uses ``r_bar`` (printed with ``r``); the corollary's "n ≍ T^b" reads
      ``n sigma0^2 ≍ T^a``; the divergence condition of the classical choice is ``b < a + 1 - c``
      (printed "b >= a + 1 - c", a sign slip).

    Examples:
      >>> from kcollapse.theory import power_law_exponents
      >>> e = power_law_exponents(2.0, 0.375)
      >>> round(float(e.ell_crit), 6), round(float(e.c), 6)
      (0.8, 0.6)

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, Theorem 5.2,
      Corollary 5.3, eqs. (63)-(66) (App. B).
    """
    for name, v in (("beta", beta), ("r", r), ("a", a), ("b", b)):
        if not isinstance(v, jax.core.Tracer):
            _checks.check_finite_array(name, v)
    beta = jnp.asarray(beta)
    if not jnp.issubdtype(beta.dtype, jnp.floating):
        beta = beta.astype(jnp.result_type(float))
    r, a, b = (jnp.asarray(v, beta.dtype) for v in (r, a, b))
    r_bar = jnp.minimum(r, 1)
    q = 2 * beta * r_bar
    ell_crit = beta / (1 + q)
    c = q / (q + 1)
    gamma = jnp.minimum(1, b - a)
    return PowerLawExponents(
        ell_crit=ell_crit,
        ell_star=jnp.minimum((b - a) * ell_crit, beta),
        c=c,
        rate_clean_noiseless=q,
        rate_clean_noisy=c,
        rate_synthetic=(b - a) * c,
        rate_classical=c + b - a - 1,
        diverges=b < a + 1 - c,
        rate_noisy_classical=gamma - 1 / (q + 1),
        noisy_vanishes=b > a + 1 / (q + 1),
    )


def power_law_error_curve(
    T: ArrayLike,
    *,
    beta: ArrayLike,
    r: ArrayLike,
    ell: ArrayLike,
    n: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    T0: ArrayLike,
    d: ArrayLike,
) -> jax.Array:
    """Asymptotic error curve of Theorem 5.2 (up to constants, ``≍``), for overlays on log-log plots.

    ``E ≍ max(sigma^2, T^{1 - 2 r_bar ell - ell/beta}) T^{-(1 - ell/beta)}
    + n sigma0^2/(1 - phi0) max(T/T0, phi0) T^{-(1 - ell/beta)}`` with ``phi0 = d/T0 < 1``.

    Args:
      T: downstream sample sizes (any shape). beta, r: power-law exponents. ell: ridge exponent
      (``lambda = T^{-ell}``, ``0 <= ell < beta``). n: generations. sigma, sigma0: noise levels.
      T0: generator samples (``> d``). d: dimension.

    References:
      arXiv:2402.07712v2, Theorem 5.2 (collapse term from App. B.1, ``rho ≍ T0^{-1} T^{ell/beta}
      + phi0/(1-phi0) T^{-(1-ell/beta)}``).
    """
    T = jnp.asarray(T)
    if not jnp.issubdtype(T.dtype, jnp.floating):
        T = T.astype(jnp.result_type(float))
    beta, r, ell, n, sigma, sigma0, T0, d = (jnp.asarray(v, T.dtype) for v in (beta, r, ell, n, sigma, sigma0, T0, d))
    r_bar = jnp.minimum(r, 1)
    decay = T ** (-(1 - ell / beta))
    clean = jnp.maximum(sigma**2, T ** (1 - 2 * r_bar * ell - ell / beta)) * decay
    phi0 = d / T0
    synthetic = n * sigma0**2 / (1 - phi0) * jnp.maximum(T / T0, phi0) * decay
    return clean + synthetic
