"""Theory vs simulation for the THEORY.md §7 results: Bertrand et al. mixing and Suresh et al.'s discrete chain."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._discrete import (
    CategoricalSimulation,
    branching_survival,
    feller_survival,
    suresh_survival_bound,
    survival_probability,
    truncated_forgetting_time,
)
from ._mixing import MixConfig, MixSimulation, mixing_fixed_point, mixing_moments

__all__ = ["compare_categorical", "compare_mixing"]

Z_THRESHOLD = 4.0
_KC = "kcollapse derivation (docs/notes/gaussian.md §9)"


def _row(n, quantity, kind, theory, sim, sem, chains, formula, approximation=None, scale=1.0, **extra):
    gap = sim - theory
    z = gap / sem if sem > 0 else (0.0 if abs(gap) <= 1e-12 * max(1.0, abs(theory)) else math.copysign(math.inf, gap))
    # no relative gap to a value that is 0 up to rounding (e.g. E(mu_g - mu) = a^(g-1) delta at large g)
    rel = gap / abs(theory) if abs(theory) > 1e-9 * scale else (0.0 if gap == 0 else math.nan)
    holds = None
    if kind == "upper_bound":
        holds = bool(gap <= Z_THRESHOLD * sem + 1e-12)
    elif kind == "lower_bound":
        holds = bool(gap >= -Z_THRESHOLD * sem - 1e-12)
    return {"n": int(n), **extra, "quantity": quantity, "kind": kind, "theory": float(theory),
            "simulation": float(sim), "sem": float(sem), "z": float(z), "relative_gap": float(rel), "holds": holds,
            "approximation": None if approximation is None else float(approximation), "chains": int(chains),
            "formula": formula}


def _summary(rows) -> dict[str, Any]:
    exact = [r for r in rows if r["kind"] == "exact"]
    bounds = [r for r in rows if r["kind"] != "exact"]
    return {"max_abs_z": max((abs(r["z"]) for r in exact), default=0.0),
            # E(mu_g - mu) -> 0 (signed): its relative gap says nothing and is left out of the summary
            "max_abs_relative_gap": max((abs(r["relative_gap"]) for r in exact
                                         if math.isfinite(r["relative_gap"]) and r["quantity"] != "mean_bias"),
                                        default=0.0),
            "points": len(exact), "bound_points": len(bounds),
            "bounds_violated": sum(1 for r in bounds if not r["holds"])}


def compare_mixing(config: MixConfig, sim: MixSimulation) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Exact Bertrand-mixing moments vs simulation at every reported generation.

    Rows: ``mean_bias`` ``E(mu_g - mu) = a^{g-1} delta`` (``a = lambda/(1 + lambda)``: the contraction),
    ``mean_sq_error``, ``variance``, ``marginal_variance`` (all ``kind="exact"``; ``approximation`` = the
    stationary value). With ``init="given"`` generation 1 (the given model) has no row. The relative
    gap is NaN where the theory is 0 up to rounding.
    """
    th = mixing_moments(config, sim.generations)
    fp = mixing_fixed_point(config)
    station = {"mean_sq_error": fp["mean_sq_error"], "variance": fp["variance"],
               "marginal_variance": fp["mean_sq_error"] + fp["variance"], "mean_bias": 0.0}
    src = f"Bertrand et al. 2310.00429 setting ({config.real_data} real data); exact recursion: {_KC}"
    rows = []
    scale = {"mean_bias": float(config.sigma), "mean_sq_error": float(config.sigma) ** 2}
    for j, n in enumerate(sim.generations):
        if n == 1 and config.init == "given":
            continue  # the given initial model is not random: nothing to compare
        for q in ("mean_bias", "mean_sq_error", "variance", "marginal_variance"):
            rows.append(_row(n, q, "exact", th[q][j], sim.mean(q)[j], sim.sem(q)[j], sim.n_chains, src, station[q],
                             scale=scale.get(q, float(config.sigma) ** 2)))
    return rows, _summary(rows)


def compare_categorical(sim: CategoricalSimulation, *, horizon: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Exact Wright-Fisher survival and forgetting times vs the multinomial simulation.

    Rows per reported round ``k >= 1`` and initial count ``c``: ``survival`` (exact; SEM = the exact
    binomial ``sqrt(s(1 - s)/chains)``; ``approximation`` = the ``n -> inf`` branching value), bound rows
    ``survival_suresh_lower_bound`` (``1 - exp(-c/k)`` [SECONDARY]: simulated survival not below it by
    more than 4 SEM; ``exact_holds`` says whether the exact survival is above it). Per count, one
    ``truncated_forgetting_time`` row ``E min(T_0, G)`` (``G = horizon``, default the last round;
    ``approximation`` = Feller's ``sum_{k<G} 1 - exp(-2c/k)``).
    """
    g = sim.generations
    c = sim.counts
    exact = survival_probability(c, g, sim.n)
    branch = branching_survival(c, g)
    suresh = np.asarray(suresh_survival_bound(c[None, :], g[:, None]))
    p, _ = sim.survival()
    N = sim.n_chains
    rows = []
    for j, k in enumerate(g):
        if k == 0:
            continue
        for i, ci in enumerate(c):
            sem = math.sqrt(exact[j, i] * (1 - exact[j, i]) / N)
            rows.append(_row(k, "survival", "exact", exact[j, i], p[j, i], sem, N,
                             "P(c_k > 0 | c_0 = c): binomial transition matrix power (exact)", branch[j, i], count=int(ci)))
            r = _row(k, "survival_suresh_lower_bound", "lower_bound", suresh[j, i], p[j, i], sem, N,
                     "Suresh et al. 2412.17646: survival >~ 1 - exp(-c/k) [SECONDARY]", count=int(ci))
            r["exact_holds"] = bool(exact[j, i] >= suresh[j, i] - 1e-12)
            rows.append(r)
    G = int(g.max()) if horizon is None else horizon
    if G >= 1:
        tt = truncated_forgetting_time(c, G, sim.n)
        m, se = sim.truncated_time(G)
        feller = np.asarray([float(np.sum(feller_survival(ci, np.arange(G)))) for ci in c])
        for i, ci in enumerate(c):
            rows.append(_row(G, "truncated_forgetting_time", "exact", tt[i], m[i], se[i], N,
                             "E min(T_0, G) = sum_{k<G} P(c_k > 0) (exact)", feller[i], count=int(ci)))
    return rows, _summary(rows)
