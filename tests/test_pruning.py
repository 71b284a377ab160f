"""Pruned synthesized labels (Feng et al. 2406.07515 Thm 4.2/E.3): oracles, simulation, properties."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from hypothesis import given
from hypothesis import strategies as hst

from kcollapse import pruning

D, M = 10, 1.0  # the (d, ||mu||) shared by most tests, so one accuracy table serves them


@pytest.fixture(scope="module")
def table():
    return pruning.accuracy_table(M, D, M * math.sqrt(20000))


def g_reference(c, m, d):
    """Independent oracle for G(c): adaptive scipy integral over the angle, via scipy's non-central t density."""
    if d == 1:
        return st.norm.cdf(c) * st.norm.cdf(m) + st.norm.cdf(-c) * st.norm.cdf(-m)
    nu = d - 1

    def f(th):
        return st.norm.cdf(m * np.cos(th)) * st.nct.pdf(np.sqrt(nu) / np.tan(th), nu, c) * np.sqrt(nu) / np.sin(th) ** 2

    return si.quad(f, 0, np.pi, limit=400, epsabs=1e-14, epsrel=1e-13)[0]


# ------------------------------------------------------------------------------------------
# rates and the stated law
# ------------------------------------------------------------------------------------------


def test_breakdown_point_special_cases():
    assert float(pruning.breakdown_point(0.7, 0.7)) == pytest.approx(0.5)  # no pruning
    assert float(pruning.breakdown_point(0.3, 0.0)) == 1.0  # oracle pruning
    assert float(pruning.breakdown_point(1.0, 0.5)) == pytest.approx(2 / 3)
    # 1/(1 + psi/phi) as printed
    assert float(pruning.breakdown_point(0.8, 0.2)) == pytest.approx(1 / (1 + 0.2 / 0.8), rel=1e-15)
    g = jax.grad(lambda psi: pruning.breakdown_point(0.8, psi))(0.2)
    assert float(g) == pytest.approx(-0.8 / (0.8 + 0.2) ** 2, rel=1e-12)


@given(p=hst.floats(0.001, 0.999), phi=hst.floats(0.01, 1.0), psi=hst.floats(0.01, 1.0))
def test_pruned_flip_rate_crosses_half_at_breakdown(p, phi, psi):
    pe = float(pruning.pruned_flip_rate(p, phi, psi))
    ps = float(pruning.breakdown_point(phi, psi))
    assert 0 <= pe <= 1
    if abs(p - ps) > 1e-9:
        assert (pe < 0.5) == (p < ps)
    # Bayes' rule written differently: P(wrong | kept)
    assert pe == pytest.approx(1 / (1 + (1 - p) * phi / (p * psi)), rel=1e-12)
    assert float(pruning.pruned_flip_rate(ps, phi, psi)) == pytest.approx(0.5, abs=1e-12)


def test_limit_accuracy_is_the_step():
    m = 2.0
    acc = np.asarray(pruning.limit_accuracy(jnp.array([0.1, 0.6, 2 / 3, 0.7, 0.95]), 1.0, 0.5, m))
    bayes = st.norm.cdf(m)
    np.testing.assert_allclose(acc, [bayes, bayes, 0.5, 1 - bayes, 1 - bayes], atol=1e-12)
    # the paper's 100 % / 0 % is the separable limit
    assert float(pruning.limit_accuracy(0.5, 1.0, 0.5, 40.0)) == 1.0
    assert float(pruning.limit_accuracy(0.8, 1.0, 0.5, 40.0)) == 0.0


# ------------------------------------------------------------------------------------------
# the exact finite-(N, d) accuracy
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3, 7, 16, 40])
def test_conditional_accuracy_quadrature_vs_scipy(d):
    cs = np.array([-5.0, 0.0, 0.4, 1.5, 6.0, 19.0, 25.0])
    for m in (0.5, 2.5):
        got = np.asarray(pruning.conditional_accuracy_quadrature(cs, m, d))
        ref = np.array([g_reference(c, m, d) for c in cs])
        np.testing.assert_allclose(got, ref, atol=1e-11)


def test_interpolated_table_error(table):
    cs = np.concatenate([np.linspace(-12, 12, 97), [37.3, 101.0, 140.0]])
    direct = np.asarray(pruning.conditional_accuracy_quadrature(cs, M, D))
    interp = np.asarray(pruning.conditional_accuracy(cs, table))
    assert np.abs(direct - interp).max() < 2e-7  # linear interpolation on an 8193-point asinh grid
    np.testing.assert_allclose(np.asarray(pruning.conditional_accuracy(-cs, table)), 1 - interp, atol=1e-15)


def _oracle_accuracy(n, d, m, p, phi, psi):
    """Independent numpy/scipy oracle: full multinomial over (kept correct C, kept wrong W), scipy G."""
    pc, pw = (1 - p) * phi, p * psi
    total = 0.0
    for c in range(n + 1):
        for w in range(n + 1 - c):
            prob = st.multinomial.pmf([c, w, n - c - w], n, [pc, pw, 1 - pc - pw])
            if prob < 1e-16:
                continue
            k = c + w
            total += prob * (0.5 if k == 0 else g_reference(m * (c - w) / math.sqrt(k), m, d))
    return total


@pytest.mark.parametrize("p", [0.2, 0.55, 0.8])
def test_finite_accuracy_vs_scipy_multinomial_oracle(p):
    n, d, m, phi, psi = 9, 3, 1.3, 0.8, 0.4
    got = pruning.finite_accuracy(n, d, m, p, phi, psi)
    assert float(got.mass) == pytest.approx(1.0, abs=1e-13)
    assert float(got.accuracy) == pytest.approx(_oracle_accuracy(n, d, m, p, phi, psi), abs=3e-7)


def test_finite_accuracy_d1_closed_form():
    # d = 1: the classifier is sign(A mu + sqrt(K) g); E acc = Phi(m) P(A m + sqrt K g > 0) + Phi(-m) P(< 0)
    n, m, p, phi, psi = 15, 0.7, 0.3, 1.0, 0.6
    got = float(pruning.finite_accuracy(n, 1, m, p, phi, psi).accuracy)
    pc, pw = (1 - p) * phi, p * psi
    ref = 0.0
    for c in range(n + 1):
        for w in range(n + 1 - c):
            prob = st.multinomial.pmf([c, w, n - c - w], n, [pc, pw, 1 - pc - pw])
            k = c + w
            up = 0.5 if k == 0 else st.norm.cdf(m * (c - w) / math.sqrt(k))
            ref += prob * (0.5 if k == 0 else up * st.norm.cdf(m) + (1 - up) * st.norm.cdf(-m))
    assert got == pytest.approx(ref, abs=3e-7)


def test_exact_vs_simulation_statistics_and_samples(table, key):
    n, phi, psi = 200, 0.9, 0.45  # p* = 2/3
    ps = np.array([0.2, 0.6, 2 / 3, 0.72, 0.9])
    exact = np.asarray(jax.jit(jax.vmap(lambda p: pruning.finite_accuracy(n, D, M, p, phi, psi, table=table).accuracy))(ps))
    for sampler, seeds in (("statistics", 4000), ("samples", 1000)):
        sim = pruning.simulate_pruning(key, n, D, M, ps, phi, psi, n_seeds=seeds, sampler=sampler)
        z = (sim.mean() - exact) / sim.sem()
        assert np.all(np.abs(z) <= 4.0), (sampler, z)  # exact formula: no finite-size allowance
        kept = n * ((1 - ps) * phi + ps * psi)
        assert np.all(np.abs(sim.mean(1) - kept) <= 4 * sim.sem(1))


def test_crossing_is_exactly_p_star_and_sharpens(table):
    phi, psi = 0.9, 0.45
    ps = float(pruning.breakdown_point(phi, psi))
    h = 1e-3
    slopes, gaps = [], []
    for n in (30, 300, 3000):
        f = jax.jit(jax.vmap(lambda p, n=n: pruning.finite_accuracy(n, D, M, p, phi, psi, table=table).accuracy))
        at, left, right, far = (float(v) for v in f(jnp.array([ps, ps - h, ps + h, 0.3])))
        # derived: G is odd about 1/2 and p_eff(p*) = 1/2, so the 50 % crossing is exactly p* at every N
        assert at == pytest.approx(0.5, abs=1e-12) and left > 0.5 > right
        slopes.append((left - right) / (2 * h))
        gaps.append(abs(far - float(pruning.limit_accuracy(0.3, phi, psi, M))))
    # the step sharpens: slope at p* grows like sqrt(N) (x sqrt(10) ~ 3.16 per decade, asymptotically)
    assert slopes[0] < slopes[1] < slopes[2]
    assert 2.0 < slopes[2] / slopes[1] < 3.6
    # and away from p* the accuracy approaches the N -> inf law monotonically
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-2


@pytest.mark.slow
def test_deterministic_equivalent_error_shrinks_with_d():
    # The DE drops O(1) fluctuations of the drift c = m A/sqrt(K) next to its O(sqrt(d)) transition scale, so
    # it becomes exact as d grows with N/d fixed (not as N grows at fixed d).
    phi, psi = 1.0, 0.5
    ps = jnp.array([0.3, 0.55, 0.62, 0.66, 0.7, 0.8])
    errs = []
    for d in (10, 100, 1000):
        n = 20 * d
        tab = pruning.accuracy_table(M, d, M * math.sqrt(n))
        ex = jax.vmap(lambda p, n=n, d=d, tab=tab: pruning.finite_accuracy(n, d, M, p, phi, psi, table=tab).accuracy)(ps)
        de = pruning.deterministic_equivalent_accuracy(n, d, M, ps, phi, psi)
        errs.append(float(jnp.max(jnp.abs(ex - de))))
    assert errs[0] > errs[1] > errs[2]


_SMALL_TABLE = {}


def _small(n):
    """jitted exact accuracy at d = 3, ||mu|| = 0.8 for a few N (one table, one compilation per N)."""
    if n not in _SMALL_TABLE:
        tab = pruning.accuracy_table(0.8, 3, 0.8 * math.sqrt(40))
        _SMALL_TABLE[n] = jax.jit(lambda p, phi, psi: pruning.finite_accuracy(n, 3, 0.8, p, phi, psi, table=tab).accuracy)
    return _SMALL_TABLE[n]


@given(p=hst.floats(0.0, 1.0), phi=hst.floats(0.05, 1.0), psi=hst.floats(0.05, 1.0), n=hst.sampled_from([1, 2, 7, 40]))
def test_property_accuracy_side_of_half_matches_breakdown(p, phi, psi, n):
    acc = float(_small(n)(p, phi, psi))
    bayes = st.norm.cdf(0.8)
    assert 1 - bayes - 1e-9 <= acc <= bayes + 1e-9
    ps = phi / (phi + psi)
    if p < ps - 1e-6 and p * psi > 0:
        assert acc > 0.5 - 1e-12
    elif p > ps + 1e-6:
        assert acc < 0.5 + 1e-12


def test_jit_vmap_public_functions(table):
    ps = jnp.linspace(0.05, 0.95, 7)
    f = jax.jit(jax.vmap(lambda p: pruning.finite_accuracy(50, D, M, p, 1.0, 0.5, table=table).accuracy))
    one = jax.jit(lambda p: pruning.finite_accuracy(50, D, M, p, 1.0, 0.5, table=table).accuracy)
    loop = np.array([float(one(p)) for p in ps])
    np.testing.assert_allclose(np.asarray(f(ps)), loop, atol=1e-13)
    for fn in (lambda p: pruning.breakdown_point(1 - p / 2, p), lambda p: pruning.pruned_flip_rate(p, 0.9, 0.4),
               lambda p: pruning.keep_rate(p, 0.9, 0.4), lambda p: pruning.limit_accuracy(p, 0.9, 0.4, 1.0),
               lambda p: pruning.deterministic_equivalent_accuracy(100, 10, 1.0, p, 0.9, 0.4)):
        np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(ps)), np.array([float(fn(p)) for p in ps]),
                                   rtol=1e-13)


def test_simulation_batching_invariance(key):
    a = pruning.simulate_pruning(key, 50, 4, 1.0, [0.3, 0.7], 1.0, 0.5, n_seeds=6, batch_size=3)
    b = pruning.simulate_pruning(key, 50, 4, 1.0, [0.3, 0.7], 1.0, 0.5, n_seeds=6, batch_size=6)
    c = pruning.simulate_pruning(key, 50, 4, 1.0, [0.3, 0.7], 1.0, 0.5, n_seeds=3, batch_size=3, seed_offset=3)
    np.testing.assert_array_equal(a.per_seed[3:], c.per_seed)
    np.testing.assert_array_equal(a.per_seed, b.per_seed)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(flip_rates=[1.2]), "flip_rates"), (dict(keep_correct=-0.1), "keep_correct"),
    (dict(n_samples=0), "n_samples"), (dict(sampler="bogus"), "sampler"), (dict(signal=-1.0), "signal"),
])
def test_simulate_validation(kwargs, needle, key):
    args = dict(n_samples=10, dim=2, signal=1.0, flip_rates=[0.3], keep_correct=1.0, keep_wrong=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        pruning.simulate_pruning(key, **args, n_seeds=2)


# ------------------------------------------------------------------------------------------
# supervised pruning with a linear verifier
# ------------------------------------------------------------------------------------------

SCENARIOS = [(0.3, 0.2, math.pi / 2), (0.6, 0.25, math.pi / 2), (0.55, 0.35, 2.5), (0.3, 0.2, 0.0)]


@pytest.mark.parametrize("eg,ev,beta", SCENARIOS)
def test_verifier_rates_vs_scipy_orthants(eg, ev, beta):
    dirs = pruning.verifier_directions(eg, ev, beta)
    c = dirs @ dirs.T
    r = pruning.verifier_rates(c[0, 1], c[0, 2], c[1, 2])
    assert float(r.flip_rate) == pytest.approx(eg, abs=1e-12)
    # oracle: P(all three projections > 0) by scipy's multivariate normal CDF (Genz), times 2 for the sign flip
    cov = c + 1e-12 * np.eye(3)
    # Genz's algorithm is randomised: fixed seed, and an error target far below the tolerance
    opts = dict(allow_singular=True, seed=0, maxpts=2_000_000, abseps=1e-8, releps=1e-8)
    mvn = st.multivariate_normal(np.zeros(3), cov, **opts)
    same = 2 * mvn.cdf(np.full(3, 1e-300))
    assert float(r.right_kept) == pytest.approx(same, abs=2e-5)
    # wrong & kept: generator and verifier agree, truth differs: flip the truth's sign
    flip = np.diag([-1.0, 1.0, 1.0])
    wrong = 2 * st.multivariate_normal(np.zeros(3), flip @ cov @ flip, **opts).cdf(np.full(3, 1e-300))
    assert float(r.wrong_kept) == pytest.approx(wrong, abs=2e-5)
    # exact breakdown equivalence derived in docs/notes/pruning.md §3
    acc = float(pruning.verifier_limit_accuracy(c[0, 1], c[0, 2], c[1, 2]))
    p_star = float(pruning.breakdown_point(r.keep_correct, r.keep_wrong))
    assert (acc > 0.5) == (eg < p_star)


def test_verifier_breakdown_at_exact_point():
    # unrelated mistakes (90 deg), verifier error 0.2: rho_g + rho_v = 0 at generator error 0.8
    dirs = pruning.verifier_directions(0.8, 0.2)
    c = dirs @ dirs.T
    r = pruning.verifier_rates(c[0, 1], c[0, 2], c[1, 2])
    assert float(pruning.breakdown_point(r.keep_correct, r.keep_wrong)) == pytest.approx(0.8, abs=1e-12)
    assert float(pruning.verifier_limit_accuracy(c[0, 1], c[0, 2], c[1, 2])) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("eg,ev,beta", SCENARIOS[:3])
def test_verifier_simulation_vs_theory(eg, ev, beta, key):
    dirs = pruning.verifier_directions(eg, ev, beta)
    c = dirs @ dirs.T
    r = pruning.verifier_rates(c[0, 1], c[0, 2], c[1, 2])
    n, d, seeds = 1000, 10, 1500
    per = pruning.simulate_verifier(key, dirs, n, d, n_seeds=seeds)
    mean, sem = per.mean(0), per.std(0, ddof=1) / math.sqrt(seeds)
    theory = np.array([float(pruning.verifier_finite_accuracy(c[0, 1], c[0, 2], c[1, 2], n, d)),
                       float(r.flip_rate), float(r.right_kept), float(r.wrong_kept)])
    z = (mean - theory) / sem
    # the delta-method accuracy has an O(N^-2) remainder (~(d/N)^2 = 1e-4 x O(1)) << its SEM (~3e-4)
    assert np.all(np.abs(z) <= 4.0), z


def test_verifier_jit_vmap():
    rho = jnp.linspace(-0.5, 0.9, 5)
    f = jax.jit(jax.vmap(lambda r: pruning.verifier_rates(r, 0.8, 0.3).keep_wrong))
    np.testing.assert_allclose(np.asarray(f(rho)), [float(pruning.verifier_rates(r, 0.8, 0.3).keep_wrong) for r in rho],
                               rtol=1e-13)
    g = jax.jit(jax.vmap(lambda r: pruning.verifier_finite_accuracy(r, 0.8, 0.3, 500, 8)))
    np.testing.assert_allclose(np.asarray(g(rho)),
                               [float(pruning.verifier_finite_accuracy(r, 0.8, 0.3, 500, 8)) for r in rho], rtol=1e-12)
