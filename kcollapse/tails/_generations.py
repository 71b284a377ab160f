"""Exact error after ``n`` generations of resampling (finite-sample cuts, Tale of Tails Cor 2.2 / Thm 2.4).

The chain (THEORY.md §5.2, Thm 2.4): generation 1 is the empirical distribution of ``T0`` draws
from the real law ``p``; generation ``m + 1`` is the empirical distribution of ``T0`` draws from
generation ``m``; the downstream Hutter LLM is trained on ``T`` draws from generation ``n``
(``n = 0``: from ``p``; ``n = 1``: the finite-sample cut of Cor 2.2). Its expected error is

    E^(n)(T) = sum_i p_i E[(1 - C_i^(n)/T0)^T],

where the count ``C^(m)`` of one token is a Wright-Fisher chain: ``C^(1) ~ Bin(T0, p_i)``,
``C^(m+1) | C^(m) ~ Bin(T0, C^(m)/T0)``. Two exact evaluations:

* **forward** (``T`` not much smaller than ``T0``): ``h(c) = (1 - c/T0)^T`` is pulled back through
  the binomial kernel, ``h <- K h`` (``n - 1`` times), and averaged over ``Bin(T0, p_i)``. Counts are
  truncated at ``K``: since ``E[e^{-u Bin(T0, c/T0)}] <= e^{-c(1 - e^{-u})}``, the pulled-back
  function is ``<= exp(-c phi^(j)(T/T0))`` with ``phi(u) = 1 - e^{-u}``; ``K = 46/phi^(n)(T/T0)``
  makes the dropped mass ``< e^{-46}``. The kernel is banded (``|c' - c| <= 10 sqrt(K) + 30``).
* **dual** (integer ``T <= 5000``; used when ``T ≪ T0``): by duality with the coalescent, the downstream sample
  traces back to ``A_n`` distinct generation-1 draws, which are iid from ``p``; ``A`` follows ``n``
  occupancy steps (``a`` balls into ``T0`` urns, ``A <- #occupied``) from ``A = T``, and
  ``E^(n)(T) = E[E_clean(A_n)]`` with ``E_clean(a) = sum_i p_i (1 - p_i)^a``.

The two agree to ~1e-12 where both apply (tests/test_tails.py).

References:
  A Tale of Tails (arXiv:2402.07043v2), Cor 2.2 and Thm 2.4 (printed ``E^(n) ≍ T^{-c} + n T0^{-c}``;
  see :func:`kcollapse.tails.generations_law` for the corrected asymptotics).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlog1py, xlogy, zeta
from jax.typing import ArrayLike

from .. import _checks
from ._engine import token_sum
from ._laws import TokenLaw, _check_beta, _float
from ._theory import clean_error, hutter_error

__all__ = ["count_truncation", "finite_sample_error", "generations_error"]

_TAIL = 46.0  # e^{-46} ~ 1e-20: the truncated count mass
_FORWARD_BUDGET = 2.5e7  # (K + 1)(2W + 1) entries of the banded kernel
_DUAL_MAX_T = 5000


def _phi_iter(theta: float, n: int) -> float:
    u = float(theta)
    for _ in range(n):
        u = -math.expm1(-u)
    return u


def count_truncation(T_min: float, T0: int, n_generations: int) -> tuple[int, int]:
    """Static sizes ``(K, W)`` of the forward evaluation: count cap and kernel half-band.

    ``K + 1 >= 46/phi^(n)(T_min/T0)`` (rounded up to a power of two to share compilations; at most
    ``T0``) and ``W = ceil(10 sqrt(K) + 30)`` (at most ``K``).
    """
    psi = _phi_iter(T_min / T0, max(n_generations, 1))
    need = int(math.ceil(_TAIL / psi)) if psi > 0 else T0
    K = min(T0, 1 << max(need, 16).bit_length())
    W = min(K, int(math.ceil(10 * math.sqrt(K) + 30)))
    return K, W


def _log_binom_pmf(c, mean, p, T0, log_falling):
    """``log Bin(c; T0, p)`` with ``mean = T0 p``, accurate for large ``T0`` (no gammaln(T0) cancellation)."""
    cf = c.astype(mean.dtype)
    return log_falling[c] - gammaln(cf + 1) + xlogy(cf, mean) + xlog1py(T0 - cf, -p)


def _forward(T, T0, n_max: int, beta, K: int, W: int, explicit: int, law: TokenLaw | None = None):
    """``(n_max + 1,)`` errors ``E^(0..n_max)(T)`` by the forward (count-space) recursion.

    ``law``: the start law ``q`` (generation 1 = ``T0`` draws from it); ``None`` = ``p``.
    """
    dtype = beta.dtype
    T0f = jnp.asarray(T0, dtype)
    counts = jnp.arange(K + 1)
    cf = counts.astype(dtype)
    log_falling = jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(jnp.log1p(-jnp.arange(K, dtype=dtype) / T0f))])
    g0 = jnp.exp(xlog1py(T, -cf / T0f))
    offsets = jnp.arange(-W, W + 1)
    idx = counts[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx <= K)
    idx = jnp.clip(idx, 0, K)
    kernel = jnp.where(valid, jnp.exp(_log_binom_pmf(idx, cf[:, None], cf[:, None] / T0f, T0f, log_falling)), 0.0)

    def pull_back(g, _):
        g = jnp.sum(kernel * g[idx], axis=1)
        return g, g

    if n_max >= 2:
        _, gs = jax.lax.scan(pull_back, g0, None, length=n_max - 1)
        pulled = jnp.concatenate([g0[None], gs])  # pulled[j]: E[(1 - C^(n)/T0)^T | C^(n-j) = c]
    else:
        pulled = g0[None]
    window = jnp.arange(2 * W + 1)
    z = zeta(beta, jnp.ones((), dtype))

    Zq = None if law is None else law.normalizers()

    def G(x):
        p = x ** (-beta) / z if law is None else law.pmf(x, Zq)
        mean = T0f * p
        start = jnp.clip(jnp.floor(jnp.minimum(mean, K + 1)) - W, 0, K + 1).astype(counts.dtype)
        c = start[..., None] + window
        ok = c <= K
        c = jnp.clip(c, 0, K)
        weights = jnp.where(ok, jnp.exp(_log_binom_pmf(c, mean[..., None], p[..., None], T0f, log_falling)), 0.0)
        return jnp.moveaxis(jax.lax.map(lambda g: jnp.sum(weights * g[c], axis=-1), pulled), 0, -1)

    # 1 - F_n(q) = T0 q (1 - pulled[n-1][1]) + O((T0 q)^2) for the far tail, q(x) = sum_r a_r x^{-s_r}
    if law is None:
        a = (T0f * (1.0 - pulled[:, 1]) / z)[:, None]
        s = jnp.broadcast_to(beta, a.shape)
        first = clean_error(T, beta, vocab=explicit)
    else:
        qa, qs = law.tail_pieces(Zq)
        a = T0f * (1.0 - pulled[:, 1])[:, None] * qa[None, :]
        s = jnp.broadcast_to(qs, a.shape)
        first = hutter_error(T, beta, law, vocab=explicit)
    later = token_sum(beta, G, a, s, explicit=explicit)
    return jnp.concatenate([first[None], later])


def _occupancy_mix(v, T0f, size: int):
    """``w(k) = sum_a v(a) P(k occupied urns | a balls into T0 urns)``, ``a, k = 0..size``."""
    dtype = v.dtype
    k = jnp.arange(size + 1, dtype=dtype)
    stay = k / T0f
    move = jnp.concatenate([jnp.zeros((1,), dtype), (T0f - k[:-1]) / T0f])

    def ball(carry, vb):
        P, w = carry
        P = P * stay + jnp.concatenate([jnp.zeros((1,), dtype), P[:-1]]) * move
        return (P, w + vb * P), None

    P0 = jnp.zeros((size + 1,), dtype).at[0].set(1.0)
    (_, w), _ = jax.lax.scan(ball, (P0, v[0] * P0), v[1:])
    return w


def _dual(T: int, T0, n_max: int, beta, explicit: int, law: TokenLaw | None = None):
    """``(n_max + 1,)`` errors by the coalescent dual (``T`` static); ``E_q(a) = sum_i p_i (1 - q_i)^a``."""
    dtype = beta.dtype
    T0f = jnp.asarray(T0, dtype)
    start = jnp.zeros((T + 1,), dtype).at[T].set(1.0)

    def step(v, _):
        w = _occupancy_mix(v, T0f, T)
        return w, w

    _, vs = jax.lax.scan(step, start, None, length=n_max)  # vs[m-1]: law of A_m
    a = jnp.arange(T + 1, dtype=dtype)
    f = clean_error(a, beta, vocab=explicit) if law is None else hutter_error(a, beta, law, vocab=explicit)
    return jnp.concatenate([f[T][None], vs @ f])


def generations_error(
    T: ArrayLike, T0: int, n_generations: int, beta: ArrayLike, *, vocab: int | None = None,
    max_count: int | None = None, method: str = "auto", law: TokenLaw | None = None,
) -> jnp.ndarray:
    """Exact expected error after ``n = 0..n_generations`` generations of resampling ``T0`` tokens.

    ``E^(n)(T) = sum_i p_i E[(1 - C_i^(n)/T0)^T]`` for the chain described in
    :mod:`kcollapse.tails` (generation ``m + 1`` = empirical law of ``T0`` draws from generation
    ``m``; generation 0 = ``p``). ``n = 1`` is the finite-sample cut of Tale of Tails Cor 2.2.

    Args:
      T: downstream training size(s) ``>= 1``; concrete values (the state space is sized from
        them) unless ``max_count`` is given.
      T0: tokens per generation ``>= 1`` (static).
      n_generations: largest ``n`` (static).
      beta: real Zipf exponent ``> 1``.
      vocab: tokens summed explicitly (default 4096: the Euler-Maclaurin tail is ~1e-11 there).
      max_count: the count cap ``K`` (static). If given, the forward method is used with it and the
        function is traceable (``jit``/``vmap`` over ``T`` and ``beta``); the truncated mass is
        ``<= exp(-(K + 1) phi^(n)(T/T0))`` with ``phi(u) = 1 - e^{-u}``.
      method: ``"auto"``, ``"forward"`` or ``"dual"`` (integer ``T <= 5000``).
      law: the start law ``q`` (:class:`TokenLaw`: top-k, narrowed, mixture, ...); generation 1 is
        the empirical law of ``T0`` draws from ``q`` and ``n = 0`` is training on ``q`` itself.
        ``None`` = the clean law ``p``. The chain is exact for any ``q``: the count of token ``i``
        is ``C^(1) ~ Bin(T0, q_i)`` and the same Wright-Fisher kernel afterwards; the error still
        weights by ``p_i``. (``q`` with a finite cut-off ``k``: tokens beyond ``k`` never appear.)

    Returns:
      ``T.shape + (n_generations + 1,)`` errors for ``n = 0..n_generations``.

    Raises:
      ValueError: bad sizes, or ``T0/T`` so large (with ``T > 5000``) that neither exact method is
        affordable; then the collapse term is only ``~c n T/(2 T0)`` of the clean error (use
        :func:`kcollapse.tails.generations_law`).

    References:
      A Tale of Tails (arXiv:2402.07043v2), Cor 2.2, Thm 2.4 (THEORY.md §5.2); the exact chain
      expectation and both algorithms are kcollapse derivations (docs/notes/tails.md).
    """
    T0 = _checks.check_int("T0", T0, minimum=1)
    n_max = _checks.check_int("n_generations", n_generations, minimum=0)
    _checks.check_choice("method", method, ("auto", "forward", "dual"))
    _check_beta("beta", beta)
    explicit = _checks.check_int("vocab", 4096 if vocab is None else vocab, minimum=16)
    if law is not None:
        law.validate()
        explicit = max(explicit, law.breakpoints)
    beta = _float(beta)
    if max_count is not None:
        K = _checks.check_int("max_count", max_count, minimum=1)
        K = min(K, T0)
        W = min(K, int(math.ceil(10 * math.sqrt(K) + 30)))
        Tarr = jnp.asarray(T, beta.dtype)
        out = jax.vmap(lambda t: _forward(t, T0, n_max, beta, K, W, explicit, law))(jnp.ravel(Tarr))
        return jnp.reshape(out, Tarr.shape + (n_max + 1,))
    if isinstance(T, jax.core.Tracer):
        raise TypeError("generations_error sizes its state space from concrete T; pass max_count=K to trace it "
                        "(K >= 46/phi^(n)(T/T0), phi(u) = 1 - exp(-u))")
    Tnp = np.asarray(_checks.check_finite_array("T", T), dtype=float)
    if Tnp.size and np.any(Tnp < 1):
        raise ValueError(f"T must be >= 1 (downstream training samples), got minimum {Tnp.min()}")
    flat = Tnp.ravel()
    out = np.empty((flat.size, n_max + 1))
    for j, t in enumerate(flat):
        out[j] = np.asarray(_one(t, T0, n_max, beta, explicit, method, law))
    return jnp.asarray(np.reshape(out, Tnp.shape + (n_max + 1,)), beta.dtype)


_forward_jit = jax.jit(_forward, static_argnums=(2, 4, 5, 6))
_dual_jit = jax.jit(_dual, static_argnums=(0, 2, 4))


def _one(t: float, T0: int, n_max: int, beta, explicit: int, method: str, law: TokenLaw | None = None) -> Any:
    if n_max == 0:
        if law is not None:
            return hutter_error(t, beta, law, vocab=explicit)[None]
        return clean_error(t, beta, vocab=explicit)[None]
    K, W = count_truncation(t, T0, n_max)
    forward_ok = (K + 1) * (2 * W + 1) <= _FORWARD_BUDGET
    dual_ok = float(t).is_integer() and t <= _DUAL_MAX_T
    if method == "forward" or (method == "auto" and (forward_ok or not dual_ok)):
        if not forward_ok:
            raise ValueError(
                f"exact n-generation error at T={t:g}, T0={T0} needs a count cap K={K} (kernel {K}x{2 * W + 1}); "
                f"too costly. Here the collapse term is only ~c n T/(2 T0) = {(1 - 1 / float(beta)) * n_max * t / (2 * T0):.2g} "
                "of the clean error: use kcollapse.tails.generations_law, or a smaller T0/T"
            )
        return _forward_jit(jnp.asarray(t, beta.dtype), T0, n_max, beta, K, W, explicit, law)
    if not dual_ok:
        raise ValueError(f"method='dual' needs an integer T <= {_DUAL_MAX_T}, got T={t:g}")
    return _dual_jit(int(t), T0, n_max, beta, explicit, law)


def finite_sample_error(T: ArrayLike, T0: int, beta: ArrayLike, *, vocab: int | None = None) -> jnp.ndarray:
    """Finite-sample cut (Tale of Tails Cor 2.2): ``T`` draws from the empirical law of ``T0`` draws.

    ``E = sum_i p_i E_{C ~ Bin(T0, p_i)} (1 - C/T0)^T``; ``≍ T^{-c} + T0^{-c}``, ``c = 1 - 1/beta``.
    Same as ``generations_error(T, T0, 1, beta)[..., 1]``.
    """
    return generations_error(T, T0, 1, beta, vocab=vocab)[..., 1]
