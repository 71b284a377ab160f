"""Configuration of the recursive Gaussian refit (a frozen pytree dataclass) and its sample-size schedule."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from .. import _checks

__all__ = [
    "ESTIMATORS",
    "MODES",
    "PAPER_ESTIMATOR",
    "RefitConfig",
    "refit_schedule",
    "resolve_estimator",
]

MODES = ("replace", "accumulate")
ESTIMATORS = ("unbiased", "mle")

#: The variance estimator each paper uses: Shumailov et al. (replace) refit with the unbiased
#: sample variance (divisor M - 1); Kazdan et al. (accumulate) with the MLE (divisor = pool size).
PAPER_ESTIMATOR = {"replace": "unbiased", "accumulate": "mle"}


def resolve_estimator(mode: str, estimator: str) -> str:
    """``"paper"`` -> the estimator of the paper for ``mode`` (:data:`PAPER_ESTIMATOR`); else unchanged."""
    _checks.check_choice("mode", mode, MODES)
    if estimator == "paper":
        return PAPER_ESTIMATOR[mode]
    return _checks.check_choice("estimator", estimator, ESTIMATORS + ("paper",))


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


def refit_schedule(samples_per_generation: int, n_generations: int, growth: float = 0.0) -> np.ndarray:
    """Samples drawn at each refit: ``M_g = round(M * g**growth)`` for ``g = 1..n_generations``.

    ``growth = 0`` is the constant ``M`` of both papers; ``growth > 1`` is Shumailov et al.'s
    superlinear growth that keeps ``E W2^2`` bounded (``sum_g 1/M_g < inf``).

    Returns:
      ``(n_generations,)`` int64 array (refit ``g`` is entry ``g - 1``).
    """
    m = _checks.check_int("samples_per_generation", samples_per_generation, minimum=1)
    g_max = _checks.check_int("n_generations", n_generations, minimum=0)
    p = _checks.check_nonneg_float("growth", growth)
    g = np.arange(1, g_max + 1, dtype=np.float64)
    sizes = np.rint(m * g**p)
    if sizes.size and sizes.max() > 2**52:
        raise ValueError(f"growth={p} makes the last refit draw {sizes.max():.3g} samples (> 2^52); "
                         "use fewer generations or a smaller growth")
    return np.maximum(sizes, m).astype(np.int64)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RefitConfig:
    """Recursive refitting of a Gaussian (shared/THEORY.md §6.1 replace, §7 Kazdan et al. accumulate).

    Generation 0 is the truth ``N(mu, sigma^2 I_d)``. Refit ``g = 1..n_generations`` draws ``M_g``
    samples from the generation-``g-1`` model and fits a Gaussian by the sample mean and the sample
    covariance:

    * ``mode="replace"`` (Shumailov et al.): fit on the ``M_g`` new samples only;
    * ``mode="accumulate"`` (Kazdan et al.): fit on every sample drawn so far (the ``M_1`` real ones
      included), a pool of ``N_g = M_1 + ... + M_g`` points.

    The covariance divisor is ``N - 1`` (``estimator="unbiased"``, Shumailov's convention) or ``N``
    (``"mle"``, Kazdan's convention); ``"paper"`` picks the paper's for the mode. Refit 1 is the fit
    on real data, so Kazdan's ``sigma_t`` is generation ``t`` here, and Shumailov's ``W2`` after
    ``M_0, ..., M_n`` is generation ``n + 1``. The mean ``mu`` plays no role (translation invariance):
    every output is about ``mu_g - mu``.

    Sizes, mode and estimator are static; ``sigma`` and ``mean_noise`` are array leaves.

    Attributes:
      samples_per_generation: ``M`` (Shumailov) or ``n`` (Kazdan), the samples of refit 1 (static).
      n_generations: number of refits; every generation ``0..n_generations`` is reachable (static).
      dim: dimension ``d`` (static); needs ``M >= d + 1`` so every fitted covariance is non-singular.
      mode: ``"replace"`` or ``"accumulate"`` (static).
      estimator: ``"unbiased"``, ``"mle"`` or ``"paper"`` (static; resolved on construction).
      growth: refit ``g`` draws ``round(M g^growth)`` samples (static; 0 = constant ``M``).
      sigma: ``sigma > 0``, the true standard deviation (``Sigma_0 = sigma^2 I_d``).
      mean_noise: ``eta >= 0``: each refit's mean gets an extra independent ``N(0, eta^2 I_d)`` error
        (Shumailov §4.3 "noisy approximation"; replace only).
    """

    samples_per_generation: int = _static()
    n_generations: int = _static()
    dim: int = _static(1)
    mode: str = _static("replace")
    estimator: str = _static("paper")
    growth: float = _static(0.0)
    sigma: ArrayLike = 1.0
    mean_noise: ArrayLike = 0.0

    def __post_init__(self) -> None:
        if self.estimator == "paper" and self.mode in MODES:
            object.__setattr__(self, "estimator", PAPER_ESTIMATOR[self.mode])

    def validate(self) -> RefitConfig:
        """Check every field on concrete values; returns ``self``.

        Raises:
          ValueError / TypeError naming the field, the value, what is allowed and the fix.
        """
        m = _checks.check_int("samples_per_generation (M)", self.samples_per_generation, minimum=2)
        _checks.check_int("n_generations", self.n_generations, minimum=0)
        d = _checks.check_int("dim (d)", self.dim, minimum=1)
        _checks.check_choice("mode", self.mode, MODES)
        _checks.check_choice("estimator", self.estimator, ESTIMATORS)
        _checks.check_nonneg_float("growth", self.growth)
        _checks.check_positive_float("sigma", self.sigma)
        eta = _checks.check_nonneg_float("mean_noise (eta)", self.mean_noise)
        if m < d + 1:
            raise ValueError(f"samples_per_generation (M) must be >= dim + 1 = {d + 1} so that every fitted "
                             f"covariance is non-singular, got M={m} with dim={d}; draw more samples per generation")
        if eta > 0 and self.mode != "replace":
            raise ValueError(f"mean_noise={eta} only applies to mode='replace' (Shumailov's noisy approximation), "
                             f"got mode={self.mode!r}; drop mean_noise or use mode='replace'")
        refit_schedule(self.samples_per_generation, self.n_generations, self.growth)
        return self

    def batch_sizes(self) -> np.ndarray:
        """``(n_generations,)`` samples drawn at refits ``1..n_generations`` (:func:`refit_schedule`)."""
        return refit_schedule(self.samples_per_generation, self.n_generations, self.growth)

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON metadata."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if isinstance(v, (str, int)) else float(v)
        return out
