"""Theory vs simulation for the recursive KDE chain, point by point."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._simulate import KDESimulation

__all__ = ["compare_kde", "Z_THRESHOLD"]

#: bound rows count as violated when the simulation is beyond the bound by more than this many SEMs
Z_THRESHOLD = 4.0

_SRC = "kcollapse derivation (docs/notes/kde.md); setting: Kazdan et al. 2410.16713v4 Thms 5-7"
FORMULAS = {
    "mean_sq_error": f"E(m_t - mu)^2, KDE mean = training mean ({_SRC})",
    "kde_variance": f"E Var p_t = E S_t + h^2 ({_SRC})",
    "second_moment": f"sigma^2 + h^2 (1 + E D_t), genealogy depth D ({_SRC})",
    "nll_lower_bound": f"Jensen: E NLL >= -E_x log E p_t(x), E p_t = depth mixture of Gaussians ({_SRC})",
    "nll_upper_bound": f"Jensen per kernel: E NLL <= log(h sqrt(2 pi)) + (2 sigma^2 + h^2 E D_t)/(2 h^2) ({_SRC})",
}


def _row(n, quantity, kind, theory, sim, sem, chains):
    gap = sim - theory
    z = gap / sem if sem > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))
    rel = gap / abs(theory) if theory != 0 else (0.0 if gap == 0 else math.inf)
    holds = None
    if kind == "upper_bound":
        holds = bool(gap <= Z_THRESHOLD * sem)
    elif kind == "lower_bound":
        holds = bool(gap >= -Z_THRESHOLD * sem)
    return {"n": int(n), "quantity": quantity, "kind": kind, "theory": float(theory), "simulation": float(sim),
            "sem": float(sem), "z": float(z), "relative_gap": float(rel), "holds": holds, "chains": int(chains),
            "formula": FORMULAS[quantity]}


def compare_kde(theory: dict[str, np.ndarray], sim: KDESimulation) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows for every generation: exact moments (``kind="exact"``) and the NLL bounds (simulated test NLL
    vs ``nll_lower_bound``/``nll_upper_bound``). Generation 0 is included (the real-data KDE).

    Returns:
      ``(rows, summary)``; ``summary`` has ``max_abs_z``, ``max_abs_relative_gap``, ``points`` (exact
      rows), ``bound_points``, ``bounds_violated``, and the simulated NLL at the first and last reported
      generations with SEMs (``nll_first``, ``nll_last``, ``nll_first_sem``, ``nll_last_sem``).
    """
    rows = []
    chains = sim.n_chains
    for j, n in enumerate(sim.generations):
        for q in ("mean_sq_error", "kde_variance", "second_moment"):
            rows.append(_row(n, q, "exact", theory[q][j], sim.mean(q)[j], sim.sem(q)[j], chains))
        if "nll_lower_bound" in theory:
            for q, kind in (("nll_lower_bound", "lower_bound"), ("nll_upper_bound", "upper_bound")):
                rows.append(_row(n, q, kind, theory[q][j], sim.mean("nll")[j], sim.sem("nll")[j], chains))
    exact = [r for r in rows if r["kind"] == "exact"]
    bounds = [r for r in rows if r["kind"] != "exact"]
    nll, se = sim.mean("nll"), sim.sem("nll")
    summary = {
        "max_abs_z": max((abs(r["z"]) for r in exact), default=0.0),
        "max_abs_relative_gap": max((abs(r["relative_gap"]) for r in exact), default=0.0),
        "points": len(exact),
        "bound_points": len(bounds),
        "bounds_violated": sum(1 for r in bounds if not r["holds"]),
        "nll_first": float(nll[0]), "nll_first_sem": float(se[0]),
        "nll_last": float(nll[-1]), "nll_last_sem": float(se[-1]),
    }
    return rows, summary
