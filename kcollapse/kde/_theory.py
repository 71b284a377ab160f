"""Exact moments and NLL bounds of the recursive KDE chain (kcollapse's derivation; docs/notes/kde.md).

Notation (:class:`~kcollapse.kde.KDEConfig`): truth ``N(mu, sigma^2)``, bandwidth ``h``, ``n`` samples
per generation, pool size ``N_t = (t + 1) n`` (accumulate/subsample).

**Genealogy.** A generation-``s`` sample is a uniformly chosen training point of generation ``s - 1``
plus independent ``N(0, h^2)`` noise, so a point of *depth* ``D`` (number of kernel draws back to a
real sample) is marginally ``N(mu, sigma^2 + D h^2)``. Under replace every generation-``t`` point has
depth ``t``; under accumulate *and* subsample a uniformly chosen training point of generation ``t`` is
a uniform pool point, whose depth pmf ``pi_t`` obeys ``pi_t = (1/(t+1)) sum_{s<=t} rho_s``,
``rho_0 = delta_0``, ``rho_s = shift(pi_{s-1})``; its mean is ``(1/(t+1)) sum_{s<=t} H_s``
(``H_s`` harmonic numbers, ``~ ln t``). Hence, exactly:

* the expected density is the depth mixture ``E p_t(x) = sum_d pi_t(d) N(x; mu, sigma^2 + (d+1) h^2)``;
  replace: ``N(mu, sigma^2 + (t+1) h^2)`` (variance growth ``sigma^2 + t h^2`` of the samples);
* ``E`` test NLL ``>= -E_x log E p_t(x)`` (Jensen; Gauss-Hermite quadrature) and
  ``<= log(h sqrt(2 pi)) + (2 sigma^2 + h^2 E D)/(2 h^2)`` (Jensen per kernel);

**Moments of the fitted KDE** (``m`` = training mean, ``S`` = training spread with divisor = size;
the KDE's own mean is ``m`` and its variance ``S + h^2``). With ``r = 1 - 1/n``:

* replace: ``E S_{t+1} = r (E S_t + h^2)``, ``E(m_{t+1} - mu)^2 = E(m_t - mu)^2 + (E S_t + h^2)/n``, i.e.
  ``E S_t = sigma^2 r^{t+1} + h^2 (n - 1)(1 - r^t)`` (bounded) and ``E(m_t - mu)^2 = sigma^2 + t h^2 - E S_t``
  (a random walk of the centre): the KDE keeps width ``~ sqrt(n) h`` while its centre drifts by
  ``~ sqrt(t) h``, so the test NLL diverges (the Jensen lower bound only like ``(1/2) log t``; the
  simulated NLL far faster);
* accumulate (pool): ``e_{t+1} = e_t + n (Q_t - e_t + h^2)/N_{t+1}^2`` with ``Q_t = sigma^2 + h^2 E D_t``;
* subsample: the same pool recursion plus the without-replacement sampling terms (see :func:`kde_moments`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from ._config import MODES, KDEConfig

__all__ = ["depth_pmf", "kde_moments", "mean_depth", "replace_closed_forms"]

_GH_NODES = 96


def depth_pmf(t: int, mode: str) -> np.ndarray:
    """``(t + 1,)`` pmf of the depth of a uniformly chosen generation-``t`` training point."""
    t = _checks.check_int("t", t, minimum=0)
    _checks.check_choice("mode", mode, MODES)
    out = np.zeros(t + 1)
    if mode == "replace":
        out[t] = 1.0
        return out
    total = np.zeros(t + 1)  # sum_{s<=current} rho_s
    total[0] = 1.0           # rho_0 = delta_0
    for s in range(1, t + 1):
        pi_prev = total[: s] / s          # pool pmf at s - 1 (support 0..s-1)
        total[1: s + 1] += pi_prev        # rho_s = shift(pi_{s-1})
    return total / (t + 1)


def mean_depth(n_generations: int, mode: str) -> np.ndarray:
    """``(G + 1,)`` mean depth of a uniformly chosen training point at generations ``0..G``."""
    G = _checks.check_int("n_generations", n_generations, minimum=0)
    _checks.check_choice("mode", mode, MODES)
    if mode == "replace":
        return np.arange(G + 1, dtype=np.float64)
    delta = np.zeros(G + 1)  # mean depth of generation-s points
    pool = np.zeros(G + 1)   # mean depth over the pool at t
    for s in range(1, G + 1):
        delta[s] = 1 + pool[s - 1]
        pool[s] = delta[: s + 1].mean()
    return pool


def replace_closed_forms(generations, n: int, bandwidth: float, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace-mode closed forms ``(E(m_t - mu)^2, E S_t)`` (an independent check of the recursion)."""
    t = np.asarray(generations, dtype=np.float64)
    r = 1 - 1 / n
    s = sigma**2 * r ** (t + 1) + bandwidth**2 * (n - 1) * (1 - r**t)
    return sigma**2 + t * bandwidth**2 - s, s


@functools.partial(jax.jit, static_argnames=("mode", "G"))
def _recursion(h, sigma, dbar, n, *, mode, G):
    dt = h.dtype
    n = n.astype(dt)
    h2, s2 = h**2, sigma**2
    t = jnp.arange(G + 1, dtype=dt)
    Nt = (t + 1) * n if mode != "replace" else jnp.full_like(t, n)
    Q = s2 + h2 * dbar  # E second moment of a training (pool) point about mu

    def body(carry, i):
        e, S = carry  # replace: training set; else: pool
        if mode == "replace":
            model = (e, S)
            new = (e + (S + h2) / n, (1 - 1 / n) * (S + h2))
        else:
            N, N1 = Nt[i], Nt[i] + n
            if mode == "accumulate":
                model = (e, S)
                e_new = e + n * (S + h2) / N1**2
            else:
                sub_mean = S * (N - n) / (n * (N - 1))
                S_sub = S * (n - 1) * N / (n * (N - 1))
                model = (e + sub_mean, S_sub)
                e_new = e + (n / N1) ** 2 * (sub_mean + (S_sub + h2) / n)
            new = (e_new, Q[jnp.minimum(i + 1, G)] - e_new)  # the value after the last generation is unused
        return new, jnp.stack(model)

    init = (s2 / n, s2 * (n - 1) / n)
    _, traj = jax.lax.scan(body, init, jnp.arange(G + 1))
    return traj  # (G + 1, 2): E(model mean - mu)^2, E model spread


def _nll_bounds(pmfs, dbar, h, sigma):
    """Jensen lower bound and per-kernel upper bound on the expected test NLL (natural log)."""
    dt = h.dtype
    u, w = np.polynomial.hermite.hermgauss(_GH_NODES)
    x = jnp.asarray(np.sqrt(2.0) * u, dt) * sigma  # test points about mu
    w = jnp.asarray(w / np.sqrt(np.pi), dt)
    d = jnp.arange(pmfs.shape[1], dtype=dt)
    var = sigma**2 + (d + 1) * h**2                                        # (D,)
    logphi = -0.5 * jnp.log(2 * jnp.pi * var)[None, :] - x[:, None] ** 2 / (2 * var[None, :])  # (X, D)
    logpmf = jnp.where(pmfs > 0, jnp.log(jnp.where(pmfs > 0, pmfs, 1.0)), -jnp.inf)           # (R, D)
    logmix = jax.nn.logsumexp(logpmf[:, None, :] + logphi[None, :, :], axis=-1)               # (R, X)
    lower = -(logmix * w[None, :]).sum(axis=1)
    upper = jnp.log(h * jnp.sqrt(2 * jnp.pi)) + (2 * sigma**2 + h**2 * dbar) / (2 * h**2)
    return lower, upper


def kde_moments(config: KDEConfig, generations, *, nll_bounds: bool = True) -> dict[str, np.ndarray]:
    """Exact moments of the generation-``t`` KDE and bounds on its expected test NLL.

    Returns (each ``(R,)`` at the sorted unique ``generations``):
      ``mean_sq_error``: ``E(m_t - mu)^2`` (the KDE's mean is its training mean ``m_t``);
      ``kde_variance``: ``E Var_{p_t} = E S_t + h^2``;
      ``second_moment``: ``E int (x - mu)^2 p_t(x) dx = sigma^2 + h^2 (1 + E D_t)`` (the sum of the two above);
      ``mean_depth``: ``E D_t``;
      ``nll_lower_bound`` / ``nll_upper_bound``: bounds on ``E_chains E_{x ~ N(mu, sigma^2)} [-log p_t(x)]``.

    References:
      Kazdan et al., "Collapse or Thrive?", arXiv:2410.16713v4, Theorems 5-7 (setting; the formulas are
      kcollapse's, docs/notes/kde.md).
    """
    config.validate()
    g = np.unique(np.atleast_1d(np.asarray(generations)))
    if not np.issubdtype(g.dtype, np.integer) or g.min() < 0 or g.max() > config.n_generations:
        raise ValueError(f"generations must be integers in [0, n_generations={config.n_generations}], got {g.tolist()}")
    dt = jnp.result_type(float)
    G = config.n_generations
    dbar = mean_depth(G, config.mode)
    h = jnp.asarray(config.bandwidth, dt)
    sigma = jnp.asarray(config.sigma, dt)
    traj = np.asarray(_recursion(h, sigma, jnp.asarray(dbar, dt), jnp.asarray(config.samples_per_generation, dt),
                                 mode=config.mode, G=G))
    hb, sb = float(config.bandwidth), float(config.sigma)
    out = {
        "mean_sq_error": traj[g, 0],
        "kde_variance": traj[g, 1] + hb**2,
        "second_moment": sb**2 + hb**2 * (1 + dbar[g]),
        "mean_depth": dbar[g],
    }
    if nll_bounds:
        width = int(g.max()) + 1
        pmfs = np.zeros((g.size, width))
        for j, t in enumerate(g):
            pmfs[j, : t + 1] = depth_pmf(int(t), config.mode)
        lo, up = _nll_bounds(jnp.asarray(pmfs, dt), jnp.asarray(dbar[g], dt), h, sigma)
        out["nll_lower_bound"] = np.asarray(lo)
        out["nll_upper_bound"] = np.asarray(up)
    return out
