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
    shared = {a.dest: a.default for a in parser._actions if a.dest in _NOT_APPLICABLE}
    parser.set_defaults(_gauss_shared_defaults=shared)


def _config(args: argparse.Namespace):
    from . import _checks
    from .cli import UsageError
    from .gaussian import RefitConfig

    if args.mode == "mix":
        raise UsageError("--model gaussian supports --mode replace or accumulate, not mix "
                         "(mixing real and synthetic samples is not a Gaussian-refit result in THEORY.md §6-§7)")
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
           "paper": _PAPER[cfg.mode], "eps": args.gauss_eps, "conventions": _conventions(cfg)}
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

    from .cli import Progress
    from .gaussian._simulate import merge_simulations, simulate_refit

    n, seed, batch = _run_args(args)
    dtype = np.float32 if args.dtype == "float32" else np.float64
    key = jax.random.key(seed)
    progress = Progress(args.command, enabled=not args.quiet)
    parts, interrupted = [], False
    try:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            parts.append(simulate_refit(key, cfg, gens, size, sampler=args.gauss_sampler, chain_offset=start,
                                        batch_size=batch, dtype=dtype))
            progress(start + size, n)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
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

