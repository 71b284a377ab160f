"""Ridge regression in kcollapse's normalisation, primal and dual, Cholesky and eigh.

Objective (kcollapse convention, shared/THEORY.md header)::

    w(ridge) = argmin_w (1/T) ||X w - y||^2 + ridge ||w||^2
             = (X^T X / T + ridge I)^{-1} X^T y / T          (primal, d x d)
             = X^T (X X^T / T + ridge I)^{-1} y / T           (dual,  T x T)

``ridge = 0`` is the minimum-norm least-squares solution ``X^+ y`` in both forms (eigenvalues of
the Gram below ``eps * max(T, d) * largest`` are treated as zero, like ``numpy.linalg.lstsq``'s
default ``rcond``).

Solvers (``solver=``):

* ``"eigh"`` — one symmetric eigendecomposition of the Gram (``X^T X`` or ``X X^T``); a whole ridge
  grid is then served from that single factorisation (:func:`ridge_path`, :func:`eigh_factor`).
* ``"cholesky"`` — one Cholesky of ``Gram + ridge T I``; needs ``ridge > 0`` or a full-rank Gram. If
  the factorisation is not finite (numerically singular system) it falls back to the eigh
  pseudo-inverse inside the compiled code and reports ``fallback=True`` in the info.
* ``"auto"`` — ``cholesky`` for a concrete ``ridge > 0``, else ``eigh``; ``form="auto"`` picks the
  primal form when ``T >= d`` and the dual form otherwise.

No inverse is ever formed. Matrix products run at ``Precision.HIGHEST`` so float32 on GPUs/TPUs
does not silently drop to bf16/TF32 passes.

Examples:
  >>> import jax, jax.numpy as jnp, kcollapse as kc
  >>> X = jax.random.normal(jax.random.key(0), (20, 5)); y = X @ jnp.ones(5)
  >>> w = kc.solvers.ridge(X, y, 0.0)
  >>> bool(jnp.allclose(w, 1.0, atol=1e-4))
  True
"""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks

__all__ = [
    "EighFactor",
    "RidgeInfo",
    "eigh_factor",
    "moments_ridge",
    "moments_ridge_path",
    "ridge",
    "ridge_path",
]

_HI = jax.lax.Precision.HIGHEST


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HI)


class RidgeInfo(NamedTuple):
    """Diagnostics of one solve (returned as data, usable under ``jit``/``vmap``).

    Attributes:
      fallback: the Cholesky factorisation was not finite and the eigh pseudo-inverse was used.
      finite: every entry of the solution is finite.
    """

    fallback: jax.Array
    finite: jax.Array


def _rank_tol(mu: jax.Array, n_rows: int, n_cols: int) -> jax.Array:
    """Eigenvalues of a Gram below this are numerically zero (``numpy.linalg.lstsq``-like)."""
    eps = jnp.finfo(mu.dtype).eps
    return eps * max(n_rows, n_cols) * jnp.max(jnp.abs(mu), axis=-1, keepdims=True)


def _spectral_weights(mu: jax.Array, shift: jax.Array, tol: jax.Array) -> jax.Array:
    """``1 / (mu + shift)``, with the min-norm pseudo-inverse where ``shift == 0``.

    ``mu`` has shape ``(r,)``; ``shift`` any shape ``S``; result ``S + (r,)``.
    """
    mu = jnp.maximum(mu, 0.0)
    shift = jnp.asarray(shift, mu.dtype)[..., None]
    keep = mu > tol
    ridge_w = 1.0 / jnp.where(shift > 0, mu + shift, 1.0)
    pinv_w = jnp.where(keep, 1.0 / jnp.where(keep, mu, 1.0), 0.0)
    return jnp.where(shift > 0, ridge_w, pinv_w)


# --------------------------------------------------------------------------------------------
# Moments form: everything primal is a function of G = X^T X and h = X^T y.
# --------------------------------------------------------------------------------------------


def moments_ridge_path(G: ArrayLike, h: ArrayLike, n_samples: ArrayLike, ridges: ArrayLike, *, n_rows_hint: int | None = None) -> jax.Array:
    """Ridge solutions for a grid of ridge values from the moments ``G = X^T X``, ``h = X^T y``.

    One eigendecomposition of ``G`` serves every ridge value.

    Args:
      G: ``(d, d)`` symmetric PSD Gram ``X^T X`` (unnormalised).
      h: ``(d,)`` or ``(d, k)`` moment ``X^T y``.
      n_samples: ``T``, the number of rows behind ``G`` (the ridge is scaled by it).
      ridges: ``(n_ridges,)`` ridge values ``>= 0`` (``0`` = min-norm).
      n_rows_hint: rows used for the rank tolerance (default ``d``).

    Returns:
      ``(n_ridges, d)`` or ``(n_ridges, d, k)`` solutions.
    """
    G = jnp.asarray(G)
    h = jnp.asarray(h, G.dtype)
    mu, V = jnp.linalg.eigh(G)
    tol = _rank_tol(mu, n_rows_hint or G.shape[0], G.shape[0])
    z = _mm(V.T, h)
    wts = _spectral_weights(mu, jnp.asarray(ridges, G.dtype) * jnp.asarray(n_samples, G.dtype), tol)
    if h.ndim == 1:
        return _mm(wts * z, V.T)
    return jnp.einsum("ij,rj,jk->rik", V, wts, z, precision=_HI)


def _cholesky_solve(A: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    L = jnp.linalg.cholesky(A)
    ok = jnp.all(jnp.isfinite(L))
    L = jnp.where(ok, L, jnp.eye(A.shape[0], dtype=A.dtype))
    x = jax.scipy.linalg.cho_solve((L, True), b)
    return x, ok


def moments_ridge(G: ArrayLike, h: ArrayLike, n_samples: ArrayLike, ridge: ArrayLike, *, solver: str = "cholesky") -> tuple[jax.Array, RidgeInfo]:
    """One ridge solve from moments: ``(G + ridge T I)^{-1} h`` (pseudo-inverse when singular).

    With ``solver="cholesky"`` a non-finite factorisation (a numerically singular system, e.g.
    ``ridge = 0`` with a rank-deficient ``G``) falls back to the eigh min-norm solve.

    Returns:
      ``(w, info)`` with ``w`` shaped like ``h``.
    """
    G = jnp.asarray(G)
    h = jnp.asarray(h, G.dtype)
    ridge = jnp.asarray(ridge, G.dtype)

    def eigh_path(_):
        return moments_ridge_path(G, h, n_samples, ridge[None])[0]

    if solver == "eigh":
        w = eigh_path(None)
        return w, RidgeInfo(jnp.asarray(False), jnp.all(jnp.isfinite(w)))
    _checks.check_choice("solver", solver, ("cholesky", "eigh"))
    A = G + (ridge * jnp.asarray(n_samples, G.dtype)) * jnp.eye(G.shape[0], dtype=G.dtype)
    x, ok = _cholesky_solve(A, h)
    w = jax.lax.cond(ok, lambda _: x, eigh_path, None)
    return w, RidgeInfo(~ok, jnp.all(jnp.isfinite(w)))


# --------------------------------------------------------------------------------------------
# Design form: primal / dual, chosen automatically.
# --------------------------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EighFactor:
    """An eigendecomposition of the Gram of ``X`` that serves any number of ridge values.

    Attributes:
      eigenvalues: ``(r,)`` eigenvalues of ``X^T X`` (primal, ``r = d``) or ``X X^T`` (dual, ``r = T``).
      eigenvectors: ``(r, r)`` orthonormal eigenvectors (columns).
      X: ``(T, d)`` the design (needed by the dual form and to form ``X^T y``).
      form: ``"primal"`` or ``"dual"`` (static).
    """

    eigenvalues: jax.Array
    eigenvectors: jax.Array
    X: jax.Array
    form: str = dataclasses.field(metadata=dict(static=True), default="primal")


def _resolve_form(form: str, n_rows: int, n_cols: int) -> str:
    _checks.check_choice("form", form, ("auto", "primal", "dual"))
    if form == "auto":
        return "primal" if n_rows >= n_cols else "dual"
    return form


def _check_xy(X: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array]:
    X = _checks.check_finite_array("X", X, ndim=2)
    y = _checks.check_finite_array("y", y)
    X = jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.result_type(float))
    y = jnp.asarray(y, X.dtype)
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, k) to match X {X.shape}, got {y.shape}")
    return X, y


def available_memory_bytes() -> int | None:
    """Memory a new array can use on the default device: free device memory on accelerators
    (``memory_stats``), available physical memory on CPU; ``None`` when unknown.
    ``KCOLLAPSE_MEMORY_LIMIT_MB`` overrides it (a user cap, and how the tests exercise the error)."""
    env = os.environ.get("KCOLLAPSE_MEMORY_LIMIT_MB")
    if env:
        return int(float(env) * 2**20)
    try:
        dev = jax.devices()[0]
        if dev.platform != "cpu":
            stats = dev.memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
            return None
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def _check_fit_memory(T: int, d: int, k: int, form: str, itemsize: int, n_factors: int = 2) -> None:
    """Raise :class:`MemoryError` (a clear one, before allocating) when one fit cannot fit.

    The working set of a fit is the Gram of side ``r = d`` (primal) or ``T`` (dual) plus its
    factor (``n_factors`` r x r arrays), plus the targets/right-hand sides.
    """
    r = d if form == "primal" else T
    need = (n_factors * r * r + (r + T) * k) * itemsize
    have = available_memory_bytes()
    if have is not None and need > have:
        other = "dual (T x T)" if form == "primal" else "primal (d x d)"
        raise MemoryError(
            f"this {form} fit needs about {need / 2**30:.1f} GiB ({n_factors} {r} x {r} Gram/factor arrays) but "
            f"only {have / 2**30:.1f} GiB is available; use form='{other.split()[0]}' ({other} system), "
            f"float32, fewer samples/features, or random features (kcollapse.kernels)"
        )


def eigh_factor(X: ArrayLike, *, form: str = "auto") -> EighFactor:
    """Factor the Gram of ``X`` once (``X^T X`` if primal, ``X X^T`` if dual).

    Args:
      X: ``(T, d)`` design.
      form: ``"auto"`` (primal when ``T >= d``), ``"primal"`` or ``"dual"``.
    """
    X = jnp.asarray(_checks.check_finite_array("X", X, ndim=2))
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.result_type(float))
    form = _resolve_form(form, X.shape[0], X.shape[1])
    if not isinstance(X, jax.core.Tracer):
        _check_fit_memory(X.shape[0], X.shape[1], 1, form, X.dtype.itemsize, n_factors=3)
    gram = _mm(X.T, X) if form == "primal" else _mm(X, X.T)
    mu, V = jnp.linalg.eigh(gram)
    return EighFactor(mu, V, X, form)


def ridge_path(factor: EighFactor, y: ArrayLike, ridges: ArrayLike) -> jax.Array:
    """Ridge solutions for every value of a ridge grid from one :class:`EighFactor`.

    Args:
      factor: from :func:`eigh_factor`.
      y: ``(T,)`` or ``(T, k)`` targets.
      ridges: ``(n_ridges,)`` ridge values ``>= 0``.

    Returns:
      ``(n_ridges, d)`` (or ``(n_ridges, d, k)``) solutions.
    """
    X = factor.X
    y = jnp.asarray(y, X.dtype)
    T, d = X.shape
    ridges = jnp.asarray(ridges, X.dtype)
    tol = _rank_tol(factor.eigenvalues, T, d)
    wts = _spectral_weights(factor.eigenvalues, ridges * T, tol)  # (n_ridges, r)
    V = factor.eigenvectors
    if factor.form == "primal":
        z = _mm(V.T, _mm(X.T, y))
        if y.ndim == 1:
            return _mm(wts * z, V.T)
        return jnp.einsum("ij,rj,jk->rik", V, wts, z, precision=_HI)
    z = _mm(V.T, y)
    if y.ndim == 1:
        return _mm(_mm(wts * z, V.T), X)
    alpha = jnp.einsum("ij,rj,jk->rik", V, wts, z, precision=_HI)  # (n_ridges, T, k)
    return jnp.einsum("td,rtk->rdk", X, alpha, precision=_HI)


def _is_concrete_positive(ridge: ArrayLike) -> bool:
    if isinstance(ridge, jax.core.Tracer):
        return False
    return bool(np.all(np.asarray(ridge) > 0))


def ridge(
    X: ArrayLike,
    y: ArrayLike,
    ridge: ArrayLike,
    *,
    solver: str = "auto",
    form: str = "auto",
    return_info: bool = False,
) -> jax.Array | tuple[jax.Array, RidgeInfo]:
    """Solve ``argmin_w (1/T)||X w - y||^2 + ridge ||w||^2`` (min-norm least squares at ``ridge = 0``).

    Args:
      X: ``(T, d)`` design.
      y: ``(T,)`` or ``(T, k)`` targets.
      ridge: scalar ridge ``>= 0``.
      solver: ``"auto"``, ``"cholesky"`` or ``"eigh"`` (see the module docstring).
      form: ``"auto"``, ``"primal"`` (``d x d`` system) or ``"dual"`` (``T x T`` system).
      return_info: also return a :class:`RidgeInfo`.

    Returns:
      ``(d,)`` or ``(d, k)`` solution (and the info if asked).

    Raises:
      ValueError: shapes that do not match, NaN/inf, a negative ridge, an unknown solver/form.
    """
    X, y = _check_xy(X, y)
    if not isinstance(ridge, jax.core.Tracer):
        _checks.check_nonneg_float("ridge", np.asarray(ridge).item() if np.ndim(ridge) == 0 else ridge)
    _checks.check_choice("solver", solver, ("auto", "cholesky", "eigh"))
    T, d = X.shape
    form = _resolve_form(form, T, d)
    if not isinstance(X, jax.core.Tracer):
        _check_fit_memory(T, d, 1 if y.ndim == 1 else y.shape[1], form, X.dtype.itemsize)
    if solver == "auto":
        solver = "cholesky" if _is_concrete_positive(ridge) else "eigh"
    ridge = jnp.asarray(ridge, X.dtype)
    if form == "primal":
        w, info = moments_ridge(_mm(X.T, X), _mm(X.T, y), T, ridge, solver=solver)
    elif solver == "eigh":
        w = ridge_path(eigh_factor(X, form="dual"), y, ridge[None])[0]
        info = RidgeInfo(jnp.asarray(False), jnp.all(jnp.isfinite(w)))
    else:
        alpha, info = moments_ridge(_mm(X, X.T), y, T, ridge, solver="cholesky")
        w = _mm(X.T, alpha)
        info = RidgeInfo(info.fallback, jnp.all(jnp.isfinite(w)))
    return (w, info) if return_info else w
