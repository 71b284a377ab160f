"""Theorem 2 of Strong Model Collapse (random projections), with the two corrections.

Model: ``f(x) = v^T S^T x`` with ``S`` ``d x m``, iid ``N(0, 1/d)`` entries; only ``v`` is fitted, by
ridge ``lambda ||v||^2`` (kcollapse normalisation = the paper's). ``phi = d/n``, ``gamma = m/d``,
``psi = m/n``; ``tr̄ = tr/d``.

**Definition 2, solved in closed form.** With ``K0 = e Sigma`` and ``K = gamma tau K0 + lambda I``
the fixed point ``1/e = 1 + psi tau tr̄(Sigma K^{-1})``, ``1/tau = 1 + tr̄(K0 K^{-1})`` reduces,
writing ``theta = lambda/(gamma tau e)`` (so ``K = gamma tau e (Sigma + theta I)``), to

    e = 1 - df_1(theta)/n,     tau = 1 - df_1(theta)/m,
    lambda d/m = theta (1 - df_1(theta)/n) (1 - df_1(theta)/m),

one scalar equation whose left side increases in ``theta`` on ``df_1(theta) < min(n, m)``, so the
root is unique. The linear ``(u, omega)`` system becomes, with ``omega' = omega/(gamma tau^2)``,
``A = tr Sigma (Sigma+theta)^{-2}`` (so ``theta A = df_1 - df_2``)::

    u = (1 + u) df_2/n + omega' A/n,     omega' = theta^2 (1 + u) A / (m - df_2),
    => u = q/(1 - q),   q = df_2/n + (df_1 - df_2)^2 / (n (m - df_2)).

(``q = 1`` exactly at ``m = n`` in the ridgeless limit: the interpolation spike.) Everything is
algebraically identical to the printed Definition 2 (tests check the printed fixed point and the
2 x 2 system with an independent numpy solver).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ..spectra import Spectrum
from ..theory import effective_ridge
from ..theory._types import Decomposition, decomposition
from ._mixture import check_concrete, pooled_noise

__all__ = ["RandomProjectionOrderParameters", "random_projection_error", "random_projection_order_parameters"]

_MAX_ITERATIONS = 200


def _gaps(lam: jax.Array, theta: jax.Array, n: jax.Array, m: jax.Array):
    """``df_1, df_2, n - df_1, m - df_1`` at ``theta > 0``, the differences free of cancellation."""
    d = jnp.asarray(lam.shape[0], lam.dtype)
    g = lam / (lam + theta)
    df1, df2 = jnp.sum(g), jnp.sum(g * g)
    s = jnp.sum(theta / (lam + theta))  # = d - df_1
    n_gap = jnp.where(s < df1, (n - d) + s, n - df1)
    m_gap = jnp.where(s < df1, (m - d) + s, m - df1)
    return df1, df2, n_gap, m_gap


@jax.jit
def _solve_theta(lam: jax.Array, ridge: jax.Array, n: jax.Array, m: jax.Array) -> jax.Array:
    """Root of ``f(x) = x + log(n - df_1) + log(m - df_1) - log(lambda d n)``, ``x = log theta`` (lambda > 0).

    Safeguarded Newton in ``log theta`` (``f`` increases; a step leaving the bracket is replaced by
    bisection; ``f = -inf`` at the lower end is treated as negative).
    Bracket: ``theta >= max(lambda d/m, theta_min)`` with ``df_1(theta_min) = min(n, m)``, and
    ``theta <= lambda d/m + tr Sigma (1/n + 1/m)`` (since ``df_1(theta) <= tr Sigma/theta``).
    """
    dt = lam.dtype
    one = jnp.ones((), dt)
    d = jnp.asarray(lam.shape[0], dt)
    safe_ridge = jnp.where(ridge > 0, ridge, one)
    lin = safe_ridge * d / m
    theta_min = effective_ridge(lam, jnp.zeros((), dt), jnp.minimum(n, m))
    lo = jnp.maximum(lin, theta_min)
    hi = lin + jnp.sum(lam) * (1 / n + 1 / m)
    hi = jnp.maximum(hi, lo)
    target = jnp.log(safe_ridge * d * n)
    tol = 4 * jnp.finfo(dt).eps

    def residual(x):
        df1, df2, n_gap, m_gap = _gaps(lam, jnp.exp(x), n, m)
        ok = (n_gap > 0) & (m_gap > 0)
        f = jnp.where(ok, x + jnp.log(jnp.where(ok, n_gap, one)) + jnp.log(jnp.where(ok, m_gap, one)) - target, -jnp.inf)
        fp = 1 + (df1 - df2) * (1 / jnp.where(ok, n_gap, one) + 1 / jnp.where(ok, m_gap, one))
        return f, fp

    def cond(state):
        i, _, lo_, hi_, step = state
        return (i < _MAX_ITERATIONS) & (jnp.abs(step) > tol * jnp.maximum(one, jnp.abs(lo_ + hi_) / 2)) & (hi_ > lo_)

    def body(state):
        i, x, lo_, hi_, _ = state
        f, fp = residual(x)
        lo_ = jnp.where(f < 0, x, lo_)
        hi_ = jnp.where(f > 0, x, hi_)
        newton = x - f / fp
        inside = (newton >= lo_) & (newton <= hi_) & jnp.isfinite(newton)
        x_new = jnp.where(inside, newton, (lo_ + hi_) / 2)
        x_new = jnp.where(f == 0, x, x_new)
        return i + 1, x_new, lo_, hi_, x_new - x

    log_lo, log_hi = jnp.log(lo), jnp.log(hi)
    state = (jnp.asarray(0), (log_lo + log_hi) / 2, log_lo, log_hi, jnp.asarray(jnp.inf, dt))
    _, x, _, _, _ = jax.lax.while_loop(cond, body, state)
    return jnp.exp(x)


@jax.custom_jvp
def _theta_positive(lam, ridge, n, m):
    return _solve_theta(lam, ridge, n, m)


@_theta_positive.defjvp
def _theta_jvp(primals, tangents):
    lam, ridge, n, m = primals
    dlam, dridge, dn, dm = tangents
    theta = _theta_positive(lam, ridge, n, m)
    df1, df2, n_gap, m_gap = _gaps(lam, theta, n, m)
    a_n, a_m = 1 / n_gap, 1 / m_gap
    # F = log theta + log(n - df1) + log(m - df1) - log(lambda d n) = 0; dF/dlog theta = 1 + (df1 - df2)(a_n + a_m)
    fx = 1 + (df1 - df2) * (a_n + a_m)
    ddf1 = jnp.sum(theta / (lam + theta) ** 2 * dlam)
    dF = -dridge / ridge + (a_n - 1 / n) * dn + a_m * dm - (a_n + a_m) * ddf1
    return theta, -theta * dF / fx


def _theta(lam: jax.Array, ridge: jax.Array, n: jax.Array, m: jax.Array) -> jax.Array:
    """``theta`` for ``lambda >= 0``; at ``lambda = 0`` the ridgeless limit ``kappa(0, min(n, m))``."""
    positive = ridge > 0
    safe = jnp.where(positive, ridge, jnp.ones((), lam.dtype))
    ridgeless = effective_ridge(lam, jnp.zeros((), lam.dtype), jnp.minimum(n, m))
    return jnp.where(positive, _theta_positive(lam, safe, n, m), ridgeless)


class RandomProjectionOrderParameters(NamedTuple):
    """Definition 2's scalars (a pytree of scalars).

    Attributes:
      theta: ``lambda/(gamma tau e)``, the effective ridge in input space.
      e: ``1 - df_1(theta)/n``.
      tau: ``1 - df_1(theta)/m``.
      u: ``q/(1 - q)`` (diverges at ``m = n`` as ``lambda -> 0``).
      omega_prime: ``omega/(gamma tau^2) = theta^2 (1 + u) tr[Sigma (Sigma+theta)^{-2}]/(m - df_2)``.
    """

    theta: jax.Array
    e: jax.Array
    tau: jax.Array
    u: jax.Array
    omega_prime: jax.Array


def _order(lam, n, m, ridge):
    theta = _theta(lam, ridge, n, m)
    denom = lam + theta
    g = jnp.where(denom > 0, lam / jnp.where(denom > 0, denom, 1), 0)
    df1, df2 = jnp.sum(g), jnp.sum(g * g)
    theta_a = jnp.sum(g * (1 - g))  # = theta tr Sigma(Sigma+theta)^{-2} = df1 - df2
    # theta_a / (m - df2) is 0/0 at theta = 0, m = d (its limit 1/2 is always multiplied by theta_a = 0)
    ratio = jnp.where(theta_a > 0, theta_a / jnp.where(theta_a > 0, m - df2, 1), 0)
    q = df2 / n + theta_a * ratio / n
    u = jnp.where(q < 1, q / jnp.where(q < 1, 1 - q, 1), jnp.inf)  # q -> 1: the spike at m = n, lambda -> 0
    omega_prime = theta * ratio * (1 + u)
    params = RandomProjectionOrderParameters(theta, 1 - df1 / n, 1 - df1 / m, u, omega_prime)
    return params, g, df1, df2, theta_a, ratio


def random_projection_order_parameters(spectrum: Spectrum, n_samples: ArrayLike, width: ArrayLike,
                                       ridge: ArrayLike) -> RandomProjectionOrderParameters:
    """Definition 2's ``(theta, e, tau, u, omega')`` for the random-projection model.

    Args:
      spectrum: eigenvalues of ``Sigma``.
      n_samples: ``n > 0``. width: ``m > 0`` (need not be an integer). ridge: ``lambda >= 0`` on ``||v||^2``
        (at ``lambda = 0`` the ridgeless limit; ``m = n`` then gives ``u = inf``, the spike).

    Returns:
      :class:`RandomProjectionOrderParameters`; differentiable (implicit function theorem).

    References:
      arXiv:2410.04840v2, Definition 2 and App. G (shared/THEORY.md §4.3).
    """
    check_concrete(n_samples=n_samples, width=width, ridge=ridge)
    lam = spectrum.eigenvalues
    n, m, ridge = (jnp.asarray(a, lam.dtype) for a in (n_samples, width, ridge))
    return _order_jit(lam, n, m, ridge)[0]


def random_projection_error(
    spectrum: Spectrum,
    mismatch: ArrayLike,
    n_samples: ArrayLike,
    width: ArrayLike,
    synthetic_fraction: ArrayLike,
    ridge: ArrayLike,
    label_noise: ArrayLike,
    synthetic_noise: ArrayLike | None = None,
) -> Decomposition:
    """Test error of the random-projection model on a real/synthetic mixture (Theorem 2, corrected).

    With ``T(theta) = Sigma + theta I``, ``T(theta; p) = p Sigma + theta I`` and the order parameters
    of :func:`random_projection_order_parameters`::

        B    = (1+u) theta^2 tr[Gamma Sigma T^{-2}] + omega' tr[Gamma Sigma^2 T^{-2}]
        V    = (sigma^2/(n e)) (tr[Sigma^2 T^{-2}] + (omega' - theta u) tr[Sigma T^{-2}])
        zeta = p2^2 (1 + p1 u) tr[Delta Sigma^3 T^{-2}] + p2^2 omega' tr[Delta Sigma^2 T^{-2}]
               + p2 u tr[Delta Sigma T(theta; p1)^2 T^{-2}]

    with ``Gamma = w1 w1^T`` (the spectrum's teacher) and ``sigma^2 = p1 sigma1^2 + p2 sigma2^2``.
    B, V and zeta all diverge at ``m = n`` as ``lambda -> 0`` (double descent in the width).

    Note:
      Two corrections to the printed v2 statement (shared/THEORY.md §4.3; evidence in
      docs/notes/strong.md): (1) ``V`` carries the factor ``1/n`` (printed ``sigma^2/e``, which is
      O(d) instead of O(1)); (2) the middle term of ``zeta`` has coefficient ``p2^2`` (printed
      ``p2``). With both, ``psi -> infinity`` recovers Theorem 1 at ridge ``lambda d/m``.

    Args:
      spectrum: eigenvalues of ``Sigma`` and the real teacher ``w1``.
      mismatch: ``(d,)`` diagonal of ``Delta``.
      n_samples: ``n``. width: ``m``. synthetic_fraction: ``p2``. ridge: ``lambda >= 0`` on ``||v||^2``.
      label_noise: ``sigma1``. synthetic_noise: ``sigma2`` (default ``sigma1``).

    Returns:
      :class:`kcollapse.theory.Decomposition` (``bias = B``, ``variance = V``, ``collapse = zeta``).
      Under ``jit`` the ridgeless spike (``lambda = 0`` with ``m = n < rank``, or ``n = rank``) comes
      out as ``inf`` (``nan`` in terms multiplied by zero).

    Raises:
      ValueError: negative inputs, or (concrete inputs) the ridgeless spike, where the error is infinite.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(50)
      >>> D = kc.strong.mismatch_covariance(s, 0.5)
      >>> wide = kc.strong.random_projection_error(s, D, 200, 1e9, 0.2, 1e-2 * 1e9 / 50, 0.1)
      >>> lin = kc.strong.mixture_error(s, D, 200, 0.2, 1e-2, 0.1)
      >>> abs(float(wide.total) / float(lin.total) - 1) < 1e-6
      True

    References:
      Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse", arXiv:2410.04840v2, Theorem 2
      and Definition 2 (corrected; shared/THEORY.md §4.3).
    """
    check_concrete(n_samples=n_samples, width=width, synthetic_fraction=synthetic_fraction, ridge=ridge,
                   label_noise=label_noise, synthetic_noise=synthetic_noise, mismatch=mismatch)
    lam = spectrum.eigenvalues
    dt = lam.dtype
    args = [jnp.asarray(a, dt) for a in (mismatch, n_samples, width, synthetic_fraction, ridge, label_noise)]
    s2 = args[-1] if synthetic_noise is None else jnp.asarray(synthetic_noise, dt)
    out = _projection_core(lam, spectrum.coefficients.astype(dt), *args, s2)
    if not isinstance(out.total, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(out.total))):
        raise ValueError(
            f"the ridgeless random-projection error diverges here (interpolation threshold: width m = {width} "
            f"vs n = {n_samples}, ridge = {ridge}); use a ridge > 0 (the paper uses 1e-8)")
    return out


_order_jit = jax.jit(_order)


@jax.jit
def _projection_core(lam, c, delta, n, m, p2, ridge, s1, s2):
    p1 = 1 - p2
    params, g, df1, df2, theta_a, ratio = _order(lam, n, m, ridge)
    u, om = params.u, params.omega_prime
    bias = (1 + u) * jnp.sum(lam * c * c * (1 - g) ** 2) + om * jnp.sum(c * c * g * g)
    om_over_theta = ratio * (1 + u)  # omega'/theta, finite at theta = 0
    variance = pooled_noise(p2, s1, s2) / (n * params.e) * (df2 + theta_a * (om_over_theta - u))
    zeta = (p2**2 * (1 + p1 * u) * jnp.sum(delta * lam * g * g) + p2**2 * om * jnp.sum(delta * g * g)
            + p2 * u * jnp.sum(delta * lam * (1 - p2 * g) ** 2))
    return decomposition(bias, variance, zeta)
