"""Sub-commands ``kernel-simulate`` and ``spectrum``: the model-collapse chain on real inputs.

``kcollapse kernel-simulate`` runs the kernel (dual-form) chain of :mod:`kcollapse.simulate` on
real data over a grid of downstream sizes ``T`` and ridge rules (adaptive ``lambda = T^{-ell}``),
with the theory overlay from the kernel's empirical spectrum (shared/THEORY.md §2.6-§2.7,
D-Fig5). ``kcollapse spectrum`` prints/exports that spectrum and the fitted capacity/source
exponents ``(beta, r)``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np

__all__ = ["register"]

_KERNEL_CHOICES = ("rbf", "laplace", "poly", "ntk", "arccos", "linear")

_EPILOG = (
    "Conventions: KRR f = K(., X)(K + ridge*T*I)^{-1} y (kcollapse ridge normalisation; scikit-learn "
    "alpha = ridge*T); adaptive ridge ridge = T^-ell; test error = mean over the test set of "
    "(f_hat(x) - f0(x))^2 against the clean target f0 (excess risk, no noise floor). Without a held-out "
    "set (--test-fraction 0, the default for digits) the test set is the whole pool and training points are "
    "drawn iid from it: the error is then the exact risk on the pool's distribution, whose spectrum the "
    "theory uses. Exit status: 0 ok, 2 bad input, 3 numerical failure, 130 interrupted (completed seeds kept)."
)


# --------------------------------------------------------------------------------------------
# flags
# --------------------------------------------------------------------------------------------


def _add_data_args(p: argparse.ArgumentParser, *, test: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default="digits", metavar="SPEC",
                   help="digits (scikit-learn's 1797 real 8x8 digits, no download), mnist:PATH (IDX folder/file "
                   "or .npz you already have), npz:PATH or csv:PATH (inputs + target; last csv column = target) "
                   "(default: digits)")
    g.add_argument("--target", choices=("parity", "label", "value"), default=None,
                   help="clean target: parity = label mod 2 (the paper's; default for digits/mnist), label, or "
                   "value = the file's targets as given (default for npz/csv)")
    g.add_argument("--pool-size", type=int, default=None, metavar="N",
                   help="use a random subset of N inputs as the pool (default: all; e.g. 10000 for MNIST)")
    if test:
        g.add_argument("--test-fraction", type=float, default=None, metavar="F",
                       help="hold out a random fraction F of the data as the test set (default: 0 = test on the "
                       "whole pool, the population protocol; MNIST uses its own t10k test set)")
        g.add_argument("--test-size", type=int, default=None, metavar="M",
                       help="cap the test set at M random points (memory/time; default: all)")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the pool/test subsampling (default: 0)")
    g.add_argument("--no-standardize", action="store_true",
                   help="keep raw inputs (default: centre every feature and divide by one global scale so that "
                   "E|x|^2/p = 1, pool statistics, constant features dropped)")
    g.add_argument("--per-feature-scaling", action="store_true",
                   help="z-score every feature separately (blows up rarely-inked pixels; see docs/notes/kernels.md)")
    g.add_argument("--unit-target", action="store_true",
                   help="scale the centred target to unit variance (default: keep the paper's {0,1} scale, centred)")


def _add_kernel_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel")
    g.add_argument("--kernel", choices=_KERNEL_CHOICES, default="rbf",
                   help="rbf exp(-gamma|x-z|^2), laplace exp(-gamma|x-z|), poly (gamma x.z + coef0)^degree, "
                   "ntk (two-layer ReLU NTK), arccos (Cho-Saul order n), linear (default: rbf)")
    g.add_argument("--gamma", type=float, default=None,
                   help="bandwidth/scale (default: 1/p for rbf, poly, ntk, arccos; 1/sqrt(p) for laplace; p = features)")
    g.add_argument("--degree", type=int, default=5, help="poly degree (default: 5, the paper's)")
    g.add_argument("--coef0", type=float, default=1.0, help="poly offset (default: 1)")
    g.add_argument("--order", type=int, default=1, choices=(0, 1, 2), help="arccos order (default: 1 = ReLU)")
    g.add_argument("--bias", type=float, default=0.0, help="ntk first-layer bias variance (default: 0)")
    g.add_argument("--metric", choices=("l2", "l1"), default="l2", help="laplace norm (default: l2)")
    g.add_argument("--no-normalize-kernel", action="store_true",
                   help="keep the kernel's own scale (default: divide by its mean diagonal on the pool, so "
                   "E k(x,x) = 1 like the RBF and ridge exponents mean the same for every kernel)")
    g.add_argument("--random-features", type=int, default=None, metavar="M",
                   help="replace the kernel by M random features (Fourier for rbf/laplace, ReLU for arccos, NTK)")
    g.add_argument("--memory-budget-mb", type=float, default=1024.0,
                   help="bytes one batch / one Gram may use, in MiB (default: 1024)")
    g.add_argument("--fit-range", type=int, nargs=2, default=None, metavar=("I_MIN", "I_MAX"),
                   help="eigen-index range of the (beta, r) power-law fit (default: 2 .. N/10)")
    g.add_argument("--spectrum-samples", type=int, default=3000, metavar="S",
                   help="estimate the spectrum on at most S pool points (an O(S^3) eigh; default: 3000)")


def register(subparsers) -> None:
    """Add ``kernel-simulate`` and ``spectrum`` to ``subparsers``."""
    p = subparsers.add_parser(
        "kernel-simulate", epilog=_EPILOG,
        help="the collapse chain with kernel ridge regression on real data (D-Fig5), theory from the empirical spectrum")
    _add_data_args(p, test=True)
    _add_kernel_args(p)
    g = p.add_argument_group("chain (same protocol as 'simulate'; THEORY.md §2.1, §2.6-§2.7)")
    g.add_argument("--T", type=int, nargs="+", default=None, metavar="T",
                   help="downstream sample sizes (default: 9 log-spaced values 10..1000)")
    g.add_argument("--T0", type=int, default=100, help="samples per generator generation (default: 100)")
    g.add_argument("--sigma", type=float, default=1.0, help="downstream label-noise std (default: 1, the paper's)")
    g.add_argument("--sigma0", type=float, default=1.0, help="generator label-noise std (default: 1, the paper's)")
    g.add_argument("--generator-ridge", type=float, default=0.0, metavar="LAMBDA0",
                   help="ridge of every generator KRR (default: 0 = min-norm interpolation, the papers' OLS generator)")
    g.add_argument("--generations", type=int, nargs="+", default=[0, 1, 2, 3], metavar="N",
                   help="generations to report (default: 0 1 2 3)")
    g.add_argument("--mode", choices=("replace", "accumulate", "mix"), default="replace",
                   help="replace, accumulate or mix, as in 'simulate' (default: replace)")
    g.add_argument("--synthetic-fraction", type=float, default=None, metavar="P", help="with --mode mix: fraction P")
    g.add_argument("--design", choices=("fresh", "fixed"), default="fresh", help="generator designs (default: fresh)")
    g.add_argument("--sampling", choices=("with-replacement", "without-replacement"), default="with-replacement",
                   help="how a training set is drawn from the pool (default: with-replacement = iid from the pool)")
    r = g.add_mutually_exclusive_group()
    r.add_argument("--ell", nargs="+", default=None, metavar="ELL",
                   help="adaptive ridge T^-ell for each ELL: a number, crit (ell_crit = beta/(1+2 beta r) from the "
                   "fitted spectrum) or bcrit (b*ell_crit, b = log T0/log T, i.e. ridge T0^-ell_crit) (default: crit bcrit)")
    r.add_argument("--ridge", type=float, nargs="+", default=None, metavar="LAMBDA", help="fixed ridge values instead")
    g.add_argument("--no-theory", action="store_true", help="skip the theory overlay")
    g = p.add_argument_group("simulation")
    g.add_argument("--seeds", type=int, default=20, help="independent seeds (default: 20)")
    g.add_argument("--seed", type=int, default=0, help="base PRNG seed; seed i uses fold_in(key(seed), i) (default: 0)")
    g.add_argument("--batch-size", type=int, default=None, help="seeds per compiled call (default: from the memory budget)")
    g.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="compute dtype (default: float64)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_output(p)
    p.set_defaults(func=cmd_kernel_simulate)

    p = subparsers.add_parser("spectrum", epilog=_EPILOG,
                              help="empirical kernel spectrum of real data and fitted (beta, r), for theory overlays")
    _add_data_args(p, test=False)
    _add_kernel_args(p)
    p.add_argument("--top", type=int, default=10, help="eigenvalues to print (default: 10)")
    _add_output(p, spectrum=True)
    p.set_defaults(func=cmd_spectrum)


def _add_output(p: argparse.ArgumentParser, *, spectrum: bool = False) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    if spectrum:
        g.add_argument("--out", metavar="PATH",
                       help="write the spectrum: .npz (eigenvalues, coefficients, energies; usable as "
                       "'--spectrum file --spectrum-file PATH') or .csv (i, eigenvalue, coefficient, energy)")
    else:
        g.add_argument("--out", metavar="PATH", help="write the JSON to PATH and per-seed arrays to PATH's .npz")
        g.add_argument("--csv", metavar="PATH", help="write the results table as CSV")
        g.add_argument("--plot", metavar="PNG", help="also draw error vs T (markers ± SEM, theory lines, T0 dashed)")


# --------------------------------------------------------------------------------------------
# shared steps
# --------------------------------------------------------------------------------------------


def _load(args, *, test: bool):
    """Load, subsample, split and preprocess: ``(pool, test_or_None, info)``."""
    from . import _checks, datasets
    from .cli import UsageError

    _checks.check_int("--data-seed", args.data_seed, minimum=0)
    try:
        data, own_test = datasets.load_dataset(args.data, target=args.target)
    except (FileNotFoundError, OSError) as e:
        raise UsageError(f"--data: {e}") from None
    except ValueError as e:
        raise UsageError(f"--data: {e}") from None
    rng = np.random.default_rng(args.data_seed)
    info: dict[str, Any] = {"data": args.data, "source_samples": data.n_samples}
    frac = getattr(args, "test_fraction", None)
    test_set = None
    if test:
        if frac is not None:
            frac = _checks.check_fraction("--test-fraction", frac)
            if own_test is not None and frac > 0:
                raise UsageError(f"--test-fraction: {args.data} has its own test set; drop --test-fraction")
        if own_test is not None:
            test_set = own_test
            info["test_protocol"] = "held-out (the data's own test set)"
        elif frac:
            data, test_set = datasets.split(data, frac, seed=args.data_seed)
            info["test_protocol"] = f"held-out (random {frac:g} of the data)"
        else:
            info["test_protocol"] = "population (test = the whole pool; training points iid from it)"
    if args.pool_size is not None:
        m = _checks.check_int("--pool-size", args.pool_size, minimum=2)
        if m < data.n_samples:
            data = data.subset(np.sort(rng.permutation(data.n_samples)[:m]))
    if test and test_set is not None and getattr(args, "test_size", None) is not None:
        m = _checks.check_int("--test-size", args.test_size, minimum=1)
        if m < test_set.n_samples:
            test_set = test_set.subset(np.sort(rng.permutation(test_set.n_samples)[:m]))
    pool, test_set = datasets.prepare(data, test_set, standardize_inputs=not args.no_standardize,
                                      per_feature=args.per_feature_scaling, unit_target=args.unit_target)
    info.update(pool_size=pool.n_samples, test_size=None if test_set is None else test_set.n_samples,
                features=pool.n_features, preprocessing={k: pool.info[k] for k in (
                    "standardized_inputs", "input_scaling", "centered_target", "unit_target", "target_shift",
                    "target_scale",
                    "features_kept", "features_dropped_constant") if k in pool.info},
                target=pool.info.get("target"))
    return pool, test_set, info


def _kernel(args, pool):
    """The kernel of the flags (normalised to unit mean diagonal unless told not to)."""
    import jax

    from . import _checks, kernels

    p = pool.n_features
    gamma = args.gamma
    if gamma is None:
        gamma = 1.0 / math.sqrt(p) if args.kernel == "laplace" else 1.0 / p
    gamma = _checks.check_positive_float("--gamma", gamma)
    params: dict[str, Any] = {}
    if args.kernel in ("rbf", "poly", "ntk", "arccos"):
        params["gamma"] = gamma
    if args.kernel == "laplace":
        params.update(gamma=gamma, metric=args.metric)
    if args.kernel == "poly":
        params.update(degree=_checks.check_int("--degree", args.degree, minimum=1), coef0=args.coef0)
    if args.kernel == "arccos":
        params["order"] = args.order
    if args.kernel == "ntk":
        params["bias"] = args.bias
    base = kernels.make_kernel(args.kernel, **params)
    kernel = base
    if args.random_features is not None:
        m = _checks.check_int("--random-features", args.random_features, minimum=1)
        kernel = kernels.random_features(jax.random.fold_in(jax.random.key(args.seed), 2**31 - 1), base, m, p)
    scale = 1.0
    if not args.no_normalize_kernel:
        diag = float(np.mean(np.asarray(jax.vmap(lambda x: kernel(x, x))(np.asarray(pool.inputs)))))
        if not diag > 0:
            raise ValueError(f"--kernel {args.kernel}: mean diagonal {diag:g} on the pool; use --no-normalize-kernel")
        scale = 1.0 / diag
        if abs(scale - 1.0) > 1e-12:
            kernel = kernels.Scaled(kernel, scale)
    meta = {**base.params(), "normalization": 1.0 if args.no_normalize_kernel else scale,
            "random_features": args.random_features}
    return kernel, meta


def _spectrum(args, kernel, pool):
    """Empirical spectrum on (a subsample of) the pool, and the power-law fit."""
    from . import _checks, spectra
    from .cli import UsageError

    s = _checks.check_int("--spectrum-samples", args.spectrum_samples, minimum=3)
    X, y = pool.inputs, pool.targets
    used = pool.n_samples
    if used > s:
        idx = np.sort(np.random.default_rng(args.data_seed + 1).permutation(used)[:s])
        X, y, used = X[idx], y[idx], s
    budget = int(args.memory_budget_mb * 2**20)
    es = spectra.empirical(kernel, X, y, memory_budget=max(budget, used * used * 8 + (64 << 20)))
    i_min, i_max = (2, None) if args.fit_range is None else args.fit_range
    try:
        fit = spectra.fit_power_law(es, i_min=i_min, i_max=i_max)
    except ValueError as e:
        raise UsageError(f"--fit-range: {e}") from None
    return es, fit, used


def _fit_dict(fit, es, used, pool_size) -> dict[str, Any]:
    return {"beta": fit.beta, "r": fit.r, "ell_crit": fit.ell_crit, "fit_range": [fit.i_min, fit.i_max],
            "beta_r2": fit.beta_r2, "r_r2": fit.r_r2, "spectrum_samples": used, "pool_size": pool_size,
            "residual_energy": es.residual, "target_mean_square": es.target_mean_square,
            "trace": float(np.sum(np.asarray(es.spectrum.eigenvalues)))}


def _ridge_rules(args, fit) -> list[tuple[str, Any]]:
    """``[(label, rule)]``: rule is ('ell', value) / ('bcrit', ell_crit) / ('ridge', value)."""
    from . import _checks
    from .cli import UsageError

    if args.ridge is not None:
        return [(f"ridge={v:g}", ("ridge", _checks.check_nonneg_float("--ridge", v))) for v in args.ridge]
    rules = []
    for e in args.ell or ["crit", "bcrit"]:
        if e == "crit":
            rules.append(("ell_crit", ("ell", fit.ell_crit)))
        elif e == "bcrit":
            rules.append(("b*ell_crit", ("bcrit", fit.ell_crit)))
        else:
            try:
                v = float(e)
            except ValueError:
                raise UsageError(f"--ell: {e!r} is not a number, crit or bcrit") from None
            rules.append((f"ell={v:g}", ("ell", _checks.check_nonneg_float("--ell", v))))
    return rules


def _ridge_values(rules, T: int, T0: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ridges, ells)`` for one ``T`` (``ell`` is NaN for fixed ridges)."""
    from .simulate import adaptive_ridge, b_exponent

    ridges, ells = [], []
    for _, (kind, v) in rules:
        if kind == "ridge":
            ridges.append(v)
            ells.append(float("nan"))
        else:
            ell = v * float(b_exponent(T, T0)) if kind == "bcrit" else v
            ridges.append(float(adaptive_ridge(T, ell)))
            ells.append(ell)
    return np.asarray(ridges), np.asarray(ells)


# --------------------------------------------------------------------------------------------
# kernel-simulate
# --------------------------------------------------------------------------------------------


def _check_chain_flags(args) -> tuple[list[int], list[int]]:
    from . import _checks
    from .cli import UsageError

    _checks.check_int("--T0", args.T0, minimum=1)
    Ts = args.T if args.T is not None else sorted({int(round(t)) for t in np.logspace(1, 3, 9)})
    Ts = sorted({_checks.check_int("--T", t, minimum=1) for t in Ts})
    for name, v in (("--sigma", args.sigma), ("--sigma0", args.sigma0), ("--generator-ridge", args.generator_ridge)):
        _checks.check_nonneg_float(name, v)
    gens = sorted({_checks.check_int("--generations", n, minimum=0) for n in args.generations})
    if args.ridge is None and any(e == "bcrit" for e in (args.ell or ["bcrit"])) and min(Ts) <= 1:
        raise UsageError("--ell bcrit needs every --T > 1 (b = log T0 / log T)")
    _checks.check_int("--seeds", args.seeds, minimum=1)
    _checks.check_int("--seed", args.seed, minimum=0)
    if args.batch_size is not None:
        _checks.check_int("--batch-size", args.batch_size, minimum=1)
    _checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb)
    return Ts, gens


def _d_fig5_summary(rows, labels, gens, Ts, T0) -> list[dict[str, Any]]:
    """Per (ridge rule, n >= 1): where the error is smallest in T and how it ends (the D-Fig5 reading)."""
    out = []
    for lab in labels:
        for n in gens:
            if n == 0:
                continue
            pts = sorted((r["T"], r["simulation"], r["sem"]) for r in rows if r["rule"] == lab and r["n"] == n)
            if len(pts) < 2:
                continue
            Tv = np.array([p[0] for p in pts])
            m = np.array([p[1] for p in pts])
            s = np.array([p[2] for p in pts])
            k = int(np.argmin(m))
            last = len(m) - 1
            # Past T0: compare the error at the largest T with the error at the T closest to T0; a change
            # of more than two (combined) standard errors counts as improving / getting worse.
            j0 = int(np.argmin(np.abs(np.log(Tv) - math.log(T0))))
            gain = m[j0] - m[last]
            gain_se = math.sqrt(s[j0] ** 2 + s[last] ** 2) if np.all(np.isfinite(s[[j0, last]])) else float("nan")
            out.append({"rule": lab, "n": int(n), "T_at_min": int(Tv[k]), "min_error": float(m[k]),
                        "T_near_T0": int(Tv[j0]), "error_near_T0": float(m[j0]), "T_max": int(Tv[last]),
                        "error_at_T_max": float(m[last]), "improvement_past_T0": float(gain),
                        "improvement_sem": gain_se,
                        "past_T0": (("improves" if gain > 2 * gain_se else "worsens" if gain < -2 * gain_se else "flat")
                                    if math.isfinite(gain_se) else None)})
    return out


def cmd_kernel_simulate(args: argparse.Namespace) -> int:
    import jax

    from . import _io
    from ._conventions import CONVENTIONS
    from .cli import EXIT_INTERRUPTED, Progress, UsageError, _fmt_table, _write_outputs, chain_config
    from .kernels import kernel_chain_theory
    from .simulate import KernelData, simulate_kernel_chain
    from .simulate._kernel_chain import kernel_bytes_per_seed
    from .theory import TheoryNotApplicable

    t_start = time.perf_counter()
    Ts, gens = _check_chain_flags(args)
    n_max = max(gens)
    for T in Ts:  # validate the whole grid before any work
        chain_config(args, T, n_max)
    pool, test_set, data_info = _load(args, test=True)
    if args.sampling == "without-replacement" and max(Ts + [args.T0]) > pool.n_samples:
        raise UsageError(f"--sampling without-replacement: T or T0 exceeds the pool of {pool.n_samples} inputs")
    kernel, kernel_meta = _kernel(args, pool)
    need_fit = not args.no_theory or args.ridge is None
    es = fit = None
    spec_used = 0
    if need_fit:
        es, fit, spec_used = _spectrum(args, kernel, pool)
    rules = _ridge_rules(args, fit)
    labels = [lab for lab, _ in rules]
    data = KernelData.from_datasets(pool, test_set, dtype=args.dtype)
    budget = int(args.memory_budget_mb * 2**20)
    n_seeds = args.seeds
    progress = Progress("kernel-simulate", enabled=not args.quiet)
    total = len(Ts) * n_seeds
    key = jax.random.key(args.seed)
    rows: list[dict[str, Any]] = []
    arrays: dict[str, Any] = {}
    interrupted = False
    theory_note = None
    done = 0
    t_sim = time.perf_counter()
    try:
        for T in Ts:
            cfg = chain_config(args, T, n_max)
            ridges, ells = _ridge_values(rules, T, args.T0)
            th = None
            if not args.no_theory:
                try:
                    th = kernel_chain_theory(es.spectrum, cfg, ridges)
                except TheoryNotApplicable as e:
                    theory_note = str(e)
            res_parts = []
            # about four chunks per T (an interrupt loses little), never more than the memory budget holds
            fits = max(1, budget // max(kernel_bytes_per_seed(kernel, data, cfg, len(ridges)), 1))
            batch = args.batch_size or max(1, min(n_seeds, -(-n_seeds // 4), fits))
            try:
                for start in range(0, n_seeds, batch):
                    size = min(batch, n_seeds - start)
                    # one compiled shape per T: the last chunk is padded to the batch size
                    res_parts.append(simulate_kernel_chain(key, kernel, data, cfg, ridges, size, seed_offset=start,
                                                           batch_size=batch, memory_budget=budget,
                                                           sampling=args.sampling))
                    done += size
                    progress(done, total)
            except KeyboardInterrupt:
                interrupted = True
            if res_parts:
                from .simulate import merge_results

                res = merge_results(res_parts)
                _rows_for_T(rows, res, th, es, T, ridges, ells, labels, gens)
                arrays[f"T{T}_test_error_per_seed"] = res.per_seed
                arrays[f"T{T}_generator_error_per_seed"] = res.generator_per_seed
                arrays[f"T{T}_ridges"] = ridges
                if th is not None:
                    arrays[f"T{T}_theory"] = th.total + es.residual
            if interrupted:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    if not rows:
        print("kcollapse kernel-simulate: interrupted before any seed completed; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    wall = time.perf_counter() - t_start
    summary = _summary(rows, labels, gens, Ts, args.T0, wall, time.perf_counter() - t_sim)
    if theory_note:
        summary["theory_not_applicable"] = theory_note
    payload = {
        "config": {
            **data_info, "kernel": kernel_meta, "T": Ts, "T0": args.T0, "sigma": args.sigma, "sigma0": args.sigma0,
            "generator_ridge": args.generator_ridge, "generations": gens, "mode": args.mode,
            "synthetic_fraction": args.synthetic_fraction, "design": args.design, "sampling": args.sampling,
            "ridge_rules": [{"label": lab, "kind": kind, "value": v} for lab, (kind, v) in rules],
            "seeds": n_seeds, "seed": args.seed, "dtype": args.dtype, "interrupted": interrupted,
            "spectrum_fit": None if fit is None else _fit_dict(fit, es, spec_used, pool.n_samples),
            "theory": None if args.no_theory else (theory_note or "kcollapse ridge-generator chain from the empirical "
                                                   "spectrum (+ residual energy); see docs/notes/kernels.md"),
            "conventions": dict(CONVENTIONS),
        },
        "environment": _io.environment(args.dtype),
        "results": rows,
        "summary": summary,
    }
    written = _write_outputs(args, payload, arrays)
    if args.plot:
        _plot(args.plot, rows, labels, gens, args.T0, payload["config"])
        written.append(args.plot)
    if args.json:
        print(_io.dumps(payload))
    else:
        _print_report(args, rows, summary, fit, data_info, kernel_meta, _fmt_table)
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else 0


def _rows_for_T(rows, res, th, es, T, ridges, ells, labels, gens) -> None:
    for n in gens:
        for j, lab in enumerate(labels):
            sim, sem = float(res.mean[n, j]), float(res.sem[n, j])
            row = {"T": int(T), "n": int(n), "rule": lab, "ell": None if math.isnan(ells[j]) else float(ells[j]),
                   "ridge": float(ridges[j]), "simulation": sim, "sem": sem, "seeds": res.n_seeds,
                   "generator_error": float(res.generator_mean[n]), "theory": None, "z": None, "relative_gap": None}
            if th is not None:
                theo = float(th.total[n, j]) + es.residual
                row["theory"] = theo
                row["z"] = (sim - theo) / sem if sem > 0 else None
                row["relative_gap"] = (sim - theo) / abs(theo) if theo != 0 else None
                row["generator_theory"] = float(th.generator[n]) + (es.residual if n > 0 else 0.0)
            rows.append(row)


def _summary(rows, labels, gens, Ts, T0, wall, sim_time) -> dict[str, Any]:
    out: dict[str, Any] = {"wall_time_s": wall, "simulation_time_s": sim_time, "points": len(rows)}
    zs = [abs(r["z"]) for r in rows if r.get("z") is not None]
    rels = [abs(r["relative_gap"]) for r in rows if r.get("relative_gap") is not None]
    if zs:
        out["max_abs_z"] = max(zs)
    if rels:
        out["max_abs_relative_gap"] = max(rels)
        out["max_abs_relative_gap_per_n"] = {
            str(n): max(abs(r["relative_gap"]) for r in rows if r["n"] == n and r.get("relative_gap") is not None)
            for n in gens}
    out["d_fig5"] = _d_fig5_summary(rows, labels, gens, Ts, T0)
    return out


def _print_report(args, rows, summary, fit, data_info, kernel_meta, fmt) -> None:
    print(f"kcollapse kernel-simulate: {data_info['data']} (pool {data_info['pool_size']}, test "
          f"{data_info['test_size'] or data_info['pool_size']}: {data_info['test_protocol']}), kernel "
          f"{kernel_meta['kernel']}, T0={args.T0}, sigma={args.sigma:g}, sigma0={args.sigma0:g}, "
          f"generator ridge {args.generator_ridge:g}, mode {args.mode}, {args.seeds} seeds")
    if fit is not None:
        print(f"empirical spectrum: beta = {fit.beta:.3f}, r = {fit.r:.3f} (fit on i = {fit.i_min}..{fit.i_max}, "
              f"R^2 {fit.beta_r2:.3f}/{fit.r_r2:.3f}) -> ell_crit = {fit.ell_crit:.3f}")
    cols = [("T", "T", "d"), ("rule", "ridge rule", "s"), ("n", "n", "d"), ("ridge", "ridge", ".3g"),
            ("simulation", "simulation", ".5f"), ("sem", "± sem", ".2g")]
    if any(r.get("theory") is not None for r in rows):
        cols += [("theory", "theory", ".5f"), ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.1%")]
    print(fmt(rows, cols))
    if summary.get("theory_not_applicable"):
        print(f"theory overlay: not available: {summary['theory_not_applicable']}")
    if "max_abs_z" in summary:
        per_n = ", ".join(f"n={k}: {v:.1%}" for k, v in summary["max_abs_relative_gap_per_n"].items())
        print(f"theory overlay: max |z| = {summary['max_abs_z']:.2f}, max |relative gap| = "
              f"{summary['max_abs_relative_gap']:.1%} ({per_n})")
    for d in summary["d_fig5"]:
        verdict = {"improves": "keeps improving", "worsens": "gets worse", "flat": "no significant change",
                   None: "?"}[d["past_T0"]]
        print(f"D-Fig5 [{d['rule']}, n={d['n']}]: min {d['min_error']:.4f} at T={d['T_at_min']}; "
              f"T={d['T_near_T0']} -> {d['T_max']}: {d['error_near_T0']:.4f} -> {d['error_at_T_max']:.4f} "
              f"({verdict} past T0)")
    print(f"wall time {summary['wall_time_s']:.1f}s (simulation {summary['simulation_time_s']:.1f}s)")


def _plot(path, rows, labels, gens, T0, config) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 4), squeeze=False)
    for ax, lab in zip(axes[0], labels):
        for n in gens:
            pts = sorted((r["T"], r["simulation"], r["sem"], r.get("theory")) for r in rows
                         if r["rule"] == lab and r["n"] == n)
            T = np.array([p[0] for p in pts], float)
            line = ax.errorbar(T, [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="o", ms=4, capsize=2,
                               label=f"n={n}")
            if all(p[3] is not None for p in pts):
                ax.plot(T, [p[3] for p in pts], "-", color=line[0].get_color(), lw=1.2)
        ax.axvline(T0, color="gray", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("T (downstream samples)")
        ax.set_ylabel("test error")
        ax.set_title(f"{config['kernel']['kernel']}, ridge {lab}")
        ax.legend(fontsize=8)
    fig.suptitle(f"kernel chain on {config['data']}: simulation ± SEM (markers), theory (lines), T0 (dashed)",
                 fontsize=9)
    fig.tight_layout()
    from ._io import atomic_write_bytes
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------------------------
# spectrum
# --------------------------------------------------------------------------------------------


def cmd_spectrum(args: argparse.Namespace) -> int:
    from . import _checks, _io
    from ._conventions import CONVENTIONS
    from .cli import UsageError

    top = _checks.check_int("--top", args.top, minimum=0)
    pool, _, data_info = _load(args, test=False)
    args.seed = 0  # random features (if any) use seed 0 here
    kernel, kernel_meta = _kernel(args, pool)
    es, fit, used = _spectrum(args, kernel, pool)
    lam = np.asarray(es.spectrum.eigenvalues)
    coef = np.asarray(es.spectrum.coefficients)
    energy = es.energies
    summary = _fit_dict(fit, es, used, pool.n_samples)
    payload = {
        "config": {**data_info, "kernel": kernel_meta, "conventions": dict(CONVENTIONS)},
        "environment": _io.environment("float64"),
        "summary": summary,
        "spectrum": {"eigenvalues": lam, "coefficients": coef, "energies": energy},
    }
    written = []
    if args.out:
        if args.out.endswith(".npz"):
            _io.write_npz(args.out, eigenvalues=lam, coefficients=coef, energies=energy,
                          beta=fit.beta, r=fit.r, ell_crit=fit.ell_crit, residual=es.residual)
        elif args.out.endswith(".csv"):
            rows = [{"i": i + 1, "eigenvalue": float(a), "coefficient": float(b), "energy": float(c)}
                    for i, (a, b, c) in enumerate(zip(lam, coef, energy))]
            _io.atomic_write_text(args.out, _io.rows_to_csv(rows))
        else:
            raise UsageError(f"--out must end in .npz or .csv, got {args.out!r}")
        written.append(args.out)
    if args.json:
        print(_io.dumps(payload))
    else:
        print(f"kcollapse spectrum: {data_info['data']} ({used} of {pool.n_samples} pool points, "
              f"{pool.n_features} features), kernel {kernel_meta['kernel']}")
        print(f"trace {summary['trace']:.6g}; target mean square {es.target_mean_square:.6g}; "
              f"energy outside the kernel's range {es.residual:.3g}")
        print(f"capacity beta = {fit.beta:.4f} (R^2 {fit.beta_r2:.4f}), source r = {fit.r:.4f} (R^2 {fit.r_r2:.4f}), "
              f"fit on i = {fit.i_min}..{fit.i_max}; ell_crit = beta/(1 + 2 beta min(r,1)) = {fit.ell_crit:.4f}")
        if top:
            print(f"{'i':>5}  {'eigenvalue':>12}  {'energy':>12}")
            for i in range(min(top, lam.size)):
                print(f"{i + 1:>5}  {lam[i]:>12.5g}  {energy[i]:>12.5g}")
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return 0
