"""Replace-mode chain with OLS generators and a ridge downstream model, for an arbitrary spectrum.

One deterministic-equivalent engine covers, per eigenmode ``i`` (shared/THEORY.md §1.3, §1.4, §2.3,
§2.4):

* the clean risk (Prop. 4.5): ``n = 0``;
* Theorem 4.3 / 4.6 / Corollary 4.7 (``T0 >= d``): ``E = Bias + Var + n sigma0^2 rho``;
* Theorem 4.6 eq. (22) with ``kappa0 = kappa(0, T0)`` for one reused design and ``T0 < d``;
* Theorems 4.8 / 4.9 (``T0 < d``, noiseless generator) and their ``lambda > 0`` extension, here for
  an arbitrary spectrum (kcollapse's derivation, checked by simulation; see docs/theory-notes.md).

Notation (all vectors are over eigenmodes, ``W_i = lambda_i c_i^2`` is the teacher's energy):

* downstream: ``kappa = kappa(lambda, T)``, ``g_i = lambda_i/(lambda_i + kappa)``,
  ``D = T - df_2(kappa)`` (``D = T - d - 1``, the exact Wishart constant, when ``kappa = 0``);
* generator: ``kappa0 = kappa(0, T0)`` (0 when ``T0 >= d``), ``F_i = lambda_i/(lambda_i + kappa0)``,
  ``D0 = T0 - df_2(kappa0)`` (``T0 - d`` asymptotic or ``T0 - d - 1`` finite-size when ``T0 >= d``).

A teacher perturbation ``v`` independent of the downstream design, with ``E lambda_i v_i^2 = S_i``,
reaches the downstream test error (second-order deterministic equivalent, §1.4 term 1) as::

    transfer_i(S) = S_i g_i^2 + [sum_j S_j (1 - g_j)^2] g_i^2 / D.

The teacher seen downstream is ``u = Q w0`` (``Q`` the product of the generators' projections)
with ``E lambda_i u_i^2 = U_i`` and ``E lambda_i u_i c_i = M_i``; its bias is::

    bias_i = (1-g_i)^2 U_i + [sum_j (1-g_j)^2 U_j] g_i^2 / D - 2 (1-g_i)(U_i - M_i) + (U_i - 2 M_i + W_i).

One projection maps ``U -> F^2 U + [sum_j (1-F_j)^2 U_j] F^2 / D0`` and ``M -> F M`` (the same
equivalent with ``(kappa0, T0)``); for ``T0 >= d``, ``F = 1`` and ``u = w0``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._kappa import effective_ridge

__all__ = ["ModeTerms", "chain_modes", "chain_sums", "generator_error_modes"]

_HI = jax.lax.Precision.HIGHEST


class _Generator(NamedTuple):
    F: jax.Array  # (d,) lambda_i / (lambda_i + kappa0)
    D0: jax.Array  # generator denominator
    noise: jax.Array  # (d,) E lambda_i v_i^2 of one generation's noise X^+ E / sigma0^2
    over: jax.Array  # T0 < rank: the generator loses directions


class ModeTerms(NamedTuple):
    """Per-mode ``(d,)`` bias, variance and collapse of one ``(n, ridge)`` point."""

    bias: jax.Array
    variance: jax.Array
    collapse: jax.Array


def _rank(lam: jax.Array) -> jax.Array:
    return jnp.sum((lam > 0).astype(lam.dtype))


def _generator(lam: jax.Array, T0: jax.Array, finite_size: jax.Array | bool) -> _Generator:
    rank = _rank(lam)
    positive = lam > 0
    kappa0 = effective_ridge(lam, jnp.zeros((), lam.dtype), T0)
    over = T0 < rank  # over-parameterised generator: kappa0 > 0
    safe0 = jnp.where(over, kappa0, jnp.ones((), lam.dtype))
    F = jnp.where(over, lam / (lam + safe0), positive.astype(lam.dtype))
    # T0 >= d: E (X0^T X0)^{-1} = Sigma^{-1}/(T0 - d - 1) exactly (Lemma A.1); T0 - d is its
    # proportional limit (Corollary 4.7 as printed).
    under_D0 = T0 - rank - jnp.where(finite_size, jnp.ones((), lam.dtype), jnp.zeros((), lam.dtype))
    D0 = jnp.where(over, T0 - jnp.sum(F * F), under_D0)
    # E (X0^T X0)^+ ≍ Sigma (Sigma + kappa0)^{-2} / D0 (Sigma^{-1}/D0 when kappa0 = 0); times lambda_i:
    ok = D0 > 0
    noise = jnp.where(ok, F * F / jnp.where(ok, D0, jnp.ones((), lam.dtype)), jnp.where(positive, jnp.inf, 0.0).astype(lam.dtype))
    return _Generator(F, D0, noise, over)


def _project(U: jax.Array, gen: _Generator) -> jax.Array:
    """``E lambda_i (P u)_i^2`` for a projection onto an independent ``T0``-row design's row space."""
    spill = jnp.sum((1 - gen.F) ** 2 * U)
    return gen.F**2 * U + spill * gen.F**2 / gen.D0


def _teacher_moments(W: jax.Array, gen: _Generator, n: jax.Array, independent: bool):
    """``(U, M)``: second moment and overlap with ``w0`` of the teacher ``u = Q_{n-1} w0``."""
    if independent:
        # T0 >= d: every projection is the identity; skip the loop (a real branch when T0 is unbatched).
        U = jax.lax.cond(gen.over, lambda w: jax.lax.fori_loop(0, n, lambda _, u: _project(u, gen), w), lambda w: w, W)
        M = W * gen.F ** n.astype(W.dtype)
    else:
        first = n >= 1
        U = jnp.where(first, _project(W, gen), W)
        M = jnp.where(first, W * gen.F, W)
    return U, M


def _downstream(lam: jax.Array, ridge: jax.Array, T: jax.Array):
    """``g = Sigma (Sigma + kappa)^{-1}`` (diagonal), ``g^2/D``, the ``D <= 0`` flag and ``kappa == 0``."""
    dt = lam.dtype
    rank = _rank(lam)
    kappa = effective_ridge(lam, ridge, T)
    ridgeless_under = kappa <= 0
    safe = jnp.where(ridgeless_under, jnp.ones((), dt), kappa)
    g = jnp.where(ridgeless_under, (lam > 0).astype(dt), lam / (lam + safe))
    # kappa = 0: OLS downstream, E tr(Sigma (X^T X)^{-1}) = d/(T - d - 1) exactly (Lemma A.1).
    D = jnp.where(ridgeless_under, T - rank - 1, T - jnp.sum(g * g))
    # D <= 0 only for kappa = 0 and T in {d, d + 1}: the exact expectations of the noise terms are
    # infinite there (E (X^T X)^{-1} diverges); the bias (OLS is unbiased) stays finite.
    bad = D <= 0
    g2D = jnp.where(bad, jnp.zeros((), dt), g * g / jnp.where(bad, jnp.ones((), dt), D))
    return g, g2D, bad, ridgeless_under


def chain_sums(
    lam: jax.Array,
    coef: jax.Array,
    n_max: int,
    T: jax.Array,
    T0: jax.Array,
    sigma: jax.Array,
    sigma0: jax.Array,
    ridge: jax.Array,
    *,
    independent: bool,
    finite_size: bool = False,
) -> ModeTerms:
    """Summed bias/variance/collapse for every ``n = 0..n_max`` (static), each ``(n_max + 1,)``.

    Same formulas as :func:`chain_modes`, summed over modes first: with ``G2 = sum_i g_i^2/D`` and
    ``a_i = g_i^2 + (1 - g_i)^2 G2``, ``bias = <a, U> - 2 <g, M> + sum W`` and
    ``collapse = n sigma0^2 <a, noise>``, so only ``O(n_max d)`` work and no ``(n, d)`` temporaries.
    """
    dt = lam.dtype
    W = lam * coef * coef
    g, g2D, bad, ridgeless_under = _downstream(lam, ridge, T)
    gen = _generator(lam, T0, jnp.asarray(finite_size) | ridgeless_under)
    a = g * g + (1 - g) ** 2 * jnp.sum(g2D)
    total_W = jnp.sum(W)
    alive = lam > 0
    inf = jnp.asarray(jnp.inf, dt)

    def step(carry, k):
        U, M = carry
        out = (jnp.dot(a, U, precision=_HI) - 2 * jnp.dot(g, M, precision=_HI) + total_W)
        if independent:
            nxt = (_project(U, gen), M * gen.F)
        else:
            first = _project(W, gen)
            nxt = (first, W * gen.F)
        return nxt, out

    _, bias = jax.lax.scan(step, (W, W), jnp.arange(n_max + 1))
    ns = jnp.arange(n_max + 1).astype(dt)
    finite_noise = jnp.all(jnp.isfinite(gen.noise) | ~alive)
    unit = jnp.dot(a, jnp.where(alive, gen.noise, 0), precision=_HI)
    collapse = ns * sigma0**2 * unit
    collapse = jnp.where((bad | ~finite_noise) & (ns * sigma0 > 0), inf, collapse)
    var = sigma**2 * jnp.sum(g2D)
    var = jnp.where(bad & (sigma > 0), inf, var)
    return ModeTerms(bias, jnp.broadcast_to(var, bias.shape), collapse)


def generator_error_modes(
    lam: jax.Array, coef: jax.Array, n: jax.Array, T0: jax.Array, sigma0: jax.Array,
    *, independent: bool,
) -> jax.Array:
    """Per-mode ``E lambda_i (w_n - w0)_i^2`` of the replace-mode generator after ``n`` OLS fits."""
    # The generator error involves no downstream fit: the Wishart constant is exact.
    gen = _generator(lam, T0, True)
    W = lam * coef * coef
    U, M = _teacher_moments(W, gen, n, independent)
    noise = jnp.where((n >= 1) & (sigma0 > 0), n.astype(lam.dtype) * sigma0**2 * gen.noise, jnp.zeros_like(W))
    return (U - 2 * M + W) + noise


def chain_modes(
    lam: jax.Array,
    coef: jax.Array,
    n: jax.Array,
    T: jax.Array,
    T0: jax.Array,
    sigma: jax.Array,
    sigma0: jax.Array,
    ridge: jax.Array,
    *,
    independent: bool,
    finite_size: bool = False,
    summed: bool = False,
) -> ModeTerms:
    """Per-mode bias/variance/collapse of the replace chain (see the module docstring).

    ``summed=True`` (static) returns the sums over modes, computed by dot products (no per-mode
    temporaries; the fast path for scalar outputs).

    All array arguments are scalars in ``lam``'s dtype except ``lam``/``coef`` ``(d,)``; ``n`` is an
    integer scalar, or a ``(k,)`` vector of generations (then every field is ``(k, d)`` and
    ``kappa``, ``kappa0`` are solved once). ``independent`` (fresh generator designs) and ``finite_size`` are static.
    For ``T0 < d`` with ``independent=True`` the formula is only backed when ``sigma0 = 0``
    (Thm 4.9); callers must check that (``kcollapse.theory.chain_error`` does).
    """
    dt = lam.dtype
    W = lam * coef * coef
    g, g2D, bad, ridgeless_under = _downstream(lam, ridge, T)
    # With an OLS downstream (kappa = 0) every trace is exact, so use the exact constant T0 - d - 1.
    gen = _generator(lam, T0, jnp.asarray(finite_size) | ridgeless_under)
    inf = jnp.asarray(jnp.inf, dt)
    alive = lam > 0
    variance = jnp.where(bad & alive & (sigma > 0), inf, sigma**2 * g2D)

    def at_summed(n):
        U, M = _teacher_moments(W, gen, n, independent)
        a = g * g + (1 - g) ** 2 * jnp.sum(g2D)
        bias = jnp.dot(a, U, precision=_HI) - 2 * jnp.dot(g, M, precision=_HI) + jnp.sum(W)
        nf = n.astype(dt)
        finite_noise = jnp.all(jnp.isfinite(gen.noise) | ~alive)
        collapse = nf * sigma0**2 * jnp.dot(a, jnp.where(alive, gen.noise, 0), precision=_HI)
        collapse = jnp.where((bad | ~finite_noise) & (nf * sigma0 > 0), inf, collapse)
        var = jnp.where(bad & (sigma > 0), inf, sigma**2 * jnp.sum(g2D))
        return ModeTerms(bias, var, collapse)

    if summed:
        return at_summed(n) if n.ndim == 0 else jax.vmap(at_summed)(n)

    def at(n):
        U, M = _teacher_moments(W, gen, n, independent)
        bias = (1 - g) ** 2 * U + jnp.sum((1 - g) ** 2 * U) * g2D - 2 * (1 - g) * (U - M) + (U - 2 * M + W)
        nf = n.astype(dt)
        S = nf * sigma0**2 * gen.noise
        finite_S = jnp.isfinite(S)
        S_safe = jnp.where(finite_S, S, jnp.zeros((), dt))
        collapse = S_safe * g * g + jnp.sum((1 - g) ** 2 * S_safe) * g2D
        collapse = jnp.where((bad | ~jnp.all(finite_S)) & alive & (nf * sigma0 > 0), inf, collapse)
        return ModeTerms(bias, variance, collapse)

    # kappa and kappa0 are solved once; a vector of generations reuses them.
    return at(n) if n.ndim == 0 else jax.vmap(at)(n)
