"""Mixing strategies (Strong Model Collapse §5): weighted single-step mixing and iterative mixing.

Both results are ridgeless and under-parameterised (``lambda -> 0``, more active samples than
dimensions). Ridgeless least squares is affine-equivariant, so whitening the inputs maps any
``Sigma`` to ``I`` with the mismatch becoming ``Sigma^{1/2} delta``, whose law enters only through
``c^2 = tr(Sigma Delta)`` (the design's law is rotation invariant). Hence these formulas hold for
**any** ``Sigma`` and ``Delta``, with ``d = rank(Sigma)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..theory._types import Decomposition, decomposition
from ._mixture import check_concrete

__all__ = [
    "iterative_mixture_error",
    "optimal_mixing_weight",
    "weighted_mixture_error",
    "weighted_mixture_error_small_phi",
]

_GOLDEN_ITERATIONS = 90


def _floats(*xs):
    dt = jnp.result_type(float)
    for x in xs:
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            dt = x.dtype
            break
    return [jnp.asarray(x, dt) for x in xs]


def _concrete(*values) -> bool:
    return not any(isinstance(v, jax.core.Tracer) for v in values if v is not None)


def _check_weighted(dim, n_real, n_synthetic, weight) -> None:
    check_concrete(dim=dim, n_real=n_real, n_synthetic=n_synthetic, weight=weight)
    if not _concrete(dim, n_real, n_synthetic, weight):
        return
    d, n1, n2, a = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (dim, n_real, n_synthetic, weight)))
    if np.any((n1 < 1) | (n2 < 1)):
        raise ValueError(f"weighted mixing needs n_real >= 1 and n_synthetic >= 1 (the loss averages each group), "
                         f"got n_real={n1.tolist()}, n_synthetic={n2.tolist()}")
    active = np.where(a == 0, n1, np.where(a == 1, n2, n1 + n2))
    if np.any(active <= d):
        raise ValueError(
            f"weighted mixing (ridgeless) needs more samples than dimensions among the groups with nonzero weight: "
            f"dim={d.tolist()}, n_real={n1.tolist()}, n_synthetic={n2.tolist()}, weight={a.tolist()}; "
            "use weights in (0, 1) or larger groups"
        )


def _weighted_terms(d, n1, n2, alpha):
    """``(r2, V)``: the mean weight ``r2 = mu_2/mu`` of the synthetic teacher and the noise map ``V(s1^2, s2^2)``."""
    n = n1 + n2
    p1, p2, a1, a2, phi = n1 / n, n2 / n, 1 - alpha, alpha, d / n
    # mu solves sum_k a_k p_k / (p_k mu + a_k phi) = 1, a quadratic: p1 p2 mu^2 + b mu - a1 a2 phi (1 - phi) = 0.
    b = phi * (p1 * a2 + p2 * a1) - p1 * p2
    c0 = a1 * a2 * phi * (1 - phi)
    root = jnp.sqrt(b * b + 4 * p1 * p2 * c0)
    mu = jnp.where(b < 0, (root - b) / (2 * p1 * p2), 2 * c0 / jnp.where(b + root > 0, b + root, 1))
    D1, D2 = p1 * mu + a1 * phi, p2 * mu + a2 * phi
    S = a1 * p1**2 / D1**2 + a2 * p2**2 / D2**2
    r2 = a2 * p2 / D2

    def noise(s1sq, s2sq):
        return phi / (mu * S) * (a1**2 * p1 * s1sq / D1**2 + a2**2 * p2 * s2sq / D2**2)

    return mu, r2, noise


def weighted_mixture_error(
    dim: ArrayLike,
    n_real: ArrayLike,
    n_synthetic: ArrayLike,
    weight: ArrayLike,
    quality: ArrayLike,
    label_noise: ArrayLike,
    synthetic_noise: ArrayLike | None = None,
) -> Decomposition:
    """Weighted single-step mixing, ridgeless: a deterministic equivalent valid for any ``phi < 1``.

    Loss ``(1-alpha)/n1 sum_real (x^T w - y)^2 + alpha/n2 sum_synth (x^T w - y)^2``. With
    ``p_k = n_k/n``, weights ``a = (1 - alpha, alpha)`` and ``phi = d/n``, let ``mu`` be the positive
    root of ``sum_k a_k p_k / (p_k mu + a_k phi) = 1`` (a quadratic), ``D_k = p_k mu + a_k phi``,
    ``r2 = a2 p2 / D2``, ``r1 = 1 - r2`` and the noise map
    ``V(s1^2, s2^2) = phi/(mu S) sum_k a_k^2 p_k s_k^2 / D_k^2`` with ``S = sum_k a_k p_k^2 / D_k^2``. Then::

        E ≃ c^2 [ r2^2 + V(r2^2, r1^2) ] + V(sigma1^2, sigma2^2)       (collapse + variance)

    ``r2 c`` is the part of the synthetic teacher shift the estimate follows on average, and the
    residual shift acts as group-wise noise ``(r2^2 c^2, r1^2 c^2)``. At ``alpha = p2`` this is
    exactly Theorem 1 at ``lambda = 0`` (``r2 = p2``, ``V = u sum p_k s_k^2``, ``u = phi/(1-phi)``),
    hence Corollary 1; as ``phi -> 0`` it reduces to ``alpha^2 c^2 + phi[(1-alpha)^2 sigma1^2/p1
    + alpha^2 sigma2^2/p2] + alpha^2 (1-alpha) c^2 phi [3(1-alpha)/p1 + (1-3 alpha)/p2] + O(phi^2)``.

    Note:
      Not in the paper. kcollapse derivation (generalised Marchenko-Pastur for the weighted Gram,
      ``tr(A^{-1} a_k Sigma_hat_k)/d -> mu_k/mu`` and ``tr(A^{-2} Sigma_hat_k) = -d/da_k tr A^{-1}``),
      verified by simulation (docs/notes/strong.md). The printed Corollary 2 is internally
      inconsistent; THEORY.md's derived small-``phi`` form
      (:func:`weighted_mixture_error_small_phi`) misses the ``O(phi c^2)`` term above, which is
      about 5 % of the error at ``phi = 0.01``, ``alpha = 0.1`` (z = 7 with 1000 seeds).

    Args:
      dim: ``d`` (= rank of ``Sigma``). n_real: ``n1 >= 1``. n_synthetic: ``n2 >= 1``.
      weight: ``alpha`` in ``[0, 1]``. quality: ``c^2 = tr(Sigma Delta)``.
      label_noise: ``sigma1``. synthetic_noise: ``sigma2`` (default ``sigma1``).

    Returns:
      :class:`kcollapse.theory.Decomposition` (``bias = 0``). Where the active groups have
      ``<= d`` samples (only checkable on concrete inputs, which raise) the result is ``inf``.

    Raises:
      ValueError: concrete inputs with ``n_k < 1`` or ``<= d`` samples carrying nonzero weight.

    References:
      Dohmatob, Feng, Subramonian, Kempe, arXiv:2410.04840v2, §5, Corollary 2 (setting);
      shared/THEORY.md §4.4; Jain, Montanari, Sasoglu (2024) for the weighted loss.
    """
    _check_weighted(dim, n_real, n_synthetic, weight)
    check_concrete(quality=quality, label_noise=label_noise, synthetic_noise=synthetic_noise)
    d, n1, n2, alpha, c2, s1 = _floats(dim, n_real, n_synthetic, weight, quality, label_noise)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, s1.dtype)
    mu, r2, noise = _weighted_terms(d, n1, n2, alpha)
    ok = mu > 0
    inf = jnp.asarray(jnp.inf, d.dtype)
    collapse = jnp.where(ok, c2 * (r2**2 + noise(r2**2, (1 - r2) ** 2)), inf)
    variance = jnp.where(ok, noise(s1**2, s2**2), inf)
    return decomposition(jnp.zeros_like(collapse), variance, collapse)


def weighted_mixture_error_small_phi(
    dim: ArrayLike, n_real: ArrayLike, n_synthetic: ArrayLike, weight: ArrayLike, quality: ArrayLike,
    label_noise: ArrayLike, synthetic_noise: ArrayLike | None = None,
) -> Decomposition:
    """The small-``phi`` form of weighted mixing given in shared/THEORY.md §4.4 ("derived Corollary 2").

    ``E ≃ alpha^2 c^2 + (d/n) [(1-alpha)^2 sigma1^2/p1 + alpha^2 sigma2^2/p2]``. It keeps the noise to
    ``O(phi)`` but not the ``O(phi c^2)`` part of the collapse term, so it is accurate only for
    ``phi c^2 << sigma^2`` or tiny ``phi``; prefer :func:`weighted_mixture_error`. Kept because its
    minimiser is the closed-form ``alpha*`` (:func:`optimal_mixing_weight`).

    References:
      arXiv:2410.04840v2, Corollary 2 (printed form inconsistent; this is THEORY.md's replacement).
    """
    check_concrete(dim=dim, n_real=n_real, n_synthetic=n_synthetic, weight=weight, quality=quality,
                   label_noise=label_noise, synthetic_noise=synthetic_noise)
    d, n1, n2, alpha, c2, s1 = _floats(dim, n_real, n_synthetic, weight, quality, label_noise)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, s1.dtype)
    n = n1 + n2
    variance = d / n * ((1 - alpha) ** 2 * s1**2 * n / n1 + alpha**2 * s2**2 * n / n2)
    return decomposition(jnp.zeros_like(variance), variance, alpha**2 * c2)


def optimal_mixing_weight(
    dim: ArrayLike, n_real: ArrayLike, n_synthetic: ArrayLike, quality: ArrayLike, label_noise: ArrayLike,
    synthetic_noise: ArrayLike | None = None, *, method: str = "deterministic-equivalent",
) -> jax.Array:
    """The weight ``alpha*`` on the synthetic group that minimises the weighted-mixing error.

    * ``method="small-phi"``: the closed-form minimiser of :func:`weighted_mixture_error_small_phi`,
      ``alpha* = (phi sigma1^2/p1) / (c^2 + phi (sigma1^2/p1 + sigma2^2/p2))`` (-> 0 as ``phi -> 0``;
      shared/THEORY.md §4.4). The printed ``alpha* = clip(1 - (p1 sigma1^2 - p2 sigma2^2) phi/(2c^2))``
      contradicts the paper's own claim that ``alpha* -> 0`` and is not implemented.
    * ``method="deterministic-equivalent"`` (default): golden-section minimisation of
      :func:`weighted_mixture_error` over ``[0, 1]`` (90 iterations, then the ends are compared too;
      the error is unimodal in ``alpha``, checked against a dense grid in the tests). The minimiser
      is located to about ``sqrt(eps) ~ 1e-8`` in float64: the error is flat to ``O(eps)`` there.

    Both agree to leading order as ``phi -> 0``. Args as in :func:`weighted_mixture_error`; ``method`` is static.
    With ``c^2 = 0`` and no noise every weight is optimal; ``small-phi`` then returns ``p2``.

    References:
      arXiv:2410.04840v2, §5, Corollary 2 (corrected); shared/THEORY.md §4.4.
    """
    _checks.check_choice("method", method, ("deterministic-equivalent", "small-phi"))
    check_concrete(dim=dim, n_real=n_real, n_synthetic=n_synthetic, quality=quality, label_noise=label_noise,
                   synthetic_noise=synthetic_noise)
    d, n1, n2, c2, s1 = _floats(dim, n_real, n_synthetic, quality, label_noise)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, s1.dtype)
    n = n1 + n2
    if method == "small-phi":
        phi, p1, p2 = d / n, n1 / n, n2 / n
        num = phi * s1**2 / p1
        den = c2 + phi * (s1**2 / p1 + s2**2 / p2)
        return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), p2)

    return _golden_weight(d, n1, n2, c2, s1, s2)


@jax.jit
def _golden_weight(d, n1, n2, c2, s1, s2):
    def err(alpha):
        mu, r2, noise = _weighted_terms(d, n1, n2, alpha)
        e = c2 * (r2**2 + noise(r2**2, (1 - r2) ** 2)) + noise(s1**2, s2**2)
        return jnp.where(mu > 0, e, jnp.inf)

    ratio = (jnp.sqrt(jnp.asarray(5.0, d.dtype)) - 1) / 2

    def body(_, ab):
        a, b = ab
        x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
        left = err(x1) <= err(x2)
        return jnp.where(left, a, x1), jnp.where(left, x2, b)

    zero, one = jnp.zeros((), d.dtype), jnp.ones((), d.dtype)
    a, b = jax.lax.fori_loop(0, _GOLDEN_ITERATIONS, body, (zero, one))
    # the ends are candidates too (the minimum may sit on the boundary)
    cands = jnp.stack([zero, (a + b) / 2, one])
    return cands[jnp.argmin(jax.vmap(err)(cands))]


def iterative_mixture_error(
    dim: ArrayLike,
    n_samples: ArrayLike,
    synthetic_fraction: ArrayLike,
    initial_quality: ArrayLike,
    generations: ArrayLike,
    label_noise: ArrayLike,
    synthetic_noise: ArrayLike | None = None,
    *,
    finite_size: bool = False,
) -> Decomposition:
    """Iterative mixing (Corollary 3, exact recursion): round ``t`` fits OLS on ``p1 n`` fresh real
    samples and ``p2 n`` fresh samples labelled by round ``t-1``'s model (round 0: a generator of
    quality ``c0^2 = E||w^(0) - w1||_Sigma^2``).

    Ridgeless, ``n > d``: the error after round ``t`` obeys ``E_t = a E_{t-1} + V`` *exactly* (the law
    of ``M = (X^T X)^{-1} X_2^T X_2`` is rotation invariant in whitened coordinates, so
    ``E||M v||^2 = a ||v||^2`` for every ``v``), hence::

        E_t = a^t c0^2 + V (1 - a^t)/(1 - a),   a ≃ p2 (p2 + p1 u),   u = phi/(1 - phi),   V = sigma^2 u

    with Theorem 1's deterministic equivalents for ``a`` and ``V`` (``finite_size=True``: the exact
    ``V = sigma^2 d/(n - d - 1)``). ``sigma^2 = p1 sigma1^2 + p2 sigma2^2``. For ``t -> infinity`` and
    ``phi -> 0``: ``E_t -> sigma^2 phi/(1 - p2^2) + Theta(p2^{2t})`` (the printed Corollary 3); at
    ``p2 = 1``: ``E_t = c0^2 + t V`` (linear growth). Note ``a > 1`` (divergence) is possible when
    ``phi`` is close to 1.

    Args:
      dim: ``d`` (= rank of ``Sigma``). n_samples: ``n > d``. synthetic_fraction: ``p2``.
      initial_quality: ``c0^2``.
      generations: integer round(s) ``t >= 0`` (``t = 0`` is the initial generator: ``c0^2``).
      label_noise: ``sigma1``. synthetic_noise: ``sigma2`` (default ``sigma1``).
      finite_size: exact ``V`` (static).

    Returns:
      :class:`kcollapse.theory.Decomposition` shaped like ``generations`` (``bias = 0``,
      ``variance = V (1 - a^t)/(1 - a)``, ``collapse = a^t c0^2``).

    References:
      arXiv:2410.04840v2, §5, Corollary 3 (shared/THEORY.md §4.4); Ferbach et al. (2024).
    """
    check_concrete(dim=dim, n_samples=n_samples, synthetic_fraction=synthetic_fraction,
                   initial_quality=initial_quality, label_noise=label_noise, synthetic_noise=synthetic_noise,
                   generations=generations)
    if _concrete(dim, n_samples) and np.any(np.asarray(dim, float) >= np.asarray(n_samples, float)):
        raise ValueError(f"iterative mixing theory is ridgeless and needs n_samples > dim, got n={n_samples}, d={dim}")
    d, n, p2, c0, s1 = _floats(dim, n_samples, synthetic_fraction, initial_quality, label_noise)
    s2 = s1 if synthetic_noise is None else jnp.asarray(synthetic_noise, s1.dtype)
    t = jnp.asarray(generations, d.dtype)
    p1 = 1 - p2
    u = d / (n - d)
    a = p2 * (p2 + p1 * u)
    pooled = p1 * s1**2 + p2 * s2**2
    V = pooled * (d / (n - d - 1) if finite_size else u)
    at = a**t
    near_one = jnp.abs(a - 1) < 1e-6
    # sum_{j<t} a^j, with the a -> 1 limit expanded (t (1 + (t-1)(a-1)/2)) to avoid 0/0
    geometric = jnp.where(near_one, t * (1 + (t - 1) * (a - 1) / 2), (1 - at) / jnp.where(near_one, 1, 1 - a))
    return decomposition(jnp.zeros_like(at), V * geometric, at * c0)
