"""Simulator of the recursive KDE chain, vmapped over chains, generations under ``lax.scan``.

The state is the array of every sample drawn so far (``(G + 1) n`` slots for accumulate/subsample;
the newest ``n`` for replace). Generation ``t``'s training set is the newest batch (replace), the
first ``N_t = (t + 1) n`` slots (accumulate), or ``n`` of them chosen without replacement by the
``n`` smallest of i.i.d. uniform keys (subsample; key ``fold_in(chain_key, 2 t + 1)``, so the subset
that is observed is the one that generates the next batch). Generation ``t + 1`` draws ``n`` points:
uniform training indices plus ``N(0, h^2)`` noise (key ``fold_in(chain_key, 2 t + 2)``).

Recorded per chain at each reported generation: the training mean and spread (the KDE's mean is the
training mean and its variance the spread + ``h^2``) and the test NLL
``-(1/n_test) sum_j log p_t(x_j)`` on ``n_test`` fresh points from the truth (key ``fold_in(chain_key, -t)``...).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ..simulate._driver import PerChainStats, map_seed_batches
from ._config import KDEConfig

__all__ = ["KDESimulation", "simulate_kde"]

QUANTITIES = ("mean_sq_error", "kde_variance", "nll")


@dataclasses.dataclass(frozen=True)
class KDESimulation(PerChainStats):
    """Per-chain results at the reported generations.

    Attributes:
      generations: ``(R,)``. per_chain: name -> ``(chains, R)``: ``mean_sq_error`` ``(m_t - mu)^2``,
      ``kde_variance`` (training spread + ``h^2``), ``nll`` (mean test NLL over ``n_test`` points).
      config: the :class:`KDEConfig`. n_test: test points per chain and generation.
    """

    generations: np.ndarray
    per_chain: dict[str, np.ndarray]
    config: KDEConfig
    n_test: int

    @property
    def n_chains(self) -> int:
        return int(self.per_chain["nll"].shape[0])

    def values(self, name: str) -> np.ndarray:
        if name == "second_moment":
            return self.per_chain["mean_sq_error"] + self.per_chain["kde_variance"]
        return self.per_chain[name]



def _log_kde(x, points, mask, h, count):
    """``log p(x)`` for ``x`` ``(X,)``, KDE on ``points[mask]`` (``count`` of them)."""
    z = (x[:, None] - points[None, :]) / h
    logk = jnp.where(mask[None, :], -0.5 * z**2, -jnp.inf)
    return jax.nn.logsumexp(logk, axis=1) - jnp.log(count) - jnp.log(h * jnp.sqrt(2 * jnp.pi))


@functools.partial(jax.jit, static_argnames=("n", "mode", "G", "n_test"))
def _run(keys, ends, h, sigma, *, n, mode, G, n_test):
    dt = h.dtype
    size = n if mode == "replace" else (G + 1) * n
    slots = jnp.arange(size, dtype=jnp.int32)

    def training(key, pool, t):
        """(points, mask, count) of generation t's training set."""
        if mode == "replace":
            return pool, jnp.ones((n,), bool), jnp.asarray(n, dt)
        valid = slots < (t + 1) * n
        if mode == "accumulate":
            return pool, valid, ((t + 1) * n).astype(dt)
        u = jnp.where(valid, jax.random.uniform(jax.random.fold_in(key, 2 * t + 1), (size,), dt), 2.0)
        _, idx = jax.lax.top_k(-u, n)
        return pool[idx], jnp.ones((n,), bool), jnp.asarray(n, dt)

    def chain(key):
        k0, kt = jax.random.split(key)
        pool = jnp.zeros((size,), dt).at[:n].set(sigma * jax.random.normal(k0, (n,), dt))

        def step(t, pool):
            pts, mask, count = training(key, pool, t)
            kg = jax.random.fold_in(key, 2 * t + 2)
            ki, ke = jax.random.split(kg)
            # uniform index among the valid training points: the valid ones are a prefix (accumulate) or all
            idx = jax.random.randint(ki, (n,), 0, count.astype(jnp.int32) if mode == "accumulate" else n)
            new = pts[idx] + h * jax.random.normal(ke, (n,), dt)
            if mode == "replace":
                return new
            return jax.lax.dynamic_update_slice(pool, new, ((t + 1) * n,))

        def observe(t, pool):
            pts, mask, count = training(key, pool, t)
            m = jnp.sum(jnp.where(mask, pts, 0.0)) / count
            spread = jnp.sum(jnp.where(mask, (pts - m) ** 2, 0.0)) / count
            x = sigma * jax.random.normal(jax.random.fold_in(kt, t), (n_test,), dt)
            nll = -jnp.mean(_log_kde(x, pts, mask, h, count))
            return jnp.stack([m**2, spread + h**2, nll])

        def segment(carry, end):
            pool, t = carry
            pool = jax.lax.fori_loop(t, end, step, pool)
            return (pool, end), observe(end, pool)

        _, obs = jax.lax.scan(segment, (pool, jnp.asarray(0, jnp.int32)), ends)
        return obs

    return jax.vmap(chain)(keys)


def simulate_kde(key: jax.Array, config: KDEConfig, generations, n_chains: int, *, n_test: int = 256,
                 chain_offset: int = 0, batch_size: int = 512) -> KDESimulation:
    """Simulate ``n_chains`` KDE chains (truth ``N(0, sigma^2)``) and record them at ``generations``.

    Args:
      key: typed PRNG key; chain ``i`` uses ``fold_in(key, chain_offset + i)``.
      config: :class:`KDEConfig`. generations: reported generations ``0..G``. n_chains: chains.
      n_test: test points per chain and generation for the NLL estimate.
      batch_size: chains per compiled call.

    Returns:
      A :class:`KDESimulation`.
    """
    config.validate()
    g = np.unique(np.atleast_1d(np.asarray(generations)))
    if not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() > config.n_generations:
        raise ValueError(f"generations must be integers in [0, n_generations={config.n_generations}], got {g.tolist()}")
    n_chains = _checks.check_int("n_chains", n_chains, minimum=2)
    n_test = _checks.check_int("n_test", n_test, minimum=1)
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    dt = jnp.result_type(float)
    h, sigma = jnp.asarray(config.bandwidth, dt), jnp.asarray(config.sigma, dt)
    ends = jnp.asarray(g, jnp.int32)
    obs = map_seed_batches(lambda keys: _run(keys, ends, h, sigma, n=config.samples_per_generation, mode=config.mode,
                                             G=int(g.max()), n_test=n_test),
                           key, np.arange(chain_offset, chain_offset + n_chains), batch_size)
    if not np.all(np.isfinite(obs)):
        raise FloatingPointError("non-finite value in the KDE simulation (test NLL beyond the float range: "
                                 "increase the bandwidth or report fewer generations)")
    return KDESimulation(g, {q: obs[:, :, j] for j, q in enumerate(QUANTITIES)}, config, n_test)
