"""``predict_chain``: the theory counterpart of :func:`kcollapse.simulate_chain`, same layout.

Dispatches a :class:`~kcollapse.ChainConfig` to the theorem that covers it, or raises
:class:`TheoryNotApplicable` naming the missing assumption.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..simulate import ChainConfig
from ..spectra import Spectrum
from ._accumulate import accumulate_chain
from ._ridge_chain import chain_modes, chain_sums, generator_error_modes
from ._types import TheoryNotApplicable

__all__ = ["TheoryResult", "predict_chain"]

CLEAN = "Demystified Prop 4.5 (clean risk)"
THM41 = "Demystified Thm 4.1 (exact)"
COR47 = "Demystified Cor 4.7 (T0-d)"
COR47_FS = "Demystified Cor 4.7 (T0-d-1)"
THM46_FIXED = "Demystified Thm 4.6 eq. (22) + Thm 4.8 bias (kappa0 form, general spectrum)"
THM49 = "Demystified Thm 4.9 (+ lambda>0 extension, general spectrum)"
ACCUM = "Gerstgrasser Thm 2 (accumulate) + downstream OLS variance (derived)"


@dataclasses.dataclass(frozen=True)
class TheoryResult:
    """Theory predictions on the simulator's grid (compare with :class:`~kcollapse.SimulationResult`).

    Attributes:
      generations: ``(n_max + 1,)`` generations ``n = 0..n_max``.
      ridges: ``(n_ridges,)`` downstream ridge values.
      bias, variance, collapse, total: ``(n_max + 1, n_ridges)``; ``total`` compares with
        ``SimulationResult.mean``.
      generator: ``(n_max + 1,)`` theory of the generators' error ``||w_n - w0||_Sigma^2``
        (compares with ``SimulationResult.generator_mean``).
      theorem: which result backs the numbers (one label per distinct case, joined by ``"; "``).
      theorem_per_ridge: ``(n_ridges,)`` the label of each ridge column.
      heuristic: ``True`` if any number is not backed by a theorem or a simulation-verified
        derivation (never the case for what :func:`predict_chain` returns today).
      per_mode: ``(n_max + 1, n_ridges, d)`` per-eigenmode total error (the summands over ``i``), or
        ``None``; compares with ``SimulationResult.per_mode_mean``.
      config: the :class:`~kcollapse.ChainConfig`. finite_size: whether ``T0 - d - 1`` was used.
    """

    generations: np.ndarray
    ridges: np.ndarray
    bias: np.ndarray
    variance: np.ndarray
    collapse: np.ndarray
    total: np.ndarray
    generator: np.ndarray
    theorem: str
    theorem_per_ridge: tuple[str, ...]
    heuristic: bool
    config: ChainConfig
    finite_size: bool
    per_mode: np.ndarray | None = None


@functools.partial(jax.jit, static_argnames=("n_max", "independent", "finite_size", "per_mode"))
def _replace_grid(lam, coef, T, T0, sigma, sigma0, ridges, *, n_max, independent, finite_size, per_mode):
    ns = jnp.arange(n_max + 1)

    def column(ridge):  # every n for one ridge from one kappa solve, O(n_max d) work
        return chain_sums(lam, coef, n_max, T, T0, sigma, sigma0, ridge, independent=independent, finite_size=finite_size)

    sums = list(jax.vmap(column, out_axes=1)(ridges))  # each (n+1, R)
    modes = None
    if per_mode:
        def column_modes(ridge):
            return chain_modes(lam, coef, ns, T, T0, sigma, sigma0, ridge, independent=independent, finite_size=finite_size)

        terms = jax.vmap(column_modes, out_axes=1)(ridges)  # each (n+1, R, d)
        modes = terms.bias + terms.variance + terms.collapse
    gen = jax.vmap(lambda n: jnp.sum(generator_error_modes(lam, coef, n, T0, sigma0, independent=independent)))(ns)
    return sums, gen, modes


def _not_applicable(msg: str) -> TheoryNotApplicable:
    return TheoryNotApplicable(msg)


def _labels(config: ChainConfig, rank: int, ridges: np.ndarray, finite_size: bool) -> tuple[str, ...]:
    T0, T, n_max = config.samples_per_generation, config.downstream_samples, config.n_generations
    if n_max == 0:
        return tuple(CLEAN for _ in ridges)
    if config.mode == "accumulate":
        return tuple(ACCUM for _ in ridges)
    if T0 < rank:
        return tuple((THM46_FIXED if config.design == "fixed" else THM49) for _ in ridges)
    out = []
    for r in ridges:
        if r == 0 and T >= rank + 2 and T0 >= rank + 2:
            out.append(THM41)
        else:
            out.append(COR47_FS if finite_size else COR47)
    return tuple(out)


def _check_applicable(config: ChainConfig, rank: int, ridges: np.ndarray) -> None:
    if config.n_generations == 0:
        return  # clean training only: always covered
    if float(config.generator_ridge) > 0:
        raise _not_applicable(
            f"generator_ridge={float(config.generator_ridge):g} > 0: no theorem covers a ridge-regularised "
            "generator (Demystified v2 assumes OLS/min-norm generators); set generator_ridge=0"
        )
    if config.mode == "mix":
        raise _not_applicable(
            "mode='mix': no theorem covers iterated mixing of synthetic and clean rows in this protocol "
            "(Strong Model Collapse covers a single mixed step only); use mode='replace' or 'accumulate'"
        )
    T0, sigma0 = config.samples_per_generation, float(config.generator_noise)
    if config.mode == "accumulate":
        if config.design != "fixed":
            raise _not_applicable(
                "mode='accumulate' with design='fresh': Gerstgrasser et al. Thm 1-2 need one design reused "
                "by every generator; use design='fixed'"
            )
        if T0 < rank + 2:
            raise _not_applicable(
                f"mode='accumulate' needs an under-parameterised OLS generator, T0 >= d + 2 (got T0={T0}, d={rank})"
            )
        if np.any(ridges > 0):
            raise _not_applicable(
                "mode='accumulate' with a downstream ridge > 0: only the OLS downstream model (ridge 0) is "
                "covered (Gerstgrasser Thm 2 + kcollapse's derived downstream variance); use ridges=[0]"
            )
        if config.downstream_samples < rank + 2 and float(config.label_noise) > 0:
            raise _not_applicable(
                f"mode='accumulate' with label_noise > 0 needs T >= d + 2 (got T={config.downstream_samples}, d={rank})"
            )
        return
    if T0 < rank and config.design == "fresh" and sigma0 > 0:
        raise _not_applicable(
            f"T0={T0} < d={rank} with fresh generator designs and generator_noise={sigma0:g} > 0: no theorem "
            "covers it (Demystified Thm 4.6 needs T0 >= d or one reused design X0); use design='fixed', "
            "T0 >= d, or generator_noise=0"
        )


def predict_chain(
    spectrum: Spectrum,
    config: ChainConfig,
    ridges: ArrayLike = (0.0,),
    *,
    finite_size: bool = False,
    per_mode: bool = False,
) -> TheoryResult:
    """Theory of the model-collapse chain on the simulator's grid ``n = 0..n_max`` x ``ridges``.

    Dispatch (``d`` = number of positive eigenvalues, generator = OLS):

    * ``n_max = 0``: clean risk (Prop. 4.5).
    * ``mode="replace"``, ``T0 >= d``: Theorem 4.3 + Corollary 4.7 (``finite_size=True`` uses
      ``T0 - d - 1``); ridge 0 with ``T, T0 >= d + 2`` is Theorem 4.1's exact identity (any design).
    * ``mode="replace"``, ``T0 < d``, ``design="fixed"``: Theorem 4.6 eq. (22) + Theorem 4.8 bias
      (general spectrum, ``lambda >= 0``: derived, simulation-verified).
    * ``mode="replace"``, ``T0 < d``, ``design="fresh"``, ``generator_noise = 0``: Theorem 4.9
      (general spectrum, ``lambda >= 0``: derived, simulation-verified).
    * ``mode="accumulate"``, ``design="fixed"``, ``T0 >= d + 2``, ridge 0: Gerstgrasser et al.
      Theorem 2 for the generator plus the derived downstream variance (see
      :func:`accumulate_chain`).

    Everything else raises :class:`TheoryNotApplicable`.

    Args:
      spectrum: eigenvalues and teacher (its dtype is the compute dtype).
      config: the chain (same object as for :func:`kcollapse.simulate_chain`).
      ridges: ``(n_ridges,)`` downstream ridge values ``>= 0``.
      finite_size: use ``T0 - d - 1`` (exact Wishart constant) instead of ``T0 - d`` in ``rho``.
      per_mode: also return the per-eigenmode totals.

    Returns:
      :class:`TheoryResult` with ``(n_max + 1, n_ridges)`` arrays.

    Raises:
      TheoryNotApplicable: no theorem covers the configuration (the message names the assumption).
      ValueError / TypeError: invalid spectrum, config or ridges.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.isotropic(100)
      >>> cfg = kc.ChainConfig(samples_per_generation=200, downstream_samples=300, n_generations=3,
      ...                      generator_noise=0.2, label_noise=0.1)
      >>> res = kc.theory.predict_chain(s, cfg, ridges=[0.0, 0.1])
      >>> res.total.shape, res.theorem_per_ridge[0]
      ((4, 2), 'Demystified Thm 4.1 (exact)')

    References:
      Dohmatob, Feng, Kempe, "Model Collapse Demystified", arXiv:2402.07712v2 (§4);
      Gerstgrasser et al., "Is Model Collapse Inevitable?", arXiv:2404.01413v2 (Theorems 1-2).
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    if not isinstance(config, ChainConfig):
        raise TypeError(f"config must be a kcollapse.ChainConfig, got {type(config).__name__}")
    config.validate()
    lam_np = _checks.check_nonneg_array("spectrum.eigenvalues", spectrum.eigenvalues, ndim=1)
    _checks.check_finite_array("spectrum.coefficients", spectrum.coefficients, ndim=1, length=spectrum.d)
    ridges_np = _checks.check_nonneg_array("ridges", np.atleast_1d(np.asarray(ridges)), ndim=1).astype(np.float64)
    if ridges_np.size == 0:
        raise ValueError("ridges must contain at least one value")
    rank = int(np.sum(lam_np > 0))
    _check_applicable(config, rank, ridges_np)
    labels = _labels(config, rank, ridges_np, finite_size)

    dt = spectrum.dtype
    lam, coef = spectrum.eigenvalues, spectrum.coefficients.astype(dt)
    T0, T, n_max = config.samples_per_generation, config.downstream_samples, config.n_generations
    sigma, sigma0 = jnp.asarray(config.label_noise, dt), jnp.asarray(config.generator_noise, dt)
    n_r = ridges_np.size
    if config.mode == "accumulate" and n_max > 0:
        ns = jnp.arange(n_max + 1)
        dec = accumulate_chain(ns, jnp.asarray(rank, dt), jnp.asarray(T, dt), jnp.asarray(T0, dt), sigma, sigma0)
        sums = [np.repeat(np.asarray(x)[:, None], n_r, axis=1) for x in (dec.bias, dec.variance, dec.collapse)]
        generator = np.asarray(dec.collapse)
        modes = None
        if per_mode:
            share = np.where(np.asarray(lam) > 0, 1.0 / rank, 0.0)  # rotation invariance (whitened)
            modes = (sums[0] + sums[1] + sums[2])[..., None] * share
    else:
        independent = config.design == "fresh"
        s, gen, modes = _replace_grid(
            lam, coef, jnp.asarray(T, dt), jnp.asarray(T0, dt), sigma, sigma0, jnp.asarray(ridges_np, dt),
            n_max=n_max, independent=independent, finite_size=bool(finite_size), per_mode=bool(per_mode),
        )
        sums = [np.asarray(x) for x in s]
        generator = np.asarray(gen)
        modes = None if modes is None else np.asarray(modes)
    bias, variance, collapse = sums
    if not (np.all(~np.isnan(bias)) and np.all(~np.isnan(variance)) and np.all(~np.isnan(collapse))):
        raise FloatingPointError("theory produced NaN; please report this configuration")  # never silent
    return TheoryResult(
        generations=np.arange(n_max + 1),
        ridges=ridges_np,
        bias=bias,
        variance=variance,
        collapse=collapse,
        total=bias + variance + collapse,
        generator=generator,
        theorem="; ".join(dict.fromkeys(labels)),
        theorem_per_ridge=labels,
        heuristic=False,
        config=config,
        finite_size=bool(finite_size),
        per_mode=modes,
    )
