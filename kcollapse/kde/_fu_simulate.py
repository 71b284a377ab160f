"""Simulator of the self-consuming KDE with real/synthetic mixing (Fu et al. 2402.11778 setting).

One chain keeps every generation's training set in a pool ``(G + 1, n_max, d)``; generations run under
``lax.scan``, chains under ``vmap``. Generation ``i`` (key ``fold_in(chain_key, i)``): each of the
``n_i`` points picks its source (real w.p. ``alpha_i``, generation ``j`` w.p. ``beta_j^i``), a uniform
index in ``[0, n_j)`` and ``N(0, h_j^2 I)`` noise. Recorded per chain and generation:

* ``ise``: the exact squared L2 error of that chain's KDE, ``int (p_hat - p0)^2`` (Gaussian-product
  integrals, ``O(n^2 d)``): ``(1/n^2) sum_{kl} phi_{sqrt 2 h}(X_k - X_l) - (2/n) sum_k N(X_k; 0,
  (sigma^2 + h^2) I) + (4 pi sigma^2)^{-d/2}``;
* ``tv``: an unbiased Monte Carlo estimate of ``TV(p_hat, p0)`` by importance sampling under the
  defensive mixture ``q = (p_hat + p0)/2``, stratified (half the ``K`` test points from ``p0``, half from
  ``p_hat``): ``TV = (1/2) E_q |p_hat - p0|/q = E_q |tanh((log p_hat - log p0)/2)|``; the integrand lies in
  ``[0, 1]``, so the estimate has bounded variance whatever the tails of ``p_hat``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ..simulate._driver import PerChainStats, map_seed_batches
from ._fu import FuKDEConfig, fu_bandwidths, fu_mixing_weights

__all__ = ["FuKDESimulation", "simulate_fu_kde"]

QUANTITIES = ("ise", "tv")


@dataclasses.dataclass(frozen=True)
class FuKDESimulation(PerChainStats):
    """Per-chain results at every generation ``0..G``.

    Attributes:
      generations: ``(G + 1,)``. per_chain: ``ise`` and ``tv`` -> ``(chains, G + 1)``.
      config: the :class:`FuKDEConfig`. n_test: TV test points per chain and generation.
    """

    generations: np.ndarray
    per_chain: dict[str, np.ndarray]
    config: FuKDEConfig
    n_test: int

    @property
    def n_chains(self) -> int:
        return int(self.per_chain["ise"].shape[0])


def _log_kde(x, pts, mask, h, count, d):
    """``log p_hat(x)`` for ``x`` ``(K, d)``; KDE on ``pts[mask]`` ``(n_max, d)``."""
    sq = jnp.sum((x[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
    logk = jnp.where(mask[None, :], -sq / (2 * h**2), -jnp.inf)
    return jax.nn.logsumexp(logk, axis=1) - jnp.log(count) - 0.5 * d * jnp.log(2 * jnp.pi * h**2)


def _chain(key, probs, n_sizes, h, sigma, *, n_max, d, n_test):
    """One chain: ``(G + 1, 2)`` per-generation ``(ise, tv)``."""
    dt = h.dtype
    G1 = probs.shape[0]
    slots = jnp.arange(n_max, dtype=jnp.int32)

    def step(pool, i):
        k = jax.random.fold_in(key, i)
        ks, ki, kn, kr, kt1, kt2, kt3 = jax.random.split(k, 7)
        # source 0 = real, source 1 + j = generation j's KDE
        src = jax.random.categorical(ks, jnp.log(probs[i])[None, :], shape=(n_max,))
        j = jnp.maximum(src - 1, 0)
        idx = jnp.floor(jax.random.uniform(ki, (n_max,), dt) * n_sizes[j].astype(dt)).astype(jnp.int32)
        idx = jnp.minimum(idx, n_sizes[j] - 1)
        synth = pool[j, idx] + h[j][:, None] * jax.random.normal(kn, (n_max, d), dt)
        real = sigma * jax.random.normal(kr, (n_max, d), dt)
        pts = jnp.where((src == 0)[:, None], real, synth)
        n_i = n_sizes[i]
        mask = slots < n_i
        pts = jnp.where(mask[:, None], pts, 0.0)
        pool = pool.at[i].set(pts)
        hi, cnt = h[i], n_i.astype(dt)
        # exact ISE
        diff = jnp.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
        pair = jnp.where(mask[:, None] & mask[None, :], jnp.exp(-diff / (4 * hi**2)), 0.0)
        int_sq = jnp.sum(pair) / cnt**2 * (4 * jnp.pi * hi**2) ** (-d / 2)
        v = sigma**2 + hi**2
        cross = jnp.sum(jnp.where(mask, jnp.exp(-jnp.sum(pts**2, axis=-1) / (2 * v)), 0.0)) / cnt
        cross = cross * (2 * jnp.pi * v) ** (-d / 2)
        ise = int_sq - 2 * cross + (4 * jnp.pi * sigma**2) ** (-d / 2)
        # TV by stratified defensive importance sampling
        half = n_test // 2
        x0 = sigma * jax.random.normal(kt1, (half, d), dt)
        pick = jnp.floor(jax.random.uniform(kt2, (half,), dt) * cnt).astype(jnp.int32)
        x1 = pts[jnp.minimum(pick, n_i - 1)] + hi * jax.random.normal(kt3, (half, d), dt)
        x = jnp.concatenate([x0, x1])
        lp = _log_kde(x, pts, mask, hi, cnt, d)
        l0 = -jnp.sum(x**2, axis=-1) / (2 * sigma**2) - 0.5 * d * jnp.log(2 * jnp.pi * sigma**2)
        tv = jnp.mean(jnp.abs(jnp.tanh((lp - l0) / 2)))
        return pool, jnp.stack([ise, tv])

    pool = jnp.zeros((G1, n_max, d), dt)
    _, obs = jax.lax.scan(step, pool, jnp.arange(G1))
    return obs


@functools.partial(jax.jit, static_argnames=("n_max", "d", "n_test"))
def _run(keys, probs, n_sizes, h, sigma, *, n_max, d, n_test):
    return jax.vmap(lambda k: _chain(k, probs, n_sizes, h, sigma, n_max=n_max, d=d, n_test=n_test))(keys)


def simulate_fu_kde(key: jax.Array, config: FuKDEConfig, n_chains: int, *, n_test: int = 256,
                    chain_offset: int = 0, batch_size: int | None = None) -> FuKDESimulation:
    """Simulate ``n_chains`` self-consuming KDE chains and record the ISE and TV at every generation.

    Args:
      key: typed PRNG key; chain ``c`` uses ``fold_in(key, chain_offset + c)`` (batching-invariant).
      config: :class:`FuKDEConfig`. n_chains: chains (``>= 2``).
      n_test: TV test points per chain and generation (even, ``>= 2``).
      batch_size: chains per compiled call (default: from a ~256 MB budget for the ``n_max^2`` pair matrix).

    Returns:
      A :class:`FuKDESimulation`.

    Raises:
      FloatingPointError: a non-finite value (bandwidth or sigma beyond the float range).

    Examples:
      >>> import jax
      >>> from kcollapse import kde
      >>> cfg = kde.FuKDEConfig(samples=20, n_generations=3, real_fraction=0.5, bandwidth=0.5)
      >>> sim = kde.simulate_fu_kde(jax.random.key(0), cfg, 64)
      >>> sim.mean("ise").shape
      (4,)
    """
    config.validate()
    n_chains = _checks.check_int("n_chains", n_chains, minimum=2)
    n_test = _checks.check_int("n_test", n_test, minimum=2)
    if n_test % 2:
        raise ValueError(f"n_test must be even (half the test points come from p0, half from p_hat), got {n_test}")
    sizes = config.sample_sizes
    n_max = int(sizes.max())
    if batch_size is None:
        per_chain = 8.0 * (n_max * n_max * (config.dim + 2) + n_test * n_max * (config.dim + 1))
        batch_size = int(max(1, min(512, 256e6 // per_chain)))
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    alpha, beta = fu_mixing_weights(config)
    probs = np.concatenate([alpha[:, None], beta], axis=1)  # (G + 1, G + 2)
    dt = jnp.result_type(float)
    args = (jnp.asarray(probs, dt), jnp.asarray(sizes, jnp.int32), jnp.asarray(fu_bandwidths(config), dt),
            jnp.asarray(config.sigma, dt))
    obs = map_seed_batches(lambda keys: _run(keys, *args, n_max=n_max, d=config.dim, n_test=n_test),
                           key, np.arange(chain_offset, chain_offset + n_chains), batch_size)
    if not np.all(np.isfinite(obs)):
        raise FloatingPointError("non-finite value in the Fu KDE simulation (bandwidth or sigma out of range)")
    gens = np.arange(config.n_generations + 1)
    return FuKDESimulation(gens, {q: obs[:, :, j] for j, q in enumerate(QUANTITIES)}, config, n_test)
