"""Theory tables and theory-vs-simulation rows for the pruning model (used by the CLI and the tests)."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from .. import _checks
from ._accuracy import accuracy_table, deterministic_equivalent_accuracy, finite_accuracy
from ._rates import breakdown_point, keep_rate, limit_accuracy, pruned_flip_rate
from ._simulate import simulate_pruning
from ._verifier import simulate_verifier, verifier_directions, verifier_finite_accuracy, verifier_limit_accuracy, verifier_rates

__all__ = ["Z_THRESHOLD", "compare_rows", "pruning_theory", "summarise", "verifier_theory"]

#: |z| above this is a disagreement (the project-wide 4 SEM rule).
Z_THRESHOLD = 4.0
#: truncation of the exact sum is reported when the captured mass falls below this
MASS_TOLERANCE = 1e-10

_FENG = "Feng et al. 2406.07515 Thm 4.2/E.3"


def _grid(name: str, values, check) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    for v in arr:
        check(name, v)
    return arr


def pruning_theory(samples, dim: int, signal: float, flip_rates, keep_correct: float,
                   keep_wrong: float) -> list[dict[str, Any]]:
    """One row per ``(N, p)``: ``p*``, ``p_eff``, ``q``, the ``N -> inf`` law, the exact finite-``N`` accuracy
    and its deterministic equivalent (independent pruning; :func:`finite_accuracy`).

    Raises:
      ValueError: bad arguments. FloatingPointError: the summation band lost more than 1e-10 of the mass.
    """
    d = _checks.check_int("dim", dim, minimum=1)
    m = _checks.check_nonneg_float("signal", signal)
    phi = _checks.check_fraction("keep_correct", keep_correct)
    psi = _checks.check_fraction("keep_wrong", keep_wrong)
    if phi + psi <= 0:
        raise ValueError("keep_correct + keep_wrong must be > 0 (nothing would ever be kept); raise either")
    ns = [_checks.check_int("samples", n, minimum=1) for n in np.atleast_1d(samples)]
    ps = _grid("flip_rates", flip_rates, _checks.check_fraction)
    table = accuracy_table(m, d, m * math.sqrt(max(ns)))
    p_star = float(breakdown_point(phi, psi))
    rows = []
    for n in ns:
        res = jax.jit(jax.vmap(lambda p, n=n: finite_accuracy(n, d, m, p, phi, psi, table=table)))(ps)
        acc, mass = np.asarray(res.accuracy), np.asarray(res.mass)
        if np.any(mass < 1 - MASS_TOLERANCE):
            raise FloatingPointError(f"exact accuracy: summation band captured only {mass.min():.3g} of the "
                                     f"probability at N={n}; please report this configuration")
        de = np.asarray(deterministic_equivalent_accuracy(n, d, m, ps, phi, psi))
        for j, p in enumerate(ps):
            rows.append({"N": n, "p": float(p), "p_star": p_star,
                         "p_eff": float(pruned_flip_rate(p, phi, psi)), "keep_rate": float(keep_rate(p, phi, psi)),
                         "accuracy_limit": float(limit_accuracy(p, phi, psi, m)), "accuracy": float(acc[j]),
                         "accuracy_de": float(de[j]), "mass": float(mass[j])})
    return rows


def verifier_theory(samples, dim: int, gen_errors, prune_error: float, error_angle: float) -> list[dict[str, Any]]:
    """One row per ``(N, generator error)`` for the linear verifier (centred teacher model; :mod:`._verifier`)."""
    d = _checks.check_int("dim", dim, minimum=3)
    ns = [_checks.check_int("samples", n, minimum=1) for n in np.atleast_1d(samples)]
    ps = _grid("flip_rates", gen_errors, _checks.check_fraction)
    rows = []
    for n in ns:
        for p in ps:
            if p <= 0 or p >= 1:
                raise ValueError(f"flip_rates must lie strictly inside (0, 1) for the verifier scenario, got {p}")
            c = verifier_directions(p, prune_error, error_angle)
            gram = c @ c.T
            cos = (gram[0, 1], gram[0, 2], gram[1, 2])
            r = verifier_rates(*cos)
            rows.append({"N": n, "p": float(r.flip_rate), "keep_correct": float(r.keep_correct),
                         "keep_wrong": float(r.keep_wrong), "right_kept": float(r.right_kept),
                         "wrong_kept": float(r.wrong_kept),
                         "p_star": float(breakdown_point(r.keep_correct, r.keep_wrong)),
                         "accuracy_limit": float(verifier_limit_accuracy(*cos)),
                         "accuracy": float(verifier_finite_accuracy(*cos, n, d)),
                         "accuracy_no_verifier": float(1 - r.flip_rate)})
    return rows


def _z(theory: float, sim: float, sem: float) -> tuple[float, float]:
    gap = sim - theory
    z = gap / sem if sem > 0 else (0.0 if abs(gap) < 1e-12 else math.copysign(math.inf, gap))
    rel = gap / abs(theory) if theory != 0 else (0.0 if gap == 0 else math.inf)
    return float(z), float(rel)


def compare_rows(key: jax.Array, theory_rows: list[dict[str, Any]], *, scenario: str, dim: int, signal: float = 1.0,
                 keep_correct: float = 1.0, keep_wrong: float = 1.0, prune_error: float = 0.2,
                 error_angle: float = math.pi / 2, n_seeds: int = 256, sampler: str = "statistics") -> list[dict[str, Any]]:
    """Simulate every theory row and attach ``simulation``, ``sem``, ``z``, ``relative_gap`` (accuracy),
    and for the verifier the simulated ``p``, ``P(right, kept)``, ``P(wrong, kept)`` with their z-scores."""
    out = []
    for n in dict.fromkeys(r["N"] for r in theory_rows):
        rows = [r for r in theory_rows if r["N"] == n]
        if scenario == "independent":
            sim = simulate_pruning(key, n, dim, signal, [r["p"] for r in rows], keep_correct, keep_wrong,
                                   n_seeds=n_seeds, sampler=sampler)
            mean, sem = sim.mean(0), sim.sem(0)
            for j, r in enumerate(rows):
                z, rel = _z(r["accuracy"], mean[j], sem[j])
                out.append({**r, "simulation": float(mean[j]), "sem": float(sem[j]), "z": z, "relative_gap": rel,
                            "kept_simulation": float(sim.mean(1)[j]), "seeds": sim.n_seeds})
        else:
            for r in rows:
                per = simulate_verifier(key, verifier_directions(r["p"], prune_error, error_angle), n, dim,
                                        n_seeds=n_seeds)
                mean, sem = per.mean(0), per.std(0, ddof=1) / math.sqrt(per.shape[0])
                z, rel = _z(r["accuracy"], mean[0], sem[0])
                row = {**r, "simulation": float(mean[0]), "sem": float(sem[0]), "z": z, "relative_gap": rel,
                       "seeds": int(per.shape[0])}
                for k, name in ((1, "p"), (2, "right_kept"), (3, "wrong_kept")):
                    row[f"{name}_simulation"] = float(mean[k])
                    row[f"{name}_z"] = _z(r[name], mean[k], sem[k])[0]
                out.append(row)
    return out


def crossing(flip_rates: np.ndarray, accuracy: np.ndarray) -> float:
    """First ``p`` where ``accuracy`` crosses 1/2 downwards (linear interpolation); NaN if it never does."""
    a = np.asarray(accuracy) - 0.5
    for j in range(len(a) - 1):
        if a[j] == 0:
            return float(flip_rates[j])
        if a[j] > 0 >= a[j + 1]:
            t = a[j] / (a[j] - a[j + 1])
            return float(flip_rates[j] + t * (flip_rates[j + 1] - flip_rates[j]))
    return math.nan


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``max_abs_z`` over every z column, ``max_abs_relative_gap`` (accuracy), ``points``, ``disagreements``
    (|z| > 4), and per ``N`` the 50 % crossing of the theory and of the simulation."""
    zs = [abs(v) for r in rows for k, v in r.items() if k == "z" or k.endswith("_z")]
    summary = {"max_abs_z": max(zs, default=0.0),
               "max_abs_relative_gap": max((abs(r["relative_gap"]) for r in rows), default=0.0),
               "points": len(rows), "disagreements": sum(z > Z_THRESHOLD for z in zs), "crossings": []}
    for n in dict.fromkeys(r["N"] for r in rows):
        sub = sorted((r for r in rows if r["N"] == n), key=lambda r: r["p"])
        ps = np.array([r["p"] for r in sub])
        summary["crossings"].append({"N": n, "p_star": None if "right_kept" in sub[0] else sub[0]["p_star"],
                                     "theory": crossing(ps, np.array([r["accuracy"] for r in sub])),
                                     "simulation": crossing(ps, np.array([r["simulation"] for r in sub]))})
    return summary
