"""Iterated retraining on real + synthetic data (Bertrand et al.) for the Gaussian MLE: exact theory and simulator.

Setting (shared/THEORY.md §7, Bertrand, Bose, Duplessis, Jiralerspong, Gidel, ICLR 2024, arXiv:2310.00429):
generation 0 is the truth ``N(mu, sigma^2)``; refit 1 is the MLE on ``n`` real samples (Bertrand's
``theta_0``) -- or, with ``init="given"``, a given initial model ``N(mu + delta, s^2)`` (an initial
model error ``epsilon``); refit ``g >= 2`` is the MLE (mean, variance with divisor ``N = n + m``) on
``n`` real samples plus ``m = lambda n`` samples from generation ``g - 1``. The real samples are
``real_data="fixed"`` (one real data set reused at every refit, as in Bertrand et al.'s algorithm,
where ``D_real`` is fixed) or ``"fresh"`` (new real samples at every refit).

Exact recursion (kcollapse's derivation, docs/notes/gaussian.md §9). With ``a = m/N``, ``b = n/N``,
``q = sigma^2/n`` (``E(mu_hat - mu)^2``), ``w = sigma^2 (n - 1)/n`` (``E sigma_hat^2``), and the state
``e_g = E(mu_g - mu)^2``, ``c_g = E[(mu_g - mu)(mu_hat - mu)]`` (fixed real data only; 0 for fresh),
``v_g = E sigma_g^2``::

    mu_g - mu = b (xbar_real - mu) + a (mu_{g-1} - mu) + (a/sqrt m) sigma_{g-1} z
    e_g = b^2 q + 2 a b c_{g-1} + a^2 e_{g-1} + (a^2/m) v_{g-1}
    c_g = b q + a c_{g-1}
    v_g = [(n - 1) sigma^2 + (m - 1) v_{g-1} + (n m/N)(q - 2 c_{g-1} + e_{g-1} + v_{g-1}/m)]/N

(fresh: ``c = 0`` throughout). It is linear, so every moment is exact at finite ``n, m, g``. Consequences:

* ``E[mu_g - mu | past] = a (mu_{g-1} - mu) + b (xbar - mu)``: the mean contracts with ratio exactly
  ``lambda/(1 + lambda)``; in the infinite-sample limit the whole retraining map is
  ``theta -> (theta* + lambda theta)/(1 + lambda)`` to first order, ratio ``lambda/(1 + lambda)``;
* the marginal variance ``e_g + v_g`` relaxes to ``sigma^2`` with ratio ``a`` (fresh) and is exactly
  ``sigma^2`` from the real fit on (``init="real_fit"``): the MLE conserves it;
* the chain is stable for every ``lambda`` (spectral radius ``< 1``): the stated sufficient condition
  ``lambda (1 + L eps/alpha) < 1`` [MEMORY/SECONDARY] is not necessary here (it fails for
  ``lambda >= 1`` even at ``eps = 0``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..simulate._driver import PerChainStats, map_seed_batches

__all__ = [
    "MixConfig",
    "MixSimulation",
    "REAL_DATA",
    "bertrand_stated_ratio",
    "mixing_contraction",
    "mixing_fixed_point",
    "mixing_moments",
    "mixing_population_map",
    "simulate_mixing",
]

REAL_DATA = ("fixed", "fresh")
INITS = ("real_fit", "given")


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MixConfig:
    """Bertrand et al.'s iterated retraining of a 1-D Gaussian MLE on ``n`` real + ``m = lambda n`` synthetic samples.

    Attributes:
      real_samples: ``n >= 2`` real samples per refit (static).
      synthetic_samples: ``m >= 0`` synthetic samples per refit from the previous generation (static);
        ``lambda = m/n``.
      n_generations: number of refits (static); refit 1 is the initial model.
      real_data: ``"fixed"`` (one real set reused, Bertrand et al.'s setting) or ``"fresh"`` (static).
      init: ``"real_fit"`` (refit 1 = MLE on the real data) or ``"given"`` (refit 1 = ``N(mu + delta, s^2)``).
      sigma: true standard deviation (array leaf).
      init_mean_offset: ``delta`` for ``init="given"`` (array leaf).
      init_std: ``s > 0`` for ``init="given"`` (array leaf).
    """

    real_samples: int = _static()
    synthetic_samples: int = _static()
    n_generations: int = _static()
    real_data: str = _static("fixed")
    init: str = _static("real_fit")
    sigma: ArrayLike = 1.0
    init_mean_offset: ArrayLike = 0.0
    init_std: ArrayLike = 1.0

    @property
    def ratio(self) -> float:
        """``lambda = m/n``."""
        return self.synthetic_samples / self.real_samples

    def validate(self) -> MixConfig:
        """Check every field on concrete values; returns ``self``."""
        _checks.check_int("real_samples (n)", self.real_samples, minimum=2)
        _checks.check_int("synthetic_samples (m)", self.synthetic_samples, minimum=0)
        _checks.check_int("n_generations", self.n_generations, minimum=0)
        _checks.check_choice("real_data", self.real_data, REAL_DATA)
        _checks.check_choice("init", self.init, INITS)
        _checks.check_positive_float("sigma", self.sigma)
        _checks._as_float("init_mean_offset", self.init_mean_offset)
        _checks.check_positive_float("init_std", self.init_std)
        return self

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: (v if isinstance(v := getattr(self, f.name), (str, int)) else float(v))
               for f in dataclasses.fields(self)}
        out["lambda"] = self.ratio
        return out


def _matrix(n: int, m: int, fixed: bool, dt) -> tuple[jax.Array, jax.Array]:
    """The affine map ``x_g = A x_{g-1} + k`` on ``x = (e, c, v)`` for ``sigma = 1`` (module docstring)."""
    N = n + m
    a, b = m / N, n / N
    q = 1.0 / n
    f = 1.0 if fixed else 0.0
    inv_m = 1.0 / m if m > 0 else 0.0
    A = np.array([
        [a * a, 2 * a * b * f, a * a * inv_m],
        [0.0, a * f, 0.0],
        [n * m / N**2, -2 * n * m / N**2 * f, (m - 1) / N + n / N**2 if m > 0 else 0.0],
    ])
    k = np.array([b * b * q, b * q * f, ((n - 1) + m / N) / N])  # (n m/N) q = m/N
    return jnp.asarray(A, dt), jnp.asarray(k, dt)


def _init_state(config: MixConfig, dt) -> jax.Array:
    n = config.real_samples
    if config.init == "real_fit":
        fixed = 1.0 if config.real_data == "fixed" else 0.0
        return jnp.asarray([1.0 / n, fixed / n, (n - 1.0) / n], dt)
    s2 = jnp.asarray(config.sigma, dt) ** 2
    d = jnp.asarray(config.init_mean_offset, dt)
    s = jnp.asarray(config.init_std, dt)
    return jnp.stack([d**2, jnp.zeros((), dt), s**2]) / s2


def _check_gens(generations, n_generations: int) -> np.ndarray:
    g = np.atleast_1d(np.asarray(generations))
    if g.ndim != 1 or g.size == 0 or not np.issubdtype(g.dtype, np.integer):
        raise TypeError(f"generations must be a non-empty 1-D list of integers, got {g!r}")
    if g.min() < 1 or g.max() > n_generations:
        raise ValueError(f"generations must lie in [1, n_generations={n_generations}] (generation 0 is the truth), "
                         f"got {g.min()}..{g.max()}")
    return np.unique(g)


def mixing_moments(config: MixConfig, generations) -> dict[str, np.ndarray]:
    """Exact ``E(mu_g - mu)``, ``E(mu_g - mu)^2``, ``E sigma_g^2`` and ``E W2``-free marginal variance.

    Returns:
      dict with ``(R,)`` arrays ``mean_bias`` (``E(mu_g - mu) = a^{g-1} delta``), ``mean_sq_error``,
      ``variance`` (``E sigma_g^2``), ``marginal_variance`` (their sum; ``sigma^2`` exactly for
      ``init="real_fit"``), at the sorted unique ``generations`` (``1..n_generations``).

    References:
      Bertrand et al., arXiv:2310.00429 (setting); the recursion is kcollapse's (module docstring).
    """
    config.validate()
    g = _check_gens(generations, config.n_generations)
    dt = jnp.result_type(float)
    A, k = _matrix(config.real_samples, config.synthetic_samples, config.real_data == "fixed", dt)
    x0 = _init_state(config, dt)
    traj = _iterate(A, k, x0, int(g.max()))
    s2 = float(config.sigma) ** 2
    traj = np.asarray(traj)[g - 1]
    a = config.synthetic_samples / (config.real_samples + config.synthetic_samples)
    delta = float(config.init_mean_offset) if config.init == "given" else 0.0
    out = {
        "mean_bias": delta * a ** (g - 1.0),
        "mean_sq_error": s2 * traj[:, 0],
        "variance": s2 * traj[:, 2],
    }
    out["marginal_variance"] = out["mean_sq_error"] + out["variance"]
    return out


@functools.partial(jax.jit, static_argnames=("steps",))
def _iterate(A, k, x0, steps):
    def body(x, _):
        x = A @ x + k
        return x, x

    _, xs = jax.lax.scan(body, x0, None, length=steps - 1)
    return jnp.concatenate([x0[None], xs])


def mixing_fixed_point(config: MixConfig) -> dict[str, float]:
    """Stationary ``E(mu - mu*)^2`` and ``E sigma^2`` of the chain (``g -> inf``), exact.

    Fresh real data: ``E(mu_inf - mu)^2 = sigma^2 N/(n^2 + 2 n m + m)`` (below the real-only ``sigma^2/n``:
    the synthetic samples carry earlier real batches) and ``E sigma_inf^2 = sigma^2 - that``. Fixed
    real data: ``E(mu_inf - mu)^2 = sigma^2/n + E sigma_hat^2 m/(n^2 + 2 n m + m)`` (a bounded drift
    away from the real-data MLE). Both hold for every ``lambda``.

    Returns:
      ``{"mean_sq_error", "variance", "spectral_radius"}``.
    """
    config.validate()
    A, k = _matrix(config.real_samples, config.synthetic_samples, config.real_data == "fixed", np.float64)
    A, k = np.asarray(A, np.float64), np.asarray(k, np.float64)
    rho = float(np.max(np.abs(np.linalg.eigvals(A))))
    if config.real_data == "fresh":  # c is identically 0: solve on (e, v)
        idx = [0, 2]
        x = np.linalg.solve(np.eye(2) - A[np.ix_(idx, idx)], k[idx])
        e, v = x
    else:
        e, _, v = np.linalg.solve(np.eye(3) - A, k)
    s2 = float(config.sigma) ** 2
    return {"mean_sq_error": s2 * e, "variance": s2 * v, "spectral_radius": rho}


def mixing_contraction(real_samples: int, synthetic_samples: int) -> dict[str, float]:
    """Contraction ratios of the retraining map.

    Returns:
      ``population``: ``lambda/(1 + lambda) = m/N``, the ratio of ``E[mu_g - mu | mu_{g-1}]`` (exact at
      every sample size) and of the infinite-sample map at ``theta*``; ``mean_sq_error``: ``m (m - 1)/N^2``,
      the ratio of ``E(mu_g - mu)^2`` with fresh real data (``-> (lambda/(1+lambda))^2``).
    """
    n = _checks.check_int("real_samples", real_samples, minimum=1)
    m = _checks.check_int("synthetic_samples", synthetic_samples, minimum=0)
    N = n + m
    return {"population": m / N, "mean_sq_error": m * (m - 1) / N**2, "lambda": m / n}


def bertrand_stated_ratio(lam: ArrayLike, *, lipschitz: ArrayLike = 0.0, eps: ArrayLike = 0.0,
                          alpha: ArrayLike = 1.0) -> jax.Array:
    """The stated contraction factor ``lambda (1 + L eps/alpha)`` (stable if ``< 1``) [MEMORY/SECONDARY].

    shared/THEORY.md §7 records the condition from memory/secondary sources (one says ``< 1/2``); the
    exact constant is unverified. For the well-specified Gaussian MLE (``eps = 0``) the exact
    population ratio is ``lambda/(1 + lambda)`` (:func:`mixing_contraction`), which is below this
    factor for every ``lambda > 0``, and the chain is stable for every ``lambda``.
    """
    lam = jnp.asarray(lam)
    lam = lam if jnp.issubdtype(lam.dtype, jnp.floating) else lam.astype(jnp.result_type(float))
    return lam * (1 + jnp.asarray(lipschitz, lam.dtype) * jnp.asarray(eps, lam.dtype) / jnp.asarray(alpha, lam.dtype))


def mixing_population_map(lam: ArrayLike, mean0: ArrayLike, var0: ArrayLike, steps: int, *, mu: ArrayLike = 0.0,
                          sigma: ArrayLike = 1.0) -> tuple[jax.Array, jax.Array]:
    """The infinite-sample retraining map iterated ``steps`` times (exact population dynamics).

    ``theta_{t+1} = argmax_theta E_{p_data} log p_theta + lambda E_{p_theta_t} log p_theta`` for the
    Gaussian is moment matching to the mixture ``(p_data + lambda p_t)/(1 + lambda)``::

        mu_{t+1} = (mu + lambda mu_t)/(1 + lambda)
        sigma_{t+1}^2 = (sigma^2 + lambda sigma_t^2)/(1 + lambda) + lambda (mu_t - mu)^2/(1 + lambda)^2

    Returns:
      ``(means, variances)``, each ``(steps + 1,)`` starting at ``(mean0, var0)``.
    """
    steps = _checks.check_int("steps", steps, minimum=0)
    lam = jnp.asarray(lam, jnp.result_type(float))
    dt = lam.dtype
    mu, s2 = jnp.asarray(mu, dt), jnp.asarray(sigma, dt) ** 2

    def body(th, _):
        m_, v_ = th
        new = ((mu + lam * m_) / (1 + lam), (s2 + lam * v_) / (1 + lam) + lam * (m_ - mu) ** 2 / (1 + lam) ** 2)
        return new, jnp.stack(new)

    init = (jnp.asarray(mean0, dt), jnp.asarray(var0, dt))
    _, traj = jax.lax.scan(body, init, None, length=steps)
    traj = jnp.concatenate([jnp.stack(init)[None], traj])
    return traj[:, 0], traj[:, 1]


# ------------------------------------------------------------------------------------------------
# Simulator
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MixSimulation(PerChainStats):
    """Per-chain ``mu_g - mu`` and ``sigma_g^2`` at the reported generations.

    Attributes:
      generations: ``(R,)``. mean_shift, variance: ``(chains, R)``. config: the :class:`MixConfig`.
    """

    generations: np.ndarray
    mean_shift: np.ndarray
    variance: np.ndarray
    config: MixConfig

    @property
    def n_chains(self) -> int:
        return int(self.mean_shift.shape[0])

    def values(self, name: str) -> np.ndarray:
        if name == "mean_bias":
            return self.mean_shift
        if name == "mean_sq_error":
            return self.mean_shift**2
        if name == "variance":
            return self.variance
        if name == "marginal_variance":
            return self.mean_shift**2 + self.variance
        raise KeyError(f"unknown quantity {name!r}")



@functools.partial(jax.jit, static_argnames=("n", "m", "fixed", "given", "steps"))
def _run(keys, sigma, delta, s0, *, n, m, fixed, given, steps):
    dt = sigma.dtype
    N = n + m

    def real_stats(key):
        kz, kc = jax.random.split(key)
        z = jax.random.normal(kz, (), dt)
        chi = 2 * jax.random.gamma(kc, (n - 1) / 2, (), dt)
        return sigma * z / math.sqrt(n), sigma**2 * chi  # xbar - mu, centred scatter

    def chain(key):
        k_real, k_steps = jax.random.split(key)
        xr0, sr0 = real_stats(k_real)
        if given:
            state = (delta, s0**2)
        else:
            state = (xr0, sr0 / n)

        def body(state, i):
            mu_prev, var_prev = state
            ks = jax.random.fold_in(k_steps, i)
            kr, kz, kc = jax.random.split(ks, 3)
            xr, sr = (xr0, sr0) if fixed else real_stats(kr)
            if m == 0:
                mu_new, var_new = xr, sr / n
            else:
                sd = jnp.sqrt(var_prev)
                xs = mu_prev + sd * jax.random.normal(kz, (), dt) / math.sqrt(m)
                ss = var_prev * (2 * jax.random.gamma(kc, (m - 1) / 2, (), dt) if m > 1 else jnp.zeros((), dt))
                mu_new = (n * xr + m * xs) / N
                var_new = (sr + ss + (n * m / N) * (xr - xs) ** 2) / N
            return (mu_new, var_new), jnp.stack([mu_new, var_new])

        _, traj = jax.lax.scan(body, state, jnp.arange(2, steps + 1))
        return jnp.concatenate([jnp.stack(state)[None], traj])  # generations 1..steps

    return jax.vmap(chain)(keys)


def simulate_mixing(key: jax.Array, config: MixConfig, generations, n_chains: int, *,
                    chain_offset: int = 0, batch_size: int | None = None) -> MixSimulation:
    """Simulate ``n_chains`` retraining chains from the exact law of the fits' sufficient statistics.

    Every refit draws the real batch mean and scatter (``xbar ~ N(mu, sigma^2/n)``, scatter ``sigma^2
    chi2_{n-1}``; once per chain for ``real_data="fixed"``) and the synthetic batch mean and scatter
    given the previous fit, then pools them (MLE). Chain ``i`` uses ``fold_in(key, chain_offset + i)``.

    Args:
      key: typed PRNG key. config: :class:`MixConfig`. generations: reported refits ``1..G``.
      n_chains: number of chains. chain_offset: index of the first chain.
      batch_size: chains per compiled call (default ``min(n_chains, 4096)``); every call runs a full
        batch (extra chains are dropped), so one compilation serves every call.

    Returns:
      A :class:`MixSimulation`.
    """
    config.validate()
    g = _check_gens(generations, config.n_generations)
    n_chains = _checks.check_int("n_chains", n_chains, minimum=1)
    chain_offset = _checks.check_int("chain_offset", chain_offset, minimum=0)
    batch_size = min(n_chains, 4096) if batch_size is None else _checks.check_int("batch_size", batch_size, minimum=1)
    dt = jnp.result_type(float)
    traj = map_seed_batches(
        lambda keys: np.asarray(_run(keys, jnp.asarray(config.sigma, dt), jnp.asarray(config.init_mean_offset, dt),
                                     jnp.asarray(config.init_std, dt), n=config.real_samples,
                                     m=config.synthetic_samples, fixed=config.real_data == "fixed",
                                     given=config.init == "given", steps=int(g.max())))[:, g - 1],
        key, np.arange(chain_offset, chain_offset + n_chains), batch_size)
    if not np.all(np.isfinite(traj)):
        raise FloatingPointError("non-finite value in the mixing simulation")
    return MixSimulation(g, traj[..., 0], traj[..., 1], config)
