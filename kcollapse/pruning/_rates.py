"""Breakdown point, pruned flip rate and the infinite-sample law (Feng et al. 2406.07515, Thm 4.2/E.3).

Model (shared/THEORY.md §7; docs/notes/pruning.md §1): a synthesized label ``y'`` is wrong with
probability ``p``; a selection rule, independent of ``x`` given ``(y, y')``, keeps a correctly labelled
point with probability ``phi`` and a wrongly labelled one with probability ``psi``.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.special as jsp
from jax.typing import ArrayLike

__all__ = ["breakdown_point", "keep_rate", "limit_accuracy", "pruned_flip_rate"]


def _f(x: ArrayLike) -> jnp.ndarray:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def breakdown_point(keep_correct: ArrayLike, keep_wrong: ArrayLike) -> jnp.ndarray:
    """Breakdown point ``p* = 1/(1 + psi/phi) = phi/(phi + psi)``.

    Training on the kept synthesized labels succeeds (as ``N -> inf``) iff the generator's flip rate
    ``p < p*``. No pruning (``phi = psi``) gives ``1/2``; oracle pruning (``psi = 0``) gives ``1``.

    Args:
      keep_correct: ``phi`` in ``[0, 1]``, probability of keeping a correctly labelled point.
      keep_wrong: ``psi`` in ``[0, 1]``, probability of keeping a wrongly labelled point
        (``phi + psi > 0``).

    Returns:
      ``p*`` (broadcast shape). ``phi = psi = 0`` (nothing is ever kept) gives NaN.

    References:
      Feng, Dohmatob, Yang, Charton, Kempe, *Beyond Model Collapse* (arXiv:2406.07515), Theorem 4.2
      (v2; Theorem E.3 in the appendix); shared/THEORY.md §7.
    """
    phi, psi = _f(keep_correct), _f(keep_wrong)
    return phi / (phi + psi)


def keep_rate(flip_rate: ArrayLike, keep_correct: ArrayLike, keep_wrong: ArrayLike) -> jnp.ndarray:
    """Probability that a synthesized point is kept: ``q = (1 - p) phi + p psi``."""
    p = _f(flip_rate)
    return (1 - p) * keep_correct + p * keep_wrong


def pruned_flip_rate(flip_rate: ArrayLike, keep_correct: ArrayLike, keep_wrong: ArrayLike) -> jnp.ndarray:
    """Flip rate among the kept points: ``p_eff = p psi / (p psi + (1 - p) phi)``.

    ``p_eff < 1/2`` iff ``p < p*`` (:func:`breakdown_point`); ``p_eff = 1/2`` exactly at ``p = p*``.

    Returns:
      ``p_eff`` (NaN where nothing is kept, ``q = 0``).
    """
    p = _f(flip_rate)
    wrong = p * keep_wrong
    return wrong / (wrong + (1 - p) * keep_correct)


def limit_accuracy(flip_rate: ArrayLike, keep_correct: ArrayLike, keep_wrong: ArrayLike,
                   signal: ArrayLike) -> jnp.ndarray:
    """Accuracy of the mean-difference classifier as ``N -> inf`` at fixed ``d`` (the stated step law).

    With ``x = y mu + z``, ``z ~ N(0, I_d)``, ``||mu|| = signal``, the classifier trained on the kept
    points tends to ``sign(1 - 2 p_eff) mu``, so its accuracy tends to

        Phi(||mu||)   if p < p*,      1/2 at p = p*,      Phi(-||mu||) = 1 - Phi(||mu||)   if p > p*.

    The paper's "100 % below p*, 0 % above" is this law in the separable limit ``||mu|| -> inf``
    (where the Bayes accuracy ``Phi(||mu||) -> 1``).

    Args:
      flip_rate: ``p`` in ``[0, 1]``. keep_correct: ``phi``. keep_wrong: ``psi``.
      signal: ``||mu|| >= 0``.

    References:
      Feng et al. (arXiv:2406.07515) Theorem 4.2 / E.3; the finite-``||mu||`` form is kcollapse's
      (docs/notes/pruning.md §2).
    """
    p = _f(flip_rate)
    margin = (1 - p) * keep_correct - p * keep_wrong  # > 0 iff p < p*; |margin| <= 1e-12 q counts as p = p*
    tie = jnp.abs(margin) <= 1e-12 * keep_rate(p, keep_correct, keep_wrong)
    bayes = jsp.ndtr(_f(signal))
    return jnp.where(tie, 0.5, jnp.where(margin > 0, bayes, 1 - bayes))
