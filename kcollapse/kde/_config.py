"""Configuration of the recursive KDE chain (a frozen pytree dataclass)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["KDEConfig", "MODES"]

#: replace: fit on the newest n samples; accumulate: on all samples so far; subsample: on n samples
#: drawn without replacement from all samples so far (Kazdan et al.'s fixed-budget "accumulate-subsample").
MODES = ("replace", "accumulate", "subsample")


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KDEConfig:
    """Gaussian-kernel KDE refit on its own samples (shared/THEORY.md §7, Kazdan et al. Theorems 5-7).

    Generation 0 is the KDE ``p_0(x) = (1/n) sum_i phi_h(x - x_i)`` on ``n`` real samples from the truth
    ``N(mu, sigma^2)``; generation ``t + 1`` draws ``n`` samples from the generation-``t`` KDE (pick a
    training point uniformly, add ``N(0, h^2)``) and refits a KDE with the same bandwidth ``h`` on its
    training set: the new samples (``replace``), every sample so far (``accumulate``, ``(t+1) n``
    points), or ``n`` points drawn without replacement from every sample so far (``subsample``).

    Attributes:
      samples_per_generation: ``n >= 2`` (static). n_generations: ``G >= 0`` (static).
      mode: one of :data:`MODES` (static).
      bandwidth: ``h > 0`` (array leaf). sigma: true standard deviation (array leaf).
    """

    samples_per_generation: int = _static()
    n_generations: int = _static()
    mode: str = _static("replace")
    bandwidth: ArrayLike = 0.5
    sigma: ArrayLike = 1.0

    def validate(self) -> KDEConfig:
        _checks.check_int("samples_per_generation (n)", self.samples_per_generation, minimum=2)
        _checks.check_int("n_generations", self.n_generations, minimum=0)
        _checks.check_choice("mode", self.mode, MODES)
        _checks.check_positive_float("bandwidth (h)", self.bandwidth)
        _checks.check_positive_float("sigma", self.sigma)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (v if isinstance(v := getattr(self, f.name), (str, int)) else float(v))
                for f in dataclasses.fields(self)}
