"""A Tale of Tails (kcollapse.tails): exact sums vs independent references, limits, asymptotic laws, simulator.

Oracles (STYLE.md practice 11):

* the exact sums against a brute-force NumPy/SciPy sum over 1e6 tokens plus the second-order Hurwitz
  zeta remainder (written independently of the Euler-Maclaurin engine);
* the n-generation chain against a dense SciPy Wright-Fisher computation, and its two algorithms
  (forward recursion, coalescent dual) against each other;
* limit identities (T = 0, T -> inf, fraction 0/1, start = k + 1, temperature 1, ...);
* the asymptotic laws: fitted log-log slopes and ratios of the exact sums, with allowances from the
  derived next-order term (below);
* simulator vs exact theory: ``-4 SEM <= sim - theory <= 4 SEM + truncation_bound``. The only finite-size effect is the one-sided vocabulary truncation, bounded
  analytically; the exact theory has no asymptotic approximation, so no further allowance is needed.
  SEM is the sample SEM, or the exact upper bound ``sqrt(sum p_i^2 u_i (1-u_i)/seeds)`` where that is
  larger (plateaus, where no seed misses a rare token and the sample SEM is 0), floored at the float64
  round-off scale 1e-12.

Next-order term used for the allowances (derived in kcollapse/tails/_asymptotics.py): for training on
``q ∝ i^{-b}``, ``E = A T^{-c'} (1 - c'(c'+1)/(2T) + O(T^-2))``, ``c' = (beta-1)/b`` (from
``(1-q)^T = e^{-Tq}(1 - T q^2/2 + ...)``); the sum-vs-integral difference is smaller than any power
of T (measured 1e-10 at T = 100). Allowances are 2x the first neglected term.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

import kcollapse.tails as kt
from kcollapse.tails._generations import count_truncation

Z = 4.0
N_BRUTE = 1_000_000
_I = np.arange(1, N_BRUTE + 1, dtype=float)


def p_brute(beta):
    return _I**-beta / sp.zeta(beta)


def brute_error(beta, blocks):
    """``sum_i p_i prod_b (1 - q_b,i)^{T_b}`` over i <= N_BRUTE + second-order remainder.

    ``blocks``: list of (T_b, q_b array over i <= N_BRUTE, [(a_j, s_j)] with q_b,i = sum a_j i^-s_j beyond N).
    Beyond N: prod_b (1 - q_b)^{T_b} = 1 - sum T_b q_b + [(sum T_b q_b)^2 - sum T_b q_b^2]/2 + O((Tq)^3).
    """
    p = p_brute(beta)
    log_g = sum(T * np.log1p(-q) for T, q, _ in blocks)
    head = np.sum(p * np.exp(log_g))
    z, n1 = sp.zeta(beta), N_BRUTE + 1
    terms = [(T * a, s) for T, _, pieces in blocks for a, s in pieces]
    tail = sp.zeta(beta, n1) - sum(a * sp.zeta(beta + s, n1) for a, s in terms)
    tail += sum(a1 * a2 * sp.zeta(beta + s1 + s2, n1) for a1, s1 in terms for a2, s2 in terms) / 2
    tail -= sum(T * a1 * a2 * sp.zeta(beta + s1 + s2, n1) for T, _, pieces in blocks for a1, s1 in pieces
                for a2, s2 in pieces) / 2
    return head + tail / z


def zipf_q(s, lo=1, hi=None):
    z = sp.zeta(s, lo) - (sp.zeta(s, hi + 1) if hi is not None else 0.0)
    q = np.where((_I >= lo) & ((_I <= hi) if hi is not None else True), _I**-s / z, 0.0)
    return q, ([(1 / z, s)] if hi is None else [])


def mix(pi, a, b):
    return pi * a[0] + (1 - pi) * b[0], [(pi * x, s) for x, s in a[1]] + [((1 - pi) * x, s) for x, s in b[1]]


# --------------------------------------------------------------------------------------------
# exact sums vs brute force
# --------------------------------------------------------------------------------------------

TS = [0.0, 3.0, 100.0, 5e3, 2e5]


@pytest.mark.parametrize("beta", [pytest.param(1.2, marks=pytest.mark.slow), 1.5, pytest.param(2.5, marks=pytest.mark.slow)])
def test_exact_sums_match_brute_force(beta):
    k, start, pi = 40, 300, 0.07
    cases = {
        "clean": (kt.clean_error(jnp.asarray(TS), beta), zipf_q(beta)),
        "top-k": (kt.top_k_error(jnp.asarray(TS), beta, k), zipf_q(beta, 1, k)),
        "narrow": (kt.narrowing_error(jnp.asarray(TS), beta, temperature=0.6), zipf_q(beta / 0.6)),
        "grokking": (kt.grokking_error(jnp.asarray(TS), beta, k, pi), mix(pi, zipf_q(beta), zipf_q(beta, 1, k))),
        "narrow-mix": (kt.narrowing_mixture_error(jnp.asarray(TS), beta, pi, beta_ai=3.0),
                       mix(pi, zipf_q(beta), zipf_q(3.0))),
        "buy-tail": (kt.buy_tail_error(jnp.asarray(TS), beta, k, start, 0.3),
                     mix(0.3, zipf_q(beta, start), zipf_q(beta, 1, k))),
    }
    for name, (got, (q, pieces)) in cases.items():
        want = np.array([brute_error(beta, [(T, q, pieces)]) for T in TS])
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-14, err_msg=name)
    got = kt.real_plus_ai_error(700.0, jnp.asarray(TS), beta, k)
    want = [brute_error(beta, [(700.0, *zipf_q(beta)), (T, *zipf_q(beta, 1, k))]) for T in TS]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10)


def test_result_does_not_depend_on_the_explicit_vocabulary():
    # The Euler-Maclaurin tail replaces the explicit sum beyond `vocab`: 512 and 16384 must agree.
    T = jnp.logspace(0, 12, 5)
    f = lambda v: kt.narrowing_mixture_error(T, 1.3, 0.2, beta_ai=4.0, vocab=v)  # noqa: E731
    np.testing.assert_allclose(np.asarray(f(512)), np.asarray(f(1 << 13)), rtol=1e-10)


def test_variance_bound():
    beta, k = 1.5, 5
    T = jnp.asarray([3.0, 30.0, 300.0])
    bound = np.asarray(kt.error_variance_bound([T], beta, [kt.top_k(beta, k)]))
    p = p_brute(beta)[:k]
    q = p / p.sum()
    for j, t in enumerate(np.asarray(T)):
        u = (1 - q) ** t
        np.testing.assert_allclose(bound[j], np.sum(p**2 * u * (1 - u)), rtol=1e-10)  # the diagonal, brute force
        # exact variance (the tail i > k is never seen: a constant): covariances (1-q_i-q_j)^T - u_i u_j <= 0
        both = (1 - q[:, None] - q[None, :]) ** t
        np.fill_diagonal(both, u)
        var = p @ both @ p - (p @ u) ** 2
        assert 0 <= var <= bound[j] * (1 + 1e-12)
    # clean law, infinite vocabulary: against the brute-force diagonal
    got = np.asarray(kt.error_variance_bound([jnp.asarray([10.0, 1e4])], beta, [kt.zipf(beta)]))
    P = p_brute(beta)
    want = [np.sum(P**2 * np.exp(t * np.log1p(-P)) * -np.expm1(t * np.log1p(-P))) for t in (10.0, 1e4)]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_tail_mass_and_pmf():
    for beta in (1.1, 1.5, 3.0):
        for n in (0, 1, 10, 10**6):
            want = sp.zeta(beta, n + 1) / sp.zeta(beta)
            np.testing.assert_allclose(float(kt.tail_mass(n, beta)), want, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(kt.zipf_pmf(jnp.arange(1.0, 6.0), beta)), p_brute(beta)[:5], rtol=1e-13)
        law = kt.mixture(0.3, kt.zipf(beta), kt.top_k(beta, 7))
        np.testing.assert_allclose(np.asarray(law.pmf(jnp.arange(1.0, 9.0))), mix(0.3, zipf_q(beta), zipf_q(beta, 1, 7))[0][:8],
                                   rtol=1e-13)


# --------------------------------------------------------------------------------------------
# limit identities
# --------------------------------------------------------------------------------------------


def test_limit_identities():
    beta, k, start = 1.5, 40, 300  # the cut-offs of test_exact_sums_match_brute_force (shared compilations)
    T = jnp.asarray(TS)
    clean = np.asarray(kt.clean_error(T, beta))
    assert abs(clean[0] - 1.0) <= 1e-15  # T = 0: nothing seen (round-off of the sum)
    # fraction 1 = clean; fraction 0 = top-k; temperature 1 = clean; start = k + 1 with the default
    # fraction P(i >= start) gives q = p exactly; no AI data = clean on T_real
    top = np.asarray(kt.top_k_error(T, beta, k))
    np.testing.assert_allclose(np.asarray(kt.grokking_error(T, beta, k, 1.0)), clean, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(kt.grokking_error(T, beta, k, 0.0)), top, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(kt.narrowing_error(T, beta, temperature=1.0)), clean, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(kt.narrowing_mixture_error(T, beta, 1.0, beta_ai=3.0)), clean, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(kt.real_plus_ai_error(T, 0.0, beta, k)), clean, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(kt.real_plus_ai_error(0.0, T, beta, k)), top, rtol=1e-12)
    # T -> inf: everything in the support is learned; the error tends to the p-mass off the support.
    # For the bought tail the approach is the clean law at the effective size pi T/P(i >= start).
    huge = jnp.asarray([1e12, 1e15, 1e18, 1e21, 1e24])
    np.testing.assert_allclose(np.asarray(kt.top_k_error(huge, beta, k)), float(kt.tail_mass(k, beta)), rtol=1e-12)
    excess = np.asarray(kt.buy_tail_error(huge, beta, k, start, 0.5)) - float(kt.buy_tail_limit(beta, k, start))
    approach = np.asarray(kt.clean_law(huge * 0.5 / kt.tail_mass(start - 1, beta), beta))
    assert np.all(excess >= 0) and np.all(excess <= approach + 1e-15)  # (1e-15: round-off of the difference)
    np.testing.assert_allclose(excess[-2:], approach[-2:], rtol=1e-3)
    assert float(kt.buy_tail_limit(beta, k, k + 1)) == 0.0


def test_buy_tail_with_start_k_plus_1_is_clean():
    T = jnp.asarray(TS)
    np.testing.assert_allclose(np.asarray(kt.buy_tail_error(T, 1.5, 40, 41)), np.asarray(kt.clean_error(T, 1.5)), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# the n-generation chain
# --------------------------------------------------------------------------------------------


def wright_fisher_dense(Ts, T0, n_max, beta, n_tokens=200_000):
    """Independent reference: ``sum_i p_i b_i^T P^{n-1} h`` with dense SciPy binomials (small T0).

    Returns ``(len(Ts), n_max)`` errors for n = 1..n_max.
    """
    c = np.arange(T0 + 1)
    P = binom.pmf(c[None, :], T0, c[:, None] / T0)
    p = p_brute(beta)[:n_tokens]
    B = binom.pmf(c[None, :], T0, p[:, None])
    out = np.empty((len(Ts), n_max))
    for j, T in enumerate(Ts):
        h = (1 - c / T0) ** T
        for n in range(1, n_max + 1):
            head = float(np.sum(p * (B @ h)))
            # tokens beyond n_tokens: T0 p < 1e-5, so E[.] = 1 - T0 p (1 - h(1)) + O((T0 p)^2)
            tail = (sp.zeta(beta, n_tokens + 1) - T0 * (1 - h[1]) * sp.zeta(2 * beta, n_tokens + 1) / sp.zeta(beta)) / sp.zeta(beta)
            out[j, n - 1] = head + tail
            h = P @ h
    return out


# Every fast generation test uses n_max = 5 and count caps K = T0 = 40 or K = 256 (T0 >= 256, T >= T0/3),
# so the forward kernel compiles twice in the whole module.


def test_generations_match_dense_wright_fisher():
    T0, beta = 40, 1.5
    Ts = [25.0, 40.0, 200.0]
    got = np.asarray(kt.generations_error(Ts, T0, 5, beta))
    np.testing.assert_allclose(got[:, 0], np.asarray(kt.clean_error(jnp.asarray(Ts), beta)), rtol=1e-14)
    np.testing.assert_allclose(got[:, 1:], wright_fisher_dense(Ts, T0, 5, beta), rtol=1e-9)


@pytest.mark.parametrize("T,T0", [(40, 40), pytest.param(60, 3000, marks=pytest.mark.slow)])
def test_generations_forward_equals_dual(T, T0):
    fwd = np.asarray(kt.generations_error([float(T)], T0, 5, 1.5, method="forward"))
    dual = np.asarray(kt.generations_error([float(T)], T0, 5, 1.5, method="dual"))
    np.testing.assert_allclose(fwd, dual, rtol=1e-11)
    np.testing.assert_allclose(np.asarray(kt.finite_sample_error(float(T), T0, 1.5)), fwd[0, 1], rtol=1e-13)


def test_generations_law_corrects_theorem_24():
    beta, c = 1.5, 1 / 3
    ratios = {}
    for T0 in (256, 2560):
        T = np.array([T0, 10 * T0], dtype=float)
        exact = np.asarray(kt.generations_error(T, T0, 5, beta))
        law = np.stack([np.asarray(kt.generations_law(T, T0, n, beta)) for n in range(6)], -1)
        ratios[T0] = exact / law - 1
    # corrected law: relative error O(1/T0) (measured ~2.5/T0): x10 in T0 shrinks it ~x10
    assert np.max(np.abs(ratios[2560])) < 0.003
    shrink = np.abs(ratios[2560]) / np.abs(ratios[256])
    assert np.all((shrink > 0.05) & (shrink < 0.15)), shrink
    # the printed law (collapse term n T0^{-c}) is not the chain's: at T = T0 generation 5 is
    # (phi^(5)(1))^{-c} = 1.55 times generation 0, while the printed law gives 1 + 5 = 6
    exact = np.asarray(kt.generations_error([2560.0], 2560, 5, beta))[0]
    np.testing.assert_allclose(exact[5] / exact[0], float(kt.phi_iterate(1.0, 5)) ** -c, rtol=0.005)
    printed = float(kt.generations_law_printed(2560.0, 2560.0, 5, beta) / kt.generations_law_printed(2560.0, 2560.0, 0, beta))
    assert printed == pytest.approx(6.0) and exact[5] / exact[0] < 0.3 * printed
    # limit identity: T -> inf learns every token of generation n, i.e. the T0 draws from generation
    # n - 1: E^(n)(inf) = E^(n-1)(T0) (at T = 100 T0 the remainder is below e^{-100})
    plateau = np.asarray(kt.generations_error([100 * 2560.0], 2560, 5, beta))[0]
    np.testing.assert_allclose(plateau[1:], exact[:-1], rtol=1e-12)


def test_phi_iterate_large_n_identity():
    # 1/phi^(n)(u) = 1/u + n/2 + (1/6) log n + O(1): the collapse term grows like (n/(2 T0))^c
    for u in (0.1, 1.0, 10.0):
        for n in (10, 100, 10_000):
            gap = 1 / float(kt.phi_iterate(u, n)) - 1 / u - n / 2
            assert 0 < gap < np.log(n) / 6 + 1.0


@given(T=st.floats(1.0, 3000.0), beta=st.floats(1.1, 4.0))
def test_generations_monotone_in_n(T, beta):
    T0 = 40  # K = T0: shares the compilation of test_generations_match_dense_wright_fisher
    # Convex order: the empirical law of generation n + 1 is a mean-preserving spread of generation
    # n's and (1 - x)^T is convex, so E^(n) is non-decreasing in n; and E^(n) is in [0, 1].
    e = np.asarray(kt.generations_error([float(T)], T0, 5, beta))[0]
    assert np.all(np.diff(e) >= -1e-12 * e[:-1]) and np.all((e >= 0) & (e <= 1 + 1e-12))


# --------------------------------------------------------------------------------------------
# asymptotic laws vs the exact sums
# --------------------------------------------------------------------------------------------


def next_order(c, T):
    return c * (c + 1) / (2 * T)


@pytest.mark.parametrize("beta", [1.3, 1.5, 2.0, 3.0])
def test_hutter_law_and_exponent(beta):
    c = float(kt.tail_exponents(beta).clean)
    T = np.logspace(3, 8, 11)
    E = np.asarray(kt.clean_error(jnp.asarray(T), beta))
    law = np.asarray(kt.clean_law(jnp.asarray(T), beta))
    # ratio - 1 = -c(c+1)/(2T) to next order
    # (rtol: the O(1/T^2) term is 2% of the first at T = 1e3; atol: the engine's 1e-10 accuracy)
    np.testing.assert_allclose(E / law - 1, -next_order(c, T), rtol=0.02, atol=1e-10)
    slope = np.polyfit(np.log(T[5:]), np.log(E[5:]), 1)[0]
    # d log E/d log T = -c + c(c+1)/(2T); over T >= 1e5.5 the drift is below 2 next_order(c, 1e5.5)
    assert abs(slope + c) <= 2 * next_order(c, T[5])


@pytest.mark.parametrize("beta,beta_ai", [(1.5, 3.0), (2.0, 2.5), (1.5, 1.2)])
def test_narrowing_law_and_exponent(beta, beta_ai):
    # Cor 2.3: E ≍ T^{-(beta-1)/beta'} for any beta' > 1 (slower than clean iff beta' > beta)
    c2 = float(kt.tail_exponents(beta, beta_ai).narrowing)
    T = np.logspace(4, 10, 13)
    E = np.asarray(kt.narrowing_error(jnp.asarray(T), beta, beta_ai=beta_ai))
    law = np.asarray(kt.narrowing_law(jnp.asarray(T), beta, beta_ai))
    assert np.all(np.abs(E / law - 1) <= 2 * next_order(c2, T))
    slope = np.polyfit(np.log(T), np.log(E), 1)[0]
    assert abs(slope + c2) <= 2 * next_order(c2, T[0])


@pytest.mark.parametrize("beta", [1.5, 2.0])
def test_top_k_plateau_theorem_21(beta):
    c = 1 - 1 / beta
    # the plateau is exactly P(i > k) (test_limit_identities); it is ≍ k^{-(beta-1)}:
    # zeta(beta, k+1) = (k+1/2)^{1-beta}/(beta-1) (1 + O(k^-2)), so the local slope is
    # -(beta-1) k/(k+1/2): allowance (beta-1)/k_min
    ks = np.array([100, 1000, 10_000])
    plateau = np.array([float(kt.tail_mass(int(k), beta)) for k in ks])
    slope = np.polyfit(np.log(ks), np.log(plateau), 1)[0]
    assert abs(slope + (beta - 1)) <= (beta - 1) / ks[0]
    # uniform leading order (incomplete-gamma form, fraction 0 = top-k) over 11 decades of T:
    # next-order c(c+1)/(2T) from (1-q)^T, and the midpoint split at k + 1/2, O(beta^2/k^2)
    k = 40
    T = np.logspace(1, 12, 8)
    E = np.asarray(kt.top_k_error(jnp.asarray(T), beta, k))
    U = np.asarray(kt.grokking_law(jnp.asarray(T), beta, k, 0.0))
    assert np.all(np.abs(E / U - 1) <= 2 * next_order(c, T) + beta**2 / k**2)
    # onset: the plateau is reached at T ≍ k^beta (E within 1% of it at 30 zeta k^beta, far above at k^beta/30)
    plateau_k = float(kt.tail_mass(k, beta))
    assert float(kt.top_k_error(30 * sp.zeta(beta) * k**beta * np.log(100.0), beta, k)) < 1.01 * plateau_k
    assert float(kt.top_k_error(k**beta / 30, beta, k)) > 2 * plateau_k
    # Thm 2.1 sum law C T^-c + P(i > k) is an upper bound (to next order) and E >= P(i > k)
    S = np.asarray(kt.top_k_law(jnp.asarray(T), beta, k))
    assert np.all(E <= S * (1 + 2 * next_order(c, T))) and np.all(E >= plateau_k * (1 - 1e-12))


def test_grokking_theorem_32_plateau_length():
    beta, c = 1.5, 1 / 3
    # late stage: E / C (pi T)^{-c} -> 1 (once pi T >> k^beta the head is learned)
    for k, pi in ((400, 1e-3), (1000, 1e-4)):
        T = np.logspace(3, 4, 3) * k**beta / pi
        E = np.asarray(kt.grokking_error(jnp.asarray(T), beta, k, pi))
        assert np.all(np.abs(E / np.asarray(kt.clean_law(jnp.asarray(pi * T), beta)) - 1) < 2 * next_order(c, pi * T) + 1e-6)
    # plateau of length ~k^beta/pi: E(y k^beta/pi)/P(i > k) is a function of y only, R(y) =
    # (beta-1) Gamma(c) zeta^{1-1/beta} y^{-c} P(c, y/zeta)/beta, up to O(1/k)
    z = sp.zeta(beta)
    y = np.array([0.1, 1.0, 10.0])
    R = (beta - 1) * sp.gamma(c) * z ** (1 - 1 / beta) * y**-c * sp.gammainc(c, y / z) / beta
    for k, pi in ((400, 1e-3), (400, 1e-4), (1000, 1e-4)):
        E = np.asarray(kt.grokking_error(jnp.asarray(y * k**beta / pi), beta, k, pi))
        # the split at k + 1/2 shifts y by O(beta/(2k)): allowance beta/k
        assert np.all(np.abs(E / float(kt.tail_mass(k, beta)) / R - 1) < beta / k), (k, pi)
    # uniform leading-order law
    T = np.logspace(1, 12, 8)
    E = np.asarray(kt.grokking_error(jnp.asarray(T), beta, 400, 1e-3))
    U = np.asarray(kt.grokking_law(jnp.asarray(T), beta, 400, 1e-3))
    assert np.all(np.abs(E / U - 1) <= 2 * next_order(c, T) + beta**2 / 400**2)


def test_narrowing_mixture_theorem_c2_is_a_minimum():
    beta, b2, pi = 1.5, 3.0, 1e-2
    c, c2 = 1 - 1 / beta, (beta - 1) / b2
    z, z2 = sp.zeta(beta), sp.zeta(b2)
    Tx = float(kt.narrowing_switch_point(beta, b2, pi))
    T = Tx * np.logspace(-4, 4, 17)
    E = np.asarray(kt.narrowing_mixture_error(jnp.asarray(T), beta, pi, beta_ai=b2))
    clean_term = np.asarray(kt.clean_law(jnp.asarray(pi * T), beta))
    ai_term = np.asarray(kt.narrowing_law(jnp.asarray((1 - pi) * T), beta, b2))
    # both terms are upper bounds (q >= pi p and q >= (1 - pi) q'), to next order
    assert np.all(E <= clean_term * (1 + 2 * next_order(c, pi * T))) and np.all(E <= ai_term * (1 + 2 * next_order(c2, T)))
    # and E -> each term far on its side of the switch. Relative deficit <= the first-order effect of
    # the other source on the relevant tokens (integral form, e^{-x} >= 1 - x):
    late = (1 - pi) * T * sp.gamma((beta + b2 - 1) / beta) / (sp.gamma(c) * z2) * (pi * T / z) ** (-b2 / beta)
    early = pi * T * sp.gamma((2 * beta - 1) / b2) / (sp.gamma(c2) * z) * ((1 - pi) * T / z2) ** (-beta / b2)
    right, left = T > 100 * Tx, T < Tx / 100
    assert np.all(E[right] / clean_term[right] >= 1 - late[right] - 2 * next_order(c, pi * T[right]))
    assert np.all(E[left] / ai_term[left] >= 1 - early[left] - 2 * next_order(c2, T[left]))
    # corrected switch point: pi T_x = (pi/(1-pi))^{-a} up to the constants' ratio (printed form)
    a = float(kt.tail_exponents(beta, b2).switch)
    const = (float(kt.hutter_constant(beta)) / float(kt.hutter_constant(beta, b2))) ** (1 / (c - c2))
    np.testing.assert_allclose(pi * Tx, const * (pi / (1 - pi)) ** -a, rtol=1e-10)


def test_buy_tail_theorem_31_and_real_plus_ai_corollary_33():
    beta = 1.5
    # Thm 3.1: C = 1 recovers the clean rate; C > 1 leaves a gap ≍ k^{-(beta-1)} (1 - C^{1-beta})
    z = sp.zeta(beta)
    for C in (2.0, 4.0):
        ks = np.array([1000, 10_000])
        gap = np.array([float(kt.buy_tail_limit(beta, int(k), int(C * k))) for k in ks])
        want = ks ** (1 - beta) * (1 - C ** (1 - beta)) / ((beta - 1) * z)
        np.testing.assert_allclose(gap, want, rtol=beta / ks[0])
    # Cor 3.3: C (T_real + T_AI)^{-c} + P(i > k) is an upper bound (to next order), and
    # E >= P(i > k) (1 - T_real sum_{i>k} p_i^2 / P(i > k)) (Bernoulli's inequality)
    k, T_real = 1000, 2000.0
    T_ai = np.logspace(2, 7, 6)
    E = np.asarray(kt.real_plus_ai_error(T_real, jnp.asarray(T_ai), beta, k))
    law = np.asarray(kt.real_plus_ai_law(T_real, jnp.asarray(T_ai), beta, k))
    assert np.all(E <= law * (1 + 2 * next_order(1 / 3, T_real)))
    pk = float(kt.tail_mass(k, beta))
    assert np.all(E >= pk - T_real * sp.zeta(2 * beta, k + 1) / z**2)


# --------------------------------------------------------------------------------------------
# properties, transformations, validation
# --------------------------------------------------------------------------------------------


@given(beta=st.floats(1.05, 4.0), T=st.floats(0.0, 1e9), pi=st.floats(0.0, 1.0))
def test_error_properties(beta, T, pi):
    k = 40  # static cut-off shared with the other tests (one compilation)
    pair = jnp.asarray([T, 2 * T + 1])
    for E in (kt.clean_error(pair, beta), kt.top_k_error(pair, beta, k), kt.grokking_error(pair, beta, k, pi)):
        E = np.asarray(E)
        assert np.all((E >= 0) & (E <= 1 + 1e-12)) and E[1] <= E[0] * (1 + 1e-12)  # in [0, 1], non-increasing in T
    assert float(kt.top_k_error(T, beta, k)) >= float(kt.tail_mass(k, beta)) * (1 - 1e-12)  # the cut tail is never seen


def _all_functions(t, pi, b):
    """Every public numerical function of kcollapse.tails at one point (k = 40, start = 300 as elsewhere)."""
    return jnp.stack([
        kt.clean_error(t, b), kt.top_k_error(t, b, 40), kt.narrowing_error(t, b, beta_ai=b + 1.0),
        kt.grokking_error(t, b, 40, pi), kt.narrowing_mixture_error(t, b, pi, beta_ai=3.0),
        kt.buy_tail_error(t, b, 40, 300, 0.3), kt.real_plus_ai_error(700.0, t, b, 40),
        kt.clean_law(t, b), kt.top_k_law(t, b, 40), kt.narrowing_law(t, b, b + 1.0), kt.grokking_law(t, b, 40, pi),
        kt.narrowing_mixture_law(t, b, 3.0, pi), kt.finite_sample_law(t, 300.0, b), kt.generations_law(t, 300.0, 3, b),
        kt.generations_law_printed(t, 300.0, 3, b), kt.real_plus_ai_law(700.0, t, b, 40), kt.hutter_constant(b),
        kt.tail_mass(t, b), kt.zipf_pmf(t, b), kt.buy_tail_limit(b, 40, 300), kt.narrowing_switch_point(b, 3.0, pi),
        kt.tail_exponents(b, 3.0).narrowing, kt.phi_iterate(t / 300.0, 3),
    ])


@pytest.mark.slow
def test_jit_vmap_every_function_slow():
    T = jnp.asarray([10.0, 1e3, 1e5])
    pis = jnp.asarray([0.01, 0.3, 0.9])
    betas = jnp.asarray([1.3, 1.5, 2.7])
    batched = np.asarray(jax.jit(jax.vmap(_all_functions))(T, pis, betas))
    one_by_one = np.stack([np.asarray(_all_functions(float(t), float(p), float(b))) for t, p, b in zip(T, pis, betas)])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-12)
    # generations with a static count cap is traceable
    K, _ = count_truncation(50.0, 200, 2)
    h = jax.jit(jax.vmap(lambda t: kt.generations_error(t, 200, 2, 1.5, max_count=K)))
    np.testing.assert_allclose(np.asarray(h(jnp.asarray([50.0, 400.0]))), np.asarray(kt.generations_error([50.0, 400.0], 200, 2, 1.5)),
                               rtol=1e-12)


def test_jit_vmap_and_grad():
    # representative fast subset of test_jit_vmap_every_function_slow
    T = jnp.asarray([10.0, 1e3, 1e5])
    pis = jnp.asarray([0.0, 0.3, 1.0])
    f = jax.jit(jax.vmap(lambda t, pi: kt.grokking_error(t, 1.5, 40, pi)))
    want = [float(kt.grokking_error(t, 1.5, 40, float(p))) for t, p in zip(T, pis)]
    np.testing.assert_allclose(np.asarray(f(T, pis)), want, rtol=1e-13)
    # generations_error is traceable with a static count cap (jit(vmap) in the slow test above); here
    # its hypothesis test and the CLI run it eagerly
    # d/dT sum_i p_i (1 - p_i)^T = sum_i p_i log(1 - p_i) (1 - p_i)^T (brute force over 1e6 + first-order tail)
    grad = float(jax.grad(lambda t: kt.clean_error(t, 2.0))(300.0))
    p = p_brute(2.0)
    want = np.sum(p * np.log1p(-p) * (1 - p) ** 300) - sp.zeta(4.0, N_BRUTE + 1) / sp.zeta(2.0) ** 2
    np.testing.assert_allclose(grad, want, rtol=1e-9)


def test_exponents():
    e = kt.tail_exponents(1.5, 3.0)
    np.testing.assert_allclose([float(v) for v in e], [1 / 3, 0.5, 1.5, 1 / 6, 1 / 3, 1.0, 1.0], rtol=1e-14)
    assert np.isnan(float(kt.tail_exponents(2.0).narrowing)) and np.isnan(float(kt.tail_exponents(2.0, 1.5).switch))
    np.testing.assert_allclose(float(kt.hutter_constant(2.0)), sp.gamma(0.5) / (2 * np.sqrt(sp.zeta(2.0))), rtol=1e-13)


def test_validation_messages():
    with pytest.raises(ValueError, match="beta must be > 1"):
        kt.clean_error(10.0, 1.0)
    with pytest.raises(ValueError, match="T must be >= 0"):
        kt.clean_error(-1.0, 1.5)
    with pytest.raises(ValueError, match="exactly one of temperature"):
        kt.narrowed(1.5)
    with pytest.raises(ValueError, match="fraction"):
        kt.grokking_error(10.0, 1.5, 10, 1.5)
    with pytest.raises(ValueError, match="scenario 'top-k' needs k"):
        kt.TailsConfig("top-k", 1.5, (10,)).validate()
    with pytest.raises(ValueError, match="k does not apply to scenario 'clean'"):
        kt.TailsConfig("clean", 1.5, (10,), k=3).validate()
    with pytest.raises(ValueError, match="vocab=100 is below"):
        kt.simulate_tails(jax.random.key(0), kt.TailsConfig("top-k", 1.5, (10,), k=1000), 2, vocab=100)
    with pytest.raises(TypeError, match="max_count"):
        jax.jit(lambda t: kt.generations_error(t, 100, 2, 1.5))(10.0)


# --------------------------------------------------------------------------------------------
# simulator vs exact theory
# --------------------------------------------------------------------------------------------


def compare(config, n_seeds, seed=0, vocab=1 << 16):
    sim = kt.simulate_tails(jax.random.key(seed), config, n_seeds, vocab=vocab)
    th = kt.predict_tails(config)
    gap = sim.mean - th.total
    # The SEM: the sample SEM, or the exact upper bound sqrt(sum p_i^2 u_i(1-u_i)/seeds) where larger
    # (on a plateau every seed may see every reachable token: sample SEM 0, expectation 1e-8 higher).
    floor = th.per_seed_sd_bound / np.sqrt(n_seeds)
    # 1e-12: the float64 round-off floor (a plateau point where every seed's error is the same number
    # up to 1e-17 has a sample SEM of 1e-19)
    sem = np.maximum(np.where(np.isnan(floor), sim.sem, np.maximum(sim.sem, np.nan_to_num(floor))), 1e-12)
    # one-sided truncation bias: 0 <= E[sim] - theory <= truncation_bound
    ok = (gap <= Z * sem + sim.truncation_bound[None, :]) & (gap >= -Z * sem)
    z = gap / sem
    assert ok.all(), f"{config.scenario}: z = {np.round(z, 2)}, sim {sim.mean}, theory {th.total}"
    print(f"[tails sim-vs-theory] {config.scenario}: max|z|={np.max(np.abs(z)):.2f} "
          f"max rel gap={np.max(np.abs(gap / th.total)):.3%} seeds={n_seeds} trunc<={sim.truncation_bound.max():.1e}")
    return sim, th


def test_simulator_generations_chain():
    # covers the clean law (n = 0), the finite-sample cut (Cor 2.2, n = 1) and Thm 2.4 (n = 2, 3)
    cfg = kt.TailsConfig("generations", 1.5, (100, 400), generator_samples=256, n_generations=5)
    compare(cfg, 400)


def test_simulator_grokking_mixture():
    compare(kt.TailsConfig("grokking", 2.0, (30, 300, 3000), k=10, fraction=0.05), 400, seed=1)


def test_simulator_batching_invariance():
    # per-seed keys are fold_in(key, seed index): batch size and seed offset do not change any seed
    cfg = kt.TailsConfig("grokking", 2.0, (30, 300, 3000), k=10, fraction=0.05)  # compiled above for batch 400
    a = kt.simulate_tails(jax.random.key(3), cfg, 12, vocab=1 << 16, batch_size=400)
    b = kt.simulate_tails(jax.random.key(3), cfg, 12, vocab=1 << 16, batch_size=5)
    c = kt.simulate_tails(jax.random.key(3), cfg, 6, vocab=1 << 16, seed_offset=6, batch_size=5)
    np.testing.assert_array_equal(a.per_seed, b.per_seed)
    np.testing.assert_array_equal(a.per_seed[6:], c.per_seed)


SLOW_SETTINGS = [
    kt.TailsConfig("clean", 1.3, (10, 1000, 30000)),
    kt.TailsConfig("clean", 2.5, (5, 500, 20000)),
    kt.TailsConfig("top-k", 1.5, (100, 3000, 30000), k=100),
    kt.TailsConfig("top-k", 2.0, (10, 1000, 30000), k=10),
    kt.TailsConfig("narrow", 1.5, (100, 10000), beta_ai=3.0),
    kt.TailsConfig("narrow", 2.0, (100, 10000), beta_ai=1.4),
    kt.TailsConfig("grokking", 1.5, (100, 3000, 30000), k=30, fraction=0.01),
    kt.TailsConfig("grokking", 2.0, (100, 3000, 30000), k=10, fraction=0.1),
    kt.TailsConfig("narrow-mix", 1.5, (100, 3000, 30000), beta_ai=3.0, fraction=0.01),
    kt.TailsConfig("narrow-mix", 2.0, (100, 3000, 30000), beta_ai=4.0, fraction=0.2),
    kt.TailsConfig("buy-tail", 1.5, (100, 3000, 30000), k=30, start=31),
    kt.TailsConfig("buy-tail", 1.5, (100, 3000, 30000), k=30, start=120, fraction=0.3),
    kt.TailsConfig("real-plus-ai", 1.5, (100, 3000, 30000), k=30, real_samples=300),
    kt.TailsConfig("real-plus-ai", 2.0, (100, 3000), k=100, real_samples=1000),
    kt.TailsConfig("generations", 1.5, (300, 1000, 3000), generator_samples=1000, n_generations=5),
    kt.TailsConfig("generations", 2.0, (100, 2000), generator_samples=300, n_generations=10),
]


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SLOW_SETTINGS, ids=[f"{c.scenario}-{j}" for j, c in enumerate(SLOW_SETTINGS)])
def test_simulator_all_families_slow(cfg):
    compare(cfg, 1000, seed=7, vocab=1 << 20)


@pytest.mark.slow
def test_t_fig3_script_quick(tmp_path):
    import importlib.util
    import json
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "paper_figs" / "t_fig3.py"
    spec = importlib.util.spec_from_file_location("t_fig3", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--out-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "t_fig3.json").read_text())
    assert (tmp_path / "t_fig3.png").stat().st_size > 10_000
    mid = np.asarray(data["middle"]["theory"])
    assert np.all(np.diff(mid, axis=0) > 0)  # generation n + 1 above generation n
    left = np.asarray(data["left"]["theory"])
    assert np.all(left[:, -1] >= np.asarray(data["left"]["plateau"]) * (1 - 1e-12))
