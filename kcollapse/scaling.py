"""Scaling-law fits with honest uncertainty: power laws (optionally with a plateau), knees, theory slopes.

* :func:`fit_power_law`: ``y = A x^p`` by weighted least squares on log-log (weights from the SEMs,
  delta method), or ``y = A x^p + C`` (a plateau ``C``) by weighted nonlinear least squares in linear
  space (variable projection over ``p``); standard errors from the Fisher information, optionally
  inflated by the Birge ratio ``sqrt(chi2/dof)``; a fit window.
* :func:`bootstrap_power_law`: the same fit with a percentile-bootstrap CI over seeds.
* :func:`detect_knee`: a broken (two-slope) power law, the break found by profiling ``chi2``; flags a
  significant knee and a plateau after it.
* :func:`theory_slopes`: the log-log slopes Demystified Theorem 5.2 / Corollary 5.3 predict, to compare
  with (:func:`compare_exponent`).

Conventions: an error curve ``E(T) ≍ T^{-rate}`` has log-log slope ``exponent = -rate``; every
``exponent`` here is the slope ``d log y / d log x`` (negative for a decaying curve).

All fits are pure JAX (``jit``/``vmap``-able; the window is a mask, so shapes never change).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks

__all__ = [
    "BootstrapFit",
    "ExponentComparison",
    "Knee",
    "PowerLawFit",
    "TheorySlopes",
    "bootstrap_power_law",
    "compare_exponent",
    "detect_knee",
    "fit_power_law",
    "theory_slopes",
]

_ERROR_SCALING = ("birge", "none")
_P_GRID = 801  # exponent grid of the offset fit's profile (spacing 0.025 over the default bounds)


class PowerLawFit(NamedTuple):
    """Result of :func:`fit_power_law` (a pytree of arrays; batched under ``vmap``).

    Attributes:
      exponent: ``p`` in ``y = A x^p (+ C)``; the log-log slope (``-rate`` for ``E ≍ x^{-rate}``).
      exponent_se: its standard error (after ``scale``).
      ci_low, ci_high: ``confidence`` interval for ``p`` (normal quantile when the SEMs are given,
        Student-t with ``dof`` degrees of freedom when the scale is estimated from the residuals).
      prefactor, prefactor_se: ``A`` and its standard error.
      offset, offset_se: the plateau ``C`` and its standard error (0 and 0 without ``offset=True``).
      chi2: weighted residual sum of squares (a chi-square when the SEMs are given and the model holds).
      dof: ``n_points - n_parameters``.
      p_value: ``P(chi2_dof >= chi2)`` (meaningful only with SEMs).
      scale: factor applied to the Fisher standard errors: ``sqrt(max(1, chi2/dof))`` (Birge) or 1
        with SEMs, ``sqrt(chi2/dof)`` without.
      n_points: points inside the window.
      covariance: ``(3, 3)`` covariance of ``(A, p, C)`` (after ``scale``).
      status: 0 ok; 1 too few points for an error bar (``dof < 1``; errors are ``inf``); 2 the
        exponent is at ``exponent_bounds`` (offset fit); 3 non-finite data or a singular fit (errors
        ``inf``; e.g. an offset fit of a flat curve, where ``A`` and ``C`` cannot be separated).
    """

    exponent: jax.Array
    exponent_se: jax.Array
    ci_low: jax.Array
    ci_high: jax.Array
    prefactor: jax.Array
    prefactor_se: jax.Array
    offset: jax.Array
    offset_se: jax.Array
    chi2: jax.Array
    dof: jax.Array
    p_value: jax.Array
    scale: jax.Array
    n_points: jax.Array
    covariance: jax.Array
    status: jax.Array


def _t_quantile(q: jax.Array, dof: jax.Array) -> jax.Array:
    """Student-t quantile for ``q > 1/2`` by bisection on ``betainc`` (traceable, ~1e-12 accurate)."""
    dt = q.dtype

    def cdf(t):
        return 1 - 0.5 * jax.scipy.special.betainc(dof / 2, jnp.asarray(0.5, dt), dof / (dof + t * t))

    def body(_, ab):
        a, b = ab
        m = (a + b) / 2
        below = cdf(m) < q
        return jnp.where(below, m, a), jnp.where(below, b, m)

    # t <= 1e5 for q <= 1 - 1e-10 and dof >= 1; 90 halvings leave an interval below 1e-22.
    a, b = jax.lax.fori_loop(0, 90, body, (jnp.zeros((), dt), jnp.asarray(1e5, dt)))
    return (a + b) / 2


def _quantile(conf, dof, estimated):
    """Normal quantile with known SEMs; Student-t with ``dof`` when the scale comes from the residuals."""
    q = (1 + conf) / 2
    t = _t_quantile(q, jnp.maximum(dof, 1).astype(q.dtype))
    return jnp.where(estimated, t, jax.scipy.special.ndtri(q))


def _line_fit(u, v, w):
    """Weighted line ``v = a + p u``; returns ``(a, p, cov_unscaled (2x2), chi2)``."""
    sw = jnp.sum(w)
    safe_sw = jnp.where(sw > 0, sw, 1)
    ub = jnp.sum(w * u) / safe_sw
    vb = jnp.sum(w * v) / safe_sw
    suu = jnp.sum(w * (u - ub) ** 2)
    safe_suu = jnp.where(suu > 0, suu, 1)
    p = jnp.sum(w * (u - ub) * (v - vb)) / safe_suu
    a = vb - p * ub
    chi2 = jnp.sum(w * (v - a - p * u) ** 2)
    var_p = 1 / safe_suu
    cov = jnp.array([[1 / safe_sw + ub * ub * var_p, -ub * var_p], [-ub * var_p, var_p]])
    return a, p, cov, chi2, (sw > 0) & (suu > 0)


def _offset_profile(p, t, y, w):
    """For fixed ``p``: WLS of ``y = A' t^p + C`` (``t = x/x_ref``); returns ``(chi2, A', C)``."""
    b = t**p
    m11, m12, m22 = jnp.sum(w * b * b), jnp.sum(w * b), jnp.sum(w)
    r1, r2 = jnp.sum(w * b * y), jnp.sum(w * y)
    det = m11 * m22 - m12 * m12
    safe = jnp.where(det != 0, det, 1)
    A = (m22 * r1 - m12 * r2) / safe
    C = (m11 * r2 - m12 * r1) / safe
    return jnp.sum(w * (y - A * b - C) ** 2), A, C


def _fit(x, y, sem, mask, conf, offset, birge, has_sem, p_lo, p_hi):
    dt = y.dtype
    n_pts = jnp.sum(mask.astype(dt))
    n_par = 3 if offset else 2
    dof = n_pts - n_par
    finite = jnp.all(jnp.where(mask, jnp.isfinite(x) & jnp.isfinite(y) & jnp.isfinite(sem), True))
    zero = jnp.zeros((), dt)
    if not offset:
        u = jnp.log(jnp.where(mask, x, 1))
        v = jnp.log(jnp.where(mask & (y > 0), y, 1))
        rel = jnp.where(has_sem, sem / jnp.where(mask & (y > 0), y, 1), jnp.ones_like(y))
        w = jnp.where(mask, 1 / jnp.where(rel > 0, rel, 1) ** 2, zero)
        a, p, cov2, chi2, ok = _line_fit(u, v, w)
        A = jnp.exp(a)
        C = zero
        # (A, p, C) covariance from (log A, p) by the delta method.
        J = jnp.array([[A, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=dt)
        cov = J @ cov2 @ J.T
        at_bound = jnp.zeros((), bool)
    else:
        from .optimize._solve1d import minimize_1d

        s = jnp.where(has_sem, sem, jnp.abs(y))
        w = jnp.where(mask, 1 / jnp.where(s > 0, s, 1) ** 2, zero)
        logx = jnp.log(jnp.where(mask, x, 1))
        x_ref = jnp.exp(jnp.sum(jnp.where(mask, logx, 0)) / jnp.maximum(n_pts, 1))
        t = jnp.where(mask, x / x_ref, 1)
        m = minimize_1d(lambda q: _offset_profile(q, t, y, w)[0], jnp.asarray(p_lo, dt), jnp.asarray(p_hi, dt),
                        grid_size=_P_GRID, max_iterations=100, xtol=1e-12)
        p = m.x
        chi2, A1, C = _offset_profile(p, t, y, w)
        b = t**p
        Jm = jnp.stack([b, A1 * b * jnp.log(t), jnp.ones_like(b)], axis=1) * jnp.sqrt(w)[:, None]
        F = Jm.T @ Jm
        ok = jnp.isfinite(jnp.linalg.det(F)) & (jnp.abs(jnp.linalg.det(F)) > 0)
        cov1 = jnp.linalg.inv(jnp.where(ok, F, jnp.eye(3, dtype=dt)))
        A = A1 * x_ref ** (-p)
        G = jnp.array([[x_ref ** (-p), -A * jnp.log(x_ref), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=dt)
        cov = G @ cov1 @ G.T
        at_bound = (m.status == 1) | (m.status == 2)
    safe_dof = jnp.maximum(dof, 1)
    red = chi2 / safe_dof
    scale2 = jnp.where(has_sem, jnp.where(birge, jnp.maximum(red, 1), jnp.ones((), dt)), red)
    cov = cov * scale2
    inf = jnp.asarray(jnp.inf, dt)
    few = dof < 1
    cov = jnp.where(few | ~ok, jnp.full_like(cov, inf), cov)  # no error bar: infinite, never a made-up number
    se = jnp.sqrt(jnp.diagonal(cov))
    crit = _quantile(jnp.asarray(conf, dt), dof, jnp.logical_not(has_sem))
    p_value = jnp.where(few, jnp.ones((), dt), jax.scipy.special.gammaincc(safe_dof / 2, chi2 / 2))
    status = jnp.where(~finite | ~ok, 3, jnp.where(few, 1, jnp.where(at_bound, 2, 0)))
    return PowerLawFit(
        exponent=p, exponent_se=se[1], ci_low=p - crit * se[1], ci_high=p + crit * se[1],
        prefactor=A, prefactor_se=se[0], offset=C, offset_se=jnp.where(offset, se[2], zero),
        chi2=chi2, dof=dof, p_value=p_value, scale=jnp.sqrt(scale2), n_points=n_pts, covariance=cov,
        status=status.astype(jnp.int32),
    )


# The flags are traced (one compilation per offset mode serves weighted and unweighted fits).
_fit_jit = jax.jit(_fit, static_argnames=("offset",))


def _concrete(*xs) -> bool:
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(xs))


def _prepare(x, y, sem, window):
    y = jnp.asarray(y)
    dt = y.dtype if jnp.issubdtype(y.dtype, jnp.floating) else jnp.result_type(float)
    x = jnp.asarray(x).astype(dt)
    y = y.astype(dt)
    has_sem = sem is not None
    s = jnp.asarray(sem, dt) if has_sem else jnp.ones_like(y)
    mask = x > 0
    if window is not None:
        lo, hi = window
        if lo is not None:
            mask = mask & (x >= jnp.asarray(lo, dt))
        if hi is not None:
            mask = mask & (x <= jnp.asarray(hi, dt))
    return x, y, s, mask, has_sem


def fit_power_law(
    x: ArrayLike,
    y: ArrayLike,
    sem: ArrayLike | None = None,
    *,
    offset: bool = False,
    window: tuple[float | None, float | None] | None = None,
    confidence: float = 0.95,
    error_scaling: str = "birge",
    exponent_bounds: tuple[float, float] = (-10.0, 10.0),
) -> PowerLawFit:
    """Fit ``y = A x^p`` (or ``y = A x^p + C`` with ``offset=True``) with standard errors.

    * Without offset: weighted least squares of ``log y = log A + p log x`` with weights
      ``(y_i/sem_i)^2`` (``Var log y ≈ (sem/y)^2``, delta method); unweighted without SEMs.
    * With offset: weighted nonlinear least squares ``sum ((y_i - A x_i^p - C)/sem_i)^2`` in linear
      space (relative weights ``1/y_i^2`` without SEMs), solved exactly for ``(A, C)`` at each ``p``
      and minimised over ``p`` (a grid over ``exponent_bounds``, then regula falsi on the derivative). ``C`` is not
      constrained to be ``>= 0``: a negative ``C`` within its error bar means no plateau is seen.

    Standard errors come from the inverse Fisher information. With SEMs and
    ``error_scaling="birge"`` (default) they are multiplied by ``sqrt(max(1, chi2/dof))``: the SEMs are
    trusted unless the scatter shows the model or the SEMs are wrong (then the error bar grows;
    over-dispersion is never ignored). ``"none"`` trusts the SEMs (exact nominal coverage when the
    model holds). Without SEMs the scale ``sqrt(chi2/dof)`` is estimated and the CI uses Student-t.

    Args:
      x: ``(k,)`` positive abscissae (``T``, ``n``, ``ridge`` ...).
      y: ``(k,)`` values (``> 0`` in the window without offset).
      sem: ``(k,)`` standard errors of ``y`` (``> 0``), or ``None``.
      offset: also fit a plateau ``C`` (static).
      window: ``(lo, hi)``: only points with ``lo <= x <= hi`` (either may be ``None``).
      confidence: CI coverage in ``(0, 1)``.
      error_scaling: ``"birge"`` or ``"none"`` (with SEMs only).
      exponent_bounds: search interval for ``p`` in the offset fit.

    Returns:
      :class:`PowerLawFit`.

    Raises:
      ValueError: (concrete inputs) mismatched shapes, non-positive ``x``, ``y <= 0`` without offset,
        ``sem <= 0``, or fewer than ``3`` (``4`` with offset) points in the window.

    Examples:
      >>> import numpy as np, jax; jax.config.update("jax_enable_x64", True)
      >>> from kcollapse.scaling import fit_power_law
      >>> T = np.logspace(2, 5, 10)
      >>> fit = fit_power_law(T, 3.0 * T**-0.6, 0.01 * 3.0 * T**-0.6)
      >>> round(float(fit.exponent), 6), bool(fit.ci_low < -0.6 < fit.ci_high)
      (-0.6, True)

    References:
      Birge, "The calculation of errors by the method of least squares", Phys. Rev. 40 (1932) (the
      ratio ``sqrt(chi2/dof)``); Particle Data Group, "Review of Particle Physics", §5 (scale factor).
    """
    _checks.check_choice("error_scaling", error_scaling, _ERROR_SCALING)
    conf = _checks.check_fraction("confidence", confidence)
    if not 0 < conf < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {conf}")
    p_lo, p_hi = (float(b) for b in exponent_bounds)
    if not p_lo < p_hi:
        raise ValueError(f"exponent_bounds must be (lo, hi) with lo < hi, got {exponent_bounds!r}")
    xj, yj, sj, mask, has_sem = _prepare(x, y, sem, window)
    if _concrete(xj, yj, sj, mask):
        _validate_concrete(xj, yj, sj, mask, has_sem, offset)
    return _fit_jit(xj, yj, sj, mask, conf, bool(offset), error_scaling == "birge", has_sem, p_lo, p_hi)


def _validate_concrete(x, y, s, mask, has_sem, offset):
    xn, yn, sn, mn = (np.asarray(a) for a in (x, y, s, mask))
    if xn.ndim != 1 or yn.shape != xn.shape or sn.shape != xn.shape:
        raise ValueError(f"x, y and sem must be 1-D of the same length, got shapes {xn.shape}, {yn.shape}, {sn.shape}")
    if np.any(~np.isfinite(xn)) or np.any(xn <= 0):
        raise ValueError("x must be finite and > 0 (the fit is on log x)")
    need = 4 if offset else 3
    if mn.sum() < need:
        raise ValueError(f"the window holds {int(mn.sum())} points; a fit with an error bar needs at least {need} "
                         "(widen --window / add points)")
    if np.any(~np.isfinite(yn[mn])):
        raise ValueError("y must be finite inside the window")
    if not offset and np.any(yn[mn] <= 0):
        raise ValueError("y must be > 0 inside the window for a log-log fit; use offset=True or narrow the window")
    if has_sem and (np.any(~np.isfinite(sn[mn])) or np.any(sn[mn] <= 0)):
        raise ValueError("sem must be finite and > 0 inside the window (drop sem to fit unweighted)")


class BootstrapFit(NamedTuple):
    """Result of :func:`bootstrap_power_law`.

    Attributes:
      fit: :class:`PowerLawFit` on the seed means with their SEMs.
      ci_low, ci_high: percentile-bootstrap CI of the exponent.
      exponent_se: bootstrap standard deviation of the exponent.
      replicates: ``(n_bootstrap,)`` bootstrap exponents.
    """

    fit: PowerLawFit
    ci_low: jax.Array
    ci_high: jax.Array
    exponent_se: jax.Array
    replicates: jax.Array


@functools.partial(jax.jit, static_argnames=("offset", "n_bootstrap", "paired"))
def _bootstrap(key, x, samples, mask, conf, offset, n_bootstrap, paired, p_lo, p_hi):
    S = samples.shape[0]

    def one(k):
        idx = jax.random.randint(k, (S,) if paired else samples.shape, 0, S)
        res = samples[idx] if paired else jnp.take_along_axis(samples, idx, axis=0)
        mean = res.mean(0)
        sem = res.std(0, ddof=1) / jnp.sqrt(S)
        return _fit(x, mean, sem, mask, conf, offset, True, True, p_lo, p_hi).exponent

    return jax.vmap(one)(jax.random.split(key, n_bootstrap))


def bootstrap_power_law(
    key: jax.Array,
    x: ArrayLike,
    samples: ArrayLike,
    *,
    offset: bool = False,
    window: tuple[float | None, float | None] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    paired: bool = False,
    exponent_bounds: tuple[float, float] = (-10.0, 10.0),
) -> BootstrapFit:
    """Power-law fit of seed means with a percentile-bootstrap CI of the exponent over seeds.

    Each replicate resamples the seeds (independently at every ``x`` unless ``paired``: use
    ``paired=True`` when all points share each seed's data, e.g. a ridge grid from one simulation),
    recomputes means and SEMs and refits (:func:`fit_power_law`, Birge scaling).

    Args:
      key: PRNG key. x: ``(k,)`` abscissae. samples: ``(seeds, k)`` per-seed values (``seeds >= 2``).
      offset, window, confidence, exponent_bounds: as in :func:`fit_power_law`.
      n_bootstrap: replicates (``>= 100``). paired: resample whole seeds across ``x``.

    Returns:
      :class:`BootstrapFit`.
    """
    arr = _checks.check_finite_array("samples", samples, ndim=2)
    if arr.shape[0] < 2:
        raise ValueError(f"samples needs at least 2 seeds (rows), got {arr.shape[0]}")
    n_bootstrap = _checks.check_int("n_bootstrap", n_bootstrap, minimum=100)
    mean = arr.mean(0)
    sem = arr.std(0, ddof=1) / np.sqrt(arr.shape[0])
    fit = fit_power_law(x, mean, sem, offset=offset, window=window, confidence=confidence,
                        exponent_bounds=exponent_bounds)
    xj, _, _, mask, _ = _prepare(x, mean, sem, window)
    dt = xj.dtype
    reps = _bootstrap(key, xj, jnp.asarray(arr, dt), mask, jnp.asarray(confidence, dt), bool(offset), n_bootstrap,
                      bool(paired), float(exponent_bounds[0]), float(exponent_bounds[1]))
    q = jnp.asarray([(1 - confidence) / 2, (1 + confidence) / 2], dt)
    lo, hi = jnp.quantile(reps, q)
    return BootstrapFit(fit, lo, hi, jnp.std(reps, ddof=1), reps)


class Knee(NamedTuple):
    """Result of :func:`detect_knee`: a continuous broken power law fitted on log-log.

    Attributes:
      x_knee: the break point (``x`` where the slope changes).
      slope_before, slope_before_se, slope_after, slope_after_se: the two log-log slopes and errors
        (at the best break, not accounting for the break's own uncertainty).
      delta_chi2: ``chi2(one line) - chi2(broken line)`` (normalised by the broken fit's residual
        variance when no SEMs are given).
      significant: ``delta_chi2 > threshold``.
      plateau: a significant knee whose later slope is within 2 standard errors of 0.
      line: :class:`PowerLawFit` of a single power law over the same points.
    """

    x_knee: jax.Array
    slope_before: jax.Array
    slope_before_se: jax.Array
    slope_after: jax.Array
    slope_after_se: jax.Array
    delta_chi2: jax.Array
    significant: jax.Array
    plateau: jax.Array
    line: PowerLawFit


@functools.partial(jax.jit, static_argnames=("n_candidates", "min_points"))
def _knee(x, y, sem, mask, has_sem, threshold, n_candidates, min_points):
    dt = y.dtype
    zero = jnp.zeros((), dt)
    u = jnp.log(jnp.where(mask, x, 1))
    v = jnp.log(jnp.where(mask & (y > 0), y, 1))
    rel = jnp.where(has_sem, sem / jnp.where(mask & (y > 0), y, 1), jnp.ones_like(y))
    w = jnp.where(mask, 1 / jnp.where(rel > 0, rel, 1) ** 2, zero)
    _, _, _, chi2_line, _ = _line_fit(u, v, w)
    us = jnp.sort(jnp.where(mask, u, jnp.inf))
    k = jnp.sum(mask.astype(jnp.int32))
    lo = us[min_points - 1]
    hi = us[jnp.maximum(k - min_points, min_points - 1)]
    cands = lo + (hi - lo) * jnp.linspace(0.0, 1.0, n_candidates, dtype=dt)

    def broken(ub):
        X = jnp.stack([jnp.ones_like(u), jnp.minimum(u - ub, 0), jnp.maximum(u - ub, 0)], axis=1)
        Xw = X * jnp.sqrt(w)[:, None]
        M = Xw.T @ Xw
        beta = jnp.linalg.solve(M, Xw.T @ (v * jnp.sqrt(w)))
        chi2 = jnp.sum(w * (v - X @ beta) ** 2)
        return chi2, beta, jnp.linalg.inv(M)

    chi2s = jax.vmap(lambda c: broken(c)[0])(cands)
    chi2s = jnp.where(jnp.isfinite(chi2s), chi2s, jnp.inf)
    j = jnp.argmin(chi2s)
    chi2_b, beta, cov = broken(cands[j])
    dof_b = jnp.maximum(k - 4, 1).astype(dt)
    s2 = jnp.where(has_sem, jnp.maximum(chi2_b / dof_b, 1), chi2_b / dof_b)
    delta = (chi2_line - chi2_b) / jnp.where(has_sem, jnp.ones((), dt), jnp.where(s2 > 0, s2, 1))
    se = jnp.sqrt(jnp.diagonal(cov) * s2)
    significant = delta > threshold
    plateau = significant & (jnp.abs(beta[2]) <= 2 * se[2])
    return jnp.exp(cands[j]), beta[1], se[1], beta[2], se[2], delta, significant, plateau


def detect_knee(
    x: ArrayLike,
    y: ArrayLike,
    sem: ArrayLike | None = None,
    *,
    window: tuple[float | None, float | None] | None = None,
    threshold: float = 11.83,
    min_points: int = 3,
    n_candidates: int = 400,
) -> Knee:
    """Detect a knee (a change of log-log slope, e.g. the onset of a plateau) in a positive curve.

    Fits ``log y = a + p1 min(u - u_b, 0) + p2 max(u - u_b, 0)`` (``u = log x``; continuous at the
    break ``u_b``) by weighted least squares for ``n_candidates`` break positions between the
    ``min_points``-th smallest and largest ``x``, and keeps the best. The knee is ``significant`` when
    the improvement over a single power law, ``delta_chi2``, exceeds ``threshold`` (default 11.83, the
    99.73 % point of chi-square with 2 degrees of freedom: the break position is profiled, so this is
    a heuristic, somewhat liberal test; without SEMs the statistic is normalised by the broken fit's
    residual variance). A ``plateau`` is a significant knee whose later slope is consistent with 0.

    Args:
      x, y, sem, window: as in :func:`fit_power_law` (``y > 0``).
      threshold: significance threshold on ``delta_chi2``.
      min_points: points required on each side of the break (``>= 2``).
      n_candidates: break positions tried.

    Returns:
      :class:`Knee`.
    """
    min_points = _checks.check_int("min_points", min_points, minimum=2)
    n_candidates = _checks.check_int("n_candidates", n_candidates, minimum=2)
    _checks.check_positive_float("threshold", threshold)
    xj, yj, sj, mask, has_sem = _prepare(x, y, sem, window)
    if _concrete(xj, yj, sj, mask):
        _validate_concrete(xj, yj, sj, mask, has_sem, False)
        if int(np.asarray(mask).sum()) < 2 * min_points:
            raise ValueError(f"detect_knee needs at least 2*min_points = {2 * min_points} points in the window")
    line = fit_power_law(xj, yj, sj if has_sem else None, window=window)
    out = _knee(xj, yj, sj, mask, has_sem, jnp.asarray(threshold, yj.dtype), n_candidates, min_points)
    return Knee(*out, line=line)


class TheorySlopes(NamedTuple):
    """Log-log slopes of the error vs ``T`` predicted by Demystified Theorem 5.2 (``T >= d`` regime).

    Attributes:
      clean: slope of the clean term, ``-min(2 ell r_bar, 1 - ell/beta)`` (noisy) or ``-2 ell r_bar``
        (noiseless).
      collapse: slope of the collapse term, ``a - b + ell/beta`` (``n sigma0^2 ≍ T^a``, ``T0 ≍ T^b``).
      total: ``max(clean, collapse)``: the slope the total error approaches as ``T`` grows (with
        ``n >= 1``; for clean data use ``clean``).
    """

    clean: jax.Array
    collapse: jax.Array
    total: jax.Array


def theory_slopes(beta: ArrayLike, r: ArrayLike, ell: ArrayLike, *, a: ArrayLike = 0.0, b: ArrayLike = 0.0,
                  noisy: bool = True) -> TheorySlopes:
    """Asymptotic log-log slopes of the test error under the ridge schedule ``lambda ≍ T^{-ell}``.

    From Theorem 5.2 (shared/THEORY.md §2.5), for ``d <= T`` (so ``max(T/T0, phi0) = T/T0``),
    ``0 <= ell < beta``, ``n sigma0^2 ≍ T^a``, ``T0 ≍ T^b`` (``b = 0``: a fixed generator sample size,
    as in Demystified Fig. 2)::

        clean    ≍ T^{-2 ell r_bar} + sigma^2 T^{-(1 - ell/beta)}
        collapse ≍ n sigma0^2 (T/T0) T^{-(1 - ell/beta)} = T^{a - b + ell/beta}

    Corollary 5.3 in these terms: with ``ell = ell_crit = beta/(1 + 2 beta r_bar)`` the clean slope is
    ``-c`` (``c = 2 beta r_bar/(2 beta r_bar + 1)``) and the collapse slope is ``-(c + b - a - 1)``
    (``rate_classical``): with ``b = a = 0`` it is ``1 - c > 0``, the error grows with ``T``; with
    ``ell = ell* = (b - a) ell_crit`` the noiseless total slope is ``-(b - a) c``.

    Args:
      beta: capacity exponent (``> 1``). r: source exponent (``r_bar = min(r, 1)``).
      ell: ridge exponent. a, b: as above. noisy: ``sigma > 0`` (static).

    Returns:
      :class:`TheorySlopes`.

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> s = theory_slopes(2.0, 0.375, 0.8)     # Demystified Fig. 2: ell_crit = 0.8, T0 fixed
      >>> round(float(s.clean), 6), round(float(s.collapse), 6)
      (-0.6, 0.4)

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, Theorem 5.2,
      Corollary 5.3, App. B.1 (with the corrections listed in shared/THEORY.md §2.5).
    """
    for name, v in (("beta", beta), ("r", r), ("ell", ell), ("a", a), ("b", b)):
        if _concrete(v):
            _checks.check_finite_array(name, v)
    beta = jnp.asarray(beta)
    if not jnp.issubdtype(beta.dtype, jnp.floating):
        beta = beta.astype(jnp.result_type(float))
    r, ell, a, b = (jnp.asarray(v, beta.dtype) for v in (r, ell, a, b))
    r_bar = jnp.minimum(r, 1)
    bias = -2 * ell * r_bar
    clean = jnp.maximum(bias, -(1 - ell / beta)) if noisy else bias
    collapse = a - b + ell / beta
    return TheorySlopes(clean, collapse, jnp.maximum(clean, collapse))


class ExponentComparison(NamedTuple):
    """A fitted exponent against a theory value: ``difference = fitted - expected``, ``z`` in
    standard errors, and ``consistent`` = the CI contains the theory value."""

    difference: jax.Array
    z: jax.Array
    consistent: jax.Array


def compare_exponent(fit: PowerLawFit | BootstrapFit, expected: ArrayLike) -> ExponentComparison:
    """Compare a fitted exponent with a theory exponent (e.g. from :func:`theory_slopes`)."""
    if isinstance(fit, BootstrapFit):
        p, lo, hi, se = fit.fit.exponent, fit.ci_low, fit.ci_high, fit.exponent_se
    else:
        p, lo, hi, se = fit.exponent, fit.ci_low, fit.ci_high, fit.exponent_se
    e = jnp.asarray(expected, jnp.asarray(p).dtype)
    diff = p - e
    return ExponentComparison(diff, diff / se, (lo <= e) & (e <= hi))
