"""CLI for ``--model tails``: the Zipf/Hutter model of A Tale of Tails (shared/THEORY.md §5).

``kcollapse {theory,simulate,compare} --model tails --tail-scenario S ...``; see ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import numpy as np

from . import _checks
from ._conventions import CONVENTIONS

__all__ = ["add_args", "run"]

_SCENARIOS = ("clean", "top-k", "narrow", "grokking", "narrow-mix", "buy-tail", "real-plus-ai", "generations", "bigram",
              "bigram-top-k", "memory")

#: flag -> scenarios it applies to
_FLAG_SCENARIOS = {
    "--tail-k": ("top-k", "grokking", "buy-tail", "real-plus-ai", "generations", "bigram-top-k", "memory"),
    "--tail-start": ("buy-tail",),
    "--tail-beta-ai": ("narrow", "narrow-mix", "generations"),
    "--tail-temperature": ("narrow", "narrow-mix", "generations"),
    "--tail-fraction": ("grokking", "narrow-mix", "buy-tail", "generations"),
    "--tail-real-samples": ("real-plus-ai",),
    "--tail-memory-dim": ("memory",),
    "--tail-memory-labels": ("memory",),
    "--tail-memory-rule": ("memory",),
    "--tail-memory-capacity": ("memory",),
    "--tail-memory-vocab": ("memory",),
}
_REQUIRED = {
    "top-k": ("--tail-k",), "grokking": ("--tail-k", "--tail-fraction"), "buy-tail": ("--tail-k", "--tail-start"),
    "real-plus-ai": ("--tail-k", "--tail-real-samples"), "narrow-mix": ("--tail-fraction",),
    "bigram-top-k": ("--tail-k",),
}

TAILS_CONVENTIONS = {
    "model": "Hutter LLM (A Tale of Tails, arXiv:2402.07043v2 §2.1): memorises the tokens seen in training, "
    "abstains otherwise",
    "real_law": "p_i = i^-beta / zeta(beta), i = 1, 2, ... (infinite vocabulary)",
    "test_error": "p-mass of the tokens not seen in training = sum_i p_i (1 - q_i)^T for T iid draws from q",
    "theory": "exact expectation on the infinite vocabulary (explicit sum + Euler-Maclaurin tail, rel. error < 1e-10)",
    "simulation": "T tokens drawn by inverse CDF on 1..N (N = --zipf-vocab), tokens > N never learned: the "
    "simulated mean is biased up by at most truncation_bound",
    "bigram": "bigram scenarios (Hutter++, §4): contexts i ~ p, next token j ~ Zipf(beta) relabelled per context; "
    "error sum_i p_i E TV(q_T(.|i), p(.|i)), TV = sum_j (p_j - q_j)_+; an unseen context (T_i = 0) has TV = 1 "
    "(abstains); exact theory sum_i p_i E f(Bin(T, p_i)) with De Moivre's binomial absolute deviation",
    "sem": CONVENTIONS["sem"],
    "z": "(simulation - theory)/max(sem, sem_bound, 1e-12); sem_bound = sqrt(sum_i p_i^2 u_i (1 - u_i)/seeds), u_i = "
    "P(token i unseen), bounds the true SEM (unseen indicators are negatively associated); it matters where no seed "
    "misses a rare token (plateaus), so the sample SEM is 0; 1e-12 is the float64 round-off floor. sem_bound is "
    "not available (null) for generations n >= 1",
}


def _size(text: str) -> int:
    """A training size: an integer, also written as ``1e6``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (an integer such as 1000 or 1e6)") from None
    if not (math.isfinite(value) and value.is_integer()):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (an integer such as 1000 or 1e6)")
    return int(value)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the tails flags (all ``--zipf-*``/``--tail-*``) in their own argument group."""
    g = parser.add_argument_group(
        "tails model (--model tails; A Tale of Tails, shared/THEORY.md §5). Uses the shared --T (or --tail-T), "
        "--T0 and --generations (scenario 'generations' only), --seeds, --seed, --json, --out, --csv, --quiet")
    g.add_argument("--tail-scenario", choices=_SCENARIOS, default="clean",
                   help="training data of the Hutter LLM: clean (T draws from p); top-k (p cut at --tail-k, Thm 2.1); "
                   "narrow (Zipf(beta') with beta' = --tail-beta-ai or beta/--tail-temperature, Cor 2.3); "
                   "grokking (fraction pi of p + top-k, Thm 3.2); narrow-mix (pi p + narrowed, Thm C.2); "
                   "buy-tail (top-k AI data + real data on i >= --tail-start, Thm 3.1); real-plus-ai "
                   "(--tail-real-samples clean draws + T top-k draws, Cor 3.3); generations (T draws from the n-th "
                   "empirical resampling of --T0 tokens, n in --generations; Cor 2.2 / Thm 2.4; the chain starts from p, or from "
                   "the top-k cut with --tail-k, the narrowed law with --tail-beta-ai/--tail-temperature, mixed with "
                   "p by --tail-fraction); bigram (Hutter++: T (context, next token) pairs, TV error of the empirical "
                   "conditionals, Thm 4.1); bigram-top-k (next tokens from the k-head of each conditional, Thm 4.2); "
                   "memory (associative memory of Cabannes et al., Thm 5.1: --tail-memory-dim, --tail-memory-labels, "
                   "--tail-memory-rule, optional --tail-k cut of the training data; --tail-T 0 means T -> inf) "
                   "(default: clean)")
    g.add_argument("--zipf-beta", type=float, default=1.5, metavar="BETA",
                   help="Zipf exponent beta > 1 of the real law p_i ∝ i^-beta (default: 1.5)")
    g.add_argument("--tail-T", type=_size, nargs="+", default=None, metavar="T",
                   help="grid of training sizes T (AI draws for real-plus-ai); default: the single --T")
    g.add_argument("--tail-k", type=int, default=None, metavar="K", help="top-k cut-off k of the AI law")
    g.add_argument("--tail-beta-ai", type=float, default=None, metavar="BETA_AI",
                   help="exponent beta' > 1 of the narrowed AI law (narrow, narrow-mix)")
    g.add_argument("--tail-temperature", type=float, default=None, metavar="TAU",
                   help="temperature tau: beta' = beta/tau (tau < 1 narrows the tail); instead of --tail-beta-ai")
    g.add_argument("--tail-fraction", type=float, default=None, metavar="PI",
                   help="clean fraction pi in [0, 1] of every draw (grokking, narrow-mix; buy-tail: weight of the "
                   "tail data, default P(i >= start))")
    g.add_argument("--tail-start", type=int, default=None, metavar="N", help="first index of the bought real tail (buy-tail)")
    g.add_argument("--tail-real-samples", type=_size, default=None, metavar="T_REAL",
                   help="clean draws in every training set (real-plus-ai)")
    g.add_argument("--tail-memory-dim", type=int, default=None, metavar="D",
                   help="memory: embedding dimension d (default: 256)")
    g.add_argument("--tail-memory-labels", type=str, default=None, metavar="M",
                   help="memory: number of labels m >= 2, one random label per token (default: 5); 'token' (or "
                   "'N') for one label per token, y(i) = i with m = N output embeddings (capped default capacity "
                   "then ceil(d^2/(16 ln N)))")
    g.add_argument("--tail-memory-rule", choices=("counting", "seen", "capped"), default=None,
                   help="memory: q(i) = count (counting), 1[seen] (seen), or 1[among the --tail-memory-capacity most "
                   "frequent seen] (capped, Cabannes et al.'s optimal scheme) (default: counting)")
    g.add_argument("--tail-memory-capacity", type=int, default=None, metavar="C",
                   help="memory, capped rule: stored tokens (default: ceil(d/log d); with --tail-memory-labels "
                   "token: min(N, ceil(d^2/(16 ln N))))")
    g.add_argument("--tail-memory-vocab", type=int, default=None, metavar="N",
                   help="memory: vocabulary N; p is Zipf truncated at N and renormalised (default: 4096)")
    g.add_argument("--zipf-vocab", type=int, default=1 << 20, metavar="N",
                   help="simulator vocabulary N; tokens > N are drawn as one never-learned outcome, which biases the "
                   "simulated mean up by at most the reported truncation_bound (default: 2^20)")


def _given(args: argparse.Namespace, flag: str) -> bool:
    return getattr(args, flag.lstrip("-").replace("-", "_")) is not None


def build_config(args: argparse.Namespace):
    """Validate the tails flags and build the :class:`~kcollapse.tails.TailsConfig`."""
    from .cli import UsageError
    from .tails import TailsConfig

    sc = args.tail_scenario
    beta = _checks.check_positive_float("--zipf-beta", args.zipf_beta)
    if not beta > 1:
        raise UsageError(f"--zipf-beta must be > 1 (a normalisable Zipf law), got {beta}")
    for flag, scenarios in _FLAG_SCENARIOS.items():
        if _given(args, flag) and sc not in scenarios:
            raise UsageError(f"{flag} does not apply to --tail-scenario {sc} (only to {', '.join(scenarios)})")
    for flag in _REQUIRED.get(sc, ()):
        if not _given(args, flag):
            raise UsageError(f"--tail-scenario {sc} needs {flag}")
    if sc in ("narrow", "narrow-mix") and _given(args, "--tail-beta-ai") == _given(args, "--tail-temperature"):
        raise UsageError(f"--tail-scenario {sc} needs exactly one of --tail-beta-ai or --tail-temperature")
    if sc == "generations":
        cut = [f for f in ("--tail-k", "--tail-beta-ai", "--tail-temperature") if _given(args, f)]
        if len(cut) > 1:
            raise UsageError(f"--tail-scenario generations starts from one law: give one of {', '.join(cut)}")
        if _given(args, "--tail-fraction") and not cut:
            raise UsageError("--tail-fraction with --tail-scenario generations mixes p with a cut or narrowed start "
                             "law: give --tail-k, --tail-beta-ai or --tail-temperature too")
    sizes = args.tail_T if args.tail_T is not None else [args.T]
    for T in sizes:
        _checks.check_int("--tail-T" if args.tail_T is not None else "--T", T, minimum=1)
    kw: dict[str, Any] = {}
    if args.tail_k is not None:
        kw["k"] = _checks.check_int("--tail-k", args.tail_k, minimum=1)
    if args.tail_start is not None:
        kw["start"] = _checks.check_int("--tail-start", args.tail_start, minimum=1)
    if args.tail_fraction is not None:
        kw["fraction"] = _checks.check_fraction("--tail-fraction", args.tail_fraction)
    if args.tail_temperature is not None:
        tau = _checks.check_positive_float("--tail-temperature", args.tail_temperature)
        kw["beta_ai"] = beta / tau
        if not kw["beta_ai"] > 1:
            raise UsageError(f"--tail-temperature {tau} gives beta' = beta/tau = {kw['beta_ai']:.4g} <= 1; need tau < beta")
    if args.tail_beta_ai is not None:
        kw["beta_ai"] = _checks.check_positive_float("--tail-beta-ai", args.tail_beta_ai)
        if not kw["beta_ai"] > 1:
            raise UsageError(f"--tail-beta-ai must be > 1, got {kw['beta_ai']}")
    if args.tail_real_samples is not None:
        kw["real_samples"] = _checks.check_int("--tail-real-samples", args.tail_real_samples, minimum=1)
    generations = [0]
    if sc == "generations":
        for n in args.generations:
            _checks.check_int("--generations", n, minimum=0)
        generations = sorted(set(args.generations))
        kw["generator_samples"] = _checks.check_int("--T0", args.T0, minimum=1)
        kw["n_generations"] = max(generations)
    cfg = TailsConfig(scenario=sc, beta=beta, sample_sizes=tuple(int(t) for t in sizes), **kw).validate()
    return cfg, generations


def _config_dict(args, cfg, **extra) -> dict[str, Any]:
    out = {"scenario": cfg.scenario, "theorem": cfg.theorem, **cfg.as_dict(), "conventions": dict(TAILS_CONVENTIONS)}
    out.update(extra)
    return out


def run(command: str, args: argparse.Namespace) -> dict:
    """``simulate``/``theory``/``compare`` for ``--model tails`` (layout: kcollapse.cli.MODEL_MODULES)."""
    import jax

    from .cli import UsageError
    from .tails import predict_tails, simulate_tails

    if args.tail_scenario == "memory":
        return _run_memory(command, args)
    cfg, generations = build_config(args)
    if command == "theory":
        try:
            th = predict_tails(cfg)
        except ValueError as e:
            raise UsageError(str(e)) from None
        rows = [{"n": int(n), "T": int(T), "test_error": float(th.total[n, j]),
                 "leading_order": float(th.leading_order[n, j]), "theorem": th.theorem}
                for n in generations for j, T in enumerate(cfg.sample_sizes)]
        return {
            "config": _config_dict(args, cfg, leading_order_law=th.law),
            "results": rows,
            "columns": [("n", "n", "d"), ("T", "T", "d"), ("test_error", "exact", ".6g"),
                        ("leading_order", "leading order", ".6g")],
            "title": f"{th.theorem}; exact sum_i p_i (1 - q_i)^T, beta={cfg.beta:g}",
            "summary_line": f"leading order: {th.law}",
        }
    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2 if command == "compare" else 1)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    vocab = _checks.check_int("--zipf-vocab", args.zipf_vocab, minimum=16)
    batch = None if args.batch_size is None else _checks.check_int("--batch-size", args.batch_size, minimum=1)
    budget = int(_checks.check_positive_float("--memory-budget-mb", args.memory_budget_mb) * 2**20)
    th = None
    if command == "compare":
        try:
            th = predict_tails(cfg)  # fail fast, before simulating
        except ValueError as e:
            raise UsageError(str(e)) from None
    try:
        sim = simulate_tails(jax.random.key(seed), cfg, n_seeds, vocab=vocab, batch_size=batch, memory_budget=budget)
    except ValueError as e:
        raise UsageError(str(e).replace("vocab=", "--zipf-vocab ").replace("pass vocab", "pass --zipf-vocab")) from None
    arrays = {"sample_sizes": sim.sample_sizes, "generations": sim.generations, "test_error_per_seed": sim.per_seed,
              "seed_indices": sim.seed_indices, "truncation_bound": sim.truncation_bound}
    extra = dict(seeds=n_seeds, seed=seed, vocab=vocab)
    if command == "simulate":
        rows = [{"n": int(n), "T": int(T), "test_error": float(sim.mean[n, j]), "sem": float(sim.sem[n, j]),
                 "seeds": n_seeds, "truncation_bound": float(sim.truncation_bound[j])}
                for n in generations for j, T in enumerate(cfg.sample_sizes)]
        return {
            "config": _config_dict(args, cfg, **extra),
            "results": rows,
            "columns": [("n", "n", "d"), ("T", "T", "d"), ("test_error", "test_error", ".6g"), ("sem", "sem", ".2g"),
                        ("seeds", "seeds", "d")],
            "title": f"{cfg.theorem}; beta={cfg.beta:g}, {n_seeds} seeds, vocabulary N={vocab}",
            "arrays": arrays,
        }
    rows = []
    for n in generations:
        for j, T in enumerate(cfg.sample_sizes):
            theo, s, e = float(th.total[n, j]), float(sim.mean[n, j]), float(sim.sem[n, j])
            bound = float(th.per_seed_sd_bound[n, j]) / math.sqrt(n_seeds)
            used = max(e if math.isnan(bound) else max(e, bound), 1e-12)
            z = (s - theo) / used
            rel = (s - theo) / abs(theo) if theo != 0 else (0.0 if s == 0 else math.inf)
            rows.append({"n": int(n), "T": int(T), "theory": theo, "simulation": s, "sem": e,
                         "sem_bound": None if math.isnan(bound) else bound, "z": z,
                         "relative_gap": rel, "seeds": n_seeds, "truncation_bound": float(sim.truncation_bound[j]),
                         "leading_order": float(th.leading_order[n, j])})
    max_z = max(abs(r["z"]) for r in rows)
    max_rel = max(abs(r["relative_gap"]) for r in rows)
    summary = {"max_abs_z": max_z, "max_abs_relative_gap": max_rel, "points": len(rows),
               "max_truncation_bound": float(np.max(sim.truncation_bound))}
    return {
        "config": _config_dict(args, cfg, leading_order_law=th.law, **extra),
        "results": rows,
        "summary": summary,
        "columns": [("n", "n", "d"), ("T", "T", "d"), ("theory", "theory", ".6g"), ("simulation", "simulation", ".6g"),
                    ("sem", "± sem", ".2g"), ("z", "z", "+.2f"), ("relative_gap", "rel. gap", "+.2%")],
        "title": f"{cfg.theorem}; beta={cfg.beta:g}, {n_seeds} seeds, vocabulary N={vocab}",
        "summary_line": (f"summary: max |z| = {max_z:.2f}, max |relative gap| = {max_rel:.2%} over {len(rows)} points "
                         f"(truncation bias <= {np.max(sim.truncation_bound):.1e})"),
        "arrays": {**arrays, "theory": th.total},
    }


MEMORY_CONVENTIONS = {
    "model": "associative memory of Cabannes, Dohmatob, Bietti (arXiv:2310.02984): W = sum_i q(i) u_y(i) e_i^T, "
    "e_i, u_y ~ N(0, I_d/d), prediction argmax_y u_y^T W e_i; A Tale of Tails Thm 5.1 (arXiv:2402.07043v2 §5)",
    "real_law": "p_i = i^-beta / H_N(beta), i = 1..N (Zipf truncated at N = --tail-memory-vocab and renormalised)",
    "labels": "y(i) uniform on {1..m}, drawn once per token and seed (m = --tail-memory-labels)",
    "test_error": "sum_i p_i 1[f(i) != y(i)], exact over the vocabulary; Monte Carlo over labels, embeddings, data",
    "rules": "counting q(i) = n_i; seen q(i) = 1[n_i > 0]; capped q(i) = 1[i among the C most frequent seen] "
    "(random tie-break); T -> inf (--tail-T 0): counts replaced by the training law",
    "simulation": "unstored tokens (q(i) = 0) are counted with their exact error probability 1 - 1/m "
    "(Rao-Blackwell; their prediction is independent of their label)",
    "theory": "noise_free_limit: exact d -> inf error (1 - 1/m) sum_i p_i P(i not stored) (counting/seen; capped at "
    "T -> inf); the finite-d simulation lies above it by the recall errors (excess, z = excess/sem). "
    "leading_order: Thm 5.1 law T^-(1-1/beta) + d^-c_q + k^-(beta-1) with unit constants (only the exponents "
    "are meaningful; c_q = (1-1/beta)/2 counting, beta-1 capped up to a log, none for seen)",
    "sem": CONVENTIONS["sem"],
}


TOKEN_MEMORY_CONVENTIONS = {
    "labels": "one label per token (--tail-memory-labels token): y(i) = i, m = N, output embeddings u_1..u_N",
    "simulation": "scores S = U (U^T diag(q) E) E^T over all N labels in blocks of token columns; an unstored token x "
    "counts with its exact conditional error 1 - 1[argmax in U]/|U| (U = unstored labels; Rao-Blackwell)",
    "theory": "noise_free_limit: d -> inf error P(i > s)(1 - 2^-s/(N - s)) at T -> inf (s stored tokens); finite T "
    "(counting/seen): sum_i p_i (1 - q_i)^T, within 1/(2(N-1)) above the limit. leading_order: T^-(1-1/beta) + "
    "d^-c_q + k^-(beta-1), c_q = (1-1/beta)/2 counting (unchanged at m = N), 2(beta-1) capped (capacity "
    "d^2/(16 ln N); the ln N is not in the law); measured, docs/notes/tails.md §9",
}


def _run_memory(command: str, args: argparse.Namespace) -> dict:
    """``--tail-scenario memory``: the associative memory of Thm 5.1 (kcollapse.tails._memory)."""
    import jax

    from .cli import UsageError
    from .tails._memory import MemoryConfig, memory_law, memory_limit_error, simulate_memory, token_limit_error

    for flag, scenarios in _FLAG_SCENARIOS.items():
        if _given(args, flag) and "memory" not in scenarios:
            raise UsageError(f"{flag} does not apply to --tail-scenario memory (only to {', '.join(scenarios)})")
    beta = _checks.check_positive_float("--zipf-beta", args.zipf_beta)
    if not beta > 1:
        raise UsageError(f"--zipf-beta must be > 1 (a normalisable Zipf law), got {beta}")
    def flag(name, default, minimum):
        value = getattr(args, "tail_memory_" + name)
        return _checks.check_int("--tail-memory-" + name, default if value is None else value, minimum=minimum)

    raw_labels = args.tail_memory_labels
    label_map = "token" if raw_labels is not None and raw_labels.strip().lower() in ("token", "n") else "random"
    dim, vocab = flag("dim", 256, 1), flag("vocab", 4096, 2)
    if label_map == "token":
        labels = vocab
    else:
        try:
            labels = 5 if raw_labels is None else int(raw_labels)
        except ValueError:
            raise UsageError(f"--tail-memory-labels must be an integer m >= 2, or 'token' / 'N' for one label per "
                             f"token, got {raw_labels!r}") from None
        labels = _checks.check_int("--tail-memory-labels", labels, minimum=2)
    rule = args.tail_memory_rule or "counting"
    capacity = None
    if args.tail_memory_capacity is not None:
        if rule != "capped":
            raise UsageError("--tail-memory-capacity applies only to --tail-memory-rule capped")
        capacity = _checks.check_int("--tail-memory-capacity", args.tail_memory_capacity, minimum=1)
    k = None if args.tail_k is None else _checks.check_int("--tail-k", args.tail_k, minimum=1)
    if k is not None and k > vocab:
        raise UsageError(f"--tail-k {k} exceeds --tail-memory-vocab {vocab}; lower --tail-k or raise "
                         "--tail-memory-vocab")
    sizes = args.tail_T if args.tail_T is not None else [args.T]
    for T in sizes:
        _checks.check_int("--tail-T" if args.tail_T is not None else "--T", T, minimum=0)
    Ts = [None if int(T) == 0 else int(T) for T in sizes]
    base = MemoryConfig(beta=beta, dim=dim, n_labels=labels, vocab=vocab, rule=rule, k=k, capacity=capacity,
                        label_map=label_map)
    base.validate()
    theorem = "Tale of Tails Thm 5.1 (associative memory, triplet law)"
    conventions = dict(MEMORY_CONVENTIONS)
    if label_map == "token":
        conventions.update(TOKEN_MEMORY_CONVENTIONS)
    config = {"scenario": "memory", "theorem": theorem, "beta": beta, "dim": dim, "n_labels": labels,
              "label_map": label_map, "vocab": vocab,
              "rule": rule, "k": k, "capacity": base.stored_capacity if rule == "capped" else None,
              "sample_sizes": [0 if T is None else T for T in Ts], "conventions": conventions}

    def limit(T):
        if label_map == "token":
            if rule == "capped":
                return math.nan if T is not None else float(token_limit_error(beta, vocab, k=k,
                                                                              capacity=base.stored_capacity))
            return float(token_limit_error(beta, vocab, sample_size=T, k=k))
        if rule == "capped":
            if T is not None:
                return math.nan
            return float(memory_limit_error(beta, labels, vocab, k=k, capacity=base.stored_capacity))
        return float(memory_limit_error(beta, labels, vocab, sample_size=T, k=k))

    def law(T):
        if rule == "seen":
            return math.nan
        return float(memory_law(math.inf if T is None else T, dim, math.inf if k is None else k, beta, rule,
                                label_map))

    def token_slack(T):
        """Largest amount by which a finite-d error may lie below the m = N limit (unstored labels winning)."""
        if T is not None:
            return 1.0 / (2.0 * (vocab - 1)) + 1.0 / max(1, vocab - T)  # |U| >= N - T
        s = min(vocab, k or vocab, base.stored_capacity if rule == "capped" else vocab)
        return 0.0 if s >= vocab else float(limit(T)) / (1.0 - 2.0 ** (-s) / (vocab - s)) / (vocab - s)

    if command == "theory":
        rows = [{"T": 0 if T is None else T, "noise_free_limit": limit(T), "leading_order": law(T)} for T in Ts]
        return {"config": config, "results": rows,
                "columns": [("T", "T (0 = inf)", "d"), ("noise_free_limit", "d->inf limit", ".6g"),
                            ("leading_order", "leading order", ".6g")],
                "title": f"{theorem}; rule={rule}, beta={beta:g}, d={dim}, m={labels}, N={vocab}",
                "summary_line": "noise_free_limit is exact (d -> inf); leading_order has unit constants"}
    n_seeds = _checks.check_int("--seeds", args.seeds, minimum=2)
    seed = _checks.check_int("--seed", args.seed, minimum=0)
    key = jax.random.key(seed)
    rows = []
    per_seed = []
    for j, T in enumerate(Ts):
        sim = simulate_memory(jax.random.fold_in(key, j), dataclasses.replace(base, sample_size=T), n_seeds)
        per_seed.append(sim.per_seed)
        row = {"T": 0 if T is None else T, "simulation": sim.mean, "sem": sim.sem, "seeds": n_seeds}
        if command == "compare":
            lim = limit(T)
            excess = sim.mean - lim
            # one label per token: finite d may sit below the limit by up to `slack` (docs/notes/tails.md §9)
            slack = token_slack(T) if label_map == "token" else 0.0
            z = excess / max(sim.sem, slack, 1e-12) if lim == lim else math.nan
            row.update(noise_free_limit=lim, excess=excess, z=z, leading_order=law(T))
            if label_map == "token":
                row["slack"] = slack
        rows.append(row)
    cols = [("T", "T (0 = inf)", "d"), ("simulation", "simulation", ".6g"), ("sem", "± sem", ".2g")]
    out = {"config": {**config, "seeds": n_seeds, "seed": seed}, "results": rows,
           "title": f"{theorem}; rule={rule}, beta={beta:g}, d={dim}, m={labels}, N={vocab}, {n_seeds} seeds",
           "arrays": {"test_error_per_seed": np.stack(per_seed)}}
    if command == "compare":
        cols += [("noise_free_limit", "d->inf limit", ".6g"), ("excess", "excess", ".3g"), ("z", "z", "+.2f"),
                 ("leading_order", "leading order", ".6g")]
        out["summary_line"] = ("excess = simulation - exact d -> inf limit = recall errors at finite d (>= 0 in "
                               "expectation); leading order has unit constants")
        if label_map == "token":
            cols.insert(-1, ("slack", "slack", ".2g"))
            out["summary_line"] = ("excess = simulation - d -> inf limit: recall errors at finite d, minus at most "
                                   "`slack` = P(unstored)/|U| (an unstored label can win more often than in the limit); "
                                   "z = excess/max(sem, slack); leading order has unit constants")
    out["columns"] = cols
    return out
