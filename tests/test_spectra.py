import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kcollapse as kc
from kcollapse import spectra


def test_isotropic_default_teacher():
    s = spectra.isotropic(7)
    np.testing.assert_allclose(s.eigenvalues, np.ones(7))
    np.testing.assert_allclose(s.coefficients, np.full(7, 1 / np.sqrt(7)))
    assert float(s.teacher_norm_sq()) == pytest.approx(1.0, rel=1e-14)


def test_power_law_definition():
    d, beta, r = 50, 2.0, 0.375
    s = spectra.power_law(d, beta, r)
    i = np.arange(1, d + 1)
    np.testing.assert_allclose(s.eigenvalues, i**-beta, rtol=1e-14)
    delta = 1 + beta * (2 * r - 1)
    c2 = i**-delta
    c2 = c2 / np.sum(i**-beta * c2)
    np.testing.assert_allclose(np.asarray(s.coefficients) ** 2, c2, rtol=1e-12)
    assert float(s.teacher_norm_sq()) == pytest.approx(1.0, rel=1e-13)


def test_from_arrays_keeps_teacher_when_asked():
    s = spectra.from_arrays([2.0, 1.0], [1.0, 1.0], normalize=False)
    assert float(s.teacher_norm_sq()) == pytest.approx(3.0)


def test_df_matches_definition():
    s = spectra.power_law(30, 1.5, 0.5)
    lam = np.asarray(s.eigenvalues)
    for t in (1e-3, 0.1, 2.0):
        assert float(s.df(t, 1)) == pytest.approx(np.sum(lam / (lam + t)), rel=1e-13)
        assert float(s.df(t, 2)) == pytest.approx(np.sum((lam / (lam + t)) ** 2), rel=1e-13)


@given(d=st.integers(1, 200), t=st.floats(1e-8, 1e3), beta=st.floats(0.5, 3.0))
def test_property_df_bounded_by_d(d, t, beta):
    s = spectra.power_law(d, beta, 0.5)
    assert 0 <= float(s.df(t, 2)) <= float(s.df(t, 1)) <= d


def test_spectrum_is_a_pytree_and_vmappable():
    batch = jax.tree_util.tree_map(lambda *x: jnp.stack(x), spectra.isotropic(5), spectra.power_law(5, 2.0, 0.3))
    norms = jax.vmap(lambda s: s.teacher_norm_sq())(batch)
    np.testing.assert_allclose(norms, [1.0, 1.0], rtol=1e-13)


def test_dtype():
    assert spectra.isotropic(3, dtype=jnp.float32).dtype == jnp.float32
    assert spectra.isotropic(3).dtype == jnp.float64  # x64 on in the test-suite


@pytest.mark.parametrize(
    "call,exc,word",
    [
        (lambda: spectra.isotropic(0), ValueError, "d must be"),
        (lambda: spectra.isotropic(-3), ValueError, "d must be"),
        (lambda: spectra.isotropic(2.5), TypeError, "d must be"),
        (lambda: spectra.power_law(10, -1.0, 0.5), ValueError, "beta"),
        (lambda: spectra.power_law(10, 2.0, float("nan")), ValueError, "r must be finite"),
        (lambda: spectra.from_arrays([1.0, -1.0]), ValueError, "eigenvalues must be >= 0"),
        (lambda: spectra.from_arrays([1.0, np.inf]), ValueError, "eigenvalues must be finite"),
        (lambda: spectra.from_arrays([[1.0]]), ValueError, "1-dimensional"),
        (lambda: spectra.from_arrays([0.0, 0.0]), ValueError, "at least one positive"),
        (lambda: spectra.from_arrays([1.0, 1.0], [1.0]), ValueError, "same length"),
        (lambda: spectra.from_arrays([1.0, 1.0], [0.0, 0.0]), ValueError, "zero Sigma-norm"),
        (lambda: spectra.isotropic(3, teacher=[1.0, 2.0]), ValueError, "same length"),
    ],
)
def test_validation(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_conventions_test_error():
    lam = np.array([2.0, 0.5])
    assert float(kc.test_error(lam, np.array([1.0, 1.0]), np.array([0.0, 3.0]))) == pytest.approx(2.0 + 0.5 * 4)
