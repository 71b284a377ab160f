"""Simulator of the self-consuming diffusion chain: train -> sample -> mix with fresh real data, under ``lax.scan``.

One chain is a pure function of its key (``fold_in(key, chain_offset + c)``, so results do not depend
on batching); chains run under ``vmap``, generations under ``lax.scan``. Generation ``i`` uses
``k_i = fold_in(chain_key, i + 1)``: ``fold_in(k_i, 0)`` for its fresh real points,
``fold_in(k_i, 1)`` for training (``mlp``), ``fold_in(k_i, 2)`` for sampling; the ``mlp``'s initial
parameters come from ``fold_in(chain_key, 0)`` and each generation warm-starts from the previous one
(a fresh Adam state per generation).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ..simulate._driver import PerChainStats, map_seed_batches
from ._config import DiffusionConfig
from ._metrics import gaussian_fit_metrics
from ._sampler import reverse_sample
from ._score import forward_coefficients, mlp_init, mlp_score, train_mlp

__all__ = ["DiffusionSimulation", "simulate_diffusion"]


@dataclasses.dataclass(frozen=True)
class DiffusionSimulation(PerChainStats):
    """Per-chain results at generations ``0..G`` (the Gaussian fit of each generation's ``n`` samples).

    Attributes:
      per_chain: ``mean_sq_error``, ``trace_cov``, ``w2_sq``, (``d = 1``) ``tv``, (``mlp``) ``final_loss``
        -> ``(chains, G + 1)`` NumPy arrays. config: the :class:`DiffusionConfig`.
    """

    per_chain: dict[str, np.ndarray]
    config: DiffusionConfig

    @property
    def n_chains(self) -> int:
        return int(self.per_chain["mean_sq_error"].shape[0])


def _linear_model(x):
    n = x.shape[0]
    m = x.mean(axis=0)
    xc = x - m
    lam, U = jnp.linalg.eigh(xc.T @ xc / n)
    return m, jnp.clip(lam, 0.0), U


def _generate(cfg: DiffusionConfig, key, x, params):
    """Fit generation's score on ``x`` ``(n, d)`` and draw ``n`` samples; returns ``(samples, params, loss)``."""
    n, d = x.shape
    dt = x.dtype
    k_train, k_sample = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    if cfg.score == "linear":
        m, lam, U = _linear_model(x)
        if cfg.sampler == "exact":
            z = jax.random.normal(k_sample, (n, d), dt)
            return m + (z * jnp.sqrt(lam)) @ U.T, params, jnp.zeros((), dt)

        def score(y, t):  # the fitted linear score, in S's eigenbasis (kcollapse.diffusion.linear_score_fit)
            a, s = forward_coefficients(t)
            return -(((y - a * m) @ U) / (a**2 * lam + s**2)) @ U.T

        y = reverse_sample(k_sample, score, (n, d), cfg.t_min, cfg.t_max, cfg.sample_steps, dt)
        return y, params, jnp.zeros((), dt)
    params, losses = train_mlp(k_train, params, x, steps=cfg.train_steps, learning_rate=cfg.learning_rate,
                               t_min=cfg.t_min, t_max=cfg.t_max)
    y = reverse_sample(k_sample, lambda y, t: mlp_score(params, y, t), (n, d), cfg.t_min, cfg.t_max,
                       cfg.sample_steps, dt)
    tail = max(1, cfg.train_steps // 10)
    return y, params, losses[-tail:].mean()


def chain(key: jax.Array, cfg: DiffusionConfig) -> dict[str, jax.Array]:
    """One chain: the metrics of generations ``0..G``, each ``(G + 1,)`` (single-problem; vmap over keys)."""
    n, d = cfg.samples, cfg.dim
    dt = jnp.result_type(float)
    sigma = jnp.asarray(cfg.sigma, dt)
    n_real = jnp.floor(jnp.asarray(cfg.real_fraction, dt) * n + 0.5)
    mask = (jnp.arange(n, dtype=dt) < n_real)[:, None]
    params = mlp_init(jax.random.fold_in(key, 0), d, cfg.width, dt)
    x0 = sigma * jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 1), 0), (n, d), dt)

    def step(carry, i):
        x, p = carry
        y, p, loss = _generate(cfg, jax.random.fold_in(key, i + 1), x, p)
        real = sigma * jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i + 2), 0), (n, d), dt)
        info = gaussian_fit_metrics(y, sigma)
        if cfg.score == "mlp":
            info["final_loss"] = loss
        info["finite"] = jnp.all(jnp.isfinite(y))
        return (jnp.where(mask, real, y), p), info

    _, info = jax.lax.scan(step, (x0, params), jnp.arange(cfg.n_generations + 1))
    return info


@functools.partial(jax.jit, static_argnames=())
def _run(keys, cfg):
    return jax.vmap(chain, in_axes=(0, None))(keys, cfg)


def simulate_diffusion(key: jax.Array, config: DiffusionConfig, n_chains: int, *, chain_offset: int = 0,
                       batch_size: int | None = None) -> DiffusionSimulation:
    """Run ``n_chains`` independent chains (chain ``c`` uses ``fold_in(key, chain_offset + c)``).

    Args:
      key: typed PRNG key. config: validated here. n_chains: ``>= 1``.
      chain_offset: index of the first chain (for splitting a run). batch_size: chains per compiled
        call (default: all); results do not depend on it.

    Returns:
      :class:`DiffusionSimulation`.

    Raises:
      FloatingPointError: a sampler produced non-finite samples (e.g. a diverged network).
    """
    config = config.validate()
    n_chains = _checks.check_int("n_chains", n_chains, minimum=1)
    chain_offset = _checks.check_int("chain_offset", chain_offset, minimum=0)
    bs = n_chains if batch_size is None else _checks.check_int("batch_size", batch_size, minimum=1)
    out = map_seed_batches(lambda keys: _run(keys, config), key, np.arange(chain_offset, chain_offset + n_chains), bs)
    finite = out.pop("finite")
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise FloatingPointError(f"non-finite samples in chain {chain_offset + int(bad[0])} at generation {int(bad[1])} "
                                 "(the score diverged); lower learning_rate or raise sample_steps")
    return DiffusionSimulation(per_chain=out, config=config)
