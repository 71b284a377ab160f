"""Reverse-process samplers and the exact law of the Euler sampler under a linear score.

Reverse SDE of the OU forward process in reversed time: ``dx = (x + 2 score(x, t)) dtau + sqrt(2) dW``.
The exponential-integrator Euler-Maruyama step from ``t`` to ``t - h`` (the linear drift integrated
exactly, the score frozen at ``t``):

    x' = e^h x + 2 (e^h - 1) score(x, t) + sqrt(e^{2h} - 1) z.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._score import forward_coefficients

__all__ = ["euler_output_law", "reverse_sample", "time_grid"]


def time_grid(t_min: ArrayLike, t_max: ArrayLike, steps: int) -> jax.Array:
    """``(steps + 2,)`` decreasing times: ``steps`` geometric steps ``t_max -> t_min``, then ``0``."""
    t_min, t_max = jnp.asarray(t_min), jnp.asarray(t_max)
    u = jnp.linspace(0.0, 1.0, steps + 1, dtype=jnp.result_type(t_min, t_max, float))
    t = t_max * (t_min / t_max) ** u
    return jnp.concatenate([t, jnp.zeros((1,), t.dtype)])


def reverse_sample(key: jax.Array, score: Callable[[jax.Array, jax.Array], jax.Array], shape: tuple[int, int],
                   t_min: ArrayLike, t_max: ArrayLike, steps: int, dtype=None) -> jax.Array:
    """``shape = (n, d)`` samples: start ``N(0, I)`` at ``t_max``, exponential-Euler steps down to ``t = 0``.

    Args:
      key: PRNG key (step ``k`` uses ``fold_in(key, k + 1)``, the start ``fold_in(key, 0)``).
      score: ``score(x (n, d), t scalar) -> (n, d)``.
      shape: ``(n, d)``. t_min, t_max: time window. steps: geometric steps (one more to ``t = 0``).
    """
    dtype = dtype or jnp.result_type(float)
    ts = time_grid(jnp.asarray(t_min, dtype), jnp.asarray(t_max, dtype), steps)
    x = jax.random.normal(jax.random.fold_in(key, 0), shape, dtype)

    def body(x, k):
        t, t_next = ts[k], ts[k + 1]
        h = t - t_next
        z = jax.random.normal(jax.random.fold_in(key, k + 1), shape, dtype)
        x = jnp.exp(h) * x + 2 * jnp.expm1(h) * score(x, t) + jnp.sqrt(jnp.expm1(2 * h)) * z
        return x, None

    x, _ = jax.lax.scan(body, x, jnp.arange(steps + 1))
    return x


def euler_output_law(eigenvalue: ArrayLike, t_min: ArrayLike, t_max: ArrayLike, steps: int) -> tuple[jax.Array, jax.Array]:
    """Exact law of :func:`reverse_sample` with the fitted linear score, per eigen-direction of ``S``.

    With ``score = -(x - a_t m)/(a_t^2 lam + s_t^2)`` along an eigenvector of ``S`` (eigenvalue ``lam``),
    the sampler is a linear Gaussian recursion; started at ``N(0, 1)`` its output is
    ``N(kappa m_i, V)``. Returns ``(kappa, V)`` (exact sampler: ``kappa = 1``, ``V = lam``), so the
    sampler's discretisation-and-truncation bias is ``kappa - 1`` on the mean and ``V - lam`` on the variance.

    Args:
      eigenvalue: ``lam >= 0``, any shape (the function is elementwise).
    """
    lam = jnp.asarray(eigenvalue)
    dt = jnp.result_type(lam, float)
    lam = lam.astype(dt)
    ts = time_grid(jnp.asarray(t_min, dt), jnp.asarray(t_max, dt), steps)

    def body(c, k):
        kappa, var = c
        t, t_next = ts[k], ts[k + 1]
        h = t - t_next
        a, s = forward_coefficients(t)
        inv = 1 / (a**2 * lam + s**2)
        g = 2 * jnp.expm1(h)
        c_ = jnp.exp(h) - g * inv
        return (c_ * kappa + g * a * inv, c_**2 * var + jnp.expm1(2 * h)), None

    (kappa, var), _ = jax.lax.scan(body, (jnp.zeros_like(lam), jnp.ones_like(lam)), jnp.arange(steps + 1))
    return kappa, var
