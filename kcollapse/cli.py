"""Command-line interface: ``kcollapse {demo,simulate,theory,compare}`` (also ``python -m kcollapse``).

Bad input exits with status 2 and one line on stderr naming the argument; numerical failure exits
with status 3; an interrupted run exits with 130 after writing the seeds it completed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import importlib
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from . import _checks
from ._conventions import CONVENTIONS

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_NUMERICAL = 3
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """A problem with the command line (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr that appears only for runs longer than ``delay`` seconds."""

    def __init__(self, label: str, *, enabled: bool = True, delay: float = 2.0, stream: Any = None):
        self.label, self.enabled, self.delay = label, enabled, delay
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.drawn = False
        self.last = 0.0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.t0
        if elapsed < self.delay or (not self.tty and now - self.last < 5.0 and done < total):
            return
        self.last = now
        frac = done / max(total, 1)
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        msg = f"{self.label} [{bar}] {done}/{total} seeds, {elapsed:.1f}s elapsed, ~{eta:.0f}s left"
        if self.tty:
            self.stream.write("\r" + msg)
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.enabled and self.drawn and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------
# Problem flags shared by every sub-command that sets up a chain
# --------------------------------------------------------------------------------------------


def add_problem_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem (THEORY.md §2.1 chain; conventions in --help epilog)")
    g.add_argument("--spectrum", choices=("isotropic", "power-law", "file"), default="isotropic",
                   help="input covariance: isotropic Sigma = I, power law lambda_i = i^-beta, or --spectrum-file (default: isotropic)")
    g.add_argument("--spectrum-file", metavar="PATH",
                   help="with --spectrum file: .npz with 'eigenvalues' (and optional 'coefficients'), or .csv/.txt with one or two columns")
    g.add_argument("--d", type=int, default=100, help="dimension d (default: 100)")
    g.add_argument("--beta", type=float, default=2.0, help="power-law capacity exponent beta (default: 2.0)")
    g.add_argument("--r", type=float, default=0.375, help="power-law source exponent r (default: 0.375)")
    g.add_argument("--T", type=int, default=300, help="downstream training samples T (default: 300)")
    g.add_argument("--T0", type=int, default=200, help="samples per generator generation T0 (default: 200)")
    g.add_argument("--sigma", type=float, default=0.1, help="downstream label-noise std sigma (default: 0.1)")
    g.add_argument("--sigma0", type=float, default=0.2, help="generator label-noise std sigma0 (default: 0.2)")
    g.add_argument("--ridge", type=float, nargs="+", default=[0.0], metavar="LAMBDA",
                   help="downstream ridge value(s) lambda >= 0, kcollapse normalisation (0 = min-norm OLS; default: 0)")
    g.add_argument("--generator-ridge", type=float, default=0.0, metavar="LAMBDA0",
                   help="ridge of every generator fit (default: 0 = OLS, the papers' setting)")
    g.add_argument("--generations", type=int, nargs="+", default=[0, 1, 2, 5, 10], metavar="N",
                   help="generations n to report (all n <= max come from one scan; default: 0 1 2 5 10)")
    g.add_argument("--mode", choices=("replace", "accumulate", "mix"), default="replace",
                   help="replace: train on the latest synthetic set; accumulate: on all sets so far; mix: fraction p synthetic (default: replace)")
    g.add_argument("--synthetic-fraction", type=float, default=None, metavar="P",
                   help="with --mode mix: fraction p in [0, 1] of synthetic labels in every training set")
    g.add_argument("--design", choices=("fresh", "fixed"), default="fresh",
                   help="fresh inputs every generation, or one fixed generator design X0 (default: fresh)")
    g.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="compute dtype (default: float64)")


def _load_spectrum_file(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    if not os.path.isfile(path):
        raise UsageError(f"--spectrum-file: no such file {path!r}")
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                if "eigenvalues" not in z:
                    raise UsageError(f"--spectrum-file: {path!r} has no 'eigenvalues' array (found {sorted(z.files)})")
                return np.asarray(z["eigenvalues"], float), (np.asarray(z["coefficients"], float) if "coefficients" in z else None)
        data = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure is a usage error
        raise UsageError(f"--spectrum-file: cannot read {path!r}: {e}") from None
    if data.shape[1] not in (1, 2):
        raise UsageError(f"--spectrum-file: expected 1 or 2 columns (eigenvalue[, coefficient]), got {data.shape[1]}")
    return data[:, 0], (data[:, 1] if data.shape[1] == 2 else None)


def _synthetic_fraction(args: argparse.Namespace) -> float:
    """``--synthetic-fraction``: required with ``--mode mix``, refused otherwise (1.0 then)."""
    if args.mode == "mix":
        if args.synthetic_fraction is None:
            raise UsageError("--mode mix needs --synthetic-fraction P with P in [0, 1]")
        return _checks.check_fraction("--synthetic-fraction", args.synthetic_fraction)
    if args.synthetic_fraction is not None:
        raise UsageError(f"--synthetic-fraction only applies to --mode mix (got --mode {args.mode})")
    return 1.0


def chain_config(args: argparse.Namespace, T: int, n_max: int):
    """The validated :class:`~kcollapse.ChainConfig` of the chain flags, with downstream size ``T``."""
    from .simulate import ChainConfig

    return ChainConfig(samples_per_generation=args.T0, downstream_samples=T, n_generations=n_max,
                       generator_noise=args.sigma0, label_noise=args.sigma, generator_ridge=args.generator_ridge,
                       synthetic_fraction=_synthetic_fraction(args), mode=args.mode, design=args.design).validate()


def build_problem(args: argparse.Namespace):
    """Validate the problem flags and build ``(spectrum, config, ridges, generations)``."""
    from . import spectra

    d = _checks.check_int("--d", args.d, minimum=1)
    for name in ("T", "T0"):
        _checks.check_int(f"--{name}", getattr(args, name), minimum=1)
    for name, val in (("--sigma", args.sigma), ("--sigma0", args.sigma0), ("--generator-ridge", args.generator_ridge)):
        _checks.check_nonneg_float(name, val)
    for lam in args.ridge:
        _checks.check_nonneg_float("--ridge", lam)
    for n in args.generations:
        _checks.check_int("--generations", n, minimum=0)
    _synthetic_fraction(args)  # fail fast, before the spectrum
    if args.spectrum != "file" and args.spectrum_file:
        raise UsageError("--spectrum-file needs --spectrum file")
    if args.spectrum == "isotropic":
        spec = spectra.isotropic(d, dtype=args.dtype)
    elif args.spectrum == "power-law":
        _checks.check_positive_float("--beta", args.beta)
        _checks.check_nonneg_float("--r", args.r)
        spec = spectra.power_law(d, args.beta, args.r, dtype=args.dtype)
    else:
        if not args.spectrum_file:
            raise UsageError("--spectrum file needs --spectrum-file PATH")
        eig, coef = _load_spectrum_file(args.spectrum_file)
        if eig.shape[0] != d:
            raise UsageError(f"--spectrum-file has {eig.shape[0]} eigenvalues but --d is {d}; pass --d {eig.shape[0]}")
        spec = spectra.from_arrays(eig, coef, dtype=args.dtype)
    config = chain_config(args, args.T, max(args.generations))
    ridges = np.asarray(args.ridge, dtype=float)
    generations = np.asarray(sorted(set(args.generations)), dtype=int)
    return spec, config, ridges, generations


def problem_config(args: argparse.Namespace, spec: Any, **extra: Any) -> dict[str, Any]:
    """All inputs and conventions, for output metadata."""
    cfg = {
        "spectrum": args.spectrum,
        "spectrum_file": args.spectrum_file,
        "d": args.d,
        "beta": args.beta if args.spectrum == "power-law" else None,
        "r": args.r if args.spectrum == "power-law" else None,
        "T": args.T,
        "T0": args.T0,
        "sigma": args.sigma,
        "sigma0": args.sigma0,
        "ridges": list(map(float, args.ridge)),
        "generator_ridge": args.generator_ridge,
        "generations": sorted(set(args.generations)),
        "mode": args.mode,
        "synthetic_fraction": args.synthetic_fraction,
        "design": args.design,
        "dtype": args.dtype,
        "teacher_norm_sq": float(spec.teacher_norm_sq()),
        "conventions": dict(CONVENTIONS),
    }
    cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------


def run_in_chunks(total: int, chunk: int, run_chunk, progress: Progress | None = None) -> tuple[list, bool]:
    """Call ``run_chunk(start, size)`` over consecutive chunks of ``range(total)``, reporting progress.

    An interrupt (Ctrl-C) stops the loop but keeps every completed chunk. Returns ``(parts,
    interrupted)``; the progress bar, if any, is closed either way.
    """
    parts, interrupted = [], False
    try:
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            parts.append(run_chunk(start, size))
            if progress is not None:
                progress(start + size, total)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
    return parts, interrupted


def run_simulation(spec, config, ridges, *, n_seeds: int, seed: int, batch_size: int | None, memory_budget: int,
                   progress: Progress | None, per_mode: bool = False, estimator: str = "conditional",
                   devices: int | None = None):
    """Run seeds in chunks so that an interrupt keeps every completed chunk.

    Returns ``(result, interrupted)``; ``result`` is ``None`` if no chunk completed.
    """
    import jax

    from .distributed import simulate_chain
    from .simulate import merge_results
    from .simulate._driver import auto_batch_size

    key = jax.random.key(seed)
    n_dev = devices or jax.local_device_count()
    if batch_size is None:
        # several chunks for long runs, so progress is visible and an interrupt loses little
        per_host = -(-n_seeds // jax.process_count())
        batch_size = jax.process_count() * n_dev * auto_batch_size(
            spec, config, len(ridges), -(-per_host // n_dev), memory_budget, per_mode,
            max_batch=max(8, -(-per_host // (8 * n_dev))), estimator=estimator,
            sampler="wishart" if bool(np.all(np.asarray(spec.eigenvalues) > 0)) else "direct")  # = sampler="auto"
    # each chunk is split over processes (kcollapse.distributed) and local devices
    parts, interrupted = run_in_chunks(n_seeds, batch_size, lambda start, size: simulate_chain(
        key, spec, config, ridges, size, seed_offset=start, memory_budget=memory_budget, per_mode=per_mode,
        estimator=estimator, devices=devices), progress)
    return (merge_results(parts) if parts else None), interrupted


def simulation_rows(result, generations: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    mean, sem = result.mean, result.sem
    gmean, gsem = result.generator_mean, result.generator_sem
    for n in generations:
        for j, lam in enumerate(result.ridges):
            rows.append({
                "n": int(n),
                "ridge": float(lam),
                "test_error": float(mean[n, j]),
                "sem": float(sem[n, j]),
                "seeds": result.n_seeds,
                "generator_error": float(gmean[n]),
                "generator_sem": float(gsem[n]) if n > 0 else 0.0,
            })
    return rows


def _fmt_table(rows: list[dict[str, Any]], cols: Sequence[tuple[str, str, str]]) -> str:
    """``cols``: (key, header, format)."""
    head = "  ".join(f"{h:>12}" for _, h, _ in cols)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for k, _, f in cols:
            v = r.get(k)
            cells.append(f"{'-':>12}" if v is None else format(v, (">+12" + f[1:]) if f.startswith("+") else ">12" + f))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _result_arrays(result) -> dict[str, Any]:
    """Per-seed arrays of a simulation, for the ``.npz`` next to ``--out``."""
    arrays = dict(
        generations=result.generations, ridges=result.ridges, test_error_per_seed=result.per_seed,
        generator_error_per_seed=result.generator_per_seed, seed_indices=result.seed_indices,
    )
    if result.mc_per_seed is not None:
        arrays["monte_carlo_test_error_per_seed"] = result.mc_per_seed
        arrays["monte_carlo_generator_error_per_seed"] = result.generator_mc_per_seed
    if result.per_mode_mean is not None:
        arrays["per_mode_mean"] = result.per_mode_mean
        arrays["eigenvalues"] = np.asarray(result.spectrum.eigenvalues)
    return arrays


def estimator_metadata(result) -> dict[str, Any]:
    """How the per-seed errors were estimated, and the paired check of conditional vs Monte Carlo."""
    meta: dict[str, Any] = {"estimator": result.estimator}
    if result.estimator == "conditional":
        meta["estimator_note"] = ("per-seed error = E[test error | sampled designs], exact over all label noise; "
                                  "same expectation as Monte Carlo, smaller variance")
        if result.n_seeds >= 2:
            meta["conditional_vs_monte_carlo_max_abs_z"] = float(np.max(np.abs(result.estimator_agreement())))
    return meta


def _write_outputs(args, payload: dict[str, Any], arrays: dict[str, Any]) -> list[str]:
    """``--out`` (JSON, plus ``arrays`` as an ``.npz`` beside it when there are any) and ``--csv``."""
    from . import _io

    written = []
    if getattr(args, "out", None):
        _io.atomic_write_text(args.out, _io.dumps(payload) + "\n")
        written.append(args.out)
        if arrays:
            npz = os.path.splitext(args.out)[0] + ".npz"
            _io.write_npz(npz, **arrays)
            written.append(npz)
    if getattr(args, "csv", None):
        _io.atomic_write_text(args.csv, _io.rows_to_csv(payload["results"]))
        written.append(args.csv)
    return written


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.model != "chain":
        return run_model_command(args)
    from . import _io

    spec, config, ridges, generations = build_problem(args)
    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=1)
    _checks.check_int("--seed", args.seed, minimum=0)
    budget = int(_checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb) * 2**20)
    progress = Progress("simulate", enabled=not args.quiet)
    result, interrupted = run_simulation(spec, config, ridges, n_seeds=n_seeds, seed=args.seed,
                                         batch_size=args.batch_size, memory_budget=budget, progress=progress,
                                         per_mode=args.per_mode, estimator=args.estimator, devices=args.devices)
    if result is None:
        print("kcollapse simulate: interrupted before any seed completed; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    rows = simulation_rows(result, generations)
    payload = {
        "config": problem_config(args, spec, seeds=n_seeds, seed=args.seed, seeds_completed=result.n_seeds,
                                 interrupted=interrupted, generator_fallbacks=result.generator_fallbacks,
                                 **estimator_metadata(result)),
        "environment": _io.environment(args.dtype),
        "results": rows,
    }
    written = _write_outputs(args, payload, _result_arrays(result))
    if args.json:
        print(_io.dumps(payload))
    else:
        print(f"kcollapse simulate: {args.spectrum} d={args.d} T={args.T} T0={args.T0} sigma={args.sigma} "
              f"sigma0={args.sigma0} mode={args.mode} design={args.design} seeds={result.n_seeds} ({args.dtype})")
        print("test error = ||w_hat - w0||_Sigma^2 (excess risk), ridge normalised as (X^T X/T + ridge I)^-1 X^T y/T")
        print(f"estimator: {result.estimator}" + (" (per seed: expected error over all label noise given the designs)"
                                                  if result.estimator == "conditional" else ""))
        print(_fmt_table(rows, [("n", "n", "d"), ("ridge", "ridge", ".4g"), ("test_error", "test_error", ".6g"),
                                ("sem", "sem", ".2g"), ("generator_error", "gen_error", ".6g"), ("seeds", "seeds", "d")]))
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    if interrupted:
        print(f"kcollapse simulate: interrupted; kept {result.n_seeds}/{n_seeds} completed seeds", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


# --------------------------------------------------------------------------------------------
# theory and compare
# --------------------------------------------------------------------------------------------


def _predict(args, spec, config, ridges):
    from .theory import TheoryNotApplicable, predict_chain

    try:
        return predict_chain(spec, config, ridges, finite_size=args.finite_size, per_mode=args.per_mode)
    except TheoryNotApplicable as e:
        raise UsageError(f"no theorem covers this configuration: {e}") from None


def theory_rows(th, generations: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for n in generations:
        for j, lam in enumerate(th.ridges):
            rows.append({
                "n": int(n),
                "ridge": float(lam),
                "test_error": float(th.total[n, j]),
                "bias": float(th.bias[n, j]),
                "variance": float(th.variance[n, j]),
                "collapse": float(th.collapse[n, j]),
                "generator_error": float(th.generator[n]),
                "theorem": th.theorem_per_ridge[j],
                "heuristic": bool(th.heuristic),
            })
    return rows


def _per_mode_arrays(th) -> dict[str, Any]:
    return {"theory_per_mode": th.per_mode} if th.per_mode is not None else {}


def cmd_theory(args: argparse.Namespace) -> int:
    if args.model != "chain":
        return run_model_command(args)
    from . import _io

    spec, config, ridges, generations = build_problem(args)
    th = _predict(args, spec, config, ridges)
    rows = theory_rows(th, generations)
    payload = {
        "config": problem_config(args, spec, finite_size=args.finite_size, theorem=th.theorem),
        "environment": _io.environment(args.dtype),
        "results": rows,
    }
    arrays = {}
    if th.per_mode is not None:
        arrays = dict(generations=th.generations, ridges=th.ridges, eigenvalues=np.asarray(spec.eigenvalues),
                      **_per_mode_arrays(th))
    written = _write_outputs(args, payload, arrays)
    if args.json:
        print(_io.dumps(payload))
    else:
        print(f"kcollapse theory: {th.theorem}")
        print(_fmt_table(rows, [("n", "n", "d"), ("ridge", "ridge", ".4g"), ("test_error", "total", ".6g"),
                                ("bias", "bias", ".4g"), ("variance", "variance", ".4g"), ("collapse", "collapse", ".4g")]))
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.model != "chain":
        return run_model_command(args)
    from . import _io

    spec, config, ridges, generations = build_problem(args)
    th = _predict(args, spec, config, ridges)  # fail fast, before simulating
    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2)
    _checks.check_int("--seed", args.seed, minimum=0)
    budget = int(_checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb) * 2**20)
    result, interrupted = run_simulation(spec, config, ridges, n_seeds=n_seeds, seed=args.seed,
                                         batch_size=args.batch_size, memory_budget=budget,
                                         progress=Progress("compare", enabled=not args.quiet), per_mode=args.per_mode,
                                         estimator=args.estimator, devices=args.devices)
    if result is None:
        print("kcollapse compare: interrupted before any seed completed; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    rows = []
    for n in generations:
        for j, lam in enumerate(ridges):
            theo, sim, sem = float(th.total[n, j]), float(result.mean[n, j]), float(result.sem[n, j])
            z = (sim - theo) / sem if sem > 0 else (0.0 if sim == theo else float("inf"))
            rel = (sim - theo) / abs(theo) if theo != 0 else (0.0 if sim == 0 else float("inf"))
            rows.append({"n": int(n), "ridge": float(lam), "theory": theo, "simulation": sim, "sem": sem,
                         "z": z, "relative_gap": rel, "seeds": result.n_seeds, "theorem": th.theorem_per_ridge[j]})
    max_z = max(abs(r["z"]) for r in rows)
    max_rel = max(abs(r["relative_gap"]) for r in rows)
    summary = {"max_abs_z": max_z, "max_abs_relative_gap": max_rel, "points": len(rows)}
    payload = {
        "config": problem_config(args, spec, finite_size=args.finite_size, theorem=th.theorem, seeds=n_seeds,
                                 seed=args.seed, seeds_completed=result.n_seeds, interrupted=interrupted,
                                 **estimator_metadata(result)),
        "environment": _io.environment(args.dtype),
        "results": rows,
        "summary": summary,
    }
    written = _write_outputs(args, payload, {**_result_arrays(result), **_per_mode_arrays(th)})
    if args.json:
        print(_io.dumps(payload))
    else:
        print(f"kcollapse compare: {th.theorem}; {result.n_seeds} seeds")
        print(_fmt_table(rows, [("n", "n", "d"), ("ridge", "ridge", ".4g"), ("theory", "theory", ".6g"),
                                ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"), ("z", "z", "+.2f"),
                                ("relative_gap", "rel. gap", "+.2%")]))
        print(f"summary: max |z| = {max_z:.2f}, max |relative gap| = {max_rel:.2%} over {len(rows)} points")
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    import jax

    from . import _io, plotting, spectra, theory
    from .simulate import ChainConfig

    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2)
    d, T0, T, sigma, sigma0, n_max = 100, 200, 300, 0.1, 0.2, 10
    ridges = np.concatenate([[0.0], np.logspace(-3, 1, 13)])
    spec = spectra.isotropic(d)
    config = ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                         generator_noise=sigma0, label_noise=sigma)
    print(f"kcollapse demo: isotropic d={d}, T0={T0}, T={T}, sigma={sigma}, sigma0={sigma0}, "
          f"generations 0..{n_max}, {n_seeds} seeds, {len(ridges) - 1} ridge values + OLS (float64, {jax.default_backend()})")
    t0 = time.perf_counter()
    result, interrupted = run_simulation(spec, config, ridges, n_seeds=n_seeds, seed=args.seed, batch_size=None,
                                         memory_budget=1 << 30, progress=Progress("demo", enabled=not args.quiet))
    if result is None or interrupted:
        print("kcollapse demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    elapsed = time.perf_counter() - t0
    n = result.generations
    exact = np.asarray(theory.ols_chain_exact(n, d, T, T0, sigma, sigma0))
    mean, sem = result.mean[:, 0], result.sem[:, 0]
    z = (mean - exact) / sem
    print("\nOLS chain (ridge 0): simulation vs the exact Theorem 4.1 value sigma^2 d/(T-d-1) + n sigma0^2 d/(T0-d-1)")
    rows = [{"n": int(k), "sim": mean[k], "sem": sem[k], "exact": exact[k], "z": z[k]} for k in n]
    print(_fmt_table(rows, [("n", "n", "d"), ("sim", "simulation", ".5f"), ("sem", "± sem", ".5f"),
                            ("exact", "Thm 4.1", ".5f"), ("z", "z", "+.2f")]))
    print(f"max |z| = {np.max(np.abs(z)):.2f} over {len(n)} generations ({result.n_seeds} seeds)")
    th = theory.predict_chain(spec, config, ridges)
    print("\nRidge chain: the optimal downstream ridge grows with n (collapse adds variance-like error);")
    print("theory = Demystified Cor 4.7 (general-spectrum ridge formula, proportional limit)")
    best = 1 + np.argmin(result.mean[:, 1:], axis=1)
    best_th = 1 + np.argmin(th.total[:, 1:], axis=1)
    rows = [{"n": int(k), "lam": result.ridges[best[k]], "err": result.mean[k, best[k]], "sem": result.sem[k, best[k]],
             "th": th.total[k, best[k]], "lam_th": result.ridges[best_th[k]]} for k in n]
    print(_fmt_table(rows, [("n", "n", "d"), ("lam", "best ridge", ".3g"), ("err", "error there", ".5f"),
                            ("sem", "± sem", ".5f"), ("th", "theory there", ".5f"), ("lam_th", "theory best", ".3g")]))
    zr = (result.mean[:, 1:] - th.total[:, 1:]) / result.sem[:, 1:]
    rel = np.abs(result.mean[:, 1:] / th.total[:, 1:] - 1)
    print(f"ridge grid vs theory: max |z| = {np.max(np.abs(zr)):.2f}, max relative gap = {np.max(rel):.2%} "
          f"(Cor 4.7 is a proportional-limit formula; its O(1/d) error at d = {d} is far above these conditional-estimator SEMs)")
    os.makedirs(args.out_dir, exist_ok=True)
    png = os.path.join(args.out_dir, "demo.png")
    jpath = os.path.join(args.out_dir, "demo.json")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    plotting.plot_error_vs_generation(n, mean, sem, theory=exact, theory_label="Theorem 4.1 (exact)", ax=ax1,
                                      title=f"OLS chain, d={d}, T0={T0}, T={T}")
    shown = [k for k in (0, 1, 3, 10) if k <= n_max]
    plotting.plot_error_vs_ridge(result.ridges[1:], shown, result.mean[shown][:, 1:], result.sem[shown][:, 1:], ax=ax2,
                                 theory=th.total[shown][:, 1:],
                                 title="ridge: simulation ± SEM (dots), Cor 4.7 (lines)")
    fig.suptitle("kcollapse demo: model collapse in ridge regression (Dohmatob, Feng, Kempe 2024)", fontsize=10)
    plotting.save_figure(fig, png)
    payload = {
        "config": {"spectrum": "isotropic", "d": d, "T": T, "T0": T0, "sigma": sigma, "sigma0": sigma0,
                   "ridges": ridges, "generations": list(map(int, n)), "seeds": result.n_seeds, "seed": args.seed,
                   "mode": "replace", "design": "fresh", "conventions": dict(CONVENTIONS)},
        "environment": _io.environment("float64"),
        "results": [dict(r, theorem41_exact=float(exact[r["n"]]) if r["ridge"] == 0 else None,
                         theory=float(th.total[r["n"], j % len(ridges)]), theorem=th.theorem_per_ridge[j % len(ridges)])
                    for j, r in enumerate(simulation_rows(result, n))],
    }
    _io.atomic_write_text(jpath, _io.dumps(payload) + "\n")
    print(f"\nwrote {png} and {jpath} ({elapsed:.1f}s)")
    return 0


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

_EPILOG = (
    "Conventions: ridge w = (X^T X/T + ridge I)^{-1} X^T y/T (ridge 0 = min-norm least squares; "
    "scikit-learn alpha = ridge*T); test error = ||w_hat - w0||_Sigma^2 (excess risk, no noise floor); "
    "teacher normalised to ||w0||_Sigma^2 = 1. Exit status: 0 ok, 2 bad input, 3 numerical failure, "
    "130 interrupted (completed seeds are kept)."
)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kcollapse", description="Model-collapse scaling laws in (kernel) ridge regression: "
                     "simulation and theory side by side.", epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"kcollapse {__import__('kcollapse').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="the main job: OLS and ridge chains vs Theorem 4.1, with a plot (< 1 min)",
                       epilog=_EPILOG)
    p.add_argument("--seeds", type=int, default=200, help="independent seeds (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed (default: 0)")
    p.add_argument("--out-dir", default="kcollapse-out", help="where to write demo.png and demo.json (default: ./kcollapse-out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="simulate the iterated-relabelling chain over seeds and ridge values",
                       epilog=_EPILOG)
    add_problem_args(p)
    _add_run_args(p)
    _add_output_args(p, npz="per-seed values (and --per-mode means)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("theory", help="analytic test error (bias, variance, collapse) on the same grid",
                       epilog=_EPILOG)
    add_problem_args(p)
    _add_theory_args(p)
    _add_output_args(p, npz="the per-mode theory (with --per-mode)")
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("compare", help="theory and simulation side by side, with z-scores and relative gaps",
                       epilog=_EPILOG + " compare exits 0 whatever the agreement; see the summary line.")
    add_problem_args(p)
    _add_theory_args(p)
    _add_run_args(p)
    _add_output_args(p, npz="per-seed values and per-mode arrays")
    p.set_defaults(func=cmd_compare)

    for p in (sub.choices["simulate"], sub.choices["theory"], sub.choices["compare"]):
        _add_model_args(p)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


# --------------------------------------------------------------------------------------------
# Other models (--model) and sub-commands defined in their own modules
# --------------------------------------------------------------------------------------------

#: ``--model`` value -> module implementing it. A model module provides
#: ``add_args(parser)`` (its own flags, in its own argument group; called once per sub-command) and
#: ``run(command, args) -> dict`` for ``command`` in {"simulate", "theory", "compare"}, returning
#: ``{"config": dict, "results": [row dicts], "columns": [(key, header, format)], "title": str,
#: "summary": dict (optional), "summary_line": str (optional), "arrays": dict (optional, for --out's .npz),
#: "interrupted": bool (optional)}``. The shared flags (--d, --T, --T0, --sigma, --sigma0, --ridge,
#: --generations, --mode, --seeds, --seed, --dtype, --json, --out, --csv, --quiet) keep their meaning.
MODEL_MODULES: dict[str, str] = {
    "mixture": "kcollapse._cli_strong",
    "random-projection": "kcollapse._cli_strong",
    "tails": "kcollapse._cli_tails",
    "gaussian": "kcollapse._cli_gaussian",
    "pruning": "kcollapse._cli_pruning",
    "kde": "kcollapse._cli_kde",
    "diffusion": "kcollapse._cli_diffusion",
}

#: modules defining whole sub-commands: each provides ``register(subparsers)``.
_COMMAND_MODULES: tuple[str, ...] = ("kcollapse._cli_optimize", "kcollapse._cli_kernels")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("chain", *MODEL_MODULES), default="chain",
                   help="which model: chain = the iterated ridge chain of Demystified (default)"
                   + "".join(f"; {m}" for m in MODEL_MODULES) + " (flags of each in its own group below)")
    for module in dict.fromkeys(MODEL_MODULES.values()):
        importlib.import_module(module).add_args(p)


def _join_distributed(args: argparse.Namespace) -> None:
    """``--distributed``: join the job; processes other than 0 compute but neither print nor write."""
    import jax

    from . import distributed

    # The collectives library logs to the C-level stdout; keep stdout for our results (--json) by
    # pointing file descriptor 1 at stderr and writing Python's stdout to a copy of the original.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(real_stdout, "w", buffering=1)
    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    if jax.process_index() != 0:
        args.out = args.csv = None
        args.quiet = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this process


def run_model_command(args: argparse.Namespace) -> int:
    """Run ``simulate``/``theory``/``compare`` for a ``--model`` other than the chain; shared output layout."""
    from . import _io

    out = importlib.import_module(MODEL_MODULES[args.model]).run(args.command, args)
    payload = {
        "config": {"model": args.model, **out["config"]},
        "environment": _io.environment(getattr(args, "dtype", "float64")),
        "results": out["results"],
    }
    if out.get("summary") is not None:
        payload["summary"] = out["summary"]
    written = _write_outputs(args, payload, out.get("arrays") or {})
    if args.json:
        print(_io.dumps(payload))
    else:
        print(f"kcollapse {args.command} --model {args.model}: {out['title']}")
        print(_fmt_table(out["results"], out["columns"]))
        if out.get("summary_line"):
            print(out["summary_line"])
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    return EXIT_INTERRUPTED if out.get("interrupted") else 0


def _add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulation")
    g.add_argument("--seeds", type=int, default=64, help="independent seeds (default: 64)")
    g.add_argument("--seed", type=int, default=0, help="base PRNG seed; seed i uses fold_in(key(seed), i) (default: 0)")
    g.add_argument("--batch-size", type=int, default=None, help="seeds per compiled call (default: from the memory budget)")
    g.add_argument("--memory-budget-mb", type=float, default=1024.0, help="memory one batch may use (default: 1024)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--estimator", choices=("conditional", "monte-carlo"), default="conditional",
                   help="conditional: each seed's expected error over all label noise given its designs (exact, "
                   "same mean, far smaller SEM; the Monte Carlo values of the same draws go to --out's .npz); "
                   "monte-carlo: the error of the sampled run (default: conditional)")
    g.add_argument("--devices", type=int, default=None,
                   help="local devices to split the seeds over (default: all of this process's devices)")
    g = p.add_argument_group("multi-host (jax.distributed; run the same command on every process)")
    g.add_argument("--distributed", action="store_true",
                   help="join a jax.distributed job; each process simulates its share of the seeds, process 0 "
                   "prints and writes. Coordinates from the flags below or KCOLLAPSE_COORDINATOR, "
                   "KCOLLAPSE_NUM_PROCESSES, KCOLLAPSE_PROCESS_ID (or a cluster JAX detects: SLURM, MPI)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0's coordinator service")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the job")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")


def _add_theory_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("theory")
    g.add_argument("--finite-size", action="store_true",
                   help="use the exact Wishart constant T0 - d - 1 instead of T0 - d in the collapse term (Cor 4.7)")


def _add_output_args(p: argparse.ArgumentParser, *, npz: str) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--per-mode", action="store_true",
                   help="also compute the per-eigenmode error lambda_i (w_i - c_i)^2, Monte Carlo values of the same draws (written to --out's .npz)")
    g.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    g.add_argument("--out", metavar="PATH", help=f"write the JSON to PATH and {npz} to PATH's .npz")
    g.add_argument("--csv", metavar="PATH", help="write the results table as CSV")


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    import jax

    jax.config.update("jax_enable_x64", True)
    prog = f"kcollapse {args.command}"
    if getattr(args, "distributed", False):
        try:
            _join_distributed(args)
        except ValueError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return EXIT_USAGE
    if os.environ.get("KCOLLAPSE_DEBUG"):  # developers: full tracebacks
        return int(args.func(args) or 0)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as e:
        print(f"{prog}: numerical failure: {e}", file=sys.stderr)
        return EXIT_NUMERICAL
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
