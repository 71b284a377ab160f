"""The optimal downstream ridge from theory: ``lambda* = argmin_lambda E_test(lambda)``."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ..theory import TheoryNotApplicable, chain_error
from ._solve1d import STATUS_MESSAGES, minimize_1d

__all__ = ["OptimalRidge", "default_ridge_bounds", "optimal_ridge", "optimal_ridge_batch", "status_message"]

#: Default search interval, relative to the largest eigenvalue of Sigma.
_LOWER, _UPPER = 1e-10, 1e4
#: Default grid: 8 points per decade over the default 14 decades.
GRID_SIZE = 113
_XTOL = 1e-11  # on log(lambda): lambda* to a relative 1e-11


class OptimalRidge(NamedTuple):
    """The theory-optimal ridge of one configuration (a pytree of arrays; batched under ``vmap``).

    Attributes:
      ridge: ``lambda*`` (kcollapse normalisation). At a bound (``status`` 1 or 2) the bound itself.
      error: total test error ``E_test(lambda*)`` (excess risk, same value as :func:`kcollapse.theory.chain_error`).
      log_gradient: ``dE/dlog(lambda)`` at ``lambda*`` (about 0 when converged; NaN at a bound).
      log_curvature: ``d^2E/dlog(lambda)^2`` at ``lambda*`` (forward difference of the derivative, a
        diagnostic; ``> 0`` at a minimum; NaN at a bound).
      iterations: regula falsi iterations used after the grid search.
      status: 0 converged; 1 at the lower bound; 2 at the upper bound; 3 not converged; 4 non-finite
        objective (see :func:`status_message`).
    """

    ridge: jax.Array
    error: jax.Array
    log_gradient: jax.Array
    log_curvature: jax.Array
    iterations: jax.Array
    status: jax.Array

    @property
    def converged(self) -> jax.Array:
        return self.status == 0


def status_message(status: int) -> str:
    """The meaning of a status code of :mod:`kcollapse.optimize`."""
    return STATUS_MESSAGES.get(int(status), f"unknown status {int(status)}")


def _concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def default_ridge_bounds(spectrum: Spectrum) -> tuple[float, float]:
    """``(1e-10, 1e4) * max(eigenvalues)``: the default search interval of :func:`optimal_ridge`."""
    top = float(np.max(np.asarray(spectrum.eigenvalues)))
    return _LOWER * top, _UPPER * top


def _validate(spectrum, n, T, T0, sigma, sigma0, design, bounds) -> None:
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    _checks.check_choice("design", design, ("fresh", "fixed"))
    if bounds is not None and _concrete(bounds):
        lo, hi = (float(b) for b in bounds)
        if not (0 < lo < hi) or not np.isfinite(hi):
            raise ValueError(f"bounds must be (lo, hi) with 0 < lo < hi < inf, got {bounds!r}; the search is over log(ridge)")
    for name, v in (("T", T), ("T0", T0)):
        if _concrete(v):
            arr = _checks.check_finite_array(name, v)
            if (arr <= 0).any():
                raise ValueError(f"{name} must be > 0, got {arr.min()}")
    for name, v in (("n", n), ("sigma", sigma), ("sigma0", sigma0)):
        if _concrete(v):
            arr = _checks.check_finite_array(name, v)
            if (arr < 0).any():
                raise ValueError(f"{name} must be >= 0, got {arr.min()}")
    if _concrete(spectrum, n, T0, sigma0):
        rank = int(np.sum(np.asarray(spectrum.eigenvalues) > 0))
        uncovered = (design == "fresh") & (np.asarray(T0) < rank) & (np.asarray(sigma0) > 0) & (np.asarray(n) >= 1)
        if np.any(uncovered):
            raise TheoryNotApplicable(
                f"T0 < d={rank} with fresh generator designs and sigma0 > 0: no theorem covers it "
                "(Demystified Thm 4.6 needs T0 >= d or one reused design); use design='fixed', T0 >= d, or sigma0 = 0"
            )


@functools.partial(jax.jit, static_argnames=("design", "finite_size", "grid_size", "max_iterations"))
def _optimal_ridge(spectrum, n, T, T0, sigma, sigma0, log_lo, log_hi, *, design, finite_size, grid_size, max_iterations):
    dt = spectrum.eigenvalues.dtype

    def objective(x):
        return chain_error(spectrum, n, T, T0, sigma, sigma0, jnp.exp(x), design=design, finite_size=finite_size).total

    m = minimize_1d(objective, jnp.asarray(log_lo, dt), jnp.asarray(log_hi, dt), grid_size=grid_size,
                    max_iterations=max_iterations, xtol=_XTOL)
    return OptimalRidge(jnp.exp(m.x), m.value, m.gradient, m.curvature, m.iterations, m.status)


def optimal_ridge(
    spectrum: Spectrum,
    n: ArrayLike,
    T: ArrayLike,
    T0: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    *,
    design: str = "fresh",
    finite_size: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    grid_size: int = GRID_SIZE,
    max_iterations: int = 100,
) -> OptimalRidge:
    """The ridge minimising the analytic test error of the model-collapse chain.

    Minimises ``E_test(lambda) = Bias + Var + n sigma0^2 rho`` (:func:`kcollapse.theory.chain_error`:
    Demystified Thm 4.3 / Cor 4.7 for ``T0 >= d``, Thm 4.6/4.8/4.9 otherwise) over ``x = log lambda``:
    a grid of ``grid_size`` points over ``bounds`` locates the global minimum the grid resolves, then the
    zero of ``dE/dx`` inside the neighbouring grid cells is found by Illinois regula falsi (a bracketing
    method that keeps the sign change), with ``dE/dx`` from forward-mode ``jax.jvp`` through
    ``kappa(lambda, T)`` (implicit derivative ``dkappa/dlambda = 1/(1 - df_2/T)``, Lemma C.2).
    The bracket on ``log lambda`` is shrunk to ``1e-11`` (tested: a dense grid agrees to its resolution,
    4e-6, and scipy's bounded Brent search to its tolerance).

    Single configuration, pure and traceable: ``jax.vmap`` over ``n``, ``T``, ``T0``, ``sigma``,
    ``sigma0`` (and a stacked :class:`~kcollapse.spectra.Spectrum`); compiled once per shape and
    static options.

    Why the optimum grows with ``n`` (Demystified §4.4): the collapse term ``n sigma0^2 rho`` is
    variance-like (``rho`` decreases with ``lambda``), so more generations call for more ridge.

    Args:
      spectrum: eigenvalues and teacher.
      n: generation (integer ``>= 0``; 0 = clean data).
      T: downstream samples. T0: samples per generator. sigma, sigma0: noise stds.
      design: ``"fresh"`` or ``"fixed"`` generator designs (static).
      finite_size: use ``T0 - d - 1`` instead of ``T0 - d`` in ``rho`` (static).
      bounds: ``(lo, hi)`` search interval for ``lambda`` (default
        :func:`default_ridge_bounds`: ``(1e-10, 1e4) * max eigenvalue``).
      grid_size: grid points over ``log(bounds)`` (static; default 8 per decade of the default bounds).
      max_iterations: cap on the polishing iterations (static).

    Returns:
      :class:`OptimalRidge`. ``status`` 1/2 means the minimum is at a bound (e.g. ``lambda* -> 0`` for
      noiseless clean data with ``T > d``), 4 that the error is not finite (an uncovered configuration
      under tracing).

    Raises:
      TheoryNotApplicable: (concrete inputs) ``T0 < d`` with fresh designs, ``sigma0 > 0`` and ``n >= 1``.
      ValueError / TypeError: invalid inputs or bounds.

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(300)
      >>> opt = kc.optimize.optimal_ridge(s, 0, 1000, 600, 0.1, 0.2)   # clean: lambda* = sigma^2 d/T
      >>> round(float(opt.ridge), 6), int(opt.status)
      (0.003, 0)

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, Theorem 4.3,
      Corollary 4.7, Fig. 1 (the optimal ridge grows with n); Lemma C.2 (dkappa/dlambda).
    """
    _validate(spectrum, n, T, T0, sigma, sigma0, design, bounds)
    grid_size = _checks.check_int("grid_size", grid_size, minimum=3)
    max_iterations = _checks.check_int("max_iterations", max_iterations, minimum=1)
    dt = spectrum.eigenvalues.dtype
    if bounds is None:
        top = jnp.max(spectrum.eigenvalues)
        lo, hi = _LOWER * top, _UPPER * top
    else:
        lo, hi = (jnp.asarray(b, dt) for b in bounds)
    n = jnp.asarray(n)
    if jnp.issubdtype(n.dtype, jnp.floating):
        n = n.astype(jnp.int32)
    T, T0, sigma, sigma0 = (jnp.asarray(v, dt) for v in (T, T0, sigma, sigma0))
    return _optimal_ridge(spectrum, n, T, T0, sigma, sigma0, jnp.log(lo), jnp.log(hi), design=design,
                          finite_size=bool(finite_size), grid_size=grid_size, max_iterations=max_iterations)


@functools.partial(jax.jit, static_argnames=("design", "finite_size", "grid_size", "max_iterations"))
def _optimal_ridge_vmapped(spectrum, n, T, T0, sigma, sigma0, log_lo, log_hi, *, design, finite_size, grid_size,
                           max_iterations):
    def one(n_, T_, T0_, s_, s0_):
        return _optimal_ridge(spectrum, n_, T_, T0_, s_, s0_, log_lo, log_hi, design=design, finite_size=finite_size,
                              grid_size=grid_size, max_iterations=max_iterations)

    return jax.vmap(one)(n, T, T0, sigma, sigma0)


def _bucket(k: int) -> int:
    """Padded batch size: a power of two, at least 32 (few distinct shapes, so few compilations)."""
    return max(32, 1 << (max(k, 1) - 1).bit_length())


def optimal_ridge_batch(
    spectrum: Spectrum,
    n: ArrayLike,
    T: ArrayLike,
    T0: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    *,
    design: str = "fresh",
    finite_size: bool = False,
    bounds: tuple[float, float] | None = None,
    grid_size: int = GRID_SIZE,
    max_iterations: int = 100,
) -> OptimalRidge:
    """:func:`optimal_ridge` over a grid of configurations (broadcast), in one compiled call.

    The arguments are broadcast together (e.g. ``n`` of shape ``(4, 1)`` and ``T`` of shape ``(1, 9)``
    give a ``(4, 9)`` table of optima); the flattened batch is padded to a power of two (at least 32)
    so that sweeps of different lengths reuse one compilation. Concrete inputs only (the boundary
    checks of :func:`optimal_ridge` apply to every entry); inside ``jit`` use ``jax.vmap(optimal_ridge)``.

    Returns:
      :class:`OptimalRidge` whose fields have the broadcast shape.

    Examples:
      >>> import jax, numpy as np; jax.config.update("jax_enable_x64", True)
      >>> import kcollapse as kc
      >>> opt = kc.optimize.optimal_ridge_batch(kc.spectra.isotropic(300), np.array([0, 1, 3, 10]), 1000, 600, 0.1, 0.2)
      >>> np.round(np.asarray(opt.ridge), 4).tolist()   # Demystified Fig. 1: lambda* grows with n
      [0.003, 0.0234, 0.0686, 0.2707]
    """
    n_arr = np.asarray(n)
    if np.issubdtype(n_arr.dtype, np.floating):
        if not np.all(n_arr == np.round(n_arr)):
            raise ValueError(f"n must hold integers, got {n!r}")
        n_arr = n_arr.astype(np.int64)
    arrays = np.broadcast_arrays(n_arr, *(np.asarray(v, dtype=np.float64) for v in (T, T0, sigma, sigma0)))
    shape = arrays[0].shape
    flat = [a.ravel() for a in arrays]
    _validate(spectrum, flat[0], flat[1], flat[2], flat[3], flat[4], design, bounds)
    grid_size = _checks.check_int("grid_size", grid_size, minimum=3)
    max_iterations = _checks.check_int("max_iterations", max_iterations, minimum=1)
    k = flat[0].size
    if k == 0:
        raise ValueError("optimal_ridge_batch needs at least one configuration")
    size = _bucket(k)
    padded = [np.concatenate([a, np.repeat(a[-1:], size - k)]) for a in flat]
    dt = spectrum.eigenvalues.dtype
    lo, hi = default_ridge_bounds(spectrum) if bounds is None else (float(bounds[0]), float(bounds[1]))
    out = _optimal_ridge_vmapped(
        spectrum, jnp.asarray(padded[0]), *(jnp.asarray(a, dt) for a in padded[1:]),
        jnp.log(jnp.asarray(lo, dt)), jnp.log(jnp.asarray(hi, dt)), design=design, finite_size=bool(finite_size),
        grid_size=grid_size, max_iterations=max_iterations)
    return jax.tree_util.tree_map(lambda v: v[:k].reshape(shape), out)
