"""Simulator of the recursive Gaussian refit: many chains x thousands of generations in one compiled scan.

A chain is an ``(init, step)`` pair (STYLE.md): :func:`init_state` and :func:`refit_step`. The carry
holds only the exact sufficient statistics of the current fit -- for accumulate, the pool's mean
and scatter matrix are *all* that later fits need, so no sample is ever stored:

* ``mean_shift = mu_g - mu`` (``(d,)``);
* the covariance ``Sigma_g = exp(2 log_scale) shape shape^T`` with ``shape`` lower triangular of unit
  determinant (``log_scale = log det(Sigma_g)^{1/(2d)}``, i.e. ``log sigma_g`` for ``d = 1``). Keeping the
  scale in log form lets ``sigma_g`` collapse by hundreds of orders of magnitude without underflow.

One refit, in the coordinates standardised by the current fit ``(mu_{k-1}, A = chol Sigma_{k-1})``:
draw ``M`` points ``x = mu_{k-1} + A e`` and form ``z = sqrt(M) mean(e)`` and the centred scatter
``W = sum (e - mean e)(e - mean e)^T``. Then (exact; docs/notes/gaussian.md)::

    replace:    Sigma_k = A W A^T / D,                            mu_k = mu_{k-1} + A z/sqrt(M)
    accumulate: Sigma_k = A (a I + W + c z z^T) A^T / D,          mu_k = mu_{k-1} + (M/N) A z/sqrt(M)

with ``a = D(N_{k-1})``, ``c = N_{k-1}/N_k`` (the pool's own scatter is ``a I`` in these coordinates).
``sampler="samples"`` draws the ``M x d`` points; ``sampler="statistics"`` draws ``(z, W)`` from
their exact joint law (independent ``N(0, I)`` and Wishart via the Bartlett decomposition), which
costs ``O(d^2)`` instead of ``O(M d)`` and allows any schedule ``M_k``.

Keys: chain ``i`` uses ``fold_in(key, i)`` and its refit ``k`` uses ``fold_in(chain_key, k)``, so
results do not depend on batching, on the reported generations, or on the number of chains.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ..simulate._driver import PerChainStats
from ._config import RefitConfig

__all__ = [
    "QUANTITIES",
    "RefitSimulation",
    "RefitState",
    "SAMPLERS",
    "StepParams",
    "init_state",
    "refit_step",
    "simulate_refit",
    "step_params",
]

SAMPLERS = ("statistics", "samples")

#: Per-chain quantities the simulator records at every reported generation.
QUANTITIES = ("mean_sq_error", "log_scale", "variance", "w2_sq")


class RefitState(NamedTuple):
    """The fit of one chain (a pytree).

    Attributes:
      mean_shift: ``(d,)`` ``mu_g - mu``.
      log_scale: ``()`` ``log det(Sigma_g)^{1/(2d)}``.
      shape: ``(d, d)`` lower triangular with unit determinant; ``Sigma_g = exp(2 log_scale) shape shape^T``.
    """

    mean_shift: jax.Array
    log_scale: jax.Array
    shape: jax.Array


class StepParams(NamedTuple):
    """Per-refit constants, each ``(G,)`` (index ``k - 1`` for refit ``k``).

    Attributes:
      batch: ``M_k``. divisor: ``D_k``. pool: ``a_k = D(N_{k-1})`` (0 for replace and ``k = 1``).
      pool_ratio: ``c_k = N_{k-1}/N_k``. mean_weight: ``M_k/N_k`` (1 for replace).
    """

    batch: jax.Array
    divisor: jax.Array
    pool: jax.Array
    pool_ratio: jax.Array
    mean_weight: jax.Array


def step_params(config: RefitConfig, dtype=None) -> StepParams:
    """The :class:`StepParams` of ``config``'s schedule, estimator and mode."""
    dtype = dtype or jnp.result_type(float)
    M = config.batch_sizes().astype(np.float64)
    off = 1.0 if config.estimator == "unbiased" else 0.0
    if config.mode == "replace":
        N, N_prev = M, np.zeros_like(M)
    else:
        N = np.cumsum(M)
        N_prev = N - M
    first = N_prev == 0
    pool = np.where(first, 0.0, N_prev - off)
    arrays = (M, N - off, pool, N_prev / N, M / N)
    return StepParams(*(jnp.asarray(a, dtype) for a in arrays))


def init_state(config: RefitConfig, dtype=None) -> RefitState:
    """Generation 0: the truth ``N(mu, sigma^2 I_d)``."""
    dtype = dtype or jnp.result_type(float)
    d = config.dim
    return RefitState(jnp.zeros((d,), dtype), jnp.log(jnp.asarray(config.sigma, dtype)), jnp.eye(d, dtype=dtype))


def _bartlett(chi2: jax.Array, below: jax.Array, d: int) -> jax.Array:
    """Lower-triangular ``L`` with ``L L^T ~ Wishart_d(nu, I)`` (Bartlett): ``L_ii^2 = chi2_{nu - i}``, ``L_ij`` (i > j) ``N(0, 1)``.

    ``chi2``: ``(d,)`` draws of ``chi2_{nu - i}``; ``below``: ``(d (d - 1)/2,)`` standard normals.
    """
    diag = jnp.diag(jnp.sqrt(chi2))
    if d == 1:
        return diag
    rows, cols = np.tril_indices(d, -1)
    return diag.at[rows, cols].set(below)


def refit_step(key: jax.Array, state: RefitState, params: StepParams, mean_noise: jax.Array, *, mode: str,
               sampler: str = "statistics", batch_static: int | None = None, noisy: bool = True) -> RefitState:
    """One refit of one chain; ``params`` holds this refit's scalars (one entry of :class:`StepParams`).

    Args:
      key: this refit's key. state: the current fit. params: scalars ``M, D, a, c, M/N``.
      mean_noise: ``eta`` (extra ``N(0, eta^2 I)`` on the fitted mean; 0 for none).
      mode: ``"replace"``/``"accumulate"`` (static). sampler: ``"statistics"``/``"samples"`` (static).
      batch_static: ``M`` as a Python int (``sampler="samples"`` only; the draw has static shape).
      noisy: draw the mean noise (static; ``False`` skips the draw when ``eta = 0``).

    Returns:
      The new :class:`RefitState`.
    """
    d = state.mean_shift.shape[0]
    dtype = state.mean_shift.dtype
    M, D, a, c, w = params
    # All standard normals of this refit come from one key, the chi-squares (as 2 Gamma(nu/2), which JAX
    # samples ~3x faster than chisquare) from another: two PRNG streams per refit.
    k_norm, k_gamma = jax.random.split(key)
    n_draw = batch_static * d if sampler == "samples" else d
    n_low = d * (d - 1) // 2 if sampler == "statistics" else 0
    normals = jax.random.normal(k_norm, (n_draw + n_low + (d if noisy else 0),), dtype)
    if sampler == "samples":
        e = normals[: n_draw].reshape(batch_static, d)
        e_bar = jnp.mean(e, axis=0)
        centred = e - e_bar
        scatter = centred.T @ centred
        z = jnp.sqrt(M) * e_bar
        if mode == "replace":
            factor = jnp.sqrt(scatter) if d == 1 else jnp.linalg.cholesky(scatter)
    else:
        z = normals[:d]
        chi2 = 2 * jax.random.gamma(k_gamma, (M - 1 - jnp.arange(d, dtype=dtype)) / 2, (d,), dtype)
        L = _bartlett(chi2, normals[d: d + n_low], d)
        if mode == "replace":
            factor = L
        else:
            scatter = L @ L.T
    if mode == "accumulate":
        B = a * jnp.eye(d, dtype=dtype) + scatter + c * jnp.outer(z, z)
        factor = jnp.sqrt(B) if d == 1 else jnp.linalg.cholesky(B)
    scale = jnp.exp(state.log_scale)
    step = scale * (state.shape @ z) * (w / jnp.sqrt(M))
    noise = mean_noise * normals[n_draw + n_low:] if noisy else 0.0
    new_shape = state.shape @ factor
    log_diag = jnp.log(jnp.diagonal(new_shape))
    ell = jnp.mean(log_diag)
    return RefitState(state.mean_shift + step + noise,
                      state.log_scale + ell - 0.5 * jnp.log(D),
                      new_shape * jnp.exp(-ell))


def _observe(state: RefitState, sigma: jax.Array) -> jax.Array:
    """``(4,)``: ``||mu_g - mu||^2``, ``log_scale``, ``tr Sigma_g``, ``W2^2`` to ``N(mu, sigma^2 I)``."""
    d = state.mean_shift.shape[0]
    msq = jnp.sum(state.mean_shift**2)
    scale = jnp.exp(state.log_scale)
    if d == 1:
        sv = jnp.abs(state.shape[0])
    else:
        sv = jnp.linalg.svd(state.shape, compute_uv=False)
    variance = scale**2 * jnp.sum(sv**2)
    # Bures term to a scalar covariance: sum_i (sqrt(eig_i(Sigma_g)) - sigma)^2, term by term (>= 0).
    w2 = msq + jnp.sum((scale * sv - sigma) ** 2)
    return jnp.stack([msq, state.log_scale, variance, w2])


@functools.partial(jax.jit, static_argnames=("mode", "sampler", "batch_static", "dim", "noisy"))
def _run_chains(chain_keys, params, starts, ends, sigma, mean_noise, *, mode, sampler, batch_static, dim, noisy):
    dtype = params.batch.dtype

    def one_chain(chain_key):
        init = RefitState(jnp.zeros((dim,), dtype), jnp.log(sigma), jnp.eye(dim, dtype=dtype))

        def body(i, state):
            p = jax.tree_util.tree_map(lambda x: x[i], params)
            return refit_step(jax.random.fold_in(chain_key, i + 1), state, p, mean_noise, mode=mode,
                              sampler=sampler, batch_static=batch_static, noisy=noisy)

        def segment(state, bounds):
            start, end = bounds
            state = jax.lax.fori_loop(start, end, body, state)
            return state, _observe(state, sigma)

        _, obs = jax.lax.scan(segment, init, (starts, ends))
        return obs  # (n_report, 4)

    return jax.vmap(one_chain)(chain_keys)


@dataclasses.dataclass(frozen=True)
class RefitSimulation(PerChainStats):
    """Per-chain results of :func:`simulate_refit` at the reported generations.

    Attributes:
      generations: ``(R,)`` reported generations (sorted, unique).
      per_chain: quantity name -> ``(chains, R)`` values; names in :data:`QUANTITIES`:
        ``mean_sq_error`` ``||mu_g - mu||^2``; ``log_scale`` ``log det(Sigma_g)^{1/(2d)}``
        (``log sigma_g``); ``variance`` ``tr Sigma_g``; ``w2_sq`` ``W2^2`` to the truth.
      chain_indices: ``(chains,)`` which chains were run (keys ``fold_in(key, index)``).
      config: the :class:`RefitConfig`. sampler: ``"statistics"`` or ``"samples"``.
    """

    generations: np.ndarray
    per_chain: dict[str, np.ndarray]
    chain_indices: np.ndarray
    config: RefitConfig
    sampler: str

    @property
    def n_chains(self) -> int:
        return int(self.chain_indices.shape[0])

    def values(self, name: str) -> np.ndarray:
        """``(chains, R)`` per-chain values of a recorded quantity or of a derived one:
        ``scale`` (``exp(log_scale)``), ``log_det_change`` (``log det Sigma_g - log det Sigma_0``),
        ``marginal_variance`` (``(||mu_g - mu||^2 + tr Sigma_g)/d``)."""
        pc, d = self.per_chain, self.config.dim
        if name in pc:
            return pc[name]
        if name == "scale":
            return np.exp(pc["log_scale"])
        if name == "log_det_change":
            return 2 * d * (pc["log_scale"] - math.log(float(self.config.sigma)))
        if name == "marginal_variance":
            return (pc["mean_sq_error"] + pc["variance"]) / d
        raise KeyError(f"unknown quantity {name!r}; known: {QUANTITIES + ('scale', 'log_det_change', 'marginal_variance')}")


    def var(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(R,)`` sample variance (ddof=1) over chains and its standard error.

        The standard error is ``sqrt((m4 - s^4 (N - 3)/(N - 1))/N)`` with the sample fourth central
        moment ``m4`` (the usual large-sample formula for the variance of ``s^2``).
        """
        x = self.values(name)
        n = x.shape[0]
        if n < 4:
            return x.var(axis=0, ddof=1) if n > 1 else np.full(x.shape[1:], np.nan), np.full(x.shape[1:], np.nan)
        c = x - x.mean(axis=0)
        s2 = (c**2).sum(axis=0) / (n - 1)
        m4 = (c**4).mean(axis=0)
        se = np.sqrt(np.maximum(m4 - s2**2 * (n - 3) / (n - 1), 0.0) / n)
        return s2, se

    def fraction_above(self, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """``P(scale_g > eps)`` over chains and its binomial standard error ``sqrt(p(1-p)/N)``."""
        above = (self.per_chain["log_scale"] > math.log(eps)).astype(np.float64)
        p = above.mean(axis=0)
        return p, np.sqrt(p * (1 - p) / above.shape[0])


def merge_simulations(parts: list[RefitSimulation]) -> RefitSimulation:
    """Concatenate chain batches of one configuration."""
    first = parts[0]
    return dataclasses.replace(
        first,
        per_chain={k: np.concatenate([p.per_chain[k] for p in parts]) for k in first.per_chain},
        chain_indices=np.concatenate([p.chain_indices for p in parts]),
    )


def _check_generations(generations, n_generations: int) -> np.ndarray:
    g = np.asarray(generations)
    if g.ndim == 0:
        g = g[None]
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"generations must be a non-empty 1-D list of integers, got shape {g.shape}")
    if not np.issubdtype(g.dtype, np.integer):
        if np.issubdtype(g.dtype, np.floating) and np.all(g == np.round(g)):
            g = g.astype(np.int64)
        else:
            raise TypeError(f"generations must be integers, got {g.tolist()}")
    if g.min() < 0 or g.max() > n_generations:
        raise ValueError(f"generations must lie in [0, n_generations={n_generations}], got {g.min()}..{g.max()}; "
                         "raise n_generations")
    return np.unique(g)


def simulate_refit(key: jax.Array, config: RefitConfig, generations, n_chains: int, *, sampler: str = "statistics",
                   chain_offset: int = 0, batch_size: int | None = None, dtype=None,
                   progress: Callable[[int, int], None] | None = None) -> RefitSimulation:
    """Simulate ``n_chains`` independent refit chains and record them at ``generations``.

    All refits ``1..max(generations)`` run inside one jitted ``lax.scan`` (over the reported
    generations, with a ``fori_loop`` between them), vmapped over the chains of a batch.

    Args:
      key: a typed PRNG key (``jax.random.key(seed)``).
      config: the :class:`RefitConfig` (validated here).
      generations: generations to record, ``0..config.n_generations``.
      n_chains: number of independent chains (``>= 1``).
      sampler: ``"statistics"`` (exact law of the sufficient statistics; default) or ``"samples"``
        (draws every sample; constant batch size only).
      chain_offset: index of the first chain (its key is ``fold_in(key, chain_offset)``).
      batch_size: chains per compiled call (default: all, up to 4096); the last call is padded to a full
        batch (extra chains are dropped), so one compilation serves every call.
      dtype: float dtype (default: JAX's default float; float64 recommended).
      progress: optional ``callback(chains_done, n_chains)``.

    Returns:
      A :class:`RefitSimulation`.

    Raises:
      ValueError/TypeError: invalid arguments. FloatingPointError: a non-finite value (for ``d > 1``
      the covariance's condition number can exceed the float range after very many refits).

    Example:
      >>> import jax
      >>> from kcollapse.gaussian import RefitConfig, simulate_refit
      >>> cfg = RefitConfig(samples_per_generation=100, n_generations=1000)
      >>> sim = simulate_refit(jax.random.key(0), cfg, [0, 10, 100, 1000], n_chains=256)
      >>> sim.mean("log_det_change").shape
      (4,)
    """
    config.validate()
    gens = _check_generations(generations, config.n_generations)
    n_chains = _checks.check_int("n_chains", n_chains, minimum=1)
    chain_offset = _checks.check_int("chain_offset", chain_offset, minimum=0)
    _checks.check_choice("sampler", sampler, SAMPLERS)
    if sampler == "samples" and config.growth != 0:
        raise ValueError(f"sampler='samples' needs a constant batch size (growth=0), got growth={config.growth}; "
                         "use sampler='statistics'")
    batch_size = min(n_chains, 4096) if batch_size is None else _checks.check_int("batch_size", batch_size, minimum=1)
    dtype = dtype or jnp.result_type(float)
    params = step_params(config, dtype)
    if params.batch.shape[0] == 0:  # no refits at all: pad one (never executed)
        params = StepParams(*(jnp.ones((1,), dtype) for _ in params))
    # pad the report list to a power-of-two bucket (>= 8) with empty segments, so that different report
    # lists share one compilation; the padded observations are dropped
    bucket = max(8, 1 << (len(gens) - 1).bit_length())
    padded = np.concatenate([gens, np.full(bucket - len(gens), gens[-1])])
    ends = jnp.asarray(padded, jnp.int32)
    starts = jnp.concatenate([jnp.zeros((1,), jnp.int32), ends[:-1]])
    sigma = jnp.asarray(config.sigma, dtype)
    eta = jnp.asarray(config.mean_noise, dtype)
    batch_static = config.samples_per_generation if sampler == "samples" else None
    parts = []
    for start in range(0, n_chains, batch_size):
        size = min(batch_size, n_chains - start)
        # every call runs a full batch (one compilation); the chains past n_chains are dropped
        full = np.arange(chain_offset + start, chain_offset + start + batch_size)
        idx = full[:size]
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(full, jnp.uint32))
        obs = np.asarray(_run_chains(keys, params, starts, ends, sigma, eta, mode=config.mode, sampler=sampler,
                                     batch_static=batch_static, dim=config.dim,
                                     noisy=float(config.mean_noise) > 0))[:size, : len(gens)]
        if not np.all(np.isfinite(obs)):
            bad = np.argwhere(~np.isfinite(obs))[0]
            raise FloatingPointError(
                f"non-finite {QUANTITIES[bad[2]]} at generation {gens[bad[1]]} (chain {idx[bad[0]]}); with dim > 1 "
                "the fitted covariance's condition number can overflow float after many refits -- "
                "report fewer generations, use more samples per generation, or dim = 1")
        parts.append(RefitSimulation(gens, {q: obs[:, :, j] for j, q in enumerate(QUANTITIES)}, idx, config, sampler))
        if progress is not None:
            progress(start + size, n_chains)
    return merge_simulations(parts)
