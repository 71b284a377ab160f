"""Consistency of accumulate-MLE under any sample-size schedule (Barzilai & Shamir, THEORY.md §7), exact bounds.

Barzilai & Shamir (arXiv:2505.19046, [SECONDARY] in THEORY.md §7) show that iterative MLE on
accumulated data stays consistent when the per-round sample sizes grow at least polylogarithmically,
and that accumulation alone does not suffice for every model family. For the Gaussian, kcollapse's
exact moments (:func:`expected_variance`, :func:`expected_mean_sq_error` with ``mode="accumulate"``
and any ``batch_sizes``) give a sharper, schedule-free statement (kcollapse's derivation,
docs/notes/gaussian.md §9):

    M_k/N_k^2 <= M_k/(N_{k-1} N_k) = 1/N_{k-1} - 1/N_k   (k >= 2),  so  sum_{k>=1} M_k/N_k^2 <= 2/M_1,

and with ``E||mu_t - mu||^2 = d sigma^2 sum_k P_{k-1} M_k/N_k^2`` (``P <= 1``) and
``P_t >= 1 - sum_k delta_k``::

    sup_t E||mu_t - mu||^2 <= 2 d sigma^2 / M_1                       (every schedule, both estimators)
    inf_t E tr Sigma_t     >= d sigma^2 (1 - 2/M_1)   (MLE),   d sigma^2 (1 - 1/(M_1 - 1))   (unbiased)

So the error is ``O(1/M_1)`` uniformly in ``t`` whatever the later batch sizes (growing, constant, or
one sample per round): accumulate-MLE of a Gaussian is consistent as ``M_1 -> inf`` with no
condition on the schedule. Replace, by contrast, has ``E(mu_t - mu)^2 = sigma^2 sum_{k<=t} 1/M_k``
(unbiased), bounded in ``t`` only if ``sum 1/M_k < inf`` (e.g. ``M_k = n k^p`` with ``p > 1``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ._config import resolve_estimator

__all__ = ["accumulate_limit_bracket", "accumulate_uniform_bounds"]


def accumulate_uniform_bounds(first_batch: ArrayLike, *, estimator: str = "mle", dim: int = 1,
                              sigma: ArrayLike = 1.0) -> tuple[jax.Array, jax.Array]:
    """Schedule-free bounds for accumulate: ``(sup_t E||mu_t - mu||^2, inf_t E tr Sigma_t)`` bounds.

    Args:
      first_batch: ``M_1`` (the real samples, ``>= 2``). estimator: ``"mle"``/``"unbiased"``/``"paper"``.
      dim: ``d``. sigma: true standard deviation.

    Returns:
      ``(2 d sigma^2/M_1, d sigma^2 (1 - 2/M_1))`` (MLE) or ``(..., d sigma^2 (1 - 1/(M_1 - 1)))`` (unbiased).
    """
    est = resolve_estimator("accumulate", estimator)
    m1 = jnp.asarray(first_batch)
    m1 = m1 if jnp.issubdtype(m1.dtype, jnp.floating) else m1.astype(jnp.result_type(float))
    s2 = dim * jnp.asarray(sigma, m1.dtype) ** 2
    lower = 1 - 2 / m1 if est == "mle" else 1 - 1 / (m1 - 1)
    return 2 * s2 / m1, s2 * lower


def accumulate_limit_bracket(batch_sizes, *, estimator: str = "mle", dim: int = 1,
                             sigma: float = 1.0) -> dict[str, float]:
    """Bracket of ``E tr Sigma_inf`` (and, for the MLE, ``E||mu_inf - mu||^2``) valid for *any* continuation.

    After ``G`` refits with pool size ``N_G``: ``P_G (1 - 1/N_G) <= P_inf <= P_G`` (MLE;
    ``1/(N_G - 1)`` for the unbiased divisor), since the remaining factors multiply to at least
    ``1 - sum_{k>G} 1/N_{k-1} - 1/N_k``. With the MLE, ``E||mu_t - mu||^2 = d sigma^2 (1 - P_t)``
    exactly (the marginal variance is conserved), which brackets the mean error's limit too.

    Returns:
      ``{"variance_low", "variance_high", "mean_sq_error_low", "mean_sq_error_high"}`` (the mean
      entries are NaN for the unbiased estimator).
    """
    from ._theory import expected_variance

    bs = np.asarray(batch_sizes)
    if bs.ndim != 1 or bs.size == 0:
        raise ValueError(f"batch_sizes must be a non-empty 1-D schedule, got shape {bs.shape}")
    est = resolve_estimator("accumulate", estimator)
    _checks.check_positive_float("sigma", sigma)
    G = bs.shape[0]
    p = float(expected_variance(np.array([G]), bs, mode="accumulate", estimator=est, dim=1)[0])
    n_g = float(bs.sum())
    low = p * (1 - 1 / (n_g if est == "mle" else n_g - 1))
    s2 = dim * sigma**2
    out = {"variance_low": s2 * low, "variance_high": s2 * p}
    if est == "mle":
        out.update(mean_sq_error_low=s2 * (1 - p), mean_sq_error_high=s2 * (1 - low))
    else:
        out.update(mean_sq_error_low=float("nan"), mean_sq_error_high=float("nan"))
    return out
