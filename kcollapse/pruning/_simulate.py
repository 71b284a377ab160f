"""Simulator: synthesized labels, pruning, mean-difference classifier; vmapped over seeds and a ``p`` grid.

Two samplers (same law, tested against each other and against the exact formula):

* ``"samples"`` draws every point: ``y = +-1``, ``x = y mu + z``, flips ``y'`` with probability ``p``,
  keeps with probability ``phi``/``psi``, and forms ``w_hat = sum_kept y'_i x_i`` (``O(N d)``).
* ``"statistics"`` draws the sufficient statistics: the kept-correct and kept-wrong counts
  ``(C, W)`` (multinomial, as two binomials) and ``sum_kept y'_i z_i ~ sqrt(K) N(0, I_d)``, so
  ``w_hat = (C - W) mu + sqrt(K) g`` (``O(d)``, any ``N``).

Each seed reports the classifier's exact accuracy given ``w_hat``, ``Phi(w_hat^T mu/||w_hat||)``
(the expectation over an infinite test set; 1/2 if nothing was kept), plus ``K`` and ``W``.
``mu = m e_1`` (the model is rotation invariant). Keys: seed ``i`` uses ``fold_in(key, i)``, the
same for every grid point (common random numbers), so results do not depend on batching.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..simulate._driver import map_seed_batches

__all__ = ["PruningSimulation", "SAMPLERS", "simulate_pruning", "simulate_pruning_seed"]

SAMPLERS = ("statistics", "samples")


def _binomial(key, n, prob):
    """Binomial draw that is exact at ``prob`` in ``{0, 1}`` (JAX's sampler is defined on ``0 < prob < 1``)."""
    dt = prob.dtype
    inner = jnp.clip(prob, 1e-300, 1 - 1e-16)
    draw = jax.random.binomial(key, n, inner, dtype=dt)
    return jnp.where(prob <= 0, 0.0, jnp.where(prob >= 1, n, draw))


def simulate_pruning_seed(key: jax.Array, flip_rate: ArrayLike, keep_correct: ArrayLike, keep_wrong: ArrayLike,
                          signal: ArrayLike, *, n_samples: int, dim: int, sampler: str = "statistics") -> jax.Array:
    """One seed, one problem: ``(3,)`` array ``[accuracy, kept K, kept-wrong W]``.

    Args:
      key: this seed's key. flip_rate: ``p``. keep_correct: ``phi``. keep_wrong: ``psi``. signal: ``||mu||``.
      n_samples: ``N`` (static). dim: ``d`` (static). sampler: ``"statistics"`` or ``"samples"`` (static).
    """
    dt = jnp.result_type(float)
    p, phi, psi, m = (jnp.asarray(a, dt) for a in (flip_rate, keep_correct, keep_wrong, signal))
    if sampler == "samples":
        k_y, k_z, k_f, k_k = jax.random.split(key, 4)
        y = jnp.where(jax.random.bernoulli(k_y, 0.5, (n_samples,)), 1.0, -1.0).astype(dt)
        z = jax.random.normal(k_z, (n_samples, dim), dt)
        x = z.at[:, 0].add(m * y)
        wrong = jax.random.uniform(k_f, (n_samples,), dt) < p
        y_syn = jnp.where(wrong, -y, y)
        keep = jax.random.uniform(k_k, (n_samples,), dt) < jnp.where(wrong, psi, phi)
        w_hat = jnp.sum(jnp.where(keep, y_syn, 0.0)[:, None] * x, axis=0)
        kept = jnp.sum(keep.astype(dt))
        kept_wrong = jnp.sum((keep & wrong).astype(dt))
    elif sampler == "statistics":
        k_c, k_w, k_g = jax.random.split(key, 3)
        n = jnp.asarray(n_samples, dt)
        p_c = (1 - p) * phi
        kept_correct = _binomial(k_c, n, p_c)
        rest = 1 - p_c
        kept_wrong = _binomial(k_w, n - kept_correct, jnp.where(rest > 0, p * psi / jnp.where(rest > 0, rest, 1.0), 0.0))
        kept = kept_correct + kept_wrong
        g = jax.random.normal(k_g, (dim,), dt)
        w_hat = jnp.sqrt(kept) * g
        w_hat = w_hat.at[0].add(m * (kept_correct - kept_wrong))
    else:
        raise ValueError(f"sampler must be one of {SAMPLERS!r}, got {sampler!r}")
    norm = jnp.linalg.norm(w_hat)
    cos = w_hat[0] / jnp.where(norm > 0, norm, 1.0)
    acc = jnp.where(kept > 0, jsp.ndtr(m * cos), 0.5)
    return jnp.stack([acc, kept, kept_wrong])


@functools.partial(jax.jit, static_argnames=("n_samples", "dim", "sampler"))
def _run(keys, flip_rates, keep_correct, keep_wrong, signal, *, n_samples, dim, sampler):
    one = functools.partial(simulate_pruning_seed, n_samples=n_samples, dim=dim, sampler=sampler)
    over_p = jax.vmap(one, in_axes=(None, 0, None, None, None))
    return jax.vmap(over_p, in_axes=(0, None, None, None, None))(keys, flip_rates, keep_correct, keep_wrong, signal)


@dataclasses.dataclass(frozen=True)
class PruningSimulation:
    """Per-seed results of :func:`simulate_pruning`.

    Attributes:
      flip_rates: ``(P,)`` the ``p`` grid. per_seed: ``(seeds, P, 3)`` ``[accuracy, K, W]``.
      n_samples, dim, signal, keep_correct, keep_wrong, sampler: the inputs.
    """

    flip_rates: np.ndarray
    per_seed: np.ndarray
    n_samples: int
    dim: int
    signal: float
    keep_correct: float
    keep_wrong: float
    sampler: str

    @property
    def n_seeds(self) -> int:
        return int(self.per_seed.shape[0])

    def mean(self, column: int = 0) -> np.ndarray:
        """``(P,)`` mean over seeds (column 0 accuracy, 1 kept, 2 kept wrong)."""
        return self.per_seed[..., column].mean(axis=0)

    def sem(self, column: int = 0) -> np.ndarray:
        """``(P,)`` standard error of the mean: ``std(ddof=1)/sqrt(seeds)``."""
        return self.per_seed[..., column].std(axis=0, ddof=1) / np.sqrt(self.n_seeds)


def simulate_pruning(key: jax.Array, n_samples: int, dim: int, signal: float, flip_rates: ArrayLike,
                     keep_correct: float, keep_wrong: float, *, n_seeds: int = 256, sampler: str = "statistics",
                     batch_size: int | None = None, seed_offset: int = 0) -> PruningSimulation:
    """Simulate training on pruned synthesized labels for every ``p`` in ``flip_rates``.

    Args:
      key: base key; seed ``i`` uses ``fold_in(key, seed_offset + i)``.
      n_samples: ``N >= 1`` synthesized points before pruning. dim: ``d >= 1``. signal: ``||mu|| >= 0``.
      flip_rates: ``(P,)`` generator flip rates ``p`` in ``[0, 1]``.
      keep_correct: ``phi`` in ``[0, 1]``. keep_wrong: ``psi`` in ``[0, 1]``.
      n_seeds: independent seeds. sampler: ``"statistics"`` (default) or ``"samples"``.
      batch_size: seeds per compiled call (default: all, or ``~2^24 / (N d P)`` for ``"samples"``).

    Returns:
      :class:`PruningSimulation`.

    Raises:
      ValueError: naming the argument, the value and what is allowed.
    """
    n = _checks.check_int("n_samples", n_samples, minimum=1)
    d = _checks.check_int("dim", dim, minimum=1)
    m = _checks.check_nonneg_float("signal", signal)
    phi = _checks.check_fraction("keep_correct", keep_correct)
    psi = _checks.check_fraction("keep_wrong", keep_wrong)
    seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    _checks.check_choice("sampler", sampler, SAMPLERS)
    ps = _checks.check_finite_array("flip_rates", np.atleast_1d(np.asarray(flip_rates, dtype=np.float64)), ndim=1)
    for p in ps:
        _checks.check_fraction("flip_rates", p)
    if batch_size is None:
        batch_size = seeds if sampler == "statistics" else max(1, min(seeds, (1 << 24) // (n * d * ps.size)))
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    dt = jnp.result_type(float)
    args = (jnp.asarray(ps, dt), jnp.asarray(phi, dt), jnp.asarray(psi, dt), jnp.asarray(m, dt))
    per_seed = map_seed_batches(lambda keys: _run(keys, *args, n_samples=n, dim=d, sampler=sampler),
                                key, np.arange(seed_offset, seed_offset + seeds), batch_size)
    return PruningSimulation(ps, per_seed.astype(np.float64), n, d, m, phi, psi, sampler)
