"""Reproduce Demystified Fig. 2 (shared/THEORY.md §8, D-Fig2) with fitted scaling exponents, public API only.

Power law beta = 2, r = 0.375 (ell_crit = 0.8, c = 0.6), d = 300, T0 = 600, sigma = sigma0 = 1,
generations n in {0, 1, 2, 5}.

Left: test error vs ridge at T = 1e4 (U-shapes; the theory optimum lambda*(n), marked, moves right with n).
Right: test error vs T in [1e2, 1e5] under the classical schedule lambda = T^-ell_crit ("crit": n = 0
decreases like T^-c, n >= 1 eventually increase like T^(1-c), Theorem 5.2) and under
lambda = T^-(b ell_crit) = T0^-ell_crit ("b_crit", regularising as if only the T0 real samples were
available: the curves decrease to a plateau). Simulation as markers ± SEM, theory (Cor 4.7) as lines.
Each "crit" curve gets a power-law fit (kcollapse.scaling.fit_power_law, SEM-weighted) over
--fit-window, compared with the Theorem 5.2 / Corollary 5.3 slope.

Writes ``d_fig2.png`` and ``d_fig2.json`` into ``--out-dir``. The JSON's "results" rows
(schedule, T, n, ridge, test_error, sem, seeds, theory) are what ``kcollapse fit-scaling`` reads::

    python paper_figs/d_fig2.py [--seeds 64] [--out-dir paper_figs/out] [--quick]
    kcollapse fit-scaling paper_figs/out/d_fig2.json --x T --group n --select schedule=crit \\
        --window 1e4 1e5 --theory cor53 --ell 0.8
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import kcollapse as kc  # noqa: E402
from kcollapse import _io, plotting  # noqa: E402
from kcollapse.optimize import optimal_ridge, ridge_exponents  # noqa: E402
from kcollapse.scaling import compare_exponent, fit_power_law, theory_slopes  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "out"))
    ap.add_argument("--fit-window", type=float, nargs=2, default=(1e4, 1e5), metavar=("LO", "HI"),
                    help="T window of the power-law fits (default 1e4 1e5)")
    ap.add_argument("--quick", action="store_true", help="d = 40, few seeds and points (smoke test)")
    args = ap.parse_args(argv)

    beta, r, sigma, sigma0 = 2.0, 0.375, 1.0, 1.0
    d, T0, T_left = 300, 600, 10_000
    ridges = np.logspace(-5, 0, 21)
    Ts = np.unique(np.round(np.logspace(2, 5, 13)).astype(int))
    window = tuple(args.fit_window)
    if args.quick:
        d, T0, T_left = 40, 80, 1000
        ridges, Ts = np.logspace(-4, 0, 9), np.array([100, 300, 1000, 3000, 10_000])
        args.seeds = min(args.seeds, 8)
        window = (300.0, 1e4)
    gens = [0, 1, 2, 5]
    spec = kc.spectra.power_law(d, beta, r)
    ell = float(ridge_exponents(beta, r).ell_crit)
    key = jax.random.key(args.seed)

    def config(T_):
        return kc.ChainConfig(samples_per_generation=T0, downstream_samples=int(T_), n_generations=max(gens),
                              generator_noise=sigma0, label_noise=sigma)

    # Left: error vs ridge at T_left, and the theory optimum per n.
    sim_l = kc.simulate_chain(key, spec, config(T_left), ridges, n_seeds=args.seeds)
    th_l = kc.theory.predict_chain(spec, config(T_left), ridges)
    lam_star = [float(optimal_ridge(spec, n, T_left, T0, sigma, sigma0).ridge) for n in gens]

    # Right: both schedules from one simulation per T (two ridge values per call).
    schedules = {"crit": lambda T_: T_**-ell, "b_crit": lambda T_: T0**-ell}
    rows = []
    for T_ in Ts:
        lams = np.array([schedules["crit"](T_), schedules["b_crit"](T_)], dtype=float)
        s = kc.simulate_chain(jax.random.fold_in(key, int(T_)), spec, config(T_), lams, n_seeds=args.seeds)
        t = kc.theory.predict_chain(spec, config(T_), lams)
        for j, name in enumerate(schedules):
            for n in gens:
                rows.append({"schedule": name, "T": int(T_), "n": n, "ridge": float(lams[j]),
                             "test_error": float(s.mean[n, j]), "sem": float(s.sem[n, j]), "seeds": s.n_seeds,
                             "theory": float(t.total[n, j])})

    slopes = theory_slopes(beta, r, ell)
    fits = []
    for n in gens:
        sel = [x for x in rows if x["schedule"] == "crit" and x["n"] == n]
        x = np.array([q["T"] for q in sel], float)
        f = fit_power_law(x, [q["test_error"] for q in sel], [q["sem"] for q in sel], window=window)
        ft = fit_power_law(x, [q["theory"] for q in sel], window=window)
        expected = float(slopes.clean if n == 0 else slopes.total)
        cmp = compare_exponent(f, expected)
        fits.append({"n": n, "window": list(window), "exponent": float(f.exponent), "exponent_se": float(f.exponent_se),
                     "ci_low": float(f.ci_low), "ci_high": float(f.ci_high), "theory_curve_exponent": float(ft.exponent),
                     "cor53_slope": expected, "z": float(cmp.z), "consistent": bool(cmp.consistent)})

    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    plotting.plot_error_vs_ridge(ridges, gens, sim_l.mean[gens], sim_l.sem[gens], theory=th_l.total[gens], ax=ax1,
                                 title=f"T = {T_left}")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, lam in enumerate(lam_star):
        ax1.axvline(lam, color=colors[i], ls=":", lw=1)
    for i, n in enumerate(gens):
        for name, marker, ls in (("crit", "o", "-"), ("b_crit", "s", "--")):
            sel = [x for x in rows if x["schedule"] == name and x["n"] == n]
            T_, m, e, th = (np.array([q[k] for q in sel]) for k in ("T", "test_error", "sem", "theory"))
            ax2.errorbar(T_, m, yerr=e, fmt=marker, ms=3, color=colors[i], mfc="none" if name == "b_crit" else None,
                         label=(f"n = {n}: slope {fits[i]['exponent']:+.3f} ± {fits[i]['exponent_se']:.3f} "
                                f"(theory curve {fits[i]['theory_curve_exponent']:+.3f}; Cor 5.3 "
                                f"{fits[i]['cor53_slope']:+.1f})") if name == "crit" else None)
            ax2.plot(T_, th, ls, color=colors[i], lw=1.1)
    ax2.axvspan(*window, color="0.9", zorder=0)
    ax2.set(xscale="log", yscale="log", xlabel="downstream samples T",
            title=f"lambda = T^-{ell:g} (o, solid); T0^-{ell:g} (s, dashed)")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle(f"Demystified Fig. 2: power law beta={beta}, r={r}, d={d}, T0={T0}, sigma=sigma0={sigma}; "
                 f"{args.seeds} seeds (markers ± SEM), theory (lines); fit window shaded", fontsize=9)
    os.makedirs(args.out_dir, exist_ok=True)
    png = plotting.save_figure(fig, os.path.join(args.out_dir, "d_fig2.png"))
    data = {
        "config": {"spectrum": "power-law", "d": d, "beta": beta, "r": r, "T0": T0, "sigma": sigma, "sigma0": sigma0,
                   "generations": gens, "seeds": args.seeds, "seed": args.seed, "ell_crit": ell,
                   "schedules": {"crit": "ridge = T^-ell_crit", "b_crit": "ridge = T0^-ell_crit = T^-(b ell_crit), b = log T0/log T"},
                   "conventions": kc.CONVENTIONS, "theorem": th_l.theorem},
        "environment": _io.environment("float64"),
        "left": {"T": T_left, "ridges": ridges, "simulation": sim_l.mean[gens], "sem": sim_l.sem[gens],
                 "theory": th_l.total[gens], "theory_optimal_ridge": lam_star},
        "results": rows,
        "fits": fits,
    }
    path = os.path.join(args.out_dir, "d_fig2.json")
    _io.atomic_write_text(path, _io.dumps(data) + "\n")
    for f in fits:
        print(f"n={f['n']}: fitted slope {f['exponent']:+.4f} ± {f['exponent_se']:.4f} over T in {window}; "
              f"theory curve {f['theory_curve_exponent']:+.4f}; Cor 5.3 {f['cor53_slope']:+.2f} (z = {f['z']:+.2f})")
    print(f"wrote {png} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
