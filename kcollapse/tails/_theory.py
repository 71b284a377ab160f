"""Exact test error of the Hutter LLM trained on samples from a (possibly AI-distorted) Zipf law.

The Hutter LLM memorises every token seen in training and abstains otherwise; its test error
under the real law ``p`` is the ``p``-mass of the unseen tokens. If the training set is ``T`` iid
draws from ``q``, token ``i`` is unseen with probability ``(1 - q_i)^T``, so

    E_test(T) = sum_i p_i (1 - q_i)^T                                            (THEORY.md §5.1)

and, for a training set made of blocks of ``T_b`` draws from ``q_b`` (Cor 3.3: real + AI data),
``E_test = sum_i p_i prod_b (1 - q_{b,i})^{T_b}``. Every result of *A Tale of Tails* §2-§3 is an
asymptotic statement about these sums; here they are evaluated exactly on the infinite vocabulary
(see :mod:`._engine` for the error budget).

References:
  Hutter, "Learning curve theory", arXiv:2102.04074 (2021). Dohmatob, Feng, Yang, Charton, Kempe,
  "A Tale of Tails", arXiv:2402.07043v2, §2.1 (Hutter LLM, eq. 9), Thm 2.1, Cor 2.3, Thm 3.1, 3.2,
  Cor 3.3, Thm C.2.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlog1py, zeta
from jax.typing import ArrayLike

from .. import _checks
from ._engine import token_sum
from ._laws import TokenLaw, _check_beta, _float, mixture, narrowed, tail_from, tail_mass, top_k, zipf

__all__ = [
    "DEFAULT_VOCAB",
    "error_variance_bound",
    "buy_tail_error",
    "clean_error",
    "grokking_error",
    "hutter_error",
    "mixed_sources_error",
    "narrowing_error",
    "narrowing_mixture_error",
    "real_plus_ai_error",
    "top_k_error",
]

#: Tokens summed explicitly before the Euler-Maclaurin tail (raised to every finite cut-off).
DEFAULT_VOCAB = 1 << 13


def _check_sizes(name: str, T: Any) -> None:
    if not isinstance(T, jax.core.Tracer):
        arr = _checks.check_finite_array(name, T)
        if arr.size and np.any(arr < 0):
            raise ValueError(f"{name} must be >= 0 (a number of training samples), got minimum {arr.min()}")


def _blocks_error(sizes: Sequence[jnp.ndarray], beta: jnp.ndarray, laws: Sequence[TokenLaw], explicit: int,
                  with_variance_bound: bool = False):
    """Scalar ``sum_i p_i prod_b (1 - q_{b,i})^{T_b}`` for scalar sizes ``T_b``.

    With ``with_variance_bound``, also ``sum_i p_i^2 u_i (1 - u_i)`` (``u_i`` = the product): an upper
    bound on the variance of one training set's error. The unseen indicators ``1[C_i = 0]`` are
    non-increasing functions of disjoint coordinates of (independent) multinomial count vectors,
    hence negatively associated (Joag-Dev & Proschan 1983), so their covariances are ``<= 0``.
    """

    norms = [law.normalizers() for law in laws]  # once, not at every evaluation of G

    def G(x):
        log_g = sum(xlog1py(T, -law.pmf(x, Z)) for T, law, Z in zip(sizes, laws, norms))
        return jnp.exp(log_g)[..., None]

    tails = [law.tail_pieces(Z) for law, Z in zip(laws, norms)]
    a = jnp.concatenate([T * a_ for T, (a_, _) in zip(sizes, tails)])
    s = jnp.concatenate([s_ for _, s_ in tails])
    mean = token_sum(beta, G, a[None, :], s[None, :], explicit=explicit)[0]
    if not with_variance_bound:
        return mean
    z = zeta(beta, jnp.ones((), beta.dtype))

    def G2(x):  # p_i u_i (1 - u_i): sum_i p_i G2(i) = sum_i p_i^2 Var(1[i unseen])
        u = G(x)
        return (x ** (-beta) / z)[..., None] * u * (1 - u)

    return mean, token_sum(beta, G2, a[None, :], s[None, :], explicit=explicit, far_value=0.0)[0]


def mixed_sources_error(
    sample_sizes: Sequence[ArrayLike], beta: ArrayLike, laws: Sequence[TokenLaw], *, vocab: int = DEFAULT_VOCAB
) -> jnp.ndarray:
    """Exact error of a training set made of ``T_b`` iid draws from each law ``q_b``.

    ``E_test = sum_{i >= 1} p_i prod_b (1 - q_{b,i})^{T_b}``,  ``p_i = i^{-beta}/zeta(beta)``.

    Args:
      sample_sizes: one size ``T_b >= 0`` per law; arrays broadcast against each other (the result
        has their broadcast shape).
      beta: real Zipf exponent ``> 1`` (scalar).
      laws: the training laws :class:`TokenLaw`.
      vocab: tokens summed explicitly (static; raised to the laws' largest finite cut-off).

    Returns:
      The exact expected test error, shape of the broadcast sizes.

    References:
      A Tale of Tails (arXiv:2402.07043v2), eq. (9) and Cor 3.3 (real + AI blocks).
    """
    if len(sample_sizes) != len(laws) or not laws:
        raise ValueError(f"need one sample size per law, got {len(sample_sizes)} sizes for {len(laws)} laws")
    _check_beta("beta", beta)
    for j, T in enumerate(sample_sizes):
        _check_sizes(f"sample_sizes[{j}]", T)
    for law in laws:
        law.validate()
    vocab = _checks.check_int("vocab", vocab, minimum=16)
    explicit = max([vocab] + [law.breakpoints for law in laws])
    beta = _float(beta)
    sizes = jnp.broadcast_arrays(*[jnp.asarray(T, beta.dtype) for T in sample_sizes])
    shape = sizes[0].shape
    n = int(np.prod(shape))
    concrete = not any(isinstance(T, jax.core.Tracer) for T in sizes)
    # concrete grids are padded to a power of two, so one compilation serves every grid length
    bucket = max(8, 1 << max(n - 1, 0).bit_length()) if concrete else n
    flat = tuple(jnp.pad(jnp.ravel(T), (0, bucket - n)) for T in sizes)
    out = _mixed_core(flat, beta, tuple(laws), explicit=explicit)
    return jnp.reshape(out[:n], shape)


@functools.partial(jax.jit, static_argnames=("explicit", "with_variance_bound"))
def _mixed_core(flat_sizes, beta, laws, *, explicit, with_variance_bound=False):
    return jax.vmap(lambda *Ts: _blocks_error(Ts, beta, laws, explicit, with_variance_bound))(*flat_sizes)


def error_variance_bound(
    sample_sizes: Sequence[ArrayLike], beta: ArrayLike, laws: Sequence[TokenLaw], *, vocab: int = DEFAULT_VOCAB
) -> jnp.ndarray:
    """Upper bound ``sum_i p_i^2 u_i (1 - u_i)`` on the variance of the error of one training set.

    ``u_i = prod_b (1 - q_{b,i})^{T_b}``; exact up to the (non-positive) covariances of the unseen
    indicators (negative association of multinomial counts). The simulator's standard error cannot
    resolve rare unseen tokens with few seeds (all seeds may see every token of a top-k head, giving
    a zero sample SEM while the expectation is ``1e-8`` above the floor); ``sqrt(bound/seeds)`` is a
    valid SEM there.
    """
    beta = _float(beta)
    sizes = jnp.broadcast_arrays(*[jnp.asarray(T, beta.dtype) for T in sample_sizes])
    explicit = max([_checks.check_int("vocab", vocab, minimum=16)] + [law.breakpoints for law in laws])
    out = _mixed_core(tuple(jnp.ravel(T) for T in sizes), beta, tuple(laws), explicit=explicit, with_variance_bound=True)[1]
    return jnp.reshape(out, sizes[0].shape)


def hutter_error(T: ArrayLike, beta: ArrayLike, law: TokenLaw | None = None, *, vocab: int = DEFAULT_VOCAB) -> jnp.ndarray:
    """Exact test error of the Hutter LLM trained on ``T`` iid draws from ``law`` (default: clean).

    ``E_test(T) = sum_{i >= 1} p_i (1 - q_i)^T`` with ``p_i = i^{-beta}/zeta(beta)`` (infinite
    vocabulary; relative accuracy ~1e-10, see :mod:`kcollapse.tails`).

    Args:
      T: training-set size(s) ``>= 0``, any shape (need not be integer).
      beta: real Zipf exponent ``> 1`` (scalar).
      law: training law ``q`` (:class:`TokenLaw`); ``None`` = ``zipf(beta)``.
      vocab: tokens summed explicitly (static).

    Returns:
      ``E_test``, same shape as ``T``.

    Examples:
      >>> import kcollapse.tails as kt
      >>> round(float(kt.hutter_error(0, 1.5)), 12)  # nothing seen: error 1
      1.0
      >>> round(float(kt.top_k_error(1e15, 1.5, 10) / kt.tail_mass(10, 1.5)), 12)  # the Thm 2.1 plateau
      1.0

    References:
      A Tale of Tails (arXiv:2402.07043v2), §2.1 eq. (9) [exact sum: THEORY.md §5.1, DERIVED].
    """
    _check_sizes("T", T)
    law = zipf(beta) if law is None else law
    return mixed_sources_error([T], beta, [law], vocab=vocab)


def clean_error(T: ArrayLike, beta: ArrayLike, *, vocab: int = DEFAULT_VOCAB) -> jnp.ndarray:
    """``sum_i p_i (1 - p_i)^T``: clean training; ``≍ T^{-(1-1/beta)}`` (Hutter 2021)."""
    return hutter_error(T, beta, zipf(beta), vocab=vocab)


def top_k_error(T: ArrayLike, beta: ArrayLike, k: int, *, vocab: int = DEFAULT_VOCAB) -> jnp.ndarray:
    """Training on the top-k cut ``q ∝ p 1[i <= k]``: ``sum_{i<=k} p_i (1 - p_i/P_k)^T + P(i > k)``.

    ``→ P(i > k) ≈ k^{-(beta-1)}/((beta-1) zeta(beta))`` as ``T → inf``: the plateau of
    Tale of Tails Thm 2.1 (``E ≍ T^{-c} + k^{-(beta-1)}``).
    """
    return hutter_error(T, beta, top_k(beta, k), vocab=vocab)


def narrowing_error(
    T: ArrayLike, beta: ArrayLike, *, temperature: ArrayLike | None = None, beta_ai: ArrayLike | None = None,
    vocab: int = DEFAULT_VOCAB,
) -> jnp.ndarray:
    """Training on a narrowed tail ``q ∝ i^{-beta'}``, ``beta' = beta/temperature`` (Cor 2.3).

    ``E ≍ T^{-(beta-1)/beta'}`` (slower than clean when ``beta' > beta``, i.e. temperature ``< 1``).
    """
    return hutter_error(T, beta, narrowed(beta, temperature=temperature, beta_ai=beta_ai), vocab=vocab)


def grokking_error(T: ArrayLike, beta: ArrayLike, k: int, fraction: ArrayLike, *, vocab: int = DEFAULT_VOCAB) -> jnp.ndarray:
    """Clean/AI mixture with tail cutting: ``q = pi p + (1 - pi) p_cut(k)`` (Tale of Tails Thm 3.2).

    A plateau at ``≈ P(i > k)`` for ``k^beta ≲ T ≲ k^beta/pi``, then the clean slope at
    ``(pi T)^{-(1-1/beta)}`` ("grokking").

    Args:
      fraction: ``pi`` in ``[0, 1]``, the clean fraction of every draw.
    """
    return hutter_error(T, beta, mixture(fraction, zipf(beta), top_k(beta, k)), vocab=vocab)


def narrowing_mixture_error(
    T: ArrayLike, beta: ArrayLike, fraction: ArrayLike, *, temperature: ArrayLike | None = None,
    beta_ai: ArrayLike | None = None, vocab: int = DEFAULT_VOCAB,
) -> jnp.ndarray:
    """Clean/AI mixture with tail narrowing: ``q = pi p + (1 - pi) Zipf(beta')`` (Tale of Tails Thm C.2)."""
    law = mixture(fraction, zipf(beta), narrowed(beta, temperature=temperature, beta_ai=beta_ai))
    return hutter_error(T, beta, law, vocab=vocab)


def buy_tail_error(
    T: ArrayLike, beta: ArrayLike, k: int, start: int, fraction: ArrayLike | None = None, *, vocab: int = DEFAULT_VOCAB
) -> jnp.ndarray:
    """AI data cut at ``k`` plus real data from the tail ``i >= start`` (Tale of Tails Thm 3.1).

    ``q = pi p(. | i >= start) + (1 - pi) p(. | i <= k)``. As ``T → inf`` the error tends to the
    mass of the gap, ``sum_{k < i < start} p_i``: zero if ``start <= k + 1`` (``C = 1`` recovers
    ``T^{-c}``), ``≍ k^{-(beta-1)}`` if ``start/k → C > 1`` (the bought tail is useless).

    Args:
      fraction: ``pi``; default ``P(i >= start)``, so that ``start = k + 1`` gives ``q = p`` exactly.
    """
    if fraction is None:
        fraction = tail_mass(start - 1, beta)
    return hutter_error(T, beta, mixture(fraction, tail_from(beta, start), top_k(beta, k)), vocab=vocab)


def real_plus_ai_error(
    T_real: ArrayLike, T_ai: ArrayLike, beta: ArrayLike, k: int, *, vocab: int = DEFAULT_VOCAB
) -> jnp.ndarray:
    """``T_real`` clean draws plus ``T_ai`` draws from the top-k cut (Tale of Tails Cor 3.3).

    ``E = sum_i p_i (1 - p_i)^{T_real} (1 - q_i)^{T_ai}``; for ``T_real ≪ k^beta`` it behaves as
    ``(T_real + T_ai)^{-(1-1/beta)} + k^{-(beta-1)}``.
    """
    return mixed_sources_error([T_real, T_ai], beta, [zipf(beta), top_k(beta, k)], vocab=vocab)
