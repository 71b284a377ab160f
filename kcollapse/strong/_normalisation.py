"""Conventions of the Strong-Model-Collapse family, stated and converted in one place.

**Ridge.** Strong Model Collapse (Dohmatob, Feng, Subramonian, Kempe, arXiv:2410.04840v2, §2;
shared/THEORY.md §4.1) fits ``argmin_w (1/n) sum_i (x_i^T w - y_i)^2 + lambda ||w||^2`` on the
``n = n1 + n2`` pooled samples, and the random-projection model ``f(x) = v^T S^T x`` by
``argmin_v (1/n) sum_i (v^T S^T x_i - y_i)^2 + lambda ||v||^2``. Both are kcollapse's
normalisation (:mod:`kcollapse._conventions`) applied to the inputs ``x`` resp. the features
``S^T x``, so **a kcollapse ridge is the paper's lambda unchanged** (:func:`paper_ridge` is the
identity, kept so the conversion is explicit and greppable). This was checked, not assumed: the
Monte Carlo of both models with kcollapse's ridge matches Theorems 1 and 2 at lambda in
``[1e-3, 1e-1]``, where a factor ``n`` or ``2`` would be visible (tests/test_strong.py).

The one genuine rescaling is between the two models: with ``S`` of iid ``N(0, 1/d)`` entries,
``S S^T ≈ gamma I_d`` (``gamma = m/d``) for ``m >> d``, so a penalty ``lambda ||v||^2`` acts like
``(lambda/gamma) ||w||^2`` on ``w = S v``; Theorem 2 at ridge ``lambda`` tends to Theorem 1 at
ridge :func:`linear_equivalent_ridge` ``= lambda d/m`` as ``psi = m/n -> infinity``.

**Quality and mismatch.** The synthetic teacher is ``w2 = w1 + delta`` with ``delta ~ N(0, Delta)``,
``Delta`` diagonal in the eigenbasis of ``Sigma``. kcollapse's quality is
``c^2 = E ||w2 - w1||_Sigma^2 = tr(Sigma Delta)`` (on the scale of the teacher,
``||w1||_Sigma^2 = 1``); the paper's experiments use ``Delta = (c^2/d) Sigma^{-1}``, which has
exactly this trace and is what reproduces its corollaries (THEORY.md §4.1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ..spectra import Spectrum

__all__ = ["MISMATCH_SHAPES", "STRONG_CONVENTIONS", "linear_equivalent_ridge", "mismatch_covariance", "paper_ridge"]

#: Shapes of the mismatch covariance ``Delta`` (see :func:`mismatch_covariance`).
MISMATCH_SHAPES = ("inverse", "isotropic")

#: Written into the metadata of every ``--model mixture`` / ``--model random-projection`` output.
STRONG_CONVENTIONS: dict[str, str] = {
    "ridge_strong": "Strong Model Collapse (2410.04840v2) fits (1/n) sum (x^T w - y)^2 + lambda ||w||^2 on the "
    "pooled n = n1 + n2 samples (random projections: (1/n) sum (v^T S^T x - y)^2 + lambda ||v||^2): "
    "identical to kcollapse's ridge, so --ridge is the paper's lambda unchanged",
    "random_projection": "S has iid N(0, 1/d) entries, d x m; only v is trained; w = S v; as m/n -> infinity "
    "Theorem 2 at ridge lambda tends to Theorem 1 at ridge lambda*d/m",
    "quality": "c^2 = E||w2 - w1||_Sigma^2 = tr(Sigma Delta), delta = w2 - w1 ~ N(0, Delta) drawn afresh per seed, "
    "Delta diagonal: 'inverse' = (c^2/d) Sigma^{-1} (the paper's experiments), 'isotropic' = (c^2/tr Sigma) I",
    "test_error_strong": "excess risk ||w_hat - w1||_Sigma^2 on the REAL distribution (teacher w1, noise floor excluded)",
    "synthetic_rows": "the last n2 = round(p2 n) rows carry synthetic labels x^T w2 + sigma2 eps; "
    "theory is evaluated at the realised fraction p2 = n2/n",
}


def paper_ridge(ridge: ArrayLike) -> jax.Array:
    """The paper's ``lambda`` for a kcollapse ``ridge``: the identity (see the module docstring)."""
    return jnp.asarray(ridge)


def linear_equivalent_ridge(ridge: ArrayLike, width: ArrayLike, dim: ArrayLike) -> jax.Array:
    """Ridge of the classical model that the random-projection model at ``ridge`` tends to.

    ``lambda_linear = lambda / gamma = lambda d / m`` (THEORY.md §4.3, consistency check).

    Args:
      ridge: random-projection ridge ``lambda`` (on ``||v||^2``).
      width: ``m``, number of random features.
      dim: ``d``, input dimension.
    """
    ridge = jnp.asarray(ridge)
    if not jnp.issubdtype(ridge.dtype, jnp.floating):
        ridge = ridge.astype(jnp.result_type(float))
    return ridge * jnp.asarray(dim, ridge.dtype) / jnp.asarray(width, ridge.dtype)


def mismatch_covariance(spectrum: Spectrum, quality: ArrayLike, shape: str = "inverse") -> jax.Array:
    """Diagonal of the teacher-mismatch covariance ``Delta`` with ``tr(Sigma Delta) = c^2``.

    * ``"inverse"``: ``Delta = (c^2/r) Sigma^{-1}`` on the ``r`` directions with ``lambda_i > 0``
      (``r = d`` for a full-rank ``Sigma``; 0 elsewhere) — the paper's experiments, App. A;
      every direction carries ``Sigma``-energy ``c^2/r``.
    * ``"isotropic"``: ``Delta = (c^2 / tr Sigma) I``.

    Args:
      spectrum: eigenvalues of ``Sigma`` (the teacher is not used).
      quality: ``c^2 >= 0``; traceable.
      shape: ``"inverse"`` or ``"isotropic"`` (static).

    Returns:
      ``(d,)`` diagonal of ``Delta`` in the eigenbasis of ``Sigma``.

    Raises:
      ValueError: unknown ``shape`` or negative concrete ``quality``.

    Examples:
      >>> import kcollapse as kc
      >>> s = kc.spectra.power_law(50, 2.0, 0.5)
      >>> D = kc.strong.mismatch_covariance(s, 0.5)
      >>> round(float((s.eigenvalues * D).sum()), 5)
      0.5

    References:
      Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse", arXiv:2410.04840v2, §2 and App. A.
    """
    _checks.check_choice("shape", shape, MISMATCH_SHAPES)
    if not isinstance(quality, jax.core.Tracer):
        _checks.check_nonneg_float("quality (c2)", np.asarray(quality).item() if np.ndim(quality) == 0 else quality)
    lam = spectrum.eigenvalues
    c2 = jnp.asarray(quality, lam.dtype)
    if shape == "inverse":
        positive = lam > 0
        rank = jnp.sum(positive.astype(lam.dtype))
        return jnp.where(positive, c2 / (rank * jnp.where(positive, lam, 1)), jnp.zeros((), lam.dtype))
    return jnp.full(lam.shape, 1, lam.dtype) * c2 / jnp.sum(lam)
