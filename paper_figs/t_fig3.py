"""Reproduce A Tale of Tails Fig. 3 (shared/THEORY.md §8, T-Fig3) with the public API only.

Hutter LLM, Zipf beta = 3/2. Exact theory (lines) and sampler simulation (markers ± SEM):

* left: top-k cut, k in {10, 100, 1000, 10000}, with the plateaus P(i > k) ≍ k^{-(beta-1)} (dotted);
* middle: n = 0..5 generations of resampling with T0 = T, with the corrected Thm 2.4 law
  C_beta (T0 phi^(n)(T/T0))^{-c} (dotted; the curves shift right by 1 + n/2, up by (1 + n/2)^c);
* right: grokking, clean fraction pi in {0, 1e-3, 1e-2, 1e-1, 1} mixed with the top-k cut (k = 100),
  with the late-stage asymptotes C_beta (pi T)^{-c} (dotted).

Writes ``t_fig3.png`` and ``t_fig3.json`` (every plotted number) into ``--out-dir``.

    python paper_figs/t_fig3.py [--seeds 200] [--out-dir paper_figs/out] [--quick]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import kcollapse.tails as kt  # noqa: E402
from kcollapse import _io, plotting  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--quick", action="store_true", help="few seeds and simulated points (smoke test)")
    args = ap.parse_args(argv)

    beta, c = 1.5, 1 - 1 / 1.5
    T_line = np.logspace(1, 8, 43)
    T_sim = (10, 100, 1000, 10_000, 100_000)
    gens = list(range(6))
    T_gen_line = np.unique(np.round(np.logspace(np.log10(256), 6, 16)))
    T_gen_sim = (300, 3000, 30_000)
    ks = [10, 100, 1000, 10_000]
    pis = [0.0, 1e-3, 1e-2, 1e-1, 1.0]
    vocab = 1 << 20
    if args.quick:
        T_sim, T_gen_sim, ks, pis, vocab = (10, 1000), (300,), [10, 1000], [0.0, 1e-2, 1.0], 1 << 14
        T_line, T_gen_line = np.logspace(1, 6, 11), np.array([256.0, 2560.0])
        args.seeds = min(args.seeds, 16)
    key = jax.random.key(0)
    seeds = args.seeds

    left = {"k": ks, "T": T_line, "theory": [], "plateau": [], "T_sim": T_sim, "simulation": [], "sem": []}
    for k in ks:
        left["theory"].append(np.asarray(kt.top_k_error(T_line, beta, k)))
        left["plateau"].append(float(kt.tail_mass(k, beta)))
        s = kt.simulate_tails(key, kt.TailsConfig("top-k", beta, T_sim, k=k), seeds, vocab=vocab)
        left["simulation"].append(s.mean[0])
        left["sem"].append(s.sem[0])

    middle = {"generations": gens, "T": T_gen_line, "theory": [], "law": [], "T_sim": T_gen_sim, "simulation": [],
              "sem": []}
    th = np.stack([np.asarray(kt.generations_error([T], int(T), max(gens), beta))[0] for T in T_gen_line])  # T0 = T
    middle["theory"] = th.T
    middle["law"] = np.stack([[float(kt.generations_law(T, T, n, beta)) for T in T_gen_line] for n in gens])
    sims = [kt.simulate_tails(key, kt.TailsConfig("generations", beta, (T,), generator_samples=T,
                                                  n_generations=max(gens)), seeds, vocab=vocab) for T in T_gen_sim]
    middle["simulation"] = np.stack([s.mean[:, 0] for s in sims], axis=1)
    middle["sem"] = np.stack([s.sem[:, 0] for s in sims], axis=1)

    k_grok = 100
    right = {"pi": pis, "k": k_grok, "T": T_line, "theory": [], "asymptote": [], "T_sim": T_sim, "simulation": [],
             "sem": []}
    for pi in pis:
        right["theory"].append(np.asarray(kt.grokking_error(T_line, beta, k_grok, pi)))
        right["asymptote"].append(np.asarray(kt.clean_law(pi * T_line, beta)) if pi > 0 else np.full_like(T_line, np.nan))
        s = kt.simulate_tails(key, kt.TailsConfig("grokking", beta, T_sim, k=k_grok, fraction=pi), seeds, vocab=vocab)
        right["simulation"].append(s.mean[0])
        right["sem"].append(s.sem[0])

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax = axes[0]
    for i, k in enumerate(ks):
        ax.plot(T_line, left["theory"][i], "-", color=colors[i], lw=1.2, label=f"k = {k}")
        ax.axhline(left["plateau"][i], color=colors[i], ls=":", lw=0.8)
        ax.errorbar(T_sim, left["simulation"][i], yerr=left["sem"][i], fmt="o", ms=3, color=colors[i])
    ax.set(title="top-k tail cut (Thm 2.1)")
    ax = axes[1]
    for n in gens:
        ax.plot(T_gen_line, middle["theory"][n], "-", color=colors[n % len(colors)], lw=1.2, label=f"n = {n}")
        ax.plot(T_gen_line, middle["law"][n], ":", color=colors[n % len(colors)], lw=0.8)
        ax.errorbar(T_gen_sim, middle["simulation"][n], yerr=middle["sem"][n], fmt="o", ms=3, color=colors[n % len(colors)])
    ax.set(title="n generations, T0 = T (Thm 2.4, corrected)")
    ax = axes[2]
    for i, pi in enumerate(pis):
        ax.plot(T_line, right["theory"][i], "-", color=colors[i], lw=1.2, label=f"pi = {pi:g}")
        ax.plot(T_line, right["asymptote"][i], ":", color=colors[i], lw=0.8)
        ax.errorbar(T_sim, right["simulation"][i], yerr=right["sem"][i], fmt="o", ms=3, color=colors[i])
    ax.set(title=f"grokking, k = {k_grok} (Thm 3.2)")
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="training samples T")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test error (p-mass of unseen tokens)")
    fig.suptitle(f"A Tale of Tails Fig. 3: Zipf beta = {beta}; exact theory (lines), {seeds} seeds (markers ± SEM), "
                 "asymptotes (dotted)", fontsize=9)
    os.makedirs(args.out_dir, exist_ok=True)
    png = plotting.save_figure(fig, os.path.join(args.out_dir, "t_fig3.png"))
    data = {
        "config": {"beta": beta, "c": c, "seeds": seeds, "vocab": vocab,
                   "test_error": "p-mass of unseen tokens, sum_i p_i (1 - q_i)^T (A Tale of Tails §2.1)"},
        "environment": _io.environment("float64"),
        "left": left, "middle": middle, "right": right,
    }
    path = os.path.join(args.out_dir, "t_fig3.json")
    _io.atomic_write_text(path, _io.dumps(data) + "\n")
    print(f"wrote {png} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
