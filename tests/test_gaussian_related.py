"""THEORY.md §7 results in kcollapse.gaussian: Bertrand et al. mixing, Barzilai & Shamir consistency,
Suresh et al.'s discrete (Wright-Fisher) chain -- formulas vs independent references and vs simulation.

Oracles:

* closed forms written here from the derivation (geometric sums of the 1-D recursions that the
  MLE's conservation of the marginal variance leaves), and an independent NumPy simulator that draws
  and pools every real and synthetic sample (Bertrand mixing);
* scipy binomial pmfs and numpy matrix powers (survival), the Wright-Fisher symmetry
  ``P(c_k = n | c) = P(c_k = 0 | n - c)`` and sums of survival probabilities (absorption and loss times,
  independent of the linear solves), the martingale limit ``c/n``, the ``n -> inf`` branching limit;
* random schedules (hypothesis) for the schedule-free consistency bounds.

Criterion for theory vs simulation: |sim - theory| <= 4 SEM + allowance; the allowance is 0 for every
exact formula here (finite n, m, g; no asymptotics). Asymptotic forms (branching, Feller, Kimura) are
compared with the exact values with allowances measured below and stated where used.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import given
from hypothesis import strategies as st

from kcollapse import gaussian as kg

Z = 4.0


# ------------------------------------------------------------------------------------------------
# Bertrand et al.: real + lambda synthetic
# ------------------------------------------------------------------------------------------------


def naive_mixing(rng, n, m, G, chains, *, fixed, sigma=1.0, delta=None, s0=None):
    """Draw every sample and refit by np.mean / np.var (MLE); returns (mu_g - mu, sigma_g^2) for g = 1..G."""
    real = rng.normal(0, sigma, (chains, n))
    if delta is None:
        mu, var = real.mean(1), real.var(1)
    else:
        mu, var = np.full(chains, float(delta)), np.full(chains, float(s0) ** 2)
    out = [(mu, var)]
    for _ in range(2, G + 1):
        r = real if fixed else rng.normal(0, sigma, (chains, n))
        syn = mu[:, None] + np.sqrt(var)[:, None] * rng.normal(size=(chains, m))
        pool = np.concatenate([r, syn], axis=1)
        mu, var = pool.mean(1), pool.var(1)
        out.append((mu, var))
    return np.stack([o[0] for o in out], 1), np.stack([o[1] for o in out], 1)


@pytest.mark.parametrize("real_data", ["fixed", "fresh"])
@pytest.mark.parametrize("init", ["real_fit", "given"])
def test_mixing_moments_vs_naive_numpy_simulation(real_data, init):
    n, m, G, chains = 6, 9, 6, 40_000
    cfg = kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=G, real_data=real_data, init=init,
                       sigma=1.3, init_mean_offset=0.8, init_std=0.6)
    th = kg.mixing_moments(cfg, np.arange(1, G + 1))
    rng = np.random.default_rng(1 + 2 * (real_data == "fixed") + (init == "given"))
    mu, var = naive_mixing(rng, n, m, G, chains, fixed=real_data == "fixed", sigma=1.3,
                           delta=0.8 if init == "given" else None, s0=0.6)
    for name, x in (("mean_bias", mu), ("mean_sq_error", mu**2), ("variance", var), ("marginal_variance", mu**2 + var)):
        sem = x.std(0, ddof=1) / math.sqrt(chains)
        gap = np.abs(x.mean(0) - th[name])
        ok = gap <= Z * sem + 1e-12 * np.abs(th[name])  # rounding: with init="given", g = 1 is deterministic
        assert ok.all(), (name, x.mean(0), th[name], sem)


def test_mixing_closed_forms():
    """MLE conserves the marginal variance, leaving 1-D geometric recursions (docs/notes/gaussian.md §9)."""
    n, m, s2 = 7, 12, 2.0
    N = n + m
    r = m * (m - 1) / N**2
    g = np.arange(1, 41)
    fresh = kg.mixing_moments(kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=40, real_data="fresh",
                                           sigma=math.sqrt(s2)), g)
    e_star = s2 * N / (n * n + 2 * n * m + m)
    np.testing.assert_allclose(fresh["mean_sq_error"], e_star + r ** (g - 1) * (s2 / n - e_star), rtol=1e-12)
    np.testing.assert_allclose(fresh["marginal_variance"], s2, rtol=1e-13)
    fixed = kg.mixing_moments(kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=40, real_data="fixed",
                                           sigma=math.sqrt(s2)), g)
    drift = s2 * (n - 1) / n * (m / N**2) * (1 - r ** (g - 1)) / (1 - r)
    np.testing.assert_allclose(fixed["mean_sq_error"], s2 / n + drift, rtol=1e-12)
    np.testing.assert_allclose(fixed["variance"], s2 * (n - 1) / n - drift, rtol=1e-12)
    # fixed points: the long iteration and the closed forms
    for cfg, res in (("fresh", fresh), ("fixed", fixed)):
        fp = kg.mixing_fixed_point(kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=1, real_data=cfg,
                                                sigma=math.sqrt(s2)))
        assert fp["mean_sq_error"] == pytest.approx(res["mean_sq_error"][-1], rel=1e-6)
        assert fp["spectral_radius"] == pytest.approx(m / N, rel=1e-12)
    assert kg.mixing_fixed_point(kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=1, real_data="fresh",
                                              sigma=math.sqrt(s2)))["mean_sq_error"] == pytest.approx(e_star, rel=1e-12)


def test_mixing_without_synthetic_is_the_real_mle():
    res = kg.mixing_moments(kg.MixConfig(real_samples=5, synthetic_samples=0, n_generations=4, real_data="fresh"), [1, 4])
    np.testing.assert_allclose(res["mean_sq_error"], 1 / 5, rtol=1e-14)
    np.testing.assert_allclose(res["variance"], 4 / 5, rtol=1e-14)


@given(st.integers(2, 200), st.integers(0, 2000), st.sampled_from(["fixed", "fresh"]))
def test_mixing_stable_for_every_lambda(n, m, real_data):
    """Spectral radius m/N < 1 for every lambda: stable even where the stated factor lambda(1 + L eps/alpha) >= 1."""
    fp = kg.mixing_fixed_point(kg.MixConfig(real_samples=n, synthetic_samples=m, n_generations=1, real_data=real_data))
    assert fp["spectral_radius"] <= m / (n + m) + 1e-12 < 1
    assert 0 <= fp["mean_sq_error"] <= 1.0 and 0 < fp["variance"] <= 1.0
    ratio = kg.mixing_contraction(n, m)
    assert ratio["population"] <= float(kg.bertrand_stated_ratio(m / n)) + 1e-15


def test_population_map_contracts_with_ratio_lambda_over_one_plus_lambda():
    lam = jnp.asarray([0.5, 1.0, 3.0, 20.0])
    f = jax.jit(jax.vmap(lambda l: kg.mixing_population_map(l, 2.0, 0.3, 400, mu=1.0, sigma=1.5)))
    means, variances = f(lam)
    a = np.asarray(lam / (1 + lam))[:, None]
    np.testing.assert_allclose(np.asarray(means[:, 1:20]) - 1.0, (np.asarray(means[:, :19]) - 1.0) * a,
                               rtol=1e-12, atol=1e-15)  # absolute rounding of mu_t - mu around mu = 1
    np.testing.assert_allclose(variances[:, -1], 1.5**2, rtol=1e-6)  # converges for lambda = 20 (stated factor 20)
    dv = np.abs(np.asarray(variances) - 2.25)
    # the variance error's ratio -> a (the (mu_t - mu)^2 term decays like a^2); t = 15..22 keeps the error
    # far above rounding (a^22 >= 3e-11) and the a^2-term's relative share below a^15 <= 3e-5
    late = dv[:, 16:23] / dv[:, 15:22]
    np.testing.assert_allclose(late[:2], np.broadcast_to(a[:2], late[:2].shape), rtol=1e-3)
    ratio = jax.jit(jax.vmap(lambda l: kg.bertrand_stated_ratio(l, lipschitz=2.0, eps=0.1, alpha=0.5)))(lam)
    np.testing.assert_allclose(ratio, lam * 1.4, rtol=1e-14)


def test_simulate_mixing_matches_theory():
    cfg = kg.MixConfig(real_samples=8, synthetic_samples=16, n_generations=30, real_data="fixed", init="given",
                       init_mean_offset=1.0, init_std=0.5)
    g = [1, 2, 5, 30]
    sim = kg.simulate_mixing(jax.random.key(3), cfg, g, 2000, batch_size=1000)
    rows, summary = kg.compare_mixing(cfg, sim)
    assert summary["points"] == 12 and summary["max_abs_z"] <= Z, rows  # generation 1 (the given model) has no rows
    th = kg.mixing_moments(cfg, g)
    np.testing.assert_allclose(th["mean_bias"], (16 / 24) ** (np.array(g) - 1.0), rtol=1e-14)
    # batching does not change results (fold_in per chain)
    part = kg.simulate_mixing(jax.random.key(3), cfg, g, 10, chain_offset=5, batch_size=1000)  # same compilation
    np.testing.assert_allclose(part.mean_shift, sim.mean_shift[5:15], rtol=1e-13)


def test_mixing_validation():
    with pytest.raises(ValueError, match="real_data"):
        kg.MixConfig(real_samples=5, synthetic_samples=5, n_generations=3, real_data="new").validate()
    with pytest.raises(ValueError, match="real_samples"):
        kg.MixConfig(real_samples=1, synthetic_samples=5, n_generations=3).validate()
    with pytest.raises(ValueError, match="generations"):
        kg.mixing_moments(kg.MixConfig(real_samples=5, synthetic_samples=5, n_generations=3), [0, 1])


# ------------------------------------------------------------------------------------------------
# Barzilai & Shamir: accumulate under any schedule
# ------------------------------------------------------------------------------------------------


# a fixed schedule length (40 refits) keeps one compilation per estimator
@given(st.integers(2, 60), st.lists(st.integers(2, 5000), min_size=39, max_size=39), st.sampled_from(["mle", "unbiased"]))
def test_uniform_consistency_bounds_hold_for_every_schedule(m1, later, estimator):
    bs = np.array([m1] + later)
    g = np.arange(bs.size + 1)
    msq = np.asarray(kg.expected_mean_sq_error(g, bs, mode="accumulate", estimator=estimator, dim=2, sigma=1.5))
    var = np.asarray(kg.expected_variance(g, bs, mode="accumulate", estimator=estimator, dim=2, sigma=1.5))
    ub, lb = kg.accumulate_uniform_bounds(m1, estimator=estimator, dim=2, sigma=1.5)
    assert msq.max() <= float(ub) * (1 + 1e-12)
    assert var.min() >= float(lb) * (1 - 1e-12)
    br = kg.accumulate_limit_bracket(bs, estimator=estimator)
    assert br["variance_low"] <= var[-1] / (2 * 1.5**2) * (1 + 1e-12) and br["variance_high"] == pytest.approx(var[-1] / 4.5)


def test_limit_bracket_contains_long_run_and_kazdan_limit():
    n = 10
    br = kg.accumulate_limit_bracket(np.full(50, n))
    lim, _ = kg.kazdan_limits(n)
    assert br["variance_low"] <= float(lim) <= br["variance_high"]
    # a growing schedule: the bracket after 30 refits contains the value after 3000 (any continuation)
    bs = kg.refit_schedule(5, 3000, growth=1.5)
    br = kg.accumulate_limit_bracket(bs[:30])
    far = float(kg.expected_variance(np.array([3000]), bs, mode="accumulate")[0])
    assert br["variance_low"] <= far <= br["variance_high"]
    ub, lb = jax.jit(jax.vmap(lambda m: kg.accumulate_uniform_bounds(m)))(jnp.asarray([2.0, 10.0]))
    np.testing.assert_allclose(ub, [1.0, 0.2]) and np.testing.assert_allclose(lb, [0.0, 0.8])


def test_accumulate_consistent_for_every_growth_replace_only_for_superlinear():
    """sup_t error * M_1 stays bounded for accumulate at any growth; replace needs sum 1/M_k < inf."""
    G = 2000
    t = np.array([G])
    for growth in (0.0, 0.5, 1.0, 2.0):
        errs = []
        for n in (10, 100, 1000):
            bs = kg.refit_schedule(n, G, growth)
            errs.append(float(kg.expected_mean_sq_error(t, bs, mode="accumulate")[0]) * n)
        # 1/M_1 <= sup_t error <= 2/M_1 (the first refit alone gives sigma^2/M_1): O(1/n) at every growth
        assert 1.0 <= min(errs) and max(errs) <= 2.0
    rep = {p: float(kg.expected_mean_sq_error(t, kg.refit_schedule(10, G, p), estimator="unbiased")[0]) for p in (0.0, 1.0, 2.0)}
    assert rep[0.0] == pytest.approx(G / 10) and rep[1.0] == pytest.approx(sum(1 / (10 * k) for k in range(1, G + 1)), rel=1e-3)
    assert rep[2.0] <= math.pi**2 / 60 * (1 + 1e-3)


# ------------------------------------------------------------------------------------------------
# Suresh et al., discrete: the Wright-Fisher chain
# ------------------------------------------------------------------------------------------------


def numpy_survival(n, counts, gens):
    T = ss.binom.pmf(np.arange(n + 1)[None, :], n, np.arange(n + 1)[:, None] / n)
    out = []
    for k in gens:
        dist = np.linalg.matrix_power(T, k)[np.asarray(counts)]  # rows: law of c_k from c_0 = c
        out.append(1 - dist[:, 0])
    return np.array(out)


def test_transition_and_survival_vs_scipy():
    n = 30
    T = np.asarray(kg.wright_fisher_transition(n))
    ref = ss.binom.pmf(np.arange(n + 1)[None, :], n, np.arange(n + 1)[:, None] / n)
    np.testing.assert_allclose(T, ref, atol=1e-14)
    gens, counts = [0, 1, 3, 10, 40], [0, 1, 2, 7, 15, 30]
    np.testing.assert_allclose(kg.survival_probability(counts, gens, n), numpy_survival(n, counts, gens), atol=1e-12)
    far = kg.survival_probability(counts, [3000], n)[0]
    np.testing.assert_allclose(far, np.asarray(counts) / n, atol=1e-10)  # martingale: fixation probability c/n


def test_absorption_and_loss_times_vs_survival_sums():
    n = 40
    tau, loss = kg.absorption_times(n)
    K = 4000  # sums truncated at K: the tails decay like exp(-K/n) (second eigenvalue 1 - 1/n)
    c = np.arange(1, n)
    s = kg.survival_probability(np.arange(n + 1), np.arange(K), n)  # (K, n+1)
    # P(T_abs > k) = s_k(c) + s_k(n - c) - 1 (symmetry: fixation of c = loss of the complement).
    # rtol 1e-7: rows of T sum to 1 within ~1e-14, so s_k drifts by ~k 1e-14 and the 4000-term sums by
    # ~1e-7 absolute (measured max relative gap 1.3e-8)
    np.testing.assert_allclose(tau[c], (s[:, c] + s[:, n - c] - 1).sum(0), rtol=1e-7)
    np.testing.assert_allclose(loss[c], (s[:, c] - c / n).sum(0) / (1 - c / n), rtol=1e-7)
    # Kimura's diffusion is the n -> inf form; its error is largest at the boundary counts (c = 1, n - 1).
    # Measured max relative gaps: E T 7.3% (n = 40), 4.7% (n = 400); loss time 8.6% (40), 5.4% (400).
    kt, kl = kg.kimura_times(c, n)
    np.testing.assert_allclose(tau[c], kt, rtol=0.10)
    np.testing.assert_allclose(loss[c[:-1]], kl[:-1], rtol=0.10)


def test_branching_limit_feller_form_and_suresh_bound():
    counts, gens = np.array([1, 3, 10]), np.array([1, 5, 20])
    ex = kg.survival_probability(counts, gens, 1500)
    br = kg.branching_survival(counts, gens)
    # n -> inf at fixed c, k; the binomial-vs-Poisson error is O(1/n): measured max 1.7e-3 at n = 1500
    # (2.6e-3 at n = 1000, 6.4e-4 at n = 4000)
    np.testing.assert_allclose(ex, br, atol=0.003)
    q1 = math.exp(-1.0)
    assert br[0, 0] == pytest.approx(1 - q1)  # one round: P(Poisson(1) > 0)
    fe = np.asarray(kg.feller_survival(counts[None, :], gens[:, None]))
    assert np.all(np.abs(fe[1:] - br[1:]) <= 0.12)  # Feller is the k -> inf form (measured max gap 0.091)
    for n in (5, 20, 100):
        g = np.arange(0, 4 * n)
        exact = kg.survival_probability(np.arange(n + 1), g, n)
        bound = np.asarray(kg.suresh_survival_bound(np.arange(n + 1)[None, :], g[:, None]))
        assert np.all(exact >= bound - 1e-12)
    f = jax.jit(jax.vmap(kg.feller_survival))
    np.testing.assert_allclose(f(jnp.asarray([1.0, 2.0]), jnp.asarray([2.0, 4.0])), [1 - math.exp(-1)] * 2)
    f = jax.jit(jax.vmap(kg.suresh_survival_bound))
    np.testing.assert_allclose(f(jnp.asarray([1.0, 2.0]), jnp.asarray([1.0, 4.0])), [1 - math.exp(-1), 1 - math.exp(-0.5)])
    tt = jax.jit(jax.vmap(kg.kimura_times, in_axes=(0, None)))(jnp.asarray([1.0, 2.0]), 10.0)
    assert tt[0].shape == (2,)


def test_median_forgetting_time_is_linear_in_count():
    n = 1000
    counts = np.array([2, 4, 8, 16])
    med = kg.forgetting_time_quantile(counts, n, 0.5, max_generations=150)
    slope = np.polyfit(counts, med, 1)[0]
    # Feller: median = 2c/ln 2 (slope 2.885); measured exact medians 5, 10, 22, 45 (slope 2.878) at n = 1000 and 3000
    assert slope == pytest.approx(2 / math.log(2), rel=0.02)
    assert np.isinf(kg.forgetting_time_quantile([n], n, 0.5, max_generations=10)[0])


def test_categorical_simulation_matches_exact_survival():
    corpus = np.array([1, 2, 5, 12, 60])  # n = 80
    gens = [0, 1, 4, 16, 60]
    sim = kg.simulate_categorical(jax.random.key(11), corpus, gens, 2000)
    rows, summary = kg.compare_categorical(sim)
    assert summary["max_abs_z"] <= Z and summary["bounds_violated"] == 0, summary
    assert all(r["exact_holds"] for r in rows if r["quantity"] == "survival_suresh_lower_bound")
    assert np.all(sim.alive[:, 0])


def test_discrete_validation():
    with pytest.raises(ValueError, match="counts"):
        kg.survival_probability([5], [1], 4)
    with pytest.raises(ValueError, match="5000"):
        kg.survival_probability([1], [1], 6000)
