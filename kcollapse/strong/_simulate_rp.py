"""Simulator of the random-projection model on real/synthetic mixtures (Strong Model Collapse Thm 2).

Per seed: the mixture data of :func:`simulate_mixture`, a projection ``S`` (``d x m_max``, iid
``N(0, 1/d)``), features ``F = X S``; for width ``m`` the model uses the first ``m`` columns,
``v_hat = (F_m^T F_m/n + ridge I)^{-1} F_m^T y/n`` and ``w_hat = S_m v_hat``.

**Every width from one Cholesky factor.** The Cholesky factor of a leading principal block is the
leading block of the Cholesky factor: ``chol(M[:m, :m]) = L[:m, :m]`` for ``M = F^T F/n + ridge I``.
So one ``m_max x m_max`` factorisation per (seed, ridge) serves all widths: solve ``L z = b`` with
``b`` zeroed beyond ``m``, zero ``z`` beyond ``m``, then solve ``L^T v = z`` (whose entries beyond
``m`` are then exactly 0 and whose first ``m`` are ``L[:m,:m]^{-T} z[:m]``). Widths are columns of
one triangular solve, so the grid over ``m``, ``p2`` (and, by ``vmap``, ridge and seeds) is batched.
The widths share the columns of ``S`` within a seed (common random numbers; each width's law is exact).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._conventions import test_error
from ..spectra import Spectrum
from ._driver import DEFAULT_MEMORY_BUDGET, GridSimulation, itemsize, nonneg_grid, run_seeds
from ._simulate import _common, _mm, draw_mixture

__all__ = ["simulate_random_projection"]


def _rp_seed(key, spectrum, mismatch, n, m_max, widths, counts, ridges, label_noise, synthetic_noise):
    dt = spectrum.dtype
    d = spectrum.d
    k_data, k_s = jax.random.split(key)
    X, Y, _ = draw_mixture(k_data, spectrum, mismatch, n, counts, label_noise, synthetic_noise)
    S = jax.random.normal(k_s, (d, m_max), dtype=dt) / jnp.sqrt(jnp.asarray(d, dt))
    F = _mm(X, S)
    M = _mm(F.T, F) / n
    B = _mm(F.T, Y) / n  # (m_max, k)
    k, w = counts.shape[0], widths.shape[0]
    mask = (jnp.arange(m_max, dtype=dt)[:, None] < widths[None, :]).astype(dt)  # (m_max, W)
    mask_kw = jnp.repeat(mask[:, None, :], k, axis=1).reshape(m_max, k * w)
    rhs = (B[:, :, None] * mask[:, None, :]).reshape(m_max, k * w)
    eye = jnp.eye(m_max, dtype=dt)

    def per_ridge(ridge):
        L = jnp.linalg.cholesky(M + ridge * eye)
        ok = jnp.all(jnp.isfinite(L))
        L = jnp.where(ok, L, eye)
        z = jax.scipy.linalg.solve_triangular(L, rhs, lower=True) * mask_kw
        v = jax.scipy.linalg.solve_triangular(L, z, lower=True, trans="T")
        w_hat = _mm(S, v).T  # (k * W, d)
        err = test_error(spectrum.eigenvalues, w_hat, spectrum.coefficients).reshape(k, w)
        return jnp.where(ok, err, jnp.nan)

    errs = jax.vmap(per_ridge)(ridges)  # (r, k, W)
    return jnp.transpose(errs, (2, 1, 0))  # (W, k, r)


@functools.partial(jax.jit, static_argnames=("n", "m_max"))
def _rp_batch(keys, spectrum, mismatch, n, m_max, widths, counts, ridges, label_noise, synthetic_noise):
    return jax.vmap(lambda key: _rp_seed(key, spectrum, mismatch, n, m_max, widths, counts, ridges, label_noise,
                                         synthetic_noise))(keys)


def simulate_random_projection(
    key: jax.Array,
    spectrum: Spectrum,
    mismatch: ArrayLike,
    n_samples: int,
    widths: ArrayLike,
    synthetic_fractions: ArrayLike,
    ridges: ArrayLike,
    label_noise: float = 0.0,
    synthetic_noise: float | None = None,
    n_seeds: int = 32,
    *,
    seed_offset: int = 0,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> GridSimulation:
    """Ridge on random projections ``f(x) = v^T S^T x`` of real + synthetic data (Theorem 2's model).

    Args:
      key: ``jax.random.key``; seed ``i`` uses ``fold_in(key, i)``.
      spectrum: ``Sigma`` and the real teacher ``w1``.
      mismatch: ``(d,)`` diagonal of ``Delta``.
      n_samples: ``n``.
      widths: ``(W,)`` integer widths ``m >= 1`` (number of random features).
      synthetic_fractions: ``(k,)`` fractions ``p2`` (``n2 = round(p2 n)``).
      ridges: ``(r,)`` ridge values ``> 0`` on ``||v||^2`` (kcollapse normalisation; the paper uses
        1e-8). Ridge 0 is refused: the min-norm solution's error has infinite mean at ``m = n``.
      label_noise: ``sigma1``. synthetic_noise: ``sigma2`` (default ``sigma1``).
      n_seeds, seed_offset, batch_size, memory_budget: as in :func:`simulate_mixture`.

    Returns:
      :class:`GridSimulation`, ``per_seed`` of shape ``(seeds, W, k, r)``; axes ``width``,
      ``synthetic_fraction``, ``ridge``.

    Raises:
      FloatingPointError: the Cholesky factorisation failed (ridge too small for the dtype).

    Examples:
      >>> import jax, kcollapse as kc
      >>> s = kc.spectra.isotropic(20)
      >>> res = kc.strong.simulate_random_projection(jax.random.key(0), s, kc.strong.mismatch_covariance(s, 0.5),
      ...                                            40, [10, 40, 80], [0.2], [1e-2], label_noise=0.1, n_seeds=4)
      >>> res.per_seed.shape
      (4, 3, 1, 1)
    """
    spectrum, mismatch, n, counts, s1, s2 = _common(spectrum, mismatch, n_samples, synthetic_fractions,
                                                    label_noise, synthetic_noise, "synthetic_fractions")
    widths_np = np.atleast_1d(np.asarray(widths))
    if widths_np.ndim != 1 or widths_np.size == 0 or not np.all(np.isfinite(widths_np.astype(float))) \
            or np.any(widths_np.astype(float) != np.round(widths_np.astype(float))) or np.any(widths_np.astype(float) < 1):
        raise ValueError(f"widths must be a non-empty list of integers >= 1, got {widths_np.tolist()}")
    widths_np = widths_np.astype(int)
    ridges = nonneg_grid("ridges", ridges, positive=True)
    dt = spectrum.dtype
    d, k, w, r = spectrum.d, counts.size, widths_np.size, ridges.size
    m_max = int(widths_np.max())
    words = 2 * n * d + 2 * d * m_max + 2 * n * m_max + (2 + 2 * r) * m_max * m_max + r * k * w * (3 * m_max + 2 * d)
    batch = functools.partial(_rp_batch, spectrum=spectrum, mismatch=mismatch, n=n, m_max=m_max,
                              widths=jnp.asarray(widths_np, dt), counts=jnp.asarray(counts, dt),
                              ridges=jnp.asarray(ridges, dt), label_noise=s1, synthetic_noise=s2)
    per_seed, idx = run_seeds(batch, key, n_seeds, seed_offset, batch_size, words * itemsize(spectrum), memory_budget,
                              "random-projection")
    axes = (("width", widths_np), ("synthetic_fraction", counts / n), ("ridge", ridges))
    return GridSimulation(per_seed, axes, idx, "random-projection")
