"""Crossovers: where the synthetic-data term takes over, each with its defining equation's residual."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ..theory import chain_error, power_law_exponents
from ._ridge import GRID_SIZE, _optimal_ridge, _validate
from ._solve1d import CONVERGED, root_1d

__all__ = [
    "Crossover",
    "classical_divergence_threshold",
    "collapse_crossover",
    "mixture_plateau_fraction",
    "rate_switch",
]

_T_BOUNDS = (1.0, 1e9)
_XTOL = 1e-12
# "T -> infinity" for the plateau of rate_switch: relative effect of the finite T is O(d / T).
_T_INFINITY = 1e15


class Crossover(NamedTuple):
    """A crossover point (a pytree of arrays; batched under ``vmap``).

    Attributes:
      point: where the two sides of the defining equation meet (``T*``, ``b*`` or ``p2*``).
      residual: the defining equation's relative residual at ``point`` (``left/right - 1``; an
        exponent difference for :func:`classical_divergence_threshold`); ``~1e-12`` when converged.
      level: the common value of both sides at ``point`` (an error level; 0 for an exponent).
      status: 0 converged; 3 not converged; 5 no crossing inside the bounds (``point`` is then the grid
        point closest to one).
    """

    point: jax.Array
    residual: jax.Array
    level: jax.Array
    status: jax.Array


def _as_float(spectrum: Spectrum, *values):
    dt = spectrum.eigenvalues.dtype
    return [jnp.asarray(v, dt) for v in values]


def _int_n(n):
    n = jnp.asarray(n)
    return n.astype(jnp.int32) if jnp.issubdtype(n.dtype, jnp.floating) else n


def _check_bounds(bounds, name="bounds"):
    if not any(isinstance(b, jax.core.Tracer) for b in bounds):
        lo, hi = (float(b) for b in bounds)
        if not (0 < lo < hi) or not np.isfinite(hi):
            raise ValueError(f"{name} must be (lo, hi) with 0 < lo < hi < inf, got {bounds!r}")


def _check_generation(n):
    if not isinstance(n, jax.core.Tracer) and np.any(np.asarray(n) < 1):
        raise ValueError(f"n must be >= 1 (a crossover needs synthetic data), got {n!r}")


@functools.partial(jax.jit, static_argnames=("design", "finite_size", "grid_size"))
def _collapse_crossover(spectrum, n, T0, sigma, sigma0, ridge, ell, log_lo, log_hi, *, design, finite_size, grid_size):
    def terms(u):
        T = jnp.exp(u)
        lam = ridge * T ** (-ell)
        clean = chain_error(spectrum, 0, T, T0, sigma, sigma0, lam, design=design, finite_size=finite_size).total
        total = chain_error(spectrum, n, T, T0, sigma, sigma0, lam, design=design, finite_size=finite_size).total
        return total - clean, clean

    def h(u):
        collapse, clean = terms(u)
        return collapse / clean - 1

    root = root_1d(h, log_lo, log_hi, grid_size=grid_size, max_iterations=200, xtol=_XTOL, last=True)
    collapse, clean = terms(root.x)
    return Crossover(jnp.exp(root.x), collapse / clean - 1, clean, root.status)


def collapse_crossover(
    spectrum: Spectrum,
    n: ArrayLike,
    T0: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    *,
    ridge: ArrayLike,
    ridge_exponent: ArrayLike = 0.0,
    design: str = "fresh",
    finite_size: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] = _T_BOUNDS,
    grid_size: int = 129,
) -> Crossover:
    """The sample size ``T*`` at which the collapse term equals the clean error.

    Solves ``E_n(T) - E_0(T) = E_0(T)`` for ``T`` with the ridge schedule
    ``lambda = ridge * T^{-ridge_exponent}`` (``ridge_exponent = 0``: a fixed ridge), where
    ``E_n`` is the chain's test error after ``n`` generations (:func:`kcollapse.theory.chain_error`)
    and ``E_0`` the clean error on the same ``T``. Above ``T*`` the synthetic-data term dominates for
    every larger ``T`` in ``bounds`` (Demystified Fig. 1 right: the ``n >= 1`` curves leave the clean
    ``sigma^2 d/T`` line and flatten at ``n sigma0^2 phi0/(1 - phi0)``). The *last* sign change on a
    log-``T`` grid over ``bounds`` is refined by Illinois regula falsi (the two terms can also cross in
    the over-parameterised range ``T < d``, where the clean error has a bias; narrow ``bounds`` to
    study that range).

    For ``ridge = 0`` and ``T, T0 >= d + 2`` the exact Theorem 4.1 gives the closed form
    ``T* = d + 1 + sigma^2 (T0 - d - 1)/(n sigma0^2)`` (used as a test oracle).

    Args:
      spectrum: eigenvalues and teacher. n: generation ``>= 1``. T0, sigma, sigma0: as in
        :func:`kcollapse.theory.chain_error`.
      ridge: ``lambda0`` of the schedule. ridge_exponent: ``ell``.
      design, finite_size: as in :func:`kcollapse.theory.chain_error` (static).
      bounds: ``(T_lo, T_hi)`` search interval. grid_size: log-grid points (static).

    Returns:
      :class:`Crossover` with ``point = T*``, ``level`` = the clean error there.

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, Theorems 4.1/4.3,
      Corollary 4.7, Fig. 1.
    """
    _validate(spectrum, n, 1.0, T0, sigma, sigma0, design, None)
    _check_generation(n)
    _check_bounds(bounds)
    if not isinstance(ridge, jax.core.Tracer):
        _checks.check_nonneg_float("ridge", ridge)
    grid_size = _checks.check_int("grid_size", grid_size, minimum=3)
    T0, sigma, sigma0, ridge, ell, lo, hi = _as_float(spectrum, T0, sigma, sigma0, ridge, ridge_exponent, *bounds)
    return _collapse_crossover(spectrum, _int_n(n), T0, sigma, sigma0, ridge, ell, jnp.log(lo), jnp.log(hi),
                               design=design, finite_size=bool(finite_size), grid_size=grid_size)


@functools.partial(jax.jit, static_argnames=("design", "finite_size", "grid_size"))
def _rate_switch(spectrum, n, T0, sigma, sigma0, log_lo, log_hi, log_rlo, log_rhi, *, design, finite_size, grid_size):
    dt = spectrum.eigenvalues.dtype
    zero = jnp.zeros((), n.dtype)

    def best(n_, T):
        return _optimal_ridge(spectrum, n_, T, T0, sigma, sigma0, log_rlo, log_rhi, design=design,
                              finite_size=finite_size, grid_size=GRID_SIZE, max_iterations=100)

    plateau = best(n, jnp.asarray(_T_INFINITY, dt)).error

    def h(u):
        return best(zero, jnp.exp(u)).error / plateau - 1

    root = root_1d(h, log_lo, log_hi, grid_size=grid_size, max_iterations=200, xtol=_XTOL)
    return Crossover(jnp.exp(root.x), h(root.x), plateau, root.status)


def rate_switch(
    spectrum: Spectrum,
    n: ArrayLike,
    T0: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    *,
    design: str = "fresh",
    finite_size: bool = False,
    bounds: tuple[ArrayLike, ArrayLike] = _T_BOUNDS,
    ridge_bounds: tuple[ArrayLike, ArrayLike] | None = None,
    grid_size: int = 65,
) -> Crossover:
    """Where the best achievable error switches from the clean (fast) rate to the synthetic (slow) one.

    With optimal regularisation the clean error ``E*_0(T) = min_lambda E_0(lambda, T)`` keeps
    decreasing at the fast rate (``T^{-c}`` noisy, ``T^{-2 beta r}`` noiseless on power laws), while
    with ``n`` generations behind a fixed ``T0`` the best error ``E*_n(T)`` levels off at
    ``E*_n(inf) = min_lambda E_n(lambda, T -> inf)`` (``≍ (n sigma0^2/T0)^c`` on power laws: the "slow
    rate" ``T^{-(b-a)c}`` of Corollary 5.3 read at a fixed ``T0``). The switch is where the fast
    asymptote meets the slow one::

        E*_0(T_s) = E*_n(inf)

    (solved on a log-``T`` grid over ``bounds`` and refined by Illinois regula falsi; every
    evaluation is an :func:`optimal_ridge` solve; ``T = inf`` is evaluated at ``T = 1e15``).

    Args:
      spectrum, n (``>= 1``), T0, sigma, sigma0, design, finite_size: as in :func:`optimal_ridge`.
      bounds: ``(T_lo, T_hi)``. ridge_bounds: search interval of the inner ridge optimisations.
      grid_size: log-``T`` grid points (static).

    Returns:
      :class:`Crossover` with ``point = T_s`` and ``level = E*_n(inf)`` (the plateau of the optimally
      regularised error).

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Theorem 5.2 and Corollary 5.3 ("crossover" from the
      fast to the slow rate); shared/THEORY.md §2.5.
    """
    _validate(spectrum, n, 1.0, T0, sigma, sigma0, design, ridge_bounds)
    _check_generation(n)
    _check_bounds(bounds)
    grid_size = _checks.check_int("grid_size", grid_size, minimum=3)
    if ridge_bounds is None:
        top = jnp.max(spectrum.eigenvalues)
        ridge_bounds = (1e-10 * top, 1e4 * top)
    T0, sigma, sigma0, lo, hi, rlo, rhi = _as_float(spectrum, T0, sigma, sigma0, *bounds, *ridge_bounds)
    return _rate_switch(spectrum, _int_n(n), T0, sigma, sigma0, jnp.log(lo), jnp.log(hi), jnp.log(rlo), jnp.log(rhi),
                        design=design, finite_size=bool(finite_size), grid_size=grid_size)


def classical_divergence_threshold(beta: ArrayLike, r: ArrayLike, *, a: ArrayLike = 0.0, noisy: bool = False) -> Crossover:
    """The threshold on ``b`` (``T0 = T^b``) below which the classical ridge ``T^{-ell_crit}`` diverges.

    Noiseless (Corollary 5.3): keeping ``lambda ≍ T^{-ell_crit}`` gives ``E ≍ T^{-(c + b - a - 1)}``,
    which grows with ``T`` iff ``b < b* = a + 1 - c`` (the paper prints "b >= a + 1 - c", a sign
    slip; shared/THEORY.md §2.5). Noisy regime: the rate ``min(1, b - a) - 1/(2 beta r_bar + 1)``
    vanishes at ``b* = a + 1/(2 beta r_bar + 1)``.

    Returns:
      :class:`Crossover` with ``point = b*``, ``residual`` = the decay rate evaluated at ``b*`` by
      :func:`kcollapse.theory.power_law_exponents` (0 up to rounding), ``level = 0``.

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> c = classical_divergence_threshold(2.0, 0.375)
      >>> round(float(c.point), 6), abs(float(c.residual)) < 1e-12
      (0.4, True)

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Corollary 5.3 and the noisy-regime discussion of §5.
    """
    e = power_law_exponents(beta, r, a, 1.0)
    a = jnp.asarray(a, e.c.dtype)
    if noisy:
        b_star = a + (1 - e.c)  # 1/(2 beta r_bar + 1) = 1 - c
        residual = power_law_exponents(beta, r, a, b_star).rate_noisy_classical
    else:
        b_star = a + 1 - e.c
        residual = power_law_exponents(beta, r, a, b_star).rate_classical
    zero = jnp.zeros((), e.c.dtype)
    return Crossover(b_star, residual, zero, jnp.asarray(CONVERGED, jnp.int32))


def _mixture_terms(p2, phi, sigma, c2, ridge, teacher_norm_sq):
    """Strong Model Collapse Theorem 1, isotropic: ``(zeta, B + V)`` from
    :func:`kcollapse.strong.mixture_error_isotropic` (equal noise on real and synthetic labels)."""
    from ..strong import mixture_error_isotropic

    dec = mixture_error_isotropic(phi, p2, c2, ridge, sigma, teacher_norm_sq)
    return dec.collapse, dec.bias + dec.variance


@functools.partial(jax.jit, static_argnames=("grid_size",))
def _mixture(n, d, sigma, c2, ridge, teacher_norm_sq, *, grid_size):
    phi = d / n
    dt = phi.dtype

    def h(p2):
        zeta, clean = _mixture_terms(p2, phi, sigma, c2, ridge, teacher_norm_sq)
        return zeta / clean - 1

    root = root_1d(h, jnp.zeros((), dt), jnp.ones((), dt), grid_size=grid_size, max_iterations=200, xtol=_XTOL)
    zeta, clean = _mixture_terms(root.x, phi, sigma, c2, ridge, teacher_norm_sq)
    return Crossover(root.x, zeta / clean - 1, clean, root.status)


def mixture_plateau_fraction(
    n: ArrayLike,
    d: ArrayLike,
    sigma: ArrayLike,
    c2: ArrayLike,
    *,
    ridge: ArrayLike = 0.0,
    teacher_norm_sq: ArrayLike = 1.0,
    grid_size: int = 201,
) -> Crossover:
    """The synthetic fraction ``p2`` at which the collapse term equals the clean error at ``n`` samples.

    Strong Model Collapse (Theorem 1, isotropic; shared/THEORY.md §4.2): training on ``n = n1 + n2``
    samples of which a fraction ``p2`` comes from a synthetic teacher of quality ``c^2 = tr(Sigma Delta)``
    adds ``zeta(p2)``, which tends to the plateau ``p2^2 c^2`` as ``n -> inf``, to the clean error
    ``B + V``. Returns the smallest ``p2`` in ``[0, 1]`` with ``zeta(p2) = B + V``: above it the
    synthetic term dominates at this ``n``. Ridgeless with ``phi = d/n < 1`` (Corollary 1):
    ``(p2^2 + p2 p1 q) c^2 = sigma^2 q``, ``q = phi/(1 - phi)``, whose root is the closed form
    ``p2 = (-q + sqrt(q^2 + 4 (1 - q) sigma^2 q / c^2)) / (2 (1 - q))`` (test oracle); for small ``phi``,
    ``p2 ≈ sqrt(sigma^2 d / (n c^2))``: the plateau ``p2^2 c^2`` meets ``sigma^2 d/n``.

    Args:
      n: total samples. d: dimension. sigma: label noise (real and synthetic). c2: ``c^2``.
      ridge: ``lambda >= 0`` (``lambda = 0`` needs ``n > d``). teacher_norm_sq: ``||w1*||^2``.
      grid_size: grid points over ``p2`` (static).

    Returns:
      :class:`Crossover` with ``point = p2*``, ``level`` = the clean error ``B + V``; status 5 if the
      collapse term stays below the clean error for every ``p2 <= 1``.

    References:
      Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse", arXiv:2410.04840v2, Theorem 1 and
      Corollary 1.
    """
    for name, v in (("n", n), ("d", d), ("c2", c2)):
        if not isinstance(v, jax.core.Tracer):
            _checks.check_positive_float(name, v)
    for name, v in (("sigma", sigma), ("ridge", ridge), ("teacher_norm_sq", teacher_norm_sq)):
        if not isinstance(v, jax.core.Tracer):
            _checks.check_nonneg_float(name, v)
    if not any(isinstance(v, jax.core.Tracer) for v in (n, d, ridge)) and float(ridge) == 0 and float(d) >= float(n):
        raise ValueError(f"ridge = 0 needs n > d (got n={n}, d={d}); the over-parameterised ridgeless "
                         "limit (Strong MC Corollary 4) is not covered here: use ridge > 0")
    grid_size = _checks.check_int("grid_size", grid_size, minimum=3)
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.floating):
        n = n.astype(jnp.result_type(float))
    d, sigma, c2, ridge, r2 = (jnp.asarray(v, n.dtype) for v in (d, sigma, c2, ridge, teacher_norm_sq))
    return _mixture(n, d, sigma, c2, ridge, r2, grid_size=grid_size)
