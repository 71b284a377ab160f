"""Sampler-based simulator of the Hutter LLM: draw the training tokens, memorise, measure the error.

Each seed draws the actual training data: ``T`` tokens from the (possibly AI-distorted) law by
inverse-CDF sampling on the vocabulary ``1..N``, or, for the generations chain, ``T0`` tokens per
generation resampled from the previous generation's tokens. The learned memory is the set of seen
tokens; the error is the ``p``-mass of the rest, ``1 - sum_{i seen} p_i`` (the Hutter LLM of
A Tale of Tails §2.1). All sizes of the grid come from prefixes of one stream; seeds are ``vmap``-ed
(in fixed-size batches), generations run under ``lax.scan``, each batch is one ``jit`` call.

**Vocabulary truncation.** Tokens ``i > N`` are drawn as one overflow outcome (probability
``q(i > N)``) that is never learned, so their ``p``-mass always counts as error. The simulated
expectation is therefore *above* the exact error by ``sum_{i > N} p_i P(i seen) <= T sum_{i > N} p_i q_i``
(``E q^(n)_i = p_i`` along the generations chain), which :attr:`TailsSimulation.truncation_bound`
reports (Hurwitz zeta: ``T zeta(beta + s, N+1)/zeta(beta) * weight``; e.g. 7e-9 at ``beta = 1.5``,
``T = 1e5``, ``N = 2^20``).

The inverse-CDF sampler needs float64 (token probabilities down to ``~1e-9``; float32 resolves only
``6e-8``), so the simulator requires ``jax_enable_x64``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import zeta

from .. import _checks
from ._config import TailsConfig
from ._laws import top_k, zipf_pmf

__all__ = ["DEFAULT_SIM_VOCAB", "TailsSimulation", "simulate_tails", "truncation_bound"]

#: Vocabulary of the sampler (tokens beyond it form one never-learned overflow outcome).
DEFAULT_SIM_VOCAB = 1 << 20


@dataclasses.dataclass(frozen=True)
class TailsSimulation:
    """Simulated Hutter-LLM errors over seeds.

    Attributes:
      sample_sizes: ``(n_T,)`` the grid of ``T``.
      generations: ``(n_gen + 1,)`` generations reported (``[0]`` outside the generations chain).
      per_seed: ``(n_seeds, n_gen + 1, n_T)`` error of every seed.
      mean, sem: ``(n_gen + 1, n_T)`` mean over seeds and its standard error ``std(ddof=1)/sqrt(seeds)``.
      n_seeds: seeds. seed_indices: ``(n_seeds,)`` the ``fold_in`` index of each seed.
      vocab: the sampler's vocabulary ``N``.
      truncation_bound: ``(n_T,)`` upper bound of the (non-negative) bias from the truncation.
      config: the :class:`TailsConfig`.
    """

    sample_sizes: np.ndarray
    generations: np.ndarray
    per_seed: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    n_seeds: int
    seed_indices: np.ndarray
    vocab: int
    truncation_bound: np.ndarray
    config: TailsConfig


def truncation_bound(config: TailsConfig, vocab: int) -> np.ndarray:
    """``(n_T,)`` bound ``T sum_{i > N} p_i q_i + T_real sum_{i > N} p_i^2`` on the truncation bias.

    Bigram scenarios: contexts ``> N`` are never learned (bias ``<= T sum_{i>N} p_i^2``) and next
    tokens ``> N`` never matched (bias ``<= sum_i p_i sum_{j>N} r_j P(N_ij >= 1) <= T sum_i p_i^2
    sum_{j>N} r_j^2``; none with a k-head ``k <= N``).
    """
    beta = jnp.asarray(config.beta, jnp.result_type(float))
    n1 = jnp.asarray(vocab + 1.0, beta.dtype)
    z = zeta(beta, jnp.ones((), beta.dtype))
    if config.scenario in ("bigram", "bigram-top-k"):
        far = zeta(2 * beta, n1) / z**2
        tok = 0.0 if config.scenario == "bigram-top-k" else zeta(2 * beta, jnp.ones((), beta.dtype)) / z**2 * far
        return np.asarray(jnp.asarray(config.sample_sizes, beta.dtype) * (far + tok))
    a, s = config.training_law().tail_pieces()
    per_draw = jnp.sum(a * zeta(beta + s, n1)) / z
    real = config.real_samples * zeta(2 * beta, n1) / z**2
    return np.asarray(jnp.asarray(config.sample_sizes, beta.dtype) * per_draw + real)


def _errors_from_stream(tokens: jnp.ndarray, p_table: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
    """Error ``1 - sum_{i in first L tokens} p_i`` for every prefix length ``L`` in ``lengths``."""
    order = jnp.argsort(tokens, stable=True)
    st = tokens[order]
    first = jnp.concatenate([jnp.ones((1,), bool), st[1:] != st[:-1]])
    gain = jnp.where(first, p_table[st], 0.0)  # credited at the first occurrence (stable sort)
    seen = jnp.zeros(tokens.shape, p_table.dtype).at[order].add(gain)
    return 1.0 - jnp.cumsum(seen)[lengths - 1]


def _draw(key, cdf: jnp.ndarray, size: int) -> jnp.ndarray:
    """``size`` tokens (0-based; ``len(cdf)`` = overflow) by inverse CDF."""
    u = jax.random.uniform(key, (size,), cdf.dtype)
    return jnp.searchsorted(cdf, u, side="right").astype(jnp.int32)


def _one_seed(key, p_table, q_cdf, p_cdf, config: TailsConfig):
    sizes = jnp.asarray(config.sample_sizes)
    t_max = max(config.sample_sizes)
    if config.scenario in ("bigram", "bigram-top-k"):
        return _bigram_seed(key, p_table, q_cdf, p_cdf, config)[None]
    if config.scenario != "generations":
        k_ai, k_real = jax.random.split(key)
        stream = _draw(k_ai, q_cdf, t_max)
        if config.real_samples:
            stream = jnp.concatenate([_draw(k_real, p_cdf, config.real_samples), stream])
        return _errors_from_stream(stream, p_table, sizes + config.real_samples)[None]
    T0 = config.generator_samples
    # n = 0: T draws from the start law q (p unless the chain starts from a cut/narrowed law)
    clean = _errors_from_stream(_draw(jax.random.fold_in(key, 0), q_cdf, t_max), p_table, sizes)
    if config.n_generations == 0:
        return clean[None]
    first = _draw(jax.random.fold_in(key, 1_000_003), q_cdf, T0)  # generation 1: T0 draws from q

    def generation(tokens, m):
        k_down, k_next = jax.random.split(jax.random.fold_in(key, m))
        down = tokens[jax.random.randint(k_down, (t_max,), 0, T0)]
        nxt = tokens[jax.random.randint(k_next, (T0,), 0, T0)]
        return nxt, _errors_from_stream(down, p_table, sizes)

    _, errs = jax.lax.scan(generation, first, jnp.arange(1, config.n_generations + 1))
    return jnp.concatenate([clean[None], errs])


def _bigram_seed(key, p_table, r_cdf, p_cdf, config: TailsConfig):
    """``(n_T,)`` TV errors of one seed of the Hutter++ bigram model (overflow index ``N``).

    ``E = 1 - sum_{distinct seen pairs (i, j)} p_i min(r_j, N_ij/T_i)`` (``TV = sum_j (r_j - q_j)_+``;
    unseen contexts contribute ``p_i``). The relabelling ``pi_i`` of the next tokens is the identity:
    TV is invariant under it.
    """
    vocab = p_table.shape[0] - 1
    t_max = max(config.sample_sizes)
    k_ctx, k_tok = jax.random.split(key)
    ctx = _draw(k_ctx, p_cdf, t_max).astype(jnp.int64)
    tok = _draw(k_tok, r_cdf, t_max).astype(jnp.int64)
    out = []
    for T in config.sample_sizes:  # static grid: one sort per size (prefixes of one stream)
        codes = jnp.sort(ctx[:T] * (vocab + 1) + tok[:T])
        c, j = codes // (vocab + 1), codes % (vocab + 1)
        new_pair = jnp.concatenate([jnp.ones((1,), bool), codes[1:] != codes[:-1]])
        new_ctx = jnp.concatenate([jnp.ones((1,), bool), c[1:] != c[:-1]])
        pair_id = jnp.cumsum(new_pair) - 1
        ctx_id = jnp.cumsum(new_ctx) - 1
        ones = jnp.ones((T,), p_table.dtype)
        n_pair = jax.ops.segment_sum(ones, pair_id, num_segments=T)[pair_id]
        n_ctx = jax.ops.segment_sum(ones, ctx_id, num_segments=T)[ctx_id]
        gain = p_table[c] * jnp.minimum(p_table[j], n_pair / n_ctx)
        out.append(1.0 - jnp.sum(jnp.where(new_pair, gain, 0.0)))
    return jnp.stack(out)


def _tables(config: TailsConfig, *, vocab: int):
    """``p`` with a zero overflow entry, and the cumulative laws of the draws (float64).

    ``q_cdf``: the training law (the start law of ``generations``; for the bigram scenarios the
    next-token law, ``Zipf(beta)`` or its k-head). The law is built eagerly (its structure depends on
    which optional fields are set), the tables under ``jit``.
    """
    if config.scenario == "bigram-top-k":
        law = top_k(config.beta, config.k)
    else:
        law = config.training_law()
    return _tables_jit(jnp.asarray(config.beta, jnp.float64), law, vocab=vocab)


@functools.partial(jax.jit, static_argnames=("vocab",))
def _tables_jit(beta, law, *, vocab: int):
    i = jnp.arange(1, vocab + 1, dtype=jnp.float64)
    p = zipf_pmf(i, beta)
    q = law.pmf(i)
    return jnp.concatenate([p, jnp.zeros((1,), p.dtype)]), jnp.cumsum(q), jnp.cumsum(p)


@jax.jit
def _run_batch(key, seed_indices, tables, config: TailsConfig):
    p_table, q_cdf, p_cdf = tables
    keys = jax.vmap(lambda j: jax.random.fold_in(key, j))(seed_indices)
    return jax.vmap(lambda k: _one_seed(k, p_table, q_cdf, p_cdf, config))(keys)


def simulate_tails(
    key: jax.Array, config: TailsConfig, n_seeds: int, *, vocab: int = DEFAULT_SIM_VOCAB, seed_offset: int = 0,
    batch_size: int | None = None, memory_budget: int = 1 << 28,
) -> TailsSimulation:
    """Simulate the Hutter LLM of a :class:`TailsConfig` over ``n_seeds`` independent seeds.

    Seed ``j`` uses ``jax.random.fold_in(key, seed_offset + j)``, so results do not depend on
    batching. The estimate of each point is the mean over seeds with its standard error; compare it
    with :func:`kcollapse.tails.predict_tails` (the exact expectation) allowing the one-sided
    ``truncation_bound``.

    Args:
      key: a typed PRNG key (``jax.random.key(seed)``).
      config: the scenario (validated here).
      n_seeds: independent seeds ``>= 1``.
      vocab: sampler vocabulary ``N`` (``>=`` every cut-off of the scenario).
      seed_offset: index of the first seed (to extend a run).
      batch_size: seeds per ``vmap`` batch (default: from ``memory_budget`` bytes).

    Returns:
      :class:`TailsSimulation`.

    Raises:
      ValueError: bad configuration, or float64 disabled.

    References:
      A Tale of Tails (arXiv:2402.07043v2), §2.1 (Hutter LLM), §2-§3 (the scenarios).
    """
    config.validate()
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    seed_offset = _checks.check_int("seed_offset", seed_offset, minimum=0)
    vocab = _checks.check_int("vocab", vocab, minimum=16)
    if not jax.config.jax_enable_x64:
        raise ValueError("simulate_tails needs float64 (the inverse-CDF sampler must resolve token probabilities "
                         "~1e-9): call jax.config.update('jax_enable_x64', True) first")
    cut = max([config.k or 0, config.start or 0])
    if cut > vocab:
        raise ValueError(f"vocab={vocab} is below the scenario's cut-off {cut}; pass vocab >= {cut}")
    stream = max(config.sample_sizes) + config.real_samples + (config.generator_samples or 0)
    if config.scenario in ("bigram", "bigram-top-k"):
        stream = 4 * sum(config.sample_sizes)  # pairs, sort keys, segment sums for every size
    if batch_size is None:
        batch_size = int(max(1, min(n_seeds, memory_budget // (48 * stream))))
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    idx = np.arange(seed_offset, seed_offset + n_seeds)
    tables = _tables(config, vocab=vocab)
    parts = []
    for start in range(0, n_seeds, batch_size):  # fixed batch shape: one compilation per batch size
        chunk = np.arange(start, start + batch_size) + seed_offset  # the last batch is padded with extra seeds
        parts.append(np.asarray(_run_batch(key, jnp.asarray(chunk), tables, config))[: n_seeds - start])
    per_seed = np.concatenate(parts)
    mean = per_seed.mean(axis=0)
    sem = per_seed.std(axis=0, ddof=1) / np.sqrt(n_seeds) if n_seeds > 1 else np.full_like(mean, np.nan)
    return TailsSimulation(
        sample_sizes=np.asarray(config.sample_sizes), generations=config.generations, per_seed=per_seed,
        mean=mean, sem=sem, n_seeds=n_seeds, seed_indices=idx, vocab=vocab,
        truncation_bound=truncation_bound(config, vocab), config=config,
    )
