"""Input covariance spectra and teachers, in the eigenbasis of ``Sigma``.

A :class:`Spectrum` holds the eigenvalues ``lambda_i`` of the input covariance ``Sigma`` and the
teacher coefficients ``c_i = v_i^T w0`` (shared/THEORY.md §1.1). kcollapse always works in this
eigenbasis: inputs are ``x = sqrt(lambda) * z`` with ``z ~ N(0, I_d)``, and the test error is
``sum_i lambda_i (w_hat_i - c_i)^2``.

Examples:
  >>> import kcollapse as kc
  >>> s = kc.spectra.power_law(100, beta=2.0, r=0.375)
  >>> round(float(s.teacher_norm_sq()), 12)
  1.0
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from . import _checks
from ._conventions import sigma_norm_sq

__all__ = ["Spectrum", "from_arrays", "isotropic", "power_law"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of ``Sigma`` and the teacher in its eigenbasis (a frozen pytree).

    Attributes:
      eigenvalues: ``(d,)`` eigenvalues ``lambda_i >= 0`` of the input covariance.
      coefficients: ``(d,)`` teacher coefficients ``c_i = v_i^T w0``.

    Both fields are array leaves, so a batch of spectra of one size can be ``vmap``-ed over.
    Build one with :func:`isotropic`, :func:`power_law` or :func:`from_arrays`, which validate.
    """

    eigenvalues: jax.Array
    coefficients: jax.Array

    @property
    def d(self) -> int:
        """Dimension (number of eigen-directions)."""
        return int(self.eigenvalues.shape[-1])

    @property
    def dtype(self) -> Any:
        return self.eigenvalues.dtype

    def teacher_norm_sq(self) -> jax.Array:
        """``||w0||_Sigma^2 = sum_i lambda_i c_i^2``: the null predictor's test error."""
        return sigma_norm_sq(self.eigenvalues, self.coefficients)

    def df(self, t: ArrayLike, m: int = 1) -> jax.Array:
        """Degrees of freedom ``df_m(t) = sum_i lambda_i^m / (lambda_i + t)^m`` (THEORY.md §1.1)."""
        lam = self.eigenvalues
        return jnp.sum((lam / (lam + jnp.asarray(t)[..., None])) ** m, axis=-1)

    def astype(self, dtype: DTypeLike) -> Spectrum:
        return Spectrum(self.eigenvalues.astype(dtype), self.coefficients.astype(dtype))


def _dtype(dtype: DTypeLike | None) -> Any:
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def from_arrays(
    eigenvalues: ArrayLike,
    coefficients: ArrayLike | None = None,
    *,
    normalize: bool = True,
    dtype: DTypeLike | None = None,
) -> Spectrum:
    """A spectrum from user arrays.

    Args:
      eigenvalues: ``(d,)`` non-negative eigenvalues of ``Sigma``, at least one positive.
      coefficients: ``(d,)`` teacher coefficients ``c_i``; default: equal energy in every
        direction, ``c_i^2 lambda_i = 1/d``.
      normalize: rescale ``c`` so that ``||w0||_Sigma^2 = 1`` (the kcollapse default). Pass
        ``False`` to keep the teacher as given.
      dtype: floating dtype of the stored arrays (default: JAX's default float).

    Raises:
      ValueError: wrong rank or length, NaN/inf, negative eigenvalues, or a teacher with zero
        ``Sigma``-norm while ``normalize=True``.
    """
    lam = _checks.check_nonneg_array("eigenvalues", eigenvalues, ndim=1)
    if lam.shape[0] == 0:
        raise ValueError("eigenvalues must have at least one entry, got an empty array")
    if not np.any(lam > 0):
        raise ValueError("eigenvalues must contain at least one positive value, got all zeros")
    lam = lam.astype(np.float64)
    if coefficients is None:
        c = np.where(lam > 0, 1.0 / np.sqrt(np.where(lam > 0, lam, 1.0) * lam.shape[0]), 0.0)
    else:
        c = _checks.check_finite_array("coefficients", coefficients, ndim=1).astype(np.float64)
        if c.shape[0] != lam.shape[0]:
            raise ValueError(
                f"coefficients must have the same length as eigenvalues ({lam.shape[0]}), got {c.shape[0]}"
            )
    if normalize:
        norm = float(np.sum(lam * c * c))
        if not norm > 0:
            raise ValueError(
                "coefficients have zero Sigma-norm (sum lambda_i c_i^2 = 0), so they cannot be "
                "normalised to ||w0||_Sigma = 1; pass a nonzero teacher or normalize=False"
            )
        c = c / np.sqrt(norm)
    dt = _dtype(dtype)
    return Spectrum(jnp.asarray(lam, dtype=dt), jnp.asarray(c, dtype=dt))


def isotropic(d: int, *, teacher: ArrayLike | None = None, normalize: bool = True, dtype: DTypeLike | None = None) -> Spectrum:
    """``Sigma = I_d``; the default teacher is ``w0 = 1/sqrt(d)`` in every coordinate (``||w0|| = 1``).

    Args:
      d: dimension, ``>= 1``.
      teacher: optional ``(d,)`` teacher; normalised to unit norm unless ``normalize=False``.
    """
    d = _checks.check_int("d", d, minimum=1)
    return from_arrays(np.ones(d), teacher, normalize=normalize, dtype=dtype)


def power_law(d: int, beta: float, r: float, *, dtype: DTypeLike | None = None) -> Spectrum:
    """Capacity/source power law (THEORY.md header and §1.5).

    ``lambda_i = i^{-beta}`` and ``c_i^2 ∝ i^{-delta}`` with ``delta = 1 + beta (2r - 1)``,
    normalised to ``sum_i lambda_i c_i^2 = 1``; ``c_i > 0``.

    Args:
      d: dimension, ``>= 1``.
      beta: capacity exponent ``> 0`` (the asymptotic theory assumes ``beta > 1``).
      r: source exponent ``>= 0``.

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2, §5 and App. B;
      Cui, Loureiro, Krzakala, Zdeborová (2022).
    """
    d = _checks.check_int("d", d, minimum=1)
    beta = _checks.check_positive_float("beta", beta)
    r = _checks.check_nonneg_float("r", r)
    i = np.arange(1, d + 1, dtype=np.float64)
    delta = 1.0 + beta * (2.0 * r - 1.0)
    lam = i**-beta
    c = i ** (-delta / 2.0)
    return from_arrays(lam, c, normalize=True, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Empirical kernel spectra (kernel chain theory, shared/THEORY.md §2.6)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EmpiricalSpectrum:
    """A kernel operator's spectrum and a target's coefficients, estimated from ``N`` samples.

    Attributes:
      spectrum: :class:`Spectrum` with ``lambda_i = mu_i / N`` (``mu`` the Gram eigenvalues, in
        descending order; numerically-zero ones set to 0) and ``c_i`` such that
        ``lambda_i c_i^2`` is the target's energy on the ``i``-th eigenfunction (not normalised:
        ``||w0||_Sigma^2`` is the target's mean square minus ``residual``).
      residual: energy ``(1/N) ||y||^2`` the kernel cannot represent (on eigenvectors with
        ``lambda_i = 0``); it is added to every test error, since no fit ever learns it.
      n_samples: ``N``.
      target_mean_square: ``(1/N) sum_j y_j^2``, the null predictor's error.
    """

    spectrum: Spectrum
    residual: float
    n_samples: int
    target_mean_square: float

    @property
    def energies(self) -> np.ndarray:
        """``(N,)`` target energy per eigen-direction, ``lambda_i c_i^2``."""
        lam, c = np.asarray(self.spectrum.eigenvalues), np.asarray(self.spectrum.coefficients)
        return lam * c * c


def from_gram(gram: ArrayLike, targets: ArrayLike, *, dtype: DTypeLike | None = None) -> EmpiricalSpectrum:
    """Empirical spectrum from a Gram matrix ``K`` on ``N`` samples and the target on them.

    ``K = U diag(mu) U^T``; the kernel operator ``(T f)(x) = E_x' k(x, x') f(x')`` on the
    empirical distribution has eigenvalues ``lambda_i = mu_i / N`` and ``L^2``-normalised
    eigenfunctions ``phi_i(x_j) = sqrt(N) U_ji``. The target's coefficient on ``phi_i`` is
    ``<f0, phi_i> = U^T y / sqrt(N)``; in kcollapse's linear language (``x -> psi(x)``,
    ``k = psi . psi``) that is ``sqrt(lambda_i) c_i``, so ``c_i = (U^T y)_i / sqrt(N lambda_i)``.
    Eigenvalues below ``eps N mu_max`` are numerical zeros: set to 0, with ``c_i = 0`` and their
    energy reported as ``residual``.

    Args:
      gram: ``(N, N)`` symmetric PSD Gram.
      targets: ``(N,)`` clean target values ``f0(x_j)``.

    References:
      Cui, Loureiro, Krzakala, Zdeborová, "Generalization error rates in kernel regression: the
      crossover from the noiseless to noisy regime", NeurIPS 2021 (arXiv:2105.15004), §4 (real data);
      Dohmatob, Feng, Kempe, arXiv:2402.07712v2, §6 (kernel experiment).
    """
    K = _checks.check_finite_array("gram", gram, ndim=2)
    y = _checks.check_finite_array("targets", targets, ndim=1)
    N = K.shape[0]
    if K.shape != (N, N):
        raise ValueError(f"gram must be square, got shape {K.shape}")
    if y.shape[0] != N:
        raise ValueError(f"targets has {y.shape[0]} entries but the Gram is {N} x {N}")
    if not np.allclose(K, K.T, rtol=1e-8, atol=1e-12 * max(float(np.abs(K).max()), 1e-300)):
        raise ValueError("gram must be symmetric (got an asymmetric matrix); pass gram(kernel, X) of one input set")
    mu, U = np.linalg.eigh(np.asarray(K, dtype=np.float64))
    mu, U = mu[::-1], U[:, ::-1]
    tol = np.finfo(np.float64).eps * N * max(float(mu[0]), 0.0)
    alive = mu > tol
    lam = np.where(alive, mu, 0.0) / N
    proj = U.T @ np.asarray(y, dtype=np.float64)  # sqrt(N) <f0, phi_i>
    energy = proj**2 / N
    c = np.where(alive, proj / np.sqrt(np.where(alive, mu, 1.0)), 0.0)
    spec = from_arrays(lam, c, normalize=False, dtype=dtype)
    return EmpiricalSpectrum(spec, float(energy[~alive].sum()), N, float(np.mean(np.asarray(y, np.float64) ** 2)))


def empirical(kernel: Any, inputs: ArrayLike, targets: ArrayLike, *, memory_budget: int | None = None,
              dtype: DTypeLike | None = None) -> EmpiricalSpectrum:
    """Empirical kernel spectrum and target coefficients on ``N`` samples (shared/THEORY.md §2.6).

    The Gram is computed in float64 when x64 is enabled (the CLI and tests enable it), then
    eigendecomposed once (``O(N^3)``; ``N`` of a few thousand takes seconds). With the chain's
    "population" protocol (training points drawn from these very ``N`` samples and the error
    measured on all of them) this spectrum *is* the population's; otherwise it estimates it.

    Args:
      kernel: a :mod:`kcollapse.kernels` kernel.
      inputs: ``(N, p)`` inputs. targets: ``(N,)`` clean target.
      memory_budget: bytes for the Gram (default :data:`kcollapse.kernels.DEFAULT_MEMORY_BUDGET`,
        raised to the Gram's own size plus 64 MiB when that is larger).

    Returns:
      :class:`EmpiricalSpectrum`.

    Examples:
      >>> import numpy as np
      >>> from kcollapse import kernels, spectra
      >>> s = np.array([1.0, 0.5, 0.1])
      >>> X = np.sqrt(3) * np.vstack([np.diag(s), -np.diag(s)])  # X^T X / N = diag(s^2) exactly
      >>> es = spectra.empirical(kernels.Linear(), X, X @ np.ones(3))
      >>> [round(float(v), 4) for v in es.spectrum.eigenvalues[:4]]
      [1.0, 0.25, 0.01, 0.0]
    """
    from . import kernels

    X = _checks.check_finite_array("inputs", inputs, ndim=2)
    N = X.shape[0]
    need = N * N * 8 + 64 * 2**20
    budget = max(need, kernels.DEFAULT_MEMORY_BUDGET) if memory_budget is None else memory_budget
    K = np.asarray(kernels.gram(kernel, X, memory_budget=budget), dtype=np.float64)
    K = (K + K.T) / 2  # exact symmetry (the block formula is symmetric only to round-off)
    return from_gram(K, targets, dtype=dtype)


class PowerLawFit(NamedTuple):
    """Capacity and source exponents fitted to an empirical spectrum (Cui et al. 2021, §4).

    Attributes:
      beta: capacity, ``lambda_i ≍ i^{-beta}`` (least-squares slope of ``log lambda_i`` on ``log i``).
      r: source, from the target's tail energy ``sum_{k >= i} lambda_k c_k^2 ≍ i^{-2 beta r}``.
      ell_crit: ``beta / (1 + 2 beta min(r, 1))``, the clean optimal ridge exponent (Demystified eq. 65).
      i_min, i_max: the fitted index range (1-based, inclusive).
      beta_r2, r_r2: ``R^2`` of the two log-log fits (how straight the lines are).
    """

    beta: float
    r: float
    ell_crit: float
    i_min: int
    i_max: int
    beta_r2: float
    r_r2: float


def _loglog_fit(i: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    x, y = np.log(i), np.log(v)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss = float(np.sum((y - y.mean()) ** 2))
    return float(slope), (1.0 - float(np.sum(resid**2)) / ss) if ss > 0 else 1.0


def fit_power_law(spectrum: Spectrum | EmpiricalSpectrum, *, i_min: int = 2, i_max: int | None = None) -> PowerLawFit:
    """Fit capacity ``beta`` and source ``r`` exponents as Cui et al. do on real data.

    ``beta`` is minus the slope of ``log lambda_i`` against ``log i``; the source exponent comes
    from the cumulative tail of the target's energy, ``t_i = sum_{k >= i} lambda_k c_k^2 ≍
    i^{-2 beta r}`` (for ``c_k^2 ∝ k^{-delta}``, ``delta = 1 + beta(2r - 1)``, the summand is
    ``k^{-(1 + 2 beta r)}``), which is far less noisy than fitting single coefficients.

    Args:
      spectrum: a :class:`Spectrum` or :class:`EmpiricalSpectrum` (eigenvalues in descending order).
      i_min: first index of the fit (1-based; default 2 skips the near-constant top eigenfunction).
      i_max: last index (default: ``N // 10``, clipped to the positive eigenvalues, where the
        finite-sample spectrum is still a faithful estimate of the operator's).

    Raises:
      ValueError: fewer than 3 usable indices, or a tail energy that vanishes inside the range.

    References:
      Cui, Loureiro, Krzakala, Zdeborová, arXiv:2105.15004, §4 and Fig. 3 (MNIST: RBF
      ``(beta, r) ≈ (1.65, 0.097)``; polynomial ``(1.2, 0.15)``, as quoted by Demystified §6).
    """
    spec = spectrum.spectrum if isinstance(spectrum, EmpiricalSpectrum) else spectrum
    lam = np.asarray(spec.eigenvalues, dtype=np.float64)
    c = np.asarray(spec.coefficients, dtype=np.float64)
    if np.any(np.diff(lam) > 1e-12 * lam.max()):
        raise ValueError("eigenvalues must be in descending order for a power-law fit (as spectra.empirical returns them)")
    n_pos = int(np.sum(lam > 0))
    i_min = _checks.check_int("i_min", i_min, minimum=1)
    i_max = max(lam.shape[0] // 10, i_min + 2) if i_max is None else _checks.check_int("i_max", i_max, minimum=1)
    i_max = min(i_max, n_pos)
    if i_max - i_min + 1 < 3:
        raise ValueError(f"the fit range [{i_min}, {i_max}] has fewer than 3 positive eigenvalues; widen it (i_min, i_max)")
    idx = np.arange(i_min, i_max + 1)
    slope_b, r2_b = _loglog_fit(idx, lam[idx - 1])
    beta = -slope_b
    tail = np.cumsum((lam * c * c)[::-1])[::-1]
    t = tail[idx - 1]
    if np.any(t <= 0):
        raise ValueError(f"the target has no energy beyond index {int(idx[np.argmax(t <= 0)])}; lower i_max")
    slope_t, r2_t = _loglog_fit(idx, t)
    r = -slope_t / (2.0 * beta) if beta > 0 else float("nan")
    ell = beta / (1.0 + 2.0 * beta * min(r, 1.0))  # Demystified eq. (65) with r_bar = min(r, 1)
    return PowerLawFit(float(beta), float(r), ell, int(i_min), int(i_max), r2_b, r2_t)


__all__ += ["EmpiricalSpectrum", "PowerLawFit", "empirical", "fit_power_law", "from_gram"]
