"""Asymptotic laws of A Tale of Tails as exponents and leading-order curves (with explicit constants).

The papers state ``≍`` laws (up to constants). Here each law comes as its exponents
(:func:`tail_exponents`) and as a leading-order curve with the constant derived from the integral
approximation of the exact sum: for ``q_i ∝ i^{-b}`` (normaliser ``Z_q``) and ``p_i = i^{-beta}/zeta(beta)``,

    sum_i p_i e^{-T q_i} = Gamma(c')/(b zeta(beta)) (T/Z_q)^{-c'} (1 + O(1/T)),   c' = (beta - 1)/b,

(substitute ``u = T x^{-b}/Z_q``), and ``(1 - q)^T = e^{-Tq}(1 + O(T q^2))``. For the clean law the
first correction is exactly ``-Gamma(3 - 1/beta)/(2 Gamma(1 - 1/beta) T)`` (relative).

Corrections to the printed statements (evidence in docs/notes/tails.md):

* Thm 2.4 (n generations): printed ``E^(n) ≍ T^{-c} + n T0^{-c}``. For the resampling chain of
  THEORY.md §5.2 the exact error is ``E^(n) ≈ C_beta (T0 phi^(n)(T/T0))^{-c}``, ``phi(u) = 1 - e^{-u}``,
  and ``1/phi^(n)(u) = 1/u + n/2 + O(log n)``, so ``E^(n) ≍ (1/T + n/(2 T0))^{c} ≍ T^{-c} + (n/T0)^c``:
  the collapse term grows like ``n^c``, not ``n`` (the *horizontal* shift, ``T -> T/(1 + nT/(2T0))``,
  is linear in n).
* Thm C.2 (mixture with a narrowed tail): the error is the *smaller* of the two terms,
  ``E ≍ min((pi T)^{-c}, ((1-pi) T)^{-c'})`` (both are upper bounds, since ``q_i >= pi p_i`` and
  ``q_i >= (1 - pi) q'_i``), and the printed switch point ``(pi/(1-pi))^{-a}``, ``a = s/(1 - s)``,
  ``s = beta/beta'``, is the number of *clean* samples ``pi T`` at the switch, not ``T``.
* Cor 2.3: narrowing means ``beta' > beta`` (temperature ``< 1``); the law ``T^{-(beta-1)/beta'}``
  holds for every ``beta' > 1`` (it is faster than clean when ``beta' < beta``).

References:
  Hutter (2021) arXiv:2102.04074; A Tale of Tails arXiv:2402.07043v2, Thm 2.1, Cor 2.2, Cor 2.3,
  Thm 2.4, Thm 3.1, Thm 3.2, Cor 3.3, Thm C.2.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaincc, gammaln, zeta
from jax.typing import ArrayLike

from ._laws import _float, tail_mass

__all__ = [
    "TailExponents",
    "buy_tail_limit",
    "clean_law",
    "finite_sample_law",
    "generations_law",
    "generations_law_printed",
    "grokking_law",
    "hutter_constant",
    "narrowing_law",
    "narrowing_mixture_law",
    "narrowing_switch_point",
    "phi_iterate",
    "real_plus_ai_law",
    "tail_exponents",
    "top_k_law",
]


class TailExponents(NamedTuple):
    """Exponents of the Tale-of-Tails laws for real Zipf exponent ``beta`` (AI exponent ``beta'``).

    Attributes:
      clean: ``c = 1 - 1/beta``: ``E ≍ T^{-c}`` (Hutter 2021).
      cutoff: ``beta - 1``: the top-k plateau ``≍ k^{-(beta-1)}`` (Thm 2.1).
      onset: ``beta``: the plateau starts at ``T ≍ k^beta`` (Thm 2.1) and, with a clean fraction
        ``pi``, ends at ``T ≍ k^beta/pi`` (Thm 3.2).
      narrowing: ``(beta - 1)/beta'``: ``E ≍ T^{-(beta-1)/beta'}`` (Cor 2.3); NaN without ``beta'``.
      generations: ``c``: exponent of ``n`` in the collapse term ``(n/T0)^c`` (corrected Thm 2.4).
      generations_printed: ``1``: the printed Thm 2.4 (``n T0^{-c}``), kept for comparison.
      switch: ``a = s/(1-s)``, ``s = beta/beta'``: ``pi T ≈ (pi/(1-pi))^{-a}`` at the Thm C.2
        switch (NaN unless ``beta' > beta``).
    """

    clean: jnp.ndarray
    cutoff: jnp.ndarray
    onset: jnp.ndarray
    narrowing: jnp.ndarray
    generations: jnp.ndarray
    generations_printed: jnp.ndarray
    switch: jnp.ndarray


@jax.jit
def tail_exponents(beta: ArrayLike, beta_ai: ArrayLike | None = None) -> TailExponents:
    """The exponents of every Tale-of-Tails law (see :class:`TailExponents`)."""
    beta = _float(beta)
    b2 = jnp.full_like(beta, jnp.nan) if beta_ai is None else jnp.asarray(beta_ai, beta.dtype)
    c = 1 - 1 / beta
    s = beta / b2
    return TailExponents(
        clean=c, cutoff=beta - 1, onset=beta, narrowing=(beta - 1) / b2, generations=c,
        generations_printed=jnp.ones_like(beta), switch=jnp.where(s < 1, s / (1 - s), jnp.nan),
    )


def _zeta(s):
    return zeta(s, jnp.ones((), s.dtype))


@jax.jit
def hutter_constant(beta: ArrayLike, beta_q: ArrayLike | None = None) -> jnp.ndarray:
    """``A`` in ``E ≈ A T^{-(beta-1)/beta_q}`` for training on ``q ∝ i^{-beta_q}`` (default ``q = p``).

    ``A = Gamma(c') zeta(beta_q)^{c'} / (beta_q zeta(beta))``, ``c' = (beta-1)/beta_q``; for ``q = p``,
    ``A = Gamma(1 - 1/beta)/(beta zeta(beta)^{1/beta})``.
    """
    beta = _float(beta)
    bq = beta if beta_q is None else jnp.asarray(beta_q, beta.dtype)
    cq = (beta - 1) / bq
    return jnp.exp(gammaln(cq) + cq * jnp.log(_zeta(bq)) - jnp.log(bq) - jnp.log(_zeta(beta)))


@jax.jit
def clean_law(T: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """``C_beta T^{-(1-1/beta)}``: the clean Hutter law with its constant."""
    beta = _float(beta)
    return hutter_constant(beta) * jnp.asarray(T, beta.dtype) ** (-(1 - 1 / beta))


@jax.jit
def top_k_law(T: ArrayLike, beta: ArrayLike, k: ArrayLike) -> jnp.ndarray:
    """Thm 2.1 with constants: ``C_beta T^{-c} + P(i > k)``; ``P(i > k) ≈ k^{-(beta-1)}/((beta-1) zeta(beta))``.

    The exact error lies between ``max`` of the two terms and (to ``O(1/T)``) their sum.
    """
    return clean_law(T, beta) + tail_mass(k, beta)


@functools.partial(jax.jit, static_argnums=1)
def phi_iterate(u: ArrayLike, n: int) -> jnp.ndarray:
    """``phi^(n)(u)``, ``phi(u) = 1 - e^{-u}`` (the Laplace exponent of a critical Poisson branching)."""
    u = _float(u)
    return jax.lax.fori_loop(0, n, lambda _, v: -jnp.expm1(-v), u)


@functools.partial(jax.jit, static_argnums=2)
def generations_law(T: ArrayLike, T0: ArrayLike, n: int, beta: ArrayLike) -> jnp.ndarray:
    """Corrected Thm 2.4: ``E^(n) ≈ C_beta (T0 phi^(n)(T/T0))^{-c}``, ``c = 1 - 1/beta``.

    Derivation: for tokens with ``T0 p_i = O(1)`` the count chain is a critical Poisson branching
    process, ``E[e^{-u C'} | C] = e^{-C phi(u)}``, so ``E (1 - C^(n)/T0)^T ≈ exp(-T0 p_i phi^(n)(T/T0))``:
    a clean error at the effective size ``T0 phi^(n)(T/T0) ≈ 1/(1/T + n/(2 T0))``. Relative error
    ``O(1/T0 + 1/T)`` (measured: < 0.3% at T, T0 >= 300).
    """
    beta = _float(beta)
    T = jnp.asarray(T, beta.dtype)
    return clean_law(jnp.asarray(T0, beta.dtype) * phi_iterate(T / T0, n), beta)


@jax.jit
def generations_law_printed(T: ArrayLike, T0: ArrayLike, n: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """Thm 2.4 as printed, with the clean constant: ``C_beta (T^{-c} + n T0^{-c})`` (not the chain's law)."""
    beta = _float(beta)
    c = 1 - 1 / beta
    return hutter_constant(beta) * (jnp.asarray(T, beta.dtype) ** (-c) + n * jnp.asarray(T0, beta.dtype) ** (-c))


def finite_sample_law(T: ArrayLike, T0: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """Cor 2.2 with constants: ``C_beta (T0 (1 - e^{-T/T0}))^{-c} ≍ T^{-c} + T0^{-c}``."""
    return generations_law(T, T0, 1, beta)


@jax.jit
def narrowing_law(T: ArrayLike, beta: ArrayLike, beta_ai: ArrayLike) -> jnp.ndarray:
    """Cor 2.3 with constants: ``A T^{-(beta-1)/beta'}`` (see :func:`hutter_constant`)."""
    beta = _float(beta)
    b2 = jnp.asarray(beta_ai, beta.dtype)
    return hutter_constant(beta, b2) * jnp.asarray(T, beta.dtype) ** (-(beta - 1) / b2)


@jax.jit
def grokking_law(T: ArrayLike, beta: ArrayLike, k: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
    """Thm 3.2, uniform leading order: the integral form of ``sum_i p_i e^{-T q_i}``, split at ``k + 1/2``.

    With ``q_i = a p_i`` (``i <= k``, ``a = pi + (1 - pi)/P(i <= k)``) and ``q_i = pi p_i`` (``i > k``):
    ``(1/beta) zeta^{-1/beta} Gamma(c) [ (aT)^{-c} Q(c, aT u_k) + (pi T)^{-c} P(c, pi T u_k) ]``,
    ``u_k = (k + 1/2)^{-beta}/zeta(beta)``, ``P``/``Q`` the regularised incomplete gamma functions.
    Early (``T ≪ k^beta/pi``) it is ``≈ C_beta T^{-c} + P(i > k)``, the plateau; late
    (``pi T ≫ k^beta``) ``≈ C_beta (pi T)^{-c}``, the clean slope.
    """
    beta = _float(beta)
    T = jnp.asarray(T, beta.dtype)
    pi = jnp.asarray(fraction, beta.dtype)
    c = 1 - 1 / beta
    z = _zeta(beta)
    head = 1 - tail_mass(k, beta)
    a = pi + (1 - pi) / head
    uk = (jnp.asarray(k, beta.dtype) + 0.5) ** (-beta) / z
    pref = jnp.exp(gammaln(c) - jnp.log(beta) - jnp.log(z) / beta)  # Gamma(c) zeta^{-1/beta}/beta
    early = pref * (a * T) ** (-c) * gammaincc(c, a * T * uk)
    safe_pi = jnp.where(pi > 0, pi, 1.0)
    # pi = 0: the tail beyond k is never sampled; the integral is its whole mass
    late = jnp.where(pi > 0, pref * (safe_pi * T) ** (-c) * gammainc(c, safe_pi * T * uk),
                     (k + 0.5) ** (1 - beta) / ((beta - 1) * z))
    return early + late


@jax.jit
def narrowing_mixture_law(T: ArrayLike, beta: ArrayLike, beta_ai: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
    """Corrected Thm C.2: ``min(C_beta (pi T)^{-c}, A' ((1 - pi) T)^{-c'})`` (``A'`` from :func:`hutter_constant`)."""
    beta = _float(beta)
    T = jnp.asarray(T, beta.dtype)
    pi = jnp.asarray(fraction, beta.dtype)
    return jnp.minimum(clean_law(pi * T, beta), narrowing_law((1 - pi) * T, beta, beta_ai))


@jax.jit
def narrowing_switch_point(beta: ArrayLike, beta_ai: ArrayLike, fraction: ArrayLike) -> jnp.ndarray:
    """``T_x`` where the two Thm C.2 terms are equal: ``C_beta (pi T)^{-c} = A' ((1-pi) T)^{-c'}``.

    ``T_x = [ (C_beta/A') pi^{-c} (1-pi)^{c'} ]^{1/(c - c')}`` (``beta' > beta``). Without the
    constants, ``pi T_x = (pi/(1 - pi))^{-a}`` with ``a = s/(1-s)``, ``s = beta/beta'``: the printed
    switch point counts clean samples.
    """
    beta = _float(beta)
    b2 = jnp.asarray(beta_ai, beta.dtype)
    pi = jnp.asarray(fraction, beta.dtype)
    c, c2 = 1 - 1 / beta, (beta - 1) / b2
    log_ratio = jnp.log(hutter_constant(beta)) - jnp.log(hutter_constant(beta, b2))
    return jnp.exp((log_ratio - c * jnp.log(pi) + c2 * jnp.log1p(-pi)) / (c - c2))


@jax.jit
def buy_tail_limit(beta: ArrayLike, k: ArrayLike, start: ArrayLike) -> jnp.ndarray:
    """Thm 3.1 exact limit ``T → inf``: the unlearnable gap ``sum_{k < i < start} p_i`` (0 if ``start <= k+1``).

    ``≈ k^{-(beta-1)} (1 - C^{-(beta-1)})/((beta-1) zeta(beta))`` for ``start/k → C``.
    """
    beta = _float(beta)
    start = jnp.asarray(start, beta.dtype)
    k = jnp.asarray(k, beta.dtype)
    return jnp.where(start > k + 1, tail_mass(k, beta) - tail_mass(start - 1, beta), jnp.asarray(0.0, beta.dtype))


@jax.jit
def real_plus_ai_law(T_real: ArrayLike, T_ai: ArrayLike, beta: ArrayLike, k: ArrayLike) -> jnp.ndarray:
    """Cor 3.3 with constants: ``C_beta (T_real + T_AI)^{-c} + P(i > k)`` (for ``T_real ≪ k^beta``)."""
    beta = _float(beta)
    return clean_law(jnp.asarray(T_real, beta.dtype) + jnp.asarray(T_ai, beta.dtype), beta) + tail_mass(k, beta)
