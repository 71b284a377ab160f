"""Recursive Gaussian refitting (shared/THEORY.md §8, Sh-Gaussian) with the public API only.

Left: log(sigma_g^2/sigma^2) over generations -- a few chains, the simulated mean, and the exact
mean +- 2 sd of the random walk (replace, M in {10, 100}; Shumailov et al.) next to accumulate
(M = 10; Kazdan et al.), which stops drifting. Right: E W2^2 to the truth vs g: exact formulas as
lines, Shumailov's (3/2) g/M as dashes, simulation (mean +- SEM) as markers where the Monte-Carlo
mean is reliable (``compare_refit``'s heavy-tail rule); accumulate stays bounded. Writes
``g_fig_shumailov.png`` and ``g_fig_shumailov.json`` (every plotted number) into ``--out-dir``.

    python paper_figs/g_fig_shumailov.py [--chains 2000] [--out-dir paper_figs/out] [--quick]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from kcollapse import _io, plotting  # noqa: E402
from kcollapse import gaussian as kg  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=2000)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--quick", action="store_true", help="200 generations, 200 chains (smoke test)")
    args = ap.parse_args(argv)

    g_max = 200 if args.quick else 1000
    chains = min(args.chains, 200) if args.quick else args.chains
    gens = np.unique(np.round(np.logspace(0, np.log10(g_max), 25)).astype(int))
    cases = [("replace", 10), ("replace", 100), ("accumulate", 10)]
    key = jax.random.key(0)
    out = {"generations": gens, "chains": chains, "cases": []}

    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {("replace", 10): "C3", ("replace", 100): "C0", ("accumulate", 10): "C2"}
    for mode, M in cases:
        cfg = kg.RefitConfig(samples_per_generation=M, n_generations=g_max, mode=mode)
        th = kg.refit_theory(cfg, gens)
        sim = kg.simulate_refit(key, cfg, gens, chains)
        rows, summary = kg.compare_refit(th, sim)
        reliable_w2 = np.array([r["reliable"] for r in rows if r["quantity"] == "w2_sq" and r["kind"] == "exact"])
        label = f"{mode}, M={M} ({cfg.estimator})"
        c = colors[(mode, M)]
        logv = sim.values("log_det_change")
        for i in range(3):
            ax1.plot(gens, logv[i], color=c, lw=0.6, alpha=0.4)
        ax1.plot(gens, th.values["log_det_change"], color=c, lw=2, label=label + ": exact mean")
        if "log_det_change_var" in th.values:
            sd = np.sqrt(th.values["log_det_change_var"])
            ax1.fill_between(gens, th.values["log_det_change"] - 2 * sd, th.values["log_det_change"] + 2 * sd,
                             color=c, alpha=0.15)
        ax1.plot(gens, sim.mean("log_det_change"), "o", color=c, ms=3)
        ax2.plot(gens, th.values["w2_sq"], color=c, lw=2, label=label)
        if "w2_sq_second_order" in th.values:
            ax2.plot(gens, th.values["w2_sq_second_order"], "--", color=c, lw=1)
        m, s = sim.mean("w2_sq"), sim.sem("w2_sq")
        ax2.errorbar(gens[reliable_w2], m[reliable_w2], yerr=s[reliable_w2], fmt="o", color=c, ms=3)
        out["cases"].append({
            "mode": mode, "M": M, "estimator": cfg.estimator, "summary": summary,
            "theory": {k: th.values[k] for k in ("log_det_change", "w2_sq") + (
                ("log_det_change_var", "w2_sq_second_order") if mode == "replace" else ())},
            "simulation": {"log_det_change": sim.mean("log_det_change"), "log_det_change_sem": sim.sem("log_det_change"),
                           "w2_sq": m, "w2_sq_sem": s, "w2_sq_reliable": reliable_w2},
        })
    ax1.set(xscale="log", xlabel="generation g", ylabel="log(sigma_g^2 / sigma^2)",
            title="log sigma_g^2 (band: exact mean +- 2 sd)")
    ax1.legend(fontsize=7)
    ax2.set(xscale="log", yscale="log", xlabel="generation g", ylabel="E W2^2 to the truth",
            title="E W2^2: exact, (3/2) g/M dashed, simulation dots")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.title.set_fontsize(9)
    fig.suptitle("Recursive Gaussian refitting: Shumailov et al. (replace) vs Kazdan et al. (accumulate)", fontsize=10)
    os.makedirs(args.out_dir, exist_ok=True)
    png = plotting.save_figure(fig, os.path.join(args.out_dir, "g_fig_shumailov.png"))
    jpath = os.path.join(args.out_dir, "g_fig_shumailov.json")
    _io.atomic_write_text(jpath, _io.dumps(out) + "\n")
    print(f"wrote {png} and {jpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
