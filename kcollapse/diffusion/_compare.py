"""Theory (exact anchor moments) next to a simulation: z-scores and relative gaps."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._simulate import DiffusionSimulation

__all__ = ["compare_diffusion"]

QUANTITIES = ("mean_sq_error", "trace_cov")


def compare_diffusion(theory: dict[str, np.ndarray], sim: DiffusionSimulation, generations=None,
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows ``(generation, quantity, theory, simulation, sem, z, relative_gap)`` for the exact quantities.

    ``z = (simulation - theory)/sem``. For the ``mlp`` score the theory is the anchor: ``z`` then measures
    the network's moment error (Fu et al.'s approximation term), not a failure of the theory.
    Returns ``(rows, summary)`` with ``max_abs_z``, ``max_abs_relative_gap``, ``points``.
    """
    G1 = sim.per_chain["mean_sq_error"].shape[1]
    gens = np.arange(G1) if generations is None else np.asarray(generations, int)
    rows = []
    for g in gens:
        for q in QUANTITIES:
            th, mu, se = float(theory[q][g]), float(sim.mean(q)[g]), float(sim.sem(q)[g])
            rows.append({"n": int(g), "quantity": q, "theory": th, "simulation": mu, "sem": se,
                         "z": (mu - th) / se if se > 0 else 0.0, "relative_gap": (mu - th) / th})
    summary = {"max_abs_z": max(abs(r["z"]) for r in rows),
               "max_abs_relative_gap": max(abs(r["relative_gap"]) for r in rows), "points": len(rows),
               "chains": sim.n_chains}
    return rows, summary
