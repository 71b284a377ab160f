"""Theory for the kernel chain: replace-mode chain with **ridge (KRR) generators**, any ``T0``.

Demystified's theorems assume OLS / min-norm generators and either ``T0 >= d`` or a noiseless
generator (shared/THEORY.md §2.3-§2.4, §9). A kernel's feature space is infinite-dimensional, so
the paper's kernel experiment (KRR generator, ``T0 < d``, ``sigma0 > 0``) is covered by none of
them. This module extends the deterministic-equivalent engine of :mod:`kcollapse.theory` to it
(kcollapse's own derivation, checked against simulation; docs/notes/kernels.md).

Derivation (fresh generator designs, per eigenmode ``i``, ``W_i = lambda_i c_i^2``). Generation
``m`` fits ridge ``lambda0`` on ``T0`` fresh rows labelled by ``w_{m-1}`` plus ``N(0, sigma0^2)``:
``w_m = A_m w_{m-1} + xi_m`` with ``A_m = Sigma_hat R`` and ``xi_m = R X^T E / T0``,
``R = (Sigma_hat + lambda0)^{-1}``, independent of ``w_{m-1}``. With ``kappa0 = kappa(lambda0, T0)``,
``F_i = lambda_i/(lambda_i + kappa0)`` and ``D0 = T0 - df_2(kappa0)`` (§1.4, first and second order):

* mean:  ``E A_m ≍ F``, so ``M_m := E lambda_i (w_m)_i c_i = F M_{m-1}``;
* second moment: ``E lambda_i (A u)_i^2 ≍ F_i^2 U_i + [sum_j (1 - F_j)^2 U_j] F_i^2 / D0``
  (§1.4 term 1 with ``A = u u^T``, ``B = lambda_i e_i e_i^T``);
* noise: ``E lambda_i (xi_m)_i^2 = sigma0^2 lambda_i E(R Sigma_hat R)_ii / T0 ≍ sigma0^2 F_i^2 / D0``
  (the per-mode ridge variance, §1.3).

So ``U_m = P(U_{m-1}) + sigma0^2 F^2/D0`` with ``P(U) = F^2 U + <(1-F)^2, U> F^2/D0``, ``U_0 = M_0 = W``.
Splitting ``U`` into the part coming from ``w0`` and the part coming from the generators' noise,
the downstream ridge ``(lambda, T)`` (``kappa``, ``g = lambda/(lambda+kappa)``, ``D = T - df_2``)
sees the teacher ``w_n`` (independent of its design) and errs by::

    bias     = <a, U_n^teacher> - 2 <g, M_n> + sum W,   a = g^2 + (1-g)^2 sum(g^2)/D
    collapse = <a, U_n^noise>
    variance = sigma^2 sum(g^2)/D

Special cases (tested): ``lambda0 = 0`` and ``T0 >= d`` gives ``F = 1``, ``D0 = T0 - d`` and
Corollary 4.7 / Theorem 4.1 exactly; ``lambda0 = 0``, ``T0 < d``, ``sigma0 = 0`` gives the
Theorem 4.9 extension of :func:`kcollapse.theory.chain_error`.

Kernels (§2.6): with ``lambda_i`` the eigenvalues of the kernel operator and ``W_i`` the target's
energy on its eigenfunctions (:func:`kcollapse.spectra.empirical`), this is the theory of the
kernel chain with ``Sigma`` the kernel operator (the Gaussian-design assumption in feature space is
the approximation; its accuracy on real digits is measured in docs/notes/kernels.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..simulate import ChainConfig
from ..spectra import Spectrum

__all__ = ["RIDGE_GENERATOR_CHAIN", "kernel_chain_theory", "ridge_generator_chain"]

RIDGE_GENERATOR_CHAIN = "kcollapse ridge-generator chain (derived; = Cor 4.7 / Thm 4.1 / Thm 4.9 where they apply)"

_HI = jax.lax.Precision.HIGHEST


def _dot(a, b):
    return jnp.dot(a, b, precision=_HI)


def _stage(lam, ridge, n_rows, finite_size):
    """``(F, D)`` of a ridge fit on ``n_rows`` fresh rows: ``F = lambda/(lambda+kappa)``, ``D = n - df_2``.

    ``kappa = 0`` (ridge 0, ``n >= rank``): ``F = 1`` on the positive modes and ``D = n - rank``
    (``n - rank - 1``, the exact Wishart constant, when ``finite_size``).
    """
    from ..theory import effective_ridge

    dt = lam.dtype
    positive = lam > 0
    rank = jnp.sum(positive.astype(dt))
    kappa = effective_ridge(lam, ridge, n_rows)
    zero = kappa <= 0
    safe = jnp.where(zero, jnp.ones((), dt), kappa)
    F = jnp.where(zero, positive.astype(dt), lam / (lam + safe))
    D = jnp.where(zero, n_rows - rank - jnp.where(finite_size, 1.0, 0.0).astype(dt), n_rows - jnp.sum(F * F))
    return F, D, zero


@functools.partial(jax.jit, static_argnames=("n_max", "finite_size"))
def _grid(lam, coef, T, T0, sigma, sigma0, ridge0, ridges, *, n_max, finite_size):
    dt = lam.dtype
    W = lam * coef * coef
    alive = lam > 0

    def column(ridge):
        # kappa = 0 downstream (OLS, T >= d): E tr Sigma (X^T X)^{-1} = d/(T - d - 1) exactly (Lemma A.1).
        g, D, ridgeless = _stage(lam, ridge, T, jnp.asarray(True))
        # An OLS downstream makes every trace exact: use the exact Wishart constant for the generator too.
        F, D0, _ = _stage(lam, ridge0, T0, jnp.asarray(finite_size) | ridgeless)
        bad = D <= 0
        g2D = jnp.where(bad, 0.0, g * g / jnp.where(bad, 1.0, D))
        a = g * g + (1 - g) ** 2 * jnp.sum(g2D)
        ok0 = D0 > 0
        noise = jnp.where(ok0 & alive, F * F / jnp.where(ok0, D0, 1.0), 0.0) * sigma0**2
        inf0 = ~ok0 & (sigma0 > 0)

        def project(U):
            return F * F * U + _dot((1 - F) ** 2, U) * F * F / jnp.where(ok0, D0, 1.0)

        def step(carry, _):
            Ut, Un, M = carry
            out = (_dot(a, Ut) - 2 * _dot(g, M) + jnp.sum(W), _dot(a, Un), jnp.sum(Ut + Un - 2 * M + W))
            return (project(Ut), project(Un) + noise, F * M), out

        zeros = jnp.zeros_like(W)
        _, (bias, collapse, gen) = jax.lax.scan(step, (W, zeros, W), None, length=n_max + 1)
        ns = jnp.arange(n_max + 1)
        inf = jnp.asarray(jnp.inf, dt)
        collapse = jnp.where((ns >= 1) & (inf0 | (bad & (sigma0 > 0))), inf, collapse)
        gen = jnp.where((ns >= 1) & inf0, inf, gen)
        var = jnp.where(bad & (sigma > 0), inf, sigma**2 * jnp.sum(g2D))
        return bias, jnp.broadcast_to(var, bias.shape), collapse, gen

    bias, var, collapse, gen = jax.vmap(column, out_axes=1)(ridges)
    return bias, var, collapse, gen[:, 0]


def ridge_generator_chain(spectrum: Spectrum, n: ArrayLike, T: ArrayLike, T0: ArrayLike, sigma: ArrayLike,
                          sigma0: ArrayLike, ridge: ArrayLike, generator_ridge: ArrayLike = 0.0, *,
                          finite_size: bool = False):
    """Decomposition of the replace chain with ridge generators, fresh designs, one configuration.

    Args:
      spectrum: eigenvalues ``lambda_i`` and teacher coefficients ``c_i``.
      n: generation ``>= 0`` (integer, concrete).
      T: downstream samples. T0: samples per generator. sigma, sigma0: label-noise stds.
      ridge: downstream ridge ``lambda``. generator_ridge: ``lambda0`` of every generator fit.
      finite_size: ``T0 - d - 1`` instead of ``T0 - d`` where ``kappa0 = 0``.

    Returns:
      :class:`kcollapse.theory.Decomposition` of scalars.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(50)
      >>> e = kc.kernels.ridge_generator_chain(s, 3, 200, 100, 0.1, 0.2, 0.0)  # OLS chain: Thm 4.1
      >>> exact = 0.01 * 50 / 149 + 3 * 0.04 * 50 / 49
      >>> abs(float(e.total) - exact) < 1e-5 * exact
      True
    """
    from ..theory import Decomposition

    n = _checks.check_int("n", n, minimum=0)
    for name, v in (("sigma", sigma), ("sigma0", sigma0), ("ridge", ridge), ("generator_ridge", generator_ridge)):
        _checks.check_nonneg_float(name, v)
    lam, coef, T, T0 = _arrays(spectrum, T, T0)
    dt = lam.dtype
    bias, var, col, _ = _grid(lam, coef, T, T0, jnp.asarray(sigma, dt), jnp.asarray(sigma0, dt),
                              jnp.asarray(generator_ridge, dt), jnp.asarray([ridge], dt), n_max=n,
                              finite_size=bool(finite_size))
    b, v, c = bias[n, 0], var[n, 0], col[n, 0]
    return Decomposition(b, v, c, b + v + c)


def _arrays(spectrum, T, T0):
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    _checks.check_nonneg_array("spectrum.eigenvalues", spectrum.eigenvalues, ndim=1)
    _checks.check_finite_array("spectrum.coefficients", spectrum.coefficients, ndim=1, length=spectrum.d)
    T = _checks.check_positive_float("T", T)
    T0 = _checks.check_positive_float("T0", T0)
    lam = spectrum.eigenvalues
    return lam, spectrum.coefficients.astype(lam.dtype), jnp.asarray(T, lam.dtype), jnp.asarray(T0, lam.dtype)


def kernel_chain_theory(spectrum: Spectrum, config: ChainConfig, ridges: ArrayLike = (0.0,), *,
                        finite_size: bool = False):
    """Theory on the kernel chain's grid ``n = 0..n_max`` x ``ridges`` (same layout as the simulation).

    * ``mode="replace"``, ``design="fresh"``: the ridge-generator chain derived above (any
      ``generator_ridge >= 0``, any ``T0``, ``sigma0``);
    * ``n_max = 0`` (clean training, any mode): the clean risk;
    * otherwise :func:`kcollapse.theory.predict_chain`, which covers OLS generators with a fixed
      design, and accumulation with a fixed design, or raises ``TheoryNotApplicable``.

    Args:
      spectrum: kernel-operator eigenvalues and target coefficients
        (:func:`kcollapse.spectra.empirical`), or any :class:`~kcollapse.spectra.Spectrum`.
      config: the chain (:class:`~kcollapse.ChainConfig`, as for the simulation).
      ridges: ``(n_ridges,)`` downstream ridge values.
      finite_size: ``T0 - d - 1`` in place of ``T0 - d`` where the generator is ridgeless with
        ``T0 >= d``.

    Returns:
      :class:`kcollapse.theory.TheoryResult` with ``(n_max + 1, n_ridges)`` arrays.

    Raises:
      kcollapse.theory.TheoryNotApplicable: no result covers the configuration.
      FloatingPointError: the formulas produced NaN (never returned silently).

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.power_law(200, beta=1.5, r=0.3)
      >>> cfg = kc.ChainConfig(samples_per_generation=50, downstream_samples=100, n_generations=2,
      ...                      generator_noise=1.0, label_noise=1.0, generator_ridge=0.01)
      >>> kc.kernels.kernel_chain_theory(s, cfg, [1e-3, 1e-2]).total.shape
      (3, 2)
    """
    from ..theory import TheoryResult, predict_chain

    if not isinstance(config, ChainConfig):
        raise TypeError(f"config must be a kcollapse.ChainConfig, got {type(config).__name__}")
    config.validate()
    ridges_np = _checks.check_nonneg_array("ridges", np.atleast_1d(np.asarray(ridges)), ndim=1).astype(np.float64)
    if ridges_np.size == 0:
        raise ValueError("ridges must contain at least one value")
    covered = config.n_generations == 0 or (config.mode == "replace" and config.design == "fresh")
    if not covered:
        return predict_chain(spectrum, config, ridges_np, finite_size=finite_size)
    lam, coef, T, T0 = _arrays(spectrum, config.downstream_samples, config.samples_per_generation)
    dt = lam.dtype
    bias, var, col, gen = _grid(
        lam, coef, T, T0, jnp.asarray(config.label_noise, dt), jnp.asarray(config.generator_noise, dt),
        jnp.asarray(config.generator_ridge, dt), jnp.asarray(ridges_np, dt), n_max=config.n_generations,
        finite_size=bool(finite_size),
    )
    bias, var, col, gen = (np.asarray(x) for x in (bias, var, col, gen))
    if np.isnan(bias).any() or np.isnan(var).any() or np.isnan(col).any():
        raise FloatingPointError("kernel-chain theory produced NaN; please report this configuration")
    labels = tuple(RIDGE_GENERATOR_CHAIN for _ in ridges_np)
    return TheoryResult(
        generations=np.arange(config.n_generations + 1), ridges=ridges_np, bias=bias, variance=var, collapse=col,
        total=bias + var + col, generator=gen, theorem=RIDGE_GENERATOR_CHAIN, theorem_per_ridge=labels,
        heuristic=False, config=config, finite_size=bool(finite_size),
    )
