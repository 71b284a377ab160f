"""CLI for ``--model diffusion``: a self-consuming diffusion model (Fu et al. 2402.11778) and its exact linear anchor.

Shared flags: ``--T0`` samples per generation ``n``, ``--generations`` (reported; one scan runs to the
largest), ``--seeds`` (chains), ``--seed``, ``--json/--out/--csv/--quiet``. Model flags start with
``--diff-``. Shared regression-chain flags (``--d``, ``--T``, ``--sigma`` ...) are rejected when set.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ._conventions import CONVENTIONS

_NOT_APPLICABLE = {
    "spectrum": "--spectrum", "spectrum_file": "--spectrum-file", "d": "--d (use --diff-dim)", "beta": "--beta",
    "r": "--r", "T": "--T", "sigma": "--sigma", "sigma0": "--sigma0", "ridge": "--ridge",
    "generator_ridge": "--generator-ridge", "synthetic_fraction": "--synthetic-fraction", "design": "--design",
    "per_mode": "--per-mode", "finite_size": "--finite-size", "mode": "--mode", "estimator": "--estimator",
    "devices": "--devices", "distributed": "--distributed",
}


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``--diff-*`` flags to ``parser`` in their own argument group."""
    g = parser.add_argument_group(
        "diffusion model (--model diffusion: self-consuming diffusion model, Fu et al. 2402.11778, THEORY.md §7)",
        "--T0 is n (points per training set and per generated set); --generations are generations (0 = trained "
        "on real data); --seeds is the number of chains; truth N(0, I_d).")
    g.add_argument("--diff-dim", type=int, default=1, metavar="D", help="dimension d (default: 1)")
    g.add_argument("--diff-score", choices=("linear", "mlp"), default="linear",
                   help="linear: exact least-squares score linear in x (the anchor); mlp: one-hidden-layer network "
                   "trained by denoising score matching with Adam (default: linear)")
    g.add_argument("--diff-sampler", choices=("exact", "euler"), default=None,
                   help="exact (linear only): the reverse process's exact law N(m, S); euler: exponential Euler "
                   "reverse SDE (default: exact for linear, euler for mlp)")
    g.add_argument("--diff-width", type=int, default=64, metavar="W", help="mlp hidden width (default: 64)")
    g.add_argument("--diff-steps", type=int, default=300, metavar="K", help="mlp Adam steps per generation (default: 300)")
    g.add_argument("--diff-sample-steps", type=int, default=100, metavar="K",
                   help="euler sampler steps t_max=8 -> t_min=1e-3 (+1 to 0) (default: 100)")
    g.add_argument("--diff-real-fraction", type=float, default=0.0, metavar="ALPHA",
                   help="fraction alpha of fresh real points in every generation >= 1 (n_r = floor(alpha n + 1/2); default: 0)")
    shared = {a.dest: a.default for a in parser._actions if a.dest in _NOT_APPLICABLE}
    parser.set_defaults(_diff_shared_defaults=shared)


def _config(args: argparse.Namespace):
    from . import _checks
    from .cli import UsageError
    from .diffusion import DiffusionConfig

    defaults = getattr(args, "_diff_shared_defaults", {})
    for dest, flag in _NOT_APPLICABLE.items():
        if dest in defaults and getattr(args, dest, None) != defaults[dest]:
            raise UsageError(f"{flag} does not apply to --model diffusion; drop it")
    n = _checks.check_int("--T0", args.T0, minimum=2)
    d = _checks.check_int("--diff-dim", args.diff_dim, minimum=1)
    w = _checks.check_int("--diff-width", args.diff_width, minimum=1)
    k = _checks.check_int("--diff-steps", args.diff_steps, minimum=1)
    ks = _checks.check_int("--diff-sample-steps", args.diff_sample_steps, minimum=1)
    alpha = _checks.check_fraction("--diff-real-fraction", args.diff_real_fraction)
    gens = np.asarray(sorted({_checks.check_int("--generations", g, minimum=0) for g in args.generations}), np.int64)
    if gens.max() > 1000:
        raise UsageError(f"--generations up to {gens.max()}: keep the largest generation <= 1000")
    sampler = args.diff_sampler or ("exact" if args.diff_score == "linear" else "euler")
    if sampler == "exact" and args.diff_score == "mlp":
        raise UsageError("--diff-sampler exact needs --diff-score linear; use --diff-sampler euler with mlp")
    if alpha > 0 and int(np.floor(alpha * n + 0.5)) == 0:
        raise UsageError(f"--diff-real-fraction {alpha} with --T0 {n} rounds to 0 real points; use 0 or >= {1 / (2 * n):g}")
    return DiffusionConfig(dim=d, samples=n, n_generations=int(gens.max()), score=args.diff_score, sampler=sampler,
                           width=w, train_steps=k, sample_steps=ks, real_fraction=alpha).validate(), gens


def _meta(c, gens, **extra) -> dict[str, Any]:
    return {**c.as_dict(), "n_real": c.n_real, "generations": gens.tolist(),
            "paper": "Fu, Zhang, Wang, Tian, Tao, ICML 2024, arXiv:2402.11778 (setting); exact anchor: kcollapse "
                     "(docs/notes/diffusion.md)",
            "notes": ("theory = exact Gaussian MLE-chain moments of the linear-score anchor (exact for --diff-score "
                      "linear with the exact sampler; with euler it includes the sampler's exact bias). For mlp the "
                      "theory is the anchor the network is compared with: z measures the network's moment error, not a "
                      "failure of the theory."),
            "conventions": {
                "model": "truth N(0, I_d); generation 0 trains on n real points; generation i >= 1 on n_r fresh real + "
                         "n - n_r points sampled from generation i-1; forward VP/OU x_t = e^-t x_0 + sqrt(1-e^-2t) eps",
                "mean_sq_error": "||mean(Y_g)||^2 of the n samples Y_g generated by generation g",
                "trace_cov": "tr cov(Y_g) (divisor n)", "w2_sq": "W2^2(N(mean(Y_g), cov(Y_g)), p0), closed form",
                "tv": "d = 1: TV between the Gaussian fit of Y_g and p0, closed form (not the TV of the model)",
                "sem": CONVENTIONS["sem"], "z": "(simulation - theory)/sem"},
            **extra}


def run(command: str, args: argparse.Namespace) -> dict:
    """``simulate`` / ``theory`` / ``compare`` for ``--model diffusion`` (layout: kcollapse.cli.run_model_command)."""
    import jax

    from . import _checks
    from .cli import UsageError
    from .diffusion import compare_diffusion, diffusion_theory, simulate_diffusion

    c, gens = _config(args)
    title = (f"self-consuming diffusion ({c.score} score, {c.sampler} sampler, alpha={float(c.real_fraction):g}): "
             f"n={c.samples}, d={c.dim}" + (f", width {c.width}, {c.train_steps} Adam steps" if c.score == "mlp" else ""))
    th = diffusion_theory(c, sampler_bias=True)
    if command == "theory":
        rows = [{"n": int(g), "mean_sq_error": float(th["mean_sq_error"][g]), "trace_cov": float(th["trace_cov"][g]),
                 "model_mean_sq_error": float(th["model_mean_sq_error"][g]),
                 "model_trace_cov": float(th["model_trace_cov"][g])} for g in gens]
        cols = [("n", "n", "d"), ("mean_sq_error", "E||mean Y||^2", ".6g"), ("trace_cov", "E tr cov Y", ".6g"),
                ("model_mean_sq_error", "E||m_g||^2", ".6g"), ("model_trace_cov", "E tr S_g", ".6g")]
        return {"config": _meta(c, gens), "results": rows, "columns": cols, "title": title,
                "arrays": {"generations": gens, **{k: v[gens] for k, v in th.items()}}}
    if command not in ("simulate", "compare"):
        raise UsageError(f"--model diffusion has no command {command!r}")
    chains = _checks.check_int("--seeds", args.seeds, minimum=2)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    sim = simulate_diffusion(jax.random.key(seed), c, chains)
    arrays = {"generations": gens, **{f"{q}_per_chain": v[:, gens] for q, v in sim.per_chain.items()}}
    meta = _meta(c, gens, seeds=chains, seed=seed, chains_completed=chains)
    qs = [q for q in ("mean_sq_error", "trace_cov", "w2_sq", "tv") if q in sim.per_chain]
    if command == "simulate":
        rows = []
        for g in gens:
            row = {"n": int(g)}
            for q in qs:
                row[q], row[f"{q}_sem"] = float(sim.mean(q)[g]), float(sim.sem(q)[g])
            rows.append(row)
        cols = [("n", "n", "d")] + [c_ for q in qs for c_ in ((q, q, ".5g"), (f"{q}_sem", "± sem", ".2g"))]
        return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "arrays": arrays}
    rows, summary = compare_diffusion(th, sim, gens)
    for r in rows:
        for q in ("w2_sq", "tv"):
            if q in sim.per_chain:
                r[q], r[f"{q}_sem"] = float(sim.mean(q)[r["n"]]), float(sim.sem(q)[r["n"]])
    line = (f"summary: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = {summary['max_abs_relative_gap']:.2%} "
            f"over {summary['points']} points" + (" (mlp: z is the network's moment error vs the exact anchor)"
                                                  if c.score == "mlp" else " (exact anchor)"))
    cols = [("n", "n", "d"), ("quantity", "quantity", "s"), ("theory", "theory", ".6g"),
            ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"), ("z", "z", "+.2f"),
            ("relative_gap", "rel. gap", "+.2%"), ("w2_sq", "W2^2", ".4g")]
    return {"config": meta, "results": rows, "columns": cols, "title": f"{title}; {chains} chains", "summary": summary,
            "summary_line": line, "arrays": arrays}
