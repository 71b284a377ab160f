"""Configuration of the iterated-relabelling chain (a frozen pytree dataclass)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["MODES", "DESIGNS", "ChainConfig"]

MODES = ("replace", "accumulate", "mix")
DESIGNS = ("fresh", "fixed")


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainConfig:
    """The model-collapse chain of "Model Collapse Demystified" §3 (shared/THEORY.md §2.1).

    ``w_0 = w0``. Generation ``m = 1..n`` draws ``T0`` inputs (fresh, or one fixed design), labels
    them with ``w_{m-1}`` plus ``N(0, sigma0^2)`` noise and fits ``w_m`` by ridge ``lambda0``
    (default 0: OLS / min-norm). The downstream model draws ``T`` fresh inputs labelled by ``w_n``
    plus ``N(0, sigma^2)`` and fits ridge ``lambda``; its test error is ``||w_hat - w0||_Sigma^2``.

    Sizes, mode and design are static (changing them recompiles); noise levels, the generator
    ridge and the synthetic fraction are array leaves (one compiled function serves any values,
    and they can be ``vmap``-ed over).

    Attributes:
      samples_per_generation: ``T0``, rows each generator is trained on (static).
      downstream_samples: ``T``, rows the downstream model is trained on (static).
      n_generations: ``n_max``; every ``n = 0..n_max`` comes out of one ``lax.scan`` (static).
      generator_noise: ``sigma0 >= 0``, label-noise std of the generator stages.
      label_noise: ``sigma >= 0``, label-noise std of the downstream stage.
      generator_ridge: ``lambda0 >= 0`` of every generator fit (0 = OLS, the papers' setting).
      synthetic_fraction: ``p`` in ``[0, 1]`` (``mode="mix"`` only): the first ``round(p T0)``
        rows of each generator set (``round(p T)`` downstream) carry synthetic labels from the
        previous generation; the rest carry clean labels from ``w0``.
      mode: ``"replace"`` (train on the latest synthetic set only), ``"accumulate"`` (train on
        every set produced so far, each keeping the labels it was generated with; Gerstgrasser et
        al. 2404.01413) or ``"mix"`` (static).
      design: ``"fresh"`` (independent inputs every generation) or ``"fixed"`` (one design
        ``X_0`` of ``T0`` rows reused by every generator; the downstream design is always fresh)
        (static).
    """

    samples_per_generation: int = _static()
    downstream_samples: int = _static()
    n_generations: int = _static(10)
    generator_noise: ArrayLike = 0.0
    label_noise: ArrayLike = 0.0
    generator_ridge: ArrayLike = 0.0
    synthetic_fraction: ArrayLike = 1.0
    mode: str = _static("replace")
    design: str = _static("fresh")

    def validate(self) -> ChainConfig:
        """Check every field on concrete values; returns ``self``.

        Raises:
          ValueError / TypeError naming the field, the value and what is allowed.
        """
        _checks.check_int("samples_per_generation (T0)", self.samples_per_generation, minimum=1)
        _checks.check_int("downstream_samples (T)", self.downstream_samples, minimum=1)
        _checks.check_int("n_generations", self.n_generations, minimum=0)
        _checks.check_nonneg_float("generator_noise (sigma0)", self.generator_noise)
        _checks.check_nonneg_float("label_noise (sigma)", self.label_noise)
        _checks.check_nonneg_float("generator_ridge (lambda0)", self.generator_ridge)
        _checks.check_fraction("synthetic_fraction (p)", self.synthetic_fraction)
        _checks.check_choice("mode", self.mode, MODES)
        _checks.check_choice("design", self.design, DESIGNS)
        if self.mode != "mix" and float(self.synthetic_fraction) != 1.0:
            raise ValueError(
                f"synthetic_fraction={float(self.synthetic_fraction)} only applies to mode='mix' "
                f"(got mode={self.mode!r}); drop it or use mode='mix'"
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON metadata."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if isinstance(v, (str, int)) else float(v)
        return out
