"""Scalar, traceable entry points of the general-spectrum theory: clean risk, ``rho``, chain error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ._ridge_chain import chain_modes, chain_sums
from ._types import Decomposition, TheoryNotApplicable, decomposition

__all__ = ["chain_error", "clean_risk", "collapse_rho"]

# Entry points are often called eagerly in loops; one compiled kernel per (shape, static flags).
_chain_modes = jax.jit(chain_modes, static_argnames=("independent", "finite_size", "summed"))
_chain_sums = jax.jit(chain_sums, static_argnames=("n_max", "independent", "finite_size"))

_DESIGNS = ("fresh", "fixed")


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _arrays(spectrum: Spectrum, *values):
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    lam = spectrum.eigenvalues
    if not jnp.issubdtype(lam.dtype, jnp.floating):
        raise TypeError(f"spectrum must have a floating dtype, got {lam.dtype}")
    return lam, spectrum.coefficients.astype(lam.dtype), [jnp.asarray(v, lam.dtype) for v in values]


def _check_scalars(**kw) -> None:
    """Boundary checks on concrete values (traced values pass unchecked)."""
    for name, v in kw.items():
        if _concrete(v):
            arr = _checks.check_finite_array(name, v)
            if arr.size and (arr < 0).any():
                raise ValueError(f"{name} must be >= 0, got {arr.min()}")
    for name in ("T", "T0"):
        v = kw.get(name)
        if v is not None and _concrete(v) and (np.asarray(v) <= 0).any():
            raise ValueError(f"{name} must be > 0, got {v}")


def _reduce(terms, per_mode: bool) -> Decomposition:
    if per_mode:
        return decomposition(terms.bias, terms.variance, terms.collapse)
    return decomposition(*(jnp.sum(t, axis=-1) for t in terms))


def clean_risk(spectrum: Spectrum, T: ArrayLike, ridge: ArrayLike, sigma: ArrayLike, *, per_mode: bool = False) -> Decomposition:
    """Clean ridge risk (no synthetic data) for an arbitrary spectrum.

    ``Bias ≃ kappa^2 w0^T Sigma (Sigma + kappa)^{-2} w0 / (1 - df_2/T)``,
    ``Var ≃ sigma^2 (df_2/T) / (1 - df_2/T)``, ``kappa = kappa(lambda, T)``. At ``lambda = 0`` and
    ``T >= d + 2`` the variance uses the exact ``sigma^2 d/(T - d - 1)`` (Lemma A.1).

    Args:
      spectrum: eigenvalues and teacher. T: samples. ridge: ``lambda >= 0``. sigma: noise std.
      per_mode: return ``(d,)`` summands instead of sums (static).

    Returns:
      :class:`Decomposition` (``collapse = 0``).

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Proposition 4.5, eqs. (18)-(19) (the κ² lost in the
      extracted eq. (70) restored); Hastie-Montanari-Rosset-Tibshirani (2022); Bach (2023).
    """
    _check_scalars(T=T, ridge=ridge, sigma=sigma)
    lam, coef, (T, ridge, sigma) = _arrays(spectrum, T, ridge, sigma)
    zero = jnp.zeros((), lam.dtype)
    terms = _chain_modes(lam, coef, jnp.zeros((), jnp.int32), T, T, sigma, zero, ridge, independent=False)
    return _reduce(terms, per_mode)


def collapse_rho(spectrum: Spectrum, T: ArrayLike, T0: ArrayLike, ridge: ArrayLike, *, finite_size: bool = False) -> jax.Array:
    """The per-generation collapse coefficient ``rho`` (``collapse = n sigma0^2 rho``).

    ``T0 >= d`` (Corollary 4.7, eq. (23))::

        rho ≃ df_2(kappa)/(T0 - d) + kappa^2 tr (Sigma + kappa)^{-2} / (T0 - d) * df_2(kappa)/(T - df_2(kappa))

    with ``T0 - d - 1`` (the exact Wishart constant of Lemma A.1) when ``finite_size=True``.
    ``T0 < d`` (one reused design; Theorem 4.6, eq. (22), ``kappa0 = kappa(0, T0)``)::

        rho ≃ tr[Sigma^4 (Sigma+kappa0)^{-2} (Sigma+kappa)^{-2}] / (T0 - df_2(kappa0))
              + kappa^2 tr[Sigma^2 (Sigma+kappa0)^{-2} (Sigma+kappa)^{-2}] / (T0 - df_2(kappa0)) * df_2(kappa)/(T - df_2(kappa))

    Note: the T >= d special case printed as Prop. A.4 eq. (46) has its denominators swapped; the
    form above (eq. (23), re-derived) is the one that matches simulation (shared/THEORY.md §2.3).

    References:
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, Theorem 4.6 eq. (22) = Prop. A.4 eq. (45),
      Corollary 4.7 eq. (23).
    """
    _check_scalars(T=T, T0=T0, ridge=ridge)
    lam, coef, (T, T0, ridge) = _arrays(spectrum, T, T0, ridge)
    one = jnp.ones((), lam.dtype)
    zero = jnp.zeros((), lam.dtype)
    terms = _chain_modes(lam, coef, jnp.ones((), jnp.int32), T, T0, zero, one, ridge, independent=False, finite_size=finite_size)
    return jnp.sum(terms.collapse)


def chain_error(
    spectrum: Spectrum,
    n: ArrayLike,
    T: ArrayLike,
    T0: ArrayLike,
    sigma: ArrayLike,
    sigma0: ArrayLike,
    ridge: ArrayLike,
    *,
    design: str = "fresh",
    finite_size: bool = False,
    per_mode: bool = False,
) -> Decomposition:
    """Test-error decomposition of the replace-mode chain (OLS generators, ridge downstream).

    One scalar configuration; ``jit``/``vmap``/``grad`` friendly in ``T, T0, sigma, sigma0, ridge``
    and the spectrum (``n`` is an integer; reverse-mode ``grad`` needs a concrete ``n`` when
    ``design="fresh"`` and ``T0 < d``). Covers:

    * ``T0 >= d``: Theorem 4.3 + Corollary 4.7 (``finite_size`` selects ``T0 - d - 1`` over ``T0 - d``);
      with ``ridge = 0`` and ``T, T0 >= d + 2`` this is exactly Theorem 4.1's finite-sample identity;
    * ``T0 < d``, ``design="fixed"``: Theorem 4.6 eq. (22) (``kappa0`` form) + the Theorem 4.8 bias,
      extended to ``lambda > 0`` and general spectra (derived, simulation-verified);
    * ``T0 < d``, ``design="fresh"``, ``sigma0 = 0``: Theorem 4.9 and its ``lambda > 0``
      extension (derived, simulation-verified).

    Args:
      spectrum: eigenvalues and teacher coefficients.
      n: generation (0 = clean), or a ``(k,)`` integer vector of generations (every field then gets
        a leading ``(k,)`` axis, and ``kappa``, ``kappa0`` are solved once). T: downstream samples. T0: samples per generator.
      sigma: downstream noise std. sigma0: generator noise std. ridge: downstream ``lambda``.
      design: ``"fresh"`` (independent generator designs) or ``"fixed"`` (one ``X0``) (static).
      finite_size: use the finite-size constant ``T0 - d - 1`` for ``T0 >= d`` (static).
      per_mode: return per-eigenmode ``(d,)`` summands (static).

    Returns:
      :class:`Decomposition`.

    Raises:
      TheoryNotApplicable: concrete ``T0 < d``, ``design="fresh"``, ``sigma0 > 0`` and ``n >= 1``
        (no theorem; Theorem 4.6 needs ``T0 >= d`` or one reused design). Under tracing this case
        cannot be detected and its result is ``NaN`` (documented, so never silently a number).
      ValueError: invalid design or negative inputs.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(50)
      >>> e = kc.theory.chain_error(s, 3, 200, 100, 0.1, 0.2, 0.0)
      >>> exact = 0.01 * 50 / 149 + 3 * 0.04 * 50 / 49   # Theorem 4.1, exact identity
      >>> abs(float(e.total) - exact) < 1e-5 * exact
      True

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, Theorems 4.1, 4.3,
      4.6, 4.8, 4.9, Corollary 4.7; shared/THEORY.md §2.3-§2.4.
    """
    _checks.check_choice("design", design, _DESIGNS)
    _check_scalars(n=n, T=T, T0=T0, sigma=sigma, sigma0=sigma0, ridge=ridge)
    lam, coef, (T, T0, sigma, sigma0, ridge) = _arrays(spectrum, T, T0, sigma, sigma0, ridge)
    n_int = jnp.asarray(n)
    if jnp.issubdtype(n_int.dtype, jnp.floating):
        n_int = n_int.astype(jnp.int32)
    rank = jnp.sum((lam > 0).astype(lam.dtype))
    uncovered = (design == "fresh") & (T0 < rank) & (sigma0 > 0) & (n_int >= 1)
    if all(_concrete(v) for v in (lam, T0, sigma0, n_int)) and bool(jnp.any(uncovered)):
        raise TheoryNotApplicable(
            f"T0={float(T0):g} < d={int(rank)} with fresh generator designs and sigma0={float(sigma0):g} > 0: "
            "no theorem covers it (Demystified Thm 4.6 needs T0 >= d or one reused design); "
            "use design='fixed', T0 >= d, or sigma0 = 0"
        )
    if not per_mode and n_int.ndim == 1 and _concrete(n_int):
        # A concrete vector of generations: sum over modes first (no (k, d) temporaries).
        idx = np.asarray(n_int)
        sums = _chain_sums(
            lam, coef, int(idx.max(initial=0)), T, T0, sigma, sigma0, ridge,
            independent=design == "fresh", finite_size=finite_size,
        )
        nan = jnp.asarray(jnp.nan, lam.dtype)
        return decomposition(*(jnp.where(uncovered, nan, t[idx]) for t in sums))
    terms = _chain_modes(
        lam, coef, n_int, T, T0, sigma, sigma0, ridge,
        independent=design == "fresh", finite_size=finite_size, summed=not per_mode,
    )
    if not per_mode:
        nan = jnp.asarray(jnp.nan, lam.dtype)
        return decomposition(*(jnp.where(uncovered, nan, t) for t in terms))
    nan = jnp.asarray(jnp.nan, lam.dtype)
    terms = type(terms)(*(jnp.where(uncovered[..., None], nan, t) for t in terms))
    return _reduce(terms, per_mode)
