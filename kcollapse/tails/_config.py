"""One Tale-of-Tails scenario: what the downstream Hutter LLM is trained on (a frozen pytree dataclass)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ._laws import TokenLaw, mixture, narrowed, tail_from, tail_mass, top_k, zipf

__all__ = ["SCENARIOS", "TailsConfig"]

#: scenario -> the result of A Tale of Tails (arXiv:2402.07043v2) it instantiates.
SCENARIOS: dict[str, str] = {
    "clean": "Hutter (2021) clean law, E ~ T^-(1-1/beta)",
    "top-k": "Tale of Tails Thm 2.1 (top-k tail cut)",
    "narrow": "Tale of Tails Cor 2.3 (tail narrowing)",
    "grokking": "Tale of Tails Thm 3.2 (clean + top-k mixture, grokking)",
    "narrow-mix": "Tale of Tails Thm C.2 (clean + narrowed mixture)",
    "buy-tail": "Tale of Tails Thm 3.1 (top-k AI data + real tail data)",
    "real-plus-ai": "Tale of Tails Cor 3.3 (fixed real set + top-k AI data)",
    "generations": "Tale of Tails Cor 2.2 (n=1) / Thm 2.4 (n generations of resampling)",
    "bigram": "Tale of Tails Thm 4.1 (Hutter++ bigrams, TV error)",
    "bigram-top-k": "Tale of Tails Thm 4.2 (Hutter++ bigrams trained on the k-head of each conditional)",
}


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TailsConfig:
    """A Tale-of-Tails scenario: real law ``p_i ∝ i^{-beta}`` and the training data of the Hutter LLM.

    * ``clean``: ``T`` draws from ``p``. ``top-k``: from ``p`` cut at ``k``. ``narrow``: from
      ``Zipf(beta_ai)``. ``grokking``: from ``fraction * p + (1 - fraction) * top-k``.
      ``narrow-mix``: from ``fraction * p + (1 - fraction) * Zipf(beta_ai)``. ``buy-tail``: from
      ``fraction * p(. | i >= start) + (1 - fraction) * top-k`` (default fraction ``P(i >= start)``).
    * ``real-plus-ai``: ``real_samples`` draws from ``p`` plus ``T`` from the top-k cut.
    * ``generations``: generation 1 = empirical law of ``generator_samples`` (``T0``) draws from
      the start law ``q``, generation ``m + 1`` = empirical law of ``T0`` draws from generation ``m``;
      ``T`` draws from generation ``n`` for every ``n = 0..n_generations`` (``n = 0``: from ``q``).
      The start law is ``p`` by default; with ``k`` the top-k cut, with ``beta_ai`` the narrowed law,
      and with ``fraction`` as well the clean mixture ``fraction * p + (1 - fraction) * cut``.
    * ``bigram``: Hutter++ (Thm 4.1): ``T`` (context, next-token) pairs, contexts ``~ p``, next tokens
      ``~ Zipf(beta)`` (relabelled per context); TV error of the empirical conditionals.
      ``bigram-top-k``: the next tokens come from the k-head of each conditional (Thm 4.2).

    Attributes:
      scenario: one of :data:`SCENARIOS` (static).
      beta: real Zipf exponent ``> 1`` (array leaf).
      sample_sizes: the grid of downstream sizes ``T`` (AI draws for ``real-plus-ai``) (static).
      k: top-k cut-off (static). start: first index of the bought tail (static).
      fraction: clean fraction ``pi`` (array leaf; NaN = scenario default).
      beta_ai: exponent ``beta'`` of a narrowed AI law (array leaf; NaN if unused).
      real_samples: clean draws added to every training set (``real-plus-ai``) (static).
      generator_samples: ``T0`` (``generations``) (static).
      n_generations: largest ``n`` (``generations``) (static).
    """

    scenario: str = _static("clean")
    beta: ArrayLike = 1.5
    sample_sizes: tuple[int, ...] = _static((1000,))
    k: int | None = _static(None)
    start: int | None = _static(None)
    fraction: ArrayLike = math.nan
    beta_ai: ArrayLike = math.nan
    real_samples: int = _static(0)
    generator_samples: int | None = _static(None)
    n_generations: int = _static(0)

    def validate(self) -> TailsConfig:
        """Check every field on concrete values; returns ``self``.

        Raises:
          ValueError / TypeError naming the field, the value, what is allowed and the fix.
        """
        _checks.check_choice("scenario", self.scenario, tuple(SCENARIOS))
        b = _checks.check_positive_float("beta", self.beta)
        if not b > 1:
            raise ValueError(f"beta must be > 1 (a normalisable Zipf law), got {b}")
        if not isinstance(self.sample_sizes, tuple) or not self.sample_sizes:
            raise ValueError(f"sample_sizes must be a non-empty tuple of ints, got {self.sample_sizes!r}")
        for T in self.sample_sizes:
            _checks.check_int("sample_sizes (T)", T, minimum=1)
        needs = {
            "k": ("top-k", "grokking", "buy-tail", "real-plus-ai", "bigram-top-k"),
            "start": ("buy-tail",),
            "beta_ai": ("narrow", "narrow-mix"),
            "fraction": ("grokking", "narrow-mix"),
            "generator_samples": ("generations",),
        }
        optional_for = {"fraction": ("buy-tail", "generations"), "k": ("generations",), "beta_ai": ("generations",)}
        for name, scenarios in needs.items():
            value = getattr(self, name)
            given = self._given(name)
            if self.scenario in scenarios and not given:
                raise ValueError(f"scenario {self.scenario!r} needs {name}; set it")
            optional = self.scenario in optional_for.get(name, ())
            if given and self.scenario not in scenarios and not optional:
                raise ValueError(f"{name} does not apply to scenario {self.scenario!r} (used by {', '.join(scenarios)})")
        if self.scenario == "generations":
            if self._given("k") and self._given("beta_ai"):
                raise ValueError("scenario 'generations' starts from one law: give k (top-k cut) or beta_ai "
                                 "(narrowed), not both")
            if self._given("fraction") and not (self._given("k") or self._given("beta_ai")):
                raise ValueError("scenario 'generations': fraction mixes p with a cut or narrowed start law; "
                                 "give k or beta_ai too")
        if self.k is not None:
            _checks.check_int("k (top-k cut)", self.k, minimum=1)
        if self.start is not None:
            _checks.check_int("start (first tail index)", self.start, minimum=1)
        if not math.isnan(float(self.fraction)):
            _checks.check_fraction("fraction (clean fraction pi)", self.fraction)
        if not math.isnan(float(self.beta_ai)):
            if not _checks.check_positive_float("beta_ai", self.beta_ai) > 1:
                raise ValueError(f"beta_ai must be > 1 (a normalisable Zipf law), got {float(self.beta_ai)}")
        _checks.check_int("real_samples", self.real_samples, minimum=0)
        if self.scenario == "real-plus-ai" and self.real_samples < 1:
            raise ValueError("scenario 'real-plus-ai' needs real_samples >= 1")
        if self.scenario != "real-plus-ai" and self.real_samples:
            raise ValueError(f"real_samples only applies to scenario 'real-plus-ai' (got {self.scenario!r})")
        _checks.check_int("n_generations", self.n_generations, minimum=0)
        if self.generator_samples is not None:
            _checks.check_int("generator_samples (T0)", self.generator_samples, minimum=1)
        if self.scenario != "generations" and self.n_generations:
            raise ValueError(f"n_generations only applies to scenario 'generations' (got {self.scenario!r})")
        return self

    def _given(self, name: str) -> bool:
        value = getattr(self, name)
        if name in ("beta_ai", "fraction"):
            return not (isinstance(value, float) and math.isnan(value)) and not bool(np.all(np.isnan(np.asarray(value))))
        return value is not None

    def start_law(self) -> TokenLaw:
        """The law generation 1 is drawn from (``generations``): ``p``, top-k, narrowed, or a mixture."""
        b = self.beta
        if self._given("k"):
            cut = top_k(b, self.k)
        elif self._given("beta_ai"):
            cut = narrowed(b, beta_ai=self.beta_ai)
        else:
            return zipf(b)
        return mixture(self.fraction, zipf(b), cut) if self._given("fraction") else cut

    @property
    def theorem(self) -> str:
        return SCENARIOS[self.scenario]

    @property
    def generations(self) -> np.ndarray:
        """``(n_generations + 1,)`` the generations reported (``[0]`` outside ``generations``)."""
        return np.arange(self.n_generations + 1)

    def clean_fraction(self) -> jnp.ndarray:
        """``pi``; for ``buy-tail`` without a fraction, ``P(i >= start)`` (so ``start = k + 1`` gives ``q = p``)."""
        f = jnp.asarray(self.fraction)
        if self.scenario == "buy-tail":
            return jnp.where(jnp.isnan(f), tail_mass(self.start - 1, self.beta), f)
        return f

    def training_law(self) -> TokenLaw:
        """The law ``q`` of the downstream draws (the AI stream for ``real-plus-ai``; the start law of
        ``generations``; the context law ``p`` for the bigram scenarios)."""
        b = self.beta
        if self.scenario == "generations":
            return self.start_law()
        if self.scenario in ("clean", "bigram", "bigram-top-k"):
            return zipf(b)
        if self.scenario in ("top-k", "real-plus-ai"):
            return top_k(b, self.k)
        if self.scenario == "narrow":
            return narrowed(b, beta_ai=self.beta_ai)
        if self.scenario == "grokking":
            return mixture(self.fraction, zipf(b), top_k(b, self.k))
        if self.scenario == "narrow-mix":
            return mixture(self.fraction, zipf(b), narrowed(b, beta_ai=self.beta_ai))
        return mixture(self.clean_fraction(), tail_from(b, self.start), top_k(b, self.k))

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON metadata."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                out[f.name] = [int(t) for t in v]
            elif v is None or isinstance(v, (str, int)):
                out[f.name] = v
            else:
                fv = float(v)
                out[f.name] = None if math.isnan(fv) else fv
        return out
