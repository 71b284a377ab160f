"""Safeguarded one-dimensional minimisation and root finding, pure JAX (jit/vmap friendly).

Both solvers start from a uniform grid over ``[lo, hi]`` (so a global structure the grid resolves is
never missed), then refine inside the bracket the grid gives:

* :func:`minimize_1d`: the zero of ``f'`` (forward-mode ``jax.jvp``, so ``f`` may contain
  ``lax.while_loop``\\ s such as the kappa solver) inside the grid cells around the grid minimum, by
  Illinois regula falsi (only first derivatives are compiled: a Newton step would need ``f''`` and
  doubles the compile time);
* :func:`root_1d`: the Illinois variant of regula falsi (derivative-free, superlinear, the bracket
  always kept) on the first sign change of ``f`` on the grid.

Nothing here raises: outcomes are returned as integer status codes (STYLE.md practice 10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "AT_LOWER",
    "AT_UPPER",
    "CONVERGED",
    "NONFINITE",
    "NOT_CONVERGED",
    "NO_CROSSING",
    "STATUS_MESSAGES",
    "Minimum",
    "Root",
    "minimize_1d",
    "root_1d",
]

CONVERGED = 0
AT_LOWER = 1
AT_UPPER = 2
NOT_CONVERGED = 3
NONFINITE = 4
NO_CROSSING = 5

#: Human-readable meaning of every status code returned by :mod:`kcollapse.optimize`.
STATUS_MESSAGES: dict[int, str] = {
    CONVERGED: "converged",
    AT_LOWER: "at the lower bound (the optimum is at or below it; widen the bounds)",
    AT_UPPER: "at the upper bound (the optimum is at or above it; widen the bounds)",
    NOT_CONVERGED: "not converged within max_iterations",
    NONFINITE: "the objective is not finite (no theorem covers this point, or a numerical failure)",
    NO_CROSSING: "no crossing inside the bounds",
}

# A grid minimum within this relative distance of the value at a bound is indistinguishable from it.
_FLAT_RTOL = 1e-10


class Minimum(NamedTuple):
    """Result of :func:`minimize_1d` (all fields are arrays)."""

    x: jax.Array
    value: jax.Array
    gradient: jax.Array
    curvature: jax.Array
    iterations: jax.Array
    status: jax.Array


class Root(NamedTuple):
    """Result of :func:`root_1d` (all fields are arrays)."""

    x: jax.Array
    value: jax.Array
    iterations: jax.Array
    status: jax.Array


def _value_and_slope(fun: Callable[[jax.Array], jax.Array], x: jax.Array):
    return jax.jvp(fun, (x,), (jnp.ones_like(x),))


def _illinois(fn, a, b, fa, fb, *, max_iterations: int, tol: jax.Array):
    """Illinois regula falsi on ``[a, b]`` with ``sign(fa) != sign(fb)`` (both non-zero unless done).

    Returns ``(x, a, b, iterations, done)``: the final estimate, the final bracket and whether the
    bracket shrank below ``tol`` (or hit an exact zero).
    """
    dt = a.dtype

    def cond(state):
        i, a, b, fa, fb, _ = state
        return (i < max_iterations) & (b - a > tol) & (fa != 0) & (fb != 0)

    def body(state):
        i, a, b, fa, fb, side = state
        x = (a * fb - b * fa) / (fb - fa)
        x = jnp.where((x > a) & (x < b) & jnp.isfinite(x), x, (a + b) / 2)
        fx = fn(x)
        fx = jnp.where(jnp.isfinite(fx), fx, jnp.zeros((), dt))  # cannot happen inside a finite bracket
        left = jnp.sign(fx) == jnp.sign(fa)  # root in [x, b]
        # Illinois: halve the retained end's value when the same end is kept twice in a row.
        fb_new = jnp.where(left, jnp.where(side == 1, fb / 2, fb), fx)
        fa_new = jnp.where(left, fx, jnp.where(side == -1, fa / 2, fa))
        a_new, b_new = jnp.where(left, x, a), jnp.where(left, b, x)
        return i + 1, a_new, b_new, fa_new, fb_new, jnp.where(left, 1, -1).astype(jnp.int32)

    init = (jnp.zeros((), jnp.int32), a, b, fa, fb, jnp.zeros((), jnp.int32))
    iters, a, b, fa, fb, _ = jax.lax.while_loop(cond, body, init)
    x = jnp.where(fa == 0, a, jnp.where(fb == 0, b, (a * fb - b * fa) / (fb - fa)))
    x = jnp.where((x >= a) & (x <= b) & jnp.isfinite(x), x, (a + b) / 2)
    done = (b - a <= tol) | (fa == 0) | (fb == 0)
    return x, a, b, iters, done


def minimize_1d(
    fun: Callable[[jax.Array], jax.Array],
    lo: jax.Array,
    hi: jax.Array,
    *,
    grid_size: int,
    max_iterations: int,
    xtol: float,
) -> Minimum:
    """Global-on-a-grid, then polished minimum of a smooth scalar function on ``[lo, hi]``.

    The grid's argmin ``x_k`` gives the bracket ``[x_{k-1}, x_{k+1}]``, which holds a local minimum; the
    zero of ``f'`` (forward-mode ``jax.jvp``) inside it is found by Illinois regula falsi to ``xtol``.
    Only first derivatives are compiled; the reported curvature is a forward difference of ``f'``
    (step ``1e-4``; a diagnostic, relative accuracy ~1e-4).

    Args:
      fun: scalar -> scalar, traceable and forward-differentiable.
      lo, hi: scalar bounds (``lo < hi``), traced values allowed.
      grid_size: number of grid points (static, ``>= 3``).
      max_iterations: regula falsi iterations (static).
      xtol: absolute tolerance on ``x`` (static).

    Returns:
      :class:`Minimum`; ``status`` is ``CONVERGED``, ``AT_LOWER``/``AT_UPPER`` (the grid minimum is at
      a bound, or the value there is within 1e-10 of the curve's scale of the minimum: the function is
      flat up to the bound), ``NOT_CONVERGED`` (iterations exhausted, or the polished point is not
      better than the grid point, which is then returned) or ``NONFINITE``.
    """
    dt = jnp.result_type(lo, hi)
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    xs = lo + (hi - lo) * jnp.linspace(0.0, 1.0, grid_size, dtype=dt)
    fs = jax.vmap(fun)(xs)
    finite = jnp.isfinite(fs)
    fs_safe = jnp.where(finite, fs, jnp.inf)
    k = jnp.argmin(fs_safe)
    interior = (k > 0) & (k < grid_size - 1) & jnp.any(finite)
    a0 = xs[jnp.clip(k - 1, 0, grid_size - 1)]
    b0 = xs[jnp.clip(k + 1, 0, grid_size - 1)]
    tol = jnp.asarray(xtol, dt)

    # A smooth f with f(x_{k-1}) >= f(x_k) <= f(x_{k+1}) has a local minimum inside: f' goes from - to +.
    # Illinois regula falsi on f' starts from that sign pattern (placeholder end values -1, +1: the ends
    # are never evaluated) and keeps it, so it converges to a point where f' changes sign from - to +.
    # One call site of f (and f') in the loop body keeps the compiled program small.
    def cond(state):
        i, a, b, *_ = state
        return (i < max_iterations) & (b - a > tol)

    def body(state):
        i, a, b, ga, gb, fa_t, fb_t, ga_t, gb_t, side = state
        x = (a * gb - b * ga) / (gb - ga)
        x = jnp.where((x > a) & (x < b) & jnp.isfinite(x), x, (a + b) / 2)
        fx, gx = _value_and_slope(fun, x)
        gx = jnp.where(jnp.isfinite(gx), gx, jnp.zeros((), dt))
        left = gx < 0  # minimum in [x, b]
        exact = gx == 0
        gb_new = jnp.where(left, jnp.where(side == 1, gb / 2, gb), gx)
        ga_new = jnp.where(left, gx, jnp.where(side == -1, ga / 2, ga))
        a_new = jnp.where(exact, x, jnp.where(left, x, a))
        b_new = jnp.where(exact, x, jnp.where(left, b, x))
        fa_t, ga_t = jnp.where(left | exact, fx, fa_t), jnp.where(left | exact, gx, ga_t)
        fb_t, gb_t = jnp.where(~left | exact, fx, fb_t), jnp.where(~left | exact, gx, gb_t)
        return (i + 1, a_new, b_new, ga_new, gb_new, fa_t, fb_t, ga_t, gb_t,
                jnp.where(left, 1, -1).astype(jnp.int32))

    one = jnp.ones((), dt)
    nan = jnp.asarray(jnp.nan, dt)
    init = (jnp.zeros((), jnp.int32), a0, b0, -one, one, nan, nan, nan, nan, jnp.zeros((), jnp.int32))
    init = init[:1] + (a0, jnp.where(interior, b0, a0)) + init[3:]  # no iterations without an interior minimum
    iters, a, b, _, _, fa_t, fb_t, ga_t, gb_t, _ = jax.lax.while_loop(cond, body, init)
    done = interior & (b - a <= tol)
    # the evaluated end closest to the root of f' (ends never evaluated keep NaN and lose)
    use_a = jnp.abs(jnp.where(jnp.isnan(ga_t), jnp.inf, ga_t)) <= jnp.abs(jnp.where(jnp.isnan(gb_t), jnp.inf, gb_t))
    x = jnp.where(use_a, a, b)
    f, g = jnp.where(use_a, fa_t, fb_t), jnp.where(use_a, ga_t, gb_t)
    evaluated = jnp.isfinite(f)
    # curvature for diagnostics: forward difference of f' over 1e-4 (relative accuracy ~1e-4)
    h_step = jnp.asarray(1e-4, dt)
    h = (_value_and_slope(fun, x + h_step)[1] - g) / h_step
    # The polished point may only improve on the grid point (up to rounding); otherwise keep the grid point.
    better = evaluated & (f <= fs_safe[k] + 1e-12 * jnp.abs(fs_safe[k]))
    x = jnp.where(better, x, xs[k])
    f = jnp.where(better, f, fs_safe[k])
    g, h = jnp.where(better, g, jnp.nan), jnp.where(better, h, jnp.nan)

    # Indistinguishable from a bound: the value there is within 1e-10 of the curve's scale (its largest
    # finite magnitude on the grid), or the polished point sits on the bound.
    scale = jnp.max(jnp.where(finite, jnp.abs(fs), 0))
    flat_lo = finite[0] & (fs_safe[0] - f <= _FLAT_RTOL * scale)
    flat_hi = finite[-1] & (fs_safe[-1] - f <= _FLAT_RTOL * scale)
    at_lower = (k == 0) | flat_lo | (x - xs[0] <= tol)
    at_upper = ((k == grid_size - 1) | flat_hi | (xs[-1] - x <= tol)) & ~at_lower
    converged = done & better
    status = jnp.where(
        ~jnp.any(finite) | ~jnp.isfinite(f), NONFINITE,
        jnp.where(at_lower, AT_LOWER, jnp.where(at_upper, AT_UPPER, jnp.where(converged, CONVERGED, NOT_CONVERGED))),
    )
    x = jnp.where(at_lower, xs[0], jnp.where(at_upper, xs[-1], x))
    f = jnp.where(at_lower, fs_safe[0], jnp.where(at_upper, fs_safe[-1], f))
    g, h = jnp.where(at_lower | at_upper, jnp.nan, g), jnp.where(at_lower | at_upper, jnp.nan, h)
    return Minimum(x, f, g, h, iters, status.astype(jnp.int32))


def root_1d(
    fun: Callable[[jax.Array], jax.Array],
    lo: jax.Array,
    hi: jax.Array,
    *,
    grid_size: int,
    max_iterations: int,
    xtol: float,
    last: bool = False,
) -> Root:
    """The first (or, with ``last=True``, the last) sign change of ``fun`` on a grid over ``[lo, hi]``,
    refined by Illinois regula falsi.

    Non-finite grid values are skipped (a sign change is only taken between two consecutive finite
    values). ``status`` is ``CONVERGED``, ``NO_CROSSING`` (no sign change on the grid; ``x`` is then
    the grid point where ``|fun|`` is smallest) or ``NOT_CONVERGED``.
    """
    dt = jnp.result_type(lo, hi)
    lo, hi = jnp.asarray(lo, dt), jnp.asarray(hi, dt)
    xs = lo + (hi - lo) * jnp.linspace(0.0, 1.0, grid_size, dtype=dt)
    fs = jax.vmap(fun)(xs)
    finite = jnp.isfinite(fs)
    change = finite[:-1] & finite[1:] & (jnp.sign(fs[:-1]) != jnp.sign(fs[1:]))
    found = jnp.any(change)
    j = (grid_size - 2 - jnp.argmax(change[::-1])) if last else jnp.argmax(change)
    tol = jnp.asarray(xtol, dt)
    a, b = xs[j], xs[j + 1]
    # Re-evaluate the ends the way the loop evaluates points: a grid value of ~1e-17 (a root on a grid
    # point) can differ in sign between the batched and the scalar evaluation (XLA rounding).
    fa, fb = fun(a), fun(b)
    valid = jnp.isfinite(fa) & jnp.isfinite(fb) & (jnp.sign(fa) != jnp.sign(fb))
    end = jnp.where(jnp.abs(fa) <= jnp.abs(fb), a, b)  # not a bracket any more: the root is at an end
    x, _, _, iters, done = _illinois(fun, a, b, jnp.where(valid, fa, 0), jnp.where(valid, fb, 0),
                                     max_iterations=max_iterations, tol=tol)
    x = jnp.where(valid, x, end)
    value = fun(x)
    nearest = jnp.argmin(jnp.where(finite, jnp.abs(fs), jnp.inf))
    x = jnp.where(found, x, xs[nearest])
    value = jnp.where(found, value, fs[nearest])
    status = jnp.where(found, jnp.where(done, CONVERGED, NOT_CONVERGED), NO_CROSSING)
    return Root(x, value, iters, status.astype(jnp.int32))
