"""Benchmark: the theory grid (issue 3) — 1000 (ridge, T, n) points of the chain's test-error theory.

Workload: power-law spectrum ``kcollapse.spectra.power_law(d, beta, r)`` with d = 1e5 (beta = 2,
r = 0.5), generators with T0 = 3e5 >= d (Theorem 4.3 + Corollary 4.7, fresh designs), sigma = 0.5,
sigma0 = 0.5, float64, and

* **grid**: 10 ridge values (logspace 1e-5..1) x 10 sample sizes T (logspace 1e2..1e6, integers)
  x 10 generations n = 0..9 = 1000 points;
* **distinct**: 1000 distinct (ridge, T, n) triples (log-uniform ridge and T over the same ranges,
  n uniform in 0..9; seed 0).

Measured in one run (see benchmarks/README.md):

* **kcollapse**, after compilation, median of ``--repeats``, results copied to numpy before the
  clock stops:
  - grid, ``jax.jit(jax.vmap(chain_error))`` over the 100 (ridge, T) pairs with ``n`` a vector of
    the 10 generations (one kappa solve per pair, every n from it);
  - grid, ``predict_chain`` (the user-facing call: one call per T with the 10 ridges, n_max = 9;
    it also computes the generator error);
  - distinct, ``jax.jit(jax.vmap(chain_error))`` over the 1000 triples (one kappa solve each);
  - distinct, a Python loop over one compiled scalar ``chain_error`` (each kappa iteration stops
    on its own; under ``vmap`` every lane runs as many iterations as the slowest).
  The first call (compile + run) is reported too.
* **numpy/scipy**, the plain way: per point ``scipy.optimize.brentq`` for kappa on the 1e5-mode
  residual, then the Corollary 4.7 sums in numpy; run on a random subset of ``--ref-points``
  points (default 100) of each set and extrapolated per point (timed separately: brentq and the sums, so the
  smarter "kappa once per (ridge, T)" numpy variant is also extrapolated for the grid).
* **agreement**: max relative difference of the total error on the subset.

Run::

    .venv/bin/python benchmarks/bench_theory.py           # full (~1-2 min on 2 shared cores)
    .venv/bin/python benchmarks/bench_theory.py --quick   # smoke run (d = 1000, small grid)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

FULL = dict(d=100_000, beta=2.0, r=0.5, T0=300_000, sigma=0.5, sigma0=0.5, n_ridge=10, n_T=10, n_gen=10,
            n_distinct=1000, ridge_range=(-5.0, 0.0), T_range=(2.0, 6.0), ref_points=100)
QUICK = dict(d=1_000, beta=2.0, r=0.5, T0=3_000, sigma=0.5, sigma0=0.5, n_ridge=4, n_T=4, n_gen=4,
             n_distinct=64, ridge_range=(-5.0, 0.0), T_range=(1.0, 4.0), ref_points=8)


# ------------------------------------------------------------------------------------------
# The plain numpy/scipy way (independent of kcollapse's code)
# ------------------------------------------------------------------------------------------


def kappa_brentq(lam: np.ndarray, ridge: float, T: float) -> float:
    """Root of ``(T - d + sum kappa/(lam + kappa))/T - ridge/kappa`` on ``[ridge, ridge + tr/T]`` (ridge > 0)."""
    from scipy.optimize import brentq

    d = lam.size

    def f(k):
        return (T - d + np.sum(k / (lam + k))) / T - ridge / k

    return brentq(f, ridge, (ridge + lam.sum() / T) * (1 + 1e-12), xtol=1e-300, rtol=1e-15, maxiter=1000)


def chain_error_numpy(lam: np.ndarray, W: np.ndarray, kappa: float, n: int, T: float, T0: float,
                      sigma: float, sigma0: float) -> float:
    """Theorem 4.3 + Corollary 4.7 (T0 >= d, fresh designs, OLS generators, ridge > 0 downstream).

    ``g = lam/(lam + kappa)``, ``D = T - sum g^2``, ``a = g^2 + (1 - g)^2 sum g^2 / D``;
    ``bias = <a, W> - 2 <g, W> + sum W`` (``W = lam c^2``), ``var = sigma^2 sum g^2 / D``,
    ``collapse = n sigma0^2 sum a / (T0 - d)``.
    """
    g = lam / (lam + kappa)
    g2 = g * g
    D = T - g2.sum()
    G2 = g2.sum() / D
    a = g2 + (1 - g) ** 2 * G2
    bias = a @ W - 2 * (g @ W) + W.sum()
    return float(bias + sigma**2 * G2 + n * sigma0**2 * a.sum() / (T0 - lam.size))


def numpy_points(lam, W, pts, p) -> tuple[np.ndarray, float, float]:
    """Per point: brentq + sums. Returns (totals, seconds in brentq, seconds in the sums)."""
    out = np.empty(len(pts))
    t_k = t_s = 0.0
    for i, (ridge, T, n) in enumerate(pts):
        t0 = time.perf_counter()
        k = kappa_brentq(lam, ridge, T)
        t1 = time.perf_counter()
        out[i] = chain_error_numpy(lam, W, k, int(n), T, p["T0"], p["sigma"], p["sigma0"])
        t_k += t1 - t0
        t_s += time.perf_counter() - t1
    return out, t_k, t_s


# ------------------------------------------------------------------------------------------


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def run(p: dict[str, Any], repeats: int) -> dict[str, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import kcollapse as kc

    spec = kc.spectra.power_law(p["d"], p["beta"], p["r"], dtype="float64")
    lam = np.asarray(spec.eigenvalues)
    W = lam * np.asarray(spec.coefficients) ** 2
    ridges = np.logspace(*p["ridge_range"], p["n_ridge"])
    Ts = np.unique(np.round(np.logspace(*p["T_range"], p["n_T"]))).astype(np.int64)
    ns = np.arange(p["n_gen"])
    rng = np.random.default_rng(0)
    m = p["n_distinct"]
    distinct = np.stack([10 ** rng.uniform(*p["ridge_range"], m),
                         np.round(10 ** rng.uniform(*p["T_range"], m)), rng.integers(0, p["n_gen"], m)], axis=1)
    T0, sigma, sigma0 = float(p["T0"]), p["sigma"], p["sigma0"]
    res: dict[str, Any] = {"jax": jax.__version__, "backend": jax.default_backend(),
                           "device_kind": jax.devices()[0].device_kind,
                           "grid_points": int(ridges.size * Ts.size * ns.size), "distinct_points": m}

    # (a) grid: vmap over (ridge, T) pairs, n a concrete vector -> one kappa per pair
    RR, TT = np.meshgrid(ridges, Ts.astype(np.float64), indexing="ij")  # (n_ridge, n_T)

    @jax.jit
    def grid_fn(s, r, t):
        return jax.vmap(lambda rr, tt: kc.theory.chain_error(s, ns, tt, T0, sigma, sigma0, rr).total)(r, t)

    def grid_call():
        return np.asarray(grid_fn(spec, jnp.asarray(RR.ravel()), jnp.asarray(TT.ravel())))

    # (b) grid: predict_chain, one call per T (10 ridges, n = 0..n_max)
    def predict_call():
        cols = []
        for T in Ts:
            cfg = kc.ChainConfig(samples_per_generation=int(T0), downstream_samples=int(T), n_generations=int(ns[-1]),
                                 generator_noise=sigma0, label_noise=sigma)
            cols.append(kc.theory.predict_chain(spec, cfg, ridges).total)  # (n, R)
        return np.stack(cols, axis=0)  # (T, n, R)

    # (c) 1000 distinct triples: one kappa each
    @jax.jit
    def distinct_fn(s, r, t, n):
        return jax.vmap(lambda rr, tt, nn: kc.theory.chain_error(s, nn, tt, T0, sigma, sigma0, rr).total)(r, t, n)

    dr, dT, dn = jnp.asarray(distinct[:, 0]), jnp.asarray(distinct[:, 1]), jnp.asarray(distinct[:, 2].astype(np.int32))

    def distinct_call():
        return np.asarray(distinct_fn(spec, dr, dT, dn))

    # (d) the same 1000 triples, a Python loop over one compiled scalar chain_error (no vmap: each
    # point's kappa iteration stops on its own instead of running as long as the slowest lane)
    one_fn = jax.jit(lambda s, rr, tt, nn: kc.theory.chain_error(s, nn, tt, T0, sigma, sigma0, rr).total)
    d_np = [(float(a), float(b), int(c)) for a, b, c in distinct]

    def loop_call():
        return np.array([float(one_fn(spec, a, b, c)) for a, b, c in d_np])

    timings = {}
    outs = {}
    for name, fn in (("grid_chain_error_vmap", grid_call), ("grid_predict_chain", predict_call),
                     ("distinct_chain_error_vmap", distinct_call), ("distinct_chain_error_scalar_loop", loop_call)):
        t0 = time.perf_counter()
        outs[name] = fn()
        first = time.perf_counter() - t0
        med, all_ = _median_time(fn, repeats)
        timings[name] = {"first_call_s": first, "steady_s": med, "steady_all_s": all_}
        print(f"[theory] {name}: first {first:.2f} s, steady {med:.3f} s", file=sys.stderr, flush=True)
    res["kcollapse"] = timings

    grid_kc = outs["grid_chain_error_vmap"].reshape(ridges.size, Ts.size, ns.size)  # (R, T, n)
    pred_kc = np.transpose(outs["grid_predict_chain"], (2, 0, 1))  # (T, n, R) -> (R, T, n)
    res["distinct_loop_vs_vmap_max_rel_diff"] = float(np.max(np.abs(outs["distinct_chain_error_scalar_loop"]
        - outs["distinct_chain_error_vmap"]) / np.abs(outs["distinct_chain_error_vmap"])))
    res["grid_chain_error_vs_predict_chain_max_rel_diff"] = float(np.max(np.abs(grid_kc - pred_kc) / np.abs(pred_kc)))

    # numpy/scipy reference on a random subset of each set
    k = min(p["ref_points"], grid_kc.size)
    gi = rng.choice(grid_kc.size, size=k, replace=False)
    iR, iT, iN = np.unravel_index(gi, grid_kc.shape)
    gpts = np.stack([ridges[iR], Ts[iT].astype(np.float64), ns[iN]], axis=1)
    di = rng.choice(m, size=min(p["ref_points"], m), replace=False)
    ref = {}
    for name, pts, kc_vals, total in (("grid", gpts, grid_kc[iR, iT, iN], grid_kc.size),
                                      ("distinct", distinct[di], outs["distinct_chain_error_vmap"][di], m)):
        t0 = time.perf_counter()
        vals, t_k, t_s = numpy_points(lam, W, pts, p)
        wall = time.perf_counter() - t0
        per_pt = wall / len(pts)
        ref[name] = {
            "points_run": len(pts), "run_s": wall, "brentq_s": t_k, "sums_s": t_s,
            "per_point_s": per_pt, "extrapolated_s": per_pt * total,
            "max_rel_diff_vs_kcollapse": float(np.max(np.abs(vals - kc_vals) / np.abs(vals))),
        }
        print(f"[theory] numpy {name}: {wall:.2f} s for {len(pts)} points", file=sys.stderr, flush=True)
    # the smarter plain way on the grid: brentq once per (ridge, T), sums per point
    g = ref["grid"]
    ref["grid"]["kappa_once_per_pair_extrapolated_s"] = (g["brentq_s"] / g["points_run"] * ridges.size * Ts.size
                                                         + g["sums_s"] / g["points_run"] * grid_kc.size)
    res["numpy"] = ref
    res["axes"] = {"ridges": ridges, "T": Ts, "n": ns}
    return res


def render(rep: dict[str, Any]) -> str:
    r, p = rep["result"], rep["workload"]
    kct, ref = r["kcollapse"], r["numpy"]
    head = (f"### Theory grid (issue 3) — {rep['timestamp']}\n\n"
            f"power law d = {p['d']:g} (β = {p['beta']}, r = {p['r']}), T0 = {p['T0']:g}, σ = {p['sigma']}, σ0 = {p['sigma0']}, "
            f"float64, {r['device_kind']} ({r['backend']}), {rep['environment']['cpu_count']} CPUs, JAX {r['jax']}. "
            f"Load average at start {rep['environment'].get('load_average_at_start')}, at end {rep.get('load_average_at_end')}.\n\n")
    rows = []
    for name, label, refname, total in (
            ("grid_chain_error_vmap", f"grid {p['n_ridge']}λ×{p['n_T']}T×{p['n_gen']}n, jit(vmap(chain_error)), n vector", "grid", r["grid_points"]),
            ("grid_predict_chain", f"grid, predict_chain × {p['n_T']} T", "grid", r["grid_points"]),
            ("distinct_chain_error_vmap", f"{r['distinct_points']} distinct triples, jit(vmap(chain_error))", "distinct", r["distinct_points"]),
            ("distinct_chain_error_scalar_loop", "same triples, Python loop over jit(chain_error) (scalar)", "distinct", r["distinct_points"])):
        t, rf = kct[name], ref[refname]
        rows.append([label, total, t["first_call_s"], t["steady_s"],
                     f"{rf['extrapolated_s']:.3g} (×{total}/{rf['points_run']})",
                     rf["extrapolated_s"] / t["steady_s"], rf["extrapolated_s"] / t["first_call_s"],
                     f"{rf['max_rel_diff_vs_kcollapse']:.1e}"])
    text = head + C.markdown_table(
        ["set", "points", "kc first call s (compile+run)", "kc steady s", "numpy/scipy s (brentq per point)",
         "numpy/kc steady", "numpy/kc first call", "max rel diff (subset)"], rows) + "\n"
    g = ref["grid"]
    text += (f"\nnumpy/scipy per point: {g['per_point_s'] * 1e3:.1f} ms (brentq {g['brentq_s'] / g['points_run'] * 1e3:.1f} ms, "
             f"sums {g['sums_s'] / g['points_run'] * 1e3:.2f} ms); the smarter plain grid (brentq once per (λ, T)): "
             f"{g['kappa_once_per_pair_extrapolated_s']:.3g} s extrapolated. chain_error(vmap) vs predict_chain on the grid: "
             f"{r['grid_chain_error_vs_predict_chain_max_rel_diff']:.1e} relative; scalar loop vs vmap on the distinct set: "
             f"{r['distinct_loop_vs_vmap_max_rel_diff']:.1e}.\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: d = 1000, small grid")
    ap.add_argument("--repeats", type=int, default=3, help="steady-state repeats (median)")
    ap.add_argument("--ref-points", type=int, default=None, help="numpy/scipy reference points per set (extrapolated)")
    ap.add_argument("--out-dir", type=Path, default=C.RESULTS_DIR)
    args = ap.parse_args(argv)
    p = dict(QUICK if args.quick else FULL)
    if args.ref_points:
        p["ref_points"] = args.ref_points
    stamp = C.utc_stamp()
    rep: dict[str, Any] = {"benchmark": "theory", "timestamp": stamp, "workload": p, "environment": C.host_info(),
                           "repeats": args.repeats}
    rep["result"] = run(p, args.repeats)
    rep["load_average_at_end"] = os.getloadavg()
    C.write_report(args.out_dir, "theory", stamp, args.quick, rep, render(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
