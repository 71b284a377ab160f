"""Numerically careful special functions for the Gaussian-refit moments (private).

The refit factors are ``1 - O(1/M)``; their logarithms must be accurate to far better than
``1/M`` for products over thousands of generations, so the ``O(1)`` parts are cancelled
analytically (Stirling series) instead of by subtracting two large ``gammaln`` values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, polygamma

__all__ = [
    "chi2_log_mean",
    "chi2_log_moment",
    "chi2_log_var",
    "laplace_sqrt_log",
]

_STIRLING_FROM = 10.0


def _log_gamma_ratio_rem(x: jax.Array, s: jax.Array) -> jax.Array:
    """``log Gamma(x + s) - log Gamma(x) - s log x`` (an ``O(1/x)`` quantity), accurate for all ``x > 0``."""
    # Stirling: log G(z) = (z - 1/2) log z - z + log(2 pi)/2 + 1/(12 z) - 1/(360 z^3) + 1/(1260 z^5) - ...
    big_x = jnp.maximum(x, _STIRLING_FROM)
    big_xs = big_x + s
    stirling = ((big_xs - 0.5) * jnp.log1p(s / big_x) - s
                + (1.0 / big_xs - 1.0 / big_x) / 12.0
                - (1.0 / big_xs**3 - 1.0 / big_x**3) / 360.0
                + (1.0 / big_xs**5 - 1.0 / big_x**5) / 1260.0
                - (1.0 / big_xs**7 - 1.0 / big_x**7) / 1680.0)
    small_x = jnp.minimum(x, _STIRLING_FROM)
    direct = gammaln(small_x + s) - gammaln(small_x) - s * jnp.log(small_x)
    return jnp.where(x >= _STIRLING_FROM, stirling, direct)


def chi2_log_moment(nu: jax.Array, divisor: jax.Array, power: float | jax.Array) -> jax.Array:
    """``log E[(chi2_nu / D)^p]`` for ``p > -nu/2``: ``p log(nu/D) + [log G(nu/2 + p) - log G(nu/2) - p log(nu/2)]``."""
    nu = jnp.asarray(nu)
    p = jnp.asarray(power, nu.dtype)
    return p * jnp.log(nu / divisor) + _log_gamma_ratio_rem(nu / 2, p)


def _digamma_minus_log(x: jax.Array) -> jax.Array:
    """``psi(x) - log x`` (asymptotic series for ``x >= 10``, where the subtraction would lose digits)."""
    big = jnp.maximum(x, _STIRLING_FROM)
    inv2 = 1.0 / big**2
    series = -0.5 / big - inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))
    small = jnp.minimum(x, _STIRLING_FROM)
    return jnp.where(x >= _STIRLING_FROM, series, digamma(small) - jnp.log(small))


def chi2_log_mean(nu: jax.Array, divisor: jax.Array) -> jax.Array:
    """``E log(chi2_nu / D) = psi(nu/2) + log(2/D) = [psi(nu/2) - log(nu/2)] + log(nu/D)``."""
    nu = jnp.asarray(nu)
    return _digamma_minus_log(nu / 2) + jnp.log(nu / divisor)


def chi2_log_var(nu: jax.Array) -> jax.Array:
    """``Var log chi2_nu = psi'(nu/2)`` (trigamma)."""
    nu = jnp.asarray(nu)
    return polygamma(1, nu / 2)


# Trapezoid grid in x = log s for the Laplace-transform integrals below. The integrands are
# analytic in the strip |Im x| < pi (the nearest singularities of the Laplace transform sit at
# s = -D/2, -D/(2c)), so the trapezoid error is O(exp(-2 pi^2 / h)) ~ 1e-68 for h = 1/8; the
# truncation at x = -90 costs O(exp(-45)) relative, and at x = 20 the integrand has decayed like
# exp(-e^20 a/D) (the pool term a/D >= 1/2 for a constant batch size).
_H = 0.125
_X_MIN, _X_MAX = -90.0, 20.0
_N_GRID = int(round((_X_MAX - _X_MIN) / _H)) + 1


def laplace_sqrt_log(nu: jax.Array, c: jax.Array, divisor: jax.Array,
                     excess: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``1 - E sqrt(U)`` and ``E log U`` for ``U = (a + X + c Y)/D``, ``X ~ chi2_nu``, ``Y ~ chi2_1``.

    This is the accumulate-mode variance factor (kcollapse's derivation, docs/notes/gaussian.md):
    with pool divisor ``a = D(N_{k-1})``, batch ``M`` (``nu = M - 1``) and ``c = N_{k-1}/N_k``,
    ``sigma_k^2 = sigma_{k-1}^2 U_k`` with ``U_k`` independent of the past. With the Laplace
    transform ``L(s) = E exp(-s U) = exp(-s a/D) (1 + 2s/D)^{-nu/2} (1 + 2cs/D)^{-1/2}``::

        1 - E sqrt(U) = (4 pi)^{-1/2} int_0^inf (L(s) - e^{-s}) s^{-3/2} ds
        E log U       =               int_0^inf (e^{-s} - L(s)) s^{-1}   ds     (Frullani)

    evaluated by the trapezoid rule in ``x = log s``. ``excess = (D - a)/D`` is passed exactly
    (``M/D`` for ``k >= 2``) so that ``log L(s) + s`` is formed without cancellation.

    ``a`` enters only through ``excess``. All arguments broadcast to a common ``(K,)`` shape; ``a > 0``
    is required for the grid to capture the integrand (the first refit, ``a = 0``, has the closed forms
    of :func:`chi2_log_moment` / :func:`chi2_log_mean`).
    """
    dt = jnp.result_type(nu, c, divisor, excess)
    x = jnp.linspace(_X_MIN, _X_MAX, _N_GRID, dtype=dt)
    s = jnp.exp(x)

    def one(args):
        nu_k, c_k, d_k, ex_k = args
        t = s * ex_k - 0.5 * nu_k * jnp.log1p(2 * s / d_k) - 0.5 * jnp.log1p(2 * c_k * s / d_k)  # log L + s
        diff = jnp.where(t < 1.0, jnp.exp(-s) * jnp.expm1(jnp.minimum(t, 1.0)), jnp.exp(t - s) - jnp.exp(-s))
        one_minus_sqrt = _H * jnp.sum(diff * jnp.exp(-x / 2)) / (2 * math.sqrt(math.pi))
        e_log = -_H * jnp.sum(diff)
        return one_minus_sqrt, e_log

    args = jnp.broadcast_arrays(*(jnp.asarray(v, dt) for v in (nu, c, divisor, excess)))
    flat = [a.reshape(-1) for a in args]
    oms, elog = jax.lax.map(one, tuple(flat), batch_size=128)
    return oms.reshape(args[0].shape), elog.reshape(args[0].shape)
