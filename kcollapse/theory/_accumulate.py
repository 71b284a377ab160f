"""Gerstgrasser et al.: replace vs accumulate for OLS on one reused design, and the downstream model.

Generator (Gerstgrasser et al., arXiv:2404.01413v2, Theorems 1-2): one design ``X0`` (``T0 >= d + 2``
rows) reused at every iteration, OLS, noise ``sigma0`` at every iteration. Iteration 1 fits the real
data; under accumulation ``w_n = w0 + (X0^T X0)^{-1} X0^T sum_i E_i / i``, so::

    E ||w_n - w0||_Sigma^2 = sigma0^2 d/(T0 - d - 1) * sum_{i<=n} 1/i^2  <=  (pi^2/6) sigma0^2 d/(T0 - d - 1)
    replace:                 sigma0^2 d/(T0 - d - 1) * n

Downstream (kcollapse's simulator, ``mode="accumulate"``): at generation ``n`` an OLS model is fit on
the ``n`` generator sets *and* ``T`` fresh rows labelled by ``w_n`` with noise ``sigma``. Since
``n G0 w_n = sum_i X0^T Y_i`` (the generator's normal equations), the downstream estimate is exactly
``w = w_n + (n G0 + G)^{-1} sigma X^T E``, hence (kcollapse's derivation, see docs/theory-notes.md)::

    E_test = E||w_n - w0||^2_Sigma + sigma^2 V_n,   V_n = E tr[(n G0 + G)^{-1} G (n G0 + G)^{-1}]

(whitened, so ``V_n`` does not depend on ``Sigma``). ``V_0 = d/(T - d - 1)`` exactly; for ``n >= 1``
its deterministic equivalent is ``V_n = -d delta/dt at t = 1``, where ``delta(t) ≍ tr (n G0 + t G)^{-1}``
solves ``d = n T0 delta/(1 + n delta) + t T delta/(1 + t delta)`` (rank-one leave-one-out), i.e.::

    V_n = [T delta/(1+delta)^2] / [n T0/(1+n delta)^2 + T/(1+delta)^2].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ._types import Decomposition, decomposition

__all__ = ["accumulate_chain", "accumulate_downstream_variance", "replace_vs_accumulate"]

_BISECTIONS = 100


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def replace_vs_accumulate(iterations: ArrayLike, d: ArrayLike, T: ArrayLike, sigma: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Generator test error after ``iterations`` OLS fits, under replace and under accumulate.

    Args:
      iterations: ``n >= 1`` (iteration 1 is the fit on real data); any shape.
      d: dimension. T: rows of the (reused) design, ``T >= d + 2``. sigma: noise std (every iteration).

    Returns:
      ``(replace, accumulate)``: ``sigma^2 d/(T-d-1) * n`` and ``sigma^2 d/(T-d-1) * sum_{i<=n} 1/i^2``
      (bounded by ``pi^2/6`` times the first iteration's error).

    References:
      Gerstgrasser et al., "Is Model Collapse Inevitable?", arXiv:2404.01413v2, Theorem 2 (stated for
      ``Sigma = I``; valid for any ``Sigma`` since ``E tr(Sigma (X^T X)^{-1}) = d/(T-d-1)``).
    """
    n = _float(iterations)
    d, T, sigma = (jnp.asarray(a, n.dtype) for a in (d, T, sigma))
    unit = sigma**2 * d / (T - d - 1)
    # sum_{i<=n} 1/i^2 = pi^2/6 - polygamma(1, n + 1)
    partial = jnp.pi**2 / 6 - jax.scipy.special.polygamma(1, n + 1)
    return unit * n, unit * partial


def _delta(n: jax.Array, d: jax.Array, T: jax.Array, T0: jax.Array) -> jax.Array:
    """Positive root of ``d = n T0 delta/(1 + n delta) + T delta/(1 + delta)`` (increasing in delta)."""
    dt = d.dtype

    def h(x):
        return n * T0 * x / (1 + n * x) + T * x / (1 + x) - d

    # h(0) = -d < 0; h(d/(n T0 + T - d) * something) ... bisection on [0, hi] with hi from T0 > d:
    hi0 = d / (T0 - d) / jnp.maximum(n, jnp.ones((), dt))  # n T0 x/(1+n x) alone reaches d there
    def body(_, b):
        lo, hi = b
        mid = (lo + hi) / 2
        neg = h(mid) < 0
        return jnp.where(neg, mid, lo), jnp.where(neg, hi, mid)

    hi0 = jnp.broadcast_to(hi0, jnp.broadcast_shapes(n.shape, d.shape, T.shape, T0.shape))
    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, body, (jnp.zeros_like(hi0), hi0))
    x = (lo + hi) / 2
    # two Newton polishing steps (h is smooth and increasing)
    for _ in range(2):
        hp = n * T0 / (1 + n * x) ** 2 + T / (1 + x) ** 2
        x = x - h(x) / hp
    return x


def accumulate_downstream_variance(n: ArrayLike, d: ArrayLike, T: ArrayLike, T0: ArrayLike) -> jax.Array:
    """``V_n = E tr[(n G0 + G)^{-1} G (n G0 + G)^{-1}]`` (whitened), the downstream noise factor.

    ``V_0 = d/(T - d - 1)`` (exact); ``n >= 1``: the deterministic equivalent in the module
    docstring (kcollapse's derivation; verified by simulation, docs/theory-notes.md). Needs
    ``T0 >= d + 2``.
    """
    n = _float(n)
    d, T, T0 = (jnp.asarray(a, n.dtype) for a in (d, T, T0))
    delta = _delta(jnp.maximum(n, jnp.ones((), n.dtype)), d, T, T0)
    v = (T * delta / (1 + delta) ** 2) / (n * T0 / (1 + n * delta) ** 2 + T / (1 + delta) ** 2)
    clean = jnp.where(T - d - 1 > 0, d / (T - d - 1), jnp.inf)
    return jnp.where(n >= 1, v, clean)


def accumulate_chain(
    n: ArrayLike, d: ArrayLike, T: ArrayLike, T0: ArrayLike, sigma: ArrayLike, sigma0: ArrayLike
) -> Decomposition:
    """Downstream OLS test error in accumulate mode with one reused generator design.

    ``collapse`` is Gerstgrasser's generator error ``sigma0^2 d/(T0-d-1) sum_{i<=n} 1/i^2``;
    ``variance = sigma^2 V_n`` (:func:`accumulate_downstream_variance`); ``bias = 0`` (OLS with
    ``T0 >= d + 2`` is unbiased). Exact for ``sigma = 0`` or ``n = 0``; asymptotic in ``V_n`` otherwise.

    References:
      Gerstgrasser et al., arXiv:2404.01413v2, Theorems 1-2; downstream term derived in kcollapse.
    """
    n = _float(n)
    d, T, T0, sigma, sigma0 = (jnp.asarray(a, n.dtype) for a in (d, T, T0, sigma, sigma0))
    _, collapse = replace_vs_accumulate(n, d, T0, sigma0)
    collapse = jnp.where(n >= 1, collapse, jnp.zeros_like(collapse))
    variance = jnp.where(sigma > 0, sigma**2 * accumulate_downstream_variance(n, d, T, T0), jnp.zeros_like(n))
    return decomposition(jnp.zeros_like(collapse), variance, collapse)
