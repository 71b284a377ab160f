"""Solver oracles: primal = dual = numpy/scipy; eigh grid = per-ridge Cholesky; ridge 0 = lstsq."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import kcollapse as kc
from kcollapse import solvers


def _problem(T, d, k=None, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, d)) * np.sqrt(rng.uniform(0.1, 2.0, d))
    y = rng.standard_normal((T,) if k is None else (T, k))
    return X.astype(dtype), y.astype(dtype)


def _numpy_ridge(X, y, lam):
    """Independent oracle: scipy solve of the normalised normal equations."""
    T, d = X.shape
    return scipy.linalg.solve(X.T @ X / T + lam * np.eye(d), X.T @ y / T, assume_a="pos")


@pytest.mark.parametrize("T,d", [(50, 20), (20, 50), (30, 30)])
@pytest.mark.parametrize("lam", [1e-3, 0.1, 3.0])
@pytest.mark.parametrize("solver", ["cholesky", "eigh"])
@pytest.mark.parametrize("form", ["primal", "dual"])
def test_ridge_matches_scipy(T, d, lam, solver, form):
    X, y = _problem(T, d)
    w = solvers.ridge(X, y, lam, solver=solver, form=form)
    np.testing.assert_allclose(w, _numpy_ridge(X, y, lam), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("T,d", [(60, 15), (15, 60)])
def test_ridge_multi_target(T, d):
    X, Y = _problem(T, d, k=3)
    for form in ("primal", "dual"):
        W = solvers.ridge(X, Y, 0.05, form=form)
        np.testing.assert_allclose(W, _numpy_ridge(X, Y, 0.05), rtol=1e-9, atol=1e-12)
        path = solvers.ridge_path(solvers.eigh_factor(X, form=form), Y, [0.05, 0.5])
        np.testing.assert_allclose(path[1], _numpy_ridge(X, Y, 0.5), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("T,d", [(80, 20), (20, 80), (25, 25)])
@pytest.mark.parametrize("form", ["primal", "dual", "auto"])
def test_ridge_zero_is_minnorm_lstsq(T, d, form):
    X, y = _problem(T, d, seed=1)
    w = solvers.ridge(X, y, 0.0, form=form)
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(w, ref, rtol=1e-7, atol=1e-9)


def test_ridge_zero_rank_deficient_design():
    """Duplicate columns: min-norm solution, not a blow-up."""
    X, y = _problem(40, 6, seed=2)
    X = np.concatenate([X, X[:, :2]], axis=1)
    for form in ("primal", "dual"):
        w = solvers.ridge(X, y, 0.0, form=form)
        np.testing.assert_allclose(w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("T,d", [(70, 25), (25, 70)])
def test_eigh_grid_equals_per_ridge_cholesky(T, d):
    X, y = _problem(T, d, seed=3)
    grid = np.logspace(-4, 1, 9)
    path = solvers.ridge_path(solvers.eigh_factor(X), y, grid)
    assert path.shape == (grid.size, d)
    for i, lam in enumerate(grid):
        chol = solvers.ridge(X, y, lam, solver="cholesky")
        np.testing.assert_allclose(path[i], chol, rtol=1e-8, atol=1e-11)


def test_moments_path_grid_with_zero():
    X, y = _problem(40, 10, seed=4)
    G, h = X.T @ X, X.T @ y
    path = solvers.moments_ridge_path(G, h, 40, [0.0, 0.2])
    np.testing.assert_allclose(path[0], np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)
    np.testing.assert_allclose(path[1], _numpy_ridge(X, y, 0.2), rtol=1e-9)


@pytest.mark.parametrize("T,d", [(60, 20), (20, 60)])
def test_float32_agrees_with_float64(T, d):
    X, y = _problem(T, d, seed=5)
    ref = _numpy_ridge(X, y, 0.1)
    for form in ("primal", "dual"):
        w32 = solvers.ridge(X.astype(np.float32), y.astype(np.float32), 0.1, form=form)
        assert w32.dtype == jnp.float32
        np.testing.assert_allclose(w32, ref, rtol=2e-4, atol=2e-5)
    w0 = solvers.ridge(X.astype(np.float32), y.astype(np.float32), 0.0)
    np.testing.assert_allclose(w0, np.linalg.lstsq(X, y, rcond=None)[0], rtol=5e-3, atol=5e-4)


def test_cholesky_failure_falls_back_not_nan():
    """A singular system with ridge 0: the Cholesky is not finite, the eigh pseudo-inverse answers."""
    X, y = _problem(10, 30, seed=6)  # rank 10 < d: X^T X singular
    w, info = solvers.ridge(X, y, 0.0, solver="cholesky", form="primal", return_info=True)
    assert bool(info.finite)
    np.testing.assert_allclose(w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6, atol=1e-8)
    # An indefinite "Gram" cannot be Cholesky-factored: the fallback flag must say so.
    G = -np.eye(4)
    w, info = solvers.moments_ridge(G, np.ones(4), 4, 0.0, solver="cholesky")
    assert bool(info.fallback) and bool(info.finite)


def test_jit_vmap_over_ridge_and_data():
    X, y = _problem(30, 8, seed=7)
    lams = jnp.array([0.01, 0.1, 1.0])
    f = jax.jit(jax.vmap(lambda lam: solvers.moments_ridge(X.T @ X, X.T @ y, 30, lam)[0]))
    out = f(lams)
    for i, lam in enumerate(lams):
        np.testing.assert_allclose(out[i], _numpy_ridge(X, y, float(lam)), rtol=1e-9)


def test_grad_through_ridge_matches_finite_difference():
    X, y = _problem(30, 8, seed=8)
    f = lambda lam: jnp.sum(solvers.moments_ridge(X.T @ X, X.T @ y, 30, lam)[0] ** 2)  # noqa: E731
    g = jax.grad(f)(0.3)
    fd = (f(0.3 + 1e-6) - f(0.3 - 1e-6)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6)


@settings(max_examples=12)  # every example is a new (T, d) shape, i.e. a fresh compile (~1 s each)
@given(T=st.integers(2, 40), d=st.integers(1, 40), lam=st.floats(1e-6, 10.0), seed=st.integers(0, 1000))
def test_property_primal_equals_dual(T, d, lam, seed):
    X, y = _problem(T, d, seed=seed)
    wp = solvers.ridge(X, y, lam, form="primal")
    wd = solvers.ridge(X, y, lam, form="dual")
    np.testing.assert_allclose(wp, wd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs,exc,word",
    [
        (dict(ridge=-0.1), ValueError, "ridge"),
        (dict(ridge=float("nan")), ValueError, "ridge"),
        (dict(solver="lu"), ValueError, "solver"),
        (dict(form="sideways"), ValueError, "form"),
    ],
)
def test_bad_arguments(kwargs, exc, word):
    X, y = _problem(10, 3)
    args = dict(ridge=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        solvers.ridge(X, y, args.pop("ridge"), **args)


def test_bad_shapes_and_values():
    X, y = _problem(10, 3)
    with pytest.raises(ValueError, match="y must have shape"):
        solvers.ridge(X, y[:5], 0.1)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        solvers.ridge(X[0], y, 0.1)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        solvers.ridge(Xn, y, 0.1)


def test_single_fit_too_large_is_a_clear_memory_error(monkeypatch):
    """Before allocating: a MemoryError naming the size and the ways out, not an OOM crash."""
    monkeypatch.setenv("KCOLLAPSE_MEMORY_LIMIT_MB", "1")
    X = np.ones((600, 400))  # primal: two 400 x 400 float64 arrays = 2.4 MiB > 1 MiB
    with pytest.raises(MemoryError, match=r"primal fit needs about .* GiB .* use form='dual'"):
        kc.solvers.ridge(X, np.ones(600), 0.1)
    with pytest.raises(MemoryError, match="fit needs about"):
        kc.solvers.eigh_factor(X)
    monkeypatch.setenv("KCOLLAPSE_MEMORY_LIMIT_MB", "100")
    assert kc.solvers.ridge(X[:, :5], np.ones(600), 0.1).shape == (5,)
