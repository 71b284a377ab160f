"""Sums over an infinite Zipf vocabulary: ``sum_{i >= 1} p_i G(i)`` to near machine precision.

Every exact error of the Hutter model is such a sum with ``p_i = i^{-beta}/zeta(beta)`` and a
factor ``0 <= G(i) <= 1`` (the probability that token ``i`` is missing from the training set).
It is evaluated as

* an explicit sum over ``i = 1..M`` (``M`` static, at least every finite cut-off of the laws), plus
* the tail ``sum_{i > M} f(i)``, ``f = p G``, by the midpoint Euler-Maclaurin formula
  ``int_{M+1/2}^inf f(x) dx + f'(M+1/2)/24 + O(f''')`` (``f'`` by a central difference), where ``f``
  is smooth beyond ``M``. The
  integral is Gauss-Legendre in ``log x`` up to the point ``X`` where ``1 - G(x) <= 1e-10``, and
  analytic beyond ``X`` from the first-order form ``1 - G(x) ≈ sum_r a_r x^{-s_r}``.

Error budget (measured against brute-force sums over 10^6-10^7 tokens plus the Hurwitz-zeta
remainder, tests/test_tails.py and docs/notes/tails.md): relative error below 1e-10 for ``M >= 4096``. The ``O(f''')`` term is
``(7/5760) f'''(M)`` ``~ f(M) (beta+s)^3/M^3``, the first-order remainder ``(1e-10)^2/2``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import zeta

__all__ = ["token_sum", "token_tail_sum"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_PANELS = 256
_DELTA = 1e-10


def token_sum(
    beta: jnp.ndarray,
    G: Callable[[jnp.ndarray], jnp.ndarray],
    far_a: jnp.ndarray,
    far_s: jnp.ndarray,
    *,
    explicit: int,
    far_value: float = 1.0,
) -> jnp.ndarray:
    """``sum_{i >= 1} p_i G(i)`` with ``p_i = i^{-beta}/zeta(beta)``, for ``V`` factors at once.

    Args:
      beta: scalar Zipf exponent ``> 1`` (float array; its dtype is the compute dtype).
      G: maps positions ``x`` of any shape to ``x.shape + (V,)`` values in ``[0, 1]``; must be smooth
        in ``x`` for ``x > explicit`` (all index cut-offs at or below ``explicit``).
      far_a, far_s: ``(V, R)`` coefficients with ``1 - G(x)[v] = sum_r far_a[v, r] x^{-far_s[v, r]}
        + O(second order)`` for large ``x`` (``far_a >= 0``, ``far_s > 0``).
      explicit: ``M``, the number of tokens summed explicitly (static).
      far_value: ``G(inf)``: 1 for a missing-probability factor. With 0 (a factor that vanishes
        like ``1 - G_0`` for some factor ``G_0`` with coefficients ``far_a``), the far field beyond
        ``X`` is dropped: there it is below ``1e-10`` times the tail mass.

    Returns:
      ``(V,)`` the sums.
    """
    dtype = beta.dtype
    one = jnp.ones((), dtype)
    z = zeta(beta, one)
    A = jnp.asarray(explicit + 0.5, dtype)
    a = jnp.asarray(far_a, dtype)
    s = jnp.asarray(far_s, dtype)
    R = a.shape[-1]
    # beyond X every term a_r x^{-s_r} is below delta/R, so the first-order form is exact to delta^2
    Xr = jnp.where(a > 0, (jnp.where(a > 0, a, one) * R / _DELTA) ** (1.0 / s), 0.0)
    X = jnp.maximum(A, jnp.max(Xr))  # one X for all V keeps the quadrature grid shared
    L = jnp.log(X / A)
    h = L / _PANELS
    t = (jnp.arange(_PANELS, dtype=dtype)[:, None] + (jnp.asarray(_GL_NODES, dtype)[None, :] + 1) / 2) * h
    w = jnp.broadcast_to(jnp.asarray(_GL_WEIGHTS, dtype)[None, :] * h / 2, t.shape).ravel()
    x_quad = (A * jnp.exp(t)).ravel()
    # f'(A) by a central difference (step A 1e-4: truncation ~1e-8, round-off ~1e-12 of the f'/24 term)
    step = A * 1e-4
    i = jnp.arange(1, explicit + 1, dtype=dtype)
    x = jnp.concatenate([i, x_quad, jnp.stack([A - step, A + step])])
    g = G(x)  # one evaluation (and one trace) of G for every point
    f = (x ** (-beta) / z)[:, None] * g
    head = jnp.sum(f[:explicit], axis=0)
    middle = jnp.sum((w * x_quad)[:, None] * f[explicit:-2], axis=0)
    fprime = (f[-1] - f[-2]) / (2 * step)
    far = (X ** (1 - beta) / (beta - 1) - jnp.sum(a * X ** (1 - beta - s) / (beta + s - 1), axis=-1)) / z
    far = far if far_value == 1.0 else jnp.zeros_like(far)
    return head + middle + far + fprime / 24


def token_tail_sum(
    beta: jnp.ndarray,
    G: Callable[[jnp.ndarray], jnp.ndarray],
    far_a: jnp.ndarray,
    far_s: jnp.ndarray,
    *,
    start: int,
) -> jnp.ndarray:
    """``sum_{i > start} p_i G(i)`` only (same method and error budget as :func:`token_sum`).

    For factors ``G`` that are evaluated differently at the head (``i <= start``, e.g. a sum over a
    context-dependent window) and are smooth beyond ``start``: ``G`` is called only at positions
    ``x >= (start + 1/2)(1 - 1e-4)``.

    Args:
      beta, far_a, far_s: as for :func:`token_sum` (``far_a``, ``far_s``: ``(V, R)``).
      G: maps positions to ``x.shape + (V,)`` values in ``[0, 1]`` with ``G(inf) = 1``.
      start: the last explicit index (static).

    Returns:
      ``(V,)`` the tail sums.
    """
    dtype = beta.dtype
    one = jnp.ones((), dtype)
    z = zeta(beta, one)
    A = jnp.asarray(start + 0.5, dtype)
    a = jnp.asarray(far_a, dtype)
    s = jnp.asarray(far_s, dtype)
    R = a.shape[-1]
    Xr = jnp.where(a > 0, (jnp.where(a > 0, a, one) * R / _DELTA) ** (1.0 / s), 0.0)
    X = jnp.maximum(A, jnp.max(Xr))
    h = jnp.log(X / A) / _PANELS
    t = (jnp.arange(_PANELS, dtype=dtype)[:, None] + (jnp.asarray(_GL_NODES, dtype)[None, :] + 1) / 2) * h
    w = jnp.broadcast_to(jnp.asarray(_GL_WEIGHTS, dtype)[None, :] * h / 2, t.shape).ravel()
    x_quad = (A * jnp.exp(t)).ravel()
    step = A * 1e-4
    x = jnp.concatenate([x_quad, jnp.stack([A - step, A + step])])
    f = (x ** (-beta) / z)[:, None] * G(x)
    middle = jnp.sum((w * x_quad)[:, None] * f[:-2], axis=0)
    fprime = (f[-1] - f[-2]) / (2 * step)
    far = (X ** (1 - beta) / (beta - 1) - jnp.sum(a * X ** (1 - beta - s) / (beta + s - 1), axis=-1)) / z
    return middle + far + fprime / 24
