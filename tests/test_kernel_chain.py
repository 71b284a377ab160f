"""The kernel (dual-form) chain simulator, its theory overlay, and the empirical kernel spectrum.

Oracles:

* an exact NumPy replay of the same random draws in **primal** form (linear kernel: ridge on the
  inputs themselves), for every mode (replace / accumulate / mix) and design — the dual algebra and
  the protocol must agree to 1e-8;
* statistical agreement with the primal moment-form simulator ``kcollapse.simulate_chain``;
* the theory: on Gaussian features (where the deterministic equivalents are accurate) and on real
  digits (where the Gaussian-design assumption in feature space is an approximation, with a
  documented, measured tolerance);
* the empirical spectrum of a linear kernel on Gaussian inputs recovers ``Sigma`` and the teacher.
"""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kcollapse as kc
from kcollapse import datasets, kernels
from kcollapse.simulate import KernelData, adaptive_ridge, b_exponent, simulate_kernel_chain

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Exact replay in primal form
# --------------------------------------------------------------------------------------------


def _ridge_np(X, y, lam):
    """Primal ridge in kcollapse's normalisation, written independently (min-norm lstsq at 0)."""
    T, d = X.shape
    if lam == 0:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    return np.linalg.solve(X.T @ X + lam * T * np.eye(d), X.T @ y)


def _replay(key, i, Xp, yp, Xt, yt, cfg, ridges, sampling):
    """NumPy replay of seed ``i`` from the documented key schedule (module docstring of _kernel_chain)."""
    N = Xp.shape[0]
    k_gen, k_down, k_fixed = jax.random.split(jax.random.fold_in(key, i), 3)

    def draw(k, rows):
        if sampling == "with-replacement":
            return np.asarray(jax.random.randint(k, (rows,), 0, N, dtype=jnp.int32))
        return np.asarray(jax.random.choice(k, N, (rows,), replace=False))

    T0, T, n_max = cfg.samples_per_generation, cfg.downstream_samples, cfg.n_generations
    s0, s, lam0 = float(cfg.generator_noise), float(cfg.label_noise), float(cfg.generator_ridge)
    p = float(cfg.synthetic_fraction)
    idx0 = draw(k_fixed, T0) if cfg.design == "fixed" else None
    W = [None]  # W[m] = generator m's weights (f_0 = the target itself)
    sets = []  # accumulate: (rows, labels) of every generator set

    def f(m, idx):
        return yp[idx] if m == 0 else Xp[idx] @ W[m]

    for m in range(1, n_max + 1):
        k_x, k_e = jax.random.split(jax.random.fold_in(k_gen, m))
        idx = idx0 if idx0 is not None else draw(k_x, T0)
        eps = np.asarray(jax.random.normal(k_e, (T0,)))
        syn = f(m - 1, idx)
        if cfg.mode == "mix":
            n_syn = int(np.round(p * T0))
            syn = np.r_[syn[:n_syn], yp[idx][n_syn:]]
        lab = syn + s0 * eps
        sets.append((idx, lab))
        if cfg.mode == "accumulate":
            rows = np.concatenate([a for a, _ in sets])
            W.append(_ridge_np(Xp[rows], np.concatenate([b for _, b in sets]), lam0))
        else:
            W.append(_ridge_np(Xp[idx], lab, lam0))
    k_x, k_e = jax.random.split(k_down)
    idx_d = draw(k_x, T)
    eps_d = np.asarray(jax.random.normal(k_e, (T,)))
    err = np.zeros((n_max + 1, len(ridges)))
    for n in range(n_max + 1):
        lab = f(n, idx_d)
        if cfg.mode == "mix":
            n_syn = int(np.round(p * T))
            lab = np.r_[lab[:n_syn], yp[idx_d][n_syn:]]
        lab = lab + s * eps_d
        rows, labels = idx_d, lab
        if cfg.mode == "accumulate" and n > 0:
            rows = np.concatenate([a for a, _ in sets[:n]] + [idx_d])
            labels = np.concatenate([b for _, b in sets[:n]] + [lab])
        for j, lam in enumerate(ridges):
            w = _ridge_np(Xp[rows], labels, lam)
            err[n, j] = np.mean((Xt @ w - yt) ** 2)
    gen = np.array([0.0] + [np.mean((Xt @ W[m] - yt) ** 2) for m in range(1, n_max + 1)])
    return err, gen


REPLAY = [
    dict(mode="replace", design="fresh", T0=4, sampling="with-replacement"),  # T0 < d: min-norm generator
    pytest.param(dict(mode="replace", design="fixed", T0=12, sampling="with-replacement"), marks=pytest.mark.slow),
    dict(mode="accumulate", design="fresh", T0=4, sampling="with-replacement"),
    pytest.param(dict(mode="mix", design="fresh", T0=12, sampling="without-replacement", frac=0.5),
                 marks=pytest.mark.slow),
]
REPLAY_IDS = ["replace-fresh", "replace-fixed", "accumulate-fresh", "mix-fresh"]


@pytest.mark.parametrize("case", REPLAY, ids=REPLAY_IDS)
def test_linear_kernel_chain_replays_the_primal_chain_exactly(case):
    rng = np.random.default_rng(0)
    d = 6
    Xp, Xt = rng.standard_normal((40, d)), rng.standard_normal((25, d))
    w0 = rng.standard_normal(d)
    yp, yt = np.sin(Xp @ w0), np.sin(Xt @ w0)  # a non-linear target: f0 is data, not a linear teacher
    data = KernelData.from_arrays(Xp, yp, Xt, yt)
    cfg = kc.ChainConfig(samples_per_generation=case["T0"], downstream_samples=9, n_generations=3,
                         generator_noise=0.4, label_noise=0.3, generator_ridge=0.0 if case["T0"] < d else 0.02,
                         synthetic_fraction=case.get("frac", 1.0), mode=case["mode"], design=case["design"])
    ridges = [0.0, 0.05]
    key = jax.random.key(3)
    res = simulate_kernel_chain(key, kernels.Linear(), data, cfg, ridges, n_seeds=3, sampling=case["sampling"])
    for s in range(3):
        err, gen = _replay(key, s, Xp, yp, Xt, yt, cfg, ridges, case["sampling"])
        np.testing.assert_allclose(res.per_seed[s], err, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(res.generator_per_seed[s], gen, rtol=1e-8, atol=1e-12)
    if case["mode"] == "replace":  # seeds do not depend on the batching (one extra compile, so once)
        again = simulate_kernel_chain(key, kernels.Linear(), data, cfg, ridges, n_seeds=2, seed_offset=1,
                                      batch_size=1, sampling=case["sampling"])
        np.testing.assert_allclose(again.per_seed, res.per_seed[1:], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Statistical agreement with the primal simulator
# --------------------------------------------------------------------------------------------


def _gaussian_pool(N, spec, seed):
    """A Gaussian pool ``x ~ N(0, Sigma)`` with a linear target, and the pool distribution's exact spectrum."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, spec.d)) * np.sqrt(np.asarray(spec.eigenvalues))
    w0 = np.asarray(spec.coefficients)
    lam, V = np.linalg.eigh(X.T @ X / N)
    pool_spec = kc.spectra.from_arrays(lam[::-1], (V.T @ w0)[::-1], normalize=False)
    return X, X @ w0, pool_spec


@pytest.mark.slow
def test_linear_kernel_chain_agrees_with_simulate_chain():
    """Kernel chain (draws from a Gaussian pool, error on the pool) vs the primal simulator (fresh
    Gaussian draws with the pool's covariance): same law up to the pool's discreteness.

    Criterion: ``|mean_kernel - mean_primal| <= 4 sqrt(sem_k^2 + sem_p^2) + 2% mean_primal``. The 2 %
    allows for sampling T = 30 of N = 4000 atoms instead of a Gaussian (duplicates have probability
    ~T/N < 1 %). No systematic gap was detected: with 400 + 400 seeds, max |z| = 2.1 (relative gaps
    up to 6 %, all within the noise of the heavy-tailed OLS-chain errors). 200 + 200 seeds here.
    """
    spec = kc.spectra.power_law(8, beta=1.5, r=0.4)
    X, y, pool_spec = _gaussian_pool(4000, spec, seed=1)
    cfg = kc.ChainConfig(samples_per_generation=20, downstream_samples=30, n_generations=3,
                         generator_noise=0.5, label_noise=0.3)
    ridges = [0.0, 0.1]
    kern = simulate_kernel_chain(jax.random.key(0), kernels.Linear(), KernelData.from_arrays(X, y), cfg, ridges,
                                 n_seeds=200)
    prim = kc.simulate_chain(jax.random.key(1), pool_spec, cfg, ridges, n_seeds=200)
    se = np.sqrt(kern.sem**2 + prim.sem**2)
    assert np.all(np.abs(kern.mean - prim.mean) <= 4 * se + 0.02 * prim.mean), (kern.mean, prim.mean, se)
    gse = np.sqrt(kern.generator_sem**2 + prim.generator_sem**2)[1:]
    assert np.all(np.abs(kern.generator_mean - prim.generator_mean)[1:] <= 4 * gse + 0.02 * prim.generator_mean[1:])
    # and both agree with Theorem 4.1's exact identity at ridge 0 (T, T0 >= d + 2)
    exact = np.asarray(kc.theory.ols_chain_exact(np.arange(4), 8, 30, 20, 0.3, 0.5))
    assert np.all(np.abs(kern.mean[:, 0] - exact) <= 4 * kern.sem[:, 0] + 0.02 * exact)


# --------------------------------------------------------------------------------------------
# Theory: the ridge-generator chain
# --------------------------------------------------------------------------------------------


def test_ridge_generator_theory_reduces_to_the_papers_theorems():
    """Where Demystified's theorems apply, the derived recursion gives exactly their numbers."""
    s = kc.spectra.power_law(100, 2.0, 0.375)
    ns = np.arange(5)
    cases = [(300, 200, 0.01, 0.2), (300, 200, 0.0, 0.2), (80, 200, 0.0, 0.3),  # T0 >= d: Cor 4.7, Thm 4.1
             (300, 60, 0.01, 0.0), (300, 60, 0.0, 0.0)]  # T0 < d, noiseless generator: Thm 4.9 extension
    for T, T0, lam, s0 in cases:
        cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=4, generator_noise=s0,
                             label_noise=0.1)
        a = kernels.kernel_chain_theory(s, cfg, [lam])
        b = kc.theory.chain_error(s, ns, T, T0, 0.1, s0, lam)
        np.testing.assert_allclose(a.bias[:, 0], b.bias, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(a.variance[:, 0], b.variance, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(a.collapse[:, 0], b.collapse, rtol=1e-10, atol=1e-14)
    one = kernels.ridge_generator_chain(s, 4, 300, 60, 0.1, 0.0, 0.0)
    assert float(one.total) == pytest.approx(float(a.total[4, 0]), rel=1e-12)
    # a larger generator ridge shrinks the generators: less noise is passed on, more signal is lost
    cfg = kc.ChainConfig(samples_per_generation=60, downstream_samples=300, n_generations=4, generator_noise=1.0,
                         label_noise=0.1, generator_ridge=1e-4)
    lo = kernels.kernel_chain_theory(s, cfg, [0.01])
    hi = kernels.kernel_chain_theory(s, kc.ChainConfig(**{**cfg.as_dict(), "generator_ridge": 0.1}), [0.01])
    assert hi.collapse[1, 0] < lo.collapse[1, 0] and hi.bias[1, 0] > lo.bias[1, 0]
    with pytest.raises(kc.theory.TheoryNotApplicable):
        kernels.kernel_chain_theory(s, kc.ChainConfig(samples_per_generation=50, downstream_samples=300,
                                                      n_generations=2, generator_noise=0.2, mode="accumulate"), [0.0])


@given(st.floats(1.1, 3.0), st.floats(0.05, 1.0), st.integers(10, 400), st.integers(10, 400),
       st.floats(1e-6, 1.0), st.sampled_from([0.0, 1e-4, 1e-2]), st.floats(0.0, 2.0))
def test_ridge_generator_theory_properties(beta, r, T, T0, ridge, ridge0, sigma0):
    """Every part >= 0; the collapse term never decreases with n (U^noise_{n+1} = P(U^noise_n) + noise
    with P a positive linear map, so it grows by induction); no generator noise, no collapse."""
    s = kc.spectra.power_law(100, beta, r)
    cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=4, generator_noise=sigma0,
                         label_noise=0.5, generator_ridge=ridge0)
    th = kernels.kernel_chain_theory(s, cfg, [ridge])
    for part in (th.bias, th.variance, th.collapse, th.generator):
        assert np.all(part >= -1e-12)
    assert np.all(np.diff(th.collapse[:, 0]) >= -1e-12 * th.collapse.max())
    if sigma0 == 0:
        assert np.all(th.collapse == 0)


@pytest.mark.slow
def test_ridge_generator_theory_matches_simulation_on_gaussian_features():
    """The derived recursion (T0 < d, min-norm and ridge generators, sigma0 > 0) on Gaussian features.

    d = 120 power law, pool N = 6000 Gaussian points (population protocol: the pool's exact
    spectrum), 200 seeds. Allowance 5 %: the deterministic equivalents' finite-size error at
    d ~ 100 (3 % in tests/test_theory_simulation.py) plus the pool's discreteness (<= 2 %, see
    the test above). Measured: max gap 4.5 % (n = 1, generator ridge 0.01, z = 1.8), max |z| 1.8
    over the downstream and generator errors of both generator ridges.
    """
    spec = kc.spectra.power_law(120, beta=1.5, r=0.3)
    X, y, pool_spec = _gaussian_pool(6000, spec, seed=2)
    data = KernelData.from_arrays(X, y)
    for lam0 in (0.0, 1e-2):
        cfg = kc.ChainConfig(samples_per_generation=60, downstream_samples=150, n_generations=3,
                             generator_noise=1.0, label_noise=0.5, generator_ridge=lam0)
        ridges = [1e-3, 1e-2]
        res = simulate_kernel_chain(jax.random.key(5), kernels.Linear(), data, cfg, ridges, n_seeds=200)
        th = kernels.kernel_chain_theory(pool_spec, cfg, ridges)
        assert np.all(np.abs(res.mean - th.total) <= 4 * res.sem + 0.05 * th.total), (res.mean, th.total)
        g, gs, gt = res.generator_mean[1:], res.generator_sem[1:], th.generator[1:]
        assert np.all(np.abs(g - gt) <= 4 * gs + 0.05 * gt), (g, gt)


# --------------------------------------------------------------------------------------------
# Real digits: theory overlay from the empirical spectrum (D-Fig5 setting)
# --------------------------------------------------------------------------------------------

#: Documented tolerance of the theory overlay on real digits (docs/notes/kernels.md): the kernel's
#: features are not Gaussian, so the deterministic equivalents are approximate. Criterion
#: |sim - theory| <= 4 SEM + 10 % theory. Measured on the full D-Fig5 run (RBF, T0 = 100, T = 10..1000,
#: n <= 3, 50 seeds): max gap 6.6 % (n = 3, T = 10), max |z| 1.64; n = 0 within 2.9 %. With inputs
#: z-scored per pixel instead (an earlier preprocessing) the largest gap was 9.2 % (n = 2): 10 % is
#: the round number above every gap measured, not tuned on this test.
DIGITS_ALLOWANCE = 0.10


def _digits_setup():
    pool, _ = datasets.prepare(datasets.digits())
    k = kernels.RBF(1.0 / pool.n_features)
    es = kc.spectra.empirical(k, pool.inputs, pool.targets)
    return pool, k, es


def _overlay(pool, k, es, Ts, n_seeds, n_max, T0=100):
    fit = kc.spectra.fit_power_law(es)
    data = KernelData.from_datasets(pool)
    out = []
    for T in Ts:
        cfg = kc.ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=n_max,
                             generator_noise=1.0, label_noise=1.0)
        ridges = adaptive_ridge(T, [fit.ell_crit, fit.ell_crit * b_exponent(T, T0)])
        res = simulate_kernel_chain(jax.random.key(0), k, data, cfg, ridges, n_seeds=n_seeds)
        th = kernels.kernel_chain_theory(es.spectrum, cfg, ridges)
        out.append((res, th.total + es.residual))
    return out


def test_digits_theory_overlay_fast():
    pool, k, es = _digits_setup()
    fit = kc.spectra.fit_power_law(es)
    assert 0.9 < fit.beta < 1.4 and 0.15 < fit.r < 0.45  # measured: beta 1.107, r 0.291 (RBF, gamma = 1/p)
    assert es.residual < 1e-10 and abs(float(es.spectrum.teacher_norm_sq()) - es.target_mean_square) < 1e-10
    for res, th in _overlay(pool, k, es, [150], n_seeds=10, n_max=2):
        assert np.all(np.abs(res.mean - th) <= 4 * res.sem + DIGITS_ALLOWANCE * th), (res.mean, th, res.sem)


@pytest.mark.slow
def test_digits_theory_overlay_and_d_fig5_behaviour():
    """D-Fig5 on real digits: theory overlay within tolerance, and the qualitative behaviour.

    With ell_crit the n >= 1 errors stop improving past T ~ T0 (they rise from T = 100 to 1000);
    with b ell_crit (ridge T0^{-ell_crit}) they keep decreasing.
    """
    pool, k, es = _digits_setup()
    Ts = [30, 100, 300, 1000]
    out = _overlay(pool, k, es, Ts, n_seeds=40, n_max=3)
    for res, th in out:
        assert np.all(np.abs(res.mean - th) <= 4 * res.sem + DIGITS_ALLOWANCE * th), (res.mean, th, res.sem)
    crit = np.array([res.mean[:, 0] for res, _ in out])  # (T, n)
    bcrit = np.array([res.mean[:, 1] for res, _ in out])
    for n in (2, 3):
        assert crit[3, n] > crit[1, n]  # ell_crit: worse at T = 1000 than at T = T0 = 100
    for n in (1, 2, 3):
        assert bcrit[3, n] < bcrit[1, n]  # b ell_crit: still improving


# --------------------------------------------------------------------------------------------
# Empirical spectrum
# --------------------------------------------------------------------------------------------


def test_empirical_spectrum_of_linear_kernel_recovers_sigma_and_teacher():
    """Linear kernel, x ~ N(0, Sigma): Gram eigenvalues / N -> eig(Sigma), energies -> lambda_i c_i^2.

    Exact identity first: the Gram route equals the primal covariance's eigendecomposition (energy
    ``lambda_i (v_i . w0)^2``). Then the estimate: with N = 1500 each sample eigenvalue has relative
    standard deviation ~ sqrt(2/N) = 3.7 %, so 15 % (4 sd) bounds all five; the eigenvalues are well
    separated (ratio >= 3), so the energies have the same accuracy (measured < 5 %).
    """
    lam_true = np.array([1.0, 0.3, 0.1, 0.03, 0.01])
    w0 = np.array([0.5, -1.0, 1.5, 2.0, -3.0])
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 5)) * np.sqrt(lam_true)
    y = X @ w0
    es = kc.spectra.empirical(kernels.Linear(), X, y)
    lam = np.asarray(es.spectrum.eigenvalues)
    assert np.all(lam[5:] == 0) and es.residual < 1e-20  # rank 5: the rest are numerical zeros
    ev, V = np.linalg.eigh(X.T @ X / 1500)
    ev, V = ev[::-1], V[:, ::-1]
    np.testing.assert_allclose(lam[:5], ev, rtol=1e-10)
    np.testing.assert_allclose(es.energies[:5], ev * (V.T @ w0) ** 2, rtol=1e-8)
    np.testing.assert_allclose(lam[:5], lam_true, rtol=0.15)
    np.testing.assert_allclose(es.energies[:5], lam_true * w0**2, rtol=0.15)
    assert float(es.spectrum.teacher_norm_sq()) == pytest.approx(np.mean(y**2), rel=1e-10)
    # a target outside the kernel's range shows up as residual energy: g = sign(x0) x1^2 has
    # E g^2 = 3 * 0.3^2, of which (E|x0| * 0.3)^2 = (2/pi) 0.09 lies along x0; the rest is residual
    # (a fourth-moment estimate: ~10 % relative sampling error at N = 1500, hence 25 %)
    es2 = kc.spectra.empirical(kernels.Linear(), X, y + np.sign(X[:, 0]) * X[:, 1] ** 2)
    assert es2.residual == pytest.approx(0.27 - 0.18 / np.pi, rel=0.25)


def test_power_law_fit_recovers_exponents():
    """On an exact power law with d large enough that truncation is negligible over the fit range."""
    s = kc.spectra.power_law(100_000, beta=1.6, r=0.3)
    fit = kc.spectra.fit_power_law(s, i_min=10, i_max=1000)
    assert fit.beta == pytest.approx(1.6, rel=1e-9)
    # the tail sum of k^{-(1 + 2 beta r)} is i^{-2 beta r}/(2 beta r) (1 + O(1/i)): 1 % from i = 10
    assert fit.r == pytest.approx(0.3, rel=0.01)
    assert fit.ell_crit == pytest.approx(fit.beta / (1 + 2 * fit.beta * fit.r))
    with pytest.raises(ValueError, match="fewer than 3"):
        kc.spectra.fit_power_law(s, i_min=5, i_max=6)


# --------------------------------------------------------------------------------------------
# Validation and the D-Fig5 script
# --------------------------------------------------------------------------------------------


def test_kernel_chain_validation():
    X = np.random.default_rng(0).standard_normal((20, 3))
    data = KernelData.from_arrays(X, X[:, 0])
    cfg = kc.ChainConfig(samples_per_generation=5, downstream_samples=30, n_generations=1)
    with pytest.raises(ValueError, match="without-replacement"):
        simulate_kernel_chain(jax.random.key(0), kernels.RBF(), data, cfg, sampling="without-replacement")
    with pytest.raises(ValueError, match="sampling"):
        simulate_kernel_chain(jax.random.key(0), kernels.RBF(), data, cfg, sampling="bootstrap")
    with pytest.raises(TypeError, match="kernel"):
        simulate_kernel_chain(jax.random.key(0), lambda x, z: x @ z, data, cfg)
    with pytest.raises(MemoryError, match="memory_budget"):
        simulate_kernel_chain(jax.random.key(0), kernels.RBF(), data, cfg, memory_budget=1000)
    with pytest.raises(ValueError, match="ridges"):
        simulate_kernel_chain(jax.random.key(0), kernels.RBF(), data, cfg, ridges=[-1.0])
    with pytest.raises(ValueError, match="test_targets"):
        KernelData.from_arrays(X, X[:, 0], X)
    with pytest.raises(ValueError, match="T > 1"):
        b_exponent(1, 100)
    assert adaptive_ridge(100, 0.5) == pytest.approx(0.1)


@pytest.mark.slow
def test_d_fig5_script_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("d_fig5", ROOT / "paper_figs" / "d_fig5.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "d_fig5.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "d_fig5.json").read_text())
    panel = data["panels"][0]
    assert set(panel) >= {"kernel", "rule", "T", "simulation", "sem", "theory", "beta", "r", "ell_crit"}
    assert np.asarray(panel["simulation"]).shape == np.asarray(panel["theory"]).shape
