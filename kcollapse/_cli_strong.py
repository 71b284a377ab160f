"""CLI for ``--model mixture`` and ``--model random-projection`` (Strong Model Collapse, THEORY.md §4).

``kcollapse {theory,simulate,compare} --model mixture [--mixing pooled|weighted|iterative] --p2 P ... --c2 C``
and ``kcollapse ... --model random-projection --width M ... --p2 P ... --ridge L``. Shared flags keep
their meaning: ``--d``, ``--spectrum``/``--beta``/``--r``/``--spectrum-file``, ``--T`` (the total sample
size n = n1 + n2), ``--sigma`` (real-label noise), ``--ridge`` (kcollapse normalisation = the paper's
lambda), ``--generations`` (rounds of iterative mixing), ``--seeds``, ``--seed``, ``--json``, ``--out``,
``--csv``, ``--quiet``, ``--finite-size``.
"""

from __future__ import annotations

import argparse
import functools
import math
from typing import Any

import numpy as np

from . import _checks
from ._conventions import CONVENTIONS

__all__ = ["add_args", "run"]

MIXINGS = ("pooled", "weighted", "iterative", "retraining")
_DELTA_SHAPES = ("inverse", "isotropic")


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the ``mixture`` / ``random-projection`` flags to ``parser`` in their own group."""
    g = parser.add_argument_group(
        "--model mixture / random-projection (Strong Model Collapse, THEORY.md §4; --T is the total n = n1 + n2, "
        "--sigma the real-label noise, --ridge the paper's lambda unchanged)")
    g.add_argument("--p2", type=float, nargs="+", default=[0.2], metavar="P",
                   help="synthetic fraction(s) p2 in [0, 1]; n2 = round(p2 n) of the n rows are synthetic (default: 0.2)")
    g.add_argument("--c2", type=float, default=0.5, metavar="C2",
                   help="quality c^2 = E||w2 - w1||_Sigma^2 = tr(Sigma Delta) of the synthetic teacher w2 "
                   "(teacher normalised to ||w1||_Sigma^2 = 1); with --mixing iterative the first generator's c0^2 (default: 0.5)")
    g.add_argument("--mixing", choices=MIXINGS, default="pooled",
                   help="mixture only: pooled = ridge on the union (Theorem 1; Corollaries 1, 4); weighted = loss "
                   "(1-alpha)/n1 sum_real + alpha/n2 sum_synth (Corollary 2, ridgeless); iterative = each round "
                   "relabels p2 n fresh rows with the previous round's model (Corollary 3, ridgeless); retraining = iterated "
                   "weighted retraining on one design, loss w * real labels + (1 - w) * the previous fit's labels "
                   "(Garg et al.; optimal w = (sqrt 5 - 1)/2 at equal noise; ridgeless; --real-weight) (default: pooled)")
    g.add_argument("--alpha", type=float, nargs="+", metavar="A",
                   help="with --mixing weighted: weight(s) alpha in [0, 1] on the synthetic group (alpha = p2 is pooling)")
    g.add_argument("--real-weight", type=float, nargs="+", metavar="W",
                   help="with --mixing retraining: weight(s) w in (0, 1] on the real labels (1 = real only; "
                   "--generations are the retraining iterations, 0 = the real-only fit)")
    g.add_argument("--width", type=int, nargs="+", metavar="M",
                   help="random-projection only (required): width(s) m, the number of random features S^T x "
                   "(S is d x m, iid N(0, 1/d)); the error spikes at m = n when n < d")
    g.add_argument("--strong-sigma2", type=float, default=None, metavar="SIGMA2",
                   help="label-noise std of the synthetic rows (default: --sigma)")
    g.add_argument("--strong-delta", choices=_DELTA_SHAPES, default="inverse",
                   help="shape of the mismatch covariance Delta: inverse = (c^2/d) Sigma^{-1} (the paper's "
                   "experiments), isotropic = (c^2/tr Sigma) I (default: inverse)")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _usage(msg: str):
    from .cli import UsageError

    return UsageError(msg)


def _spectrum(args):
    from . import spectra
    from .cli import _load_spectrum_file

    d = _checks.check_int("--d", args.d, minimum=1)
    if args.spectrum != "file" and args.spectrum_file:
        raise _usage("--spectrum-file needs --spectrum file")
    if args.spectrum == "isotropic":
        return spectra.isotropic(d, dtype=args.dtype)
    if args.spectrum == "power-law":
        _checks.check_positive_float("--beta", args.beta)
        _checks.check_nonneg_float("--r", args.r)
        return spectra.power_law(d, args.beta, args.r, dtype=args.dtype)
    if not args.spectrum_file:
        raise _usage("--spectrum file needs --spectrum-file PATH")
    eig, coef = _load_spectrum_file(args.spectrum_file)
    if eig.shape[0] != d:
        raise _usage(f"--spectrum-file has {eig.shape[0]} eigenvalues but --d is {d}; pass --d {eig.shape[0]}")
    return spectra.from_arrays(eig, coef, dtype=args.dtype)


class _Problem:
    """Validated inputs common to both models."""

    def __init__(self, args):
        if getattr(args, "per_mode", False):
            raise _usage(f"--per-mode is not available for --model {args.model}")
        if getattr(args, "synthetic_fraction", None) is not None:
            raise _usage(f"--synthetic-fraction belongs to the chain; with --model {args.model} use --p2")
        if getattr(args, "mode", "replace") != "replace":
            raise _usage(f"--mode belongs to the chain; with --model {args.model} use --mixing")
        self.spec = _spectrum(args)
        self.d = self.spec.d
        self.rank = int(np.sum(np.asarray(self.spec.eigenvalues) > 0))
        self.n = _checks.check_int("--T", args.T, minimum=1)
        self.p2 = [_checks.check_fraction("--p2", p) for p in args.p2]
        self.counts = np.round(np.asarray(self.p2) * self.n)
        self.c2 = _checks.check_nonneg_float("--c2", args.c2)
        self.sigma = _checks.check_nonneg_float("--sigma", args.sigma)
        self.sigma2 = self.sigma if args.strong_sigma2 is None else _checks.check_nonneg_float("--strong-sigma2", args.strong_sigma2)
        self.ridges = [_checks.check_nonneg_float("--ridge", r) for r in args.ridge]
        from .strong import mismatch_covariance

        self.delta = mismatch_covariance(self.spec, self.c2, args.strong_delta)
        self.finite_size = bool(getattr(args, "finite_size", False))

    def fixed(self) -> list:
        """The unbatched problem arrays of the spectrum-based theories."""
        dt = self.spec.dtype
        return [self.spec.eigenvalues, self.spec.coefficients, self.delta] + [
            np.asarray(v, dtype=dt) for v in (self.n, self.sigma, self.sigma2)]

    def config(self, args, **extra) -> dict[str, Any]:
        from .strong import STRONG_CONVENTIONS

        cfg = {
            "spectrum": args.spectrum, "spectrum_file": args.spectrum_file, "d": self.d,
            "beta": args.beta if args.spectrum == "power-law" else None,
            "r": args.r if args.spectrum == "power-law" else None,
            "n": self.n, "p2": self.p2, "n_synthetic": self.counts.astype(int).tolist(),
            "c2": self.c2, "sigma": self.sigma, "sigma2": self.sigma2, "delta": args.strong_delta,
            "ridges": self.ridges, "dtype": args.dtype,
            "teacher_norm_sq": float(self.spec.teacher_norm_sq()),
        }
        cfg.update(extra)
        cfg["conventions"] = {**CONVENTIONS, **STRONG_CONVENTIONS}
        return cfg


# --------------------------------------------------------------------------------------------
# Simulation in chunks (an interrupt keeps the completed seeds)
# --------------------------------------------------------------------------------------------


def _simulate(args, label: str, fn):
    """``fn(key, n_seeds, seed_offset, batch_size) -> GridSimulation``; returns ``(result, interrupted)``.

    Every chunk is run with the same ``batch_size`` (the last one padded), so it compiles once.
    """
    import jax

    from .cli import Progress, run_in_chunks
    from .strong import merge_grid_simulations

    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2 if args.command == "compare" else 1)
    _checks.check_int("--seed", args.seed, minimum=0)
    if args.batch_size is not None:
        _checks.check_int("--batch-size", args.batch_size, minimum=1)
    chunk = args.batch_size or max(8, -(-n_seeds // 8))
    key = jax.random.key(args.seed)
    parts, interrupted = run_in_chunks(n_seeds, chunk, lambda start, size: fn(key, size, start, chunk),
                                       Progress(label, enabled=not args.quiet))
    if not parts:
        raise KeyboardInterrupt
    return merge_grid_simulations(parts), interrupted


def _budget(args) -> int:
    return int(_checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb) * 2**20)


def _compare_fields(theory: float, sim: float, sem: float) -> dict[str, float]:
    z = (sim - theory) / sem if sem > 0 else (0.0 if sim == theory else math.inf)
    rel = (sim - theory) / abs(theory) if theory != 0 else (0.0 if sim == 0 else math.inf)
    return {"theory": theory, "simulation": sim, "sem": sem, "z": z, "relative_gap": rel}


def _summary(rows) -> tuple[dict[str, Any], str]:
    max_z = max(abs(r["z"]) for r in rows)
    max_rel = max(abs(r["relative_gap"]) for r in rows)
    summary = {"max_abs_z": max_z, "max_abs_relative_gap": max_rel, "points": len(rows)}
    return summary, f"summary: max |z| = {max_z:.2f}, max |relative gap| = {max_rel:.2%} over {len(rows)} points"


_SIM_COLS = [("test_error", "test_error", ".6g"), ("sem", "± sem", ".2g"), ("seeds", "seeds", "d")]
_THEORY_COLS = [("test_error", "total", ".6g"), ("bias", "bias", ".4g"), ("variance", "variance", ".4g"),
                ("collapse", "collapse", ".4g")]
_COMPARE_COLS = [("theory", "theory", ".6g"), ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g"),
                 ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.2%")]


def _assemble(command, keys, theory, sim, extra_rows=None):
    """Rows for ``command`` from grid keys (list of dicts), theory (dict of flat arrays) and a simulation."""
    rows = []
    for i, key in enumerate(keys):
        row = dict(key)
        if command == "theory":
            row.update(test_error=float(theory["total"][i]), bias=float(theory["bias"][i]),
                       variance=float(theory["variance"][i]), collapse=float(theory["collapse"][i]),
                       theorem=theory["theorem"][i])
        elif command == "simulate":
            row.update(test_error=float(sim.mean.ravel()[i]), sem=float(sim.sem.ravel()[i]), seeds=sim.n_seeds)
        else:
            row.update(_compare_fields(float(theory["total"][i]), float(sim.mean.ravel()[i]), float(sim.sem.ravel()[i])))
            row.update(seeds=sim.n_seeds, theorem=theory["theorem"][i])
        if extra_rows is not None and command != "simulate":
            row.update(extra_rows[i])
        rows.append(row)
    return rows


def _arrays(sim) -> dict[str, Any]:
    if sim is None:
        return {}
    out = {"test_error_per_seed": sim.per_seed, "seed_indices": sim.seed_indices}
    for name, values in sim.axes:
        out[f"axis_{name}"] = values
    return out


def _finish(command, args, prob, rows, key_cols, sim, title, interrupted, extra_cols=(), **config):
    cols = list(key_cols) + (_THEORY_COLS if command == "theory" else _SIM_COLS if command == "simulate" else _COMPARE_COLS)
    if command != "simulate":
        cols += list(extra_cols)
    out = {"results": rows, "columns": cols, "title": title, "arrays": _arrays(sim), "interrupted": interrupted}
    if sim is not None:
        config.update(seeds=args.seeds, seed=args.seed, seeds_completed=sim.n_seeds, interrupted=interrupted)
    out["config"] = prob.config(args, **config)
    if command == "compare":
        out["summary"], out["summary_line"] = _summary(rows)
        out["summary_line"] += f" ({sim.n_seeds} seeds)"
    return out


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def run(command: str, args: argparse.Namespace) -> dict:
    """Run ``theory``/``simulate``/``compare`` for ``--model mixture`` or ``--model random-projection``."""
    prob = _Problem(args)
    if args.model == "random-projection":
        if args.mixing != "pooled":
            raise _usage("--mixing applies to --model mixture only (random projections use pooled data)")
        if args.alpha:
            raise _usage("--alpha applies to --model mixture --mixing weighted only")
        return _run_projection(command, args, prob)
    if args.width:
        raise _usage("--width applies to --model random-projection only")
    if args.real_weight and args.model != "mixture":
        raise _usage("--real-weight applies to --model mixture --mixing retraining only")
    if args.alpha and args.mixing != "weighted":
        raise _usage("--alpha applies to --mixing weighted only")
    if args.real_weight and args.mixing != "retraining":
        raise _usage("--real-weight applies to --mixing retraining only")
    return {"pooled": _run_pooled, "weighted": _run_weighted, "iterative": _run_iterative,
            "retraining": _run_retraining}[args.mixing](command, args, prob)


@functools.cache
def _grid_fn(name: str):
    """Module-level ``jit(vmap(.))`` of one theory function over flat grids (compiled once per shape).

    The problem (spectrum, mismatch, sizes, noise) is passed as unbatched arguments, so repeated
    calls with new values (e.g. in-process tests) reuse the compiled code.
    """
    import jax

    from . import strong
    from .spectra import Spectrum

    if name == "pooled":
        def point(lam, c, delta, n, s1, s2, p2, ridge, finite_size):
            return strong.mixture_error(Spectrum(lam, c), delta, n, p2, ridge, s1, s2, finite_size=finite_size)
        axes = (None,) * 6 + (0, 0)
    elif name == "projection":
        def point(lam, c, delta, n, s1, s2, m, p2, ridge):
            return strong.random_projection_error(Spectrum(lam, c), delta, n, m, p2, ridge, s1, s2)
        axes = (None,) * 6 + (0, 0, 0)
    elif name == "weighted":
        def point(c2, s1, s2, d, n1, n2, a):
            return strong.weighted_mixture_error(d, n1, n2, a, c2, s1, s2)
        axes = (None,) * 3 + (0, 0, 0, 0)
    elif name == "weighted-small-phi":
        def point(c2, s1, s2, d, n1, n2, a):
            return strong.weighted_mixture_error_small_phi(d, n1, n2, a, c2, s1, s2)
        axes = (None,) * 3 + (0, 0, 0, 0)
    else:  # iterative
        def point(d, n, c0, s1, s2, p2, t, finite_size):
            return strong.iterative_mixture_error(d, n, p2, c0, t, s1, s2, finite_size=finite_size)
        axes = (None,) * 5 + (0, 0)
    static = ("finite_size",) if name in ("pooled", "iterative") else ()

    def batched(*args, **kw):
        return jax.vmap(lambda *a: point(*a, **kw), in_axes=axes)(*args)

    return jax.jit(batched, static_argnames=static)


def _theory_grid(name: str, fixed: list, grids: list, **static) -> dict[str, np.ndarray]:
    """Evaluate the theory ``name`` on flat grids; returns the decomposition as numpy arrays."""
    import jax.numpy as jnp

    dt = fixed[0].dtype if hasattr(fixed[0], "dtype") else jnp.result_type(float)
    args = [jnp.asarray(a, dt) for a in fixed] + [jnp.asarray(np.asarray(g, dtype=float), dt) for g in grids]
    out = _grid_fn(name)(*args, **static)
    return {k: np.asarray(getattr(out, k)) for k in ("bias", "variance", "collapse", "total")}


def _run_pooled(command, args, prob):
    from . import strong

    thm = "Strong MC Thm 1"
    if prob.finite_size:
        thm += " (exact OLS variance sigma^2 d/(n-d-1) at ridge 0, n >= d+2)"
    if prob.rank > prob.n and 0.0 in prob.ridges:
        thm += "; ridge 0 with n < d is the over-parameterised regime (corrected Cor 4 for Sigma = I)"
    keys, P2, R = [], [], []
    for p, n2 in zip(prob.p2, prob.counts):
        for lam in prob.ridges:
            keys.append({"p2": p, "n_synthetic": int(n2), "ridge": lam})
            P2.append(n2 / prob.n)
            R.append(lam)
    theory = sim = None
    interrupted = False
    if command != "simulate":
        theory = _theory_grid("pooled", prob.fixed(), [P2, R], finite_size=prob.finite_size)
        theory["theorem"] = [thm] * len(keys)
    if command != "theory":
        sim, interrupted = _simulate(args, command, lambda key, s, o, b: strong.simulate_mixture(
            key, prob.spec, prob.delta, prob.n, prob.p2, prob.ridges, prob.sigma, prob.sigma2, s, seed_offset=o, batch_size=b,
            memory_budget=_budget(args)))
    rows = _assemble(command, keys, theory, sim)
    title = (f"ridge on real + synthetic data ({thm}); {args.spectrum} d={prob.d}, n={prob.n}, c2={prob.c2}, "
             f"sigma={prob.sigma}, sigma2={prob.sigma2}, Delta {args.strong_delta}")
    key_cols = [("p2", "p2", ".3g"), ("n_synthetic", "n2", "d"), ("ridge", "ridge", ".4g")]
    return _finish(command, args, prob, rows, key_cols, sim, title, interrupted, mixing="pooled", theorem=thm,
                   finite_size=prob.finite_size)


def _ridgeless_theory_only(command, prob, what):
    if command != "simulate" and any(r != 0 for r in prob.ridges):
        raise _usage(f"no theorem covers --mixing {what} with ridge > 0 (the result is ridgeless); use --ridge 0 "
                     "(simulate accepts any ridge)")


def _run_weighted(command, args, prob):
    from . import strong

    if not args.alpha:
        raise _usage("--mixing weighted needs --alpha A [A ...] (weights on the synthetic group, in [0, 1])")
    alphas = [_checks.check_fraction("--alpha", a) for a in args.alpha]
    if np.any((prob.counts < 1) | (prob.counts > prob.n - 1)):
        raise _usage(f"--mixing weighted needs both groups non-empty: 1 <= round(p2 n) <= n - 1, got n2 = "
                     f"{prob.counts.astype(int).tolist()} with n = {prob.n}")
    if prob.finite_size:
        raise _usage("--finite-size has no effect for --mixing weighted; drop it")
    _ridgeless_theory_only(command, prob, "weighted")
    keys, D, N1, N2, A = [], [], [], [], []
    for p, n2 in zip(prob.p2, prob.counts):
        for a in alphas:
            n1 = prob.n - n2
            if command != "simulate":
                active = n1 if a == 0 else n2 if a == 1 else prob.n
                if active <= prob.rank:
                    raise _usage(f"--alpha {a:g} with p2 = {p:g}: the groups with nonzero weight have {int(active)} "
                                 f"<= d = {prob.rank} samples, where the ridgeless error is infinite; "
                                 "use alpha in (0, 1) or larger --T")
            for lam in prob.ridges:
                keys.append({"p2": p, "n_synthetic": int(n2), "alpha": a, "ridge": lam})
                D.append(prob.rank)
                N1.append(n1)
                N2.append(n2)
                A.append(a)
    theory = sim = None
    interrupted = False
    thm = "kcollapse deterministic equivalent of Strong MC Cor 2 (weighted mixing, ridgeless)"
    extra = None
    summary_extra = {}
    if command != "simulate":
        fixed = [prob.c2, prob.sigma, prob.sigma2]
        theory = _theory_grid("weighted", fixed, [D, N1, N2, A])
        small = _theory_grid("weighted-small-phi", fixed, [D, N1, N2, A])
        theory["theorem"] = [thm] * len(keys)
        extra = [{"small_phi": float(v)} for v in small["total"]]
        stars = []
        for p, n2 in zip(prob.p2, prob.counts):
            args_ = (prob.rank, prob.n - n2, n2, prob.c2, prob.sigma, prob.sigma2)
            stars.append({"p2": p, "n_synthetic": int(n2),
                          "alpha_star": float(strong.optimal_mixing_weight(*args_)),
                          "alpha_star_small_phi": float(strong.optimal_mixing_weight(*args_, method="small-phi"))})
        summary_extra["optimal_alpha"] = stars
    if command != "theory":
        sim, interrupted = _simulate(args, command, lambda key, s, o, b: strong.simulate_weighted_mixture(
            key, prob.spec, prob.delta, prob.n, prob.p2, alphas, prob.ridges, prob.sigma, prob.sigma2, s,
            seed_offset=o, batch_size=b, memory_budget=_budget(args)))
    rows = _assemble(command, keys, theory, sim, extra)
    title = (f"weighted mixing ({thm}); d={prob.d}, n={prob.n}, c2={prob.c2}, sigma={prob.sigma}, sigma2={prob.sigma2}")
    key_cols = [("p2", "p2", ".3g"), ("n_synthetic", "n2", "d"), ("alpha", "alpha", ".3g"), ("ridge", "ridge", ".4g")]
    out = _finish(command, args, prob, rows, key_cols, sim, title, interrupted,
                  extra_cols=[("small_phi", "small-phi form", ".6g")], mixing="weighted", alpha=alphas, theorem=thm)
    if summary_extra:
        out["summary"] = {**(out.get("summary") or {}), **summary_extra}
        line = "; ".join(f"p2={s['p2']:g}: alpha* = {s['alpha_star']:.4g} (small-phi form {s['alpha_star_small_phi']:.4g})"
                         for s in summary_extra["optimal_alpha"])
        out["summary_line"] = (out.get("summary_line", "") + "\n" if out.get("summary_line") else "") + "optimal weight: " + line
    return out


def _run_iterative(command, args, prob):
    from . import strong

    gens = sorted(set(_checks.check_int("--generations", g, minimum=0) for g in args.generations))
    if len(prob.ridges) != 1:
        raise _usage("--mixing iterative takes one --ridge value")
    _ridgeless_theory_only(command, prob, "iterative")
    if command != "simulate" and prob.n <= prob.rank + 1:
        raise _usage(f"the iterative-mixing theory is ridgeless and needs n > d + 1, got --T {prob.n} and d = {prob.rank}")
    keys, P2, G = [], [], []
    for p, n2 in zip(prob.p2, prob.counts):
        for g in gens:
            keys.append({"p2": p, "n_synthetic": int(n2), "generation": g})
            P2.append(n2 / prob.n)
            G.append(g)
    theory = sim = None
    interrupted = False
    thm = "Strong MC Cor 3 (exact recursion E_t = a E_{t-1} + V, Thm 1 coefficients)"
    if prob.finite_size:
        thm += " with exact V = sigma^2 d/(n-d-1)"
    if command != "simulate":
        theory = _theory_grid("iterative", [prob.rank, prob.n, prob.c2, prob.sigma, prob.sigma2], [P2, G],
                              finite_size=prob.finite_size)
        theory["theorem"] = [thm] * len(keys)
    if command != "theory":
        n_gen = max(gens)
        sim, interrupted = _simulate(args, command, lambda key, s, o, b: strong.simulate_iterative_mixture(
            key, prob.spec, prob.delta, prob.n, prob.p2, n_gen, prob.ridges[0], prob.sigma, prob.sigma2, s,
            seed_offset=o, batch_size=b, memory_budget=_budget(args)))
        # keep the requested generations only, in the row order (p2, generation)
        sim = _select(sim, 1, gens)
    rows = _assemble(command, keys, theory, sim)
    title = (f"iterative mixing ({thm}); d={prob.d}, n={prob.n}, c0^2={prob.c2}, sigma={prob.sigma}, "
             f"sigma2={prob.sigma2}, ridge={prob.ridges[0]}")
    key_cols = [("p2", "p2", ".3g"), ("n_synthetic", "n2", "d"), ("generation", "t", "d")]
    return _finish(command, args, prob, rows, key_cols, sim, title, interrupted, mixing="iterative",
                   generations=gens, theorem=thm, finite_size=prob.finite_size)


def _run_retraining(command, args, prob):
    from . import strong

    if not args.real_weight:
        raise _usage("--mixing retraining needs --real-weight W [W ...] (weights in (0, 1] on the real labels)")
    weights = [_checks.check_fraction("--real-weight", w) for w in args.real_weight]
    if any(w <= 0 for w in weights):
        raise _usage("--real-weight must be > 0 (at w = 0 nothing real is learnt after the first fit)")
    gens = sorted(set(_checks.check_int("--generations", g, minimum=0) for g in args.generations))
    if len(prob.ridges) != 1:
        raise _usage("--mixing retraining takes one --ridge value")
    _ridgeless_theory_only(command, prob, "retraining")
    if prob.finite_size:
        raise _usage("--finite-size has no effect for --mixing retraining (the theory is exact for n >= d + 2); drop it")
    if command != "simulate" and prob.n in (prob.d, prob.d + 1):
        raise _usage(f"--T {prob.n} with d = {prob.d}: the min-norm fit's variance has no closed form at n in "
                     "{d, d+1}; use --T >= d + 2 or --T < d")
    if command != "simulate" and prob.sigma == 0:
        raise _usage("--mixing retraining needs --sigma > 0 (the real labels' noise sets the scale of the result)")
    if args.p2 != [0.2] or args.c2 != 0.5:
        raise _usage("--p2 and --c2 do not apply to --mixing retraining (every iteration uses all n rows twice: "
                     "real labels with weight w, the previous fit's labels with weight 1 - w)")
    keys = [{"real_weight": w, "generation": g} for w in weights for g in gens]
    theory = sim = None
    interrupted = False
    exact = prob.n >= prob.d + 2
    thm = ("retraining recursion E_t = B + g_t(w) V_1 (Garg et al. setting, DERIVED; "
           + ("exact for n >= d + 2)" if exact else "design average by kcollapse's deterministic equivalent, n < d)"))
    rho = (prob.sigma2 / prob.sigma) ** 2
    if command != "simulate":
        W = np.asarray([k["real_weight"] for k in keys])
        G = np.asarray([k["generation"] for k in keys])
        res = strong.retraining_error(prob.spec, prob.n, W, G, label_noise=prob.sigma, synthetic_noise=prob.sigma2)
        total = np.asarray(res.total, dtype=float)
        theory = {"total": total, "bias": np.asarray(res.bias, dtype=float),
                  "variance": np.asarray(res.variance, dtype=float), "collapse": np.zeros_like(total),
                  "theorem": [thm] * len(keys)}
    if command != "theory":
        n_gen = max(gens)
        sim, interrupted = _simulate(args, command, lambda key, s, o, b: strong.simulate_retraining(
            key, prob.spec, prob.n, weights, n_gen, ridge=prob.ridges[0], label_noise=prob.sigma,
            synthetic_noise=prob.sigma2, n_seeds=s, seed_offset=o, batch_size=b, memory_budget=_budget(args)))
        sim = _select(sim, 1, gens)
    rows = _assemble(command, keys, theory, sim)
    title = (f"iterated weighted retraining ({thm}); {args.spectrum} d={prob.d}, n={prob.n}, sigma={prob.sigma}, "
             f"sigma_synthetic={prob.sigma2}, ridge={prob.ridges[0]}")
    key_cols = [("real_weight", "w", ".4g"), ("generation", "t", "d")]
    w_star = float(strong.optimal_real_weight(rho))
    out = _finish(command, args, prob, rows, key_cols, sim, title, interrupted, mixing="retraining",
                  real_weights=weights, generations=gens, theorem=thm, optimal_real_weight=w_star, noise_ratio=rho)
    line = f"optimal real weight w* = {w_star:.6f} (noise ratio {rho:.4g}; (sqrt 5 - 1)/2 = 0.618034 at ratio 1)"
    out["summary_line"] = (out.get("summary_line", "") + "\n" if out.get("summary_line") else "") + line
    if command == "compare":
        out["summary"]["optimal_real_weight"] = w_star
    return out


def _select(sim, axis: int, indices):
    import dataclasses

    name, values = sim.axes[axis]
    axes = list(sim.axes)
    axes[axis] = (name, np.asarray(values)[indices])
    return dataclasses.replace(sim, per_seed=np.take(sim.per_seed, indices, axis=axis + 1), axes=tuple(axes))


def _run_projection(command, args, prob):
    from . import strong

    if not args.width:
        raise _usage("--model random-projection needs --width M [M ...] (numbers of random features)")
    widths = [_checks.check_int("--width", m, minimum=1) for m in args.width]
    if any(r <= 0 for r in prob.ridges):
        raise _usage("--model random-projection needs --ridge > 0 (the paper uses 1e-8; ridge 0 is min-norm, "
                     "whose error has infinite mean at width m = n)")
    if prob.finite_size:
        raise _usage("--finite-size has no effect for --model random-projection; drop it")
    keys, M, P2, R = [], [], [], []
    for m in widths:
        for p, n2 in zip(prob.p2, prob.counts):
            for lam in prob.ridges:
                keys.append({"width": m, "psi": m / prob.n, "p2": p, "n_synthetic": int(n2), "ridge": lam})
                M.append(m)
                P2.append(n2 / prob.n)
                R.append(lam)
    theory = sim = None
    interrupted = False
    thm = "Strong MC Thm 2 (corrected: 1/n in V, p2^2 on the omega' term)"
    if command != "simulate":
        theory = _theory_grid("projection", prob.fixed(), [M, P2, R])
        theory["theorem"] = [thm] * len(keys)
    if command != "theory":
        sim, interrupted = _simulate(args, command, lambda key, s, o, b: strong.simulate_random_projection(
            key, prob.spec, prob.delta, prob.n, widths, prob.p2, prob.ridges, prob.sigma, prob.sigma2, s,
            seed_offset=o, batch_size=b, memory_budget=_budget(args)))
    rows = _assemble(command, keys, theory, sim)
    title = (f"random projections ({thm}); {args.spectrum} d={prob.d}, n={prob.n}, c2={prob.c2}, sigma={prob.sigma}, "
             f"sigma2={prob.sigma2}, Delta {args.strong_delta}")
    key_cols = [("width", "m", "d"), ("psi", "psi=m/n", ".3g"), ("p2", "p2", ".3g"), ("ridge", "ridge", ".4g")]
    return _finish(command, args, prob, rows, key_cols, sim, title, interrupted, widths=widths, theorem=thm)
