"""A Tale of Tails: the Zipf/Hutter model of model collapse, exact theory and a sampler simulator.

Real data are tokens ``i ~ p_i = i^{-beta}/zeta(beta)`` (``beta > 1``, infinite vocabulary); the
Hutter LLM memorises the tokens it saw and abstains otherwise, so its test error is the ``p``-mass
of the unseen tokens (shared/THEORY.md §5).

* token laws (:class:`TokenLaw`): :func:`zipf`, :func:`top_k`, :func:`narrowed` (temperature),
  :func:`tail_from`, :func:`mixture`; :func:`zipf_pmf`, :func:`tail_mass`;
* exact errors ``sum_i p_i (1 - q_i)^T`` on the infinite vocabulary: :func:`hutter_error`,
  :func:`mixed_sources_error`, :func:`clean_error`, :func:`top_k_error` (Thm 2.1),
  :func:`narrowing_error` (Cor 2.3), :func:`grokking_error` (Thm 3.2),
  :func:`narrowing_mixture_error` (Thm C.2), :func:`buy_tail_error` (Thm 3.1),
  :func:`real_plus_ai_error` (Cor 3.3); :func:`error_variance_bound` (per-training-set variance);
* the resampling chain (finite-sample cuts, Cor 2.2; n generations, Thm 2.4), exact:
  :func:`generations_error`, :func:`finite_sample_error`;
* asymptotic laws: :func:`tail_exponents` (:class:`TailExponents`), :func:`hutter_constant` and the
  leading-order curves (:func:`clean_law`, :func:`top_k_law`, :func:`finite_sample_law`,
  :func:`narrowing_law`, :func:`generations_law` (corrected Thm 2.4), :func:`generations_law_printed`,
  :func:`grokking_law`, :func:`narrowing_mixture_law` (corrected Thm C.2),
  :func:`narrowing_switch_point`, :func:`buy_tail_limit`, :func:`real_plus_ai_law`, :func:`phi_iterate`);
* Hutter++ bigrams (§4, Thms 4.1/4.2), exact: :func:`bigram_error`, :func:`conditional_tv_error`;
  derived asymptotics :func:`bigram_exponent`, :func:`bigram_constants`, :func:`conditional_tv_law`,
  :func:`bigram_law` (``E = T^{-(1-1/beta)}(a log T + b) + d T^{-1/2}``: a ``log T`` for ``beta < 2``);
* the resampling chain from any start law: ``generations_error(..., law=top_k(beta, k))``;
* the associative memory of Cabannes et al. (§5, Thm 5.1, the triplet law): :class:`MemoryConfig`
  (:data:`MEMORY_RULES`: counting, seen, capped), :func:`simulate_memory` (:class:`MemorySimulation`),
  :func:`memory_error`, the exact noise-free limit :func:`memory_limit_error`, :func:`memory_exponents`
  (:class:`MemoryExponents`), :func:`memory_law`, :func:`default_capacity`; one label per token
  (``MemoryConfig(label_map="token")``, :data:`LABEL_MAPS`): :func:`token_memory_error`,
  :func:`token_limit_error`, :func:`token_capacity`;
* scenarios and simulation: :class:`TailsConfig` (:data:`SCENARIOS`), :func:`simulate_tails`
  (:class:`TailsSimulation`), :func:`predict_tails` (:class:`TailsTheory`).

Corrections to the printed paper (Thm 2.4's ``n T0^{-c}`` is ``(n/T0)^c`` for the resampling chain;
Thm C.2 is a minimum and its switch point counts clean samples) are documented, with simulation
evidence, in docs/notes/tails.md.

References:
  Dohmatob, Feng, Yang, Charton, Kempe, "A Tale of Tails: Model Collapse as a Change of Scaling
  Laws", ICML 2024, arXiv:2402.07043v2. Hutter, "Learning curve theory", arXiv:2102.04074.
"""

from ._asymptotics import TailExponents as TailExponents
from ._asymptotics import buy_tail_limit as buy_tail_limit
from ._asymptotics import clean_law as clean_law
from ._asymptotics import finite_sample_law as finite_sample_law
from ._asymptotics import generations_law as generations_law
from ._asymptotics import generations_law_printed as generations_law_printed
from ._asymptotics import grokking_law as grokking_law
from ._asymptotics import hutter_constant as hutter_constant
from ._asymptotics import narrowing_law as narrowing_law
from ._asymptotics import narrowing_mixture_law as narrowing_mixture_law
from ._asymptotics import narrowing_switch_point as narrowing_switch_point
from ._asymptotics import phi_iterate as phi_iterate
from ._asymptotics import real_plus_ai_law as real_plus_ai_law
from ._asymptotics import tail_exponents as tail_exponents
from ._asymptotics import top_k_law as top_k_law
from ._bigram import bigram_constants as bigram_constants
from ._bigram import bigram_error as bigram_error
from ._bigram import bigram_exponent as bigram_exponent
from ._bigram import bigram_law as bigram_law
from ._bigram import conditional_tv_error as conditional_tv_error
from ._bigram import conditional_tv_law as conditional_tv_law
from ._config import SCENARIOS as SCENARIOS
from ._config import TailsConfig as TailsConfig
from ._generations import finite_sample_error as finite_sample_error
from ._generations import generations_error as generations_error
from ._laws import TokenLaw as TokenLaw
from ._laws import mixture as mixture
from ._laws import narrowed as narrowed
from ._laws import tail_from as tail_from
from ._laws import tail_mass as tail_mass
from ._laws import top_k as top_k
from ._laws import zipf as zipf
from ._laws import zipf_pmf as zipf_pmf
from ._memory import LABEL_MAPS as LABEL_MAPS
from ._memory import MEMORY_RULES as MEMORY_RULES
from ._memory import MemoryConfig as MemoryConfig
from ._memory import MemoryExponents as MemoryExponents
from ._memory import MemorySimulation as MemorySimulation
from ._memory import default_capacity as default_capacity
from ._memory import memory_error as memory_error
from ._memory import memory_exponents as memory_exponents
from ._memory import memory_law as memory_law
from ._memory import memory_limit_error as memory_limit_error
from ._memory import simulate_memory as simulate_memory
from ._memory import token_capacity as token_capacity
from ._memory import token_limit_error as token_limit_error
from ._memory import token_memory_error as token_memory_error
from ._predict import TailsTheory as TailsTheory
from ._predict import predict_tails as predict_tails
from ._simulate import TailsSimulation as TailsSimulation
from ._simulate import simulate_tails as simulate_tails
from ._theory import buy_tail_error as buy_tail_error
from ._theory import clean_error as clean_error
from ._theory import error_variance_bound as error_variance_bound
from ._theory import grokking_error as grokking_error
from ._theory import hutter_error as hutter_error
from ._theory import mixed_sources_error as mixed_sources_error
from ._theory import narrowing_error as narrowing_error
from ._theory import narrowing_mixture_error as narrowing_mixture_error
from ._theory import real_plus_ai_error as real_plus_ai_error
from ._theory import top_k_error as top_k_error

__all__ = [
    "LABEL_MAPS",
    "MEMORY_RULES",
    "MemoryConfig",
    "MemoryExponents",
    "MemorySimulation",
    "SCENARIOS",
    "TailExponents",
    "TailsConfig",
    "TailsSimulation",
    "TailsTheory",
    "TokenLaw",
    "bigram_constants",
    "bigram_error",
    "bigram_exponent",
    "bigram_law",
    "buy_tail_error",
    "buy_tail_limit",
    "clean_error",
    "clean_law",
    "default_capacity",
    "conditional_tv_error",
    "conditional_tv_law",
    "error_variance_bound",
    "finite_sample_error",
    "finite_sample_law",
    "generations_error",
    "generations_law",
    "generations_law_printed",
    "grokking_error",
    "grokking_law",
    "hutter_constant",
    "hutter_error",
    "memory_error",
    "memory_exponents",
    "memory_law",
    "memory_limit_error",
    "mixed_sources_error",
    "mixture",
    "narrowed",
    "narrowing_error",
    "narrowing_law",
    "narrowing_mixture_error",
    "narrowing_mixture_law",
    "narrowing_switch_point",
    "phi_iterate",
    "predict_tails",
    "real_plus_ai_error",
    "real_plus_ai_law",
    "simulate_memory",
    "simulate_tails",
    "tail_exponents",
    "tail_from",
    "tail_mass",
    "token_capacity",
    "token_limit_error",
    "token_memory_error",
    "top_k",
    "top_k_error",
    "top_k_law",
    "zipf",
    "zipf_pmf",
]
