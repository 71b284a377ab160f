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

SCENARIOS = ("replace", "accumulate", "subsample", "all", "fu")

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
                   "without replacement from all so far (fixed budget); all: the three side by side; fu: Fu et al. "
                   "2402.11778 real/synthetic mixing in d dimensions, exact L2 error and Monte-Carlo TV (default: all)")
    g.add_argument("--kde-bandwidth", type=float, default=0.5, metavar="H", help="kernel bandwidth h (default: 0.5)")
    g.add_argument("--kde-sigma", type=float, default=1.0, metavar="SIGMA", help="true standard deviation (default: 1)")
    g.add_argument("--kde-test-points", type=int, default=256, metavar="K",
                   help="test points per chain and generation for the Monte-Carlo NLL (default: 256)")
    g.add_argument("--kde-real-fraction", type=float, default=None, metavar="ALPHA",
                   help="fu: probability that a generation >= 1 training point is fresh real data (default: 0, "
                   "fully synthetic)")
    g.add_argument("--kde-dim", type=int, default=None, metavar="D", help="fu: dimension d of the truth N(0, sigma^2 I_d) "
                   "(default: 1)")
    g.add_argument("--kde-mixing", choices=("previous", "all"), default=None,
                   help="fu: synthetic points come from the previous generation (default) or uniformly from all earlier ones")
    g.add_argument("--kde-bandwidth-exponent", type=float, default=None, metavar="E",
                   help="fu: bandwidth h = (--kde-bandwidth) * n^-E (default: 0, constant; 1/(4+d) is the s = 2 rate)")
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
    fu_flags = {"kde_real_fraction": "--kde-real-fraction", "kde_dim": "--kde-dim", "kde_mixing": "--kde-mixing",
                "kde_bandwidth_exponent": "--kde-bandwidth-exponent"}
    if args.kde_scenario != "fu":
        for dest, flag in fu_flags.items():
            if getattr(args, dest, None) is not None:
                raise UsageError(f"{flag} applies only to --kde-scenario fu; drop it or add --kde-scenario fu")
    n = _checks.check_int("--T0", args.T0, minimum=2)
    h = _checks.check_positive_float("--kde-bandwidth", args.kde_bandwidth)
    sigma = _checks.check_positive_float("--kde-sigma", args.kde_sigma)
    _checks.check_int("--kde-test-points", args.kde_test_points, minimum=1)
    gens = np.asarray(sorted({_checks.check_int("--generations", g, minimum=0) for g in args.generations}), np.int64)
    if args.kde_scenario == "fu":
        from .kde import FuKDEConfig

        if gens.max() > 200:
            raise UsageError(f"--generations up to {gens.max()}: the fu scenario allows at most 200 generations")
        if n > 4096:
            raise UsageError(f"--T0 {n}: the fu simulator keeps an n x n pair matrix per chain; keep --T0 <= 4096")
        if args.kde_test_points % 2:
            raise UsageError(f"--kde-test-points must be even for --kde-scenario fu, got {args.kde_test_points}")
        alpha = _checks.check_fraction("--kde-real-fraction", 0.0 if args.kde_real_fraction is None else args.kde_real_fraction)
        dim = _checks.check_int("--kde-dim", 1 if args.kde_dim is None else args.kde_dim, minimum=1)
        e = _checks.check_nonneg_float("--kde-bandwidth-exponent",
                                       0.0 if args.kde_bandwidth_exponent is None else args.kde_bandwidth_exponent)
        cfg = FuKDEConfig(samples=n, n_generations=int(gens.max()), dim=dim, mixing=args.kde_mixing or "previous",
                          real_fraction=alpha, bandwidth=h, bandwidth_exponent=e, sigma=sigma).validate()
        return [cfg], gens
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
    if args.kde_scenario == "fu":
        return _run_fu(command, args, cfgs[0], gens)
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


def _fu_meta(args, c, gens, **extra) -> dict[str, Any]:
    return {"scenario": "fu", "samples_per_generation": int(c.samples), "dim": c.dim, "mixing": c.mixing,
            "real_fraction": float(c.real_fraction), "bandwidth": float(c.bandwidth),
            "bandwidth_exponent": float(c.bandwidth_exponent), "sigma": float(c.sigma), "generations": gens.tolist(),
            "test_points": args.kde_test_points,
            "paper": "Fu et al. 2402.11778 (ICML 2024) setting; exact L2 error: kcollapse (docs/notes/kde.md §5)",
            "conventions": {
                "model": "truth N(0, sigma^2 I_d); generation 0 = Gaussian KDE on n real points; a generation i >= 1 "
                         "point is fresh real w.p. alpha, else a draw from the KDE of the previous generation "
                         "(mixing=previous) or of a uniformly chosen earlier one (mixing=all)",
                "bandwidth": "h = c n^-e (c = --kde-bandwidth, e = --kde-bandwidth-exponent)",
                "mise": "E int (p_hat - p0)^2 dx (exact, lineage dynamic programme); ise: the same integral of one chain",
                "tv": "(1/2) int |p_hat - p0|, unbiased Monte Carlo under q = (p_hat + p0)/2 with --kde-test-points points",
                "sem": CONVENTIONS["sem"], "z": "(simulation - theory)/sem"},
            **extra}


def _run_fu(command: str, args: argparse.Namespace, c, gens) -> dict:
    import jax

    from . import _checks
    from .kde import fu_kde_theory, simulate_fu_kde

    title = (f"self-consuming KDE, Fu et al. mixing ({c.mixing}, alpha={float(c.real_fraction):g}): n={c.samples}, "
             f"d={c.dim}, h={float(c.bandwidth):g}*n^-{float(c.bandwidth_exponent):g}, truth N(0, {float(c.sigma):g}^2 I)")
    th = fu_kde_theory(c)
    if command == "theory":
        rows = [{"n": int(g), "mise": float(th["mise"][g]), "sqrt_mise": float(th["sqrt_mise"][g]),
                 "coalescence_probability": float(th["coalescence_probability"][g]),
                 "mean_lineage_variance": float(th["mean_lineage_variance"][g])} for g in gens]
        cols = [("n", "n", "d"), ("mise", "E||p-p0||^2", ".6g"), ("sqrt_mise", "sqrt", ".5g"),
                ("coalescence_probability", "P(coalesce)", ".4g"), ("mean_lineage_variance", "E W", ".4g")]
        return {"config": _fu_meta(args, c, gens), "results": rows, "columns": cols, "title": title,
                "arrays": {"generations": gens, **{k: v[gens] for k, v in th.items()}}}
    if command not in ("simulate", "compare"):
        from .cli import UsageError

        raise UsageError(f"--model kde has no command {command!r}")
    chains = _checks.check_int("--seeds", args.seeds, minimum=2)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    sim = simulate_fu_kde(jax.random.key(seed), c, chains, n_test=args.kde_test_points)
    arrays = {"generations": gens, **{f"fu_{q}_per_chain": v[:, gens] for q, v in sim.per_chain.items()}}
    meta = _fu_meta(args, c, gens, seeds=chains, seed=seed, chains_completed=chains)
    ise, ise_se, tv, tv_se = sim.mean("ise"), sim.sem("ise"), sim.mean("tv"), sim.sem("tv")
    if command == "simulate":
        rows = [{"n": int(g), "ise": float(ise[g]), "ise_sem": float(ise_se[g]), "tv": float(tv[g]),
                 "tv_sem": float(tv_se[g])} for g in gens]
        cols = [("n", "n", "d"), ("ise", "||p-p0||^2", ".5g"), ("ise_sem", "± sem", ".2g"), ("tv", "TV", ".5g"),
                ("tv_sem", "± sem", ".2g")]
        return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "arrays": arrays}
    rows = []
    for g in gens:
        gap = float(ise[g] - th["mise"][g])
        se = float(ise_se[g])
        rows.append({"n": int(g), "quantity": "mise", "kind": "exact", "theory": float(th["mise"][g]),
                     "simulation": float(ise[g]), "sem": se, "z": gap / se if se > 0 else 0.0,
                     "relative_gap": gap / float(th["mise"][g]), "tv": float(tv[g]), "tv_sem": float(tv_se[g]),
                     "chains": chains})
    summary = {"max_abs_z": max(abs(r["z"]) for r in rows),
               "max_abs_relative_gap": max(abs(r["relative_gap"]) for r in rows), "points": len(rows),
               "tv_first": float(tv[gens[0]]), "tv_first_sem": float(tv_se[gens[0]]),
               "tv_last": float(tv[gens[-1]]), "tv_last_sem": float(tv_se[gens[-1]])}
    line = (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = {summary['max_abs_relative_gap']:.2%} "
            f"over {len(rows)} exact points; TV {summary['tv_first']:.4f} ± {summary['tv_first_sem']:.2g} "
            f"(n={gens[0]}) -> {summary['tv_last']:.4f} ± {summary['tv_last_sem']:.2g} (n={gens[-1]})")
    cols = [("n", "n", "d"), ("theory", "E||p-p0||^2", ".6g"), ("simulation", "simulation", ".6g"),
            ("sem", "± sem", ".2g"), ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.2%"), ("tv", "TV", ".5g"),
            ("tv_sem", "± sem", ".2g")]
    return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "summary": summary,
            "summary_line": line, "arrays": arrays}
