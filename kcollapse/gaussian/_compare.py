"""Every available formula for a :class:`RefitConfig`, and theory vs simulation point by point."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ._config import RefitConfig
from ._consistency import accumulate_uniform_bounds
from ._simulate import RefitSimulation, _check_generations
from ._theory import (
    collapse_probability_bound,
    expected_log_det_change,
    expected_mean_sq_error,
    expected_scale,
    expected_variance,
    expected_w2_sq,
    kazdan_limits,
    log_det_change_variance,
    log_spread,
    shumailov_second_order,
    suresh_collapse_bound,
    w2_sq_variance,
)

__all__ = ["RefitTheory", "compare_refit", "refit_theory", "Z_THRESHOLD", "RELIABILITY_FACTOR"]

_SH = "Shumailov et al. 2305.17493v3 §4.2"
_KZ = "Kazdan et al. 2410.16713v4 Thm 1"
_KC = "kcollapse derivation (docs/notes/gaussian.md)"

#: Bound rows count as violated when the simulation is beyond the bound by more than this many SEMs.
Z_THRESHOLD = 4.0
#: A moment of order q of sigma_g is "reliable" for Monte Carlo when chains >= RELIABILITY_FACTOR * exp(q^2 v_g).
RELIABILITY_FACTOR = 30.0

#: quantity -> (moment order q of sigma_g that drives its tails, description)
QUANTITY_INFO: dict[str, tuple[int, str]] = {
    "mean_sq_error": (2, "E||mu_g - mu||^2"),
    "variance": (2, "E tr Sigma_g (E sigma_g^2 for d = 1)"),
    "marginal_variance": (2, "per-coordinate variance of a generation-g sample, (E||mu_g-mu||^2 + E tr Sigma_g)/d"),
    "scale": (1, "E sigma_g (d > 1: E det(Sigma_g)^(1/(2d)))"),
    "log_det_change": (0, "E[log det Sigma_g - log det Sigma_0] (d = 1: E log(sigma_g^2/sigma^2))"),
    "log_det_change_var": (0, "Var log det Sigma_g"),
    "w2_sq": (2, "E W2^2 to the truth"),
    "w2_sq_var": (4, "Var W2^2"),
    "p_scale_above_eps": (0, "P(sigma_g > eps)"),
}


@dataclasses.dataclass(frozen=True)
class RefitTheory:
    """All formulas that apply to a configuration, at the reported generations.

    Attributes:
      generations: ``(R,)``.
      values: name -> ``(R,)`` float array. Exact quantities use the names of :data:`QUANTITY_INFO`;
        approximations end in ``_second_order`` (Shumailov's leading order in ``1/M``) or ``_limit``
        (Kazdan's ``g -> inf``); bounds end in ``_lower_bound``/``_upper_bound`` or, for
        ``P(sigma_g > eps)``, ``_markov``/``_suresh``.
      sources: name -> the paper/theorem or derivation behind it.
      config: the :class:`RefitConfig`. eps: the threshold of the probability bounds (or ``None``).
    """

    generations: np.ndarray
    values: dict[str, np.ndarray]
    sources: dict[str, str]
    config: RefitConfig
    eps: float | None = None


@functools.partial(jax.jit, static_argnames=("mode", "estimator", "dim", "kazdan", "with_eps"))
def _values(g, bs, sigma, eta, eps, *, mode, estimator, dim, kazdan, with_eps):
    """Every applicable formula in one compiled program (keys as in :class:`RefitTheory`)."""
    kw = dict(mode=mode, estimator=estimator)
    v = {}
    v["mean_sq_error"] = expected_mean_sq_error(g, bs, dim=dim, sigma=sigma, mean_noise=eta, **kw)
    v["variance"] = expected_variance(g, bs, dim=dim, sigma=sigma, **kw)
    v["marginal_variance"] = (v["mean_sq_error"] + v["variance"]) / dim
    if mode == "replace" or dim == 1:
        v["scale"] = expected_scale(g, bs, dim=dim, sigma=sigma, **kw)
        v["log_det_change"] = expected_log_det_change(g, bs, dim=dim, **kw)
    if mode == "replace":
        v["log_det_change_var"] = log_det_change_variance(g, bs, dim=dim, **kw)
    if dim == 1:
        v["w2_sq"] = expected_w2_sq(g, bs, sigma=sigma, mean_noise=eta, **kw)
        if mode == "replace":
            _, v["w2_sq_var"] = w2_sq_variance(g, bs, estimator=estimator, sigma=sigma, mean_noise=eta)
    if mode == "replace":
        v["w2_sq_second_order"], v["w2_sq_var_second_order"], v["marginal_variance_second_order"] = (
            shumailov_second_order(g, bs, sigma=sigma, dim=dim, mean_noise=eta))
    v["w2_sq_lower_bound"] = v["mean_sq_error"]
    v["w2_sq_upper_bound"] = v["mean_sq_error"] + v["variance"] + dim * sigma**2
    if mode == "accumulate":
        ub, lb = accumulate_uniform_bounds(bs[0], estimator=estimator, dim=dim, sigma=sigma)
        v["mean_sq_error_uniform_upper_bound"] = jnp.broadcast_to(ub, g.shape)
        v["variance_uniform_lower_bound"] = jnp.broadcast_to(lb, g.shape)
    if kazdan:
        vl, ml = kazdan_limits(bs[0], sigma=sigma, dim=dim)
        v["variance_limit"] = jnp.broadcast_to(vl, g.shape)
        v["mean_sq_error_limit"] = jnp.broadcast_to(ml, g.shape)
    if with_eps:
        if "scale" in v:
            v["p_scale_above_eps_markov"] = collapse_probability_bound(g, bs, eps, dim=dim, sigma=sigma, **kw)
        if mode == "replace" and dim == 1:
            v["p_scale_above_eps_suresh"] = suresh_collapse_bound(g, bs, eps, sigma=sigma)
    v["log_spread"] = log_spread(g, bs, **kw)
    return v


def _sources(config: RefitConfig) -> dict[str, str]:
    est = f"{config.estimator} variance"
    paper = _SH if config.mode == "replace" else _KZ
    return {
        "mean_sq_error": f"{paper} ({est}); general schedule: {_KC}",
        "variance": f"{paper} ({est})",
        "marginal_variance": f"{_SH} Var(X_j^n) (exact: mean_sq_error + variance)",
        "scale": ("THEORY.md §6.1 E sigma_g = sigma c4^g" if config.mode == "replace"
                  else f"{_KC}: product of independent factors, Laplace quadrature"),
        "log_det_change": "THEORY.md §6.1 almost-sure collapse: drift of log sigma_g^2"
                          + ("" if config.mode == "replace" else f" ({_KC}, quadrature)"),
        "log_det_change_var": "sum of trigamma((M-1-i)/2) (random walk of log det Sigma_g)",
        "w2_sq": f"THEORY.md §6.1 E W2^2 = sigma^2 [g/M + 2(1 - c4^g)] ({est}; general: {_KC})",
        "w2_sq_var": f"{_KC}: exact moment recursion (corrects THEORY.md's eq. (5) reading)",
        "w2_sq_second_order": f"{_SH}: (3/2) sigma^2 sum 1/M_i (d = 1); d(d+5)/4 factor for d > 1: {_KC}",
        "w2_sq_var_second_order": f"leading order (5/2) sigma^4 (sum 1/M_i)^2 for d = 1 ({_KC})",
        "marginal_variance_second_order": f"{_SH}: sigma^2 (1 + sum 1/M_i)",
        "w2_sq_lower_bound": ("Shumailov et al. §4.3: E W2^2 >= E||mu_g - mu||^2 (= tr Sigma sum 1/M_i + "
                              "sum E||eps_i||^2 for the unbiased estimator)"),
        "w2_sq_upper_bound": "Bures term <= tr Sigma_g + tr Sigma_0 (bounded under accumulate: Kazdan et al.)",
        "mean_sq_error_uniform_upper_bound": ("Barzilai & Shamir 2505.19046 consistency [SECONDARY]; exact schedule-free "
                                              f"bound sup_t E||mu_t - mu||^2 <= 2 d sigma^2/M_1 ({_KC})"),
        "variance_uniform_lower_bound": ("Barzilai & Shamir consistency; inf_t E tr Sigma_t >= d sigma^2 (1 - 2/M_1) (MLE) "
                                         f"or (1 - 1/(M_1 - 1)) (unbiased), any schedule ({_KC})"),
        "variance_limit": f"{_KZ}: d sigma^2 sin(pi/sqrt n)/(pi/sqrt n)",
        "mean_sq_error_limit": f"{_KZ}: d sigma^2 (1 - sin(pi/sqrt n)/(pi/sqrt n))",
        "p_scale_above_eps_markov": "Markov: P(sigma_g > eps) <= E sigma_g/eps (exact E sigma_g)",
        "p_scale_above_eps_suresh": "Suresh et al. 2412.17646: (sigma/eps) exp(-k/(4n)) [SECONDARY]",
        "log_spread": "sum_k Var(U_k)/E(U_k)^2, log-variance proxy of sigma_g^2 (Monte Carlo reliability)",
    }


def refit_theory(config: RefitConfig, generations, *, eps: float | None = None) -> RefitTheory:
    """Evaluate every formula of shared/THEORY.md §6-§7 that covers ``config`` (one compiled program).

    Exact for every mode/estimator/schedule: ``mean_sq_error``, ``variance``, ``marginal_variance``;
    replace (any ``d``): ``scale``, ``log_det_change``, ``log_det_change_var``; accumulate (``d = 1``):
    ``scale``, ``log_det_change``; ``d = 1``: ``w2_sq``; replace ``d = 1``: ``w2_sq_var``. Replace:
    Shumailov's second-order forms. Accumulate with the MLE and a constant batch: Kazdan's limits.
    Bounds: ``w2_sq_lower_bound = E||mu_g - mu||^2`` (Shumailov §4.3) and ``w2_sq_upper_bound =
    E||mu_g - mu||^2 + E tr Sigma_g + d sigma^2``; with ``eps``: Markov (exact ``E sigma_g``) and Suresh
    et al. bounds on ``P(sigma_g > eps)``.

    Raises:
      ValueError: invalid config or generations. FloatingPointError: a non-finite value (``Var W2^2``
      beyond the float range is reported as ``+inf`` and noted in ``sources``).
    """
    config.validate()
    g = _check_generations(generations, config.n_generations)
    bs = config.batch_sizes()
    if bs.size == 0:
        bs = np.full((1,), config.samples_per_generation)  # no refit: only generation 0 is read
    if eps is not None:
        eps = _checks.check_positive_float("eps", eps)
    kazdan = config.mode == "accumulate" and config.estimator == "mle" and config.growth == 0
    dt = np.float64 if jax.config.jax_enable_x64 else np.float32
    # evaluate at every generation 0..G (the compiled program then depends on G only), read at g
    every = jnp.arange(bs.shape[0] + 1)
    vals = _values(every, jnp.asarray(bs, dt), jnp.asarray(float(config.sigma), dt),
                   jnp.asarray(float(config.mean_noise), dt), jnp.asarray(1.0 if eps is None else eps, dt),
                   mode=config.mode, estimator=config.estimator, dim=config.dim, kazdan=kazdan,
                   with_eps=eps is not None)
    values = {k: np.asarray(v, dtype=np.float64)[g] for k, v in vals.items()}
    all_sources = _sources(config)
    src = {k: all_sources[k] for k in values}
    if "w2_sq_var" in values and np.any(np.isposinf(values["w2_sq_var"])):
        src["w2_sq_var"] += ("; +inf (beyond the float range) at generations "
                             f"{g[np.isposinf(values['w2_sq_var'])].tolist()}")
    for k, v in values.items():
        if k == "w2_sq_var":
            v = v[~np.isposinf(v)]
        if not np.all(np.isfinite(v)):
            raise FloatingPointError(f"theory value {k} is not finite at generations {g[~np.isfinite(v)].tolist()}")
    return RefitTheory(g, values, src, config, eps)


def _row(n, quantity, kind, theory, sim, sem, chains, formula, reliable=True, approximation=None):
    gap = sim - theory
    if not math.isfinite(theory):  # e.g. Var W2^2 beyond the float range: nothing to compare
        z = rel = math.nan
        reliable = False
    else:
        z = gap / sem if sem > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))
        rel = gap / abs(theory) if theory != 0 else (0.0 if gap == 0 else math.inf)
    row = {"n": int(n), "quantity": quantity, "kind": kind, "theory": float(theory), "simulation": float(sim),
           "sem": float(sem), "z": float(z), "relative_gap": float(rel), "reliable": bool(reliable),
           "approximation": None if approximation is None else float(approximation), "holds": None,
           "chains": int(chains), "formula": formula}
    if kind == "upper_bound":
        row["holds"] = bool(gap <= Z_THRESHOLD * sem)
    elif kind == "lower_bound":
        row["holds"] = bool(gap >= -Z_THRESHOLD * sem)
    return row


def compare_refit(theory: RefitTheory, sim: RefitSimulation) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Theory vs simulation at every reported generation ``n >= 1`` (generation 0 is the truth itself).

    Rows (one per generation and quantity): ``quantity`` (a :class:`RefitTheory` value name; bound
    rows are named after the bound, e.g. ``w2_sq_lower_bound`` compares the simulated ``E W2^2`` with
    it), ``theory``, ``simulation`` (mean over chains, or sample variance / fraction), ``sem``,
    ``z = (simulation - theory)/sem``, ``relative_gap``, ``kind`` (``"exact"``, ``"upper_bound"``,
    ``"lower_bound"``), ``holds`` (bounds: not beyond the bound by more than 4 SEM; a violation counts
    only on a reliable row), ``reliable``, ``approximation`` (the paper's second-order or limit value,
    if any), ``formula`` and ``chains``.

    ``reliable`` flags Monte-Carlo estimates whose tails are too heavy for the SEM to be trusted:
    ``sigma_g^2`` is close to log-normal with log-variance ``v_g`` (:func:`log_spread`), so a moment of
    order ``q`` has kurtosis ``~ exp(q^2 v_g)``; a row is reliable when ``chains >= 30 exp(q^2 v_g)``
    (the sample SEM then has relative error <~ 20%). Unreliable rows are reported but left out of
    ``max_abs_z`` and ``max_abs_relative_gap``.

    Returns:
      ``(rows, summary)`` with ``summary = {max_abs_z, max_abs_relative_gap, points, unreliable_points,
      bound_points, bounds_violated}``.
    """
    if not np.array_equal(theory.generations, sim.generations):
        raise ValueError("theory and simulation must be evaluated at the same generations")
    v = theory.values
    chains = sim.n_chains
    rows = []
    eps = theory.eps
    for j, n in enumerate(theory.generations):
        if n == 0:
            continue
        spread = v["log_spread"][j]

        def reliable(q):
            return q * q * spread <= math.log(chains / RELIABILITY_FACTOR) if chains >= RELIABILITY_FACTOR else q == 0

        for q in ("mean_sq_error", "variance", "marginal_variance", "scale", "log_det_change", "w2_sq"):
            if q not in v:
                continue
            approx = None
            if q == "w2_sq":
                approx = v.get("w2_sq_second_order", [None] * len(theory.generations))[j]
            elif q == "marginal_variance":
                approx = v.get("marginal_variance_second_order", [None] * len(theory.generations))[j]
            elif q in ("variance", "mean_sq_error") and f"{q}_limit" in v:
                approx = v[f"{q}_limit"][j]
            rows.append(_row(n, q, "exact", v[q][j], sim.mean(q)[j], sim.sem(q)[j], chains, theory.sources[q],
                             reliable(QUANTITY_INFO[q][0]), approx))
        for q in ("log_det_change_var", "w2_sq_var"):
            if q not in v:
                continue
            s2, se = sim.var(q[:-4])
            approx = v.get("w2_sq_var_second_order", [None] * len(theory.generations))[j] if q == "w2_sq_var" else None
            rows.append(_row(n, q, "exact", v[q][j], s2[j], se[j], chains, theory.sources[q],
                             reliable(QUANTITY_INFO[q][0]), approx))
        for name, kind in (("w2_sq_lower_bound", "lower_bound"), ("w2_sq_upper_bound", "upper_bound")):
            rows.append(_row(n, name, kind, v[name][j], sim.mean("w2_sq")[j], sim.sem("w2_sq")[j], chains,
                             theory.sources[name], reliable(2)))
        for name, kind, q in (("mean_sq_error_uniform_upper_bound", "upper_bound", "mean_sq_error"),
                              ("variance_uniform_lower_bound", "lower_bound", "variance")):
            if name in v:
                rows.append(_row(n, name, kind, v[name][j], sim.mean(q)[j], sim.sem(q)[j], chains,
                                 theory.sources[name], reliable(2)))
        if eps is not None:
            p, se = sim.fraction_above(eps)
            for name in ("p_scale_above_eps_markov", "p_scale_above_eps_suresh"):
                if name in v:
                    rows.append(_row(n, name, "upper_bound", v[name][j], p[j], se[j], chains, theory.sources[name]))
    exact = [r for r in rows if r["kind"] == "exact" and r["reliable"]]
    bounds = [r for r in rows if r["kind"] != "exact"]
    summary = {
        "max_abs_z": max((abs(r["z"]) for r in exact), default=0.0),
        "max_abs_relative_gap": max((abs(r["relative_gap"]) for r in exact), default=0.0),
        "points": len(exact),
        "unreliable_points": sum(1 for r in rows if r["kind"] == "exact" and not r["reliable"]),
        "bound_points": len(bounds),
        "bounds_violated": sum(1 for r in bounds if r["reliable"] and not r["holds"]),
    }
    return rows, summary
