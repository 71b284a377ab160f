"""Gram matrices and kernel matrix-vector products, computed in tiles under a memory budget.

``gram(kernel, X, Z)`` returns ``[k(x_i, z_j)]``; ``kernel_matvec(kernel, X, Z, V)`` returns
``K(X, Z) @ V`` without ever holding ``K(X, Z)``. Both cut the work into row (and, if needed,
column) tiles so that the tiles being computed, together with the output, never need more than
``memory_budget`` bytes; tiles run sequentially under ``lax.map``/``lax.scan`` inside one compiled
function. The output of :func:`gram` itself must fit the budget (else ``MemoryError`` says what to
do instead).

Precision: inputs keep their dtype. kcollapse never enables float64 itself; with
``jax_enable_x64`` on (the CLI and the tests turn it on) float64 inputs give a float64 Gram, which
is the default everywhere in kcollapse. Matrix products run at ``Precision.HIGHEST`` (the same as
``jax.default_matmul_precision("highest")``), so float32 on GPUs does not fall back to TF32.
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ._functions import Kernel

__all__ = ["DEFAULT_MEMORY_BUDGET", "gram", "kernel_matvec", "tile_shape"]

#: Default byte limit for :func:`gram` / :func:`kernel_matvec` (512 MiB).
DEFAULT_MEMORY_BUDGET = 512 * 2**20

_HI = jax.lax.Precision.HIGHEST


def _as_inputs(name: str, X: ArrayLike, n_features: int | None = None) -> jax.Array:
    if isinstance(X, jax.core.Tracer):
        return X
    arr = _checks.check_finite_array(name, X, ndim=2)
    if arr.dtype == np.float64 and not jax.config.jax_enable_x64:
        warnings.warn(
            f"{name} is float64 but jax_enable_x64 is off, so the Gram is computed in float32; call "
            "jax.config.update('jax_enable_x64', True) for kcollapse's float64 default",
            stacklevel=3,
        )
    out = jnp.asarray(arr)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        out = out.astype(jnp.result_type(float))
    if n_features is not None and out.shape[1] != n_features:
        raise ValueError(f"{name} has {out.shape[1]} features but the other input has {n_features}; they must match")
    return out


def tile_shape(kernel: Kernel, n_rows: int, n_cols: int, n_features: int, itemsize: int, budget_bytes: int,
               *, extra_per_row: int = 0) -> tuple[int, int]:
    """Largest ``(row_tile, col_tile)`` whose working set fits ``budget_bytes``.

    One tile entry needs ``kernel.work_per_entry(p) + 1`` elements; each row of a tile also holds
    its ``p`` inputs and ``extra_per_row`` further elements (e.g. the rows of ``V`` in a matvec).
    Columns are tiled only when a single row of all ``n_cols`` columns does not fit.

    Raises:
      MemoryError: not even a ``1 x 1`` tile fits.
    """
    per_entry = (kernel.work_per_entry(n_features) + 1) * itemsize
    row_fixed = (n_features + extra_per_row) * itemsize
    col_fixed = n_features * itemsize
    budget = budget_bytes - n_cols * col_fixed
    full_row = n_cols * per_entry + row_fixed
    if budget >= full_row:
        return int(min(n_rows, max(1, budget // full_row))), n_cols
    cols = int((budget_bytes - row_fixed) // (per_entry + col_fixed))
    if cols < 1:
        raise MemoryError(
            f"memory_budget={budget_bytes} bytes cannot hold even one kernel entry with {n_features} features; raise it"
        )
    return 1, min(cols, n_cols)


def _pad_rows(A: jax.Array, multiple: int) -> jax.Array:
    pad = (-A.shape[0]) % multiple
    return jnp.pad(A, ((0, pad), (0, 0))) if pad else A


@functools.partial(jax.jit, static_argnames=("rt", "ct"))
def _gram_tiled(kernel: Kernel, X: jax.Array, Z: jax.Array, rt: int, ct: int) -> jax.Array:
    n, m = X.shape[0], Z.shape[0]
    if rt >= n and ct >= m:
        return kernel.block(X, Z)
    Xp = _pad_rows(X, rt).reshape(-1, rt, X.shape[1])
    Zp = _pad_rows(Z, ct).reshape(-1, ct, Z.shape[1])

    def row_tile(Xt):
        return jax.lax.map(lambda Zt: kernel.block(Xt, Zt), Zp)  # (n_col_tiles, rt, ct)

    tiles = jax.lax.map(row_tile, Xp)  # (n_row_tiles, n_col_tiles, rt, ct)
    out = jnp.transpose(tiles, (0, 2, 1, 3)).reshape(Xp.shape[0] * rt, Zp.shape[0] * ct)
    return out[:n, :m]


def gram(kernel: Kernel, X: ArrayLike, Z: ArrayLike | None = None, *, memory_budget: int = DEFAULT_MEMORY_BUDGET,
         tile: tuple[int, int] | None = None) -> jax.Array:
    """The Gram matrix ``K[i, j] = k(x_i, z_j)`` (``Z = X`` when omitted), computed in tiles.

    Args:
      kernel: a :class:`~kcollapse.kernels.Kernel` (or random features).
      X: ``(n, p)`` inputs.
      Z: ``(m, p)`` inputs (default ``X``).
      memory_budget: bytes the output plus the tiles in flight may use.
      tile: ``(row_tile, col_tile)`` to force a tiling (default: the largest that fits).

    Returns:
      ``(n, m)`` Gram in the inputs' dtype.

    Raises:
      MemoryError: the ``(n, m)`` output alone exceeds ``memory_budget`` (use
        :func:`kernel_matvec`, random features, or a larger budget).
      ValueError: non-finite inputs, mismatched feature counts.

    Examples:
      >>> import jax.numpy as jnp
      >>> from kcollapse import kernels
      >>> G = kernels.gram(kernels.RBF(gamma=1.0), jnp.array([[0.0, 0.0], [1.0, 0.0]]))
      >>> print(f"{float(G[0, 0]):.4f} {float(G[0, 1]):.4f}")  # exp(-1)
      1.0000 0.3679
    """
    X = _as_inputs("X", X)
    Z = X if Z is None else _as_inputs("Z", Z, X.shape[1])
    if Z.dtype != X.dtype:
        raise TypeError(f"X and Z must share a dtype, got {X.dtype} and {Z.dtype}")
    budget = _checks.check_int("memory_budget", memory_budget, minimum=1)
    n, m, p = X.shape[0], Z.shape[0], X.shape[1]
    itemsize = jnp.dtype(X.dtype).itemsize
    out_bytes = n * m * itemsize
    if out_bytes > budget:
        raise MemoryError(
            f"the {n} x {m} Gram needs {out_bytes / 2**20:.1f} MiB, more than memory_budget={budget / 2**20:.1f} MiB; "
            "raise the budget, use kernel_matvec (K @ V without the Gram) or random features"
        )
    if tile is None:
        rt, ct = tile_shape(kernel, n, m, p, itemsize, budget - out_bytes)
    else:
        rt, ct = (_checks.check_int("tile", t, minimum=1) for t in tile)
    return _gram_tiled(kernel, X, Z, min(rt, n), min(ct, m))


@functools.partial(jax.jit, static_argnames=("rt", "ct"))
def _matvec_tiled(kernel: Kernel, X: jax.Array, Z: jax.Array, V: jax.Array, rt: int, ct: int) -> jax.Array:
    n = X.shape[0]
    Xp = _pad_rows(X, rt).reshape(-1, rt, X.shape[1])
    Zp = _pad_rows(Z, ct).reshape(-1, ct, Z.shape[1])
    Vp = _pad_rows(V, ct).reshape(-1, ct, V.shape[1])  # padded rows of V are 0: no contribution

    def row_tile(Xt):
        def acc(total, ZV):
            Zt, Vt = ZV
            return total + jnp.matmul(kernel.block(Xt, Zt), Vt, precision=_HI), None

        out, _ = jax.lax.scan(acc, jnp.zeros((rt, V.shape[1]), V.dtype), (Zp, Vp))
        return out

    return jax.lax.map(row_tile, Xp).reshape(-1, V.shape[1])[:n]


def kernel_matvec(kernel: Kernel, X: ArrayLike, Z: ArrayLike, V: ArrayLike, *,
                  memory_budget: int = DEFAULT_MEMORY_BUDGET, tile: tuple[int, int] | None = None) -> jax.Array:
    """``K(X, Z) @ V`` computed tile by tile, never holding more than ``memory_budget`` bytes of ``K``.

    Used for predictions ``f(x) = K(x, X_train) alpha`` on large evaluation sets.

    Args:
      kernel: the kernel.
      X: ``(n, p)`` evaluation inputs. Z: ``(m, p)`` training inputs.
      V: ``(m,)`` or ``(m, k)`` coefficients.
      memory_budget: bytes the tiles in flight may use (the ``(n, k)`` output is not counted).
      tile: force ``(row_tile, col_tile)``.

    Returns:
      ``(n,)`` or ``(n, k)``.
    """
    X = _as_inputs("X", X)
    Z = _as_inputs("Z", Z, X.shape[1])
    V = jnp.asarray(V, X.dtype)
    vec = V.ndim == 1
    V = V[:, None] if vec else V
    if V.ndim != 2 or V.shape[0] != Z.shape[0]:
        raise ValueError(f"V must have shape ({Z.shape[0]},) or ({Z.shape[0]}, k) to match Z, got {V.shape}")
    budget = _checks.check_int("memory_budget", memory_budget, minimum=1)
    n, m, p = X.shape[0], Z.shape[0], X.shape[1]
    if tile is None:
        rt, ct = tile_shape(kernel, n, m, p, jnp.dtype(X.dtype).itemsize, budget, extra_per_row=2 * V.shape[1])
    else:
        rt, ct = (_checks.check_int("tile", t, minimum=1) for t in tile)
    out = _matvec_tiled(kernel, X, Z, V, min(rt, n), min(ct, m))
    return out[:, 0] if vec else out
