"""Supervised pruning with a linear verifier: (p, phi, psi) as Gaussian orthant probabilities.

Setting (kcollapse derivation, docs/notes/pruning.md §3; the orthant form of Feng et al.,
arXiv:2406.07515, §4 / App. E): centred Gaussian inputs ``x ~ N(0, I_d)``; the true label is
``y = sign(mu^T x)``, the generator's label ``y' = sign(w_gen^T x)``, and the verifier keeps a point
iff ``sign(w_prune^T x) = y'``. With the cosines ``rho_g = cos(mu, w_gen)``, ``rho_v = cos(mu, w_prune)``,
``rho_gv = cos(w_gen, w_prune)`` and the trivariate orthant probability
``P(X1 > 0, X2 > 0, X3 > 0) = 1/8 + (asin rho12 + asin rho13 + asin rho23)/(4 pi)``:

    p        = P(y' != y)            = arccos(rho_g)/pi
    P(right, kept) = P(all three signs equal) = 1/4 + (asin rho_g + asin rho_v + asin rho_gv)/(2 pi)
    P(wrong, kept) = P(sign_gen = sign_prune != y) = 1/4 + (asin rho_gv - asin rho_g - asin rho_v)/(2 pi)
    phi = P(right, kept)/(1 - p),   psi = P(wrong, kept)/p.

The mean-difference classifier on the kept points tends to ``E[y' 1{kept} x] = (w_gen/|w_gen| +
w_prune/|w_prune|)/sqrt(2 pi)`` (because ``y' 1{kept} = (sign_gen + sign_prune)/2``), whose accuracy
against ``y`` is ``1 - angle/pi`` with ``cos(angle) = (rho_g + rho_v)/sqrt(2 + 2 rho_gv)``. Its accuracy
exceeds 1/2 iff ``rho_g + rho_v > 0`` iff ``P(right, kept) > P(wrong, kept)`` iff ``p < p*(phi, psi)``:
the breakdown point is exact in this model too, although here the selection depends on ``x``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks

__all__ = [
    "VerifierRates",
    "simulate_verifier",
    "verifier_directions",
    "verifier_finite_accuracy",
    "verifier_limit_accuracy",
    "verifier_rates",
]


class VerifierRates(NamedTuple):
    """Generator error ``p``, keep probabilities ``phi``/``psi`` and joint probabilities of a linear verifier.

    Attributes:
      flip_rate: ``p``. keep_correct: ``phi``. keep_wrong: ``psi`` (NaN at ``p = 0``).
      right_kept: ``P(y' = y, kept)``. wrong_kept: ``P(y' != y, kept)``.
    """

    flip_rate: jax.Array
    keep_correct: jax.Array
    keep_wrong: jax.Array
    right_kept: jax.Array
    wrong_kept: jax.Array


def _f(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def verifier_rates(cos_gen: ArrayLike, cos_prune: ArrayLike, cos_gen_prune: ArrayLike) -> VerifierRates:
    """``(p, phi, psi)`` of a linear generator and a linear verifier from the three cosines.

    Args:
      cos_gen: ``rho_g = cos angle(mu, w_gen)`` in ``[-1, 1]``.
      cos_prune: ``rho_v = cos angle(mu, w_prune)``.
      cos_gen_prune: ``rho_gv = cos angle(w_gen, w_prune)``; the 3 x 3 correlation matrix must be
        positive semi-definite (see :func:`verifier_directions`).

    Returns:
      :class:`VerifierRates` (broadcast shape).

    References:
      Feng et al. (arXiv:2406.07515) §4 (linear verifier); orthant probabilities: Plackett (1954),
      ``P(X1, X2 > 0) = 1/4 + asin(rho)/(2 pi)``. Derivation: docs/notes/pruning.md §3.
    """
    rg, rv, rgv = _f(cos_gen), _f(cos_prune), _f(cos_gen_prune)
    ag, av, agv = jnp.arcsin(rg), jnp.arcsin(rv), jnp.arcsin(rgv)
    p = jnp.arccos(rg) / jnp.pi
    right = 0.25 + (ag + av + agv) / (2 * jnp.pi)
    wrong = 0.25 + (agv - ag - av) / (2 * jnp.pi)
    return VerifierRates(p, right / (1 - p), wrong / p, right, wrong)


def verifier_limit_accuracy(cos_gen: ArrayLike, cos_prune: ArrayLike, cos_gen_prune: ArrayLike) -> jnp.ndarray:
    """``N -> inf`` accuracy of the mean-difference classifier trained on the verified points.

    ``1 - arccos((rho_g + rho_v)/sqrt(2 + 2 rho_gv))/pi`` (the limit direction bisects ``w_gen`` and
    ``w_prune``). No verifier (keep everything) would give ``1 - p``. ``w_prune = -w_gen``
    (``rho_gv = -1``) keeps nothing; NaN.
    """
    rg, rv, rgv = _f(cos_gen), _f(cos_prune), _f(cos_gen_prune)
    cos = jnp.clip((rg + rv) / jnp.sqrt(2 + 2 * rgv), -1.0, 1.0)
    return 1 - jnp.arccos(cos) / jnp.pi


def _frame(rg, rv, rgv):
    """Unit vectors ``mu, w_gen, w_prune`` (rows of a ``(3, 3)``) with the given cosines (symmetric square root)."""
    gram = jnp.array([[1.0, rg, rv], [rg, 1.0, rgv], [rv, rgv, 1.0]], dtype=jnp.result_type(rg))
    vals, vecs = jnp.linalg.eigh(gram)
    return (vecs * jnp.sqrt(jnp.clip(vals, 0.0, None))) @ vecs.T


def verifier_finite_accuracy(cos_gen: ArrayLike, cos_prune: ArrayLike, cos_gen_prune: ArrayLike, n_samples: int,
                             dim: int) -> jnp.ndarray:
    """Finite-``N`` accuracy of the verified mean-difference classifier, to ``O(1/N^2)`` (delta method).

    ``S = sum_i y'_i 1{kept_i} x_i = N m1 + sqrt(N) eps`` with ``m1 = (g + v)/sqrt(2 pi)`` (unit ``g, v``)
    and ``Cov(eps) = Sigma = P_keep I + (sin gamma/pi)(2 b b^T - Pi_gv) - m1 m1^T`` exactly, where
    ``gamma = angle(g, v)``, ``P_keep = 1 - gamma/pi``, ``b = (g + v)/|g + v|`` and ``Pi_gv`` projects on
    ``span(g, v)`` (second moment of a standard Gaussian on the double wedge where ``sign g^T x =
    sign v^T x``). The angle ``theta(S)`` to ``mu`` is scale free, so
    ``E theta = theta(m1) + tr(Hess theta(m1) Sigma)/(2N) + O(N^-2)`` and the accuracy is
    ``1 - E theta/pi``. The ``d - 3`` directions outside ``span(mu, g, v)`` enter through one
    representative coordinate weighted by ``d - 3``.

    Args:
      cos_gen, cos_prune, cos_gen_prune: as in :func:`verifier_rates` (scalars).
      n_samples: ``N`` (>= 1). dim: ``d >= 3`` (static).

    References:
      kcollapse derivation (docs/notes/pruning.md §3), setting of Feng et al. (arXiv:2406.07515) §4.
    """
    d = _checks.check_int("dim", dim, minimum=3)
    rg, rv, rgv = _f(cos_gen), _f(cos_prune), _f(cos_gen_prune)
    dt = rg.dtype
    frame = _frame(rg, rv, rgv)  # rows mu, g, v in R^3
    embed = jnp.concatenate([frame, jnp.zeros((3, 1), dt)], axis=1)  # R^4: 3 span dims + 1 representative
    mu, g, v = embed
    m1 = (g + v) / jnp.sqrt(2 * jnp.pi)
    gamma = jnp.arccos(jnp.clip(rgv, -1.0, 1.0))
    p_keep = 1 - gamma / jnp.pi
    b = (g + v) / jnp.linalg.norm(g + v)
    # projector on span(g, v): orthonormalise
    e1 = g
    e2 = v - (v @ g) * g
    e2n = jnp.linalg.norm(e2)
    e2 = jnp.where(e2n > 1e-12, e2 / jnp.where(e2n > 1e-12, e2n, 1.0), 0.0)
    proj = jnp.outer(e1, e1) + jnp.outer(e2, e2)
    sigma = p_keep * jnp.eye(4, dtype=dt) + jnp.sin(gamma) / jnp.pi * (2 * jnp.outer(b, b) - proj) - jnp.outer(m1, m1)
    weights = jnp.array([1.0, 1.0, 1.0, d - 3.0], dt)

    def angle(w):
        return jnp.arccos(jnp.clip((w @ mu) / jnp.linalg.norm(w), -1.0, 1.0))

    hess = jax.hessian(angle)(m1)
    correction = jnp.sum(hess * sigma * jnp.sqrt(weights[:, None] * weights[None, :])) / (2 * n_samples)
    return 1 - (angle(m1) + correction) / jnp.pi


def verifier_directions(gen_error: float, prune_error: float, error_angle: float = np.pi / 2) -> np.ndarray:
    """Unit vectors ``(mu, w_gen, w_prune)`` in ``R^3`` (rows) with prescribed error rates.

    ``w_gen`` makes the angle ``pi gen_error`` with ``mu`` and ``w_prune`` the angle ``pi prune_error``;
    the components of the two perpendicular to ``mu`` make the angle ``error_angle`` (``pi/2``:
    "independent" mistakes; 0: the verifier errs where the generator errs).

    Returns:
      ``(3, 3)`` float64, rows ``mu, w_gen, w_prune``; the cosines are ``rows @ rows.T``.
    """
    eg = _checks.check_fraction("gen_error", gen_error)
    ev = _checks.check_fraction("prune_error", prune_error)
    beta = _checks.check_nonneg_float("error_angle", error_angle)
    tg, tv = np.pi * eg, np.pi * ev
    mu = np.array([1.0, 0.0, 0.0])
    g = np.array([np.cos(tg), np.sin(tg), 0.0])
    v = np.array([np.cos(tv), np.sin(tv) * np.cos(beta), np.sin(tv) * np.sin(beta)])
    return np.stack([mu, g, v])


@functools.partial(jax.jit, static_argnames=("n_samples", "dim"))
def _verifier_seed(key, directions, *, n_samples, dim):
    dt = directions.dtype
    k_x, k_r = jax.random.split(key)
    x = jax.random.normal(k_x, (n_samples, 3), dt)
    s = jnp.sign(x @ directions.T)  # (N, 3): y, y', verifier
    y, y_syn, ver = s[:, 0], s[:, 1], s[:, 2]
    keep = ver == y_syn
    right = keep & (y_syn == y)
    wrong = keep & (y_syn != y)
    w3 = jnp.sum(jnp.where(keep, y_syn, 0.0)[:, None] * x, axis=0)
    kept = jnp.sum(keep.astype(dt))
    rest = jnp.sqrt(kept) * jax.random.normal(k_r, (max(dim - 3, 0),), dt)  # label-independent coordinates
    norm = jnp.sqrt(jnp.sum(w3 * w3) + jnp.sum(rest * rest))
    cos = (w3 @ directions[0]) / jnp.where(norm > 0, norm, 1.0)
    acc = jnp.where(kept > 0, 1 - jnp.arccos(jnp.clip(cos, -1.0, 1.0)) / jnp.pi, 0.5)
    n = jnp.asarray(n_samples, dt)
    return jnp.stack([acc, jnp.sum((y_syn != y).astype(dt)) / n, jnp.sum(right.astype(dt)) / n,
                      jnp.sum(wrong.astype(dt)) / n])


def simulate_verifier(key: jax.Array, directions: ArrayLike, n_samples: int, dim: int = 3, *,
                      n_seeds: int = 64) -> np.ndarray:
    """Simulate the linear generator + linear verifier + mean-difference classifier.

    Draws ``N`` points ``x ~ N(0, I_d)`` (only the span of ``mu, w_gen, w_prune`` is drawn point by
    point; the other ``d - 3`` coordinates of ``sum_kept y' x`` are exactly ``sqrt(K) N(0, I)``), labels
    them, verifies, and fits the mean difference.

    Args:
      key: seed ``i`` uses ``fold_in(key, i)``. directions: ``(3, 3)`` rows ``mu, w_gen, w_prune``
        (:func:`verifier_directions`). n_samples: ``N``. dim: ``d >= 3``. n_seeds: seeds.

    Returns:
      ``(seeds, 4)`` per seed: accuracy ``1 - angle(w_hat, mu)/pi``, empirical ``p``,
      ``P(right, kept)`` and ``P(wrong, kept)`` frequencies.
    """
    n = _checks.check_int("n_samples", n_samples, minimum=1)
    d = _checks.check_int("dim", dim, minimum=3)
    seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    dirs = _checks.check_finite_array("directions", directions, ndim=2)
    if dirs.shape != (3, 3):
        raise ValueError(f"directions must be (3, 3) rows mu, w_gen, w_prune, got shape {dirs.shape}")
    dirs = jnp.asarray(dirs / np.linalg.norm(dirs, axis=1, keepdims=True), jnp.result_type(float))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(seeds))
    out = jax.vmap(lambda k: _verifier_seed(k, dirs, n_samples=n, dim=d))(keys)
    return np.asarray(out, dtype=np.float64)
