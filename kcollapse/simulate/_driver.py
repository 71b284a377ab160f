"""The top-level driver: seeds vmapped (and chunked under a memory budget), results gathered."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum
from ._chain import run_seed
from ._config import ChainConfig

__all__ = ["SimulationResult", "merge_results", "simulate_chain", "seed_keys"]

#: Default memory budget for one vmapped batch of seeds (bytes).
DEFAULT_MEMORY_BUDGET = 1 << 30


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """Per-seed results of a chain simulation, with means and standard errors.

    Attributes:
      generations: ``(n_max + 1,)`` the generations ``n = 0..n_max``.
      ridges: ``(n_ridges,)`` downstream ridge values.
      per_seed: ``(seeds, n_max + 1, n_ridges)`` downstream test errors.
      generator_per_seed: ``(seeds, n_max + 1)`` generator errors ``||w_n - w0||_Sigma^2``.
      seed_indices: ``(seeds,)`` which seed indices were run (keys are ``fold_in(key, index)``).
      generator_fallbacks: total generator Cholesky factorisations redone by eigh.
      per_mode_mean: ``(n_max + 1, n_ridges, d)`` mean per-eigenmode error (Monte Carlo), or ``None``.
      config: the :class:`ChainConfig`.
      spectrum: the :class:`~kcollapse.spectra.Spectrum`.
      estimator: ``"conditional"`` (``per_seed`` holds each seed's expected error over all label
        noise given its designs) or ``"monte-carlo"`` (the error of the sampled run).
      mc_per_seed, generator_mc_per_seed: with ``estimator="conditional"``, the plain Monte Carlo
        errors of the same draws (``None`` otherwise); see :meth:`estimator_agreement`.
    """

    generations: np.ndarray
    ridges: np.ndarray
    per_seed: np.ndarray
    generator_per_seed: np.ndarray
    seed_indices: np.ndarray
    generator_fallbacks: int
    config: ChainConfig
    spectrum: Spectrum
    per_mode_mean: np.ndarray | None = None
    estimator: str = "monte-carlo"
    mc_per_seed: np.ndarray | None = None
    generator_mc_per_seed: np.ndarray | None = None

    def estimator_agreement(self) -> np.ndarray:
        """Paired z-scores ``mean(mc - conditional) / sem(mc - conditional)``, ``(n_max + 1, n_ridges)``.

        The conditional risk is the expectation of the Monte Carlo error given the designs, so the
        paired difference has mean exactly 0: these z-scores are ~N(0, 1) when both are right.
        """
        if self.mc_per_seed is None:
            raise ValueError("estimator_agreement needs estimator='conditional' (it compares it with Monte Carlo)")
        diff = self.mc_per_seed - self.per_seed
        sem = _sem(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sem > 0, diff.mean(axis=0) / sem, 0.0)

    @property
    def n_seeds(self) -> int:
        return int(self.per_seed.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """``(n_max + 1, n_ridges)`` mean test error over seeds."""
        return self.per_seed.mean(axis=0)

    @property
    def sem(self) -> np.ndarray:
        """``(n_max + 1, n_ridges)`` standard error of the mean (``std(ddof=1)/sqrt(seeds)``; NaN for 1 seed)."""
        return _sem(self.per_seed)

    @property
    def generator_mean(self) -> np.ndarray:
        return self.generator_per_seed.mean(axis=0)

    @property
    def generator_sem(self) -> np.ndarray:
        return _sem(self.generator_per_seed)


def _sem(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    if n < 2:
        return np.full(x.shape[1:], np.nan)
    return x.std(axis=0, ddof=1) / math.sqrt(n)


class PerChainStats:
    """``mean(name)`` / ``sem(name)`` over the leading (chain) axis of ``values(name)``.

    For simulation results holding a ``per_chain`` dict of ``(chains, ...)`` arrays; a subclass overrides
    ``values`` to add derived quantities. The SEM is ``std(ddof=1)/sqrt(chains)`` (NaN for one chain).
    """

    def values(self, name: str) -> np.ndarray:
        return self.per_chain[name]

    def mean(self, name: str) -> np.ndarray:
        """Mean over chains."""
        return self.values(name).mean(axis=0)

    def sem(self, name: str) -> np.ndarray:
        """Standard error of the mean over chains."""
        return _sem(self.values(name))


def padded_seed_batches(indices: np.ndarray, batch_size: int):
    """Yield ``(chunk, padded)`` for consecutive batches of the seed ``indices``.

    ``padded`` repeats the chunk's last seed up to ``batch_size`` so every compiled call has the same
    shape; keep the first ``chunk.size`` results.
    """
    for start in range(0, indices.size, batch_size):
        chunk = indices[start : start + batch_size]
        pad = batch_size - chunk.size
        yield chunk, (np.concatenate([chunk, np.full(pad, chunk[-1])]) if pad else chunk)


def map_seed_batches(fn, key: jax.Array, indices: ArrayLike, batch_size: int):
    """Run ``fn`` on batches of the per-seed keys ``fold_in(key, i)``, ``i`` in ``indices``; stack the results.

    ``fn`` maps ``(b,)`` keys to a pytree of arrays whose leading axis is the seed. Every call gets the same
    ``b = min(batch_size, len(indices))`` (the last batch is padded, the padding rows dropped), so there is one
    compiled shape, and a seed's result does not depend on the batching. Returns the pytree of NumPy arrays
    with all seeds stacked in the order of ``indices``.
    """
    indices = np.asarray(indices)
    parts = []
    for chunk, padded in padded_seed_batches(indices, min(int(batch_size), indices.size)):
        out = fn(seed_keys(key, padded))
        parts.append(jax.tree.map(lambda a, n=chunk.size: np.asarray(a)[:n], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *parts)


def seed_keys(key: jax.Array, seed_indices: ArrayLike) -> jax.Array:
    """Per-seed keys ``fold_in(key, i)``: a seed's result does not depend on how seeds are batched."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(seed_indices, dtype=jnp.uint32))


@functools.partial(jax.jit, static_argnames=("per_mode", "generator_solver", "sampler", "estimator"))
def _batch(keys: jax.Array, spectrum: Spectrum, config: ChainConfig, ridges: jax.Array, per_mode: bool = False,
           generator_solver: str = "auto", sampler: str = "direct", estimator: str = "monte-carlo"):
    run = functools.partial(run_seed, per_mode=per_mode, generator_solver=generator_solver, sampler=sampler,
                            estimator=estimator)
    return jax.vmap(run, in_axes=(0, None, None, None))(keys, spectrum, config, ridges)


@functools.lru_cache(maxsize=8)
def _seed_mesh(n_devices: int) -> jax.sharding.Mesh:
    """A 1-D mesh over this process's first ``n_devices`` devices, axis ``"seeds"``."""
    return jax.sharding.Mesh(np.array(jax.local_devices()[:n_devices]), ("seeds",))


@functools.partial(jax.jit, static_argnames=("per_mode", "generator_solver", "sampler", "estimator", "mesh"))
def _sharded_batch(keys: jax.Array, spectrum: Spectrum, config: ChainConfig, ridges: jax.Array, per_mode: bool,
                   generator_solver: str, sampler: str, estimator: str, mesh: jax.sharding.Mesh):
    """:func:`_batch` with the seeds split over the devices of ``mesh`` (no communication: each
    device runs its seeds' vmapped chains, so a seed's numbers do not depend on the device count)."""
    P = jax.sharding.PartitionSpec
    run = functools.partial(run_seed, per_mode=per_mode, generator_solver=generator_solver, sampler=sampler,
                            estimator=estimator)
    local = lambda k, s, c, r: jax.vmap(run, in_axes=(0, None, None, None))(k, s, c, r)  # noqa: E731
    # check_vma=False: the per-seed program has no collectives; the replication checker would only
    # reject lax.cond branches that differ in which values vary across devices.
    return jax.shard_map(local, mesh=mesh, in_specs=(P("seeds"), P(), P(), P()), out_specs=P("seeds"), check_vma=False)(
        keys, spectrum, config, ridges)


def _run_batch(keys, spectrum, config, ridges, per_mode, generator_solver, sampler, estimator, n_devices):
    if n_devices > 1:  # the caller pads every batch to a multiple of n_devices
        mesh = _seed_mesh(n_devices)
        keys = jax.device_put(keys, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds")))
        return _sharded_batch(keys, spectrum, config, ridges, per_mode, generator_solver, sampler, estimator, mesh)
    return _batch(keys, spectrum, config, ridges, per_mode, generator_solver, sampler, estimator)


def _bytes_per_seed(d: int, config: ChainConfig, n_ridges: int, per_mode: bool, itemsize: int,
                    estimator: str = "monte-carlo", sampler: str = "direct") -> int:
    T0, T, n = config.samples_per_generation, config.downstream_samples, config.n_generations
    # a design is drawn row by row (T x d) unless the Wishart sampler draws its d x d factor instead
    # (only where it applies: T >= d and not mix; simulate/_chain.py)
    wishart = sampler == "wishart" and config.mode != "mix"
    gen_words = 2 * d * d if wishart and T0 >= d else 2 * T0 * d
    down_words = 2 * d * d if wishart and T >= d else 2 * T * d
    words = gen_words + down_words + 6 * d * d + 3 * (n + 1) * n_ridges * d
    if config.mode == "accumulate":
        words += 3 * (n + 1) * d * d
    if estimator == "conditional":  # covariance history and its rotated copy (accumulate: also K_n)
        words += (3 if config.mode != "accumulate" else 6) * (n + 1) * d * d
    if per_mode:
        words += (n + 1) * n_ridges * d
    return int(words * itemsize)


def _balanced(n_seeds: int, max_batch: int) -> int:
    """The smallest batch size that needs as few batches as ``max_batch`` does (less padding)."""
    n_batches = -(-n_seeds // max(1, min(max_batch, n_seeds)))
    return -(-n_seeds // n_batches)


def auto_batch_size(spectrum: Spectrum, config: ChainConfig, n_ridges: int, n_seeds: int, memory_budget: int,
                    per_mode: bool = False, max_batch: int | None = None, estimator: str = "conditional",
                    sampler: str = "direct") -> int:
    """Seeds per compiled call: as many as fit ``memory_budget`` (and ``max_batch``), balanced."""
    per_seed = _bytes_per_seed(spectrum.d, config, n_ridges, per_mode, jnp.dtype(spectrum.dtype).itemsize, estimator,
                               sampler)
    fit = max(1, memory_budget // max(per_seed, 1))
    return _balanced(n_seeds, fit if max_batch is None else min(fit, max_batch))


def simulate_chain(
    key: jax.Array,
    spectrum: Spectrum,
    config: ChainConfig,
    ridges: ArrayLike = (0.0,),
    n_seeds: int = 32,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    per_mode: bool = False,
    sampler: str = "auto",
    estimator: str = "auto",
    devices: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> SimulationResult:
    """Simulate the model-collapse chain for ``n_seeds`` independent seeds.

    Every generation ``n = 0..config.n_generations`` and every ridge value come out of one compiled
    call per batch of seeds; seeds are ``vmap``-ed, and split into batches that fit
    ``memory_budget`` (results do not depend on the batching).

    Args:
      key: a JAX PRNG key (``jax.random.key(seed)``). Seed ``i`` uses ``fold_in(key, i)``.
      spectrum: covariance spectrum and teacher (its dtype is the compute dtype).
      config: the chain, see :class:`ChainConfig`.
      ridges: downstream ridge values ``>= 0`` (0 = min-norm least squares).
      n_seeds: number of independent seeds (``>= 1``; ``>= 2`` for a standard error).
      seed_offset: first seed index (run seeds ``seed_offset .. seed_offset + n_seeds - 1``).
      batch_size: seeds per compiled call (default: as many as fit ``memory_budget``).
      memory_budget: bytes one batch may use (approximate working set).
      per_mode: also return the mean per-eigenmode error ``lambda_i (w_i - c_i)^2``.
      sampler: ``"auto"`` (``"wishart"`` when every eigenvalue is ``> 0``, else ``"direct"``),
        ``"wishart"`` or ``"direct"``. ``"wishart"`` draws each training set's sufficient
        statistics ``(X^T X, X^T eps)`` exactly in distribution by the Bartlett decomposition
        (``O(d^2)`` random numbers, and an OLS generator step in ``O(d^2)`` flops) wherever that
        is exact (sets of ``>= d`` rows, not ``mode="mix"``); ``"direct"`` draws every row. Both
        give the same distribution of results; for a given key the numbers differ.
      estimator: ``"auto"`` (= ``"conditional"``), ``"conditional"`` or ``"monte-carlo"``.
        ``"conditional"`` reports, per seed, the expected error over *all* label noise given the
        sampled designs — exact, because the chain is linear in the noise — which has the same
        mean as the Monte Carlo error and a much smaller variance (fewer seeds for a given SEM);
        the Monte Carlo errors of the same draws are kept in ``mc_per_seed``.
        ``"monte-carlo"`` reports the error of the sampled run only (cheaper per seed).
      devices: how many of this process's devices share the seeds (default: all of
        ``jax.local_devices()``). With more than one, every batch is split over a 1-D device mesh
        with ``jax.shard_map`` (batches are rounded up to a multiple of the device count); a
        seed's result is the same on 1 or many devices. ``memory_budget`` is per device.
        Across hosts, see :func:`kcollapse.distributed.simulate_chain`.
      progress: optional callback ``progress(done_seeds, total_seeds)`` called after each batch.

    Returns:
      A :class:`SimulationResult`.

    Raises:
      ValueError / TypeError: invalid configuration, spectrum or ridge values.
      FloatingPointError: a non-finite test error came out (it is never returned silently).

    Examples:
      >>> import jax, kcollapse as kc
      >>> s = kc.spectra.isotropic(20)
      >>> cfg = kc.ChainConfig(samples_per_generation=40, downstream_samples=60, n_generations=2,
      ...                      generator_noise=0.2, label_noise=0.1)
      >>> res = kc.simulate_chain(jax.random.key(0), s, cfg, ridges=[0.0, 0.1], n_seeds=8)
      >>> res.mean.shape
      (3, 2)
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    if not isinstance(config, ChainConfig):
        raise TypeError(f"config must be a kcollapse.ChainConfig, got {type(config).__name__}")
    config.validate()
    _checks.check_nonneg_array("spectrum.eigenvalues", spectrum.eigenvalues, ndim=1)
    _checks.check_finite_array("spectrum.coefficients", spectrum.coefficients, ndim=1, length=spectrum.d)
    ridges_np = _checks.check_nonneg_array("ridges", np.atleast_1d(ridges), ndim=1).astype(np.float64)
    if ridges_np.size == 0:
        raise ValueError("ridges must contain at least one value")
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    seed_offset = _checks.check_int("seed_offset", seed_offset, minimum=0)
    _checks.check_choice("sampler", sampler, ("auto", "wishart", "direct"))
    _checks.check_choice("estimator", estimator, ("auto", "conditional", "monte-carlo"))
    if estimator == "auto":
        estimator = "conditional"
    positive = bool(np.all(np.asarray(spectrum.eigenvalues) > 0))
    if sampler == "wishart" and not positive:
        raise ValueError("sampler='wishart' needs every eigenvalue > 0 (Sigma^{1/2} must be invertible); use sampler='direct'")
    if sampler == "auto":
        sampler = "wishart" if positive else "direct"
    dt = spectrum.dtype
    d = spectrum.d
    n_local = jax.local_device_count()
    n_devices = n_local if devices is None else _checks.check_int("devices", devices, minimum=1)
    if n_devices > n_local:
        raise ValueError(f"devices={n_devices} but this process has {n_local} device(s); use devices <= {n_local}")
    per_seed_bytes = _bytes_per_seed(d, config, ridges_np.size, per_mode, jnp.dtype(dt).itemsize, estimator, sampler)
    if batch_size is None:
        per_device = -(-n_seeds // n_devices)
        batch_size = n_devices * auto_batch_size(spectrum, config, ridges_np.size, per_device, memory_budget, per_mode,
                                                 estimator=estimator, sampler=sampler)
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    n_devices = min(n_devices, batch_size)
    batch_size = -(-batch_size // n_devices) * n_devices  # every device gets the same number of seeds
    if per_seed_bytes > memory_budget:
        raise MemoryError(
            f"one seed needs about {per_seed_bytes / 2**20:.0f} MiB, more than memory_budget="
            f"{memory_budget / 2**20:.0f} MiB; raise memory_budget or reduce d, T0, T or n_generations"
        )

    ridges_j = jnp.asarray(ridges_np, dt)
    indices = np.arange(seed_offset, seed_offset + n_seeds)
    outs = []
    for chunk, padded in padded_seed_batches(indices, batch_size):
        out = _run_batch(seed_keys(key, padded), spectrum, config, ridges_j, per_mode, "auto", sampler, estimator,
                         n_devices)
        out = jax.tree_util.tree_map(lambda a: np.array(a)[: chunk.size], out)
        failed = np.flatnonzero(out.generator_fallbacks > 0)
        if failed.size:  # rerun seeds whose generator Cholesky was not finite with the eigh path
            redo = _batch(seed_keys(key, chunk[failed]), spectrum, config, ridges_j, per_mode, "eigh", sampler, estimator)
            redo = jax.tree_util.tree_map(np.asarray, redo)
            for name in ("test_error", "generator_error", "per_mode", "mc_test_error", "mc_generator_error"):
                getattr(out, name)[failed] = getattr(redo, name)
        outs.append(out)
        if progress is not None:
            progress(int(chunk[-1]) - seed_offset + 1, n_seeds)

    per_seed = np.concatenate([o.test_error for o in outs])
    gen = np.concatenate([o.generator_error for o in outs])
    fallbacks = int(sum(int(o.generator_fallbacks.sum()) for o in outs))
    conditional = estimator == "conditional"
    mc = np.concatenate([o.mc_test_error for o in outs]) if conditional else None
    gen_mc = np.concatenate([o.mc_generator_error for o in outs]) if conditional else None
    per_mode_mean = None
    if per_mode:
        per_mode_mean = np.concatenate([o.per_mode for o in outs]).mean(axis=0)
    bad = ~np.isfinite(per_seed) | (~np.isfinite(mc) if conditional else False)
    if bad.any():
        n_bad, (s, n, r) = int(bad.sum()), np.argwhere(bad)[0]
        raise FloatingPointError(
            f"{n_bad} non-finite test errors (first at seed {indices[s]}, n={n}, ridge={ridges_np[r]:g}); "
            f"the solve is numerically singular in {jnp.dtype(dt).name}: use float64, a ridge > 0, "
            f"or sample sizes away from d"
        )
    return SimulationResult(
        generations=np.arange(config.n_generations + 1),
        ridges=ridges_np.astype(jnp.dtype(dt)),
        per_seed=per_seed,
        generator_per_seed=gen,
        seed_indices=indices,
        generator_fallbacks=fallbacks,
        config=config,
        spectrum=spectrum,
        per_mode_mean=per_mode_mean,
        estimator=estimator,
        mc_per_seed=mc,
        generator_mc_per_seed=gen_mc,
    )


def merge_results(results: list[SimulationResult]) -> SimulationResult:
    """Concatenate results of the same problem run on disjoint seed ranges (e.g. chunked runs).

    Raises:
      ValueError: if the results are empty or were run with different configs or ridge grids.
    """
    if not results:
        raise ValueError("results must contain at least one SimulationResult")
    first = results[0]
    for r in results[1:]:
        if r.config != first.config or not np.array_equal(r.ridges, first.ridges) or r.estimator != first.estimator:
            raise ValueError("results to merge must share config, ridges and estimator")
    pm = None
    if first.per_mode_mean is not None:
        w = np.array([r.n_seeds for r in results], dtype=float)
        pm = sum(wi * r.per_mode_mean for wi, r in zip(w, results)) / w.sum()
    return dataclasses.replace(
        first,
        per_seed=np.concatenate([r.per_seed for r in results]),
        generator_per_seed=np.concatenate([r.generator_per_seed for r in results]),
        seed_indices=np.concatenate([r.seed_indices for r in results]),
        generator_fallbacks=sum(r.generator_fallbacks for r in results),
        per_mode_mean=pm,
        mc_per_seed=None if first.mc_per_seed is None else np.concatenate([r.mc_per_seed for r in results]),
        generator_mc_per_seed=(None if first.generator_mc_per_seed is None
                               else np.concatenate([r.generator_mc_per_seed for r in results])),
    )
