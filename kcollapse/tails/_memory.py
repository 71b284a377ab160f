"""Associative memory of Cabannes et al. under Zipf data: the triplet law of A Tale of Tails Thm 5.1.

Model (Cabannes, Dohmatob, Bietti, arXiv:2310.02984 §2; Dohmatob et al., arXiv:2402.07043v2 §5):

* tokens ``i ∈ {1..N}`` with ``p_i = i^{-beta} / H_N(beta)`` (Zipf **truncated at N and renormalised**:
  the error below is with respect to this finite law; every "exact" limit uses the same truncation);
* a deterministic label ``y(i) ∈ {1..m}`` drawn uniformly at random per token (fixed, few labels:
  Cabannes et al. use ``m = 5``);
* random embeddings ``e_i, u_y ~ N(0, I_d / d)`` (so ``|e_i|² ≈ 1``);
* memory ``W = sum_i q(i) u_{y(i)} e_iᵀ`` built from ``T`` training draws of the (optionally top-k cut)
  law, prediction ``f(i) = argmax_y u_yᵀ W e_i``, error ``E = sum_i p_i 1[f(i) ≠ y(i)]`` (exact over the
  vocabulary; Monte Carlo over labels, embeddings and training draws).

Rules ``q`` (``n_i`` = count of token ``i`` among the ``T`` draws; ``T = None`` means ``T → ∞``, where
``n_i/T → q^train_i`` and the counts are replaced by the training law itself):

* ``"counting"``: ``q(i) = n_i``;
* ``"seen"``: ``q(i) = 1[n_i > 0]``;
* ``"capped"``: ``q(i) = 1[i among the `capacity` most frequent seen tokens]`` (ties in the count broken
  uniformly at random), Cabannes et al.'s thresholded/"optimal" scheme. ``capacity`` defaults to
  :func:`default_capacity` ``= ceil(d / log d)``: with ``m`` labels the competitor noise of a stored token
  is ``~ sqrt(capacity / (m d))``, so ``capacity = d`` leaves a fixed error rate on every stored token
  (measured, docs/notes/tails.md §7) and the log is needed for the ``d^{-(beta-1)}`` law.

Computation: with ``V_y = sum_{i: y(i)=y} q(i) e_i`` (``(m, d)``), the scores are
``S = (U Uᵀ) V Eᵀ`` (``(m, N)``), ``O(m d N)`` per draw — no ``d × d`` matrix is formed.

Exact facts: a token with ``q(i) = 0`` is predicted independently of its own label, so it is wrong
with probability exactly ``1 - 1/m`` (argmax ties broken towards the first label do not change this).
The simulator uses this expectation in place of the indicator for unstored tokens (Rao-Blackwell: same
mean, smaller variance; for the capped rule only the stored slots get embeddings). Hence for ``d → ∞``
(noise-free memory) ``E = (1 - 1/m) sum_i p_i P(q(i) = 0)``: :func:`memory_limit_error`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks

__all__ = [
    "MEMORY_RULES",
    "MemoryConfig",
    "MemoryExponents",
    "MemorySimulation",
    "default_capacity",
    "memory_error",
    "memory_exponents",
    "memory_law",
    "memory_limit_error",
    "simulate_memory",
]

#: rule -> its weight ``q(i)``.
MEMORY_RULES: dict[str, str] = {
    "counting": "q(i) = n_i (count of i among the T draws; q = training law when T -> inf)",
    "seen": "q(i) = 1[n_i > 0]",
    "capped": "q(i) = 1[i among the `capacity` most frequent seen tokens] (Cabannes et al.'s optimal scheme)",
}


def default_capacity(dim: int) -> int:
    """``ceil(d / log d)`` (``d`` for ``d <= 3``): the capped rule's default number of stored tokens."""
    return dim if dim <= 3 else int(math.ceil(dim / math.log(dim)))


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """One associative-memory experiment (a frozen pytree; ``beta`` is an array leaf, sizes are static).

    Attributes:
      beta: Zipf exponent ``> 1`` (array leaf: vmappable).
      dim: embedding dimension ``d`` (static).
      n_labels: number of labels ``m >= 2`` (static).
      vocab: vocabulary ``N`` (static); ``p`` is Zipf truncated at ``N`` and renormalised.
      rule: ``"counting"``, ``"seen"`` or ``"capped"`` (static), see :data:`MEMORY_RULES`.
      sample_size: ``T`` (static); ``None`` = ``T → ∞`` (the rule is applied to the training law).
      k: top-k cut of the training law (static); ``None`` = no cut.
      capacity: stored tokens of the ``capped`` rule (static); ``None`` = :func:`default_capacity`.
    """

    beta: ArrayLike = 1.5
    dim: int = _static(64)
    n_labels: int = _static(5)
    vocab: int = _static(4096)
    rule: str = _static("counting")
    sample_size: int | None = _static(None)
    k: int | None = _static(None)
    capacity: int | None = _static(None)

    def validate(self) -> MemoryConfig:
        """Check the static fields (and a concrete ``beta``); returns ``self``."""
        _checks.check_int("dim", self.dim, minimum=1)
        _checks.check_int("n_labels", self.n_labels, minimum=2)
        _checks.check_int("vocab", self.vocab, minimum=2)
        _checks.check_choice("rule", self.rule, tuple(MEMORY_RULES))
        if self.sample_size is not None:
            _checks.check_int("sample_size", self.sample_size, minimum=1)
        if self.k is not None:
            k = _checks.check_int("k", self.k, minimum=1)
            if k > self.vocab:
                raise ValueError(f"k must be <= vocab = {self.vocab}, got k={k}; raise vocab or lower k")
        if self.capacity is not None:
            _checks.check_int("capacity", self.capacity, minimum=1)
            if self.rule != "capped":
                raise ValueError(f"capacity applies only to rule='capped', got rule={self.rule!r}; drop capacity")
        if not isinstance(self.beta, jax.core.Tracer) and np.ndim(self.beta) == 0:
            b = _checks.check_positive_float("beta", self.beta)
            if not b > 1:
                raise ValueError(f"beta must be > 1 (a Zipf law with a finite T-exponent), got {b}")
        return self

    @property
    def stored_capacity(self) -> int:
        """The capped rule's capacity (``default_capacity(dim)`` when unset)."""
        return default_capacity(self.dim) if self.capacity is None else int(self.capacity)


def _zipf_truncated(beta: jax.Array, vocab: int, k: int | None) -> tuple[jax.Array, jax.Array]:
    """``p`` (Zipf on 1..N, renormalised) and the training law (``p`` cut at ``k``, renormalised)."""
    i = jnp.arange(1, vocab + 1, dtype=beta.dtype)
    w = i ** (-beta)
    p = w / jnp.sum(w)
    if k is None:
        return p, p
    wk = jnp.where(i <= k, w, jnp.zeros_like(w))
    return p, wk / jnp.sum(wk)


def _weights(key: jax.Array, q_train: jax.Array, cfg: MemoryConfig) -> jax.Array:
    """``q(i)`` of the rule, from ``T`` draws of ``q_train`` (or from ``q_train`` itself when ``T = None``)."""
    dtype = q_train.dtype
    k_draw, k_tie = jax.random.split(key)
    if cfg.sample_size is None:
        counts = q_train
    else:
        cdf = jnp.cumsum(q_train)
        u = jax.random.uniform(k_draw, (cfg.sample_size,), dtype=dtype) * cdf[-1]
        idx = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), cfg.vocab - 1)
        counts = jnp.zeros(cfg.vocab, dtype).at[idx].add(1.0)
    seen = counts > 0
    if cfg.rule == "counting":
        return counts
    if cfg.rule == "seen":
        return seen.astype(dtype)
    cap = min(cfg.stored_capacity, cfg.vocab)
    # rank by count, ties broken uniformly at random (counts are integers, or distinct law values at T = inf)
    gap = 0.5 if cfg.sample_size is not None else 0.0
    score = jnp.where(seen, counts + gap * jax.random.uniform(k_tie, (cfg.vocab,), dtype=dtype), -1.0)
    _, top = jax.lax.top_k(score, cap)
    chosen = jnp.zeros(cfg.vocab, bool).at[top].set(True)
    return (chosen & seen).astype(dtype)


def memory_error(key: jax.Array, config: MemoryConfig) -> jax.Array:
    """Test error of one random associative memory (one draw of labels, embeddings and training data).

    ``E = sum_i p_i 1[argmax_y u_yᵀ W e_i ≠ y(i)]``, ``W = sum_i q(i) u_{y(i)} e_iᵀ`` (module docstring).
    A single-problem pure function: batch it with ``jax.vmap`` over keys (and ``config.beta``).

    Args:
      key: a typed PRNG key.
      config: :class:`MemoryConfig` (validate it at the boundary; this function is traceable).

    Returns:
      ``()`` the error, in ``[0, 1]``, in the dtype of ``config.beta`` (float64 under x64).

    References:
      Cabannes, Dohmatob, Bietti, "Scaling laws for associative memories", ICLR 2024, arXiv:2310.02984 §2-3;
      Dohmatob et al., "A Tale of Tails", ICML 2024, arXiv:2402.07043v2 Thm 5.1.
    """
    beta = jnp.asarray(config.beta, dtype=jnp.result_type(float))
    dtype = beta.dtype
    d, m, n = config.dim, config.n_labels, config.vocab
    k_lab, k_e, k_u, k_data = jax.random.split(key, 4)
    p, q_train = _zipf_truncated(beta, n, config.k)
    q = _weights(k_data, q_train, config)
    if config.rule == "capped":
        # only the (static number of) stored slots need embeddings; the rest is Rao-Blackwellised below
        cap = min(config.stored_capacity, n)
        _, slots = jax.lax.top_k(q + jnp.arange(n, 0, -1, dtype=dtype) * jnp.asarray(1e-3 / n, dtype), cap)
        p_s, q_s = p[slots], q[slots]
    else:
        p_s, q_s = p, q
    n_s = p_s.shape[0]
    labels = jax.random.randint(k_lab, (n_s,), 0, m)
    scale = jnp.asarray(1.0 / math.sqrt(d), dtype)
    emb = jax.random.normal(k_e, (n_s, d), dtype) * scale
    out = jax.random.normal(k_u, (m, d), dtype) * scale
    v = jax.ops.segment_sum(q_s[:, None] * emb, labels, num_segments=m)  # (m, d)
    scores = (out @ out.T) @ (v @ emb.T)  # (m, n_s)
    wrong = jnp.argmax(scores, axis=0) != labels
    stored = q_s > 0
    recalled_part = jnp.sum(jnp.where(stored & wrong, p_s, jnp.zeros_like(p_s)))
    # unstored tokens: prediction independent of the label, wrong with probability exactly 1 - 1/m
    unstored_mass = 1.0 - jnp.sum(jnp.where(stored, p_s, jnp.zeros_like(p_s)))
    return recalled_part + jnp.asarray(1.0 - 1.0 / m, dtype) * jnp.maximum(unstored_mass, 0.0)


class MemorySimulation(NamedTuple):
    """Simulated associative-memory errors.

    Attributes:
      mean: ``()`` mean error over seeds. sem: ``()`` ``std(ddof=1)/sqrt(seeds)``.
      per_seed: ``(n_seeds,)`` error of each seed (seed ``j`` uses ``fold_in(key, j)``).
      config: the :class:`MemoryConfig`.
    """

    mean: float
    sem: float
    per_seed: np.ndarray
    config: MemoryConfig


@functools.partial(jax.jit, static_argnames=("config",))
def _batch(keys: jax.Array, config: MemoryConfig) -> jax.Array:
    return jax.vmap(memory_error, in_axes=(0, None))(keys, config)


def simulate_memory(key: jax.Array, config: MemoryConfig, n_seeds: int, *, batch_size: int | None = None
                    ) -> MemorySimulation:
    """Monte Carlo mean and SEM of :func:`memory_error` over ``n_seeds`` seeds (batching-invariant).

    Args:
      key: a typed PRNG key; seed ``j`` uses ``jax.random.fold_in(key, j)``.
      config: :class:`MemoryConfig` (``beta`` a concrete scalar).
      n_seeds: number of seeds ``>= 1``.
      batch_size: seeds per ``vmap`` batch (default: <= 64 and ~64 MiB of embeddings); results do not
        depend on it.

    Returns:
      :class:`MemorySimulation`.

    Raises:
      ValueError: invalid configuration or sizes (named).

    Examples:
      >>> import jax, kcollapse.tails as kt
      >>> sim = kt.simulate_memory(jax.random.key(0), kt.MemoryConfig(beta=2.0, dim=64), 8)
      >>> 0.0 <= sim.mean <= 1.0
      True
    """
    config.validate()
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    if batch_size is None:  # ~64 MiB of embeddings per batch
        rows = config.stored_capacity if config.rule == "capped" else config.vocab
        batch_size = max(1, min(n_seeds, 64, (1 << 23) // max(1, rows * config.dim)))
    bs = _checks.check_int("batch_size", batch_size, minimum=1)
    cfg = dataclasses.replace(config, beta=float(config.beta))
    out = []
    for start in range(0, n_seeds, bs):
        idx = np.arange(start, start + bs)
        keys = jax.vmap(lambda j: jax.random.fold_in(key, j))(jnp.asarray(idx))
        out.append(np.asarray(_batch(keys, cfg))[: min(bs, n_seeds - start)])
    per_seed = np.concatenate(out)[:n_seeds]
    mean = float(per_seed.mean())
    sem = float(per_seed.std(ddof=1) / math.sqrt(n_seeds)) if n_seeds > 1 else math.nan
    if not np.all(np.isfinite(per_seed)):
        raise FloatingPointError("non-finite associative-memory error; check beta and the sizes")
    return MemorySimulation(mean, sem, per_seed, cfg)


class MemoryExponents(NamedTuple):
    """Exponents of Thm 5.1, ``E ≍ T^{-t} + d^{-c_q} + k^{-kappa}``."""

    t: float
    c_q: float
    kappa: float


def memory_exponents(beta: ArrayLike, rule: str = "counting") -> MemoryExponents:
    """Exponents of A Tale of Tails Thm 5.1 (as printed, for a small fixed number of labels).

    ``t = 1 - 1/beta`` (Hutter's clean law), ``kappa = beta - 1`` (the top-k plateau
    ``P(i > k) ≍ k^{-(beta-1)}``), and ``c_q = (1 - 1/beta)/2`` for ``"counting"`` (a token is recalled
    iff ``p_i ≳ d^{-1/2}``) or ``c_q = beta - 1`` for the ``"capped"`` (optimal) rule (the ``≈ d`` most
    frequent tokens are stored). For ``"seen"`` ``c_q`` is NaN: the rule stores every seen token and is
    overloaded once ``T^{1/beta} ≫ d`` (no ``d``-law at ``T → ∞``; docs/notes/tails.md §7). The capped
    exponent holds up to a log factor (capacity ``d/log d``); measured evidence in the notes.

    Args:
      beta: Zipf exponent ``> 1`` (scalar, works under jit/vmap).
      rule: one of :data:`MEMORY_RULES`.

    Returns:
      :class:`MemoryExponents`.

    References:
      Dohmatob et al., arXiv:2402.07043v2 Thm 5.1; Cabannes et al., arXiv:2310.02984 Thms 2-3.
    """
    _checks.check_choice("rule", rule, tuple(MEMORY_RULES))
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    t = 1 - 1 / beta
    c_q = {"counting": t / 2, "capped": beta - 1, "seen": jnp.full_like(beta, jnp.nan)}[rule]
    return MemoryExponents(t, c_q, beta - 1)


def memory_law(sample_size: ArrayLike, dim: ArrayLike, k: ArrayLike, beta: ArrayLike, rule: str = "counting"
               ) -> jax.Array:
    """Leading-order triplet law ``T^{-(1-1/beta)} + d^{-c_q} + k^{-(beta-1)}`` with unit constants.

    Thm 5.1 is a ``≍`` statement: the constants are not derived, so only exponents and the location of
    the cross-overs (up to constants) are meaningful. Pass ``inf`` for a size that is not limiting.

    Args:
      sample_size, dim, k: ``T``, ``d``, ``k`` (broadcastable; ``inf`` drops the term).
      beta: Zipf exponent ``> 1``. rule: ``"counting"`` or ``"capped"`` (``"seen"`` has no d-law: NaN).

    Returns:
      The broadcast law.
    """
    ex = memory_exponents(beta, rule)
    f = jnp.result_type(float)
    T, d, kk = (jnp.asarray(x, dtype=f) for x in (sample_size, dim, k))
    return T ** (-ex.t) + d ** (-ex.c_q) + kk ** (-ex.kappa)


def memory_limit_error(beta: ArrayLike, n_labels: int, vocab: int, *, sample_size: int | None = None,
                       k: int | None = None, capacity: int | None = None) -> jax.Array:
    """Exact noise-free (``d → ∞``) error of the counting/seen rules: ``(1 - 1/m) sum_i p_i P(n_i = 0)``.

    With ``d → ∞`` the memory recalls every stored token (``q(i) > 0``) and an unstored token is wrong with
    probability exactly ``1 - 1/m`` (its prediction is independent of its label). Stored = seen, so
    ``P(n_i = 0) = (1 - q^train_i)^T``, or ``1[q^train_i = 0]`` for ``T → ∞``: the ``k``-plateau
    ``(1 - 1/m) sum_{k < i <= N} p_i`` (``≍ k^{-(beta-1)}``). For the capped rule it is the limit while the
    capacity exceeds the number of seen tokens; with ``capacity`` and ``T → ∞`` it stores the ``capacity``
    most likely tokens, so the limit is ``(1 - 1/m) P(i > min(capacity, k))``. ``p`` is Zipf truncated at
    ``N`` and renormalised.

    Args:
      beta: Zipf exponent ``> 1`` (array-like scalar; jit/vmap-able). n_labels: ``m``. vocab: ``N``.
      sample_size: ``T`` or ``None`` (``T → ∞``). k: top-k cut of the training law or ``None``.
      capacity: the capped rule's capacity (only with ``sample_size=None``), or ``None``.

    Raises:
      ValueError: ``capacity`` with a finite ``sample_size`` (the finite-T capped limit is not implemented).

    Returns:
      ``()`` the limit error.
    """
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    p, q_train = _zipf_truncated(beta, int(vocab), k)
    if capacity is not None and sample_size is not None:
        raise ValueError("memory_limit_error: capacity is supported only with sample_size=None (T -> inf); "
                         "drop capacity or sample_size")
    if sample_size is None:
        unseen = q_train <= 0
        if capacity is not None:
            unseen = unseen | (jnp.arange(1, int(vocab) + 1) > int(capacity))
        unseen = unseen.astype(p.dtype)
    else:
        unseen = jnp.exp(sample_size * jnp.log1p(-jnp.minimum(q_train, 1.0)))
    return (1.0 - 1.0 / n_labels) * jnp.sum(p * unseen)
