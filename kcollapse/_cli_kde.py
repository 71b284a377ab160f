"""CLI for ``--model kde``: Gaussian-kernel KDEs refit on their own samples (THEORY.md §7, Kazdan et al. Thms 5-7).

Shared flags keep their meaning: ``--T0`` samples per generation ``n``, ``--generations`` (reported; one
scan runs to the largest), ``--seeds`` (chains), ``--seed``, ``--json/--out/--csv/--quiet``. Model flags
start with ``--kde-``; ``--kde-scenario`` picks replace / accumulate / subsample or all three.
Shared flags of the regression chain (``--d``, ``--T``, ``--sigma``, ``--ridge``, ``--mode`` ...) are
rejected when set.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ._conventions import CONVENTIONS

SCENARIOS = ("replace", "accumulate", "subsample", "all")

_NOT_APPLICABLE = {
    "spectrum": "--spectrum", "spectrum_file": "--spectrum-file", "d": "--d", "beta": "--beta", "r": "--r",
    "T": "--T", "sigma": "--sigma (use --kde-sigma)", "sigma0": "--sigma0", "ridge": "--ridge",
    "generator_ridge": "--generator-ridge", "synthetic_fraction": "--synthetic-fraction", "design": "--design",
    "per_mode": "--per-mode", "finite_size": "--finite-size", "mode": "--mode (use --kde-scenario)",
    "estimator": "--estimator", "devices": "--devices", "distributed": "--distributed",
}


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``--kde-*`` flags to ``parser`` in their own argument group."""
    g = parser.add_argument_group(
        "kde model (--model kde: Gaussian-kernel KDE refit on its own samples, THEORY.md §7 Kazdan et al. Thms 5-7)",
        "--T0 is the samples per generation n; --generations are refits (0 = the KDE on the real data); "
        "--seeds is the number of chains; truth N(0, sigma^2).")
    g.add_argument("--kde-scenario", choices=SCENARIOS, default="all",
                   help="replace: fit the newest n samples; accumulate: all samples so far; subsample: n drawn "
                   "without replacement from all so far (fixed budget); all: the three side by side (default: all)")
    g.add_argument("--kde-bandwidth", type=float, default=0.5, metavar="H", help="kernel bandwidth h (default: 0.5)")
    g.add_argument("--kde-sigma", type=float, default=1.0, metavar="SIGMA", help="true standard deviation (default: 1)")
    g.add_argument("--kde-test-points", type=int, default=256, metavar="K",
                   help="test points per chain and generation for the Monte-Carlo NLL (default: 256)")
    shared = {a.dest: a.default for a in parser._actions if a.dest in _NOT_APPLICABLE}
    parser.set_defaults(_kde_shared_defaults=shared)


def _configs(args: argparse.Namespace):
    from . import _checks
    from .cli import UsageError
    from .kde import KDEConfig

    defaults = getattr(args, "_kde_shared_defaults", {})
    for dest, flag in _NOT_APPLICABLE.items():
        if dest in defaults and getattr(args, dest, None) != defaults[dest]:
            raise UsageError(f"{flag} does not apply to --model kde; drop it")
    n = _checks.check_int("--T0", args.T0, minimum=2)
    h = _checks.check_positive_float("--kde-bandwidth", args.kde_bandwidth)
    sigma = _checks.check_positive_float("--kde-sigma", args.kde_sigma)
    _checks.check_int("--kde-test-points", args.kde_test_points, minimum=1)
    gens = np.asarray(sorted({_checks.check_int("--generations", g, minimum=0) for g in args.generations}), np.int64)
    if gens.max() * n > 2_000_000:
        raise UsageError(f"--generations up to {gens.max()} with --T0 {n} needs a pool of {(gens.max() + 1) * n} "
                         "points per chain; keep (max generation + 1) * T0 <= 2e6")
    modes = ("replace", "accumulate", "subsample") if args.kde_scenario == "all" else (args.kde_scenario,)
    cfgs = [KDEConfig(samples_per_generation=n, n_generations=int(gens.max()), mode=m, bandwidth=h,
                      sigma=sigma).validate() for m in modes]
    return cfgs, gens


def _meta(args, cfgs, gens, **extra) -> dict[str, Any]:
    c = cfgs[0]
    return {"scenario": args.kde_scenario, "modes": [x.mode for x in cfgs], "samples_per_generation": c.samples_per_generation,
            "bandwidth": float(c.bandwidth), "sigma": float(c.sigma), "generations": gens.tolist(),
            "test_points": args.kde_test_points,
            "paper": "Kazdan et al. 2410.16713v4 Thms 5-7 (setting); exact moments and NLL bounds: kcollapse (docs/notes/kde.md)",
            "conventions": {
                "model": "generation 0 = Gaussian KDE (bandwidth h) on n real samples of N(0, sigma^2); generation t+1 "
                         "draws n samples from the generation-t KDE and refits on its training set",
                "mode": "replace: newest n; accumulate: all (t+1) n so far; subsample: n of them without replacement",
                "mean_sq_error": "(KDE mean - mu)^2 (the KDE mean is its training mean)",
                "kde_variance": "variance of the KDE distribution = training spread (divisor = size) + h^2",
                "nll": "-mean_j log p_t(x_j) over --kde-test-points fresh x_j ~ N(0, sigma^2) (natural log)",
                "sem": CONVENTIONS["sem"], "z": "(simulation - theory)/sem; bounds hold unless beyond by > 4 sem"},
            **extra}


def run(command: str, args: argparse.Namespace) -> dict:
    """``simulate`` / ``theory`` / ``compare`` for ``--model kde`` (layout: kcollapse.cli.run_model_command)."""
    import jax

    from . import _checks
    from .kde import compare_kde, kde_moments, simulate_kde

    cfgs, gens = _configs(args)
    c0 = cfgs[0]
    title = (f"KDE refit on its own samples ({', '.join(c.mode for c in cfgs)}): n={c0.samples_per_generation}, "
             f"h={float(c0.bandwidth):g}, truth N(0, {float(c0.sigma):g}^2) [Kazdan et al. Thms 5-7]")
    if command == "theory":
        rows, arrays = [], {"generations": gens}
        for c in cfgs:
            th = kde_moments(c, gens)
            arrays.update({f"{c.mode}_{k}": v for k, v in th.items()})
            rows += [{"n": int(g), "mode": c.mode, **{k: float(v[j]) for k, v in th.items()}} for j, g in enumerate(gens)]
        cols = [("n", "n", "d"), ("mode", "mode", "s"), ("mean_sq_error", "E(m-mu)^2", ".5g"),
                ("kde_variance", "E Var p_t", ".5g"), ("mean_depth", "E depth", ".4g"),
                ("nll_lower_bound", "NLL >=", ".5g"), ("nll_upper_bound", "NLL <=", ".5g")]
        return {"config": _meta(args, cfgs, gens), "results": rows, "columns": cols, "title": title, "arrays": arrays}
    if command not in ("simulate", "compare"):
        from .cli import UsageError

        raise UsageError(f"--model kde has no command {command!r}")
    chains = _checks.check_int("--seeds", args.seeds, minimum=2)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    key = jax.random.key(seed)
    rows, arrays, summaries = [], {"generations": gens}, {}
    for c in cfgs:
        sim = simulate_kde(key, c, gens, chains, n_test=args.kde_test_points)
        arrays.update({f"{c.mode}_{q}_per_chain": v for q, v in sim.per_chain.items()})
        if command == "simulate":
            for j, g in enumerate(gens):
                row = {"n": int(g), "mode": c.mode}
                for q in ("mean_sq_error", "kde_variance", "nll"):
                    row[q], row[f"{q}_sem"] = float(sim.mean(q)[j]), float(sim.sem(q)[j])
                rows.append(row)
        else:
            r, s = compare_kde(kde_moments(c, gens), sim)
            for x in r:
                x["mode"] = c.mode
                x["check"] = "" if x["holds"] is None else ("holds" if x["holds"] else "VIOLATED")
            rows += r
            summaries[c.mode] = s
    meta = _meta(args, cfgs, gens, seeds=chains, seed=seed, chains_completed=chains)
    if command == "simulate":
        cols = [("n", "n", "d"), ("mode", "mode", "s"), ("mean_sq_error", "(m-mu)^2", ".5g"),
                ("mean_sq_error_sem", "± sem", ".2g"), ("kde_variance", "Var p_t", ".5g"),
                ("kde_variance_sem", "± sem", ".2g"), ("nll", "test NLL", ".5g"), ("nll_sem", "± sem", ".2g")]
        return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "arrays": arrays}
    summary = {
        "max_abs_z": max(s["max_abs_z"] for s in summaries.values()),
        "max_abs_relative_gap": max(s["max_abs_relative_gap"] for s in summaries.values()),
        "points": sum(s["points"] for s in summaries.values()),
        "bound_points": sum(s["bound_points"] for s in summaries.values()),
        "bounds_violated": sum(s["bounds_violated"] for s in summaries.values()),
        "per_mode": summaries,
    }
    ok = summary["bound_points"] - summary["bounds_violated"]
    line = (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = {summary['max_abs_relative_gap']:.2%} "
            f"over {summary['points']} exact points; NLL bounds hold at {ok}/{summary['bound_points']} points\n"
            + "; ".join(f"{m}: test NLL {s['nll_first']:.4f} ± {s['nll_first_sem']:.2g} (n={gens[0]}) -> "
                        f"{s['nll_last']:.4f} ± {s['nll_last_sem']:.2g} (n={gens[-1]})" for m, s in summaries.items()))
    cols = [("n", "n", "d"), ("mode", "mode", "s"), ("quantity", "quantity", "s"), ("kind", "kind", "s"),
            ("theory", "theory", ".6g"), ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"),
            ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.2%"), ("check", "check", "s")]
    return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "summary": summary,
            "summary_line": line, "arrays": arrays}
