"""``predict_tails``: the exact expected error of a :class:`TailsConfig` on the simulator's grid."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ._asymptotics import (
    clean_law,
    generations_law,
    grokking_law,
    narrowing_law,
    narrowing_mixture_law,
    real_plus_ai_law,
    top_k_law,
)
from ._config import TailsConfig
from ._bigram import bigram_error, bigram_law
from ._generations import generations_error
from ._laws import zipf
from ._theory import DEFAULT_VOCAB, error_variance_bound, mixed_sources_error

__all__ = ["TailsTheory", "predict_tails"]


@dataclasses.dataclass(frozen=True)
class TailsTheory:
    """Exact theory on the grid of a :class:`TailsConfig` (compare with :class:`TailsSimulation`).

    Attributes:
      sample_sizes: ``(n_T,)``. generations: ``(n_gen + 1,)``.
      total: ``(n_gen + 1, n_T)`` the exact expected error (compares with ``TailsSimulation.mean``).
      leading_order: ``(n_gen + 1, n_T)`` the scenario's asymptotic law with constants (NaN where
        kcollapse has none: ``buy-tail``).
      per_seed_sd_bound: ``(n_gen + 1, n_T)`` upper bound on the standard deviation of one seed's
        error (:func:`~kcollapse.tails.error_variance_bound`); NaN for the generations ``n >= 1``
        (no bound: use the sample SEM there).
      theorem: the result instantiated. law: which leading-order law fills ``leading_order``.
      config: the configuration.
    """

    sample_sizes: np.ndarray
    generations: np.ndarray
    total: np.ndarray
    leading_order: np.ndarray
    per_seed_sd_bound: np.ndarray
    theorem: str
    law: str
    config: TailsConfig


def predict_tails(config: TailsConfig, *, vocab: int | None = None) -> TailsTheory:
    """Exact expected test error (and the leading-order law) for every ``(n, T)`` of ``config``.

    Args:
      config: the scenario (validated here).
      vocab: tokens summed explicitly before the analytic tail (default: 8192 for iid laws, 4096
        for the generations chain); the result does not depend on it beyond ~1e-10.

    Returns:
      :class:`TailsTheory`.
    """
    config.validate()
    beta = jnp.asarray(config.beta, jnp.result_type(float))
    T = np.asarray(config.sample_sizes, dtype=float)
    Tj = jnp.asarray(T, beta.dtype)
    sc = config.scenario
    if sc == "real-plus-ai":
        sizes, laws = [config.real_samples, Tj], [zipf(beta), config.training_law()]
    else:
        sizes, laws = [Tj], [config.training_law()]
    v = DEFAULT_VOCAB if vocab is None else vocab
    if sc in ("bigram", "bigram-top-k"):
        k = config.k if sc == "bigram-top-k" else None
        total = np.asarray(bigram_error(T, config.beta, k))[None]
        lead = np.asarray(bigram_law(T, float(config.beta), k))[None]
        return TailsTheory(sample_sizes=T, generations=config.generations, total=total, leading_order=lead,
                           per_seed_sd_bound=np.full_like(total, np.nan), theorem=config.theorem,
                           law="bigram_law: zeta^-1/b K T^-c1 (log(T/zeta)/b + gamma) + d T^-1/2 (+ P(j > k)); "
                           "derived, without the T^-c1 constant", config=config)
    sd = np.sqrt(np.maximum(np.asarray(error_variance_bound(sizes, beta, laws, vocab=v)), 0.0))
    sd = np.concatenate([sd[None], np.full((config.n_generations, len(T)), np.nan)])
    if sc == "generations":
        start = config.start_law()
        clean_start = start.n_pieces == 1 and start.upper == (None,) and start.lower == (1,) and not config._given("beta_ai")
        total = np.asarray(generations_error(T, config.generator_samples, config.n_generations, beta, vocab=vocab,
                                             law=None if clean_start else start)).T
        if clean_start:
            lead = np.stack([np.asarray(generations_law(Tj, config.generator_samples, n, beta)) for n in config.generations])
            law = "generations_law: C_beta (T0 phi^(n)(T/T0))^-c (corrected Thm 2.4)"
        else:
            lead = np.full_like(total, np.nan)
            law = "none for a cut/narrowed start law (exact chain only)"
    else:
        total = np.asarray(mixed_sources_error(sizes, beta, laws, vocab=v))[None]
        laws = {
            "clean": (lambda: clean_law(Tj, beta), "clean_law: C_beta T^-c"),
            "top-k": (lambda: top_k_law(Tj, beta, config.k), "top_k_law: C_beta T^-c + P(i > k)"),
            "narrow": (lambda: narrowing_law(Tj, beta, config.beta_ai), "narrowing_law: A T^-(beta-1)/beta'"),
            "grokking": (lambda: grokking_law(Tj, beta, config.k, config.fraction), "grokking_law (incomplete-gamma form)"),
            "narrow-mix": (lambda: narrowing_mixture_law(Tj, beta, config.beta_ai, config.fraction),
                           "narrowing_mixture_law: min of the two terms (corrected Thm C.2)"),
            "real-plus-ai": (lambda: real_plus_ai_law(config.real_samples, Tj, beta, config.k),
                             "real_plus_ai_law: C_beta (T_real + T_AI)^-c + P(i > k)"),
        }
        if sc in laws:
            fn, law = laws[sc]
            lead = np.asarray(fn())[None]
        else:
            lead, law = np.full_like(total, np.nan), "none (see buy_tail_limit for T -> inf)"
    return TailsTheory(sample_sizes=T, generations=config.generations, total=np.asarray(total, float),
                       leading_order=np.asarray(lead, float), per_seed_sd_bound=sd, theorem=config.theorem, law=law,
                       config=config)
