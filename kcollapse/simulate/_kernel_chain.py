"""The model-collapse chain in dual (kernel) form, on a pool of real inputs.

Same protocol as the primal simulator (:class:`~kcollapse.ChainConfig`: replace / accumulate /
mix, fresh or fixed generator designs, the same per-seed key schedule), with ``x -> psi(x)`` a
kernel's feature map, so every fit is kernel ridge regression
``f = K(., X) (K + ridge T I)^{-1} y`` (shared/THEORY.md §2.6):

* ``f_0 = f0``, the clean target on the pool (e.g. ``label mod 2`` of real digits).
* Generation ``m = 1..n`` draws ``T0`` inputs from the pool (iid with replacement by default, i.e.
  from the pool's empirical distribution; or without replacement), labels them
  ``f_{m-1}(x) + N(0, sigma0^2)`` (``mix``: the first ``round(p T0)`` rows; the others get the clean
  ``f0(x)``), and fits KRR with ``generator_ridge`` on them (``accumulate``: on every set drawn so
  far, each keeping its labels, ``m T0`` rows).
* The downstream model draws ``T`` inputs, labels them ``f_n(x) + N(0, sigma^2)`` (same mix rule;
  ``accumulate``: together with the ``n`` generator sets) and fits KRR for every ridge value.
* Test error: ``mean_{x in test} (f_hat(x) - f0(x))^2`` on a held-out set, or on the whole pool
  (the "population" protocol: then it is exactly the excess risk on the pool's distribution, the
  distribution whose spectrum :func:`kcollapse.spectra.empirical` computes).

As in the primal simulator the downstream design and noise of a seed are shared by every ``n``
and every ridge (common random numbers); every ridge value comes from one ``eigh`` of the
downstream Gram (``n_max + 1`` of them under ``accumulate``, whose Gram differs per ``n``).
Generations run under ``lax.scan``; seeds are ``vmap``-ed by :func:`simulate_kernel_chain`.

Key schedule (so an oracle can replay a run): seed ``i`` uses ``fold_in(key, i)``, split by
:func:`stage_keys` into ``(generator, downstream, fixed_design)``; generation ``m``'s key
``fold_in(generator, m)`` splits into ``(design, noise)``; so does ``downstream``. A design key
gives the row indices ``randint(k, (rows,), 0, N, int32)`` (with replacement) or
``choice(k, N, (rows,), replace=False)`` (int32); a noise key gives ``normal(k, (rows,))``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..solvers import _rank_tol, _spectral_weights
from ._chain import _syn_mask, stage_keys
from ._config import ChainConfig
from ._driver import SimulationResult, _balanced, padded_seed_batches, seed_keys

__all__ = [
    "SAMPLINGS",
    "KernelData",
    "KernelSeedOutput",
    "adaptive_ridge",
    "b_exponent",
    "kernel_bytes_per_seed",
    "run_kernel_seed",
    "simulate_kernel_chain",
]

SAMPLINGS = ("with-replacement", "without-replacement")
_HI = jax.lax.Precision.HIGHEST


def _mm(a, b):
    return jnp.matmul(a, b, precision=_HI)


class KernelSeedOutput(NamedTuple):
    """Per-seed outputs of the kernel chain.

    Attributes:
      test_error: ``(n_max + 1, n_ridges)`` downstream ``mean_test (f_hat - f0)^2``.
      generator_error: ``(n_max + 1,)`` ``mean_test (f_n - f0)^2`` (0 at ``n = 0``).
    """

    test_error: jax.Array
    generator_error: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KernelData:
    """The pool the chain draws inputs from and the set its test error is measured on.

    Attributes:
      pool_inputs: ``(N, p)`` inputs training points are drawn from.
      pool_targets: ``(N,)`` clean target ``f0`` on the pool.
      test_inputs: ``(M, p)`` test inputs.
      test_targets: ``(M,)`` clean target on them.
    """

    pool_inputs: jax.Array
    pool_targets: jax.Array
    test_inputs: jax.Array
    test_targets: jax.Array

    @property
    def pool_size(self) -> int:
        return int(self.pool_inputs.shape[0])

    @property
    def test_size(self) -> int:
        return int(self.test_inputs.shape[0])

    @classmethod
    def from_arrays(cls, pool_inputs: ArrayLike, pool_targets: ArrayLike, test_inputs: ArrayLike | None = None,
                    test_targets: ArrayLike | None = None, *, dtype: Any = None) -> KernelData:
        """Validated data; without a test set the error is measured on the whole pool (population protocol).

        Raises:
          ValueError: wrong shapes, NaN/inf, a test set given without its targets.
        """
        X = _checks.check_finite_array("pool_inputs", pool_inputs, ndim=2)
        y = _checks.check_finite_array("pool_targets", pool_targets, ndim=1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"pool_targets has {y.shape[0]} entries but pool_inputs has {X.shape[0]} rows")
        if (test_inputs is None) != (test_targets is None):
            raise ValueError("give both test_inputs and test_targets, or neither (population protocol)")
        if test_inputs is None:
            Xt, yt = X, y
        else:
            Xt = _checks.check_finite_array("test_inputs", test_inputs, ndim=2)
            yt = _checks.check_finite_array("test_targets", test_targets, ndim=1)
            if Xt.shape[1] != X.shape[1]:
                raise ValueError(f"test_inputs has {Xt.shape[1]} features but pool_inputs has {X.shape[1]}")
            if yt.shape[0] != Xt.shape[0]:
                raise ValueError(f"test_targets has {yt.shape[0]} entries but test_inputs has {Xt.shape[0]} rows")
        dt = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
        return cls(*(jnp.asarray(a, dt) for a in (X, y, Xt, yt)))

    @classmethod
    def from_datasets(cls, pool: Any, test: Any = None, *, dtype: Any = None) -> KernelData:
        """From :class:`kcollapse.datasets.Dataset` objects (already :func:`~kcollapse.datasets.prepare`-d)."""
        return cls.from_arrays(pool.inputs, pool.targets, None if test is None else test.inputs,
                               None if test is None else test.targets, dtype=dtype)


def adaptive_ridge(T: ArrayLike, ell: ArrayLike) -> np.ndarray:
    """The adaptive ridge ``lambda = T^{-ell}`` (kcollapse normalisation; Demystified §5, Cui et al.)."""
    return np.power(np.asarray(T, dtype=np.float64), -np.asarray(ell, dtype=np.float64))


def b_exponent(T: ArrayLike, T0: ArrayLike) -> np.ndarray:
    """``b = log T0 / log T`` (Demystified §5: ``T0 = T^b``), so ``T^{-b ell} = T0^{-ell}``.

    Raises:
      ValueError: ``T <= 1`` (``log T = 0``: ``b`` is undefined).
    """
    T = np.asarray(T, dtype=np.float64)
    if np.any(T <= 1):
        raise ValueError(f"b = log T0 / log T needs T > 1, got T = {T.min():g}")
    return np.log(np.asarray(T0, dtype=np.float64)) / np.log(T)


def _draw(key, n_pool: int, n_rows: int, sampling: str):
    if sampling == "with-replacement":
        return jax.random.randint(key, (n_rows,), 0, n_pool, dtype=jnp.int32)
    return jax.random.choice(key, n_pool, (n_rows,), replace=False).astype(jnp.int32)


def _weights(mu, n_fit, ridges, n_rows: int):
    """Spectral weights ``1/(mu + ridge n_fit)`` (min-norm at ridge 0) for a ``(R,)`` ridge grid."""
    return _spectral_weights(mu, ridges * n_fit, _rank_tol(mu, n_rows, n_rows))


def _solve(K, y, n_fit, ridge):
    """``(K + ridge n_fit I)^{+} y`` by eigh (``y`` of shape ``(rows,)``)."""
    mu, V = jnp.linalg.eigh(K)
    w = _weights(mu, n_fit, ridge[None], K.shape[0])[0]
    return _mm(V, w * _mm(V.T, y))


def run_kernel_seed(key: jax.Array, kernel: Any, data: KernelData, config: ChainConfig, ridges: jax.Array,
                    sampling: str = "with-replacement") -> KernelSeedOutput:
    """One seed of the kernel chain (pure; ``vmap`` over keys for many seeds).

    Args:
      key: this seed's PRNG key.
      kernel: a :mod:`kcollapse.kernels` kernel (its parameters may be traced).
      data: the pool and test set.
      config: the chain (:class:`~kcollapse.ChainConfig`).
      ridges: ``(n_ridges,)`` downstream ridge values.
      sampling: ``"with-replacement"`` or ``"without-replacement"`` within one training set (static).

    Returns:
      :class:`KernelSeedOutput`.
    """
    Xp, yp, Xt, yt = data.pool_inputs, data.pool_targets, data.test_inputs, data.test_targets
    dt = Xp.dtype
    N = Xp.shape[0]
    T0, T, n_max = config.samples_per_generation, config.downstream_samples, config.n_generations
    mode, design = config.mode, config.design
    sigma0 = jnp.asarray(config.generator_noise, dt)
    sigma = jnp.asarray(config.label_noise, dt)
    ridge0 = jnp.asarray(config.generator_ridge, dt)
    frac = jnp.asarray(config.synthetic_fraction, dt)
    ridges = jnp.asarray(ridges, dt)
    keys = stage_keys(key)
    block = kernel.block
    gens = jnp.arange(1, n_max + 1)
    mix = mode == "mix"
    mask_gen = _syn_mask(T0, frac, dt) if mix else None

    if design == "fixed":
        idx0 = _draw(keys.fixed_design, N, T0, sampling)
        mu0, V0 = jnp.linalg.eigh(block(Xp[idx0], Xp[idx0]))

    def generator_design(k_x):
        return idx0 if design == "fixed" else _draw(k_x, N, T0, sampling)

    if mode == "accumulate":
        L = n_max * T0
        rows = jnp.arange(L)

        def step(carry, m):
            idx_all, y_all, alpha = carry
            k_x, k_e = jax.random.split(jax.random.fold_in(keys.generator, m))
            idx = generator_design(k_x)
            Z = Xp[idx]
            prev = _mm(block(Z, Xp[idx_all.reshape(-1)]), alpha)
            labels = jnp.where(m == 1, yp[idx], prev) + sigma0 * jax.random.normal(k_e, (T0,), dt)
            idx_all = idx_all.at[m - 1].set(idx)
            y_all = y_all.at[m - 1].set(labels)
            active = (rows < m * T0).astype(dt)
            Xa = Xp[idx_all.reshape(-1)]
            K = block(Xa, Xa) * active[:, None] * active[None, :]
            alpha = _solve(K, y_all.reshape(-1) * active, (m * T0).astype(dt), ridge0)
            return (idx_all, y_all, alpha), alpha

        init = (jnp.zeros((n_max, T0), jnp.int32), jnp.zeros((n_max, T0), dt), jnp.zeros((L,), dt))
        (idx_all, y_all, _), alpha_hist = jax.lax.scan(step, init, gens)  # alpha_hist: (n_max, L)
        X_all = Xp[idx_all.reshape(-1)]

        def gen_values(X):  # (n_max, rows): f_n(X) for n = 1..n_max
            return _mm(alpha_hist, block(X, X_all).T)
    else:
        def step(carry, m):
            idx_prev, alpha_prev = carry
            k_x, k_e = jax.random.split(jax.random.fold_in(keys.generator, m))
            idx = generator_design(k_x)
            Z = Xp[idx]
            prev = jnp.where(m == 1, yp[idx], _mm(block(Z, Xp[idx_prev]), alpha_prev))
            syn = mask_gen * prev + (1 - mask_gen) * yp[idx] if mix else prev
            labels = syn + sigma0 * jax.random.normal(k_e, (T0,), dt)
            if design == "fixed":
                w = _weights(mu0, jnp.asarray(T0, dt), ridge0[None], T0)[0]
                alpha = _mm(V0, w * _mm(V0.T, labels))
            else:
                alpha = _solve(block(Z, Z), labels, jnp.asarray(T0, dt), ridge0)
            return (idx, alpha), (idx, alpha)

        init = (jnp.zeros((T0,), jnp.int32), jnp.zeros((T0,), dt))
        _, (idx_hist, alpha_hist) = jax.lax.scan(step, init, gens)  # (n_max, T0) each

        def gen_values(X):
            return jax.vmap(lambda i, a: _mm(block(X, Xp[i]), a))(idx_hist, alpha_hist)

    # Generators on the test set: error of f_n against f0.
    f_test = gen_values(Xt) if n_max > 0 else jnp.zeros((0, Xt.shape[0]), dt)
    generator_error = jnp.concatenate([jnp.zeros((1,), dt), jnp.mean((f_test - yt) ** 2, axis=1)])

    # Downstream stage, shared by every n and every ridge value.
    k_x, k_e = jax.random.split(keys.downstream)
    idx_d = _draw(k_x, N, T, sampling)
    Zd = Xp[idx_d]
    eps_d = jax.random.normal(k_e, (T,), dt)
    clean_d = yp[idx_d]
    F_d = jnp.concatenate([clean_d[None], gen_values(Zd)], axis=0) if n_max > 0 else clean_d[None]
    if mix:
        mask_d = _syn_mask(T, frac, dt)
        F_d = mask_d * F_d + (1 - mask_d) * clean_d
    Y = F_d + sigma * eps_d  # (n_max + 1, T)

    if mode == "accumulate":
        Zc = jnp.concatenate([X_all, Zd], axis=0)
        Kc = block(Zc, Zc)
        Kt = block(Xt, Zc)
        y_gen = y_all.reshape(-1)

        def per_n(n):
            active = jnp.concatenate([(rows < n * T0).astype(dt), jnp.ones((T,), dt)])
            mu, V = jnp.linalg.eigh(Kc * active[:, None] * active[None, :])
            w = _weights(mu, (n * T0 + T).astype(dt), ridges, L + T)  # (R, L + T)
            y = jnp.concatenate([y_gen * active[:L], Y[n]])
            alpha = _mm(w * _mm(V.T, y), V.T)  # (R, L + T)
            pred = _mm(alpha, Kt.T)  # (R, M)
            return jnp.mean((pred - yt) ** 2, axis=1)

        err = jax.lax.map(per_n, jnp.arange(n_max + 1))  # (n_max + 1, R)
    else:
        mu, V = jnp.linalg.eigh(block(Zd, Zd))
        w = _weights(mu, jnp.asarray(T, dt), ridges, T)  # (R, T)
        Z = _mm(V.T, Y.T)  # (T, n_max + 1)
        alpha = jnp.einsum("ij,rj,jk->rik", V, w, Z, precision=_HI)  # (R, T, n_max + 1)
        pred = jnp.einsum("mt,rtk->rmk", block(Xt, Zd), alpha, precision=_HI)  # (R, M, n_max + 1)
        err = jnp.mean((pred - yt[None, :, None]) ** 2, axis=1).T  # (n_max + 1, R)
    return KernelSeedOutput(err, generator_error)


@functools.partial(jax.jit, static_argnames=("sampling",))
def _batch(keys, kernel, data, config, ridges, sampling):
    run = functools.partial(run_kernel_seed, sampling=sampling)
    return jax.vmap(run, in_axes=(0, None, None, None, None))(keys, kernel, data, config, ridges)


def kernel_bytes_per_seed(kernel: Any, data: KernelData, config: ChainConfig, n_ridges: int) -> int:
    """Approximate working set of one seed (bytes), used to size seed batches."""
    T0, T, n = config.samples_per_generation, config.downstream_samples, config.n_generations
    M, p = data.test_size, data.pool_inputs.shape[1]
    work = kernel.work_per_entry(p) + 1
    if config.mode == "accumulate":
        L = n * T0
        words = 4 * L * L + work * (L * L + (M + T) * L) + 4 * (L + T) ** 2 + work * (L + T) * (L + T + M)
        words += n_ridges * (M + L + T)
    else:
        words = work * n * T0 * (T0 + M + T) + 4 * T0 * T0 + 4 * T * T + work * (T * T + M * T)
        words += 3 * n_ridges * (n + 1) * (T + M)
    words += n * (M + T) + (T + T0) * p
    return int(words * jnp.dtype(data.pool_inputs.dtype).itemsize)


def simulate_kernel_chain(
    key: jax.Array,
    kernel: Any,
    data: KernelData,
    config: ChainConfig,
    ridges: ArrayLike = (0.0,),
    n_seeds: int = 16,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = 1 << 30,
    sampling: str = "with-replacement",
    progress: Callable[[int, int], Any] | None = None,
) -> SimulationResult:
    """Simulate the kernel chain for ``n_seeds`` independent seeds (see the module docstring).

    Every generation ``n = 0..config.n_generations`` and every ridge value come out of one compiled
    call per batch of seeds; seeds are ``vmap``-ed and batched under ``memory_budget`` (results do
    not depend on the batching: seed ``i`` always uses ``fold_in(key, i)``).

    Args:
      key: a JAX PRNG key.
      kernel: a :mod:`kcollapse.kernels` kernel (or :class:`~kcollapse.kernels.RandomFeatures`).
      data: :class:`KernelData` (pool and test set; its dtype is the compute dtype).
      config: the chain; ``samples_per_generation`` is ``T0``, ``downstream_samples`` is ``T``.
      ridges: downstream ridge values ``>= 0`` (kcollapse normalisation; scikit-learn
        ``alpha = ridge T``); for an adaptive ridge pass ``adaptive_ridge(T, ell)``.
      n_seeds: independent seeds (``>= 2`` for a standard error).
      seed_offset: first seed index.
      batch_size: seeds per compiled call (default: as many as fit ``memory_budget``).
      memory_budget: bytes one batch may use (approximate working set).
      sampling: ``"with-replacement"`` (iid from the pool's empirical distribution, the default)
        or ``"without-replacement"`` (distinct rows within one training set; needs ``T, T0 <= N``).
      progress: optional ``progress(done, total)`` called after each batch.

    Returns:
      :class:`~kcollapse.SimulationResult` (``spectrum`` is ``None``; ``generator_fallbacks`` 0).

    Raises:
      ValueError / TypeError: invalid inputs. MemoryError: one seed exceeds ``memory_budget``.
      FloatingPointError: a non-finite test error (never returned silently).

    Examples:
      >>> import jax, numpy as np, kcollapse as kc
      >>> from kcollapse import kernels
      >>> X = np.random.default_rng(0).standard_normal((300, 5)); y = np.sin(X[:, 0])
      >>> data = kc.simulate.KernelData.from_arrays(X, y)
      >>> cfg = kc.ChainConfig(samples_per_generation=50, downstream_samples=80, n_generations=2,
      ...                      generator_noise=0.5, label_noise=0.5)
      >>> res = kc.simulate.simulate_kernel_chain(jax.random.key(0), kernels.RBF(0.2), data, cfg,
      ...                                         ridges=[1e-3, 1e-2], n_seeds=4)
      >>> res.mean.shape
      (3, 2)
    """
    from ..kernels import Kernel

    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a kcollapse.kernels kernel, got {type(kernel).__name__}")
    kernel.validate()
    if not isinstance(data, KernelData):
        raise TypeError(f"data must be a kcollapse.simulate.KernelData, got {type(data).__name__}")
    if not isinstance(config, ChainConfig):
        raise TypeError(f"config must be a kcollapse.ChainConfig, got {type(config).__name__}")
    config.validate()
    _checks.check_choice("sampling", sampling, SAMPLINGS)
    N = data.pool_size
    if sampling == "without-replacement":
        for name, rows in (("samples_per_generation (T0)", config.samples_per_generation),
                           ("downstream_samples (T)", config.downstream_samples)):
            if rows > N:
                raise ValueError(f"{name}={rows} exceeds the pool of {N} inputs with sampling='without-replacement'; "
                                 "use sampling='with-replacement' or a larger pool")
    ridges_np = _checks.check_nonneg_array("ridges", np.atleast_1d(ridges), ndim=1).astype(np.float64)
    if ridges_np.size == 0:
        raise ValueError("ridges must contain at least one value")
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    seed_offset = _checks.check_int("seed_offset", seed_offset, minimum=0)
    per_seed = kernel_bytes_per_seed(kernel, data, config, ridges_np.size)
    if per_seed > memory_budget:
        raise MemoryError(
            f"one seed needs about {per_seed / 2**20:.0f} MiB, more than memory_budget={memory_budget / 2**20:.0f} MiB; "
            "raise the budget, or reduce T, T0, n_generations or the test set"
        )
    if batch_size is None:
        batch_size = _balanced(n_seeds, max(1, memory_budget // max(per_seed, 1)))
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)

    dt = data.pool_inputs.dtype
    ridges_j = jnp.asarray(ridges_np, dt)
    indices = np.arange(seed_offset, seed_offset + n_seeds)
    outs = []
    for chunk, padded in padded_seed_batches(indices, batch_size):
        out = _batch(seed_keys(key, padded), kernel, data, config, ridges_j, sampling)
        outs.append(jax.tree_util.tree_map(lambda a: np.array(a)[: chunk.size], out))
        if progress is not None:
            progress(int(chunk[-1]) - seed_offset + 1, n_seeds)
    per_seed_err = np.concatenate([o.test_error for o in outs])
    gen = np.concatenate([o.generator_error for o in outs])
    bad = ~np.isfinite(per_seed_err)
    if bad.any():
        s, n, r = np.argwhere(bad)[0]
        raise FloatingPointError(
            f"{int(bad.sum())} non-finite test errors (first at seed {indices[s]}, n={n}, ridge={ridges_np[r]:g}); "
            f"the kernel solve is numerically singular in {jnp.dtype(dt).name}: use float64 or a ridge > 0"
        )
    return SimulationResult(
        generations=np.arange(config.n_generations + 1),
        ridges=ridges_np,
        per_seed=per_seed_err,
        generator_per_seed=gen,
        seed_indices=indices,
        generator_fallbacks=0,
        config=config,
        spectrum=None,  # type: ignore[arg-type]  # a kernel chain has no closed-form spectrum
    )
