"""Reproduce Strong Model Collapse Figs. 2 and 4 (shared/THEORY.md §4.5, §8 S-Fig2/4) with the public API.

Random projections ``f(x) = v^T S^T x`` (S: d x m, iid N(0, 1/d)) trained by ridge on n1 = 300 real
and n2 = 200 synthetic samples; d = 600, Sigma_j ∝ 1/j with tr Sigma = 1, w1 with w1_j = 1/sqrt(d)
(the paper draws w1 ~ N(0, I/d); Theorem 2 only sees diag(w1 w1^T) = I/d, which this fixed teacher
has exactly), Delta = (c^2/d) Sigma^{-1}, sigma = 0.1, ridge 1e-8. Test error vs the width m:
left, c^2 in {0, 0.1, 0.5, 1} (Fig. 2); right, p2 in {0.02, 0.1, 0.2, 0.4, 0.6, 0.8} at c^2 = 0.5
(Fig. 4). The error spikes at m = n = 500 (double descent), and grows with c^2 and p2. Theory:
corrected Theorem 2 (lines); simulation: markers ± SEM. Writes ``s_fig2.png`` and ``s_fig2.json``.

    python paper_figs/s_fig2.py [--seeds 8] [--out-dir paper_figs/out] [--quick]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import kcollapse as kc  # noqa: E402
import kcollapse.strong as strong  # noqa: E402
from kcollapse import _io, plotting  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--quick", action="store_true", help="d = 60, n = 50, few widths and seeds (smoke test)")
    args = ap.parse_args(argv)

    d, n, n2, sigma, ridge = 600, 500, 200, 0.1, 1e-8
    widths_sim = np.array([50, 150, 250, 350, 425, 475, 525, 575, 650, 800, 1000])
    widths_th = np.unique(np.r_[np.linspace(10, 1000, 400), 500.0])
    if args.quick:
        d, n, n2, widths_sim, widths_th = 60, 50, 20, np.array([10, 30, 45, 55, 80]), np.linspace(2, 100, 50)
        args.seeds = min(args.seeds, 4)
    widths_th = np.unique(np.r_[widths_th, widths_sim])  # theory also exactly at the simulated widths
    at_sim = np.searchsorted(widths_th, widths_sim)
    lam = 1.0 / np.arange(1, d + 1)
    lam /= lam.sum()
    spec = kc.spectra.from_arrays(lam, np.full(d, 1 / np.sqrt(d)), normalize=False)
    key = jax.random.key(0)
    c2s = [0.0, 0.1, 0.5, 1.0]
    p2s = [0.02, 0.1, 0.2, 0.4, 0.6, 0.8]

    def theory(c2, p2):
        D = strong.mismatch_covariance(spec, c2)
        f = jax.jit(jax.vmap(lambda m: strong.random_projection_error(spec, D, n, m, p2, ridge, sigma).total))
        return np.asarray(f(widths_th))

    left = {"c2": c2s, "theory": [], "simulation": [], "sem": []}
    for c2 in c2s:
        sim = strong.simulate_random_projection(key, spec, strong.mismatch_covariance(spec, c2), n, widths_sim, [n2 / n],
                                                [ridge], sigma, n_seeds=args.seeds)
        left["theory"].append(theory(c2, n2 / n))
        left["simulation"].append(sim.mean[:, 0, 0])
        left["sem"].append(sim.sem[:, 0, 0])
    D = strong.mismatch_covariance(spec, 0.5)
    sim = strong.simulate_random_projection(key, spec, D, n, widths_sim, p2s, [ridge], sigma, n_seeds=args.seeds)
    p2_real = sim.axis("synthetic_fraction")
    right = {"p2": p2_real, "theory": [theory(0.5, p) for p in p2_real], "simulation": sim.mean[:, :, 0].T,
             "sem": sim.sem[:, :, 0].T}

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel, label, values in ((axes[0], left, "c^2", c2s), (axes[1], right, "p2", p2_real)):
        for i, v in enumerate(values):
            ax.plot(widths_th, panel["theory"][i], "-", color=colors[i % len(colors)], lw=1.2)
            ax.errorbar(widths_sim, panel["simulation"][i], yerr=panel["sem"][i], fmt="o", ms=3,
                        color=colors[i % len(colors)], label=f"{label} = {v:g}")
        ax.axvline(n, color="gray", ls=":", lw=1)
        ax.set(yscale="log", xlabel="width m (random features)", ylabel="test error ||w - w1||_Sigma^2")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_title(f"Fig. 2: n1 = {n - n2}, n2 = {n2}", fontsize=9)
    axes[1].set_title(f"Fig. 4: n = {n}, c^2 = 0.5", fontsize=9)
    fig.suptitle(f"Strong Model Collapse, random projections: d={d}, Sigma_j ∝ 1/j, ridge {ridge:g}; "
                 f"{args.seeds} seeds (markers ± SEM), corrected Theorem 2 (lines)", fontsize=9)
    for panel in (left, right):  # per-point agreement at the simulated widths
        th = np.asarray(panel["theory"])[:, at_sim]
        panel["theory_at_simulation_widths"] = th
        panel["z"] = (np.asarray(panel["simulation"]) - th) / np.asarray(panel["sem"])
    print(f"max |z|: Fig. 2 panel {np.max(np.abs(left['z'])):.2f}, Fig. 4 panel {np.max(np.abs(right['z'])):.2f} "
          f"({args.seeds} seeds)")
    os.makedirs(args.out_dir, exist_ok=True)
    png = plotting.save_figure(fig, os.path.join(args.out_dir, "s_fig2.png"))
    data = {
        "config": {"d": d, "n": n, "n2_left": n2, "sigma": sigma, "ridge": ridge, "seeds": args.seeds,
                   "spectrum": "lambda_j = C/j, tr Sigma = 1", "teacher": "w1_j = 1/sqrt(d)", "delta": "inverse",
                   "theorem": "Strong MC Thm 2 (corrected)",
                   "conventions": {**kc.CONVENTIONS, **strong.STRONG_CONVENTIONS}},
        "environment": _io.environment("float64"),
        "widths_theory": widths_th, "widths_simulation": widths_sim, "left": left, "right": right,
    }
    path = os.path.join(args.out_dir, "s_fig2.json")
    _io.atomic_write_text(path, _io.dumps(data) + "\n")
    print(f"wrote {png} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
