"""Reproduce Demystified Fig. 1 (shared/THEORY.md §8, D-Fig1) with the public API only.

Isotropic d = 300, T0 = 600, sigma = 0.1, sigma0 = 0.2, generations n in {0, 1, 3, 10}.
Left: test error vs ridge at T = 1000 (U-shapes, optimum moving right with n).
Right: test error vs T at ridge 1e-3 (n >= 1 plateau at n sigma0^2 phi0/(1 - phi0)).
Simulation as markers with ±1 SEM, theory (Thm 4.1 / Cor 4.7) as lines. Writes
``d_fig1.png`` and ``d_fig1.json`` (every plotted number) into ``--out-dir``.

    python paper_figs/d_fig1.py [--seeds 64] [--out-dir paper_figs/out] [--quick]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import kcollapse as kc  # noqa: E402
from kcollapse import _io, plotting  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--quick", action="store_true", help="d = 40, few seeds and points (smoke test)")
    args = ap.parse_args(argv)

    d, T0, T, sigma, sigma0 = 300, 600, 1000, 0.1, 0.2
    ridges = np.logspace(-3, 1, 13)
    Ts = np.unique(np.round(np.logspace(np.log10(330), np.log10(3e4), 8)).astype(int))
    if args.quick:
        d, T0, T, ridges, Ts = 40, 80, 130, np.logspace(-3, 1, 5), np.array([50, 1000])
        args.seeds = min(args.seeds, 16)
    gens = [0, 1, 3, 10]
    spec = kc.spectra.isotropic(d)
    key = jax.random.key(0)

    def config(T_):
        return kc.ChainConfig(samples_per_generation=T0, downstream_samples=int(T_), n_generations=max(gens),
                              generator_noise=sigma0, label_noise=sigma)

    sim_l = kc.simulate_chain(key, spec, config(T), ridges, n_seeds=args.seeds)
    th_l = kc.theory.predict_chain(spec, config(T), ridges)
    right_mean, right_sem, right_th = [], [], []
    for T_ in Ts:
        s = kc.simulate_chain(key, spec, config(T_), [1e-3], n_seeds=args.seeds)
        t = kc.theory.predict_chain(spec, config(T_), [1e-3])
        right_mean.append(s.mean[gens, 0])
        right_sem.append(s.sem[gens, 0])
        right_th.append(t.total[gens, 0])
    right_mean, right_sem, right_th = (np.array(a).T for a in (right_mean, right_sem, right_th))

    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    plotting.plot_error_vs_ridge(ridges, gens, sim_l.mean[gens], sim_l.sem[gens], theory=th_l.total[gens], ax=ax1,
                                 title=f"T = {T}")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, n in enumerate(gens):
        ax2.errorbar(Ts, right_mean[i], yerr=right_sem[i], fmt="o", ms=3, color=colors[i], label=f"n = {n}")
        ax2.plot(Ts, right_th[i], "-", color=colors[i], lw=1.2)
    ax2.set(xscale="log", yscale="log", xlabel="downstream samples T", title="ridge = 1e-3")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle(f"Demystified Fig. 1: isotropic d={d}, T0={T0}, sigma={sigma}, sigma0={sigma0}; "
                 f"{args.seeds} seeds (markers ± SEM), theory (lines)", fontsize=9)
    os.makedirs(args.out_dir, exist_ok=True)
    png = plotting.save_figure(fig, os.path.join(args.out_dir, "d_fig1.png"))
    data = {
        "config": {"d": d, "T0": T0, "T": T, "sigma": sigma, "sigma0": sigma0, "generations": gens,
                   "seeds": args.seeds, "conventions": kc.CONVENTIONS, "theorem": th_l.theorem},
        "environment": _io.environment("float64"),
        "left": {"ridges": ridges, "simulation": sim_l.mean[gens], "sem": sim_l.sem[gens], "theory": th_l.total[gens]},
        "right": {"T": Ts, "ridge": 1e-3, "simulation": right_mean, "sem": right_sem, "theory": right_th},
    }
    path = os.path.join(args.out_dir, "d_fig1.json")
    _io.atomic_write_text(path, _io.dumps(data) + "\n")
    print(f"wrote {png} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
