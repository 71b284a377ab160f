"""Recursive ML training of a categorical distribution (Suresh et al., discrete case): exact theory and simulator.

Setting (shared/THEORY.md §6.1 "discrete distributions" and §7 Suresh, Thangaraj, Khandavally,
AISTATS 2025, arXiv:2412.17646 [SECONDARY]): a corpus of ``n`` tokens over ``K`` symbols with counts
``c^(0)`` (the real data, round 0). Round ``k`` fits the ML (frequency) estimate ``p_k = c^(k-1)/n``
and draws a new corpus ``c^(k) ~ Multinomial(n, p_k)``. One symbol's count is the neutral
Wright-Fisher chain ``c_k ~ Binomial(n, c_{k-1}/n)``, absorbed at 0 (forgotten) or ``n`` (fixed).

Exact results (kcollapse; docs/notes/gaussian.md §9):

* survival ``s_k(c) = P(c_k > 0 | c_0 = c)``: ``s_0 = 1[c > 0]``, ``s_k = T s_{k-1}`` with the
  ``(n+1) x (n+1)`` binomial transition matrix ``T`` (one matrix-vector product per round gives every
  starting count at once); ``s_k(c) -> c/n`` (the fixation probability, ``c_k/n`` is a martingale);
* time to forget ``T_0 = min{k: c_k = 0}``: ``E[min(T_0, G)] = sum_{k<G} s_k(c)``; the mean
  absorption time and the mean time to loss given loss solve ``(I - Q) tau = 1`` and ``(I - Q) g = h``
  (``h(i) = 1 - i/n``) on the transient counts;
* for ``c, k << n`` the count is a critical Galton-Watson process with Poisson(1) offspring
  (``n -> inf`` limit): ``s_k = 1 - q_k^c``, ``q_k = exp(q_{k-1} - 1)``, and its Feller-diffusion form
  ``s_k ~ 1 - exp(-2c/k)``: forgetting-time *quantiles* are linear in ``c`` (median ``~ 2c/ln 2``),
  while the *mean* is ``~ 2c (1 + ln(n/c))`` (Kimura: ``-2n[x ln x + (1-x) ln(1-x)]``, ``x = c/n``);
* the stated survival ``>~ 1 - exp(-c/k)`` (Suresh et al., [SECONDARY]) has half the exponent of
  the Feller form; kcollapse checks it as a lower bound on the exact survival.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlog1py, xlogy
from jax.typing import ArrayLike

from .. import _checks
from ..simulate._driver import map_seed_batches

__all__ = [
    "CategoricalSimulation",
    "absorption_times",
    "branching_survival",
    "feller_survival",
    "forgetting_time_quantile",
    "kimura_times",
    "simulate_categorical",
    "suresh_survival_bound",
    "survival_probability",
    "truncated_forgetting_time",
    "wright_fisher_transition",
]

_MAX_N = 5000


def _check_n(n) -> int:
    n = _checks.check_int("n (corpus size)", n, minimum=1)
    if n > _MAX_N:
        raise ValueError(f"n={n} is above {_MAX_N}: the exact chain uses an (n+1) x (n+1) matrix; "
                         "use the branching/Feller approximations for larger corpora")
    return n


def _check_counts(counts, n: int) -> np.ndarray:
    c = np.atleast_1d(np.asarray(counts))
    if not np.issubdtype(c.dtype, np.integer):
        if np.issubdtype(c.dtype, np.floating) and np.all(c == np.round(c)):
            c = c.astype(np.int64)
        else:
            raise TypeError(f"counts must be integers, got {c.tolist()}")
    if c.ndim != 1 or c.size == 0 or c.min() < 0 or c.max() > n:
        raise ValueError(f"counts must be a non-empty 1-D list of integers in [0, n={n}], got {c.tolist()}")
    return c


@functools.partial(jax.jit, static_argnames=("n",))
def wright_fisher_transition(n: int) -> jax.Array:
    """``(n+1, n+1)`` matrix ``T[i, j] = P(c_k = j | c_{k-1} = i) = Binomial(n, i/n).pmf(j)``."""
    dt = jnp.result_type(float)
    i = jnp.arange(n + 1, dtype=dt)[:, None]
    j = jnp.arange(n + 1, dtype=dt)[None, :]
    p = i / n
    log_binom = gammaln(n + 1.0) - gammaln(j + 1) - gammaln(n - j + 1)
    return jnp.exp(log_binom + xlogy(j, p) + xlog1py(n - j, -p))


@functools.partial(jax.jit, static_argnames=("n", "steps"))
def _survival_table(n: int, steps: int) -> jax.Array:
    T = wright_fisher_transition(n)
    s0 = (jnp.arange(n + 1) > 0).astype(T.dtype)

    def body(s, _):
        s = T @ s
        return s, s

    _, ss = jax.lax.scan(body, s0, None, length=steps)
    return jnp.concatenate([s0[None], ss])  # (steps + 1, n + 1)


def survival_probability(counts, generations, n: int) -> np.ndarray:
    """Exact ``P(c_k > 0 | c_0 = c)`` for every ``k`` in ``generations`` and ``c`` in ``counts``.

    Returns:
      ``(len(generations), len(counts))`` array.
    """
    n = _check_n(n)
    c = _check_counts(counts, n)
    g = np.atleast_1d(np.asarray(generations, dtype=np.int64))
    if g.min() < 0:
        raise ValueError(f"generations must be >= 0, got {g.min()}")
    table = np.asarray(_survival_table(n, int(g.max())))
    return np.clip(table[g][:, c], 0.0, 1.0)  # rounding can leave 1 + 1e-15


def truncated_forgetting_time(counts, horizon: int, n: int) -> np.ndarray:
    """Exact ``E[min(T_0, G)] = sum_{k<G} P(c_k > 0)`` for ``G = horizon`` (``(len(counts),)``)."""
    n = _check_n(n)
    c = _check_counts(counts, n)
    horizon = _checks.check_int("horizon", horizon, minimum=1)
    table = np.asarray(_survival_table(n, horizon))
    return table[:horizon].sum(axis=0)[c]


def forgetting_time_quantile(counts, n: int, q: float = 0.5, *, max_generations: int = 100_000) -> np.ndarray:
    """Exact ``q``-quantile of the forgetting time: ``min{k: P(c_k = 0) >= q}`` per count.

    ``inf`` where ``q`` exceeds the loss probability ``1 - c/n`` (or is not reached in ``max_generations``).
    """
    n = _check_n(n)
    c = _check_counts(counts, n)
    q = _checks.check_fraction("q", q)
    table = np.asarray(_survival_table(n, max_generations))
    lost = 1 - table[:, c]  # (G+1, C)
    out = np.full(c.shape, np.inf)
    for j in range(c.size):
        hit = np.nonzero(lost[:, j] >= q)[0]
        if hit.size:
            out[j] = hit[0]
    return out


def absorption_times(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean absorption time ``E T`` and mean time to loss given loss ``E[T_0 | T_0 < inf]``.

    Returns:
      ``(tau, loss_time)``, each ``(n + 1,)`` indexed by the starting count (0 at both ends; the loss
      time at ``c = n`` is NaN: the symbol can never be lost).
    """
    n = _check_n(n)
    T = np.asarray(wright_fisher_transition(n), dtype=np.float64)
    Q = T[1:n, 1:n]
    eye = np.eye(n - 1)
    tau = np.zeros(n + 1)
    g = np.zeros(n + 1)
    if n >= 2:
        h = 1 - np.arange(1, n) / n
        tau[1:n] = np.linalg.solve(eye - Q, np.ones(n - 1))
        g[1:n] = np.linalg.solve(eye - Q, h)
    loss = np.full(n + 1, np.nan)
    h_all = 1 - np.arange(n + 1) / n
    loss[:n] = np.where(h_all[:n] > 0, g[:n] / np.where(h_all[:n] > 0, h_all[:n], 1), np.nan)
    loss[0] = 0.0
    return tau, loss


def kimura_times(counts: ArrayLike, n: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Diffusion (Kimura) mean absorption time and mean loss time for the haploid chain, ``x = c/n``.

    ``E T ~ -2n [x ln x + (1 - x) ln(1 - x)]``, ``E[T_0 | loss] ~ -2n x ln x/(1 - x)`` (Kimura & Ohta 1969,
    with the haploid variance ``x(1 - x)/n`` per round).
    """
    c = jnp.asarray(counts, jnp.result_type(float))
    n = jnp.asarray(n, c.dtype)
    x = c / n
    return -2 * n * (xlogy(x, x) + xlogy(1 - x, 1 - x)), -2 * n * xlogy(x, x) / (1 - x)


def feller_survival(counts: ArrayLike, generations: ArrayLike) -> jax.Array:
    """Feller-diffusion survival ``1 - exp(-2c/k)`` (``c, k << n``); 1 at ``k = 0`` for ``c > 0``."""
    c = jnp.asarray(counts, jnp.result_type(float))
    k = jnp.asarray(generations, c.dtype)
    return jnp.where(k > 0, -jnp.expm1(-2 * c / jnp.where(k > 0, k, 1.0)), (c > 0).astype(c.dtype))


def suresh_survival_bound(counts: ArrayLike, generations: ArrayLike) -> jax.Array:
    """Suresh et al.'s stated survival ``>~ 1 - exp(-c/k)`` [SECONDARY] (1 at ``k = 0`` for ``c > 0``)."""
    c = jnp.asarray(counts, jnp.result_type(float))
    k = jnp.asarray(generations, c.dtype)
    return jnp.where(k > 0, -jnp.expm1(-c / jnp.where(k > 0, k, 1.0)), (c > 0).astype(c.dtype))


@functools.partial(jax.jit, static_argnames=("steps",))
def _extinction(steps: int, dt=None):
    dt = dt or jnp.result_type(float)

    def body(q, _):
        q = jnp.exp(q - 1)
        return q, q

    _, qs = jax.lax.scan(body, jnp.zeros((), dt), None, length=steps)
    return jnp.concatenate([jnp.zeros((1,), dt), qs])


def branching_survival(counts, generations) -> np.ndarray:
    """``n -> inf`` limit at fixed ``c, k``: critical Poisson(1) Galton-Watson survival ``1 - q_k^c``.

    ``q_0 = 0``, ``q_k = exp(q_{k-1} - 1)`` (extinction by round ``k`` of one lineage); ``1 - q_k ~ 2/k``.

    Returns:
      ``(len(generations), len(counts))``.
    """
    c = np.atleast_1d(np.asarray(counts, dtype=np.float64))
    g = np.atleast_1d(np.asarray(generations, dtype=np.int64))
    q = np.asarray(_extinction(int(g.max())))[g][:, None]
    log_q = np.log(np.where(q > 0, q, 1.0))
    # 1 - q^c; at k = 0 (q = 0) a symbol survives iff c > 0
    return np.where(q > 0, -np.expm1(c[None, :] * log_q), (c[None, :] > 0).astype(np.float64))


# ------------------------------------------------------------------------------------------------
# Simulator: the full categorical chain (multinomial resampling of all K symbols)
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CategoricalSimulation:
    """Per-chain survival of each symbol.

    Attributes:
      generations: ``(R,)`` reported rounds. counts: ``(K,)`` initial counts.
      alive: ``(chains, R, K)`` bool, ``c_k > 0``. loss_time: ``(chains, K)`` first round with count 0
        (``horizon + 1`` if not lost by ``horizon = max(generations)``). n: corpus size.
    """

    generations: np.ndarray
    counts: np.ndarray
    alive: np.ndarray
    loss_time: np.ndarray
    n: int

    @property
    def n_chains(self) -> int:
        return int(self.alive.shape[0])

    def survival(self) -> tuple[np.ndarray, np.ndarray]:
        """``(R, K)`` fraction of chains where the symbol survives, and its binomial SEM."""
        p = self.alive.mean(axis=0)
        return p, np.sqrt(p * (1 - p) / self.n_chains)

    def truncated_time(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """``(K,)`` mean of ``min(T_0, horizon)`` and its SEM."""
        t = np.minimum(self.loss_time, horizon).astype(np.float64)
        return t.mean(axis=0), t.std(axis=0, ddof=1) / math.sqrt(t.shape[0])


@functools.partial(jax.jit, static_argnames=("n", "steps"))
def _run_categorical(keys, counts0, *, n, steps):
    dt = jnp.result_type(float)

    def chain(key):
        def body(carry, k):
            c, lost_at = carry
            # draw the n tokens of the new corpus from the fitted frequencies (inverse CDF: token i when
            # cum_{i-1} <= n u < cum_i) and count them
            u = jax.random.uniform(jax.random.fold_in(key, k), (n,), dt) * n
            tokens = jnp.searchsorted(jnp.cumsum(c), u, side="right")
            new = jnp.zeros_like(c).at[tokens].add(1.0)
            lost_at = jnp.where((new == 0) & (lost_at > steps), k, lost_at)
            return (new, lost_at), new > 0

        init = (counts0.astype(dt), jnp.full(counts0.shape, steps + 1, jnp.int32))
        (_, lost_at), alive = jax.lax.scan(body, init, jnp.arange(1, steps + 1, dtype=jnp.int32))
        return jnp.concatenate([(counts0 > 0)[None], alive]), lost_at

    return jax.vmap(chain)(keys)


def simulate_categorical(key: jax.Array, counts, generations, n_chains: int, *, chain_offset: int = 0,
                         batch_size: int = 2048) -> CategoricalSimulation:
    """Simulate the categorical ML chain: ``c^(k) ~ Multinomial(n, c^(k-1)/n)`` over all ``K`` symbols.

    Each round draws the ``n`` tokens of the new corpus one by one from the fitted frequencies (inverse CDF)
    and counts them.

    Args:
      key: typed PRNG key; chain ``i`` uses ``fold_in(key, chain_offset + i)``, round ``k`` ``fold_in(chain_key, k)``.
      counts: ``(K,)`` initial counts, ``n = sum(counts)``.
      generations: rounds to report (``>= 0``).
      n_chains: number of independent chains.

    Returns:
      A :class:`CategoricalSimulation`.
    """
    c = np.atleast_1d(np.asarray(counts))
    n = int(c.sum())
    c = _check_counts(c, n)
    g = np.unique(np.atleast_1d(np.asarray(generations, dtype=np.int64)))
    if g.min() < 0:
        raise ValueError(f"generations must be >= 0, got {g.min()}")
    n_chains = _checks.check_int("n_chains", n_chains, minimum=1)
    steps = int(g.max())

    def batch(keys):
        alive, lost = _run_categorical(keys, jnp.asarray(c), n=n, steps=max(steps, 1))
        return np.asarray(alive)[:, g], lost

    alive, lost = map_seed_batches(batch, key, np.arange(chain_offset, chain_offset + n_chains), batch_size)
    return CategoricalSimulation(g, c, alive, lost, n)
