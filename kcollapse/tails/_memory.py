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

One label per token (``label_map="token"``: ``y(i) = i``, ``m = N``, output embeddings ``u_1..u_N``):
scores ``S = U (Uᵀ diag(q) E) Eᵀ`` (``N × N``, in blocks of token columns, ``O(N² d)`` per draw), see
:func:`token_memory_error`; the noise-free limit is :func:`token_limit_error` and the capped rule's default
capacity :func:`token_capacity` ``= d²/(16 ln N)``. Measured (docs/notes/tails.md §9): the counting
exponent stays ``(1 - 1/beta)/2``; the capped exponent doubles to ``2(beta - 1)`` (at fixed ``N``).

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
from ..simulate._driver import map_seed_batches

__all__ = [
    "LABEL_MAPS",
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
    "TOKEN_CAPACITY_CONSTANT",
    "token_capacity",
    "token_limit_error",
    "token_memory_error",
]

#: rule -> its weight ``q(i)``.
MEMORY_RULES: dict[str, str] = {
    "counting": "q(i) = n_i (count of i among the T draws; q = training law when T -> inf)",
    "seen": "q(i) = 1[n_i > 0]",
    "capped": "q(i) = 1[i among the `capacity` most frequent seen tokens] (Cabannes et al.'s optimal scheme)",
}


#: label map -> meaning.
LABEL_MAPS: dict[str, str] = {
    "random": "y(i) uniform on {1..m}, drawn once per token (m = n_labels, default 5)",
    "token": "one label per token: y(i) = i, m = N, output embeddings u_1..u_N (a bijective memory)",
}


def default_capacity(dim: int) -> int:
    """``ceil(d / log d)`` (``d`` for ``d <= 3``): the capped rule's default number of stored tokens (random labels)."""
    return dim if dim <= 3 else int(math.ceil(dim / math.log(dim)))


#: constant ``a`` of :func:`token_capacity` (measured, docs/notes/tails.md §9).
TOKEN_CAPACITY_CONSTANT = 16.0


def token_capacity(dim: int, vocab: int, a: float = TOKEN_CAPACITY_CONSTANT) -> int:
    """``min(N, ceil(d² / (a ln N)))``: the capped rule's default capacity with one label per token.

    With ``y(i) = i`` every competitor label ``y`` of a stored token ``x`` sees Gaussian noise of variance
    ``≈ (1 + 1[y stored])/d + C/d²`` against a unit signal; the largest of ``N - 1`` such competitors is
    ``≈ sqrt(2 ln N (2/d + C/d²))``, so ``C = d²/(a ln N)`` with ``a > 2`` recalls the stored tokens once
    ``d ≳ 4 ln N / (1 - 2/a)`` [DERIVED]. At moderate ``d`` the signal ``|u_x|²|e_x|² = 1 ± 2/sqrt(d)`` and the
    ``2/d`` crosstalk eat the margin: ``a = 8`` leaves rare seeds that lose a frequent token at ``d <= 256``
    (``N = 8192``), ``a = 16`` (the default) had no recall error at ``64 <= d <= 256`` (docs/notes/tails.md §9).
    Barnfield et al. (arXiv:2605.05189, abstract) show the ``d² ≍ n log n`` capacity scale for top-1 retrieval.
    """
    _checks.check_int("dim", dim, minimum=1)
    _checks.check_int("vocab", vocab, minimum=2)
    return int(min(vocab, max(1, math.ceil(dim * dim / (float(a) * math.log(vocab))))))


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """One associative-memory experiment (a frozen pytree; ``beta`` is an array leaf, sizes are static).

    Attributes:
      beta: Zipf exponent ``> 1`` (array leaf: vmappable).
      dim: embedding dimension ``d`` (static).
      n_labels: number of labels ``m >= 2`` (static); ``None`` = 5 for ``label_map="random"``, ``N`` for
        ``"token"`` (where only ``None`` or ``vocab`` is allowed).
      vocab: vocabulary ``N`` (static); ``p`` is Zipf truncated at ``N`` and renormalised.
      rule: ``"counting"``, ``"seen"`` or ``"capped"`` (static), see :data:`MEMORY_RULES`.
      sample_size: ``T`` (static); ``None`` = ``T → ∞`` (the rule is applied to the training law).
      k: top-k cut of the training law (static); ``None`` = no cut.
      capacity: stored tokens of the ``capped`` rule (static); ``None`` = :func:`default_capacity`
        (random labels) or :func:`token_capacity` (one label per token).
      label_map: ``"random"`` (``y(i)`` uniform on ``m`` labels) or ``"token"`` (``y(i) = i``, ``m = N``),
        see :data:`LABEL_MAPS` (static).
    """

    beta: ArrayLike = 1.5
    dim: int = _static(64)
    n_labels: int | None = _static(None)
    vocab: int = _static(4096)
    rule: str = _static("counting")
    sample_size: int | None = _static(None)
    k: int | None = _static(None)
    capacity: int | None = _static(None)
    label_map: str = _static("random")

    def validate(self) -> MemoryConfig:
        """Check the static fields (and a concrete ``beta``); returns ``self``."""
        _checks.check_int("dim", self.dim, minimum=1)
        _checks.check_int("vocab", self.vocab, minimum=2)
        _checks.check_choice("label_map", self.label_map, tuple(LABEL_MAPS))
        if self.n_labels is not None:
            _checks.check_int("n_labels", self.n_labels, minimum=2)
            if self.label_map == "token" and self.n_labels != self.vocab:
                raise ValueError(f"n_labels must be None or vocab = {self.vocab} with label_map='token' (one label "
                                 f"per token), got n_labels={self.n_labels}; drop n_labels")
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
    def labels(self) -> int:
        """The number of labels ``m`` (``N`` for ``label_map="token"``, 5 when ``n_labels`` is unset)."""
        if self.label_map == "token":
            return self.vocab
        return 5 if self.n_labels is None else int(self.n_labels)

    @property
    def stored_capacity(self) -> int:
        """The capped rule's capacity (:func:`default_capacity` or :func:`token_capacity` when unset)."""
        if self.capacity is not None:
            return int(self.capacity)
        return token_capacity(self.dim, self.vocab) if self.label_map == "token" else default_capacity(self.dim)


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
    A single-problem pure function: batch it with ``jax.vmap`` over keys (and ``config.beta``). With
    ``config.label_map == "token"`` (``y(i) = i``) it draws ``q``, ``E``, ``U`` and returns
    :func:`token_memory_error` (``O(N² d)``).

    Args:
      key: a typed PRNG key.
      config: :class:`MemoryConfig` (validate it at the boundary; this function is traceable).

    Returns:
      ``()`` the error, in ``[0, 1]``, in the dtype of ``config.beta`` (float64 under x64).

    References:
      Cabannes, Dohmatob, Bietti, "Scaling laws for associative memories", ICLR 2024, arXiv:2310.02984 §2-3;
      Dohmatob et al., "A Tale of Tails", ICML 2024, arXiv:2402.07043v2 Thm 5.1.
    """
    if config.label_map == "token":
        return _token_error(key, config)
    beta = jnp.asarray(config.beta, dtype=jnp.result_type(float))
    dtype = beta.dtype
    d, m, n = config.dim, config.labels, config.vocab
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


#: token columns per score block of the one-label-per-token memory (memory O(block * N) per seed).
TOKEN_BLOCK = 256


def token_memory_error(p: ArrayLike, q: ArrayLike, emb: ArrayLike, out: ArrayLike, *, block: int = TOKEN_BLOCK
                       ) -> jax.Array:
    """Error of one given one-label-per-token memory (``y(i) = i``): the deterministic core of the simulator.

    ``W = Uᵀ diag(q) E = sum_j q_j u_j e_jᵀ`` (``d × d``; for ``d > N`` the equal product
    ``(U Uᵀ) diag(q) E`` is used instead), scores ``S = U W Eᵀ`` (``N × N``, ``S[y, x] = u_yᵀ W e_x``),
    computed in blocks of ``block`` token columns (memory ``O(block N)``, time ``O(N² d)``), prediction
    ``f(x) = argmax_y S[y, x]`` over all ``N`` labels. Returns

    ``E = sum_{x stored} p_x 1[f(x) ≠ x] + sum_{x unstored} p_x (1 - 1[f(x) ∈ U] / |U|)``,

    ``U = {y : q_y = 0}``. The second sum is the exact conditional expectation of the plain indicator
    ``1[f(x) ≠ x]`` for an unstored ``x`` given ``W``, ``e_x`` and the unordered set ``{u_y : y ∈ U}``: the
    output embeddings of unstored labels are i.i.d. and independent of ``W``, so each ``y ∈ U`` is equally
    likely to be the one that wins (Rao-Blackwell: same mean, lower variance) [DERIVED].

    Args:
      p: ``(N,)`` test law. q: ``(N,)`` weights ``q(i) >= 0``. emb: ``(N, d)`` input embeddings ``e_i``.
      out: ``(N, d)`` output embeddings ``u_i``. block: token columns per score block (static).

    Returns:
      ``()`` the error.
    """
    p, q, emb, out = (jnp.asarray(a) for a in (p, q, emb, out))
    n, d = emb.shape
    if d <= n:  # via the d x d memory W = sum_j q_j u_j e_j^T: O(N d^2)
        a = out @ ((out * q[:, None]).T @ emb)  # (N, d): row y = u_y^T W
    else:  # d > N: via the N x N Gram matrix U U^T, O(N^2 d) (W would cost O(d^2) memory per seed)
        a = ((out @ out.T) * q[None, :]) @ emb
    b = max(1, min(int(block), n))
    nb = -(-n // b)
    pad = jnp.concatenate([emb, jnp.zeros((nb * b - n, d), emb.dtype)]) if nb * b > n else emb
    pred = jax.lax.map(lambda eb: jnp.argmax(a @ eb.T, axis=0), pad.reshape(nb, b, d)).reshape(-1)[:n]
    stored = q > 0
    n_unstored = jnp.sum(~stored).astype(p.dtype)
    zero = jnp.zeros_like(p)
    wrong_stored = jnp.where(stored & (pred != jnp.arange(n)), p, zero)
    lands_unstored = (~stored[pred]).astype(p.dtype)
    unstored_part = jnp.where(stored, zero, p * (1.0 - lands_unstored / jnp.maximum(n_unstored, 1.0)))
    return jnp.sum(wrong_stored) + jnp.sum(unstored_part)


def _token_error(key: jax.Array, config: MemoryConfig) -> jax.Array:
    """:func:`memory_error` for ``label_map="token"``: draws ``q``, ``E``, ``U`` and calls :func:`token_memory_error`."""
    beta = jnp.asarray(config.beta, dtype=jnp.result_type(float))
    dtype = beta.dtype
    d, n = config.dim, config.vocab
    _, k_e, k_u, k_data = jax.random.split(key, 4)
    p, q_train = _zipf_truncated(beta, n, config.k)
    q = _weights(k_data, q_train, config)
    scale = jnp.asarray(1.0 / math.sqrt(d), dtype)
    emb = jax.random.normal(k_e, (n, d), dtype) * scale
    out = jax.random.normal(k_u, (n, d), dtype) * scale
    return token_memory_error(p, q, emb, out)


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
        if config.label_map == "token":  # E, U (N x d each) and one (N x block) score block per seed
            per_seed = config.vocab * (2 * config.dim + min(TOKEN_BLOCK, config.vocab))
        else:
            per_seed = (config.stored_capacity if config.rule == "capped" else config.vocab) * config.dim
        batch_size = max(1, min(n_seeds, 64, (1 << 23) // max(1, per_seed)))
    bs = _checks.check_int("batch_size", batch_size, minimum=1)
    cfg = dataclasses.replace(config, beta=float(config.beta))
    per_seed = map_seed_batches(lambda keys: _batch(keys, cfg), key, np.arange(n_seeds), bs)
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


def memory_exponents(beta: ArrayLike, rule: str = "counting", label_map: str = "random") -> MemoryExponents:
    """Exponents of A Tale of Tails Thm 5.1 (as printed for a small fixed number of labels; measured for ``m = N``).

    ``t = 1 - 1/beta`` (Hutter's clean law), ``kappa = beta - 1`` (the top-k plateau
    ``P(i > k) ≍ k^{-(beta-1)}``), and ``c_q = (1 - 1/beta)/2`` for ``"counting"`` (a token is recalled
    iff ``p_i ≳ d^{-1/2}``) or ``c_q = beta - 1`` for the ``"capped"`` (optimal) rule (the ``≈ d`` most
    frequent tokens are stored). For ``"seen"`` ``c_q`` is NaN: the rule stores every seen token and is
    overloaded once ``T^{1/beta} ≫ d`` (no ``d``-law at ``T → ∞``; docs/notes/tails.md §7). The capped
    exponent holds up to a log factor (capacity ``d/log d``); measured evidence in the notes.

    One label per token (``label_map="token"``, ``m = N``) [DERIVED + measured, docs/notes/tails.md §9]: the
    counting exponent is unchanged, ``(1 - 1/beta)/2`` (the head's crosstalk ``p_1 e_1ᵀe_x ~ p_1/sqrt(d)``
    still sets the recall threshold ``p_x ≳ p_1/sqrt(d)``), while the capped exponent doubles to
    ``2(beta - 1)``: without same-label interference the capacity is ``C = d²/(a ln N)``
    (:func:`token_capacity`), so ``E ≈ P(i > C) ≍ (d²/ln N)^{-(beta-1)}`` at fixed ``N`` for
    ``4 ln N ≲ d ≲ sqrt(N ln N)``. (For ``N → ∞`` at fixed ``d`` every token is lost: the largest of ``N``
    competitor crosstalks ``sqrt(2 ln N / d)`` exceeds the unit signal.)

    Args:
      beta: Zipf exponent ``> 1`` (scalar, works under jit/vmap).
      rule: one of :data:`MEMORY_RULES`.
      label_map: ``"random"`` (``m`` fixed, as printed) or ``"token"`` (``m = N``), see :data:`LABEL_MAPS`.

    Returns:
      :class:`MemoryExponents`.

    References:
      Dohmatob et al., arXiv:2402.07043v2 Thm 5.1; Cabannes et al., arXiv:2310.02984 Thms 2-3.
    """
    _checks.check_choice("rule", rule, tuple(MEMORY_RULES))
    _checks.check_choice("label_map", label_map, tuple(LABEL_MAPS))
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    t = 1 - 1 / beta
    capped = (2 if label_map == "token" else 1) * (beta - 1)
    c_q = {"counting": t / 2, "capped": capped, "seen": jnp.full_like(beta, jnp.nan)}[rule]
    return MemoryExponents(t, c_q, beta - 1)


def memory_law(sample_size: ArrayLike, dim: ArrayLike, k: ArrayLike, beta: ArrayLike, rule: str = "counting",
               label_map: str = "random") -> jax.Array:
    """Leading-order triplet law ``T^{-(1-1/beta)} + d^{-c_q} + k^{-(beta-1)}`` with unit constants.

    Thm 5.1 is a ``≍`` statement: the constants are not derived, so only exponents and the location of
    the cross-overs (up to constants) are meaningful. Pass ``inf`` for a size that is not limiting.

    Args:
      sample_size, dim, k: ``T``, ``d``, ``k`` (broadcastable; ``inf`` drops the term).
      beta: Zipf exponent ``> 1``. rule: ``"counting"`` or ``"capped"`` (``"seen"`` has no d-law: NaN).
      label_map: ``"random"`` or ``"token"`` (:func:`memory_exponents`; the log N of the ``m = N`` capacity is
        not included).

    Returns:
      The broadcast law.
    """
    ex = memory_exponents(beta, rule, label_map)
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


def token_limit_error(beta: ArrayLike, vocab: int, *, sample_size: int | None = None, k: int | None = None,
                      capacity: int | None = None) -> jax.Array:
    """Noise-free (``d → ∞``) error with one label per token (``y(i) = i``, ``m = N``).

    As ``d → ∞`` the scaled scores of an unstored token ``x`` are ``sqrt(d) u_yᵀ W e_x → q_y g_y`` with
    ``g_y = sqrt(d) e_yᵀ e_x`` i.i.d. ``N(0, 1)`` for stored labels ``y`` and ``→ 0`` for unstored ones, so the
    prediction lands among the ``|U| = N - s`` unstored labels (``s`` stored tokens) iff every stored
    ``g_y < 0``, probability ``2^{-s}``, and is then uniform on them. Every stored token is recalled. Hence
    [DERIVED] at ``T → ∞`` (stored set deterministic: the first ``s = min(k, capacity, N)`` tokens)

    ``E_∞ = P(i > s) (1 - 2^{-s} / (N - s))``,

    which replaces the ``1 - 1/m`` of the random-label memory. With a finite ``T`` (counting/seen rules) the
    stored set is the seen set and this function returns ``sum_i p_i (1 - q^train_i)^T``; the exact limit lies
    below it by ``E[1[x unseen] 2^{-s}/(N - s)] <= 1/(2(N - 1))``.

    Args:
      beta: Zipf exponent ``> 1`` (array-like scalar; jit/vmap-able). vocab: ``N``.
      sample_size: ``T`` or ``None`` (``T → ∞``). k: top-k cut of the training law or ``None``.
      capacity: the capped rule's capacity (only with ``sample_size=None``), or ``None``.

    Raises:
      ValueError: ``capacity`` with a finite ``sample_size``.

    Returns:
      ``()`` the limit error.
    """
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    n = _checks.check_int("vocab", vocab, minimum=2)
    if capacity is not None and sample_size is not None:
        raise ValueError("token_limit_error: capacity is supported only with sample_size=None (T -> inf); "
                         "drop capacity or sample_size")
    p, q_train = _zipf_truncated(beta, n, k)
    if sample_size is not None:
        return jnp.sum(p * jnp.exp(sample_size * jnp.log1p(-jnp.minimum(q_train, 1.0))))
    s = min(n, n if k is None else int(k), n if capacity is None else int(capacity))
    if s >= n:
        return jnp.zeros((), p.dtype)
    tail = jnp.sum(p[s:])
    return tail * (1.0 - 2.0 ** (-s) / (n - s))
