"""Seed batching and the result type shared by the Strong-Model-Collapse simulators."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ..simulate._driver import _sem, map_seed_batches
from ..spectra import Spectrum

__all__ = ["DEFAULT_MEMORY_BUDGET", "GridSimulation", "merge_grid_simulations", "run_seeds"]

#: Default memory one compiled batch of seeds may use (bytes).
DEFAULT_MEMORY_BUDGET = 512 << 20


@dataclasses.dataclass(frozen=True)
class GridSimulation:
    """Per-seed test errors ``||w_hat - w1||_Sigma^2`` of one simulator over a parameter grid.

    Attributes:
      per_seed: ``(seeds, *grid)`` test errors; the grid axes are listed in ``axes``.
      axes: ``((name, values), ...)``, one per grid dimension, in order.
      seed_indices: ``(seeds,)`` seed ``i`` used the key ``fold_in(key, i)``.
      model: which simulator produced it (``"mixture"``, ``"weighted"``, ``"iterative"``,
        ``"random-projection"``).
    """

    per_seed: np.ndarray
    axes: tuple[tuple[str, np.ndarray], ...]
    seed_indices: np.ndarray
    model: str

    @property
    def n_seeds(self) -> int:
        return int(self.per_seed.shape[0])

    @property
    def mean(self) -> np.ndarray:
        """``grid``-shaped mean over seeds."""
        return self.per_seed.mean(axis=0)

    @property
    def sem(self) -> np.ndarray:
        """``grid``-shaped standard error of the mean, ``std(ddof=1)/sqrt(seeds)`` (NaN for one seed)."""
        return _sem(self.per_seed)

    def axis(self, name: str) -> np.ndarray:
        """The values along the grid axis ``name``."""
        for k, v in self.axes:
            if k == name:
                return v
        raise KeyError(f"no axis {name!r}; axes are {[k for k, _ in self.axes]}")


def merge_grid_simulations(results: Sequence[GridSimulation]) -> GridSimulation:
    """Concatenate runs of the same problem on disjoint seed ranges (e.g. chunked runs)."""
    if not results:
        raise ValueError("results must contain at least one GridSimulation")
    first = results[0]
    for r in results[1:]:
        same_axes = [k for k, _ in r.axes] == [k for k, _ in first.axes] and all(
            np.array_equal(a, b) for (_, a), (_, b) in zip(r.axes, first.axes))
        if r.model != first.model or not same_axes:
            raise ValueError("results to merge must come from the same model and grid")
    return dataclasses.replace(first, per_seed=np.concatenate([r.per_seed for r in results]),
                               seed_indices=np.concatenate([r.seed_indices for r in results]))


def check_spectrum(spectrum: Any) -> Spectrum:
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kcollapse.spectra.Spectrum, got {type(spectrum).__name__}")
    _checks.check_nonneg_array("spectrum.eigenvalues", spectrum.eigenvalues, ndim=1)
    _checks.check_finite_array("spectrum.coefficients", spectrum.coefficients, ndim=1, length=spectrum.d)
    return spectrum


def check_mismatch(mismatch: Any, d: int) -> np.ndarray:
    arr = _checks.check_nonneg_array("mismatch", mismatch, ndim=1)
    if arr.shape[0] != d:
        raise ValueError(f"mismatch must have length d = {d} (the diagonal of Delta), got {arr.shape[0]}")
    return arr


def synthetic_counts(name: str, fractions: Any, n_samples: int) -> np.ndarray:
    """``n2 = round(p2 n)`` for each requested fraction (validated in ``[0, 1]``)."""
    arr = np.atleast_1d(_checks.check_finite_array(name, fractions)).astype(float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d list of fractions, got shape {arr.shape}")
    for p in arr:
        _checks.check_fraction(name, p)
    return np.round(arr * n_samples)


def nonneg_grid(name: str, values: Any, *, positive: bool = False) -> np.ndarray:
    arr = np.atleast_1d(_checks.check_nonneg_array(name, np.atleast_1d(values), ndim=1, positive=positive)).astype(float)
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one value")
    return arr


def run_seeds(batch_fn: Callable[[jax.Array], jax.Array], key: jax.Array, n_seeds: int, seed_offset: int,
              batch_size: int | None, bytes_per_seed: int, memory_budget: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Run ``batch_fn(keys) -> (batch, *grid)`` over seeds ``seed_offset ..`` in padded batches.

    Seed ``i`` always gets ``fold_in(key, i)``, so results do not depend on the batching.
    ``batch_size`` (default: as many seeds as fit ``memory_budget``, balanced) is an upper bound that
    the memory budget may lower; every batch has the same shape (the last is padded).

    Raises:
      MemoryError: one seed needs more than ``memory_budget``.
      FloatingPointError: a non-finite test error came out (never returned silently).
    """
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    seed_offset = _checks.check_int("seed_offset", seed_offset, minimum=0)
    if bytes_per_seed > memory_budget:
        raise MemoryError(f"one seed needs about {bytes_per_seed / 2**20:.0f} MiB, more than memory_budget="
                          f"{memory_budget / 2**20:.0f} MiB; raise memory_budget or shrink the problem")
    fit = max(1, memory_budget // max(bytes_per_seed, 1))
    if batch_size is None:
        n_batches = -(-n_seeds // min(fit, n_seeds))
        batch_size = -(-n_seeds // n_batches)
    else:  # an upper bound: the memory budget may lower it (padding keeps one compiled shape)
        batch_size = min(_checks.check_int("batch_size", batch_size, minimum=1), fit)
    indices = np.arange(seed_offset, seed_offset + n_seeds)
    per_seed = map_seed_batches(batch_fn, key, indices, batch_size)
    bad = ~np.isfinite(per_seed)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise FloatingPointError(
            f"{int(bad.sum())} non-finite test errors in the {what} simulation (first at seed {indices[first[0]]}, "
            f"grid index {tuple(int(i) for i in first[1:])}): the solve is numerically singular; use float64, a "
            "larger ridge, or sizes away from the interpolation threshold")
    return per_seed, indices


def itemsize(spectrum: Spectrum) -> int:
    return int(jnp.dtype(spectrum.dtype).itemsize)
