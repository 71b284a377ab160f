"""Benchmark: the D-Fig1 model-collapse chain, kcollapse vs the plain numpy loop vs scikit-learn.

Workload (shared/THEORY.md §2.1 and §8, D-Fig1): isotropic d = 300, T0 = 600, T = 1000,
sigma = 0.1, sigma0 = 0.2, generations n = 0..10, ridge grid {0} + logspace(1e-3, 1e1, 16),
float64, 64 and 128 seeds by default.

Measured in one run (see benchmarks/README.md):

* **numpy** — the chain as a paper's author writes it: a Python loop over seeds and generations,
  ``np.linalg.lstsq`` for the OLS generators, ``np.linalg.solve`` per ridge value downstream.
* **scikit-learn** — ``LinearRegression`` generators, ``Ridge(alpha=ridge*T)`` per ridge value;
  run at fewer seeds and extrapolated linearly per seed (said so in the output).
* **kcollapse** — ``kcollapse.simulate_chain`` with its default ``sampler="auto"`` (exact
  Bartlett/Wishart sampling of each training set's moments) and, in the same run, with
  ``sampler="direct"`` (every design row drawn, the pre-Wishart algorithm): (a) whole process, a
  fresh ``python -c`` that imports, enables x64, compiles and runs, timed from outside; (b) steady
  state in a worker process, after a warm-up call, results converted to numpy before the clock
  stops, median of ``--repeats``.
* agreement (max |z| of the per-(n, ridge) means, using both SEMs), achieved GFLOP/s of the
  algorithm kcollapse runs against the ``jnp.dot`` matmul peak (float64 and float32) measured
  in the same run, and a profile of where kcollapse's time goes.

Run::

    .venv/bin/python benchmarks/bench_chain.py            # full (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_chain.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

FULL = dict(d=300, T0=600, T=1000, sigma=0.1, sigma0=0.2, n_max=10, n_log_ridges=16, peak_n=4096)
QUICK = dict(d=20, T0=40, T=60, sigma=0.1, sigma0=0.2, n_max=3, n_log_ridges=4, peak_n=512)

#: eigh (LAPACK dsyevd with vectors) counted as EIGH_FLOPS * d^3: 4/3 d^3 Householder
#: tridiagonalisation + 2 d^3 back-transformation + divide-and-conquer merges (<~ d^3 with deflation).
EIGH_FLOPS = 4.0


def ridge_grid(n_log: int) -> list[float]:
    return [0.0] + [float(x) for x in np.logspace(-3, 1, n_log)]


# ------------------------------------------------------------------------------------------
# The plain ways
# ------------------------------------------------------------------------------------------


def numpy_chain(p: dict[str, Any], n_seeds: int) -> np.ndarray:
    """The chain as a paper's author writes it. Returns ``(seeds, n_max + 1, n_ridges)`` errors."""
    d, T0, T, n_max = p["d"], p["T0"], p["T"], p["n_max"]
    sigma, sigma0, ridges = p["sigma"], p["sigma0"], p["ridges"]
    eigs = np.ones(d)  # isotropic Sigma
    Sigma = np.diag(eigs)
    w0 = np.full(d, 1.0 / math.sqrt(d))  # ||w0||_Sigma = 1
    out = np.empty((n_seeds, n_max + 1, len(ridges)))
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        # generator chain: w_0 = w0, w_m = OLS on T0 fresh rows labelled by w_{m-1}
        w_hat = [w0]
        for _m in range(1, n_max + 1):
            X = rng.standard_normal((T0, d)) * np.sqrt(eigs)
            y = X @ w_hat[-1] + sigma0 * rng.standard_normal(T0)
            w_hat.append(np.linalg.lstsq(X, y, rcond=None)[0])
        # downstream ridge on T fresh rows labelled by w_n, for every n and every ridge value
        for n in range(n_max + 1):
            X = rng.standard_normal((T, d)) * np.sqrt(eigs)
            y = X @ w_hat[n] + sigma * rng.standard_normal(T)
            XtX, Xty = X.T @ X / T, X.T @ y / T
            for j, lam in enumerate(ridges):
                w_pred = np.linalg.solve(XtX + lam * np.eye(d), Xty)
                e = w_pred - w0
                out[seed, n, j] = e @ Sigma @ e
    return out


def sklearn_chain(p: dict[str, Any], n_seeds: int) -> np.ndarray:
    """The same chain with scikit-learn estimators (``alpha = ridge * T``)."""
    from sklearn.linear_model import LinearRegression, Ridge

    d, T0, T, n_max = p["d"], p["T0"], p["T"], p["n_max"]
    sigma, sigma0, ridges = p["sigma"], p["sigma0"], p["ridges"]
    w0 = np.full(d, 1.0 / math.sqrt(d))
    out = np.empty((n_seeds, n_max + 1, len(ridges)))
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        w_hat = [w0]
        for _m in range(1, n_max + 1):
            X = rng.standard_normal((T0, d))
            y = X @ w_hat[-1] + sigma0 * rng.standard_normal(T0)
            w_hat.append(LinearRegression(fit_intercept=False).fit(X, y).coef_)
        for n in range(n_max + 1):
            X = rng.standard_normal((T, d))
            y = X @ w_hat[n] + sigma * rng.standard_normal(T)
            for j, lam in enumerate(ridges):
                est = LinearRegression(fit_intercept=False) if lam == 0 else Ridge(alpha=lam * T, fit_intercept=False)
                e = est.fit(X, y).coef_ - w0
                out[seed, n, j] = e @ e
    return out


# ------------------------------------------------------------------------------------------
# kcollapse: the whole process as a user sees it
# ------------------------------------------------------------------------------------------

USER_SCRIPT = """
import json, sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import kcollapse as kc
p = json.loads(sys.argv[1])
spectrum = kc.spectra.isotropic(p["d"], dtype="float64")
cfg = kc.ChainConfig(samples_per_generation=p["T0"], downstream_samples=p["T"], n_generations=p["n_max"],
                     generator_noise=p["sigma0"], label_noise=p["sigma"])
res = kc.simulate_chain(jax.random.key(0), spectrum, cfg, ridges=p["ridges"], n_seeds=p["seeds"], sampler=p["sampler"], estimator="monte-carlo")
np.save(p["out"], res.per_seed)
"""


def kc_flops_per_seed(d: int, T0: int, T: int, n_max: int, n_ridges: int, sampler: str = "auto") -> dict[str, float]:
    """Flops of the algorithm kcollapse runs for one seed (replace mode, fresh designs, T0, T >= d).

    ``sampler="auto"`` (= ``"wishart"`` here), read off the compiled HLO: per generation one
    Bartlett factor ``B`` (``d(d-1)/2`` normals needed — ``d^2`` drawn, the upper triangle
    discarded by ``tril`` — + ``d`` chi-squares + ``d`` normals for ``z``; RNG, not counted as flops) and one triangular solve ``B^T x = z`` (``d^2``) plus two vector updates;
    the ridge-generator branch of the ``lax.cond`` (Gram + Cholesky) is compiled but not executed
    at ``generator_ridge = 0``. Downstream: one Bartlett factor, ``G = B B^T`` (a general dot in
    the HLO, ``2 d^3``; ``d^3`` if it exploited the triangle), ``B z``, ``(G - G_syn) c``,
    ``W G`` and ``V^T H`` (``n_max + 1`` columns each), one eigh (``EIGH_FLOPS d^3``) and the
    ridge-path product ``(n_ridges (n_max + 1)) x d x d``.
    ``executed`` counts ``B B^T`` as the general dot XLA runs; ``useful`` as ``d^3`` (triangular).

    ``sampler="direct"`` (the row-by-row path): per generation one full ``X^T X`` (a general dot,
    not a syrk), three mat-vecs (``G w``, ``(G - G_syn) c``, ``X^T e``), a Cholesky and two
    triangular solves; downstream one ``X^T X``, ``X^T e``, one eigh, ``W G``, ``V^T H`` and the
    ridge path as above. RNG and elementwise work are not counted in either model.
    """
    K = n_max + 1
    down_common = 2 * d + 2 * d * d + 2 * K * d * d + 2 * d * d * K + 2 * n_ridges * K * d * d  # Bz|X^Te, (G-Gs)c, WG, V^TH, path
    down_eigh = EIGH_FLOPS * d**3
    if sampler == "direct":
        gen_mm = n_max * (2 * T0 * d * d + 2 * T0 * d + 2 * 2 * d * d)
        gen_lapack = n_max * (d**3 / 3 + 2 * d * d)
        down_gram = 2 * T * d * d
        total = gen_mm + gen_lapack + down_gram + down_common + down_eigh
        return {"generator_matmul": gen_mm, "generator_cholesky_trsm": gen_lapack, "downstream_gram": down_gram,
                "downstream_matmul_other": down_common, "downstream_eigh": down_eigh,
                "total": total, "useful_total": total}
    gen_trsm = n_max * (d * d + 2 * d)  # B^T x = z, w + s0 x
    down_gram = 2 * d**3  # B B^T as a general dot
    total = gen_trsm + down_gram + down_common + down_eigh
    return {"generator_trsm": gen_trsm, "downstream_gram": down_gram, "downstream_matmul_other": down_common,
            "downstream_eigh": down_eigh, "total": total, "useful_total": total - d**3,
            "rng_normals_drawn_per_seed": (n_max + 1) * (d * d + d), "rng_chisquares_per_seed": (n_max + 1) * d}


# ------------------------------------------------------------------------------------------
# kcollapse worker (steady state, profile, matmul peak), run in its own process
# ------------------------------------------------------------------------------------------


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def worker(task: dict[str, Any]) -> dict[str, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import kcollapse as kc
    from kcollapse.simulate import _driver

    p, n_seeds, repeats = task["params"], task["seeds"], task["repeats"]
    out: dict[str, Any] = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(dv) for dv in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    }
    spectrum = kc.spectra.isotropic(p["d"], dtype="float64")
    cfg = kc.ChainConfig(samples_per_generation=p["T0"], downstream_samples=p["T"], n_generations=p["n_max"],
                         generator_noise=p["sigma0"], label_noise=p["sigma"])
    ridges = p["ridges"]
    key = jax.random.key(0)
    per_seed_bytes = _driver._bytes_per_seed(p["d"], cfg, len(ridges), False, 8)
    max_batch = max(1, _driver.DEFAULT_MEMORY_BUDGET // per_seed_bytes)
    batch = _driver._balanced(n_seeds, max_batch) if hasattr(_driver, "_balanced") else min(n_seeds, max_batch)
    out["batch_size"] = batch
    out["seeds_computed"] = batch * math.ceil(n_seeds / batch)  # the last batch is padded

    out["samplers"] = {}
    for sampler in task["samplers"]:
        def run():
            return kc.simulate_chain(key, spectrum, cfg, ridges=ridges, n_seeds=n_seeds, sampler=sampler, estimator="monte-carlo")

        t0 = time.perf_counter()
        res = run()  # compile + run (per_seed is already numpy: the clock stops after the transfer)
        o = {"first_call_s": time.perf_counter() - t0}
        o["steady_s"], o["steady_all_s"] = _median_time(run, repeats)
        o["generator_fallbacks"] = res.generator_fallbacks
        np.save(task["per_seed_out"][sampler], res.per_seed)
        out["samplers"][sampler] = o

    if task.get("peak"):
        out["matmul_peak"] = {}
        n = p["peak_n"]
        for dt in ("float64", "float32"):
            a = jax.random.normal(jax.random.key(1), (n, n), dtype=dt)
            b = jax.random.normal(jax.random.key(2), (n, n), dtype=dt)
            f = jax.jit(lambda x, y: jnp.dot(x, y, precision=jax.lax.Precision.HIGHEST))
            f(a, b).block_until_ready()
            t, _ = _median_time(lambda: f(a, b).block_until_ready(), 3)
            out["matmul_peak"][dt] = {"n": n, "seconds": t, "gflops": 2 * n**3 / t / 1e9}

    if task.get("profile"):
        out["profile"] = profile(p, spectrum, cfg, ridges, batch, repeats)
    out["load_average_at_end"] = os.getloadavg()
    return out


def profile(p, spectrum, cfg, ridges, B: int, repeats: int) -> dict[str, Any]:
    """Where the time goes, at the batch size ``simulate_chain`` uses (``B`` seeds per call).

    Stage split (default sampler): the full compiled batch vs the same batch with
    ``n_generations = 0`` (downstream only, ``n_max + 1 -> 1`` label columns); the direct-sampler
    batch for comparison; primitives: each piece of the Wishart algorithm alone, jitted and
    vmapped at the shapes the chain runs, repeated as often as the chain does.
    """
    import jax
    import jax.numpy as jnp

    from kcollapse.data import sample_wishart_factor
    from kcollapse.simulate._driver import _batch, seed_keys

    HI = jax.lax.Precision.HIGHEST
    d, T0, T, n_max = p["d"], p["T0"], p["T"], p["n_max"]
    R, K = len(ridges), n_max + 1
    keys = seed_keys(jax.random.key(0), np.arange(B))
    rj = jnp.asarray(ridges)

    def timed(fn, *args):
        jax.block_until_ready(fn(*args))
        return _median_time(lambda: jax.block_until_ready(fn(*args)), repeats)[0]

    res: dict[str, Any] = {"batch": B}
    res["full_batch_s"] = timed(lambda k: _batch(k, spectrum, cfg, rj, False, "auto", "wishart"), keys)
    cfg0 = dataclasses.replace(cfg, n_generations=0)
    res["downstream_only_batch_s"] = timed(lambda k: _batch(k, spectrum, cfg0, rj, False, "auto", "wishart"), keys)
    res["generators_by_difference_s"] = res["full_batch_s"] - res["downstream_only_batch_s"]
    res["direct_full_batch_s"] = timed(lambda k: _batch(k, spectrum, cfg, rj, False, "auto", "direct"), keys)

    # --- primitives of the Wishart path, at the chain's shapes ---
    @jax.jit
    def bartlett(ks):  # n_max generator factors + 1 downstream factor, each with its z
        def one(k):
            def gen(acc, m):
                kx, ke = jax.random.split(jax.random.fold_in(k, m))
                Bf = sample_wishart_factor(kx, spectrum, T0)
                z = jax.random.normal(ke, (d,), dtype=jnp.float64)
                return acc + Bf[d - 1, 0] + z[0], None
            acc, _ = jax.lax.scan(gen, jnp.zeros((), jnp.float64), jnp.arange(1, n_max + 1))
            return acc + sample_wishart_factor(k, spectrum, T)[d - 1, 0]
        return jax.vmap(one)(ks)

    @jax.jit
    def normals_only(ks):  # the d(d-1)/2 + d normals alone (no chi-squares), same count
        def one(k):
            def gen(acc, m):
                x = jax.random.normal(jax.random.fold_in(k, m), (d * d,), dtype=jnp.float64)
                return acc + x[0], None
            acc, _ = jax.lax.scan(gen, jnp.zeros((), jnp.float64), jnp.arange(n_max + 1))
            return acc
        return jax.vmap(one)(ks)

    Bs = jax.jit(jax.vmap(lambda k: sample_wishart_factor(k, spectrum, T)))(keys)
    zs = jax.random.normal(jax.random.key(5), (B, d), dtype=jnp.float64)
    trsm = jax.jit(jax.vmap(lambda Bf, z: jax.scipy.linalg.solve_triangular(Bf, z, lower=True, trans="T")))
    gram = jax.jit(jax.vmap(lambda Bf: jnp.matmul(Bf, Bf.T, precision=HI)))
    G = gram(Bs)
    eigh = jax.jit(jax.vmap(jnp.linalg.eigh))
    Wg = jax.random.normal(jax.random.key(8), (B, K, d), dtype=jnp.float64)
    wg = jax.jit(jax.vmap(lambda W, g: jnp.matmul(W, g.T, precision=HI)))
    wts = jax.random.uniform(jax.random.key(6), (B, R, d), dtype=jnp.float64)
    Z = jax.random.normal(jax.random.key(7), (B, d, K), dtype=jnp.float64)
    path = jax.jit(jax.vmap(lambda V, w, z: jnp.einsum("ij,rj,jk->rik", V, w, z, precision=HI)))

    prim = {
        f"Bartlett factors + z: {n_max + 1}x ({d * d} normals drawn + {d} chi-squares + {d} normals)": timed(bartlett, keys),
        f"  of which normals alone ({n_max + 1}x {d * d})": timed(normals_only, keys),
        f"triangular solve B^T x = z ({d}x{d}, 1 rhs): {n_max}x": n_max * timed(trsm, Bs, zs),
        f"Gram B B^T ({d}x{d}, general dot): 1x": timed(gram, Bs),
        f"eigh ({d}x{d}): 1x": timed(eigh, G),
        f"W G ({K}x{d} @ {d}x{d}): 1x": timed(wg, Wg, G),
        f"ridge-path einsum ({R}x{K} solutions): 1x": timed(path, G, wts, Z),
    }
    res["primitives_s"] = prim
    res["primitives_sum_s"] = sum(v for k, v in prim.items() if not k.startswith("  "))
    return res


# ------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------


SAMPLERS = ("auto", "direct")  # auto = wishart for this (positive) spectrum


def kc_env(args) -> dict[str, str]:
    env = os.environ.copy()
    if args.kc_openblas_threads != "inherit":
        env["OPENBLAS_NUM_THREADS"] = args.kc_openblas_threads
    return env


def run_worker(args, task: dict[str, Any], tmp: Path) -> dict[str, Any]:
    task_path, out_path = tmp / "task.json", tmp / "worker_out.json"
    task_path.write_text(json.dumps(task))
    r = C.run_timed_subprocess(
        [C.python_exe(), __file__, "--worker", str(task_path), str(out_path)],
        env=kc_env(args), timeout=args.timeout, retries=args.retries,
    )
    out = json.loads(out_path.read_text())
    out["worker_stuck_runs"] = r["stuck_runs"]
    return out


def exact_z(per_seed: np.ndarray, p: dict[str, Any]) -> float:
    """max |mean - exact| / SEM at ridge 0 against Theorem 4.1's exact finite-sample value."""
    d, T, T0 = p["d"], p["T"], p["T0"]
    n = np.arange(p["n_max"] + 1)
    exact = p["sigma"] ** 2 * d / (T - d - 1) + n * p["sigma0"] ** 2 * d / (T0 - d - 1)
    x = per_seed[:, :, 0]
    return float(np.max(np.abs(x.mean(0) - exact) / C.sem(x)))


def plain_loops(args, p: dict[str, Any], max_seeds: int, cache: dict[str, Any]) -> dict[str, Any]:
    """Run the numpy loop and scikit-learn once per benchmark run (reused for every seed count).

    Both are a Python loop over independent seeds, so their time is linear in the seed count: they
    run at ``--numpy-seeds`` / ``--sklearn-seeds`` seeds and are extrapolated per seed.
    """
    if cache:
        return cache
    log = lambda s: print(f"[plain loops] {s}", file=sys.stderr, flush=True)  # noqa: E731
    np_seeds = min(max_seeds, args.numpy_seeds or max_seeds)
    t0 = time.perf_counter()
    cache["numpy_errors"] = numpy_chain(p, np_seeds)
    cache["numpy_run_s"], cache["numpy_seeds_run"] = time.perf_counter() - t0, np_seeds
    log(f"numpy loop {cache['numpy_run_s']:.2f} s for {np_seeds} seeds")
    sk_seeds = min(max_seeds, args.sklearn_seeds)
    cache["sklearn_seeds_run"] = sk_seeds
    if sk_seeds > 0:
        t0 = time.perf_counter()
        cache["sklearn_errors"] = sklearn_chain(p, sk_seeds)
        cache["sklearn_run_s"] = time.perf_counter() - t0
        log(f"scikit-learn {cache['sklearn_run_s']:.2f} s for {sk_seeds} seeds")
    return cache


def bench_seeds(args, p: dict[str, Any], n_seeds: int, tmp: Path, *, peak: bool, profile: bool,
                loops: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"seeds": n_seeds}
    log = lambda s: print(f"[{n_seeds} seeds] {s}", file=sys.stderr, flush=True)  # noqa: E731

    # kcollapse, whole process as a user sees it (one fresh process per sampler)
    whole_out = {}
    for sampler in SAMPLERS:
        whole_out[sampler] = tmp / f"whole_{n_seeds}_{sampler}.npy"
        q = dict(p, seeds=n_seeds, out=str(whole_out[sampler]), sampler=sampler)
        r = C.run_timed_subprocess([C.python_exe(), "-c", USER_SCRIPT, json.dumps(q)], env=kc_env(args),
                                   timeout=args.timeout, retries=args.retries)
        row.setdefault("kc", {})[sampler] = {"whole_process_s": r["wall_s"], "whole_process_stuck_runs": r["stuck_runs"]}
        log(f"kcollapse ({sampler}) whole process {r['wall_s']:.2f} s (stuck runs: {r['stuck_runs']})")

    # kcollapse, steady state (+ peak, profile), both samplers in one worker process
    steady_out = {sm: str(tmp / f"steady_{n_seeds}_{sm}.npy") for sm in SAMPLERS}
    w = run_worker(args, {"params": p, "seeds": n_seeds, "repeats": args.repeats, "per_seed_out": steady_out,
                          "samplers": list(SAMPLERS), "peak": peak, "profile": profile}, tmp)
    row["kc_worker"] = w
    kc_seeds = {}
    for sm in SAMPLERS:
        k = row["kc"][sm]
        k.update(w["samplers"][sm])
        log(f"kcollapse ({sm}) steady {k['steady_s']:.3f} s (first call in-process {k['first_call_s']:.2f} s)")
        kc_seeds[sm] = np.load(steady_out[sm])
        if not np.array_equal(kc_seeds[sm], np.load(whole_out[sm])):
            raise AssertionError(f"kcollapse ({sm}) whole-process and steady-state runs differ for the same key")

    # the plain loops (run once per benchmark run, extrapolated per seed)
    plain_loops(args, p, args.max_seeds, loops)
    npe, np_seeds = loops["numpy_errors"], loops["numpy_seeds_run"]
    row["numpy_seeds_run"] = np_seeds
    row["numpy_s"] = loops["numpy_run_s"] * n_seeds / np_seeds
    row["numpy_extrapolated"] = np_seeds != n_seeds
    sk_seeds = loops["sklearn_seeds_run"]
    row["sklearn_seeds_run"] = sk_seeds
    ske = loops.get("sklearn_errors")
    row["sklearn_s"] = loops["sklearn_run_s"] * n_seeds / sk_seeds if sk_seeds else float("nan")
    row["sklearn_extrapolated"] = bool(sk_seeds) and sk_seeds != n_seeds

    # ratios, agreement, throughput per sampler
    for sm in SAMPLERS:
        k = row["kc"][sm]
        k["ratio_numpy_over_kc_whole"] = row["numpy_s"] / k["whole_process_s"]
        k["ratio_numpy_over_kc_steady"] = row["numpy_s"] / k["steady_s"]
        k["ratio_sklearn_over_kc_whole"] = row["sklearn_s"] / k["whole_process_s"]
        k["ratio_sklearn_over_kc_steady"] = row["sklearn_s"] / k["steady_s"]
        k["agreement_numpy_vs_kc"] = C.max_abs_z(npe, kc_seeds[sm])
        k["agreement_sklearn_vs_kc"] = C.max_abs_z(ske, kc_seeds[sm]) if ske is not None and sk_seeds >= 16 else None
        k["max_abs_z_vs_exact_ridge0"] = exact_z(kc_seeds[sm], p)
        fl = kc_flops_per_seed(p["d"], p["T0"], p["T"], p["n_max"], len(p["ridges"]), sm)
        k["flops_per_seed"] = fl
        # executed: the flops XLA runs, counting padded seeds; useful: minimal flops x requested seeds
        k["gflops_steady_executed"] = fl["total"] * w["seeds_computed"] / k["steady_s"] / 1e9
        k["gflops_steady_useful"] = fl["useful_total"] * n_seeds / k["steady_s"] / 1e9
    row["agreement_auto_vs_direct"] = C.max_abs_z(kc_seeds["auto"], kc_seeds["direct"])
    # same seeds, same draws: scikit-learn must reproduce the numpy loop per seed (an exact oracle)
    row["sklearn_vs_numpy_same_seeds_max_rel_diff"] = (
        float(np.max(np.abs(ske - npe[:sk_seeds]) / np.abs(npe[:sk_seeds]))) if ske is not None else None)
    row["numpy_max_abs_z_vs_exact_ridge0"] = exact_z(npe, p)
    return row


def render(report: dict[str, Any]) -> str:
    rows, peak = report["runs"], report.get("matmul_peak", {})
    p64 = peak.get("float64", {}).get("gflops", float("nan"))
    p32 = peak.get("float32", {}).get("gflops", float("nan"))
    env = report["environment"]
    head = (f"### D-Fig1 chain, {report['workload_label']} — {report['timestamp']}\n\n"
            f"{env['device_kind']} ({env['backend']}), {env['cpu_count']} CPUs, JAX {env['jax']}, float64, "
            f"OPENBLAS_NUM_THREADS for kcollapse: {env.get('OPENBLAS_NUM_THREADS') or 'unset'}; "
            f"matmul peak (jnp.dot {peak.get('float64', {}).get('n', '?')}²): "
            f"float64 {p64:.1f} GFLOP/s, float32 {p32:.1f} GFLOP/s. "
            f"Load average at start {env.get('load_average_at_start')}, at the end of the first worker "
            f"{env.get('load_average_at_end')}.\n\n")
    header = ["seeds", "kc sampler", "numpy loop s", "sklearn s", "kc whole-process s", "kc steady s",
              "numpy/kc whole", "numpy/kc steady", "sklearn/kc whole", "sklearn/kc steady", "max|z| numpy–kc",
              "max|z| kc–exact (λ=0)", "GFLOP/seed", "kc GFLOP/s executed (useful)", "% f64 peak", "stuck runs"]
    body = []
    for r in rows:
        npcol = f"{r['numpy_s']:.1f}" + (f" (×{r['seeds']}/{r['numpy_seeds_run']})" if r["numpy_extrapolated"] else "")
        skcol = (f"{r['sklearn_s']:.0f}" + (f" (×{r['seeds']}/{r['sklearn_seeds_run']})" if r["sklearn_extrapolated"] else "")
                 ) if r["sklearn_seeds_run"] else "–"
        for sm in SAMPLERS:
            k = r["kc"][sm]
            body.append([
                r["seeds"], "auto (wishart)" if sm == "auto" else sm, npcol, skcol,
                k["whole_process_s"], k["steady_s"], k["ratio_numpy_over_kc_whole"], k["ratio_numpy_over_kc_steady"],
                k["ratio_sklearn_over_kc_whole"], k["ratio_sklearn_over_kc_steady"],
                k["agreement_numpy_vs_kc"]["max_abs_z"], k["max_abs_z_vs_exact_ridge0"],
                f"{k['flops_per_seed']['total'] / 1e9:.3f}",
                f"{k['gflops_steady_executed']:.1f} ({k['gflops_steady_useful']:.1f})",
                100 * k["gflops_steady_executed"] / p64, k["whole_process_stuck_runs"],
            ])
    text = head + C.markdown_table(header, body) + "\n"
    r0 = rows[0]
    text += (f"\nnumpy loop: {r0['numpy_seeds_run']} seeds run, extrapolated per seed; its own max|z| vs exact "
             f"(λ=0) {r0['numpy_max_abs_z_vs_exact_ridge0']:.2f}. ")
    if r0.get("sklearn_vs_numpy_same_seeds_max_rel_diff") is not None:
        text += (f"scikit-learn: {r0['sklearn_seeds_run']} seeds run, extrapolated; reproduces the numpy loop on the "
                 f"same draws to {r0['sklearn_vs_numpy_same_seeds_max_rel_diff']:.1e} relative. ")
    text += "kcollapse auto vs direct: " + ", ".join(
        f"{r['seeds']} seeds max|z| {r['agreement_auto_vs_direct']['max_abs_z']:.2f}" for r in rows) + (
        f" ({r0['agreement_auto_vs_direct']['cells']} cells).\n")
    text += ("Batches: " + ", ".join(f"{r['seeds']} seeds -> batch {r['kc_worker']['batch_size']}, "
                                     f"{r['kc_worker']['seeds_computed']} computed" for r in rows) + ".\n")
    prof = report.get("profile")
    if prof:
        text += (f"\nProfile (steady state, one compiled batch of {prof['batch']} seeds, default sampler): full "
                 f"{prof['full_batch_s']:.3f} s; downstream only (n_generations=0) {prof['downstream_only_batch_s']:.3f} s; "
                 f"generators (by difference) {prof['generators_by_difference_s']:.3f} s; the same batch with "
                 f"sampler='direct' {prof['direct_full_batch_s']:.3f} s.\n\n")
        prim = [[k, v, 100 * v / prof["full_batch_s"]] for k, v in prof["primitives_s"].items()]
        prim.append(["sum of primitives", prof["primitives_sum_s"], 100 * prof["primitives_sum_s"] / prof["full_batch_s"]])
        text += C.markdown_table(["piece (alone, same shapes, same count)", "s", "% of full batch"], prim) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="seed counts to run (default 64 128; quick: 8)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="steady-state repeats (median)")
    ap.add_argument("--sklearn-seeds", type=int, default=2, help="seeds for scikit-learn (run once, extrapolated per seed); 0 skips")
    ap.add_argument("--numpy-seeds", type=int, default=16,
                    help="run the numpy loop once at this many seeds and extrapolate per seed (0: the largest seed count)")
    ap.add_argument("--no-profile", action="store_true", help="skip the kcollapse profile")
    ap.add_argument("--kc-openblas-threads", default="inherit",
                    help="OPENBLAS_NUM_THREADS for the kcollapse processes (default 'inherit': leave the "
                         "environment alone; kcollapse itself now loads SciPy's OpenBLAS single-threaded, see "
                         "benchmarks/README.md). '1' restores the old workaround")
    ap.add_argument("--timeout", type=float, default=300.0, help="per kcollapse process (s); a stuck one is retried")
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--out-dir", type=Path, default=C.RESULTS_DIR)
    ap.add_argument("--worker", nargs=2, metavar=("TASK", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        task = json.loads(Path(args.worker[0]).read_text())
        C.write_json_atomic(Path(args.worker[1]), worker(task))
        return 0

    base = QUICK if args.quick else FULL
    p = dict(base, ridges=ridge_grid(base["n_log_ridges"]))
    seeds = args.seeds or ([8] if args.quick else [64, 128])
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.sklearn_seeds = min(args.sklearn_seeds, 2)
    args.max_seeds = max(seeds)
    stamp = C.utc_stamp()
    host = C.host_info()  # load average at the very start
    report: dict[str, Any] = {
        "benchmark": "chain",
        "timestamp": stamp,
        "workload_label": ("quick" if args.quick else "D-Fig1")
        + f" (d={p['d']}, T0={p['T0']}, T={p['T']}, n=0..{p['n_max']}, {len(p['ridges'])} ridges)",
        "workload": p,
        "dtype": "float64",
        "flop_model": kc_flops_per_seed.__doc__.strip() + f" eigh counted as {EIGH_FLOPS} d^3, Cholesky d^3/3.",
        "flops_per_seed": {sm: kc_flops_per_seed(p["d"], p["T0"], p["T"], p["n_max"], len(p["ridges"]), sm) for sm in SAMPLERS},
        "notes": [
            "numpy loop: X^T X / T and X^T y / T formed once per (seed, n), np.linalg.solve per ridge value; "
            "run once at --numpy-seeds seeds and extrapolated linearly per seed to every seed count.",
            "scikit-learn: run once at --sklearn-seeds seeds and extrapolated linearly per seed.",
            "kcollapse: sampler='auto' (Wishart/Bartlett moments; the default) and sampler='direct' (every row "
            "drawn) in the same run; GFLOP/s 'executed' = flop model x seeds computed (padding included) / "
            "steady time, 'useful' = minimal flops (B B^T as a triangular product) x requested seeds / steady time.",
            "kcollapse uses common random numbers across n and ridge within a seed (each cell is "
            "distributed as in the paper's protocol); the plain loops draw a fresh downstream set per n.",
            "CPU shared with other work: timings are indicative; rerun to check.",
        ],
        "runs": [],
    }
    loops: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kc_bench_") as td:
        tmp = Path(td)
        for i, s in enumerate(seeds):
            row = bench_seeds(args, p, s, tmp, peak=(i == 0), profile=(i == 0 and not args.no_profile), loops=loops)
            w = row["kc_worker"]
            if i == 0:
                report["environment"] = dict(host, **{k: w[k] for k in
                    ("jax", "backend", "devices", "device_kind", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")},
                    load_average_at_end=w.get("load_average_at_end"), kc_openblas_threads_flag=args.kc_openblas_threads)
                report["matmul_peak"] = w.pop("matmul_peak", {})
                if "profile" in w:
                    report["profile"] = w.pop("profile")
            report["runs"].append(row)

    C.write_report(args.out_dir, "chain", stamp, args.quick, report, render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
