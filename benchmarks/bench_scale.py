"""Benchmark: variance reduction (time to a given SEM), the large single fit, cost curves, float32.

Sections (``--only`` picks some; all run in this one process, after a warm-up call each):

* **estimator** — the D-Fig1 chain (d = 300, T0 = 600, T = 1000, n <= 10, 17 ridges) with the
  conditional-risk estimator (default) and plain Monte Carlo on the same seeds: time per seed,
  per-seed variance, and the speed-up in *time to a given SEM*,
  ``(t_mc * var_mc) / (t_cond * var_cond)`` per (n, ridge) cell (seeds needed scale with the
  variance); the same against the plain numpy loop (``bench_chain.numpy_chain``, a few seeds);
  and the paired agreement z-scores.
* **large-fit** — one ridge fit with d = T = 4096 (float64): ``kcollapse.solvers.ridge`` (Gram,
  Cholesky) vs ``numpy.linalg.solve`` on the normal equations, and the eigh path for a 16-value
  ridge grid; achieved GFLOP/s against the ``jnp.dot`` matmul peak measured in the same run.
* **cost** — time of ``simulate_chain`` vs d, T, seeds and generations (log-log slopes, PNG).
* **precision** — float32 vs float64 chain: agreement of the means (z) and the time ratio.
* **kernel** — the kernel chain on real digits (scikit-learn's 1797 8x8 images, RBF kernel
  ``gamma = 1/64``, target = label mod 2, standardised; T0 = 500, T = 1000, generations 0..5,
  8 ridge values, 32 seeds): ``kcollapse.simulate.simulate_kernel_chain`` vs the plain loop a user
  writes with scikit-learn ``KernelRidge(alpha = ridge*T, kernel="rbf")`` (one fit per generator,
  one fit per (n, ridge) downstream) and vs the same loop with ``numpy.linalg.solve``. The loops
  replay kcollapse's documented key schedule (indices and noise precomputed outside the clock), so
  their per-seed errors must equal kcollapse's to round-off: an exact oracle, reported as the max
  relative difference.

Run::

    .venv/bin/python benchmarks/bench_scale.py           # everything (~10 min on 2 cores)
    .venv/bin/python benchmarks/bench_scale.py --quick   # smoke run, small sizes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, host_info, markdown_table, sem, utc_stamp, write_report  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench_scale] {msg}", file=sys.stderr, flush=True)


def timed(fn, repeats: int = 3) -> tuple[float, Any]:
    out = fn()  # warm-up (compilation)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def matmul_peak(dtype, n: int = 2048) -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    f = jax.jit(lambda x: jnp.matmul(x, x, precision=jax.lax.Precision.HIGHEST))
    t, _ = timed(lambda: f(a).block_until_ready(), 5)
    return 2 * n**3 / t / 1e9


def estimator_section(q: bool) -> dict[str, Any]:
    import jax

    import kcollapse as kc
    from bench_chain import numpy_chain, ridge_grid

    d, T0, T, n_max = (40, 80, 120, 4) if q else (300, 600, 1000, 10)
    seeds = 16 if q else 64
    ridges = ridge_grid(16)
    spec = kc.spectra.isotropic(d)
    cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                         generator_noise=0.2, label_noise=0.1)
    out: dict[str, Any] = {"d": d, "T0": T0, "T": T, "n_max": n_max, "ridges": len(ridges), "seeds": seeds}
    res = {}
    for est in ("monte-carlo", "conditional"):
        t, r = timed(lambda est=est: kc.simulate_chain(jax.random.key(0), spec, cfg, ridges, seeds, estimator=est), 2)
        res[est] = (t, r)
        out[f"{est}_s_per_seed"] = t / seeds
        log(f"{est}: {t:.2f} s for {seeds} seeds")
    (t_mc, r_mc), (t_c, r_c) = res["monte-carlo"], res["conditional"]
    var_mc, var_c = r_mc.per_seed.var(0, ddof=1), r_c.per_seed.var(0, ddof=1)
    speed = (t_mc * var_mc) / (t_c * var_c)
    out["variance_ratio"] = {"min": float(np.min(var_mc / var_c)),
                             "median": float(np.median(var_mc / var_c)), "max": float(np.max(var_mc / var_c))}
    out["time_to_sem_speedup_vs_mc"] = {"min": float(speed.min()), "median": float(np.median(speed)),
                                        "ols_n_max": float(speed[-1, 0]), "max": float(speed.max())}
    out["paired_agreement_max_abs_z"] = float(np.max(np.abs(r_c.estimator_agreement())))
    # the numpy loop (MC by construction): seconds per seed, and time-to-SEM ratio
    p = {"d": d, "T0": T0, "T": T, "n_max": n_max, "sigma": 0.1, "sigma0": 0.2, "ridges": ridges}
    n_np = 2 if q else 3
    t0 = time.perf_counter()
    per_np = numpy_chain(p, n_np)
    t_np = (time.perf_counter() - t0) / n_np
    out["numpy_s_per_seed"] = t_np
    ratio_np = (t_np * var_mc) / (t_c / seeds * var_c)  # numpy's variance = MC variance (same law)
    out["time_to_sem_speedup_vs_numpy"] = {"min": float(ratio_np.min()), "median": float(np.median(ratio_np))}
    out["numpy_mean_vs_kc_z_max"] = float(np.max(np.abs((per_np.mean(0) - r_c.mean) / np.sqrt(
        sem(per_np) ** 2 + r_c.sem ** 2)))) if n_np > 1 else None
    return out


def large_fit_section(q: bool, peak64: float) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import kcollapse as kc

    n = 1024 if q else 4096
    X = jax.random.normal(jax.random.key(1), (n, n), jnp.float64)
    y = X @ jnp.ones(n) / np.sqrt(n) + 0.1 * jax.random.normal(jax.random.key(2), (n,), jnp.float64)
    lam = 1e-2
    fit = jax.jit(lambda X, y: kc.solvers.ridge(X, y, lam, solver="cholesky"))
    t_kc, w = timed(lambda: fit(X, y).block_until_ready(), 3)
    Xn, yn = np.asarray(X), np.asarray(y)

    def np_fit():
        return np.linalg.solve(Xn.T @ Xn / n + lam * np.eye(n), Xn.T @ yn / n)

    t_np, w_np = timed(np_fit, 2)
    flops = 2 * n * n * n + n**3 / 3 + 4 * n * n  # Gram (general dot), Cholesky, two triangular solves
    grid = np.concatenate([[0.0], np.logspace(-3, 1, 15)])
    factor = jax.jit(lambda X: kc.solvers.eigh_factor(X))
    path = jax.jit(lambda f, y: kc.solvers.ridge_path(f, y, grid))
    t_eig, fac = timed(lambda: jax.block_until_ready(factor(X)), 1)
    t_path, _ = timed(lambda: path(fac, y).block_until_ready(), 3)
    out = {
        "n": n, "kc_cholesky_s": t_kc, "numpy_solve_s": t_np, "ratio_numpy_over_kc": t_np / t_kc,
        "kc_gflops": flops / t_kc / 1e9, "peak_f64_gflops": peak64, "fraction_of_peak": flops / t_kc / 1e9 / peak64,
        "max_rel_diff_vs_numpy": float(np.max(np.abs(np.asarray(w) - w_np)) / np.max(np.abs(w_np))),
        "kc_eigh_factor_s": t_eig, "kc_ridge_path_16_s": t_path,
    }
    log(f"large fit n={n}: kc {t_kc:.2f} s ({out['fraction_of_peak']:.0%} of peak), numpy {t_np:.2f} s")
    return out


def cost_section(q: bool, out_dir: Path) -> dict[str, Any]:
    import jax

    import kcollapse as kc

    base = dict(d=40, T0=80, T=120, n=5, seeds=16) if q else dict(d=100, T0=200, T=300, n=10, seeds=32)
    sweeps = {
        "d": [20, 40, 80] if q else [50, 100, 200, 400],
        "T": [80, 160, 320] if q else [200, 400, 800, 1600],
        "seeds": [8, 16, 32] if q else [16, 32, 64, 128],
        "n": [1, 2, 4, 8] if q else [1, 2, 5, 10, 20],
    }
    curves: dict[str, Any] = {}
    for axis, values in sweeps.items():
        for sampler in ("auto", "direct"):
            if sampler == "direct" and axis not in ("T", "d"):
                continue
            ts = []
            for v in values:
                p = dict(base, **{axis: v})
                if axis == "d":
                    p.update(T0=2 * v, T=3 * v)
                spec = kc.spectra.isotropic(p["d"])
                cfg = kc.ChainConfig(samples_per_generation=p["T0"], downstream_samples=p["T"], n_generations=p["n"],
                                     generator_noise=0.2, label_noise=0.1)
                t, _ = timed(lambda: kc.simulate_chain(jax.random.key(0), spec, cfg, [0.0, 0.1], p["seeds"],
                                                       sampler=sampler), 2)
                ts.append(t)
            slope = float(np.polyfit(np.log(values), np.log(ts), 1)[0])
            curves[f"{axis}/{sampler}"] = {"values": values, "seconds": ts, "loglog_slope": slope}
            log(f"cost vs {axis} ({sampler}): slope {slope:.2f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
        for ax, axis in zip(axes, sweeps):
            for key, c in curves.items():
                if key.startswith(axis + "/"):
                    ax.loglog(c["values"], c["seconds"], "o-", label=f"{key.split('/')[1]} (slope {c['loglog_slope']:.2f})")
            ax.set_xlabel({"d": "d (T0 = 2d, T = 3d)", "T": "T (downstream samples)", "seeds": "seeds",
                           "n": "generations n"}[axis])
            ax.set_ylabel("seconds (steady state)")
            ax.legend(fontsize=7)
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle(f"kcollapse.simulate_chain cost curves (base {base}, conditional estimator, {jax.default_backend()})",
                     fontsize=9)
        fig.tight_layout()
        png = out_dir / ("cost_curves_quick.png" if q else "cost_curves.png")
        fig.savefig(png, dpi=120)
        curves["png"] = str(png.relative_to(out_dir.parent)) if out_dir.parent in png.parents else str(png)
    except Exception as e:  # noqa: BLE001 - the numbers are the result; the figure is a bonus
        curves["png_error"] = repr(e)
    return curves


def precision_section(q: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import kcollapse as kc

    d, T0, T, n_max, seeds = (30, 60, 90, 4, 64) if q else (100, 200, 300, 10, 256)
    spec = kc.spectra.power_law(d, 2.0, 0.375)
    cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                         generator_noise=0.2, label_noise=0.1)
    ridges = [0.0, 1e-3, 1e-1]
    t64, r64 = timed(lambda: kc.simulate_chain(jax.random.key(0), spec, cfg, ridges, seeds), 2)
    t32, r32 = timed(lambda: kc.simulate_chain(jax.random.key(0), spec.astype(jnp.float32), cfg, ridges, seeds), 2)
    z = (r32.mean - r64.mean) / np.sqrt(r32.sem**2 + r64.sem**2)
    return {"d": d, "seeds": seeds, "float64_s": t64, "float32_s": t32, "time_ratio_64_over_32": t64 / t32,
            "max_abs_z_means": float(np.max(np.abs(z))),
            "max_rel_diff_means": float(np.max(np.abs(r32.mean / r64.mean - 1)))}


def _kernel_draws(key, i: int, N: int, T0: int, T: int, n_max: int) -> dict[str, np.ndarray]:
    """Seed ``i``'s indices and noise, replayed from kcollapse's key schedule (simulate/_kernel_chain.py)."""
    import jax
    import jax.numpy as jnp

    from kcollapse.simulate._chain import stage_keys

    ks = stage_keys(jax.random.fold_in(key, i))
    gen = []
    for m in range(1, n_max + 1):
        k_x, k_e = jax.random.split(jax.random.fold_in(ks.generator, m))
        gen.append((np.asarray(jax.random.randint(k_x, (T0,), 0, N, dtype=jnp.int32)),
                    np.asarray(jax.random.normal(k_e, (T0,), jnp.float64))))
    k_x, k_e = jax.random.split(ks.downstream)
    return {"gen": gen, "idx_d": np.asarray(jax.random.randint(k_x, (T,), 0, N, dtype=jnp.int32)),
            "eps_d": np.asarray(jax.random.normal(k_e, (T,), jnp.float64))}


def plain_kernel_chain(X, y, draws, p: dict[str, Any], how: str) -> np.ndarray:
    """The plain loop for one seed: ``(n_max + 1, R)`` test errors (test set = the whole pool).

    ``how="sklearn"``: ``KernelRidge(alpha=ridge*rows, kernel="rbf", gamma)`` for every fit;
    ``how="numpy"``: the same fits as ``numpy.linalg.solve(K + ridge*rows*I, y)`` (kernel by numpy).
    """
    gamma, r0, s0, s, ridges = p["gamma"], p["generator_ridge"], p["sigma0"], p["sigma"], p["ridges"]

    def rbf(A, B):
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
        return np.exp(-gamma * np.maximum(sq, 0.0))

    if how == "sklearn":
        from sklearn.kernel_ridge import KernelRidge

        def fit(Z, t, ridge):
            m = KernelRidge(alpha=ridge * len(Z), kernel="rbf", gamma=gamma).fit(Z, t)
            return m.predict
    else:
        def fit(Z, t, ridge):
            a = np.linalg.solve(rbf(Z, Z) + ridge * len(Z) * np.eye(len(Z)), t)
            return lambda W: rbf(W, Z) @ a

    f_prev = None  # generation 0 is the clean target
    Zd = X[draws["idx_d"]]
    F_d = [y[draws["idx_d"]]]
    for idx, e in draws["gen"]:
        Z = X[idx]
        labels = (y[idx] if f_prev is None else f_prev(Z)) + s0 * e
        f_prev = fit(Z, labels, r0)
        F_d.append(f_prev(Zd))
    err = np.empty((len(F_d), len(ridges)))
    for n, f in enumerate(F_d):
        Y = f + s * draws["eps_d"]
        for j, lam in enumerate(ridges):
            err[n, j] = np.mean((fit(Zd, Y, lam)(X) - y) ** 2)
    return err


def kernel_section(q: bool, peak64: float) -> dict[str, Any]:
    import jax

    import kcollapse as kc
    from kcollapse import datasets, kernels

    T0, T, n_max, seeds, n_plain = (100, 200, 2, 4, 2) if q else (500, 1000, 5, 32, 3)
    ridges = np.logspace(-4, -1, 8)
    pool, _ = datasets.prepare(datasets.digits())
    X, y = np.asarray(pool.inputs, np.float64), np.asarray(pool.targets, np.float64)
    N, pdim = X.shape
    gamma = 1.0 / pdim
    data = kc.simulate.KernelData.from_datasets(pool, None, dtype="float64")
    cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                         generator_noise=0.1, label_noise=0.1, generator_ridge=1e-3)
    kern = kernels.RBF(gamma)
    key = jax.random.key(0)
    out: dict[str, Any] = {"N": N, "features": pdim, "gamma": gamma, "T0": T0, "T": T, "n_max": n_max,
                           "ridges": len(ridges), "seeds": seeds, "generator_ridge": 1e-3, "sigma": 0.1,
                           "sigma0": 0.1, "plain_seeds": n_plain}
    run = lambda: kc.simulate.simulate_kernel_chain(key, kern, data, cfg, ridges, seeds)  # noqa: E731
    t0 = time.perf_counter()
    res = run()
    out["kc_first_call_s"] = time.perf_counter() - t0
    t_kc, res = timed(run, 2)
    out["kc_steady_s"] = t_kc
    log(f"kernel chain: kcollapse {t_kc:.2f} s steady for {seeds} seeds (first call {out['kc_first_call_s']:.2f} s)")
    # flop model per seed (eigh counted as 4 m^3 as in bench_chain; kernels 3 m k p; predictions 2 m k):
    # n_max generator eighs of T0 + their kernel blocks and predictions on the next design, the test set
    # and the downstream design; one downstream eigh of T, its kernel, V^T Y and the ridge path, K(test, Zd).
    gen = n_max * (4 * T0**3 + 3 * T0**2 * pdim + 2 * T0 * (T0 + N + T) * (pdim + 1))
    down = 4 * T**3 + 3 * T**2 * pdim + 3 * N * T * pdim + 2 * T * T * (n_max + 1) * 2 + 2 * len(ridges) * (n_max + 1) * T * (T + N)
    out["gflop_per_seed"] = (gen + down) / 1e9
    out["kc_gflops"] = out["gflop_per_seed"] * seeds / t_kc
    out["kc_fraction_of_peak"] = out["kc_gflops"] / peak64
    p = {"gamma": gamma, "generator_ridge": 1e-3, "sigma0": 0.1, "sigma": 0.1, "ridges": ridges}
    draws = [_kernel_draws(key, i, N, T0, T, n_max) for i in range(n_plain)]
    for how in ("sklearn", "numpy"):
        t0 = time.perf_counter()
        per = np.stack([plain_kernel_chain(X, y, dr, p, how) for dr in draws])
        t_plain = (time.perf_counter() - t0) / n_plain
        out[f"{how}_s_per_seed"] = t_plain
        out[f"{how}_s_extrapolated"] = t_plain * seeds
        out[f"{how}_over_kc_steady"] = t_plain * seeds / t_kc
        out[f"{how}_over_kc_first_call"] = t_plain * seeds / out["kc_first_call_s"]
        rel = np.abs(per - res.per_seed[:n_plain]) / np.abs(res.per_seed[:n_plain])
        out[f"{how}_max_rel_diff_per_seed"] = float(rel.max())
        log(f"kernel chain: {how} loop {t_plain:.2f} s/seed, ratio {out[f'{how}_over_kc_steady']:.1f}x, "
            f"max rel diff {rel.max():.2e}")
    return out


def render(rep: dict[str, Any]) -> str:
    env = rep["environment"]
    lines = [f"## bench_scale {rep['stamp']}{' (quick)' if rep['quick'] else ''} — {env.get('device')} "
             f"({env.get('backend')}, JAX {env.get('jax_version')}), load at start {env.get('load_average_at_start')}", ""]
    if "peak" in rep:
        lines.append(f"Matmul peak measured in this run: float64 {rep['peak']['f64']:.1f} GFLOP/s, "
                     f"float32 {rep['peak']['f32']:.1f} GFLOP/s.\n")
    e = rep.get("estimator")
    if e:
        lines.append(f"**Conditional-risk estimator** (D-Fig1 chain d={e['d']}, T0={e['T0']}, T={e['T']}, n<={e['n_max']}, "
                     f"{e['ridges']} ridges, {e['seeds']} seeds):\n")
        lines.append(markdown_table(
            ["", "s / seed", "variance ratio MC/cond (min / median / max)", "time-to-SEM speed-up (min / median / OLS n_max)"],
            [["Monte Carlo", e["monte-carlo_s_per_seed"], "1", "1"],
             ["conditional", e["conditional_s_per_seed"],
              f"{e['variance_ratio']['min']:.3g} / {e['variance_ratio']['median']:.3g} / {e['variance_ratio']['max']:.3g}",
              f"{e['time_to_sem_speedup_vs_mc']['min']:.3g} / {e['time_to_sem_speedup_vs_mc']['median']:.3g} / "
              f"{e['time_to_sem_speedup_vs_mc']['ols_n_max']:.3g}"],
             ["numpy loop", e["numpy_s_per_seed"], "(= MC)",
              f"conditional vs numpy: {e['time_to_sem_speedup_vs_numpy']['min']:.3g} / "
              f"{e['time_to_sem_speedup_vs_numpy']['median']:.3g}"]]))
        lines.append(f"\nPaired agreement conditional vs MC (same draws): max |z| = {e['paired_agreement_max_abs_z']:.2f}.\n")
    f = rep.get("large_fit")
    if f:
        lines.append(f"**Large single fit** d = T = {f['n']} (float64, ridge 1e-2):\n")
        lines.append(markdown_table(
            ["", "seconds", "GFLOP/s", "fraction of f64 peak", "max rel. diff"],
            [["kcollapse ridge (Cholesky)", f["kc_cholesky_s"], f["kc_gflops"], f["fraction_of_peak"], f["max_rel_diff_vs_numpy"]],
             ["numpy solve (normal eqs.)", f["numpy_solve_s"], float("nan"), float("nan"), 0.0],
             ["kcollapse eigh factor + 16-ridge path", f["kc_eigh_factor_s"] + f["kc_ridge_path_16_s"], float("nan"),
              float("nan"), float("nan")]]))
        lines.append(f"\nnumpy / kcollapse time ratio: {f['ratio_numpy_over_kc']:.2f}.\n")
    c = rep.get("cost")
    if c:
        rows = [[k, " ".join(map(str, v["values"])), " ".join(f"{s:.3g}" for s in v["seconds"]), v["loglog_slope"]]
                for k, v in c.items() if isinstance(v, dict)]
        lines.append("**Cost curves** (steady-state seconds; log-log slope):\n")
        lines.append(markdown_table(["axis/sampler", "values", "seconds", "slope"], rows))
        if "png" in c:
            lines.append(f"\nFigure: `{c['png']}`.\n")
    p = rep.get("precision")
    if p:
        lines.append(f"**float32 vs float64** (power law d={p['d']}, {p['seeds']} seeds, same key): max |z| of the "
                     f"means {p['max_abs_z_means']:.2f}, max relative difference {p['max_rel_diff_means']:.2%}; "
                     f"time float64/float32 = {p['time_ratio_64_over_32']:.2f}.\n")
    k = rep.get("kernel")
    if k:
        lines.append(f"**Kernel chain on digits** (N = {k['N']} real 8x8 digits, RBF gamma = {k['gamma']:.4g}, T0 = {k['T0']}, "
                     f"T = {k['T']}, n <= {k['n_max']}, {k['ridges']} ridges, {k['seeds']} seeds; plain loops timed on "
                     f"{k['plain_seeds']} seeds and extrapolated per seed):\n")
        lines.append(markdown_table(
            [f"", f"seconds ({k['seeds']} seeds)", "ratio plain / kcollapse", "max rel. diff per seed vs kcollapse"],
            [["kcollapse steady", k["kc_steady_s"], 1.0, 0.0],
             ["kcollapse first call (compile incl.)", k["kc_first_call_s"], float("nan"), 0.0],
             ["scikit-learn KernelRidge loop", k["sklearn_s_extrapolated"],
              f"{k['sklearn_over_kc_steady']:.1f} (first call {k['sklearn_over_kc_first_call']:.1f})",
              k["sklearn_max_rel_diff_per_seed"]],
             ["numpy solve loop", k["numpy_s_extrapolated"],
              f"{k['numpy_over_kc_steady']:.1f} (first call {k['numpy_over_kc_first_call']:.1f})",
              k["numpy_max_rel_diff_per_seed"]]]))
        lines.append(f"\nkcollapse: {k['gflop_per_seed']:.2f} GFLOP/seed (model), {k['kc_gflops']:.1f} GFLOP/s = "
                     f"{k['kc_fraction_of_peak']:.0%} of the same-run float64 peak.\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--only", nargs="+", choices=("estimator", "large-fit", "cost", "precision", "kernel"),
                    default=("estimator", "large-fit", "cost", "precision", "kernel"))
    ap.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import kcollapse as kc
    from kcollapse import _io

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rep: dict[str, Any] = {"stamp": utc_stamp(), "quick": args.quick,
                           "environment": {**host_info(), **_io.environment("float64"),
                                           "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend()}}
    rep["peak"] = {"f64": matmul_peak(jnp.float64, 1024 if args.quick else 2048),
                   "f32": matmul_peak(jnp.float32, 1024 if args.quick else 2048)}
    log(f"peak f64 {rep['peak']['f64']:.1f} GFLOP/s, f32 {rep['peak']['f32']:.1f}")
    if "estimator" in args.only:
        rep["estimator"] = estimator_section(args.quick)
    if "large-fit" in args.only:
        rep["large_fit"] = large_fit_section(args.quick, rep["peak"]["f64"])
    if "cost" in args.only:
        rep["cost"] = cost_section(args.quick, out_dir)
    if "precision" in args.only:
        rep["precision"] = precision_section(args.quick)
    if "kernel" in args.only:
        rep["kernel"] = kernel_section(args.quick, rep["peak"]["f64"])
    del kc
    write_report(out_dir, "scale", rep["stamp"], args.quick, rep, render(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
