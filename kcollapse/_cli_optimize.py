"""Sub-commands ``optimal-ridge``, ``crossover`` and ``fit-scaling`` (kcollapse.optimize, kcollapse.scaling).

Registered by :func:`kcollapse.cli.make_parser` through :func:`register`. Output follows the shared
layout of :mod:`kcollapse.cli`: ``--json`` prints exactly one object ``{"config", "environment",
"results", "summary"}``, ``--out`` writes it, ``--csv`` writes ``results``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

import numpy as np

__all__ = ["register"]

#: Compiled functions, built on first use and reused by later calls in the same process (they take the
#: spectrum and every continuous parameter as arguments, so one compilation serves every call).
_COMPILED: dict[tuple, Any] = {}


def _compiled(key: tuple, build):
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]

_OPT_EPILOG = (
    "Theory: the total test error of kcollapse.theory.chain_error (Demystified Thm 4.3/Cor 4.7 for T0 >= d; "
    "Thm 4.6/4.8/4.9 otherwise) is minimised over log(ridge) (a grid, then the zero of the derivative, taken through kappa). "
    "Every row carries a dense-grid cross-check (grid_*). With --simulate the chain is simulated on a ridge grid "
    "(--ridge, or automatically 20 points per decade around the theory optima) and lambda* is the sub-grid "
    "minimiser of the seed-averaged curve with a percentile-bootstrap CI over seeds (theory_in_ci). When a theory "
    "optimum falls outside its CI, the optimum under the other Wishart constant (T0 - d - 1 vs T0 - d, see "
    "--finite-size; ridge_opt_other_constant) brackets the theory's O(1/d) finite-size correction, and "
    "finite_size_band_meets_ci tells whether the CI meets the band between the two."
)

_FIT_HELP = """\
Fit a power law y = A x^p (or y = A x^p + C with --offset) to curves read from result JSON files and print
the exponent p (the log-log slope; an error decaying like T^-rate has p = -rate) with its standard error and
confidence interval.

Input: one or more JSON files written by `kcollapse simulate --out`, `kcollapse theory --out`,
`kcollapse compare --out`, `kcollapse optimal-ridge --out` or paper_figs/d_fig2.py. Each has a "results" list
of flat rows (e.g. n, ridge, test_error, sem) and a "config" object. Every row is completed with the scalar
entries of its file's config (so the downstream sample size T of a `simulate --T 1000` run is a column) and
with "file". Rows are then filtered (--select), grouped (--group, default: by generation n), and within each
group the column --x is the abscissa, --y the values and --sem their standard errors (weights). A group must
have one row per x value.

Typical uses:
  error vs T, one simulate/theory run per T (as Demystified Fig. 2):
      kcollapse fit-scaling runs/T*.json --x T --group n --window 1e4 1e5 --theory cor53 --ell 0.8
  error vs the ridge within one file:            --x ridge --group n
  a sweep file (paper_figs/d_fig2.py):         --x T --group n --select schedule=crit
  optimal ridge vs T (optimal-ridge --sweep-T):  --x T --y ridge_opt --sem none

--bootstrap B resamples seeds: it needs the .npz written next to each `kcollapse simulate --out` JSON
(test_error_per_seed), the same number of seeds in every file, and --y test_error.
--excess-over n=0 fits E_n - E_0 (the collapse term) instead of E_n.
--theory cor53 compares each group's exponent with Demystified Theorem 5.2/Corollary 5.3 under the ridge
schedule lambda = T^-ell (--ell): clean slope -min(2 ell r_bar, 1 - ell/beta) for n = 0, and
max(clean, a - b + ell/beta) for n >= 1 (n sigma0^2 ~ T^a, T0 ~ T^b; --a 0 --b 0 = fixed n and T0, as in
Demystified Fig. 2); with --excess-over, the collapse slope a - b + ell/beta. beta and r come from the
files' config (power-law spectrum). These are asymptotic exponents: at finite d the local slope of the
theory curves themselves differs (D-Fig2, d = 300: n = 1 peaks at 0.383, not 0.4), so compare with
`kcollapse theory` curves fitted the same way (same files, same window) to separate finite-d effects.
"""


def register(subparsers) -> None:
    """Add ``optimal-ridge``, ``crossover`` and ``fit-scaling`` to ``subparsers``."""
    from .cli import _EPILOG, _add_run_args, add_problem_args

    p = subparsers.add_parser(
        "optimal-ridge", help="the optimal ridge lambda*(n) from theory (and, with --simulate, from simulation)",
        description="The ridge minimising the analytic test error of the chain, per generation n (and per T with "
        "--sweep-T).", epilog=_OPT_EPILOG + " " + _EPILOG)
    add_problem_args(p)
    g = p.add_argument_group("optimal ridge")
    g.add_argument("--sweep-T", type=float, nargs="+", metavar="T", default=None,
                   help="downstream sample sizes to solve for (instead of --T); with >= 3 values the summary fits "
                   "lambda*(T) ~ T^-ell per n")
    g.add_argument("--ridge-bounds", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="search interval for lambda (default: 1e-10..1e4 times the largest eigenvalue)")
    g.add_argument("--finite-size", action="store_true",
                   help="use T0 - d - 1 instead of T0 - d in the collapse term (Cor 4.7)")
    g.add_argument("--grid-check", type=int, default=2001, metavar="K",
                   help="cross-check every optimum by an independent dense-grid search: 4K log-spaced points over "
                   "the search interval, then K points around the best one (0: off; default 2001)")
    g.add_argument("--simulate", action="store_true",
                   help="also estimate lambda* from a simulation on a ridge grid, with a bootstrap CI over seeds")
    g.add_argument("--points-per-decade", type=float, default=20.0,
                   help="with --simulate and no --ridge grid: grid density around the theory optima (default 20; "
                   "the sub-grid estimator's bias on the D-Fig1 curves is <= 0.2%% at 20, <= 0.8%% at 10)")
    g.add_argument("--bootstrap", type=int, default=2000, metavar="B", help="bootstrap replicates (default 2000)")
    g.add_argument("--confidence", type=float, default=0.95, help="CI coverage (default 0.95)")
    _add_run_args(p)
    _add_outputs(p)
    p.set_defaults(func=cmd_optimal_ridge)

    p = subparsers.add_parser(
        "crossover", help="crossover points: collapse vs clean error, fast vs slow rate, divergence b*, mixture p2*",
        description="Crossover points, each with the residual of its defining equation. KIND: "
        "collapse = sample size T* where the collapse term equals the clean error (ridge = --ridge T^-ell); "
        "rate-switch = T where the best clean error reaches the plateau of the best error with n generations; "
        "divergence = the b* (T0 = T^b) below which the classical ridge T^-ell_crit makes the error grow "
        "(uses --beta, --r, --a); mixture = the synthetic fraction p2* at which the Strong Model Collapse term "
        "equals the clean error at --samples n (isotropic, uses --d, --sigma, --c2, --ridge).", epilog=_EPILOG)
    p.add_argument("kind", choices=("collapse", "rate-switch", "divergence", "mixture"), help="which crossover")
    add_problem_args(p)
    g = p.add_argument_group("crossover")
    g.add_argument("--ridge-exponent", type=float, default=0.0, metavar="ELL",
                   help="collapse: ridge schedule lambda = RIDGE * T^-ELL (default 0: fixed --ridge)")
    g.add_argument("--T-bounds", type=float, nargs=2, metavar=("LO", "HI"), default=(1.0, 1e9),
                   help="collapse, rate-switch: search interval for T (default 1 1e9); the last crossing is reported "
                   "for collapse")
    g.add_argument("--finite-size", action="store_true", help="use T0 - d - 1 in the collapse term (Cor 4.7)")
    g.add_argument("--a", type=float, default=0.0, help="divergence: n sigma0^2 ~ T^a (default 0)")
    g.add_argument("--noisy", action="store_true", help="divergence: the noisy-regime threshold b > a + 1/(2 beta r_bar + 1)")
    g.add_argument("--samples", type=float, nargs="+", default=None, metavar="N",
                   help="mixture: total sample sizes n = n1 + n2")
    g.add_argument("--c2", type=float, default=1.0, help="mixture: synthetic-teacher quality c^2 = tr(Sigma Delta) (default 1)")
    _add_outputs(p)
    p.set_defaults(func=cmd_crossover)

    p = subparsers.add_parser(
        "fit-scaling", help="fit power-law exponents (± error) to curves in result JSON files",
        description=_FIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    p.add_argument("files", nargs="+", metavar="RESULTS.json", help="result JSON files (see above)")
    p.add_argument("--x", default="T", help="column of the abscissa (default: T)")
    p.add_argument("--y", default="test_error", help="column of the values (default: test_error)")
    p.add_argument("--sem", default="sem", help="column of the standard errors, or 'none' to fit unweighted "
                   "(default: sem; groups without it are fitted unweighted)")
    p.add_argument("--group", nargs="+", default=["n"], metavar="KEY",
                   help="columns whose values define separate curves (default: n; 'none': one curve)")
    p.add_argument("--select", action="append", default=[], metavar="KEY=VALUE",
                   help="keep only rows with KEY equal to VALUE (repeatable)")
    p.add_argument("--window", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="fit only points with LO <= x <= HI")
    p.add_argument("--offset", action="store_true", help="fit y = A x^p + C (a plateau C)")
    p.add_argument("--excess-over", metavar="KEY=VALUE", default=None,
                   help="fit the excess y - y_ref over the reference rows with KEY=VALUE at the same x (and the same "
                   "other group values), e.g. --excess-over n=0: the collapse term E_n - E_0 of Theorem 5.2; "
                   "sem = sqrt(sem^2 + sem_ref^2) (conservative for positively correlated runs; --bootstrap pairs "
                   "the seeds exactly)")
    p.add_argument("--error-scaling", choices=("birge", "none"), default="birge",
                   help="inflate the errors by sqrt(max(1, chi2/dof)) (birge, default) or trust the SEMs (none)")
    p.add_argument("--confidence", type=float, default=0.95, help="CI coverage (default 0.95)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="B", help="also a percentile-bootstrap CI over seeds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap PRNG seed (default 0)")
    p.add_argument("--knee", action="store_true", help="also detect a knee (broken power law) in each curve")
    p.add_argument("--expect", action="append", default=[], metavar="[GROUP=]SLOPE",
                   help="theory exponent to compare with, for all groups or for one (e.g. 0=-0.6, matching the "
                   "group value); repeatable")
    p.add_argument("--theory", choices=("cor53",), default=None,
                   help="compare with Demystified Thm 5.2/Cor 5.3 slopes (needs --ell and beta, r in the config)")
    p.add_argument("--theory-column", metavar="COL", default=None,
                   help="also fit the analytic column COL of the same rows (e.g. 'theory' in kcollapse compare "
                   "outputs: the finite-d, finite-T0 theory) over the same points and window, with the same "
                   "weights, and "
                   "compare: the simulation's exponent against the exponent the theory curve itself has there "
                   "(theory_fit_exponent, z_theory_fit, consistent_theory_fit). With --theory cor53 the difference "
                   "theory fit - Cor 5.3 is reported as finite_size_bias: the amount by which the asymptotic "
                   "exponent does not describe the curve at these sizes")
    p.add_argument("--ell", type=float, default=None, help="--theory: the ridge-schedule exponent of the runs")
    p.add_argument("--a", type=float, default=0.0, help="--theory: n sigma0^2 ~ T^a (default 0)")
    p.add_argument("--b", type=float, default=0.0, help="--theory: T0 ~ T^b (default 0: fixed T0)")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    g.add_argument("--out", metavar="PATH", help="write the JSON to PATH")
    g.add_argument("--csv", metavar="PATH", help="write the results table as CSV")
    p.set_defaults(func=cmd_fit_scaling)


def _add_outputs(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    g.add_argument("--out", metavar="PATH", help="write the JSON to PATH")
    g.add_argument("--csv", metavar="PATH", help="write the results table as CSV")


def _emit(args, payload: dict[str, Any], title: str, cols, lines: list[str] = ()) -> None:
    from . import _io
    from .cli import _fmt_table, _write_outputs

    written = _write_outputs(args, payload, {})
    if args.json:
        print(_io.dumps(payload))
    else:
        print(title)
        shown = [{k: (str(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in r.items()} for r in payload["results"]]
        print(_fmt_table(shown, cols))
        for line in lines:
            print(line)
    for w in written:
        print(f"wrote {w}", file=sys.stderr)


def _float_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------------------------
# optimal-ridge
# --------------------------------------------------------------------------------------------


def _check_chain_theory(args) -> None:
    from .cli import UsageError

    if args.mode != "replace":
        raise UsageError(f"--mode {args.mode}: the optimal ridge is computed for --mode replace only "
                         "(the accumulate theory covers ridge 0 only; mix has no theory)")
    if args.generator_ridge != 0:
        raise UsageError("--generator-ridge > 0: no theorem covers a ridge-regularised generator; use 0")


def _make_grid_check(spec, T0, sigma, sigma0, design, finite_size, bounds, k):
    """An independent dense-grid search: a log-grid of ``4 k`` points over the whole search interval,
    then ``k`` points over the two coarse cells around its argmin (never looks at the optimiser's answer)."""
    import jax
    import jax.numpy as jnp

    from .optimize import default_ridge_bounds
    from .theory import chain_error

    def build():
        def curve(spec_, lams, n, T, T0_, s, s0):
            return jax.vmap(lambda lam: chain_error(spec_, n, T, T0_, s, s0, lam, design=design,
                                                    finite_size=finite_size).total)(lams)

        return jax.jit(curve)

    f = _compiled(("grid", design, bool(finite_size)), build)
    lo, hi = bounds if bounds is not None else default_ridge_bounds(spec)
    coarse = np.logspace(np.log10(lo), np.log10(hi), 4 * k)
    step = np.log10(coarse[1] / coarse[0])
    dt = spec.dtype

    def check(n, T):
        args = (jnp.asarray(n), jnp.asarray(T, dt), jnp.asarray(T0, dt), jnp.asarray(sigma, dt), jnp.asarray(sigma0, dt))
        vals = np.asarray(f(spec, jnp.asarray(coarse, dt), *args))
        j = int(np.nanargmin(vals))
        fine = np.logspace(np.log10(coarse[j]) - 2 * step, np.log10(coarse[j]) + 2 * step, k)
        vals = np.asarray(f(spec, jnp.asarray(fine, dt), *args))
        i = int(np.nanargmin(vals))
        return float(fine[i]), float(vals[i])

    return check


def cmd_optimal_ridge(args: argparse.Namespace) -> int:
    import jax

    from . import _checks, _io
    from .cli import EXIT_INTERRUPTED, Progress, UsageError, build_problem, problem_config, run_simulation
    from .optimize import empirical_optimal_ridge, fit_ridge_exponent, optimal_ridge_batch, ridge_exponents, status_message
    from .optimize._ridge import _validate
    from .theory import TheoryNotApplicable

    _check_chain_theory(args)
    spec, config, ridges, generations = build_problem(args)
    Ts = [float(args.T)] if args.sweep_T is None else [float(t) for t in args.sweep_T]
    for t in Ts:
        _checks.check_positive_float("--sweep-T", t)
    bounds = None
    if args.ridge_bounds is not None:
        lo, hi = args.ridge_bounds
        if not (0 < lo < hi):
            raise UsageError(f"--ridge-bounds must satisfy 0 < LO < HI, got {lo} {hi}")
        bounds = (lo, hi)
    k_check = _checks.check_int("--grid-check", args.grid_check, minimum=0)
    conf = _checks.check_fraction("--confidence", args.confidence)
    if not 0 < conf < 1:
        raise UsageError(f"--confidence must lie strictly between 0 and 1, got {conf}")
    T0, sigma, sigma0 = float(args.T0), float(args.sigma), float(args.sigma0)

    rows: list[dict[str, Any]] = []
    grid_check = _make_grid_check(spec, T0, sigma, sigma0, args.design, args.finite_size, bounds, k_check) if k_check else None
    try:
        _validate(spec, int(generations.max()), Ts[0], T0, sigma, sigma0, args.design, bounds)
    except TheoryNotApplicable as e:
        raise UsageError(f"no theorem covers this configuration: {e}") from None
    for T in Ts:
        res = jax.tree_util.tree_map(np.asarray, optimal_ridge_batch(spec, generations, T, T0, sigma, sigma0,
                                                                      design=args.design, finite_size=args.finite_size,
                                                                      bounds=bounds))
        for i, n in enumerate(generations):
            row = {"T": T, "n": int(n), "ridge_opt": float(res.ridge[i]), "error_opt": float(res.error[i]),
                   "status": int(res.status[i]), "status_message": status_message(res.status[i]),
                   "iterations": int(res.iterations[i])}
            if k_check and row["status"] == 0:
                gl, ge = grid_check(int(n), T)
                row.update(grid_ridge_opt=gl, grid_error_opt=ge, grid_relative_gap=gl / row["ridge_opt"] - 1,
                           grid_error_relative_gap=ge / row["error_opt"] - 1)
            rows.append(row)

    interrupted = False
    sim_meta: dict[str, Any] = {}
    if args.simulate:
        n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2)
        _checks.check_int("--seed", args.seed, minimum=0)
        budget = int(_checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb) * 2**20)
        n_boot = _checks.check_int("--bootstrap", args.bootstrap, minimum=100)
        grid = _simulation_grid(args, rows)
        sim_meta = {"ridge_grid": grid.tolist(), "seeds": n_seeds, "seed": args.seed, "bootstrap": n_boot,
                    "confidence": conf, "bootstrap_key": "fold_in(key(seed), 1000000 + index of T)",
                    "estimator": "minimiser of the least-squares cubic through the 5 grid points around the argmin "
                    "of the seed-averaged curve (log ridge); percentile bootstrap over seeds"}
        for iT, T in enumerate(Ts):
            if not float(T).is_integer():
                raise UsageError(f"--simulate needs integer sample sizes, got T={T}")
            import dataclasses

            cfg = dataclasses.replace(config, downstream_samples=int(T))
            result, interrupted = run_simulation(spec, cfg, grid, n_seeds=n_seeds, seed=args.seed,
                                                 batch_size=args.batch_size, memory_budget=budget,
                                                 progress=Progress(f"optimal-ridge T={int(T)}", enabled=not args.quiet))
            if result is None:
                print("kcollapse optimal-ridge: interrupted before any seed completed", file=sys.stderr)
                return EXIT_INTERRUPTED
            key = jax.random.fold_in(jax.random.key(args.seed), 1_000_000 + iT)
            emp = empirical_optimal_ridge(key, result, n_bootstrap=n_boot, confidence=conf)
            these = [r for r in rows if r["T"] == T]
            for row in these:
                n = row["n"]
                lo, hi = float(emp.ci_low[n]), float(emp.ci_high[n])
                row.update(sim_ridge_opt=float(emp.ridge[n]), sim_ci_low=lo, sim_ci_high=hi,
                           sim_error=float(emp.error[n]), sim_sem=float(emp.sem[n]), sim_at_edge=bool(emp.at_edge[n]),
                           sim_relative_gap=float(emp.ridge[n]) / row["ridge_opt"] - 1,
                           theory_in_ci=bool(lo <= row["ridge_opt"] <= hi), ridge_opt_other_constant=None,
                           finite_size_band_meets_ci=bool(lo <= row["ridge_opt"] <= hi), seeds=result.n_seeds)
            if not all(r["theory_in_ci"] for r in these):
                # The other Wishart constant (T0 - d vs T0 - d - 1) brackets the O(1/d) finite-size correction
                # of the asymptotic theory: does the CI meet the band between the two optima?
                other = optimal_ridge_batch(spec, generations, T, T0, sigma, sigma0, design=args.design,
                                            finite_size=not args.finite_size, bounds=bounds)
                for i, row in enumerate(these):
                    alt = float(other.ridge[i])
                    band = (min(alt, row["ridge_opt"]), max(alt, row["ridge_opt"]))
                    row.update(ridge_opt_other_constant=alt,
                               finite_size_band_meets_ci=bool(band[0] <= row["sim_ci_high"] and row["sim_ci_low"] <= band[1]))
            if interrupted:
                break

    summary: dict[str, Any] = {}
    for T in Ts:
        opt = [r["ridge_opt"] for r in rows if r["T"] == T]
        summary.setdefault("ridge_grows_with_n", {})[str(T)] = bool(np.all(np.diff(opt) > 0))
    if args.simulate:
        simulated = [r for r in rows if "sim_ridge_opt" in r]
        summary["theory_in_ci"] = all(r["theory_in_ci"] for r in simulated)
        summary["finite_size_band_meets_ci"] = all(r["finite_size_band_meets_ci"] for r in simulated)
    if k_check:
        gaps = [abs(r["grid_relative_gap"]) for r in rows if "grid_relative_gap" in r]
        summary["max_abs_grid_relative_gap"] = max(gaps) if gaps else None
    if len(Ts) >= 3:
        fits = {}
        for n in generations:
            sel = [(r["T"], r["ridge_opt"]) for r in rows if r["n"] == int(n) and r["status"] == 0]
            if len(sel) >= 3:
                f = fit_ridge_exponent(*map(np.asarray, zip(*sel)))
                fits[str(int(n))] = {"ell": float(f.ell), "ell_se": _float_or_none(f.ell_se),
                                     "ci_low": _float_or_none(f.ci_low), "ci_high": _float_or_none(f.ci_high),
                                     "ridge0": float(f.ridge0), "points": len(sel)}
        summary["ridge_exponent_fit"] = fits
        if args.spectrum == "power-law":
            e = ridge_exponents(args.beta, args.r, b=1.0)
            summary["ell_crit"] = float(e.ell_crit)
            summary["note"] = ("clean data: lambda* ~ T^-ell_crit; with n >= 1 and fixed T0, ell -> 0 "
                               "(lambda* ~ T0^-ell_crit, Cor 5.3 with b -> 0); with T0 = T^b, ell -> b ell_crit")
    payload = {
        "config": problem_config(args, spec, T_values=Ts, finite_size=args.finite_size,
                                 ridge_bounds=list(bounds) if bounds else None, grid_check_points=k_check,
                                 objective="total test error of kcollapse.theory.chain_error", simulation=sim_meta or None),
        "environment": _io.environment(args.dtype),
        "results": rows,
        "summary": summary,
    }
    cols = [("T", "T", ".6g"), ("n", "n", "d"), ("ridge_opt", "lambda*", ".6g"), ("error_opt", "E(lambda*)", ".6g"),
            ("status_message", "status", "s")]
    if k_check:
        cols.append(("grid_relative_gap", "grid gap", "+.1e"))
    if args.simulate:
        cols += [("sim_ridge_opt", "sim lambda*", ".4g"), ("sim_ci_low", "CI low", ".4g"), ("sim_ci_high", "CI high", ".4g"),
                 ("theory_in_ci", "in CI", "s"), ("finite_size_band_meets_ci", "band in CI", "s")]
    lines = [f"lambda* grows with n: {summary['ridge_grows_with_n']}"]
    if "ridge_exponent_fit" in summary:
        for n, f in summary["ridge_exponent_fit"].items():
            se = f["ell_se"]
            lines.append(f"n={n}: lambda*(T) ~ T^-ell with ell = {f['ell']:.4f}" + (f" ± {se:.2g}" if se is not None else ""))
    title = (f"kcollapse optimal-ridge: {args.spectrum} d={args.d} T0={args.T0} sigma={args.sigma} sigma0={args.sigma0} "
             f"design={args.design} (theory: chain_error; ridge normalised as (X^T X/T + ridge I)^-1 X^T y/T)")
    _emit(args, payload, title, cols, lines)
    return EXIT_INTERRUPTED if interrupted else 0


def _simulation_grid(args, rows) -> np.ndarray:
    from .cli import UsageError

    user = np.asarray(sorted(set(args.ridge)), float)
    if not (user.size == 1 and user[0] == 0.0):  # the user gave a grid
        if user.size < 5 or np.any(user <= 0):
            raise UsageError("--ridge: the simulation grid needs at least 5 values, all > 0 (or leave --ridge out "
                             "for an automatic grid)")
        return user
    ppd = float(args.points_per_decade)
    if not ppd > 0:
        raise UsageError(f"--points-per-decade must be > 0, got {ppd}")
    opt = np.asarray([r["ridge_opt"] for r in rows if r["status"] == 0])
    if opt.size == 0:
        raise UsageError("no converged theory optimum to centre the simulation grid on; pass --ridge with a grid")
    lo, hi = np.log10(opt.min()) - 0.5, np.log10(opt.max()) + 0.5
    return np.logspace(lo, hi, int(round((hi - lo) * ppd)) + 1)


# --------------------------------------------------------------------------------------------
# crossover
# --------------------------------------------------------------------------------------------


def cmd_crossover(args: argparse.Namespace) -> int:
    from . import _checks, _io
    from . import optimize as opt
    from .cli import UsageError, build_problem, problem_config

    kind = args.kind
    rows: list[dict[str, Any]] = []
    if kind in ("collapse", "rate-switch"):
        _check_chain_theory(args)
        spec, config, ridges, generations = build_problem(args)
        lo, hi = args.T_bounds
        if not 0 < lo < hi:
            raise UsageError(f"--T-bounds must satisfy 0 < LO < HI, got {lo} {hi}")
        gens = [int(n) for n in generations if n >= 1]
        if not gens:
            raise UsageError("--generations: a crossover needs at least one n >= 1")
        if kind == "collapse" and len(args.ridge) != 1:
            raise UsageError("collapse: pass one --ridge value (the schedule's lambda0)")
        from .theory import TheoryNotApplicable

        for n in gens:
            try:
                if kind == "collapse":
                    c = opt.collapse_crossover(spec, n, args.T0, args.sigma, args.sigma0, ridge=args.ridge[0],
                                               ridge_exponent=args.ridge_exponent, design=args.design,
                                               finite_size=args.finite_size, bounds=(lo, hi))
                else:
                    c = opt.rate_switch(spec, n, args.T0, args.sigma, args.sigma0, design=args.design,
                                        finite_size=args.finite_size, bounds=(lo, hi))
            except TheoryNotApplicable as e:
                raise UsageError(f"no theorem covers this configuration: {e}") from None
            rows.append(_crossover_row(kind, c, n=n))
        cfg = problem_config(args, spec, kind=kind, T_bounds=[lo, hi], finite_size=args.finite_size)
        if kind == "collapse":
            cfg.update(ridge_exponent=args.ridge_exponent,
                       equation="E_n(T) - E_0(T) = E_0(T) with lambda = ridge * T^-ridge_exponent (last crossing)")
        else:
            cfg.update(equation="min_lambda E_0(lambda, T) = min_lambda E_n(lambda, T -> inf)")
        label = "T*"
    elif kind == "divergence":
        _checks.check_positive_float("--beta", args.beta)
        _checks.check_positive_float("--r", args.r)
        c = opt.classical_divergence_threshold(args.beta, args.r, a=args.a, noisy=args.noisy)
        rows.append(_crossover_row(kind, c, beta=args.beta, r=args.r, a=args.a, regime="noisy" if args.noisy else "noiseless"))
        cfg = {"kind": kind, "beta": args.beta, "r": args.r, "a": args.a, "noisy": args.noisy,
               "equation": ("min(1, b - a) - 1/(2 beta r_bar + 1) = 0" if args.noisy else "c + b - a - 1 = 0 (b < b*: "
                            "the classical ridge T^-ell_crit makes the error grow with T)")}
        label = "b*"
    else:
        if args.samples is None:
            raise UsageError("mixture needs --samples N [N ...] (total sample sizes)")
        if len(args.ridge) != 1:
            raise UsageError("mixture: pass one --ridge value")
        _checks.check_positive_float("--c2", args.c2)
        for n in args.samples:
            c = opt.mixture_plateau_fraction(n, args.d, args.sigma, args.c2, ridge=args.ridge[0])
            rows.append(_crossover_row(kind, c, samples=float(n), d=args.d))
        cfg = {"kind": kind, "d": args.d, "sigma": args.sigma, "c2": args.c2, "ridge": args.ridge[0],
               "teacher_norm_sq": 1.0, "samples": list(args.samples),
               "equation": "zeta(p2) = B + V (Strong Model Collapse Thm 1, isotropic, sigma1 = sigma2 = sigma)",
               "note": "Strong MC Theorem 1 implemented privately in kcollapse.optimize (isotropic closed form)"}
        label = "p2*"
    payload = {"config": cfg, "environment": _io.environment("float64"), "results": rows}
    key = "n" if kind in ("collapse", "rate-switch") else ("samples" if kind == "mixture" else "a")
    cols = [(key, key, "g"), ("point", label, ".8g"), ("residual", "residual", "+.1e"), ("level", "level", ".6g"),
            ("status_message", "status", "s")]
    _emit(args, payload, f"kcollapse crossover {kind}: {cfg.get('equation', '')}", cols)
    return 0


def _crossover_row(kind, c, **extra) -> dict[str, Any]:
    from .optimize import status_message

    return {"kind": kind, **extra, "point": float(c.point), "residual": float(c.residual), "level": float(c.level),
            "status": int(c.status), "status_message": status_message(int(c.status))}


# --------------------------------------------------------------------------------------------
# fit-scaling
# --------------------------------------------------------------------------------------------


def _load_rows(paths: list[str]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    from .cli import UsageError

    rows, configs = [], {}
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"no such file {path!r}")
        try:
            with open(path) as f:
                payload = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"cannot read {path!r} as JSON: {e}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise UsageError(f"{path!r} has no 'results' list (expected the JSON of kcollapse simulate/theory --out)")
        config = payload.get("config") or {}
        configs[path] = config
        scalars = {k: v for k, v in config.items() if isinstance(v, (int, float, str, bool)) or v is None}
        for i, r in enumerate(payload["results"]):
            if not isinstance(r, dict):
                raise UsageError(f"{path!r}: results[{i}] is not an object")
            rows.append({**scalars, **r, "file": path, "_index": i})
    return rows, configs


def _matches(value, wanted: str) -> bool:
    """Numbers compare numerically (relative 1e-9), everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return math.isclose(float(value), float(wanted), rel_tol=1e-9)
        except ValueError:
            return False
    return str(value) == wanted


def _number(value, what: str) -> float:
    from .cli import UsageError

    if isinstance(value, bool) or value is None:
        raise UsageError(f"{what} is {value!r}, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} is {value!r}, not a number") from None


def _expectations(args) -> tuple[float | None, dict[str, float]]:
    from .cli import UsageError

    default, per = None, {}
    for item in args.expect:
        key, sep, val = item.rpartition("=")
        try:
            slope = float(val)
        except ValueError:
            raise UsageError(f"--expect {item!r}: SLOPE must be a number (form [GROUP=]SLOPE)") from None
        if sep:
            per[key] = slope
        else:
            default = slope
    return default, per


def _per_seed_column(row, cache) -> np.ndarray:
    from .cli import UsageError

    path = os.path.splitext(row["file"])[0] + ".npz"
    if path not in cache:
        if not os.path.isfile(path):
            raise UsageError(f"--bootstrap needs the per-seed values in {path!r} (written by kcollapse simulate --out)")
        with np.load(path) as z:
            if "test_error_per_seed" not in z:
                raise UsageError(f"--bootstrap: {path!r} has no 'test_error_per_seed' array")
            cache[path] = {k: np.asarray(z[k]) for k in ("test_error_per_seed", "generations", "ridges")}
    z = cache[path]
    gi = np.flatnonzero(z["generations"] == int(row["n"]))
    ri = np.flatnonzero(np.isclose(z["ridges"], float(row["ridge"]), rtol=1e-9, atol=0))
    if gi.size != 1 or ri.size != 1:
        raise UsageError(f"--bootstrap: row n={row['n']} ridge={row['ridge']} not found in {path!r}")
    return z["test_error_per_seed"][:, gi[0], ri[0]]


def cmd_fit_scaling(args: argparse.Namespace) -> int:
    import jax

    from . import _checks, _io
    from .cli import UsageError
    from .scaling import bootstrap_power_law, compare_exponent, detect_knee, fit_power_law

    conf = _checks.check_fraction("--confidence", args.confidence)
    if not 0 < conf < 1:
        raise UsageError(f"--confidence must lie strictly between 0 and 1, got {conf}")
    if args.bootstrap and args.bootstrap < 100:
        raise UsageError(f"--bootstrap needs at least 100 replicates, got {args.bootstrap}")
    if args.bootstrap and args.y != "test_error":
        raise UsageError("--bootstrap resamples the per-seed test errors: use --y test_error")
    if args.theory and args.ell is None:
        raise UsageError("--theory cor53 needs --ell (the exponent of the ridge schedule lambda = T^-ell)")
    window = tuple(args.window) if args.window else None
    if window and not 0 < window[0] < window[1]:
        raise UsageError(f"--window must satisfy 0 < LO < HI, got {window[0]} {window[1]}")
    rows, configs = _load_rows(args.files)
    for item in args.select:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--select {item!r}: use KEY=VALUE")
        if not any(key in r for r in rows):
            raise UsageError(f"--select: no row has a column {key!r} (columns: {', '.join(sorted(_columns(rows)))})")
        rows = [r for r in rows if key in r and _matches(r[key], val)]
    if not rows:
        raise UsageError("no rows left after --select")
    group_keys = [] if args.group == ["none"] else list(args.group)
    for k in [args.x, args.y, *group_keys]:
        if not all(k in r for r in rows):
            raise UsageError(f"column {k!r} is missing from some rows (columns: {', '.join(sorted(_columns(rows)))})")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in group_keys), []).append(r)
    default_expect, per_expect = _expectations(args)
    use_sem = args.sem != "none"
    ref_key, ref_lookup = _reference(args, groups, group_keys)
    results, cache = [], {}
    for gkey, members in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        label = ", ".join(f"{k}={v}" for k, v in zip(group_keys, gkey)) or "all"
        if ref_key is not None and _matches(gkey[group_keys.index(ref_key[0])], ref_key[1]):
            continue  # the reference curve itself
        members = sorted(members, key=lambda r: _number(r[args.x], f"{args.x} in {r['file']}"))
        x = np.asarray([_number(r[args.x], f"{args.x} in {r['file']}") for r in members])
        if np.unique(x).size != x.size:
            dup = x[np.flatnonzero(np.diff(x) == 0)[0]]
            raise UsageError(f"group {label}: several rows have {args.x}={dup:g}; separate them with --group "
                             f"(e.g. --group n ridge) or --select")
        y = np.asarray([_number(r[args.y], f"{args.y} in {r['file']}") for r in members])
        sem = None
        if use_sem and all(args.sem in r and r[args.sem] is not None for r in members):
            sem = np.asarray([_number(r[args.sem], f"{args.sem} in {r['file']}") for r in members])
            if np.any(sem <= 0):
                sem = None  # exact (theory) values carry sem 0: fit unweighted
        refs = None
        if ref_key is not None:
            refs = [ref_lookup(r, gkey) for r in members]
            y = y - np.asarray([_number(q[args.y], f"{args.y} in {q['file']}") for q in refs])
            if sem is not None and all(args.sem in q and q[args.sem] is not None for q in refs):
                sem = np.sqrt(sem**2 + np.asarray([_number(q[args.sem], args.sem) for q in refs]) ** 2)
        fit = fit_power_law(x, y, sem, offset=args.offset, window=window, confidence=conf,
                            error_scaling=args.error_scaling)
        inside = x if window is None else x[(x >= window[0]) & (x <= window[1])]
        row: dict[str, Any] = {"group": label, **dict(zip(group_keys, gkey)), "n_points": int(fit.n_points),
                               "x_min": float(inside.min()), "x_max": float(inside.max()),
                               "exponent": float(fit.exponent), "exponent_se": _float_or_none(fit.exponent_se),
                               "ci_low": _float_or_none(fit.ci_low), "ci_high": _float_or_none(fit.ci_high),
                               "prefactor": float(fit.prefactor), "offset": float(fit.offset),
                               "offset_se": _float_or_none(fit.offset_se), "chi2": float(fit.chi2), "dof": int(fit.dof),
                               "p_value": float(fit.p_value) if sem is not None else None, "scale": float(fit.scale),
                               "weights": "sem" if sem is not None else "none", "fit_status": int(fit.status)}
        if args.bootstrap:
            cols = [_per_seed_column(r, cache) for r in members]
            if refs is not None:  # the excess per seed (the reference row shares the seeds of its file)
                cols = [c - _per_seed_column(q, cache) for c, q in zip(cols, refs)]
            if len({c.size for c in cols}) != 1:
                raise UsageError("--bootstrap needs the same number of seeds in every file")
            samples = np.stack(cols, axis=1)
            paired = len({r["file"] for r in members}) == 1
            key = jax.random.fold_in(jax.random.key(args.seed), len(results))
            bf = bootstrap_power_law(key, x, samples, offset=args.offset, window=window, n_bootstrap=args.bootstrap,
                                     confidence=conf, paired=paired)
            row.update(bootstrap_ci_low=float(bf.ci_low), bootstrap_ci_high=float(bf.ci_high),
                       bootstrap_se=float(bf.exponent_se), bootstrap_paired=paired)
        if args.theory_column:
            col = args.theory_column
            if not all(col in r and r[col] is not None for r in members):
                raise UsageError(f"--theory-column: column {col!r} is missing from some rows of group {label} "
                                 f"(columns: {', '.join(sorted(_columns(members)))})")
            y_th = np.asarray([_number(r[col], f"{col} in {r['file']}") for r in members])
            if refs is not None:
                if not all(col in q and q[col] is not None for q in refs):
                    raise UsageError(f"--theory-column: column {col!r} is missing from the --excess-over reference rows")
                y_th = y_th - np.asarray([_number(q[col], f"{col} in {q['file']}") for q in refs])
            # the same weights as the simulation's fit (its SEMs), so a curve that is not a pure power law
            # is averaged over the window in the same way
            th_fit = fit_power_law(x, y_th, sem, offset=args.offset, window=window, confidence=conf,
                                   error_scaling="none")
            th_cmp = compare_exponent(fit, th_fit.exponent)
            row.update(theory_fit_exponent=float(th_fit.exponent), z_theory_fit=_float_or_none(th_cmp.z),
                       consistent_theory_fit=bool(th_cmp.consistent))
        expected = per_expect.get(label.split("=", 1)[-1] if len(group_keys) == 1 else label, default_expect)
        if args.theory == "cor53":
            expected = _cor53_expectation(members, group_keys, gkey, args, excess=ref_key is not None)
        if expected is not None:
            cmp = compare_exponent(fit, expected)
            row.update(expected=expected, difference=float(cmp.difference), z=_float_or_none(cmp.z),
                       consistent=bool(cmp.consistent))
            if "theory_fit_exponent" in row:
                row["finite_size_bias"] = row["theory_fit_exponent"] - expected
            if args.bootstrap:
                row["consistent_bootstrap"] = bool(row["bootstrap_ci_low"] <= expected <= row["bootstrap_ci_high"])
        if args.knee:
            ok = y > 0 if window is None else (y > 0) & (x >= window[0]) & (x <= window[1])
            if ok.sum() >= 6:
                kn = detect_knee(x, y, sem, window=window)
                row.update(knee_x=float(kn.x_knee), knee_significant=bool(kn.significant), plateau=bool(kn.plateau),
                           slope_before=float(kn.slope_before), slope_after=float(kn.slope_after),
                           knee_delta_chi2=float(kn.delta_chi2))
            else:
                row.update(knee_x=None, knee_significant=False, plateau=False)
        results.append(row)
    config = {"files": list(args.files), "x": args.x, "y": args.y, "sem": args.sem, "group": group_keys,
              "select": list(args.select), "window": list(window) if window else None, "offset": args.offset,
              "excess_over": args.excess_over,
              "error_scaling": args.error_scaling, "confidence": conf, "bootstrap": args.bootstrap, "seed": args.seed,
              "theory": args.theory, "theory_column": args.theory_column, "ell": args.ell, "a": args.a, "b": args.b,
              "model": ("y = A x^p + C (weighted least squares in linear space)" if args.offset
                        else "y = A x^p (least squares on log-log, weights (y/sem)^2; see 'weights')"),
              "exponent": "p = d log y / d log x (an error ~ x^-rate has p = -rate)"}
    summary = {}
    if any("consistent" in r for r in results):
        summary["all_consistent"] = all(r.get("consistent", True) for r in results)
    if any("consistent_theory_fit" in r for r in results):
        summary["all_consistent_with_theory_fit"] = all(r.get("consistent_theory_fit", True) for r in results)
    payload = {"config": config, "environment": _io.environment("float64"), "results": results, "summary": summary}
    cols = [("group", "group", "s"), ("n_points", "points", "d"), ("exponent", "exponent", "+.4f"),
            ("exponent_se", "± se", ".2g"), ("ci_low", "CI low", "+.4f"), ("ci_high", "CI high", "+.4f"),
            ("chi2", "chi2", ".3g"), ("dof", "dof", "d")]
    if args.offset:
        cols.insert(6, ("offset", "offset C", ".4g"))
    if args.bootstrap:
        cols += [("bootstrap_ci_low", "boot low", "+.4f"), ("bootstrap_ci_high", "boot high", "+.4f")]
    if any("theory_fit_exponent" in r for r in results):
        cols += [("theory_fit_exponent", f"{args.theory_column} fit", "+.4f"), ("z_theory_fit", "z", "+.2f"),
                 ("consistent_theory_fit", "in CI", "s")]
    if any("expected" in r for r in results):
        cols += [("expected", "theory", "+.4f"), ("z", "z", "+.2f"), ("consistent", "in CI", "s")]
    if any("finite_size_bias" in r for r in results):
        cols += [("finite_size_bias", "fit - asympt.", "+.4f")]
    if args.knee:
        cols += [("knee_x", "knee x", ".4g"), ("knee_significant", "knee?", "s")]
    title = (f"kcollapse fit-scaling: {config['model']}, x = {args.x}, y = {args.y}, {conf:.0%} CI"
             + (f", window [{window[0]:g}, {window[1]:g}]" if window else ""))
    lines = []
    if args.theory == "cor53":
        lines.append(f"theory: Demystified Thm 5.2 / Cor 5.3 slopes with lambda = T^-{args.ell:g}, a = {args.a:g}, b = {args.b:g}")
    _emit(args, payload, title, cols, lines)
    return 0


def _columns(rows) -> set[str]:
    return {k for r in rows for k in r if not k.startswith("_")}


def _reference(args, groups, group_keys):
    """``(KEY, VALUE)`` of --excess-over and a lookup ``row -> reference row`` (same x, other group values)."""
    from .cli import UsageError

    if args.excess_over is None:
        return None, None
    key, sep, val = args.excess_over.partition("=")
    if not sep or key not in group_keys:
        raise UsageError(f"--excess-over {args.excess_over!r}: use KEY=VALUE with KEY one of the --group columns "
                         f"({', '.join(group_keys) or 'none'})")
    i = group_keys.index(key)
    table = {}
    for gkey, members in groups.items():
        if _matches(gkey[i], val):
            for r in members:
                table[(tuple(v for j, v in enumerate(gkey) if j != i), _number(r[args.x], args.x))] = r
    if not table:
        raise UsageError(f"--excess-over {args.excess_over!r}: no rows with {key}={val}")

    def lookup(row, gkey):
        k = (tuple(v for j, v in enumerate(gkey) if j != i), _number(row[args.x], args.x))
        if k not in table:
            raise UsageError(f"--excess-over: no reference row with {key}={val} at {args.x}={k[1]:g}")
        return table[k]

    return (key, val), lookup


def _cor53_expectation(members, group_keys, gkey, args, excess: bool = False) -> float:
    from .cli import UsageError
    from .scaling import theory_slopes

    first = members[0]
    for key in ("beta", "r"):
        if first.get(key) is None:
            raise UsageError(f"--theory cor53 needs {key!r} in the files' config (a --spectrum power-law run)")
    if "n" not in group_keys:
        raise UsageError("--theory cor53 needs --group to include n (the slope depends on whether n = 0)")
    n = int(gkey[group_keys.index("n")])
    sigma = float(first.get("sigma", 1.0) or 0.0)
    s = theory_slopes(float(first["beta"]), float(first["r"]), args.ell, a=args.a, b=args.b, noisy=sigma > 0)
    if excess:  # the excess over the clean curve is the collapse term
        return float(s.collapse)
    return float(s.clean if n == 0 else s.total)
