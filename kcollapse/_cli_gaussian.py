"""CLI for ``--model gaussian``: recursive Gaussian refitting (shared/THEORY.md §6-§7).

Shared flags keep their meaning: ``--T0`` samples per refit (``M``, Kazdan's ``n``), ``--generations``
(reported; one scan runs to the largest), ``--mode replace|accumulate``, ``--seeds`` (chains), ``--seed``,
``--batch-size`` (chains per compiled call), ``--dtype`` (simulation), ``--json/--out/--csv/--quiet``.
Model flags start with ``--gauss-``. Shared flags of the regression chain that have no meaning here
(``--d``, ``--T``, ``--sigma``, ``--ridge``, ...) are rejected when set.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ._conventions import CONVENTIONS

#: shared flags that mean nothing for the Gaussian model: dest -> flag (rejected unless at their default)
_NOT_APPLICABLE = {
    "spectrum": "--spectrum", "spectrum_file": "--spectrum-file", "d": "--d (use --gauss-dim)", "beta": "--beta",
    "r": "--r", "T": "--T", "sigma": "--sigma (use --gauss-sigma)", "sigma0": "--sigma0 (use --gauss-sigma)",
    "ridge": "--ridge", "generator_ridge": "--generator-ridge", "synthetic_fraction": "--synthetic-fraction",
    "design": "--design", "per_mode": "--per-mode", "finite_size": "--finite-size",
    "memory_budget_mb": "--memory-budget-mb", "estimator": "--estimator (use --gauss-estimator)",
    "devices": "--devices", "distributed": "--distributed", "coordinator": "--coordinator",
    "num_processes": "--num-processes", "process_id": "--process-id",
}

SCENARIOS = ("refit", "barzilai-shamir", "bertrand", "suresh-discrete")
#: refit-chain flags (rejected by the bertrand and suresh-discrete scenarios unless at their defaults)
_REFIT_ONLY = {"gauss_dim": "--gauss-dim", "gauss_estimator": "--gauss-estimator", "gauss_growth": "--gauss-growth",
               "gauss_mean_noise": "--gauss-mean-noise", "gauss_sampler": "--gauss-sampler", "gauss_eps": "--gauss-eps"}
#: scenario-only flags (default None) -> scenarios they apply to
_SCENARIO_FLAGS = {"gauss_synthetic": ("--gauss-synthetic", ("bertrand",)), "gauss_real": ("--gauss-real", ("bertrand",)),
                   "gauss_init_offset": ("--gauss-init-offset", ("bertrand",)),
                   "gauss_init_std": ("--gauss-init-std", ("bertrand",)),
                   "gauss_counts": ("--gauss-counts", ("suresh-discrete",))}

_PAPER = {"replace": "Shumailov et al. 2305.17493v3 §4.2", "accumulate": "Kazdan et al. 2410.16713v4 Thm 1"}


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``--gauss-*`` flags to ``parser`` in their own argument group."""
    g = parser.add_argument_group(
        "gaussian model (--model gaussian: recursive refit of N(mu, sigma^2 I_d), THEORY.md §6-§7)",
        "--T0 is the samples per refit M (Kazdan's n); --mode replace (Shumailov) or accumulate (Kazdan); "
        "--generations are refits (0 = the truth, 1 = the fit on real data); --seeds is the number of chains.")
    g.add_argument("--gauss-sigma", type=float, default=1.0, metavar="SIGMA",
                   help="true standard deviation sigma, Sigma_0 = sigma^2 I_d (default: 1)")
    g.add_argument("--gauss-dim", type=int, default=1, metavar="D",
                   help="dimension d of the Gaussian (default: 1, the papers' setting; needs --T0 >= d + 1)")
    g.add_argument("--gauss-estimator", choices=("paper", "unbiased", "mle"), default="paper",
                   help="covariance divisor: unbiased N-1 or MLE N over the N fitted points; paper = unbiased for "
                   "replace (Shumailov), mle for accumulate (Kazdan) (default: paper)")
    g.add_argument("--gauss-growth", type=float, default=0.0, metavar="P",
                   help="refit g draws round(T0 * g^P) samples (default: 0 = constant; P > 1 keeps E W2^2 bounded)")
    g.add_argument("--gauss-mean-noise", type=float, default=0.0, metavar="ETA",
                   help="extra N(0, eta^2 I) error on every fitted mean (Shumailov §4.3; replace only; default: 0)")
    g.add_argument("--gauss-sampler", choices=("statistics", "samples"), default="statistics",
                   help="statistics: draw the fit's sufficient statistics from their exact law (fast, any schedule); "
                   "samples: draw all T0 points per refit (default: statistics)")
    g.add_argument("--gauss-eps", type=float, default=None, metavar="EPS",
                   help="also report P(sigma_g > EPS) with the Markov and Suresh et al. collapse bounds")
    g.add_argument("--gauss-scenario", choices=SCENARIOS, default="refit",
                   help="refit: Shumailov (replace) / Kazdan (accumulate) refit chain; barzilai-shamir: the accumulate "
                   "chain (forces --mode accumulate; any --gauss-growth) with the schedule-free consistency bounds; "
                   "bertrand: refit on --T0 real + --gauss-synthetic samples of the previous fit (Bertrand et al.); "
                   "suresh-discrete: the categorical ML chain on a corpus of --T0 tokens (Suresh et al.) (default: refit)")
    g.add_argument("--gauss-synthetic", type=int, default=None, metavar="M",
                   help="bertrand: synthetic samples per refit, lambda = M/T0 (required)")
    g.add_argument("--gauss-real", choices=("fixed", "fresh"), default=None,
                   help="bertrand: one real data set reused at every refit (Bertrand et al.'s setting) or fresh real "
                   "samples each refit (default: fixed)")
    g.add_argument("--gauss-init-offset", type=float, default=None, metavar="DELTA",
                   help="bertrand: start from the model N(mu + DELTA, s^2) instead of the real-data fit (initial error)")
    g.add_argument("--gauss-init-std", type=float, default=None, metavar="S",
                   help="bertrand: standard deviation s of that initial model (default: --gauss-sigma)")
    g.add_argument("--gauss-counts", type=int, nargs="+", default=None, metavar="C",
                   help="suresh-discrete: initial counts of the tracked symbols in a corpus of --T0 tokens (the rest "
                   "is one more symbol) (default: 1 2 5 10 20)")
    shared = {a.dest: a.default for a in parser._actions if a.dest in _NOT_APPLICABLE}
    refit_only = {a.dest: a.default for a in parser._actions if a.dest in _REFIT_ONLY}
    parser.set_defaults(_gauss_shared_defaults=shared, _gauss_refit_defaults=refit_only)


def _config(args: argparse.Namespace):
    from . import _checks
    from .cli import UsageError
    from .gaussian import RefitConfig

    _check_scenario_flags(args)
    if args.mode == "mix":
        raise UsageError("--model gaussian supports --mode replace or accumulate, not mix "
                         "(for real + synthetic mixing use --gauss-scenario bertrand)")
    if args.gauss_scenario == "barzilai-shamir":
        args.mode = "accumulate"
    for dest, flag in _NOT_APPLICABLE.items():
        defaults = getattr(args, "_gauss_shared_defaults", {})
        if dest in defaults and getattr(args, dest, None) != defaults[dest]:
            raise UsageError(f"{flag} does not apply to --model gaussian; drop it")
    M = _checks.check_int("--T0", args.T0, minimum=2)
    d = _checks.check_int("--gauss-dim", args.gauss_dim, minimum=1)
    if M < d + 1:
        raise UsageError(f"--T0 must be >= --gauss-dim + 1 = {d + 1} so every fitted covariance is non-singular, got {M}")
    sigma = _checks.check_positive_float("--gauss-sigma", args.gauss_sigma)
    growth = _checks.check_nonneg_float("--gauss-growth", args.gauss_growth)
    eta = _checks.check_nonneg_float("--gauss-mean-noise", args.gauss_mean_noise)
    if eta > 0 and args.mode != "replace":
        raise UsageError("--gauss-mean-noise applies to --mode replace only")
    if args.gauss_eps is not None:
        _checks.check_positive_float("--gauss-eps", args.gauss_eps)
    if args.gauss_sampler == "samples" and growth != 0:
        raise UsageError("--gauss-sampler samples needs a constant batch (--gauss-growth 0); use --gauss-sampler statistics")
    gens = sorted({_checks.check_int("--generations", n, minimum=0) for n in args.generations})
    cfg = RefitConfig(samples_per_generation=M, n_generations=max(gens), dim=d, mode=args.mode,
                      estimator=args.gauss_estimator, growth=growth, sigma=sigma, mean_noise=eta)
    try:
        cfg.validate()
    except ValueError as e:  # e.g. a schedule beyond 2^52 samples
        raise UsageError(f"--gauss-growth/--generations: {e}") from None
    return cfg, np.asarray(gens, dtype=np.int64)


def _check_scenario_flags(args: argparse.Namespace) -> None:
    from .cli import UsageError

    sc = args.gauss_scenario
    for dest, (flag, scenarios) in _SCENARIO_FLAGS.items():
        if getattr(args, dest, None) is not None and sc not in scenarios:
            raise UsageError(f"{flag} does not apply to --gauss-scenario {sc} (only to {', '.join(scenarios)})")
    if sc in ("bertrand", "suresh-discrete"):
        for dest, flag in _REFIT_ONLY.items():
            defaults = getattr(args, "_gauss_refit_defaults", {})
            if dest in defaults and getattr(args, dest, None) != defaults[dest]:
                raise UsageError(f"{flag} does not apply to --gauss-scenario {sc}; drop it")
        for dest, flag in _NOT_APPLICABLE.items():
            defaults = getattr(args, "_gauss_shared_defaults", {})
            if dest in defaults and getattr(args, dest, None) != defaults[dest]:
                raise UsageError(f"{flag} does not apply to --model gaussian; drop it")
        if args.mode != "replace":
            raise UsageError(f"--mode does not apply to --gauss-scenario {sc}; drop it")
        if sc == "suresh-discrete" and args.gauss_sigma != 1.0:
            raise UsageError("--gauss-sigma does not apply to --gauss-scenario suresh-discrete; drop it")


def _conventions(cfg) -> dict[str, str]:
    div = "N - 1" if cfg.estimator == "unbiased" else "N"
    return {
        "model": "generation 0 is the truth N(mu, sigma^2 I_d); refit g draws M_g samples from generation g-1 and "
                 "fits the sample mean and covariance (refit 1 fits the real data)",
        "mode": ("replace: fit on the M_g new samples only (Shumailov et al.)" if cfg.mode == "replace" else
                 "accumulate: fit on all samples drawn so far, N_g = M_1 + ... + M_g (Kazdan et al.)"),
        "estimator": f"{cfg.estimator}: covariance divisor {div} over the N fitted points "
                     f"(paper convention: {'unbiased' if cfg.mode == 'replace' else 'mle'})",
        "mean_sq_error": "||mu_g - mu||^2",
        "variance": "tr Sigma_g (sigma_g^2 for d = 1)",
        "scale": "det(Sigma_g)^(1/(2d)) (sigma_g for d = 1)",
        "log_det_change": "log det Sigma_g - log det Sigma_0 (log(sigma_g^2/sigma^2) for d = 1)",
        "w2_sq": "W2^2(N(mu_g, Sigma_g), N(mu, sigma^2 I_d)) = ||mu_g - mu||^2 + sum_i (sqrt(eig_i Sigma_g) - sigma)^2",
        "sem": CONVENTIONS["sem"],
        "z": "(simulation - theory)/sem; bounds hold unless beyond the bound by more than 4 sem",
        "reliable": "false where sigma_g's log-normal tails make the Monte-Carlo mean/SEM untrustworthy "
                    "(chains < 30 exp(q^2 v_g), v_g = log_spread); such rows are left out of the summary",
    }


def _config_dict(args, cfg, gens, **extra) -> dict[str, Any]:
    out = {**cfg.as_dict(), "generations": gens.tolist(),
           "batch_size_at_generations": [int(cfg.batch_sizes()[g - 1]) if g > 0 else None for g in gens],
           "paper": _PAPER[cfg.mode] + (" (consistency: Barzilai & Shamir 2505.19046)"
                                          if args.gauss_scenario == "barzilai-shamir" else ""),
           "scenario": args.gauss_scenario, "eps": args.gauss_eps, "conventions": _conventions(cfg)}
    out.update(extra)
    return out


def _run_args(args) -> tuple[int, int, int]:
    """``(chains, seed, chains per compiled call)`` from --seeds/--seed/--batch-size."""
    from . import _checks

    minimum = 2 if args.command == "compare" else 1
    n = _checks.check_int("--seeds", args.seeds, minimum=minimum)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    batch = args.batch_size
    if batch is None:
        batch = min(n, 4096, max(256, -(-n // 8)))
    return n, seed, _checks.check_int("--batch-size", batch, minimum=1)


def _simulate(args, cfg, gens):
    import jax

    from .cli import Progress, run_in_chunks
    from .gaussian._simulate import merge_simulations, simulate_refit

    n, seed, batch = _run_args(args)
    dtype = np.float32 if args.dtype == "float32" else np.float64
    key = jax.random.key(seed)
    parts, interrupted = run_in_chunks(n, batch, lambda start, size: simulate_refit(
        key, cfg, gens, size, sampler=args.gauss_sampler, chain_offset=start, batch_size=batch, dtype=dtype),
        Progress(args.command, enabled=not args.quiet))
    if not parts:
        raise KeyboardInterrupt
    return merge_simulations(parts), n, interrupted


def _arrays(sim) -> dict[str, Any]:
    return {"generations": sim.generations, "chain_indices": sim.chain_indices,
            **{f"{q}_per_chain": v for q, v in sim.per_chain.items()}}


def _theory_rows(th) -> list[dict[str, Any]]:
    rows = []
    bs = th.config.batch_sizes()
    names = [k for k in th.values if k != "log_spread"]
    for j, n in enumerate(th.generations):
        row = {"n": int(n), "batch_size": int(bs[n - 1]) if n > 0 else None}
        row.update({k: float(th.values[k][j]) for k in names})
        rows.append(row)
    return rows


def _simulation_rows(sim, eps) -> list[dict[str, Any]]:
    rows = []
    for j, n in enumerate(sim.generations):
        row = {"n": int(n)}
        for q in ("mean_sq_error", "variance", "scale", "log_det_change", "w2_sq"):
            row[q] = float(sim.mean(q)[j])
            row[f"{q}_sem"] = float(sim.sem(q)[j])
        var, var_se = sim.var("log_det_change")
        row["log_det_change_var"], row["log_det_change_var_se"] = float(var[j]), float(var_se[j])
        if eps is not None:
            p, se = sim.fraction_above(eps)
            row["p_scale_above_eps"], row["p_scale_above_eps_sem"] = float(p[j]), float(se[j])
        row["chains"] = sim.n_chains
        rows.append(row)
    return rows


def _title(cfg, args, chains=None) -> str:
    grow = f"*g^{cfg.growth:g}" if cfg.growth else ""
    noise = f", mean noise {float(cfg.mean_noise):g}" if float(cfg.mean_noise) else ""
    tail = f"; {chains} chains ({args.gauss_sampler} sampler)" if chains else ""
    return (f"{cfg.mode} refit of N(mu, {float(cfg.sigma):g}^2 I_{cfg.dim}), M={cfg.samples_per_generation}{grow} "
            f"per refit, {cfg.estimator} variance{noise} [{_PAPER[cfg.mode]}]{tail}")


def run(command: str, args: argparse.Namespace) -> dict:
    """``simulate`` / ``theory`` / ``compare`` for ``--model gaussian`` (layout: kcollapse.cli.run_model_command)."""
    from .gaussian import compare_refit, refit_theory

    _check_scenario_flags(args)
    if args.gauss_scenario == "bertrand":
        return _run_bertrand(command, args)
    if args.gauss_scenario == "suresh-discrete":
        return _run_discrete(command, args)
    cfg, gens = _config(args)
    eps = args.gauss_eps
    if command == "theory":
        th = refit_theory(cfg, gens, eps=eps)
        rows = _theory_rows(th)
        cols = [("n", "n", "d"), ("mean_sq_error", "E|mu-mu0|^2", ".5g"), ("variance", "E tr Sigma", ".5g"),
                ("scale", "E sigma_g", ".5g"), ("log_det_change", "E dlogdet", ".5g"), ("w2_sq", "E W2^2", ".5g")]
        cols = [c for c in cols if c[0] in rows[0]]
        if "w2_sq_second_order" in rows[0]:
            cols.append(("w2_sq_second_order", "W2^2 2nd ord", ".5g"))
        if "variance_limit" in rows[0]:
            cols.append(("variance_limit", "var limit", ".5g"))
        line = None
        if "variance_limit" in th.values:
            line = (f"Kazdan limits (g -> inf): E tr Sigma -> {th.values['variance_limit'][0]:.6g}, "
                    f"E|mu - mu0|^2 -> {th.values['mean_sq_error_limit'][0]:.6g}")
        return {"config": _config_dict(args, cfg, gens, sources=th.sources), "results": rows, "columns": cols,
                "title": _title(cfg, args), "summary_line": line,
                "arrays": {"generations": gens, **{k: v for k, v in th.values.items()}}}
    if command == "simulate":
        _run_args(args)
        sim, requested, interrupted = _simulate(args, cfg, gens)
        rows = _simulation_rows(sim, eps)
        cols = [("n", "n", "d"), ("mean_sq_error", "|mu-mu0|^2", ".5g"), ("mean_sq_error_sem", "± sem", ".2g"),
                ("variance", "tr Sigma", ".5g"), ("variance_sem", "± sem", ".2g"), ("log_det_change", "dlogdet", ".5g"),
                ("log_det_change_sem", "± sem", ".2g"), ("w2_sq", "W2^2", ".5g"), ("w2_sq_sem", "± sem", ".2g")]
        if eps is not None:
            cols.append(("p_scale_above_eps", "P(sig>eps)", ".4g"))
        return {"config": _config_dict(args, cfg, gens, seeds=requested, seed=args.seed, chains_completed=sim.n_chains,
                                       sampler=args.gauss_sampler, interrupted=interrupted),
                "results": rows, "columns": cols, "title": _title(cfg, args, sim.n_chains),
                "arrays": _arrays(sim), "interrupted": interrupted}
    if command == "compare":
        _run_args(args)  # bad --seeds/--batch-size fail before any computation
        th = refit_theory(cfg, gens, eps=eps)  # and so does the theory, before simulating
        sim, requested, interrupted = _simulate(args, cfg, gens)
        rows, summary = compare_refit(th, sim)
        cols = [("n", "n", "d"), ("quantity", "quantity", "s"), ("kind", "kind", "s"), ("theory", "theory", ".6g"),
                ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"), ("z", "z", "+.2f"),
                ("relative_gap", "rel. gap", "+.2%"), ("check", "check", "s")]
        for r in rows:  # one table cell: bound status, and heavy tails that make the Monte-Carlo SEM untrustworthy
            status = "" if r["holds"] is None else ("holds" if r["holds"] else "VIOLATED")
            r["check"] = " ".join(x for x in (status, "" if r["reliable"] else "heavy-tail") if x)
        bound_ok = summary["bound_points"] - summary["bounds_violated"]
        line = (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = "
                f"{summary['max_abs_relative_gap']:.2%} over {summary['points']} exact points"
                + (f" ({summary['unreliable_points']} heavy-tailed points left out)" if summary["unreliable_points"] else "")
                + f"; bounds hold at {bound_ok}/{summary['bound_points']} points")
        return {"config": _config_dict(args, cfg, gens, seeds=requested, seed=args.seed, chains_completed=sim.n_chains,
                                       sampler=args.gauss_sampler, interrupted=interrupted, sources=th.sources,
                                       z_threshold=4.0),
                "results": rows, "columns": cols, "title": _title(cfg, args, sim.n_chains), "summary": summary,
                "summary_line": line, "arrays": _arrays(sim), "interrupted": interrupted}
    from .cli import UsageError

    raise UsageError(f"--model gaussian has no command {command!r}")



# ------------------------------------------------------------------------------------------------
# --gauss-scenario bertrand / suresh-discrete (THEORY.md §7)
# ------------------------------------------------------------------------------------------------

_CMP_COLS = [("n", "n", "d"), ("quantity", "quantity", "s"), ("kind", "kind", "s"), ("theory", "theory", ".6g"),
             ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"), ("z", "z", "+.2f"),
             ("relative_gap", "rel. gap", "+.2%"), ("check", "check", "s")]


def _generations(args, minimum: int) -> np.ndarray:
    from . import _checks

    return np.asarray(sorted({_checks.check_int("--generations", n, minimum=minimum) for n in args.generations}),
                      dtype=np.int64)


def _summary_line(summary) -> str:
    ok = summary["bound_points"] - summary["bounds_violated"]
    return (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = {summary['max_abs_relative_gap']:.2%} "
            f"over {summary['points']} exact points; bounds hold at {ok}/{summary['bound_points']} points")


def _checks_column(rows) -> None:
    for r in rows:
        r["check"] = "" if r["holds"] is None else ("holds" if r["holds"] else "VIOLATED")


def _bertrand_config(args):
    from . import _checks
    from .cli import UsageError
    from .gaussian import MixConfig

    if args.gauss_synthetic is None:
        raise UsageError("--gauss-scenario bertrand needs --gauss-synthetic M (synthetic samples per refit)")
    n = _checks.check_int("--T0", args.T0, minimum=2)
    m = _checks.check_int("--gauss-synthetic", args.gauss_synthetic, minimum=0)
    sigma = _checks.check_positive_float("--gauss-sigma", args.gauss_sigma)
    gens = _generations(args, 0)
    gens = gens[gens >= 1]  # generation 0 is the truth itself
    if not len(gens):
        raise UsageError("--generations: give at least one generation >= 1 (generation 0 is the truth)")
    given = args.gauss_init_offset is not None or args.gauss_init_std is not None
    delta = 0.0 if args.gauss_init_offset is None else _checks._as_float("--gauss-init-offset", args.gauss_init_offset)
    s0 = sigma if args.gauss_init_std is None else _checks.check_positive_float("--gauss-init-std", args.gauss_init_std)
    cfg = MixConfig(real_samples=n, synthetic_samples=m, n_generations=int(gens.max()),
                    real_data=args.gauss_real or "fixed", init="given" if given else "real_fit", sigma=sigma,
                    init_mean_offset=delta, init_std=s0).validate()
    return cfg, gens


def _bertrand_meta(cfg, gens, **extra) -> dict[str, Any]:
    from .gaussian import bertrand_stated_ratio, mixing_contraction, mixing_fixed_point

    fp = mixing_fixed_point(cfg)
    ratio = mixing_contraction(cfg.real_samples, cfg.synthetic_samples)
    return {"scenario": "bertrand", **cfg.as_dict(), "generations": gens.tolist(),
            "paper": "Bertrand et al. 2310.00429 (ICLR 2024), THEORY.md §7",
            "fixed_point": fp, "contraction": ratio,
            "stated_factor_eps0": float(bertrand_stated_ratio(cfg.ratio)),
            "conventions": {
                "model": "generation 0 is the truth N(mu, sigma^2); refit 1 = MLE on the T0 real samples (Bertrand's "
                         "theta_0) or the given initial model; refit g >= 2 = MLE (divisor T0 + M) on T0 real samples "
                         "plus M samples from generation g-1",
                "real_data": "fixed: one real data set reused at every refit (Bertrand et al.); fresh: new real samples",
                "contraction": "population: lambda/(1 + lambda) = ratio of E[mu_g - mu | mu_{g-1}]; the stated sufficient "
                               "condition lambda (1 + L eps/alpha) < 1 is [MEMORY/SECONDARY]",
                "sem": CONVENTIONS["sem"], "z": "(simulation - theory)/sem"}, **extra}


def _run_bertrand(command: str, args) -> dict:
    import jax

    from .gaussian import compare_mixing, mixing_moments, simulate_mixing

    cfg, gens = _bertrand_config(args)
    title = (f"Bertrand et al. retraining of N(mu, {float(cfg.sigma):g}^2): {cfg.real_samples} {cfg.real_data} real + "
             f"{cfg.synthetic_samples} synthetic per refit (lambda = {cfg.ratio:g}), MLE")
    meta = _bertrand_meta(cfg, gens)
    fp, ratio = meta["fixed_point"], meta["contraction"]
    line = (f"contraction lambda/(1+lambda) = {ratio['population']:.4g} (stated factor lambda(1+L eps/alpha) at eps=0: "
            f"{meta['stated_factor_eps0']:.4g}); fixed point E(mu-mu*)^2 = {fp['mean_sq_error']:.6g}, "
            f"E sigma^2 = {fp['variance']:.6g}, spectral radius {fp['spectral_radius']:.4g}")
    if command == "theory":
        th = mixing_moments(cfg, gens)
        rows = [{"n": int(g), **{k: float(v[j]) for k, v in th.items()}} for j, g in enumerate(gens)]
        cols = [("n", "n", "d"), ("mean_bias", "E(mu-mu*)", ".6g"), ("mean_sq_error", "E(mu-mu*)^2", ".6g"),
                ("variance", "E sigma^2", ".6g"), ("marginal_variance", "marginal var", ".6g")]
        return {"config": meta, "results": rows, "columns": cols, "title": title, "summary_line": line,
                "arrays": {"generations": gens, **th}}
    n, seed, _ = _run_args(args)
    sim = simulate_mixing(jax.random.key(seed), cfg, gens, n)
    meta.update(seeds=n, seed=seed, chains_completed=sim.n_chains)
    arrays = {"generations": gens, "mean_shift_per_chain": sim.mean_shift, "variance_per_chain": sim.variance}
    if command == "simulate":
        rows = []
        for j, g in enumerate(gens):
            row = {"n": int(g)}
            for q in ("mean_bias", "mean_sq_error", "variance"):
                row[q], row[f"{q}_sem"] = float(sim.mean(q)[j]), float(sim.sem(q)[j])
            rows.append(row)
        cols = [("n", "n", "d"), ("mean_bias", "mu-mu*", ".5g"), ("mean_bias_sem", "± sem", ".2g"),
                ("mean_sq_error", "(mu-mu*)^2", ".5g"), ("mean_sq_error_sem", "± sem", ".2g"),
                ("variance", "sigma^2", ".5g"), ("variance_sem", "± sem", ".2g")]
        return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {n} chains", "arrays": arrays}
    rows, summary = compare_mixing(cfg, sim)
    _checks_column(rows)
    return {"config": meta, "results": rows, "columns": _CMP_COLS, "title": f"{title}; {n} chains",
            "summary": summary, "summary_line": _summary_line(summary) + "\n" + line, "arrays": arrays}


def _discrete_config(args):
    from . import _checks
    from .cli import UsageError

    n = _checks.check_int("--T0", args.T0, minimum=2)
    if n > 5000:
        raise UsageError(f"--T0 must be <= 5000 for --gauss-scenario suresh-discrete (exact (n+1)^2 chain), got {n}")
    counts = [1, 2, 5, 10, 20] if args.gauss_counts is None else args.gauss_counts
    counts = [_checks.check_int("--gauss-counts", c, minimum=1) for c in counts]
    if sum(counts) > n:
        raise UsageError(f"--gauss-counts sum to {sum(counts)} > --T0 {n}; the corpus has only --T0 tokens")
    gens = _generations(args, 0)
    corpus = counts + ([n - sum(counts)] if sum(counts) < n else [])
    return n, np.asarray(counts, np.int64), np.asarray(corpus, np.int64), gens


def _run_discrete(command: str, args) -> dict:
    import jax

    from .gaussian import (
        branching_survival,
        compare_categorical,
        feller_survival,
        forgetting_time_quantile,
        simulate_categorical,
        suresh_survival_bound,
        survival_probability,
    )

    n, counts, corpus, gens = _discrete_config(args)
    title = (f"Suresh et al. categorical ML chain: corpus of n={n} tokens, tracked counts {counts.tolist()} "
             "(Wright-Fisher: c_k ~ Binomial(n, c_(k-1)/n))")
    median = forgetting_time_quantile(counts, n, 0.5, max_generations=max(20 * n, int(gens.max())))
    meta = {"scenario": "suresh-discrete", "corpus_size": n, "counts": counts.tolist(), "corpus": corpus.tolist(),
            "generations": gens.tolist(), "paper": "Suresh, Thangaraj, Khandavally 2412.17646 [SECONDARY], THEORY.md §7",
            "median_forgetting_time": median.tolist(), "median_forgetting_time_feller": (2 * counts / np.log(2)).tolist(),
            "conventions": {"model": "round 0 is the real corpus; round k resamples n tokens from the frequencies of round k-1",
                            "survival": "P(c_k > 0): the symbol is still in the round-k corpus",
                            "forgetting_time": "T_0 = first round with count 0 (absorbing)",
                            "sem": "binomial sqrt(s(1-s)/chains) with the exact s (survival); sample SEM (times)"}}
    line = ("median forgetting time (exact): " + ", ".join(f"c={c}: {m:g}" for c, m in zip(counts, median))
            + " (Feller 2c/ln 2: linear in c)")
    if command == "theory":
        ex = survival_probability(counts, gens, n)
        br = branching_survival(counts, gens)
        fe = np.asarray(feller_survival(counts[None, :], gens[:, None]))
        su = np.asarray(suresh_survival_bound(counts[None, :], gens[:, None]))
        rows = [{"n": int(g), "count": int(c), "survival": float(ex[j, i]), "branching": float(br[j, i]),
                 "feller": float(fe[j, i]), "suresh_bound": float(su[j, i])}
                for j, g in enumerate(gens) for i, c in enumerate(counts)]
        cols = [("n", "n", "d"), ("count", "count", "d"), ("survival", "survival", ".6g"),
                ("branching", "branching", ".6g"), ("feller", "Feller", ".6g"), ("suresh_bound", "Suresh >=", ".6g")]
        return {"config": meta, "results": rows, "columns": cols, "title": title, "summary_line": line,
                "arrays": {"generations": gens, "counts": counts, "survival": ex}}
    chains, seed, _ = _run_args(args)
    sim = simulate_categorical(jax.random.key(seed), corpus, gens, chains)
    k = len(counts)
    sim = type(sim)(sim.generations, sim.counts[:k], sim.alive[:, :, :k], sim.loss_time[:, :k], sim.n)
    meta.update(seeds=chains, seed=seed, chains_completed=sim.n_chains)
    arrays = {"generations": gens, "counts": counts, "alive_per_chain": sim.alive, "loss_time_per_chain": sim.loss_time}
    if command == "simulate":
        p, se = sim.survival()
        rows = [{"n": int(g), "count": int(c), "survival": float(p[j, i]), "survival_sem": float(se[j, i])}
                for j, g in enumerate(gens) for i, c in enumerate(counts)]
        cols = [("n", "n", "d"), ("count", "count", "d"), ("survival", "survival", ".5g"), ("survival_sem", "± sem", ".2g")]
        return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "arrays": arrays}
    rows, summary = compare_categorical(sim)
    _checks_column(rows)
    cols = _CMP_COLS[:1] + [("count", "count", "d")] + _CMP_COLS[1:]
    return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "summary": summary,
            "summary_line": _summary_line(summary) + "\n" + line, "arrays": arrays}
