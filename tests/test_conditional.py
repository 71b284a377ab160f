"""The conditional-risk (variance-reduced) estimator.

Oracles:

* exactness: the expected error over all label noise given the designs, computed independently
  from the numpy replay of the same designs (explicit datasets, lstsq/solve). The replay is affine
  in the noise vector ``e`` (every generator set's and the downstream set's standard normals), so
  ``w_hat = a + M e`` with ``a`` the replay at ``e = 0`` and column ``j`` of ``M`` the replay at the
  unit vector ``e_j`` minus ``a``; then ``E||w_hat - w0||_Sigma^2 = ||a - w0||_Sigma^2 + tr(Sigma M M^T)``.
* unbiasedness on every sampler: the Monte Carlo error of the same draws minus the conditional
  risk has conditional mean exactly 0, so its paired z-score over seeds is ~N(0, 1) (|z| <= 4).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_simulate import CASES, numpy_replay

import kcollapse as kc
from kcollapse import spectra
from kcollapse.simulate import ChainConfig, run_seed, simulate_chain


def conditional_oracle(key, spec, cfg, ridges):
    lam, c = np.asarray(spec.eigenvalues), np.asarray(spec.coefficients)
    n_max, T0, T = cfg.n_generations, cfg.samples_per_generation, cfg.downstream_samples
    n_noise = n_max * T0 + T

    def replay(e):
        return numpy_replay(key, spec, cfg, ridges, noise=(e[: n_max * T0].reshape(n_max, T0), e[n_max * T0:]),
                            return_weights=True)

    a_hat, a_gen = replay(np.zeros(n_noise))
    cols = [replay(np.eye(n_noise)[j]) for j in range(n_noise)]
    M_hat = np.stack([w - a_hat for w, _ in cols], axis=-1)  # (n+1, R, d, n_noise)
    M_gen = np.stack([g - a_gen for _, g in cols], axis=-1)  # (n+1, d, n_noise)
    risk = np.sum(lam * (a_hat - c) ** 2, axis=-1) + np.einsum("i,nrij->nr", lam, M_hat**2)
    gen = np.sum(lam * (a_gen - c) ** 2, axis=-1) + np.einsum("i,nij->n", lam, M_gen**2)
    return risk, gen


# Every mode/design/generator case at T0 > d and T0 < d; a representative half runs by default
# (each case compiles its own chain), the rest with -m slow.
_FAST = {(0, 16), (4, 16), (1, 6), (7, 6)}  # replace, mix, fixed design, ridge generator + accumulate
ORACLE_CASES = [pytest.param(case, T0, T, id="-".join(f"{v}" for v in case.values()) + f"-T0={T0}",
                             marks=() if (i, T0) in _FAST else pytest.mark.slow)
                for T0, T in [(16, 14), (6, 11)] for i, case in enumerate(CASES)]


@pytest.mark.parametrize("case,T0,T", ORACLE_CASES)
def test_conditional_risk_equals_linear_oracle(case, T0, T):
    """Same designs, all noise integrated out: moment-form recursion = explicit linear map."""
    spec = spectra.power_law(8, 1.5, 0.4)
    cfg = ChainConfig(samples_per_generation=T0, downstream_samples=T, n_generations=3,
                      generator_noise=0.3, label_noise=0.2, **case)
    ridges = np.array([0.0, 0.01, 0.3])
    key = jax.random.fold_in(jax.random.key(5), 2)
    out = jax.jit(lambda k: run_seed(k, spec, cfg, jnp.asarray(ridges), estimator="conditional"))(key)
    risk, gen = conditional_oracle(key, spec, cfg, ridges)
    np.testing.assert_allclose(out.generator_error, gen, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(out.test_error, risk, rtol=1e-7, atol=1e-12)
    # the Monte Carlo companion is the plain estimator of the same draws
    mc = jax.jit(lambda k: run_seed(k, spec, cfg, jnp.asarray(ridges)))(key)
    np.testing.assert_allclose(out.mc_test_error, mc.test_error, rtol=1e-10)


PAIRED = [
    dict(mode="replace", design="fresh", sampler="wishart"),  # the O(d^2) OLS step + G^{-1} update
    dict(mode="replace", design="fresh", sampler="wishart", generator_ridge=0.05),
    dict(mode="accumulate", design="fresh", sampler="wishart"),
    dict(mode="replace", design="fixed", sampler="wishart"),
    dict(mode="mix", design="fresh", sampler="direct", synthetic_fraction=0.6),
]


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if i in (0, 2, 4) else pytest.mark.slow) for i, c in
                                  enumerate(PAIRED)], ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_conditional_agrees_with_monte_carlo(case):
    """Paired z-test on every sampler (the Wishart paths have no numpy replay)."""
    case = dict(case)
    sampler = case.pop("sampler")
    spec = spectra.power_law(12, 1.5, 0.4)
    cfg = ChainConfig(samples_per_generation=24, downstream_samples=20, n_generations=4,
                      generator_noise=0.5, label_noise=0.3, **case)
    res = simulate_chain(jax.random.key(3), spec, cfg, ridges=[0.0, 0.02, 0.5], n_seeds=400, sampler=sampler)
    assert res.estimator == "conditional"
    z = res.estimator_agreement()
    assert np.max(np.abs(z)) <= 4.0, z
    gdiff = res.generator_mc_per_seed[:, 1:] - res.generator_per_seed[:, 1:]
    zg = gdiff.mean(0) / (gdiff.std(0, ddof=1) / np.sqrt(gdiff.shape[0]))
    assert np.max(np.abs(zg)) <= 4.0, zg
    # never worse than Monte Carlo: Var(MC) = Var(conditional) + E Var(MC | designs)
    ratio = res.mc_per_seed.var(0) / res.per_seed.var(0)
    assert np.all(ratio > 0.9), ratio


def test_variance_reduction_is_large_where_noise_dominates():
    """OLS chain: the error is mostly label noise, so conditioning removes most of the variance.

    Given the designs the risk is sigma^2 tr(G^{-1} Sigma)-like sums of d terms, whose spread is
    O(1/d) relative, against the O(1/sqrt d) spread of a chi-square-like Monte Carlo error, so the
    variance ratio grows like d (measured ~70 at d = 30, T0 = 60; asserted > 5 at d = 20).
    """
    spec = spectra.isotropic(20)
    cfg = ChainConfig(samples_per_generation=40, downstream_samples=60, n_generations=5,
                      generator_noise=0.5, label_noise=0.3)
    res = simulate_chain(jax.random.key(1), spec, cfg, ridges=[0.0], n_seeds=300)
    ratio = res.mc_per_seed.var(0) / res.per_seed.var(0)
    assert np.all(ratio[1:] > 5.0), ratio


def test_estimator_choice_and_validation():
    spec = spectra.isotropic(5)
    cfg = ChainConfig(samples_per_generation=10, downstream_samples=10, n_generations=1,
                      generator_noise=0.1, label_noise=0.1)
    mc = simulate_chain(jax.random.key(0), spec, cfg, n_seeds=3, estimator="monte-carlo")
    assert mc.estimator == "monte-carlo" and mc.mc_per_seed is None
    with pytest.raises(ValueError, match="estimator_agreement needs"):
        mc.estimator_agreement()
    cond = simulate_chain(jax.random.key(0), spec, cfg, n_seeds=3)
    np.testing.assert_allclose(cond.mc_per_seed, mc.per_seed, rtol=1e-12)  # same draws
    with pytest.raises(ValueError, match="estimator"):
        simulate_chain(jax.random.key(0), spec, cfg, n_seeds=3, estimator="rao-blackwell")
    with pytest.raises(ValueError, match="share config, ridges and estimator"):
        kc.simulate.merge_results([cond, mc])


def test_conditional_float32_agrees_with_float64_oracle():
    """float32 compute (matmuls at HIGHEST precision) on float32 draws = the float64 linear oracle."""
    spec32 = spectra.power_law(8, 1.5, 0.4).astype(jnp.float32)
    cfg = ChainConfig(samples_per_generation=16, downstream_samples=14, n_generations=3,
                      generator_noise=0.3, label_noise=0.2)
    ridges = np.array([0.0, 0.05])
    key = jax.random.key(9)
    out = jax.jit(lambda k: run_seed(k, spec32, cfg, jnp.asarray(ridges, jnp.float32), estimator="conditional"))(key)
    assert out.test_error.dtype == jnp.float32
    risk, gen = conditional_oracle(key, spec32, cfg, ridges)  # float64 on the float32 designs
    # float32 eps 1.2e-7 times the conditioning of the Gram solves (T0 = 2d: cond ~ 30) and 3
    # generations of covariance propagation: measured max relative error ~1e-5; 1e-3 is the bound.
    np.testing.assert_allclose(out.test_error, risk, rtol=1e-3)
    np.testing.assert_allclose(out.generator_error[1:], gen[1:], rtol=1e-3)
