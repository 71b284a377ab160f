"""Kernels, tiled Gram matrices, random features and kernel ridge regression (kcollapse.kernels).

Oracles: scikit-learn's pairwise kernels and ``KernelRidge``; SciPy distances; the arc-cosine and
NTK closed forms against their defining expectations, computed by quadrature over directions in
2-D; the per-pair function against the block formula; exact eigenvalue bounds for PSD-ness.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import laplacian_kernel, linear_kernel, polynomial_kernel, rbf_kernel

import kcollapse as kc
from kcollapse import kernels as K

ALL = [
    K.Linear(0.7),
    K.RBF(0.3),
    K.Laplace(0.4),
    K.Laplace(0.4, "l1"),
    K.Polynomial(3, 0.2, 1.0),
    K.ArcCosine(0, 0.5),
    K.ArcCosine(1, 0.5),
    K.ArcCosine(2, 0.5),
    K.ReLUNTK(0.5),
    K.ReLUNTK(0.5, 0.3),
]
IDS = [f"{type(k).__name__}-{i}" for i, k in enumerate(ALL)]


def _inputs(seed=0, n=40, m=25, p=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal((m, p))


def _pairwise(kernel, X, Z):
    """The per-pair function, batched with jit(vmap(vmap(...))) (the reference for block/gram)."""
    f = jax.jit(jax.vmap(jax.vmap(kernel, in_axes=(None, 0)), in_axes=(0, None)))
    return np.asarray(f(jnp.asarray(X), jnp.asarray(Z)))


@pytest.mark.parametrize("kernel", ALL, ids=IDS)
def test_gram_equals_pair_function_and_tiles(kernel):
    X, Z = _inputs()
    ref = _pairwise(kernel, X, Z)
    full = np.asarray(K.gram(kernel, X, Z))
    tiled = np.asarray(K.gram(kernel, X, Z, tile=(7, 4)))  # ragged tiles in both directions
    scale = np.abs(ref).max()
    np.testing.assert_allclose(full, ref, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(tiled, full, rtol=0, atol=1e-13 * scale)
    V = np.random.default_rng(1).standard_normal((Z.shape[0], 3))
    mv = np.asarray(K.kernel_matvec(kernel, X, Z, V, tile=(6, 7)))
    np.testing.assert_allclose(mv, full @ V, rtol=0, atol=1e-12 * scale * np.abs(V).sum(0).max())


@pytest.mark.parametrize("kernel", ALL, ids=IDS)
def test_gram_is_symmetric_psd(kernel):
    X, _ = _inputs(2, n=60)
    X = np.concatenate([X, X[:5]])  # duplicated rows: exactly singular Grams must still be PSD
    G = np.asarray(K.gram(kernel, X))
    np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-13 * np.abs(G).max())
    ev = np.linalg.eigvalsh((G + G.T) / 2)
    assert ev[0] >= -1e-10 * ev[-1], (ev[0], ev[-1])


def test_closed_forms_match_scikit_learn_and_scipy():
    X, Z = _inputs(3)
    np.testing.assert_allclose(K.gram(K.RBF(0.3), X, Z), rbf_kernel(X, Z, gamma=0.3), rtol=1e-12)
    np.testing.assert_allclose(K.gram(K.Laplace(0.4, "l1"), X, Z), laplacian_kernel(X, Z, gamma=0.4), rtol=1e-12)
    np.testing.assert_allclose(K.gram(K.Laplace(0.4), X, Z), np.exp(-0.4 * cdist(X, Z)), rtol=1e-12)
    np.testing.assert_allclose(K.gram(K.Polynomial(3, 0.2, 1.5), X, Z),
                               polynomial_kernel(X, Z, degree=3, gamma=0.2, coef0=1.5), rtol=1e-12)
    np.testing.assert_allclose(K.gram(K.Linear(), X, Z), linear_kernel(X, Z), rtol=1e-12, atol=1e-13)


def _angular_expectation(x, z, f, n_angles=200_000):
    """``E_{w ~ N(0, I_2)} [f(w.x, w.z)]`` for positively homogeneous ``f`` of total degree ``k``.

    ``w = rho u`` with ``u`` uniform on the circle and ``E rho^k = 2^{k/2} Gamma(1 + k/2)``; the
    angular average is a midpoint rule. Each of the (at most 4) jumps of a step integrand costs at
    most one grid cell, so the quadrature error is <= 4/n_angles relative (2e-5); integrands with
    kinks only are accurate to O(n_angles^-2).
    """
    phi = (np.arange(n_angles) + 0.5) * 2 * np.pi / n_angles
    u = np.stack([np.cos(phi), np.sin(phi)], 1)
    vals, k = f(u @ x, u @ z)
    return vals.mean() * 2 ** (k / 2) * math.gamma(1 + k / 2)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_arccos_kernel_is_its_defining_expectation(order):
    """Cho & Saul: ``k_n(x, z) = 2 E[step(w.x) step(w.z) (w.x)^n (w.z)^n]``."""
    rng = np.random.default_rng(order)
    for _ in range(3):
        x, z = rng.standard_normal(2), rng.standard_normal(2)
        ref = 2 * _angular_expectation(x, z, lambda a, b: ((a > 0) * (b > 0) * a**order * b**order, 2 * order))
        got = float(K.ArcCosine(order, 1.0)(x, z))
        assert got == pytest.approx(ref, rel=2e-5 if order == 0 else 1e-6, abs=1e-9)


def test_relu_ntk_is_its_defining_expectation():
    """Two-layer ReLU NTK: ``E[relu(w.u) relu(w.v)] + (u.v) E[step(w.u) step(w.v)]``, u = sqrt(g)[x, sqrt(b)]."""
    rng = np.random.default_rng(7)
    g, b = 0.7, 0.0
    for _ in range(3):
        x, z = rng.standard_normal(2), rng.standard_normal(2)
        u, v = math.sqrt(g) * x, math.sqrt(g) * z
        relu = _angular_expectation(u, v, lambda a, c: (np.maximum(a, 0) * np.maximum(c, 0), 2))
        step = _angular_expectation(u, v, lambda a, c: ((a > 0) * (c > 0) * 1.0, 0))
        assert float(K.ReLUNTK(g, b)(x, z)) == pytest.approx(relu + u @ v * step, abs=2e-5 * abs(u @ v) + 1e-9)
    # a bias b is a constant extra input sqrt(b): check against the 3-D augmented inputs, no bias
    x, z = rng.standard_normal(2), rng.standard_normal(2)
    aug = K.ReLUNTK(1.0, 0.0)(np.r_[math.sqrt(g) * x, math.sqrt(0.4)], np.r_[math.sqrt(g) * z, math.sqrt(0.4)])
    assert float(K.ReLUNTK(g, 0.4)(x, z)) == pytest.approx(float(aug), rel=1e-12)


def test_kernel_parameters_are_vmappable_leaves():
    X, Z = _inputs(4, n=6, m=5)
    gammas = jnp.array([0.1, 0.5, 2.0])
    batched = jax.jit(jax.vmap(lambda g: K.RBF(g).block(X, Z)))(gammas)
    for g, Gb in zip(gammas, batched):
        np.testing.assert_allclose(Gb, rbf_kernel(X, Z, gamma=float(g)), rtol=1e-12)
    # differentiable in the bandwidth: d/dgamma exp(-gamma s) = -s exp(-gamma s)
    x, z = jnp.asarray(X[0]), jnp.asarray(Z[0])
    s = float(jnp.sum((x - z) ** 2))
    grad = jax.grad(lambda g: K.RBF(g)(x, z))(0.3)
    assert float(grad) == pytest.approx(-s * math.exp(-0.3 * s), rel=1e-12)


def test_gram_memory_budget():
    X, Z = _inputs(5, n=50, m=40)
    kernel = K.RBF(0.2)
    with pytest.raises(MemoryError, match="memory_budget"):
        K.gram(kernel, X, Z, memory_budget=50 * 40 * 8 - 1)  # the output alone does not fit
    # a budget that forces small tiles gives the same Gram
    rt, ct = K._gram.tile_shape(kernel, 50, 40, 5, 8, 4000)
    assert rt * ct * (kernel.work_per_entry(5) + 1) * 8 <= 4000
    small = K.gram(kernel, X, Z, memory_budget=50 * 40 * 8 + 4000)
    np.testing.assert_allclose(small, rbf_kernel(X, Z, gamma=0.2), rtol=1e-12)
    np.testing.assert_allclose(K.kernel_matvec(kernel, X, Z, np.ones(40), memory_budget=3000),
                               rbf_kernel(X, Z, gamma=0.2).sum(1), rtol=1e-12)
    with pytest.raises(ValueError, match="features"):
        K.gram(kernel, X, Z[:, :3])


def test_make_kernel_validation():
    assert isinstance(K.make_kernel("poly", degree=5, gamma=0.1), K.Polynomial)
    for bad, match in [(dict(name="rbf", gamma=-1.0), "gamma"), (dict(name="rbf", degree=2), "no parameter"),
                       (dict(name="bogus"), "kernel"), (dict(name="arccos", order=3), "order"),
                       (dict(name="poly", coef0=-1.0), "coef0")]:
        with pytest.raises(ValueError, match=match):
            K.make_kernel(**bad)


def test_normalized_kernel_has_unit_mean_diagonal():
    X, _ = _inputs(6)
    k = K.normalized(K.Polynomial(3, 0.2, 1.0), X)
    assert float(jnp.mean(jnp.diag(K.gram(k, X)))) == pytest.approx(1.0, rel=1e-12)
    assert float(K.normalized(K.RBF(0.5), X).scale) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Kernel ridge regression vs scikit-learn
# --------------------------------------------------------------------------------------------

SK = [
    (K.RBF(0.2), dict(kernel="rbf", gamma=0.2)),
    (K.Laplace(0.3, "l1"), dict(kernel="laplacian", gamma=0.3)),
    (K.Polynomial(3, 0.1, 1.0), dict(kernel="poly", degree=3, gamma=0.1, coef0=1.0)),
    (K.Linear(), dict(kernel="linear")),
    (K.ReLUNTK(0.5, 0.1), None),  # compared through kernel="precomputed"
]


@pytest.mark.parametrize("kernel,sk", SK, ids=[type(k).__name__ for k, _ in SK])
def test_krr_matches_scikit_learn(kernel, sk):
    """KRR with kcollapse's ridge equals sklearn KernelRidge(alpha = ridge * T), <= 1e-8 relative."""
    rng = np.random.default_rng(11)
    X, Xe = rng.standard_normal((60, 4)), rng.standard_normal((30, 4))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(60)
    T = X.shape[0]
    ridges = np.array([1e-3, 0.05, 1.0])
    pred = np.asarray(K.kernel_ridge(kernel, X, y, ridges, X_eval=Xe))
    for j, lam in enumerate(ridges):
        alpha = kc._conventions.sklearn_alpha(lam, T)
        if sk is None:
            m = KernelRidge(alpha=alpha, kernel="precomputed").fit(np.asarray(K.gram(kernel, X)), y)
            ref = m.predict(np.asarray(K.gram(kernel, Xe, X)))
        else:
            ref = KernelRidge(alpha=alpha, **sk).fit(X, y).predict(Xe)
        assert np.max(np.abs(pred[j] - ref)) <= 1e-8 * np.max(np.abs(ref))


def test_krr_path_from_one_eigh_and_minimum_norm():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((30, 6))
    y = rng.standard_normal(30)
    G = np.asarray(K.gram(K.RBF(0.5), X))
    ridges = jnp.array([0.0, 1e-4, 0.1])
    path = jax.jit(K.kernel_ridge_path)(K.kernel_ridge_factor(G), y, ridges)
    for j, lam in enumerate(np.asarray(ridges)[1:], start=1):
        np.testing.assert_allclose(path[j], np.linalg.solve(G + lam * 30 * np.eye(30), y), rtol=1e-9)
    np.testing.assert_allclose(path[0], np.linalg.pinv(G, hermitian=True) @ y, rtol=1e-7)
    # rank-deficient Gram at ridge 0: the min-norm solution (linear kernel, T > d)
    Gl = X @ X.T
    np.testing.assert_allclose(K.kernel_ridge_path(Gl, y, [0.0])[0], np.linalg.pinv(Gl, rcond=1e-10) @ y, atol=1e-9)
    # batched over targets and under vmap over training sets
    Y = rng.standard_normal((30, 3))
    np.testing.assert_allclose(K.kernel_ridge_path(G, Y, [0.1])[0], np.linalg.solve(G + 3 * np.eye(30), Y), rtol=1e-9)
    Gs = jnp.stack([G, G + np.eye(30)])
    out = jax.jit(jax.vmap(lambda g: K.kernel_ridge_path(g, y, jnp.array([0.1]))))(Gs)
    np.testing.assert_allclose(out[1, 0], np.linalg.solve(G + np.eye(30) + 3 * np.eye(30), y), rtol=1e-9)


# --------------------------------------------------------------------------------------------
# Random features
# --------------------------------------------------------------------------------------------

_slow = pytest.mark.slow
RF = [K.RBF(0.3), pytest.param(K.Laplace(0.5), marks=_slow), pytest.param(K.Laplace(0.5, "l1"), marks=_slow),
      pytest.param(K.ArcCosine(0, 0.5), marks=_slow), K.ArcCosine(1, 0.5), pytest.param(K.ArcCosine(2, 0.5), marks=_slow),
      K.ReLUNTK(0.5, 0.2)]
RF_IDS = ["RBF", "Laplace-l2", "Laplace-l1", "ArcCosine-0", "ArcCosine-1", "ArcCosine-2", "ReLUNTK"]


@pytest.mark.parametrize("kernel", RF, ids=RF_IDS)
def test_random_features_converge_like_one_over_sqrt_m(kernel):
    """RMS error of the feature Gram ~ m^{-1/2}: log-log slope within 0.5 ± 0.15 over m = 64 .. 4096.

    Each m averages the mean squared error of 4 independent feature draws. Over 8 repetitions of
    this estimate the slope ranged over [-0.60, -0.42] with standard deviation <= 0.05 (measured,
    arc-cosine/NTK the noisiest), so ±0.15 is 3 standard deviations; a wrong rate (m^{-1/4}, or
    no convergence) is rejected.
    """
    X, _ = _inputs(8, n=15, p=3)
    exact = np.asarray(K.gram(kernel, X))
    ms = [64, 256, 1024, 4096]
    rms = []
    for m in ms:
        errs = []
        for s in range(4):
            F = np.asarray(K.random_features(jax.random.key(100 * s + m), kernel, m, 3).features(X))
            errs.append(np.mean((F @ F.T - exact) ** 2))
        rms.append(math.sqrt(np.mean(errs)))
    slope = np.polyfit(np.log(ms), np.log(rms), 1)[0]
    assert -0.65 <= slope <= -0.35, (slope, rms)
    assert rms[-1] < 0.05 * np.abs(exact).max()
    rf = K.random_features(jax.random.key(0), kernel, 64, 3)
    np.testing.assert_allclose(K.gram(rf, X), np.asarray(rf.features(X)) @ np.asarray(rf.features(X)).T, atol=1e-12)


def test_random_features_reject_kernels_without_expansion():
    for k in (K.Polynomial(2), K.Linear()):
        with pytest.raises(ValueError, match="no random-feature expansion"):
            K.random_features(jax.random.key(0), k, 10, 3)


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------


@given(st.floats(0.01, 5.0), st.integers(0, 2**31 - 1))
def test_rbf_gram_properties(gamma, seed):
    X = np.random.default_rng(seed).standard_normal((12, 3))
    G = np.asarray(K.gram(K.RBF(gamma), X))
    assert np.all(G <= 1 + 1e-15) and np.all(G > 0)
    # |x|^2 + |x|^2 - 2 x.x cancels to round-off, not exactly 0: the diagonal is 1 to ~1e-15
    np.testing.assert_allclose(np.diag(G), 1.0, rtol=0, atol=1e-13)
    ev = np.linalg.eigvalsh(G)
    assert ev[0] >= -1e-10 * ev[-1]
