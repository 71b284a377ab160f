"""Iterated retraining on fresh real labels mixed with the previous model's labels (golden-ratio weighting).

Setting (Garg, Bhattacharya & Sur, arXiv:2509.22341, main setting; He, Xu & Cheng, arXiv:2502.18049 for
OLS): one design ``X (n, d)``, rows ``x ~ N(0, Sigma)``, is reused at every iteration. Iteration ``t >= 1``
draws fresh real labels ``y_t = X beta + eps_t`` (``eps_t ~ N(0, sigma^2 I)``) and synthetic labels
``y~_t = X beta_{t-1} + eps~_t`` (``eps~_t ~ N(0, sigma~^2 I)``) from the previous fit, and fits::

    beta_t = argmin_b  (1/n) [ w ||y_t - X b||^2 + (1 - w) ||y~_t - X b||^2 ] + ridge ||b||^2
           = H (w y_t + (1 - w) y~_t),      H = (X^T X/n + ridge I)^+ X^T / n

(``ridge = 0``: min-norm least squares, OLS when ``n > d`` and min-norm interpolation when ``n < d``).
Iteration 0 is the real-only fit ``beta_0 = H y_0``. ``w`` is the weight on the **real** labels.

Exact recursion (kcollapse derivation, docs/notes/surrogate.md): with ``S = H X`` and ``e_t = beta_t - beta``,
``e_t = (1 - w) S e_{t-1} + (S - I) beta + H (w eps_t + (1 - w) eps~_t)``. In the eigenbasis ``U`` of
``X^T X / n = U diag(s) U^T`` everything is diagonal: ``r_j = s_j/(s_j + ridge)``,
``h_j = s_j/(n (s_j + ridge)^2)``, so the mean and covariance of ``e_t`` are geometric sums per mode.
For ``ridge = 0`` (``r_j in {0, 1}``) the error is ``||(I - P) beta||_Sigma^2 + g_t tr(Sigma X^+ X^+T)``
with the scalar noise level ``g_t = (1 - w)^2 g_{t-1} + w^2 sigma^2 + (1 - w)^2 sigma~^2``, ``g_0 = sigma^2``:
the weight only rescales the clean variance, so the optimal weight is the same for **every** ``n, d,
Sigma``, design law and teacher: the root of ``w^2 + rho w - rho = 0`` with ``rho = sigma~^2/sigma^2``,
i.e. ``1/golden ratio = (sqrt 5 - 1)/2`` for equal noise.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ..theory import clean_risk
from ._driver import DEFAULT_MEMORY_BUDGET, GridSimulation, check_spectrum, itemsize, nonneg_grid, run_seeds

__all__ = [
    "GOLDEN_REAL_WEIGHT",
    "RetrainingError",
    "optimal_real_weight",
    "optimal_real_weight_given_design",
    "retraining_error",
    "retraining_error_given_design",
    "retraining_variance_factor",
    "simulate_retraining",
]

#: ``(sqrt(5) - 1)/2 = 1/golden ratio``: the optimal real-label weight for ridgeless retraining, equal noise.
GOLDEN_REAL_WEIGHT: float = (math.sqrt(5.0) - 1.0) / 2.0

_HI = jax.lax.Precision.HIGHEST
_GOLDEN_ITERATIONS = 90


class RetrainingError(NamedTuple):
    """Test error ``E||beta_t - beta||_Sigma^2`` of iterated weighted retraining (a pytree).

    Attributes:
      bias: ``||E beta_t - beta||_Sigma^2`` (teacher directions missed or shrunk; for ``ridge = 0`` the
        part of ``beta`` outside the row space, independent of ``w`` and ``t``).
      variance: ``tr(Sigma Cov beta_t)``, the label noise carried through the iterations.
      total: ``bias + variance``.
    """

    bias: jax.Array
    variance: jax.Array
    total: jax.Array


def _float_dtype(*xs):
    for x in xs:
        if x is not None and hasattr(x, "dtype") and jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
            return jnp.asarray(x).dtype
    return jnp.result_type(float)


def _geometric(q: jax.Array, t: jax.Array | None) -> jax.Array:
    """``sum_{k<t} q^k = (1 - q^t)/(1 - q)`` for ``0 <= q <= 1`` (``t`` at ``q = 1``); ``t = None``: ``1/(1 - q)``."""
    one = q >= 1
    safe = jnp.where(one, 0.5, q)
    if t is None:
        return jnp.where(one, jnp.inf, 1 / (1 - safe))
    return jnp.where(one, t, (1 - safe**t) / (1 - safe))


def _power(q: jax.Array, t: jax.Array | None) -> jax.Array:
    """``q^t``; ``t = None`` is ``t -> infinity`` (``1`` at ``q = 1``, else ``0``)."""
    if t is None:
        return jnp.where(q >= 1, 1.0, 0.0).astype(q.dtype)
    return q**t


def _noise_level(weight, generations, label_noise, synthetic_noise):
    """``g_t = (1-w)^{2t} sigma^2 + (w^2 sigma^2 + (1-w)^2 sigma~^2) sum_{k<t} (1-w)^{2k}`` (``t = None``: ``t -> inf``)."""
    q = (1 - weight) ** 2
    fresh = weight**2 * label_noise**2 + q * synthetic_noise**2
    carried = jnp.where(fresh > 0, fresh * _geometric(q, generations), 0.0)
    return _power(q, generations) * label_noise**2 + carried


def _check_weight(name, weight) -> None:
    if isinstance(weight, jax.core.Tracer):
        return
    arr = np.asarray(_checks.check_finite_array(name, weight), dtype=float)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} (the weight on the real labels) must lie in [0, 1], got {arr.tolist()}; "
                         "w = 1 is real-only, w = 0 trains on the previous model's labels only")


def _check_generations(generations) -> None:
    if generations is None or isinstance(generations, jax.core.Tracer):
        return
    arr = np.asarray(_checks.check_finite_array("generations", generations), dtype=float)
    if arr.size and (arr.min() < 0 or np.any(arr != np.round(arr))):
        raise ValueError(f"generations must be integers >= 0 (0 = the real-only fit; None = the fixed point "
                         f"t -> infinity), got {arr.tolist()}")


def _check_noise(**kw) -> None:
    for name, v in kw.items():
        if v is None or isinstance(v, jax.core.Tracer):
            continue
        arr = np.asarray(_checks.check_finite_array(name, v), dtype=float)
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} must be >= 0, got {arr.tolist()}")


def retraining_variance_factor(weight: ArrayLike, generations: ArrayLike | None = None,
                               noise_ratio: ArrayLike = 1.0) -> jax.Array:
    """Ridgeless retraining: the label-noise level after ``t`` iterations relative to the real-only fit, ``g_t/sigma^2``.

    ``g_t/sigma^2 = (1-w)^{2t} + (w^2 + rho (1-w)^2)(1 - (1-w)^{2t})/(1 - (1-w)^2)``, ``rho = sigma~^2/sigma^2``.
    Fixed point (``generations=None``, ``0 < w <= 1``)::

        f(w) = (w^2 + rho (1 - w)^2) / (w (2 - w)),      min_w f = f(w*) = w*

    (``w = 0``: ``1 + t rho``, so the fixed point is ``inf`` for ``rho > 0``). For ``ridge = 0`` the test
    error is ``bias + f * variance`` of the real-only min-norm fit, for any ``n, d, Sigma`` and design
    (:func:`retraining_error`).

    Args:
      weight: ``w in [0, 1]``, the weight on the real labels. generations: integer ``t >= 0`` or
        ``None`` for ``t -> infinity``. noise_ratio: ``rho = sigma~^2/sigma^2 >= 0``. Broadcast together.

    Returns:
      The factor, broadcast shape of the inputs.

    References:
      Garg, Bhattacharya, Sur, arXiv:2509.22341 (min-norm interpolation, fixed design);
      He, Xu, Cheng, arXiv:2502.18049 (OLS); derivation in docs/notes/surrogate.md.
    """
    _check_weight("weight", weight)
    _check_generations(generations)
    _check_noise(noise_ratio=noise_ratio)
    dt = _float_dtype(weight, noise_ratio)
    w, rho = jnp.asarray(weight, dt), jnp.asarray(noise_ratio, dt)
    t = None if generations is None else jnp.asarray(generations, dt)
    return _noise_level(w, t, jnp.ones((), dt), jnp.sqrt(rho))


def optimal_real_weight(noise_ratio: ArrayLike = 1.0) -> jax.Array:
    """The real-label weight minimising the ridgeless fixed-point error: ``w* = (sqrt(rho^2 + 4 rho) - rho)/2``.

    The positive root of ``w^2 + rho w - rho = 0`` (``rho = sigma~^2/sigma^2``), from ``f'(w) = 0`` in
    :func:`retraining_variance_factor`. It does not depend on ``n``, ``d``, ``Sigma``, the teacher or the
    design law: for ``ridge = 0`` the weight only rescales the clean variance. ``rho = 1`` (equal noise
    on real and synthetic labels) gives ``w* = (sqrt 5 - 1)/2 = 1/golden ratio`` (:data:`GOLDEN_REAL_WEIGHT`)
    exactly, for OLS (``n > d``) and min-norm interpolation (``n < d``) alike; ``rho = 0`` gives the
    infimum ``w* -> 0`` (not attained: at ``w = 0`` nothing is learnt after iteration 0). With a ridge,
    use :func:`optimal_real_weight_given_design`.

    Args:
      noise_ratio: ``rho >= 0`` (any shape).

    Returns:
      ``w*`` in ``[0, 1)``, same shape.

    Examples:
      >>> import kcollapse as kc
      >>> round(float(kc.strong.optimal_real_weight(1.0)), 6)
      0.618034

    References:
      Garg, Bhattacharya, Sur, arXiv:2509.22341 (``w* -> 1/phi`` for min-norm interpolation);
      He, Xu, Cheng, arXiv:2502.18049 (``w* = (sqrt(k^2 + 4k) - k)/2``); docs/notes/surrogate.md.
    """
    _check_noise(noise_ratio=noise_ratio)
    rho = jnp.asarray(noise_ratio, _float_dtype(noise_ratio))
    return (jnp.sqrt(rho * rho + 4 * rho) - rho) / 2


def retraining_error(spectrum: Spectrum, n_samples: ArrayLike, weight: ArrayLike,
                     generations: ArrayLike | None = None, label_noise: ArrayLike = 1.0,
                     synthetic_noise: ArrayLike | None = None) -> RetrainingError:
    """Ridgeless retraining averaged over Gaussian designs: ``E_t = B + g_t V_1``.

    ``B`` and ``V_1`` are the bias and the unit-noise variance of the clean min-norm fit on ``n`` samples
    (:func:`kcollapse.theory.clean_risk` at ``ridge = 0``), ``g_t`` the noise level of
    :func:`retraining_variance_factor` (times ``sigma^2``). The reduction to the clean fit is exact for
    any design (docs/notes/surrogate.md); the design average is **exact** for ``n >= d + 2``
    (``B = 0``, ``V_1 = d/(n - d - 1)``) and kcollapse's deterministic equivalent for ``n < d``.

    Args:
      spectrum: ``Sigma`` and the teacher ``beta``. n_samples: ``n``.
      weight: ``w in [0, 1]`` on the real labels. generations: integer ``t >= 0`` (0 = real-only fit)
        or ``None`` for the fixed point. label_noise: ``sigma``. synthetic_noise: ``sigma~`` (default ``sigma``).
      ``weight``, ``generations`` and the noise levels broadcast together.

    Returns:
      :class:`RetrainingError`.

    References:
      Garg, Bhattacharya, Sur, arXiv:2509.22341; He, Xu, Cheng, arXiv:2502.18049.
    """
    check_spectrum(spectrum)
    n = _checks.check_int("n_samples", n_samples, minimum=1)
    if n == spectrum.d or n == spectrum.d + 1:
        raise ValueError(f"n_samples = {n} with d = {spectrum.d}: the min-norm fit's variance is infinite or has no "
                         "closed form at n in {d, d+1}; use n_samples >= d + 2 or n_samples < d")
    _check_weight("weight", weight)
    _check_generations(generations)
    _check_noise(label_noise=label_noise, synthetic_noise=synthetic_noise)
    dt = spectrum.dtype
    s1 = jnp.asarray(label_noise, dt)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, dt)
    clean = clean_risk(spectrum, n, 0.0, 1.0)
    t = None if generations is None else jnp.asarray(generations, dt)
    g = _noise_level(jnp.asarray(weight, dt), t, s1, s2)
    bias = jnp.broadcast_to(clean.bias, g.shape)
    variance = g * clean.variance
    return RetrainingError(bias, variance, bias + variance)


def _design_modes(design: jax.Array, ridge: jax.Array):
    """``(U, r, h)``: eigenvectors of ``X^T X/n`` and the per-mode shrinkage ``r`` and noise gain ``h``."""
    n, d = design.shape
    s, U = jnp.linalg.eigh(jnp.matmul(design.T, design, precision=_HI) / n)
    s = jnp.maximum(s, 0.0)
    tol = jnp.finfo(s.dtype).eps * max(n, d) * jnp.max(s)
    keep = s > tol
    shift = jnp.where(keep, s + ridge, 1.0)
    r = jnp.where(keep, s / shift, 0.0)
    h = jnp.where(keep, s / (n * shift**2), 0.0)
    return U, r, h


@jax.jit
def _given_design(design, eigenvalues, coefficients, weight, generations, ridge, s1, s2) -> RetrainingError:
    U, r, h = _design_modes(design, ridge)
    w = jnp.asarray(weight)[..., None]
    t = None if generations is None else jnp.asarray(generations)[..., None]
    a = 1 - w
    beta_u = jnp.matmul(U.T, coefficients, precision=_HI)
    # mean: m_t = sum_{k<=t} ((1-w) S)^k (S - I) beta, per mode of U
    tt = None if t is None else t + 1
    mean_u = jnp.where(r < 1, (r - 1) * beta_u * _geometric(jnp.where(r < 1, a * r, 0.0), tt), 0.0)
    root_sigma_u = jnp.sqrt(eigenvalues)[:, None] * U  # Sigma^{1/2} U
    bias = jnp.sum(jnp.matmul(mean_u, root_sigma_u.T, precision=_HI) ** 2, axis=-1)
    # covariance: diagonal in U, c_t = h [sigma^2 q^t + fresh sum_{k<t} q^k], q = (1-w)^2 r^2
    q = (a * r) ** 2
    fresh = w**2 * s1**2 + a**2 * s2**2
    c = h * (_power(q, t) * s1**2 + jnp.where(fresh > 0, fresh * _geometric(q, t), 0.0))
    sigma_diag_u = jnp.sum(root_sigma_u**2, axis=0)  # diag(U^T Sigma U)
    variance = jnp.sum(jnp.where(h > 0, c, 0.0) * sigma_diag_u, axis=-1)
    return RetrainingError(bias, variance, bias + variance)


def _check_design(design, spectrum: Spectrum):
    if isinstance(design, jax.core.Tracer):
        return design
    arr = _checks.check_finite_array("design", design, ndim=2)
    if arr.shape[1] != spectrum.d or arr.shape[0] < 1:
        raise ValueError(f"design must have shape (n_samples, d) = (n, {spectrum.d}) in the eigenbasis of Sigma, "
                         f"got {arr.shape}")
    return design


def retraining_error_given_design(design: ArrayLike, spectrum: Spectrum, weight: ArrayLike,
                                  generations: ArrayLike | None = None, *, ridge: ArrayLike = 0.0,
                                  label_noise: ArrayLike = 1.0,
                                  synthetic_noise: ArrayLike | None = None) -> RetrainingError:
    """Exact test error of iterated weighted retraining for one fixed design (any ``n``, ``d``, ridge).

    Conditional on ``X`` and averaged over all label noise. With ``X^T X/n = U diag(s) U^T``,
    ``r = s/(s + ridge)``, ``h = s/(n (s + ridge)^2)`` (min-norm: ``r = 1``, ``h = 1/(n s)`` on the row
    space, ``0`` off it), ``a = 1 - w``, ``q = a^2 r^2``, ``beta~ = U^T beta``::

        E beta_t - beta = U [ (r - 1) beta~ (1 - (a r)^{t+1})/(1 - a r) ]
        Cov beta_t      = U diag( h [ sigma^2 q^t + (w^2 sigma^2 + a^2 sigma~^2)(1 - q^t)/(1 - q) ] ) U^T
        E_t = ||E beta_t - beta||_Sigma^2 + tr(Sigma Cov beta_t)

    ``generations=None`` is the fixed point ``t -> infinity`` (``inf`` at ``w = 0``, ``ridge = 0``, ``sigma~ > 0``;
    with a ridge and ``w = 0`` the fit shrinks to ``0``: bias ``||beta||_Sigma^2``, finite variance).
    One eigendecomposition serves every weight and generation (they broadcast together).

    Args:
      design: ``(n, d)`` design in the eigenbasis of ``Sigma`` (:func:`kcollapse.data.sample_design`).
      spectrum: ``Sigma`` (eigenvalues) and the teacher ``beta`` (coefficients).
      weight: ``w in [0, 1]`` on the real labels. generations: integers ``t >= 0`` or ``None``.
      ridge: ``>= 0`` in kcollapse's normalisation (0 = min-norm). label_noise: ``sigma``.
      synthetic_noise: ``sigma~`` (default ``sigma``).

    Returns:
      :class:`RetrainingError` of the broadcast shape of ``weight`` and ``generations``.

    References:
      Garg, Bhattacharya, Sur, arXiv:2509.22341 (fixed-design iterative mixing; their formulae are
      the ``n, d -> infinity`` limits of this); docs/notes/surrogate.md.
    """
    check_spectrum(spectrum)
    _check_design(design, spectrum)
    _check_weight("weight", weight)
    _check_generations(generations)
    _check_noise(label_noise=label_noise, synthetic_noise=synthetic_noise, ridge=ridge)
    dt = spectrum.dtype
    s1 = jnp.asarray(label_noise, dt)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, dt)
    t = None if generations is None else jnp.asarray(generations, dt)
    return _given_design(jnp.asarray(design, dt), spectrum.eigenvalues, spectrum.coefficients,
                         jnp.asarray(weight, dt), t, jnp.asarray(ridge, dt), s1, s2)


def optimal_real_weight_given_design(design: ArrayLike, spectrum: Spectrum, *, ridge: ArrayLike = 0.0,
                                     label_noise: ArrayLike = 1.0,
                                     synthetic_noise: ArrayLike | None = None) -> jax.Array:
    """The real-label weight minimising the exact fixed-point error for one design (any ridge).

    Golden-section search of :func:`retraining_error_given_design` (``generations=None``) over
    ``[0, 1]`` (90 iterations; the ends are compared too). For ``ridge = 0`` it returns
    :func:`optimal_real_weight` (the fixed-point error is ``B + f(w) V``); with a ridge the optimum
    depends on the design, the teacher and the noise (Garg et al.: ``w* >= 1/2`` in their models).
    The search assumes a unimodal error in ``w`` (checked against dense grids in the tests).

    References:
      Garg, Bhattacharya, Sur, arXiv:2509.22341 (ridge: random-effects and spiked models).
    """
    check_spectrum(spectrum)
    _check_design(design, spectrum)
    _check_noise(label_noise=label_noise, synthetic_noise=synthetic_noise, ridge=ridge)
    dt = spectrum.dtype
    s1 = jnp.asarray(label_noise, dt)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, dt)
    return _golden_weight(jnp.asarray(design, dt), spectrum.eigenvalues, spectrum.coefficients,
                          jnp.asarray(ridge, dt), s1, s2)


@jax.jit
def _golden_weight(design, eigenvalues, coefficients, ridge, s1, s2):
    def err(w):
        return _given_design(design, eigenvalues, coefficients, w, None, ridge, s1, s2).total

    dt = design.dtype
    ratio = jnp.asarray(GOLDEN_REAL_WEIGHT, dt)

    def body(_, ab):
        lo, hi = ab
        x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        left = err(x1) <= err(x2)
        return jnp.where(left, lo, x1), jnp.where(left, x2, hi)

    zero, one = jnp.zeros((), dt), jnp.ones((), dt)
    lo, hi = jax.lax.fori_loop(0, _GOLDEN_ITERATIONS, body, (zero, one))
    cands = jnp.stack([zero, (lo + hi) / 2, one])
    return cands[jnp.argmin(jax.vmap(err)(cands))]


# ------------------------------------------------------------------------------------------------
# Simulator
# ------------------------------------------------------------------------------------------------


def _retraining_seed(key, spectrum, design, n, n_generations, weights, ridge, label_noise, synthetic_noise):
    dt = spectrum.dtype
    lam, beta = spectrum.eigenvalues, spectrum.coefficients
    k_x, k_0, k_gen = jax.random.split(key, 3)
    if design is None:
        X = jnp.sqrt(lam) * jax.random.normal(k_x, (n, lam.shape[0]), dtype=dt)  # = data.sample_design
    else:
        X = design
    U, r, h = _design_modes(X, ridge)
    # H = (X^T X/n + ridge)^+ X^T/n = U diag(r/s) U^T X^T/n; r/s = 1/(s + ridge) on the kept modes
    s_safe = jnp.where(r > 0, r, 1.0)
    inv = jnp.where(r > 0, h * n / s_safe, 0.0)  # h n / r = 1/(s + ridge)
    H = jnp.matmul(U * inv, jnp.matmul(U.T, X.T, precision=_HI), precision=_HI) / n  # (d, n)
    clean = jnp.matmul(X, beta, precision=_HI)

    def fit(y):  # y: (n,) or (a, n)
        return jnp.matmul(y, H.T, precision=_HI)

    beta0 = fit(clean + label_noise * jax.random.normal(k_0, (n,), dtype=dt))
    state = jnp.broadcast_to(beta0, (weights.shape[0], beta.shape[0]))

    def step(prev, t):
        k_r, k_s = jax.random.split(jax.random.fold_in(k_gen, t))
        real = clean + label_noise * jax.random.normal(k_r, (n,), dtype=dt)  # shared by every weight
        synth = jnp.matmul(prev, X.T, precision=_HI) + synthetic_noise * jax.random.normal(k_s, (n,), dtype=dt)
        y = weights[:, None] * real + (1 - weights[:, None]) * synth
        new = fit(y)
        return new, jnp.sum(lam * (new - beta) ** 2, axis=-1)

    _, errs = jax.lax.scan(step, state, jnp.arange(1, n_generations + 1))
    err0 = jnp.broadcast_to(jnp.sum(lam * (beta0 - beta) ** 2), (weights.shape[0],))
    return jnp.concatenate([err0[None], errs]).T  # (a, n_generations + 1)


@functools.partial(jax.jit, static_argnames=("n", "n_generations"))
def _retraining_batch(keys, spectrum, design, n, n_generations, weights, ridge, label_noise, synthetic_noise):
    return jax.vmap(lambda k: _retraining_seed(k, spectrum, design, n, n_generations, weights, ridge, label_noise,
                                               synthetic_noise))(keys)


def simulate_retraining(
    key: jax.Array,
    spectrum: Spectrum,
    n_samples: int,
    weights: ArrayLike,
    n_generations: int,
    *,
    ridge: float = 0.0,
    label_noise: float = 1.0,
    synthetic_noise: float | None = None,
    design: ArrayLike | None = None,
    n_seeds: int = 32,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> GridSimulation:
    """Monte Carlo of iterated weighted retraining on a fixed design (all iterations in one ``lax.scan``).

    Per seed: a design ``X ~ N(0, Sigma)`` (or the given ``design`` for every seed), the real-only fit
    ``beta_0 = H y_0``, then for ``t = 1..n_generations`` fresh real labels and synthetic labels from
    ``beta_{t-1}`` and the weighted fit ``beta_t = H (w y_t + (1-w) y~_t)``. Every weight's chain of a
    seed uses the same design and the same noise draws (common random numbers: differences along the
    weight grid are sharp); seeds are independent, seed ``i`` uses ``fold_in(key, i)``.

    Args:
      key: ``jax.random.key``. spectrum: ``Sigma`` and the teacher ``beta``.
      n_samples: ``n`` (ignored when ``design`` is given). weights: ``(a,)`` real-label weights in ``[0, 1]``.
      n_generations: iterations (static). ridge: ``>= 0`` (0 = min-norm). label_noise: ``sigma``.
      synthetic_noise: ``sigma~`` (default ``sigma``). design: optional fixed ``(n, d)`` design.
      n_seeds, seed_offset, batch_size, memory_budget: as in :func:`simulate_mixture`.

    Returns:
      :class:`GridSimulation` (``model="retraining"``), ``per_seed`` of shape
      ``(seeds, a, n_generations + 1)``; axes ``weight`` and ``generation`` (0 = real-only fit).

    Examples:
      >>> import jax, kcollapse as kc
      >>> s = kc.spectra.isotropic(10)
      >>> res = kc.strong.simulate_retraining(jax.random.key(0), s, 30, [0.5, 0.618, 1.0], 5, n_seeds=4)
      >>> res.mean.shape
      (3, 6)
    """
    spectrum = check_spectrum(spectrum)
    dt = spectrum.dtype
    if design is not None:
        _check_design(design, spectrum)
        design = jnp.asarray(design, dt)
        n = int(design.shape[0])
    else:
        n = _checks.check_int("n_samples", n_samples, minimum=1)
    weights = nonneg_grid("weights", weights)
    _check_weight("weights", weights)
    n_gen = _checks.check_int("n_generations", n_generations, minimum=0)
    ridge = _checks.check_nonneg_float("ridge", ridge)
    s1 = _checks.check_nonneg_float("label_noise", label_noise)
    s2 = s1 if synthetic_noise is None else _checks.check_nonneg_float("synthetic_noise", synthetic_noise)
    d, a = spectrum.d, weights.size
    words = 4 * n * d + 3 * d * d + 4 * a * (n + d) + a * (n_gen + 1)
    batch = functools.partial(_retraining_batch, spectrum=spectrum, design=design, n=n, n_generations=n_gen,
                              weights=jnp.asarray(weights, dt), ridge=jnp.asarray(ridge, dt),
                              label_noise=jnp.asarray(s1, dt), synthetic_noise=jnp.asarray(s2, dt))
    per_seed, idx = run_seeds(batch, key, n_seeds, seed_offset, batch_size, words * itemsize(spectrum), memory_budget,
                              "retraining")
    return GridSimulation(per_seed, (("weight", weights), ("generation", np.arange(n_gen + 1))), idx, "retraining")
