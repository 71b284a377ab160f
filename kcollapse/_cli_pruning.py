"""CLI for ``--model pruning``: Feng et al.'s breakdown point ``p*`` for pruned synthesized labels (THEORY.md §7).

``kcollapse {theory,simulate,compare} --model pruning [--prune-scenario independent|verifier] ...``.
Shared flags keep their meaning: ``--d`` (dimension), ``--seeds``, ``--seed``, ``--json/--out/--csv/--quiet``.
Model flags start with ``--prune-``. Shared flags of the regression chain that mean nothing here
(``--T``, ``--T0``, ``--sigma``, ``--ridge``, ...) are rejected when set.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from . import _checks
from ._conventions import CONVENTIONS

__all__ = ["add_args", "run"]

SCENARIOS = ("independent", "verifier")

#: shared flags that mean nothing for the pruning model: dest -> flag (rejected unless at their default)
_NOT_APPLICABLE = {
    "spectrum": "--spectrum", "spectrum_file": "--spectrum-file", "beta": "--beta", "r": "--r",
    "T": "--T (use --prune-samples)", "T0": "--T0", "sigma": "--sigma", "sigma0": "--sigma0", "ridge": "--ridge",
    "generator_ridge": "--generator-ridge", "generations": "--generations", "mode": "--mode",
    "synthetic_fraction": "--synthetic-fraction", "design": "--design", "per_mode": "--per-mode",
    "finite_size": "--finite-size", "estimator": "--estimator", "devices": "--devices",
    "distributed": "--distributed", "coordinator": "--coordinator", "num_processes": "--num-processes",
    "process_id": "--process-id", "dtype": "--dtype",
}

_PAPER = "Feng, Dohmatob, Yang, Charton, Kempe 2406.07515 Thm 4.2/E.3"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``--prune-*`` flags to ``parser`` in their own argument group."""
    g = parser.add_argument_group(
        "pruning model (--model pruning: breakdown point p* = 1/(1 + psi/phi) of Feng et al., THEORY.md §7)",
        "--d is the dimension; x = y mu + z (independent scenario) or x ~ N(0, I_d) with y = sign(mu^T x) "
        "(verifier scenario); classifier = mean difference of the kept points.")
    g.add_argument("--prune-scenario", choices=SCENARIOS, default="independent",
                   help="independent: labels flipped w.p. p, kept w.p. phi (right) / psi (wrong) independently of x; "
                   "verifier: linear generator and linear verifier, (p, phi, psi) from orthant probabilities (default: independent)")
    g.add_argument("--prune-samples", type=int, nargs="+", default=[100, 1000, 10000], metavar="N",
                   help="synthesized points N before pruning (default: 100 1000 10000)")
    g.add_argument("--prune-flip-rates", type=float, nargs="+", default=None, metavar="P",
                   help="generator flip rates p in [0, 1] (verifier: generator error rates in (0, 1)) "
                   "(default: 0.05, 0.10, ..., 0.95)")
    g.add_argument("--prune-keep-correct", type=float, default=1.0, metavar="PHI",
                   help="independent: probability phi of keeping a correct label (default: 1)")
    g.add_argument("--prune-keep-wrong", type=float, default=0.5, metavar="PSI",
                   help="independent: probability psi of keeping a wrong label (default: 0.5, so p* = 2/3)")
    g.add_argument("--prune-signal", type=float, default=1.0, metavar="M",
                   help="independent: ||mu|| (Bayes accuracy Phi(||mu||); default: 1)")
    g.add_argument("--prune-sampler", choices=("statistics", "samples"), default="statistics",
                   help="independent: statistics = exact sufficient statistics (any N); samples = draw every point")
    g.add_argument("--prune-verifier-error", type=float, default=0.2, metavar="E",
                   help="verifier: error rate of the verifier, angle(mu, w_prune) = pi E (default: 0.2)")
    g.add_argument("--prune-error-angle", type=float, default=90.0, metavar="DEG",
                   help="verifier: angle in degrees between the error components of w_gen and w_prune "
                   "(90 = unrelated mistakes, 0 = same mistakes; default: 90)")
    shared = {a.dest: a.default for a in parser._actions if a.dest in _NOT_APPLICABLE}
    parser.set_defaults(_prune_shared_defaults=shared)


def _usage(msg: str):
    from .cli import UsageError

    return UsageError(msg)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    defaults = getattr(args, "_prune_shared_defaults", {})
    for dest, flag in _NOT_APPLICABLE.items():
        if dest in defaults and getattr(args, dest, None) != defaults[dest]:
            raise _usage(f"{flag} does not apply to --model pruning; drop it")
    d = _checks.check_int("--d", args.d, minimum=1)
    samples = sorted({_checks.check_int("--prune-samples", n, minimum=1) for n in args.prune_samples})
    if max(samples) > 10**7:
        raise _usage(f"--prune-samples must be <= 10^7 (the exact sum costs O(N)), got {max(samples)}")
    rates = args.prune_flip_rates
    if rates is None:
        rates = list(np.round(np.arange(1, 20) * 0.05, 10))
    rates = sorted({_checks.check_fraction("--prune-flip-rates", p) for p in rates})
    cfg = {"scenario": args.prune_scenario, "d": d, "samples": samples, "flip_rates": rates}
    if args.prune_scenario == "independent":
        phi = _checks.check_fraction("--prune-keep-correct", args.prune_keep_correct)
        psi = _checks.check_fraction("--prune-keep-wrong", args.prune_keep_wrong)
        if phi + psi <= 0:
            raise _usage("--prune-keep-correct + --prune-keep-wrong must be > 0 (nothing would ever be kept)")
        m = _checks.check_nonneg_float("--prune-signal", args.prune_signal)
        if args.prune_sampler == "samples" and max(samples) * d > 10**7:
            raise _usage(f"--prune-sampler samples draws N x d = {max(samples) * d} numbers per seed (> 10^7); "
                         "use --prune-sampler statistics")
        cfg.update(keep_correct=phi, keep_wrong=psi, signal=m, sampler=args.prune_sampler)
    else:
        if d < 3:
            raise _usage(f"--d must be >= 3 for --prune-scenario verifier (mu, w_gen, w_prune span 3 dimensions), got {d}")
        if any(p <= 0 or p >= 1 for p in rates):
            raise _usage("--prune-flip-rates must lie strictly inside (0, 1) for --prune-scenario verifier")
        ev = _checks.check_fraction("--prune-verifier-error", args.prune_verifier_error)
        ang = _checks.check_nonneg_float("--prune-error-angle", args.prune_error_angle)
        if ang > 180:
            raise _usage(f"--prune-error-angle must lie in [0, 180] degrees, got {ang}")
        cfg.update(verifier_error=ev, error_angle_degrees=ang)
    return cfg


def _conventions(cfg) -> dict[str, str]:
    if cfg["scenario"] == "independent":
        model = ("x = y mu + z, y = +-1 equiprobable, z ~ N(0, I_d), ||mu|| = signal; synthesized label flipped w.p. p "
                 "independently of x; kept w.p. phi (correct) / psi (wrong) independently of x")
        acc = ("expected accuracy on a fresh test point, Phi(w^T mu/||w||) given w; 1/2 if nothing kept. "
               "accuracy = exact finite-(N, d) formula (kcollapse); accuracy_limit = N -> inf law "
               "(Phi(||mu||) below p*, 1 - Phi(||mu||) above; the paper's 100%/0% is ||mu|| -> inf); "
               "accuracy_de = deterministic equivalent")
    else:
        model = ("x ~ N(0, I_d), y = sign(mu^T x), y' = sign(w_gen^T x) (error p = angle/pi), kept iff "
                 "sign(w_prune^T x) = y'; (p, phi, psi) from Gaussian orthant probabilities")
        acc = ("1 - angle(w, mu)/pi on a fresh test point; accuracy = finite-N delta-method value (error O(N^-2)); "
               "accuracy_limit = N -> inf (w -> w_gen/|w_gen| + w_prune/|w_prune|)")
    return {"model": model, "classifier": "mean difference of the kept points, w = sum_kept y'_i x_i, predicts sign(w^T x)",
            "accuracy": acc, "p_star": "breakdown point 1/(1 + psi/phi)", "sem": CONVENTIONS["sem"],
            "z": "(simulation - theory)/sem; |z| <= 4 is agreement"}


def _theory(cfg):
    from .pruning import pruning_theory, verifier_theory

    if cfg["scenario"] == "independent":
        return pruning_theory(cfg["samples"], cfg["d"], cfg["signal"], cfg["flip_rates"], cfg["keep_correct"],
                              cfg["keep_wrong"])
    return verifier_theory(cfg["samples"], cfg["d"], cfg["flip_rates"], cfg["verifier_error"],
                           math.radians(cfg["error_angle_degrees"]))


def _simulate(args, cfg, rows):
    import jax

    from .pruning import compare_rows

    minimum = 2 if args.command == "compare" else 1
    seeds = _checks.check_int("--seeds", args.seeds, minimum=minimum)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    kw = dict(scenario=cfg["scenario"], dim=cfg["d"], n_seeds=seeds)
    if cfg["scenario"] == "independent":
        kw.update(signal=cfg["signal"], keep_correct=cfg["keep_correct"], keep_wrong=cfg["keep_wrong"],
                  sampler=cfg["sampler"])
    else:
        kw.update(prune_error=cfg["verifier_error"], error_angle=math.radians(cfg["error_angle_degrees"]))
    return compare_rows(jax.random.key(seed), rows, **kw), seeds, seed


def _title(cfg) -> str:
    if cfg["scenario"] == "independent":
        from .pruning import breakdown_point

        ps = float(breakdown_point(cfg["keep_correct"], cfg["keep_wrong"]))
        return (f"pruned synthesized labels, phi={cfg['keep_correct']:g}, psi={cfg['keep_wrong']:g} -> p*={ps:.4g}, "
                f"d={cfg['d']}, ||mu||={cfg['signal']:g} [{_PAPER}]")
    return (f"linear generator + linear verifier (error {cfg['verifier_error']:g}, error angle "
            f"{cfg['error_angle_degrees']:g} deg), d={cfg['d']} [{_PAPER}; orthant rates]")


def run(command: str, args: argparse.Namespace) -> dict:
    """``simulate`` / ``theory`` / ``compare`` for ``--model pruning`` (layout: kcollapse.cli.run_model_command)."""
    cfg = _config(args)
    meta = {**cfg, "paper": _PAPER, "conventions": _conventions(cfg)}
    indep = cfg["scenario"] == "independent"
    if command not in ("theory", "simulate", "compare"):
        raise _usage(f"--model pruning has no command {command!r}")
    if command != "theory":
        _checks.check_int("--seeds", args.seeds, minimum=2 if command == "compare" else 1)
    rows = _theory(cfg)
    if command == "theory":
        cols = [("N", "N", "d"), ("p", "p", ".3f"), ("p_star", "p*", ".4f")]
        cols += ([("p_eff", "p_eff", ".4f"), ("keep_rate", "kept frac", ".4f")] if indep else
                 [("keep_correct", "phi", ".4f"), ("keep_wrong", "psi", ".4f")])
        cols += [("accuracy", "accuracy", ".6f"), ("accuracy_limit", "N->inf", ".4f")]
        cols += [("accuracy_de", "det. equiv.", ".6f")] if indep else [("accuracy_no_verifier", "no verifier", ".4f")]
        return {"config": meta, "results": rows, "columns": cols, "title": _title(cfg),
                "arrays": {k: np.array([r[k] for r in rows]) for k in rows[0]}}
    rows, seeds, seed = _simulate(args, cfg, rows)
    meta.update(seeds=seeds, seed=seed)
    arrays = {k: np.array([r[k] for r in rows]) for k in rows[0] if isinstance(rows[0][k], (int, float))}
    if command == "simulate":
        keep = ["N", "p", "simulation", "sem", "seeds"] + (["kept_simulation"] if indep else
                                                           ["p_simulation", "right_kept_simulation", "wrong_kept_simulation"])
        sim_rows = [{k: r[k] for k in keep} for r in rows]
        cols = [("N", "N", "d"), ("p", "p", ".3f"), ("simulation", "accuracy", ".6f"), ("sem", "± sem", ".2g")]
        cols += [("kept_simulation", "kept", ".5g")] if indep else [("right_kept_simulation", "P(right,kept)", ".4f"),
                                                                    ("wrong_kept_simulation", "P(wrong,kept)", ".4f")]
        return {"config": meta, "results": sim_rows, "columns": cols, "title": _title(cfg) + f"; {seeds} seeds",
                "arrays": arrays}
    from .pruning import summarise

    summary = summarise(rows)
    cols = [("N", "N", "d"), ("p", "p", ".3f"), ("accuracy", "theory", ".6f"), ("simulation", "simulation", ".6f"),
            ("sem", "± sem", ".2g"), ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.2%"),
            ("accuracy_limit", "N->inf", ".4f")]
    if not indep:
        cols += [("right_kept_z", "z P(right,kept)", "+.2f"), ("wrong_kept_z", "z P(wrong,kept)", "+.2f")]
    cross = "; ".join(f"N={c['N']}: theory {c['theory']:.4f}, sim {c['simulation']:.4f}" for c in summary["crossings"])
    line = (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = {summary['max_abs_relative_gap']:.2%} "
            f"over {summary['points']} points ({seeds} seeds); 50% crossing"
            + (f" (p* = {rows[0]['p_star']:.4f})" if indep else "") + f": {cross}")
    return {"config": meta, "results": rows, "columns": cols, "title": _title(cfg) + f"; {seeds} seeds",
            "summary": summary, "summary_line": line, "arrays": arrays}
