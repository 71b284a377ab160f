"""Token laws of the Hutter model: Zipf, top-k cuts, narrowed tails and their mixtures.

The real law is ``p_i = i^{-beta} / zeta(beta)`` on ``i = 1, 2, ...`` (infinite vocabulary, ``beta > 1``).
A training (AI) law is a finite mixture of Zipf pieces restricted to index ranges,

    q_i = sum_j w_j * i^{-s_j} * 1[lo_j <= i <= hi_j] / Z_j,    Z_j = sum_{i=lo_j}^{hi_j} i^{-s_j},

which covers every distortion of *A Tale of Tails* §2-§3: the top-k cut (one piece on ``[1, k]``),
tail narrowing by a temperature (``s = beta/tau``), clean/AI mixtures (Thm 3.2, Thm C.2) and "buying
the tail" (clean data on ``[N, inf)``, Thm 3.1).

References:
  Dohmatob, Feng, Yang, Charton, Kempe, "A Tale of Tails: Model Collapse as a Change of Scaling
  Laws", ICML 2024, arXiv:2402.07043v2, §2 (eqs. for tail cutting and narrowing) and §3.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import zeta
from jax.typing import ArrayLike

from .. import _checks

__all__ = [
    "TokenLaw",
    "mixture",
    "narrowed",
    "tail_from",
    "tail_mass",
    "top_k",
    "zipf",
    "zipf_pmf",
]


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TokenLaw:
    """``q_i = sum_j w_j i^{-s_j} 1[lo_j <= i <= hi_j] / Z_j`` on ``i = 1, 2, ...``.

    Weights and exponents are array leaves (a compiled function serves any values and can be
    ``vmap``-ed over them); the index ranges are static Python integers (a cut-off ``k`` is a size).

    Attributes:
      weights: ``(J,)`` mixture weights ``w_j >= 0`` summing to 1.
      exponents: ``(J,)`` Zipf exponents ``s_j > 1``.
      lower: ``J`` first indices ``lo_j >= 1`` (static).
      upper: ``J`` last indices ``hi_j >= lo_j``, or ``None`` for ``inf`` (static).
    """

    weights: ArrayLike
    exponents: ArrayLike
    lower: tuple[int, ...] = _static()
    upper: tuple[int | None, ...] = _static()

    def validate(self) -> TokenLaw:
        """Check the law on concrete values; returns ``self``.

        Raises:
          ValueError / TypeError naming the field, the value and what is allowed.
        """
        if len(self.lower) != len(self.upper) or len(self.lower) == 0:
            raise ValueError(f"TokenLaw needs as many lower as upper bounds (>= 1), got {self.lower} and {self.upper}")
        for lo, hi in zip(self.lower, self.upper):
            _checks.check_int("TokenLaw.lower", lo, minimum=1)
            if hi is not None and _checks.check_int("TokenLaw.upper", hi, minimum=1) < lo:
                raise ValueError(f"TokenLaw range [{lo}, {hi}] is empty; need upper >= lower")
        if _is_concrete(self.weights):
            w = _checks.check_nonneg_array("TokenLaw.weights", self.weights, ndim=1)
            if w.shape[0] != len(self.lower):
                raise ValueError(f"TokenLaw.weights has {w.shape[0]} entries for {len(self.lower)} pieces")
            if abs(float(np.sum(w)) - 1.0) > 1e-9:
                raise ValueError(f"TokenLaw.weights must sum to 1, got {float(np.sum(w))!r}")
        if _is_concrete(self.exponents):
            s = _checks.check_finite_array("TokenLaw.exponents", self.exponents, ndim=1)
            if s.shape[0] != len(self.lower):
                raise ValueError(f"TokenLaw.exponents has {s.shape[0]} entries for {len(self.lower)} pieces")
            if not np.all(s > 1):
                raise ValueError(f"TokenLaw.exponents must all be > 1 (normalisable Zipf pieces), got {s.tolist()}")
        return self

    @property
    def n_pieces(self) -> int:
        return len(self.lower)

    @property
    def breakpoints(self) -> int:
        """The largest finite index bound (0 if none): explicit sums must reach at least this far."""
        finite = [lo for lo in self.lower] + [hi for hi in self.upper if hi is not None]
        return max(finite) if finite else 0

    def normalizers(self) -> jnp.ndarray:
        """``(J,)`` ``Z_j = sum_{i=lo_j}^{hi_j} i^{-s_j}`` (Hurwitz zeta differences)."""
        s = jnp.asarray(self.exponents)
        dtype = jnp.result_type(s.dtype, float)
        s = s.astype(dtype)
        out = []
        for j, (lo, hi) in enumerate(zip(self.lower, self.upper)):
            if hi is None:
                out.append(zeta(s[j], jnp.asarray(lo, dtype)))
            elif hi - lo < 4096:  # short range: sum it directly
                i = jnp.arange(lo, hi + 1, dtype=dtype)
                out.append(jnp.sum(i ** (-s[j])))
            else:
                out.append(zeta(s[j], jnp.asarray(lo, dtype)) - zeta(s[j], jnp.asarray(hi + 1, dtype)))
        return jnp.stack(out)

    def pieces(self, x: ArrayLike, normalizers: ArrayLike | None = None) -> jnp.ndarray:
        """``(..., J)`` the per-piece terms ``w_j x^{-s_j} 1[lo_j <= x <= hi_j] / Z_j`` at ``x``.

        ``normalizers``: precomputed :meth:`normalizers` (saves recomputing them in a loop).
        """
        w = jnp.asarray(self.weights)
        s = jnp.asarray(self.exponents)
        dtype = jnp.result_type(w.dtype, s.dtype, float)
        x = jnp.asarray(x, dtype)[..., None]
        lo = jnp.asarray(self.lower, dtype)
        hi = jnp.asarray([jnp.inf if h is None else h for h in self.upper], dtype)
        active = (x >= lo) & (x <= hi)
        Z = self.normalizers() if normalizers is None else normalizers
        terms = w.astype(dtype) * x ** (-s.astype(dtype)) / Z
        return jnp.where(active, terms, jnp.zeros((), dtype))

    def pmf(self, x: ArrayLike, normalizers: ArrayLike | None = None) -> jnp.ndarray:
        """``q(x)``; at integers ``x = i`` this is the probability of token ``i``."""
        return jnp.sum(self.pieces(x, normalizers), axis=-1)

    def tail_pieces(self, normalizers: ArrayLike | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
        """``(a, s)``: beyond every finite bound, ``q(x) = sum_j a_j x^{-s_j}`` (zero ``a_j`` for
        pieces with a finite range)."""
        w = jnp.asarray(self.weights)
        s = jnp.asarray(self.exponents)
        dtype = jnp.result_type(w.dtype, s.dtype, float)
        infinite = jnp.asarray([h is None for h in self.upper])
        Z = self.normalizers() if normalizers is None else normalizers
        a = jnp.where(infinite, w.astype(dtype) / Z, jnp.zeros((), dtype))
        # a finite-range piece contributes nothing; give it a harmless exponent so x^{-s} stays finite
        return a, jnp.where(infinite, s.astype(dtype), jnp.full((), 2.0, dtype))

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python view for JSON metadata."""
        return {
            "weights": [float(v) for v in np.atleast_1d(np.asarray(self.weights))],
            "exponents": [float(v) for v in np.atleast_1d(np.asarray(self.exponents))],
            "lower": list(self.lower),
            "upper": [None if h is None else int(h) for h in self.upper],
        }


def _float(x: ArrayLike) -> jnp.ndarray:
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(x.dtype, float))


def _check_beta(name: str, beta: Any) -> None:
    if _is_concrete(beta):
        b = np.asarray(beta, dtype=float)
        if b.size and not np.all(b > 1):
            raise ValueError(f"{name} must be > 1 (a normalisable Zipf law), got {beta!r}")


def zipf(beta: ArrayLike) -> TokenLaw:
    """The clean law ``p_i = i^{-beta}/zeta(beta)``, ``i >= 1``."""
    _check_beta("beta", beta)
    return TokenLaw(jnp.ones((1,), _float(beta).dtype), jnp.reshape(_float(beta), (1,)), (1,), (None,))


def top_k(beta: ArrayLike, k: int) -> TokenLaw:
    """Top-k cut of the Zipf law: ``q_i = p_i 1[i <= k] / sum_{j <= k} p_j`` (Tale of Tails eq. 5, Thm 2.1)."""
    _check_beta("beta", beta)
    k = _checks.check_int("k (top-k cut)", k, minimum=1)
    return TokenLaw(jnp.ones((1,), _float(beta).dtype), jnp.reshape(_float(beta), (1,)), (1,), (k,))


def narrowed(beta: ArrayLike, *, temperature: ArrayLike | None = None, beta_ai: ArrayLike | None = None) -> TokenLaw:
    """Tail narrowing: ``q_i ∝ i^{-beta'}`` with ``beta' = beta/temperature`` (or ``beta_ai`` directly).

    ``temperature < 1`` narrows the tail (``beta' > beta``), Tale of Tails §2.2 / Cor 2.3.
    """
    if (temperature is None) == (beta_ai is None):
        raise ValueError("narrowed: give exactly one of temperature=... or beta_ai=...")
    if temperature is not None:
        if _is_concrete(temperature):
            _checks.check_positive_float("temperature", temperature)
        beta_ai = _float(beta) / _float(temperature)
    _check_beta("beta' (the AI law's exponent, beta/temperature)", beta_ai)
    b = _float(beta_ai)
    return TokenLaw(jnp.ones((1,), b.dtype), jnp.reshape(b, (1,)), (1,), (None,))


def tail_from(beta: ArrayLike, start: int) -> TokenLaw:
    """Clean data supported on the tail ``i >= start``: ``q_i ∝ p_i 1[i >= start]`` (Thm 3.1)."""
    _check_beta("beta", beta)
    start = _checks.check_int("start (first tail index)", start, minimum=1)
    return TokenLaw(jnp.ones((1,), _float(beta).dtype), jnp.reshape(_float(beta), (1,)), (start,), (None,))


def mixture(fraction: ArrayLike, first: TokenLaw, second: TokenLaw) -> TokenLaw:
    """``fraction * first + (1 - fraction) * second`` (e.g. ``mixture(pi, zipf(b), top_k(b, k))``, Thm 3.2)."""
    if _is_concrete(fraction):
        _checks.check_fraction("fraction (mixing weight pi)", fraction)
    f = _float(fraction)
    w = jnp.concatenate([f * _float(first.weights), (1 - f) * _float(second.weights)])
    s = jnp.concatenate([_float(first.exponents), _float(second.exponents)])
    return TokenLaw(w, s, tuple(first.lower) + tuple(second.lower), tuple(first.upper) + tuple(second.upper))


@jax.jit
def zipf_pmf(i: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """``p_i = i^{-beta}/zeta(beta)`` (``i`` may be continuous: the density used beyond the explicit sum)."""
    beta = _float(beta)
    return jnp.asarray(i, beta.dtype) ** (-beta) / zeta(beta, jnp.ones((), beta.dtype))


@jax.jit
def tail_mass(n: ArrayLike, beta: ArrayLike) -> jnp.ndarray:
    """``P(i > n) = sum_{i > n} p_i = zeta(beta, n + 1)/zeta(beta)``; ``≈ n^{1-beta}/((beta-1) zeta(beta))``."""
    beta = _float(beta)
    one = jnp.ones((), beta.dtype)
    return zeta(beta, jnp.asarray(n, beta.dtype) + one) / zeta(beta, one)

