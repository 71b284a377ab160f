"""The chain simulator: an independent numpy replay of the same random draws, exact results of
Theorem 4.1 (Demystified) and Gerstgrasser et al., batching invariance, compile-once, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kcollapse as kc
from kcollapse import spectra, theory
from kcollapse.data import sample_design
from kcollapse.simulate import ChainConfig, run_seed, seed_keys, simulate_chain, stage_keys
from kcollapse.simulate._driver import _batch

# ---------------------------------------------------------------------------------------------
# Oracle: replay one seed in plain numpy from the documented key schedule.
# ---------------------------------------------------------------------------------------------


def _np_ridge(X, y, lam):
    if lam == 0:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    T, d = X.shape
    return np.linalg.solve(X.T @ X / T + lam * np.eye(d), X.T @ y / T)


def numpy_replay(seed_key, spec, cfg, ridges, noise=None, return_weights=False):
    """The paper's protocol written out with explicit datasets (labels formed row by row).

    ``noise``: optional ``(generator_eps (n_max, T0), downstream_eps (T,))`` used instead of the
    key's standard-normal label noise (designs still come from the key), so that the conditional
    estimator can be checked by linearity. ``return_weights``: return the fitted weights
    ``(w_hat (n_max + 1, n_ridges, d), generators (n_max + 1, d))`` instead of the errors.
    """
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731 - replay always in float64
    lam = f64(spec.eigenvalues)
    c = f64(spec.coefficients)
    T0, T, n_max = cfg.samples_per_generation, cfg.downstream_samples, cfg.n_generations
    keys = stage_keys(seed_key)
    p = float(cfg.synthetic_fraction) if cfg.mode == "mix" else 1.0
    X0 = f64(sample_design(keys.fixed_design, spec, T0)) if cfg.design == "fixed" else None

    def dataset(k, n_rows, w_syn, scale, X_fixed=None, eps=None):
        kx, ke = jax.random.split(k)
        X = X_fixed if X_fixed is not None else f64(sample_design(kx, spec, n_rows))
        if eps is None:
            eps = f64(jax.random.normal(ke, (n_rows,), dtype=spec.dtype))
        n_syn = int(np.round(p * n_rows))
        W = np.where((np.arange(n_rows) < n_syn)[:, None], w_syn[None], c[None])
        return X, np.sum(X * W, axis=1) + scale * eps

    ws, sets = [c], []
    for m in range(1, n_max + 1):
        X, y = dataset(jax.random.fold_in(keys.generator, m), T0, ws[-1], float(cfg.generator_noise), X0,
                       None if noise is None else noise[0][m - 1])
        sets.append((X, y))
        if cfg.mode == "accumulate":
            X, y = np.concatenate([s[0] for s in sets]), np.concatenate([s[1] for s in sets])
        ws.append(_np_ridge(X, y, float(cfg.generator_ridge)))
    errs = np.zeros((n_max + 1, len(ridges)))
    w_hat = np.zeros((n_max + 1, len(ridges), len(c)))
    for n in range(n_max + 1):
        X, y = dataset(keys.downstream, T, ws[n], float(cfg.label_noise), None, None if noise is None else noise[1])
        if cfg.mode == "accumulate" and n > 0:
            X = np.concatenate([s[0] for s in sets[:n]] + [X])
            y = np.concatenate([s[1] for s in sets[:n]] + [y])
        for j, r in enumerate(ridges):
            w = _np_ridge(X, y, r)
            w_hat[n, j] = w
            errs[n, j] = np.sum(lam * (w - c) ** 2)
    if return_weights:
        return w_hat, np.array(ws)
    gen = np.array([np.sum(lam * (w - c) ** 2) for w in ws])
    return errs, gen


CASES = [
    dict(mode="replace", design="fresh"),
    dict(mode="replace", design="fixed"),
    dict(mode="accumulate", design="fresh"),
    dict(mode="accumulate", design="fixed"),
    dict(mode="mix", design="fresh", synthetic_fraction=0.4),
    dict(mode="mix", design="fixed", synthetic_fraction=0.7),
    dict(mode="replace", design="fresh", generator_ridge=0.05),
    dict(mode="accumulate", design="fresh", generator_ridge=0.02),
]


# Every case at T0 > d; at T0 < d (min-norm generators) half of them by default, the rest with -m slow.
REPLAY_CASES = [pytest.param(case, T0, T, id="-".join(f"{v}" for v in case.values()) + f"-{T0}-{T}",
                             marks=() if T0 > 20 or i in (0, 3, 5, 7) else pytest.mark.slow)
                for T0, T in [(40, 50), (12, 30)] for i, case in enumerate(CASES)]


@pytest.mark.parametrize("case,T0,T", REPLAY_CASES)
def test_chain_equals_numpy_replay(case, T0, T):
    """Moment-form chain = explicit datasets + lstsq/solve, same draws, to rounding."""
    spec = spectra.power_law(20, 1.5, 0.4)
    cfg = ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=3,
                      generator_noise=0.3, label_noise=0.2, **case)
    ridges = np.array([0.0, 0.01, 0.3])
    key = jax.random.fold_in(jax.random.key(7), 3)
    out = jax.jit(run_seed)(key, spec, cfg, jnp.asarray(ridges))
    errs, gen = numpy_replay(key, spec, cfg, ridges)
    np.testing.assert_allclose(out.generator_error, gen, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(out.test_error, errs, rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Statistics: exact finite-sample results (|mean - exact| <= 4 SEM).
# ---------------------------------------------------------------------------------------------


def _zscores(mean, sem, exact):
    return (np.asarray(mean) - np.asarray(exact)) / np.asarray(sem)


THM41_SETTINGS = [
    # (spectrum, d, T0, T, sigma, sigma0, n_max, design, seeds)
    ("isotropic", 40, 80, 120, 0.3, 0.5, 10, "fresh", 600),
    ("power-law", 30, 45, 200, 0.5, 1.0, 10, "fresh", 600),
    ("power-law", 25, 60, 40, 1.0, 0.3, 4, "fixed", 600),
    ("isotropic", 20, 23, 23, 0.2, 0.2, 3, "fresh", 2000),  # T, T0 = d + 3: heavy-tailed regime
]


# Every setting on the default (Wishart) sampler; the direct sampler by default only in the heavy-tailed
# regime (its equality with the Wishart path on the same draws is test_wishart_and_direct_samplers_agree),
# the other direct runs with -m slow (each compiles its own chain).
THM41_CASES = [pytest.param(setting, sampler, id=f"{setting[0]}-d{setting[1]}-{setting[7]}-{sampler}",
                            marks=() if sampler == "wishart" or i == 3 else pytest.mark.slow)
               for i, setting in enumerate(THM41_SETTINGS) for sampler in ("wishart", "direct")]


@pytest.mark.parametrize("setting,sampler", THM41_CASES)
def test_theorem41_exact(setting, sampler):
    name, d, T0, T, sigma, sigma0, n_max, design, seeds = setting
    spec = spectra.isotropic(d) if name == "isotropic" else spectra.power_law(d, 2.0, 0.375)
    cfg = ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                      generator_noise=sigma0, label_noise=sigma, design=design)
    res = simulate_chain(jax.random.key(11), spec, cfg, ridges=[0.0], n_seeds=seeds, sampler=sampler)
    n = np.arange(n_max + 1)
    exact = theory.ols_chain_exact(n, d, T, T0, sigma, sigma0)
    z = _zscores(res.mean[:, 0], res.sem[:, 0], exact)
    assert np.all(np.abs(z) <= 4.0), z
    # generator error of an OLS chain: n sigma0^2 d/(T0 - d - 1)
    zg = _zscores(res.generator_mean[1:], res.generator_sem[1:], exact[1:] - exact[0])
    assert np.all(np.abs(zg) <= 4.0), zg


def test_theorem41_detects_a_wrong_formula():
    """Power check: the same data reject the proportional-limit form at small d (it is not exact)."""
    d, T0, T = 20, 26, 30
    cfg = ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=3,
                      generator_noise=0.5, label_noise=0.2)
    res = simulate_chain(jax.random.key(12), spectra.isotropic(d), cfg, ridges=[0.0], n_seeds=1500)
    n = np.arange(4)
    wrong = theory.ols_chain_proportional(n, d, T, T0, 0.2, 0.5)
    assert np.max(np.abs(_zscores(res.mean[:, 0], res.sem[:, 0], wrong))) > 6


@pytest.mark.parametrize("d,T,sigma", [(10, 30, 0.5), pytest.param(20, 40, 1.0, marks=pytest.mark.slow)])
def test_accumulate_gerstgrasser(d, T, sigma):
    """Fixed design reused, same noise everywhere: E||w_n - w*||^2 = sigma^2 d/(T-d-1) sum_{i<=n} 1/i^2."""
    spec = spectra.power_law(d, 1.5, 0.5)
    cfg = ChainConfig(samples_per_generation=T, downstream_samples=T, n_generations=8,
                      generator_noise=sigma, label_noise=sigma, mode="accumulate", design="fixed")
    res = simulate_chain(jax.random.key(13), spec, cfg, ridges=[0.0], n_seeds=800)
    n = np.arange(1, 9)
    exact = theory.accumulate_ols_exact(n, d, T, sigma)
    z = _zscores(res.generator_mean[1:], res.generator_sem[1:], exact)
    assert np.all(np.abs(z) <= 4.0), z
    # bounded by pi^2/6 times the first iteration, unlike replace which grows linearly
    assert res.generator_mean[-1] < np.pi**2 / 6 * res.generator_mean[1] + 4 * res.generator_sem[-1]


def test_replace_fixed_design_generator_linear():
    """Gerstgrasser replace: sigma^2 d/(T - d - 1) * n with one reused design."""
    d, T, sigma = 15, 40, 0.7
    cfg = ChainConfig(samples_per_generation=T, downstream_samples=T, n_generations=6,
                      generator_noise=sigma, label_noise=sigma, design="fixed")
    res = simulate_chain(jax.random.key(14), spectra.isotropic(d), cfg, ridges=[0.0], n_seeds=800)
    n = np.arange(1, 7)
    exact = sigma**2 * d / (T - d - 1) * n
    assert np.all(np.abs(_zscores(res.generator_mean[1:], res.generator_sem[1:], exact)) <= 4.0)


# ---------------------------------------------------------------------------------------------
# Batching, compilation, dtype
# ---------------------------------------------------------------------------------------------


def _small():
    spec = spectra.power_law(12, 2.0, 0.4)
    cfg = ChainConfig(samples_per_generation=20, downstream_samples=25, n_generations=3,
                      generator_noise=0.3, label_noise=0.1)
    return spec, cfg


def test_batching_invariance():
    spec, cfg = _small()
    key = jax.random.key(5)
    ridges = [0.0, 0.1]
    full = simulate_chain(key, spec, cfg, ridges, n_seeds=10, batch_size=10)
    chunked = simulate_chain(key, spec, cfg, ridges, n_seeds=10, batch_size=4)  # 4 + 4 + 2 (padded)
    np.testing.assert_allclose(chunked.per_seed, full.per_seed, rtol=1e-12, atol=1e-300)
    # seeds 6..9 run on their own (offset) are seeds 6..9 of the big batch
    tail = simulate_chain(key, spec, cfg, ridges, n_seeds=4, seed_offset=6, batch_size=4)
    np.testing.assert_allclose(tail.per_seed, full.per_seed[6:], rtol=1e-12, atol=1e-300)
    head = simulate_chain(key, spec, cfg, ridges, n_seeds=6, batch_size=4)
    merged = kc.simulate.merge_results([head, tail])
    np.testing.assert_allclose(merged.per_seed, full.per_seed, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(merged.seed_indices, np.arange(10))


def test_ridge_sweep_compiles_once():
    spec, cfg = _small()
    key = jax.random.key(0)
    _batch.clear_cache()
    simulate_chain(key, spec, cfg, [0.0, 0.1, 1.0], n_seeds=4)
    size = _batch._cache_size()
    simulate_chain(key, spec, cfg, [0.5, 2.0, 3.0], n_seeds=4)  # new ridge values
    import dataclasses

    simulate_chain(key, spec, dataclasses.replace(cfg, label_noise=0.7, generator_noise=0.1), [0.5, 2.0, 3.0], n_seeds=4)
    assert _batch._cache_size() == size == 1


def test_vmap_over_noise_levels():
    """Noise levels are array leaves: one compiled function vmaps over them."""
    import dataclasses

    spec, cfg = _small()
    keys = seed_keys(jax.random.key(1), np.arange(3))
    batched = dataclasses.replace(cfg, label_noise=jnp.array([0.0, 0.5]))
    axes = dataclasses.replace(cfg, generator_noise=None, label_noise=0, generator_ridge=None, synthetic_fraction=None)
    per_cfg = lambda c: jax.vmap(lambda k: run_seed(k, spec, c, jnp.array([0.0])).test_error)(keys)  # noqa: E731
    out = jax.jit(jax.vmap(per_cfg, in_axes=(axes,)))(batched)
    for i, s in enumerate([0.0, 0.5]):
        ref = simulate_chain(jax.random.key(1), spec, dataclasses.replace(cfg, label_noise=s), [0.0], 3, sampler="direct",
                             estimator="monte-carlo")
        np.testing.assert_allclose(out[i], ref.per_seed, rtol=1e-10, atol=1e-20)


def test_float32_chain_agrees_with_float64():
    """float32 compute on float32 draws = the float64 numpy replay of those same draws."""
    spec, cfg = _small()
    spec32 = spec.astype(jnp.float32)
    ridges = np.array([0.0, 0.1])
    key = jax.random.key(2)
    out = jax.jit(run_seed)(key, spec32, cfg, jnp.asarray(ridges, jnp.float32))
    assert out.test_error.dtype == jnp.float32
    errs, gen = numpy_replay(key, spec32, cfg, ridges)  # replays in float64
    np.testing.assert_allclose(out.test_error, errs, rtol=2e-3)
    np.testing.assert_allclose(out.generator_error[1:], gen[1:], rtol=2e-3)


def test_per_mode_sums_to_total():
    spec, cfg = _small()
    mc = simulate_chain(jax.random.key(3), spec, cfg, [0.0, 0.2], n_seeds=5, per_mode=True, estimator="monte-carlo")
    np.testing.assert_allclose(mc.per_mode_mean.sum(-1), mc.mean, rtol=1e-12)
    # with the conditional estimator the per-mode values are the Monte Carlo ones of the same draws
    res = simulate_chain(jax.random.key(3), spec, cfg, [0.0, 0.2], n_seeds=5, per_mode=True)
    np.testing.assert_allclose(res.per_mode_mean, mc.per_mode_mean, rtol=1e-12)
    np.testing.assert_allclose(res.per_mode_mean.sum(-1), res.mc_per_seed.mean(0), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,word",
    [
        (dict(samples_per_generation=0), "samples_per_generation"),
        (dict(downstream_samples=-5), "downstream_samples"),
        (dict(n_generations=-1), "n_generations"),
        (dict(generator_noise=-0.1), "generator_noise"),
        (dict(label_noise=float("nan")), "label_noise"),
        (dict(generator_ridge=float("inf")), "generator_ridge"),
        (dict(mode="mix", synthetic_fraction=1.5), "synthetic_fraction"),
        (dict(synthetic_fraction=0.5), "only applies to mode='mix'"),
        (dict(mode="average"), "mode must be one of"),
        (dict(design="random"), "design must be one of"),
    ],
)
def test_config_validation(change, word):
    base = dict(samples_per_generation=10, downstream_samples=10)
    base.update(change)
    with pytest.raises((ValueError, TypeError), match=word):
        simulate_chain(jax.random.key(0), spectra.isotropic(3), ChainConfig(**base), [0.0], 2)


def test_driver_validation():
    spec, cfg = _small()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="ridges must be >= 0"):
        simulate_chain(key, spec, cfg, [-1.0], 2)
    with pytest.raises(ValueError, match="ridges must be finite"):
        simulate_chain(key, spec, cfg, [np.nan], 2)
    with pytest.raises(ValueError, match="n_seeds"):
        simulate_chain(key, spec, cfg, [0.0], 0)
    with pytest.raises(TypeError, match="spectrum must be"):
        simulate_chain(key, np.ones(3), cfg, [0.0], 2)
    with pytest.raises(MemoryError, match="memory_budget"):
        simulate_chain(key, spec, cfg, [0.0], 2, memory_budget=10)


def test_memory_model_follows_the_sampler():
    """The Wishart sampler never holds a T x d design, so a long downstream sample fits a budget that the
    direct path (which draws every row) does not: the direct path refuses before allocating."""
    spec = spectra.isotropic(20)
    cfg = ChainConfig(samples_per_generation=40, downstream_samples=200_000, n_generations=1,
                      generator_noise=0.2, label_noise=0.1)
    budget = 32 * 2**20  # the direct path needs 2 T d words = 61 MiB for the downstream design alone
    with pytest.raises(MemoryError, match="memory_budget"):
        simulate_chain(jax.random.key(0), spec, cfg, [0.0], 2, sampler="direct", memory_budget=budget)
    res = simulate_chain(jax.random.key(0), spec, cfg, [0.0], 2, sampler="wishart", memory_budget=budget)
    # OLS downstream at T >> d: error ~ sigma^2 d / T (+ the generator's sigma0^2 d / (T0 - d - 1) at n = 1)
    assert res.mean[0, 0] == pytest.approx(0.01 * 20 / 200_000, rel=0.5)


def test_singular_float32_reports_not_nan():
    """A numerically singular downstream solve never returns a silent NaN."""
    spec = spectra.from_arrays(np.r_[1.0, np.full(9, 1e-30)], dtype=jnp.float32)
    cfg = ChainConfig(samples_per_generation=20, downstream_samples=20, n_generations=1,
                      generator_noise=0.1, label_noise=0.1)
    try:
        res = simulate_chain(jax.random.key(0), spec, cfg, [0.0], 4)
    except FloatingPointError as e:
        assert "non-finite" in str(e)
    else:
        assert np.all(np.isfinite(res.per_seed))


# ---------------------------------------------------------------------------------------------
# The exact Wishart (Bartlett) sampler of the sufficient statistics
# ---------------------------------------------------------------------------------------------


def test_wishart_factor_moments():
    """E[G] = n Sigma and Var(G_ij) = n (Sigma_ij^2 + Sigma_ii Sigma_jj) for G = B B^T."""
    spec = spectra.from_arrays([2.0, 1.0, 0.5])
    n, reps = 5, 20000
    keys = jax.random.split(jax.random.key(3), reps)
    B = jax.vmap(lambda k: kc.data.sample_wishart_factor(k, spec, n))(keys)
    G = np.asarray(B @ jnp.swapaxes(B, 1, 2))
    assert np.allclose(np.triu(np.asarray(B[0]), 1), 0)  # lower triangular (a Cholesky factor)
    S = np.diag(np.asarray(spec.eigenvalues))
    mean_exact = n * S
    var_exact = n * (S**2 + np.outer(np.diag(S), np.diag(S)))
    z_mean = (G.mean(0) - mean_exact) / np.sqrt(var_exact / reps)
    assert np.all(np.abs(z_mean) <= 4), z_mean
    # variance check: the sample variance of G_ij has SE ~ var * sqrt(2/reps) (heavier tails: x3)
    rel = np.abs(G.var(0, ddof=1) / var_exact - 1)
    assert np.all(rel <= 3 * 4 * np.sqrt(2 / reps)), rel
    with pytest.raises(ValueError, match="n_samples must be >= d"):
        kc.data.sample_wishart_factor(keys[0], spec, 2)


@pytest.mark.parametrize("case", [dict(), pytest.param(dict(design="fixed"), marks=pytest.mark.slow),
                                  pytest.param(dict(mode="accumulate"), marks=pytest.mark.slow),
                                  dict(generator_ridge=0.05)],
                         ids=["replace", "fixed", "accumulate", "ridge-generator"])
def test_wishart_and_direct_samplers_agree(case):
    """Both samplers draw from the same law: means agree within 4 combined SEM at every (n, ridge)."""
    spec = spectra.power_law(15, 1.5, 0.4)
    cfg = ChainConfig(samples_per_generation=25, downstream_samples=30, n_generations=4,
                      generator_noise=0.4, label_noise=0.3, **case)
    ridges = [0.0, 0.05, 1.0]
    a = simulate_chain(jax.random.key(21), spec, cfg, ridges, n_seeds=1500, sampler="direct")
    b = simulate_chain(jax.random.key(22), spec, cfg, ridges, n_seeds=1500, sampler="wishart")
    z = (a.mean - b.mean) / np.sqrt(a.sem**2 + b.sem**2)
    assert np.all(np.abs(z) <= 4), z
    zg = (a.generator_mean[1:] - b.generator_mean[1:]) / np.sqrt(a.generator_sem[1:] ** 2 + b.generator_sem[1:] ** 2)
    assert np.all(np.abs(zg) <= 4), zg


def test_sampler_validation():
    spec = spectra.from_arrays([1.0, 0.0, 1.0])
    cfg = ChainConfig(samples_per_generation=5, downstream_samples=5, n_generations=1)
    with pytest.raises(ValueError, match="every eigenvalue > 0"):
        simulate_chain(jax.random.key(0), spec, cfg, [0.0], 2, sampler="wishart")
    with pytest.raises(ValueError, match="sampler"):
        simulate_chain(jax.random.key(0), spec, cfg, [0.0], 2, sampler="bartlett")
    res = simulate_chain(jax.random.key(0), spec, cfg, [0.0], 2)  # auto falls back to direct
    assert np.all(np.isfinite(res.per_seed))


@pytest.mark.parametrize("ridge0", [0.0, 0.05])
def test_eigh_rerun_path_matches_cholesky_path_on_same_draws(ridge0):
    """The driver reruns failed seeds with generator_solver='eigh': same draws, same numbers."""
    spec = spectra.power_law(20, 1.5, 0.4)
    cfg = ChainConfig(samples_per_generation=30, downstream_samples=40, n_generations=3,
                      generator_noise=0.3, label_noise=0.2, generator_ridge=ridge0)
    keys = seed_keys(jax.random.key(0), np.arange(4))
    ridges = jnp.array([0.0, 0.1])
    for sampler in ("wishart", "direct"):
        fast = _batch(keys, spec, cfg, ridges, False, "auto", sampler)
        redo = _batch(keys, spec, cfg, ridges, False, "eigh", sampler)
        np.testing.assert_allclose(redo.test_error, fast.test_error, rtol=1e-10)
        assert int(fast.generator_fallbacks.sum()) == 0
