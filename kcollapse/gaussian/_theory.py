"""Exact moments of the recursive Gaussian refit (shared/THEORY.md §6.1 and §7), replace and accumulate.

Setting (see :class:`~kcollapse.gaussian.RefitConfig`): generation 0 is ``N(mu, sigma^2 I_d)``;
refit ``k = 1..g`` draws ``M_k`` samples from generation ``k - 1`` and fits the sample mean and the
sample covariance over a pool of ``N_k`` points (replace: ``N_k = M_k``; accumulate: ``N_k = M_1 + ...
+ M_k``) with divisor ``D_k = N_k - 1`` (unbiased) or ``N_k`` (MLE).

Everything below rests on one exact fact (kcollapse's derivation, docs/notes/gaussian.md): writing
``Sigma_{k-1} = A A^T``, the new fit is ``Sigma_k = A B_k A^T / D_k`` and ``mu_k = mu_{k-1} + (M_k/N_k)
A z_k / sqrt(M_k)`` with::

    B_k = a_k I + W_k + c_k z_k z_k^T,   W_k ~ Wishart_d(M_k - 1, I),  z_k ~ N(0, I_d),

``a_k = D(N_{k-1})``, ``c_k = N_{k-1}/N_k`` (both 0 for replace and for ``k = 1``), and ``(W_k, z_k)``
independent of the past. Hence, with ``rho_k = E tr B_k/(d D_k) = 1 + delta_k``::

    delta_k = 0 (replace, unbiased),  -1/M_k (replace, MLE),  -M_k/(N_k D_k) (accumulate, k >= 2)
    E tr Sigma_g     = d sigma^2 P_g,                 P_g = prod_{k<=g} rho_k
    E||mu_g - mu||^2 = d sigma^2 sum_{k<=g} P_{k-1} M_k/N_k^2  (+ g d eta^2 with mean noise)

Replace/unbiased/constant ``M``: ``g sigma^2/M`` and ``sigma^2`` (THEORY.md §6.1, exact); accumulate/
MLE/constant ``n``: ``sigma^2 (1 - P_g)`` and ``sigma^2 P_g`` with ``P_g = prod_{k<=g} (1 - 1/(n k^2))``
(Kazdan et al. 2410.16713v4, Theorem 1; the finite-``g`` mean formula is kcollapse's, from the
telescoping ``P_{k-1} - P_k = P_{k-1}/(n k^2)``).

For ``d = 1`` the standard deviation is a product of independent factors ``sigma_g = sigma prod_k
sqrt(U_k)``, ``U_k = B_k/D_k``, which gives ``E sigma_g``, ``E W2^2`` and ``E log sigma_g^2`` exactly
(closed forms for replace, a one-dimensional Laplace-transform quadrature for accumulate).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ._config import resolve_estimator
from ._special import chi2_log_mean, chi2_log_moment, chi2_log_var, laplace_sqrt_log

__all__ = [
    "chi_mean_factor",
    "collapse_probability_bound",
    "expected_log_det_change",
    "expected_mean_sq_error",
    "expected_scale",
    "expected_variance",
    "expected_w2_sq",
    "kazdan_limits",
    "log_det_change_variance",
    "log_spread",
    "shumailov_second_order",
    "suresh_collapse_bound",
    "w2_sq_variance",
]


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _jit_validated(*static: str):
    """``jax.jit`` a ``(generations, batch_sizes, ...)`` function with ``static`` keyword arguments.

    Concrete arguments are validated first (generations in range, mode/estimator names), and
    ``estimator="paper"`` is resolved, so the compiled function sees only valid, concrete choices.
    """

    def wrap(fn):
        jfn = jax.jit(fn, static_argnames=static)

        @functools.wraps(fn)
        def wrapper(generations, batch_sizes, *args, **kwargs):
            mode = kwargs.get("mode", "replace")
            if "mode" in kwargs:
                _checks.check_choice("mode", mode, ("replace", "accumulate"))
            if "estimator" in kwargs:
                kwargs["estimator"] = resolve_estimator(mode if fn.__name__ != "w2_sq_variance" else "replace",
                                                        kwargs["estimator"])
            if "dim" in kwargs:
                kwargs["dim"] = _checks.check_int("dim", kwargs["dim"], minimum=1)
            if not isinstance(batch_sizes, jax.core.Tracer):
                bs = np.asarray(batch_sizes)
                if bs.ndim != 1:
                    raise ValueError(f"batch_sizes must be 1-dimensional (one entry per refit), got shape {bs.shape}")
                if bs.size and bs.min() < 2:
                    raise ValueError(f"batch_sizes must be >= 2 (a variance needs two samples), got minimum {bs.min()}")
                _check_generations(generations, bs.shape[0])
            return jfn(generations, batch_sizes, *args, **kwargs)

        return wrapper

    return wrap


class _Steps(NamedTuple):
    M: jax.Array        # (K,) batch sizes
    nu: jax.Array       # M - 1
    N: jax.Array        # pool sizes
    D: jax.Array        # covariance divisors
    pool: jax.Array     # a_k = D(N_{k-1}) (0 for replace and k = 1)
    c: jax.Array        # N_{k-1}/N_k (0 for replace and k = 1)
    delta: jax.Array    # rho_k - 1, exact
    first: jax.Array    # bool: this refit sees no earlier pool


def _steps(batch_sizes: ArrayLike, mode: str, estimator: str) -> _Steps:
    M = _float(batch_sizes)
    if M.ndim != 1:
        raise ValueError(f"batch_sizes must be 1-dimensional (one entry per refit), got shape {M.shape}")
    estimator = resolve_estimator(mode, estimator)
    off = 1.0 if estimator == "unbiased" else 0.0
    if mode == "replace":
        N = M
        first = jnp.ones(M.shape, bool)
    else:
        N = jnp.cumsum(M)
        first = jnp.arange(M.shape[0]) == 0
    N_prev = N - M
    D = N - off
    pool = jnp.where(first, 0.0, N_prev - off)
    c = jnp.where(first, 0.0, N_prev / N)
    delta = jnp.where(first, (off - 1.0) / D, -M / (N * D))
    return _Steps(M, M - 1, N, D, pool, c, delta, first)


def _check_generations(generations: ArrayLike, n_refits: int) -> None:
    if isinstance(generations, jax.core.Tracer):
        return
    g = np.asarray(generations)
    if not np.issubdtype(g.dtype, np.integer):
        raise TypeError(f"generations must be integers, got dtype {g.dtype}")
    if g.size and (g.min() < 0 or g.max() > n_refits):
        raise ValueError(f"generations must lie in [0, {n_refits}] (one batch size per refit was given), "
                         f"got {g.min()}..{g.max()}; pass a longer batch_sizes schedule")


def _at(per_step: jax.Array, generations: ArrayLike) -> jax.Array:
    """Cumulative sum of per-step values read at ``generations`` (entry 0, the truth, is the empty sum)."""
    _check_generations(generations, per_step.shape[0])
    g = jnp.asarray(generations)
    cum = jnp.concatenate([jnp.zeros((1,), per_step.dtype), jnp.cumsum(per_step)])
    return cum[g]


def _log_rho(st: _Steps) -> jax.Array:
    return jnp.log1p(st.delta)


@_jit_validated("mode", "estimator", "dim")
def expected_variance(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                      estimator: str = "paper", dim: int = 1, sigma: ArrayLike = 1.0) -> jax.Array:
    """``E tr Sigma_g`` (``E sigma_g^2`` for ``d = 1``), exact.

    ``E tr Sigma_g = d sigma^2 prod_{k<=g} (1 + delta_k)`` with ``delta_k`` as in the module docstring:
    replace/unbiased ``sigma^2`` (a martingale, THEORY.md §6.1); replace/MLE ``sigma^2 (1 - 1/M)^g``;
    accumulate/MLE ``sigma^2 prod_{k<=g} (1 - 1/(n k^2))`` (Kazdan et al., Theorem 1).

    Args:
      generations: int array of generations ``0 <= g <= len(batch_sizes)``; any shape.
      batch_sizes: ``(G,)`` samples ``M_k`` drawn at refits ``k = 1..G`` (:func:`refit_schedule`).
      mode: ``"replace"`` or ``"accumulate"`` (static). estimator: ``"unbiased"``, ``"mle"`` or
        ``"paper"`` (static). dim: ``d`` (static). sigma: true standard deviation.

    Returns:
      Array of the shape of ``generations``.

    References:
      Shumailov et al., arXiv:2305.17493v3 §4.2; Kazdan et al., arXiv:2410.16713v4, Theorem 1.
    """
    st = _steps(batch_sizes, mode, estimator)
    sigma = jnp.asarray(sigma, st.M.dtype)
    return dim * sigma**2 * jnp.exp(_at(_log_rho(st), generations))


@_jit_validated("mode", "estimator", "dim")
def expected_mean_sq_error(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                           estimator: str = "paper", dim: int = 1, sigma: ArrayLike = 1.0,
                           mean_noise: ArrayLike = 0.0) -> jax.Array:
    """``E||mu_g - mu||^2``, exact: ``d sigma^2 sum_{k<=g} P_{k-1} M_k/N_k^2 + g d eta^2``.

    Replace/unbiased, constant ``M``: ``g d sigma^2/M`` (THEORY.md §6.1: ``g sigma^2/M``), plus
    ``g d eta^2`` with Shumailov's mean noise. Replace/MLE: ``d sigma^2 (1 - (1 - 1/M)^g)`` (bounded).
    Accumulate/MLE, constant ``n``: ``d sigma^2 (1 - P_g)``, ``P_g = prod_{k<=g}(1 - 1/(n k^2))``, whose
    limit is Kazdan et al.'s ``sigma^2 (1 - sin(pi/sqrt n)/(pi/sqrt n))``.

    Args: as :func:`expected_variance`; mean_noise: ``eta >= 0`` (replace only).

    References:
      Shumailov et al., arXiv:2305.17493v3 §4.2-4.3; Kazdan et al., arXiv:2410.16713v4, Theorem 1
      (limit); the finite-``g`` accumulate formula is kcollapse's derivation (docs/notes/gaussian.md).
    """
    st = _steps(batch_sizes, mode, estimator)
    dt = st.M.dtype
    sigma, eta = jnp.asarray(sigma, dt), jnp.asarray(mean_noise, dt)
    log_p = jnp.concatenate([jnp.zeros((1,), dt), jnp.cumsum(_log_rho(st))[:-1]])  # log P_{k-1}
    per_step = dim * sigma**2 * jnp.exp(log_p) * st.M / st.N**2 + dim * eta**2
    return _at(per_step, generations)


def _log_det_step_mean(st: _Steps, mode: str, dim: int) -> jax.Array:
    if mode == "replace":
        i = jnp.arange(dim, dtype=st.M.dtype)
        return jnp.sum(chi2_log_mean(st.nu[:, None] - i, st.D[:, None]), axis=1)
    if dim != 1:
        raise ValueError(f"the accumulate-mode log-determinant and scale are implemented for dim = 1 only, got dim={dim}")
    first = chi2_log_mean(st.nu, st.D)
    _, e_log = laplace_sqrt_log(st.nu, st.c, st.D, st.M / st.D)
    return jnp.where(st.first, first, e_log)


@_jit_validated("mode", "estimator", "dim")
def expected_log_det_change(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                            estimator: str = "paper", dim: int = 1) -> jax.Array:
    """``E[log det Sigma_g - log det Sigma_0]`` (``E log(sigma_g^2/sigma^2)`` for ``d = 1``), exact.

    Replace: ``log det Sigma_g`` is a random walk with independent steps ``log det(W_k/D_k)``, so
    ``E = sum_{k<=g} sum_{i<d} [psi((M_k - 1 - i)/2) + log(2/D_k)]``; for ``d = 1`` the drift per refit
    is ``E log(chi2_{M-1}/(M-1)) ~ -1/(M-1) < 0`` (unbiased) -- the almost-sure collapse of
    THEORY.md §6.1 while ``E sigma_g^2`` stays ``sigma^2``. Accumulate (``d = 1``): the steps are
    ``log U_k`` with ``U_k = (a_k + chi2_{M-1} + c_k chi2_1)/D_k`` (quadrature); the sum converges.

    References:
      THEORY.md §6.1 "Almost-sure collapse" [DERIVED]; Wishart log-determinant (Bartlett decomposition).
    """
    st = _steps(batch_sizes, mode, estimator)
    return _at(_log_det_step_mean(st, mode, dim), generations)


@_jit_validated("mode", "estimator", "dim")
def log_det_change_variance(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                            estimator: str = "paper", dim: int = 1) -> jax.Array:
    """``Var log det Sigma_g = sum_{k<=g} sum_{i<d} psi'((M_k - 1 - i)/2)`` (replace only), exact.

    With the drift of :func:`expected_log_det_change` this makes the almost-sure collapse a
    quantitative statement: ``log sigma_g^2`` has mean ``~ -g/(M-1)`` and sd ``~ sqrt(2g/(M-1))``.
    (Does not depend on the estimator: the divisor only shifts the walk.)

    Raises:
      ValueError: for ``mode="accumulate"`` (not implemented).
    """
    if mode != "replace":
        raise ValueError("log_det_change_variance is implemented for mode='replace' only")
    st = _steps(batch_sizes, mode, estimator)
    i = jnp.arange(dim, dtype=st.M.dtype)
    per_step = jnp.sum(chi2_log_var(st.nu[:, None] - i), axis=1)
    return _at(per_step, generations)


def _log_scale_steps(st: _Steps, mode: str, dim: int) -> jax.Array:
    """Per refit ``log E det(B_k/D_k)^{1/(2d)}`` (for ``d = 1``: ``log E sqrt(U_k)``)."""
    if mode == "replace":
        i = jnp.arange(dim, dtype=st.M.dtype)
        return jnp.sum(chi2_log_moment(st.nu[:, None] - i, st.D[:, None], 1.0 / (2 * dim)), axis=1)
    if dim != 1:
        raise ValueError(f"the accumulate-mode log-determinant and scale are implemented for dim = 1 only, got dim={dim}")
    first = chi2_log_moment(st.nu, st.D, 0.5)
    one_minus_sqrt, _ = laplace_sqrt_log(st.nu, st.c, st.D, st.M / st.D)
    return jnp.where(st.first, first, jnp.log1p(-one_minus_sqrt))


@_jit_validated("mode", "estimator", "dim")
def expected_scale(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                   estimator: str = "paper", dim: int = 1, sigma: ArrayLike = 1.0) -> jax.Array:
    """``E sigma_g`` for ``d = 1``; for ``d > 1`` the geometric-mean scale ``E det(Sigma_g)^{1/(2d)}``.

    Replace: ``E sigma_g = sigma prod_k c_k`` with ``c_k = E sqrt(chi2_{M_k-1}/D_k)``; unbiased and
    constant ``M``: ``sigma c4(M)^g``, ``c4(M) = sqrt(2/(M-1)) Gamma(M/2)/Gamma((M-1)/2) ~ 1 - 1/(4M)``
    (THEORY.md §6.1). ``d > 1`` (replace): ``prod_k prod_{i<d} E(chi2_{M_k-1-i}/D_k)^{1/(2d)}``.
    Accumulate (``d = 1`` only): ``sigma prod_k E sqrt(U_k)`` by quadrature (kcollapse's derivation).

    References:
      Shumailov et al., arXiv:2305.17493v3 §4.2 (via THEORY.md §6.1 exact formulas [DERIVED]).
    """
    st = _steps(batch_sizes, mode, estimator)
    sigma = jnp.asarray(sigma, st.M.dtype)
    return sigma * jnp.exp(_at(_log_scale_steps(st, mode, dim), generations))


@_jit_validated("mode", "estimator")
def expected_w2_sq(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
                   estimator: str = "paper", sigma: ArrayLike = 1.0, mean_noise: ArrayLike = 0.0) -> jax.Array:
    """``E W2^2(N(mu_g, sigma_g^2), N(mu, sigma^2)) = E(mu_g - mu)^2 + E(sigma_g - sigma)^2`` (``d = 1``), exact.

    Replace/unbiased, constant ``M``: ``sigma^2 [g/M + 2(1 - c4(M)^g)]`` (THEORY.md §6.1), growing
    linearly in ``g`` (second order: ``(3/2) sigma^2 g/M``, Shumailov's). Replace/MLE:
    ``2 sigma^2 (1 - c(M)^g)`` (bounded by ``2 sigma^2``). Accumulate: bounded (Kazdan et al.).
    Evaluated as ``E(mu_g - mu)^2 + sigma^2 [expm1(log P_g) - 2 expm1(log C_g)]`` so that small
    values keep their relative precision.

    References:
      Shumailov et al., arXiv:2305.17493v3 §4.2; Kazdan et al., arXiv:2410.16713v4 (boundedness).
    """
    st = _steps(batch_sizes, mode, estimator)
    sigma = jnp.asarray(sigma, st.M.dtype)
    msq = expected_mean_sq_error(generations, batch_sizes, mode=mode, estimator=estimator, dim=1, sigma=sigma,
                                 mean_noise=mean_noise)
    log_p = _at(_log_rho(st), generations)
    log_c = _at(_log_scale_steps(st, mode, 1), generations)
    return msq + sigma**2 * (jnp.expm1(log_p) - 2 * jnp.expm1(log_c))


@_jit_validated("estimator")
def w2_sq_variance(generations: ArrayLike, batch_sizes: ArrayLike, *, estimator: str = "unbiased",
                   sigma: ArrayLike = 1.0, mean_noise: ArrayLike = 0.0) -> tuple[jax.Array, jax.Array]:
    """``(E W2^2, Var W2^2)`` for the replace chain in ``d = 1``, exact (kcollapse's derivation).

    With ``S_k = mu_k - mu``: ``S_k = S_{k-1} + sigma_{k-1} Z_k/sqrt(M_k) + eta xi_k`` and
    ``sigma_k = sigma_{k-1} R_k``, ``R_k = sqrt(chi2_{M_k-1}/D_k)``, all fresh variables independent.
    The moments ``a_{p,q} = E S^p sigma^q`` with ``p + q <= 4`` obey a closed linear recursion
    (``m_q = E R^q``)::

        a_{0,q}' = m_q a_{0,q}
        a_{2,q}' = m_q (a_{2,q} + a_{0,q+2}/M + eta^2 a_{0,q}),                 q = 0, 1, 2
        a_{4,0}' = a_{4,0} + 6 (a_{2,2}/M + eta^2 a_{2,0}) + 3 (a_{0,4}/M^2 + 2 eta^2 a_{0,2}/M + eta^4)

    and ``W2^2 = S^2 + (sigma_g - sigma)^2`` expands into them. To leading order
    ``Var W2^2 ~ (5/2) sigma^4 (sum_k 1/M_k)^2`` (``eta = 0``); the [READ-M] restoration of
    Shumailov's eq. (5) in THEORY.md §6.1 reads ``3 sigma^4 (...)^2``, which the exact value and
    simulation contradict (docs/notes/gaussian.md).

    Returns:
      ``(mean, variance)``, each of the shape of ``generations``; the variance is ``+inf`` where it
      exceeds the float range (``E sigma_g^4 = sigma^4 prod_k (M_k+1)/(M_k-1)`` for the unbiased estimator).
    """
    st = _steps(batch_sizes, "replace", estimator)
    dt = st.M.dtype
    sigma, eta2 = jnp.asarray(sigma, dt), jnp.asarray(mean_noise, dt) ** 2
    log_m = jnp.stack([chi2_log_moment(st.nu, st.D, q / 2) for q in (1, 2, 3, 4)], axis=1)  # (K, 4)
    m = jnp.exp(log_m)
    inv_m = 1.0 / st.M

    def step(a, xs):
        mq, h = xs  # mq: (4,) = m_1..m_4; h = 1/M
        a01, a02, a03, a04, a20, a21, a22, a40 = a
        a40n = a40 + 6 * (h * a22 + eta2 * a20) + 3 * (h**2 * a04 + 2 * h * eta2 * a02 + eta2**2)
        a20n = a20 + h * a02 + eta2
        a21n = mq[0] * (a21 + h * a03 + eta2 * a01)
        a22n = mq[1] * (a22 + h * a04 + eta2 * a02)
        new = (mq[0] * a01, mq[1] * a02, mq[2] * a03, mq[3] * a04, a20n, a21n, a22n, a40n)
        return new, jnp.stack(new)

    zero = jnp.zeros((), dt)
    init = (sigma, sigma**2, sigma**3, sigma**4, zero, zero, zero, zero)
    _, traj = jax.lax.scan(step, init, (m, inv_m))
    _check_generations(generations, st.M.shape[0])
    traj = jnp.concatenate([jnp.stack(init)[None], traj])[jnp.asarray(generations)]
    a01, a02, a03, a04, a20, a21, a22, a40 = (traj[..., i] for i in range(8))
    # (sigma_g - sigma)^p moments through expm1 of the log-moments: no O(1) cancellation.
    lq = [jnp.concatenate([jnp.zeros((1,), dt), jnp.cumsum(log_m[:, q])])[jnp.asarray(generations)] for q in range(4)]
    e1, e2, e3, e4 = (jnp.expm1(v) for v in lq)
    central2 = sigma**2 * (e2 - 2 * e1)                       # E(sigma_g - sigma)^2
    central4 = sigma**4 * (e4 - 4 * e3 + 6 * e2 - 4 * e1)     # E(sigma_g - sigma)^4
    mean = a20 + central2
    second = a40 + 2 * (a22 - 2 * sigma * a21 + sigma**2 * a20) + central4
    # E sigma_g^4 grows like ((M+1)/(M-1))^g: past the float range the variance is +inf, not NaN.
    return mean, jnp.where(jnp.isfinite(second), second - mean**2, jnp.inf)


@_jit_validated("dim")
def shumailov_second_order(generations: ArrayLike, batch_sizes: ArrayLike, *, sigma: ArrayLike = 1.0,
                           dim: int = 1, mean_noise: ArrayLike = 0.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Leading-order (in ``1/M``) forms for the replace chain: ``(E W2^2, Var W2^2, Var X^g)``.

    With ``G_g = sum_{k<=g} 1/M_k`` and mean noise ``eta``:

    * ``E W2^2 ~ sigma^2 G_g d (d + 5)/4 + g d eta^2``; for ``d = 1`` Shumailov's
      ``(3/2) sigma^2 (1/M_0 + ... + 1/M_n)`` (THEORY.md §6.1). The ``d > 1`` form is kcollapse's
      (Bures term ``~ tr E^2/4`` with ``E tr E^2 ~ d (d + 1) G_g``).
    * ``Var W2^2 ~ 2 d (sigma^2 G_g + g eta^2)^2 + sigma^4 G_g^2 d (d + 1)/4``; ``(5/2) sigma^4 G_g^2`` for
      ``d = 1``, ``eta = 0`` (kcollapse's; corrects the ``3 sigma^4 G_g^2`` of THEORY.md's eq. (5) reading).
    * per-coordinate marginal variance of a generation-``g`` sample: ``sigma^2 (1 + G_g) + g eta^2``
      (Shumailov; exact for the unbiased estimator).

    References:
      Shumailov et al., arXiv:2305.17493v3 §4.2, eqs. (4)-(5).
    """
    M = _float(batch_sizes)
    dt = M.dtype
    sigma, eta2 = jnp.asarray(sigma, dt), jnp.asarray(mean_noise, dt) ** 2
    G = _at(1.0 / M, generations)
    g = jnp.asarray(generations).astype(dt)
    w2 = sigma**2 * G * dim * (dim + 5) / 4 + g * dim * eta2
    var = 2 * dim * (sigma**2 * G + g * eta2) ** 2 + sigma**4 * G**2 * dim * (dim + 1) / 4
    marginal = sigma**2 * (1 + G) + g * eta2
    return w2, var, marginal


def chi_mean_factor(batch_size: ArrayLike, *, estimator: str = "unbiased") -> jax.Array:
    """One replace refit's ``E sigma_1/sigma = E sqrt(chi2_{M-1}/D)``: ``c4(M)`` (unbiased) or ``c4(M) sqrt((M-1)/M)`` (MLE)."""
    M = _float(batch_size)
    D = M - 1 if resolve_estimator("replace", estimator) == "unbiased" else M
    return jnp.exp(chi2_log_moment(M - 1, D, 0.5))


@_jit_validated("mode", "estimator", "dim")
def collapse_probability_bound(generations: ArrayLike, batch_sizes: ArrayLike, eps: ArrayLike, *,
                               mode: str = "replace", estimator: str = "paper", dim: int = 1,
                               sigma: ArrayLike = 1.0) -> jax.Array:
    """Markov bound ``P(sigma_g > eps) <= min(1, E sigma_g / eps)`` with the exact ``E sigma_g``.

    (``d > 1``: ``sigma_g = det(Sigma_g)^{1/(2d)}``.) Tighter than :func:`suresh_collapse_bound`, which
    is the same inequality after ``E sqrt(chi2_{M-1}/D) <= exp(-1/(4M))``.
    """
    scale = expected_scale(generations, batch_sizes, mode=mode, estimator=estimator, dim=dim, sigma=sigma)
    return jnp.minimum(1.0, scale / jnp.asarray(eps, scale.dtype))


@_jit_validated()
def suresh_collapse_bound(generations: ArrayLike, batch_sizes: ArrayLike, eps: ArrayLike, *,
                          sigma: ArrayLike = 1.0) -> jax.Array:
    """Suresh et al.: ``P(sigma_k > eps) <= (sigma/eps) exp(-k/(4n))`` (replace, ``d = 1``), capped at 1.

    For a schedule ``M_k`` kcollapse uses ``exp(-sum_k 1/(4 M_k))``. The bound follows from Markov's
    inequality and ``E sqrt(chi2_{M-1}/D) <= exp(-1/(4M))`` for both the unbiased (``D = M - 1``) and the
    ML (``D = M``) variance; the tests check that inequality and the bound against simulation.

    References:
      Suresh, Thangaraj, Khandavally, "Rate of Model Collapse in Recursive Training", AISTATS 2025,
      arXiv:2412.17646 [SECONDARY in THEORY.md §7].
    """
    M = _float(batch_sizes)
    sigma = jnp.asarray(sigma, M.dtype)
    rate = _at(1.0 / (4 * M), generations)
    return jnp.minimum(1.0, sigma / jnp.asarray(eps, M.dtype) * jnp.exp(-rate))


def kazdan_limits(batch_size: ArrayLike, *, sigma: ArrayLike = 1.0, dim: int = 1) -> tuple[jax.Array, jax.Array]:
    """Kazdan et al.'s ``g -> inf`` limits under accumulate with the MLE and ``n`` samples per refit.

    ``E tr Sigma_inf = d sigma^2 prod_{k>=1} (1 - 1/(n k^2)) = d sigma^2 sin(pi/sqrt n)/(pi/sqrt n)`` and
    ``E||mu_inf - mu||^2 = d sigma^2 (1 - sin(pi/sqrt n)/(pi/sqrt n))`` (``d = 1`` in the paper; the
    ``d``-dimensional form is kcollapse's, trace-wise identical).

    Returns:
      ``(variance_limit, mean_sq_error_limit)``.

    References:
      Kazdan et al., "Collapse or Thrive?", arXiv:2410.16713v4, Theorem 1 and Lemmas 2-3.
    """
    n = _float(batch_size)
    sinc = jnp.sinc(1.0 / jnp.sqrt(n))  # jnp.sinc(x) = sin(pi x)/(pi x)
    s2 = dim * jnp.asarray(sigma, n.dtype) ** 2
    return s2 * sinc, s2 * (1 - sinc)


@_jit_validated("mode", "estimator")
def log_spread(generations: ArrayLike, batch_sizes: ArrayLike, *, mode: str = "replace",
               estimator: str = "paper") -> jax.Array:
    """``v_g = sum_{k<=g} Var(U_k)/E(U_k)^2``, the log-variance proxy of ``sigma_g^2`` (heavy-tail diagnostic).

    ``U_k = (a_k + chi2_{M-1} + c_k chi2_1)/D_k``, so ``Var U/E^2 U = (2 nu + 2 c^2)/(a + nu + c)^2``
    (``2/(M-1)`` for replace). ``sigma_g^2`` is close to log-normal with log-variance ``~ v_g``; moments
    of order ``q`` of ``sigma_g`` have relative spread ``~ exp(q^2 v_g/4)``.
    """
    st = _steps(batch_sizes, mode, estimator)
    return _at((2 * st.nu + 2 * st.c**2) / (st.pool + st.nu + st.c) ** 2, generations)
