"""Random-feature approximations ``k(x, z) ≈ phi(x) . phi(z)`` for large sample sizes.

* shift-invariant kernels (:class:`RBF`, :class:`Laplace`): random Fourier features (Rahimi &
  Recht 2007), ``phi(x) = sqrt(2/m) cos(W^T x + b)``, ``b ~ U[0, 2 pi)``, with ``W``'s columns
  drawn from the kernel's spectral density — Gaussian ``N(0, 2 gamma I)`` for the RBF kernel,
  multivariate Cauchy ``gamma g/|u|`` (``g ~ N(0, I)``, ``u ~ N(0, 1)``) for the ``l2`` Laplace
  kernel, independent ``Cauchy(0, gamma)`` coordinates for the ``l1`` one;
* :class:`ArcCosine`: random ReLU (order 1), step (0) or squared-ReLU (2) features,
  ``phi(x) = sqrt(2/m) s(W^T u)`` with ``W ~ N(0, I)``;
* :class:`ReLUNTK`: the finite-width NTK features (gradients of a random two-layer ReLU network),
  ``phi(x) = m^{-1/2} [relu(W^T u), vec(step(W^T u) u^T)]`` with ``u = [sqrt(gamma) x, sqrt(bias)]``,
  of dimension ``m (p + 2)``.

Each estimate is an average of ``m`` iid terms, so ``|phi(x).phi(z) - k(x, z)| = O(1/sqrt(m))``
(the test-suite checks the rate). :class:`RandomFeatures` is itself a kernel (pair function,
``block``), so it can replace the exact kernel anywhere, e.g. in the kernel chain.

References:
  Rahimi & Recht, "Random Features for Large-Scale Kernel Machines", NeurIPS 2007;
  Cho & Saul, NeurIPS 2009 (arc-cosine features); Jacot et al., NeurIPS 2018 (NTK).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from .. import _checks
from ._functions import RBF, ArcCosine, Kernel, Laplace, ReLUNTK

__all__ = ["RandomFeatures", "random_features"]

_HI = jax.lax.Precision.HIGHEST
_KINDS = ("fourier", "arccos0", "arccos1", "arccos2", "ntk")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RandomFeatures(Kernel):
    """An explicit random feature map, usable as a kernel ``k(x, z) = phi(x) . phi(z)``.

    Attributes:
      weights: ``(p', m)`` random projection (``p' = p``, or ``p + 1`` with an NTK bias).
      offsets: ``(m,)`` phases of Fourier features (zeros for the other kinds).
      gamma: input scale (``u = sqrt(gamma) x`` for arc-cosine/NTK features; ``1`` for Fourier,
        whose scale is inside ``weights``).
      bias: ``>= 0`` NTK first-layer bias variance (appended as a constant input ``sqrt(bias)``).
      kind: ``"fourier"``, ``"arccos0"``, ``"arccos1"``, ``"arccos2"`` or ``"ntk"`` (static).
    """

    weights: jax.Array
    offsets: jax.Array
    gamma: ArrayLike = 1.0
    bias: ArrayLike = 0.0
    kind: str = dataclasses.field(default="fourier", metadata=dict(static=True))
    name = "random-features"

    @property
    def n_features(self) -> int:
        """Dimension of ``phi(x)``."""
        m = int(self.weights.shape[1])
        return m * (self.weights.shape[0] + 1) if self.kind == "ntk" else m

    def features(self, X: ArrayLike) -> jax.Array:
        """``phi(X)``: ``(n, p)`` inputs to ``(n, n_features)`` features (``(p,)`` to ``(n_features,)``)."""
        X = jnp.asarray(X)
        single = X.ndim == 1
        X = X[None] if single else X
        W = self.weights.astype(X.dtype)
        m = W.shape[1]
        if self.kind == "fourier":
            phi = math.sqrt(2.0 / m) * jnp.cos(jnp.matmul(X, W, precision=_HI) + self.offsets.astype(X.dtype))
        else:
            U = jnp.sqrt(jnp.asarray(self.gamma, X.dtype)) * X
            if self.kind == "ntk":
                U = jnp.concatenate([U, jnp.broadcast_to(jnp.sqrt(jnp.asarray(self.bias, X.dtype)), (U.shape[0], 1))], 1)
            pre = jnp.matmul(U, W, precision=_HI)
            step = (pre > 0).astype(X.dtype)
            if self.kind == "ntk":
                grad_w = (step[:, :, None] * U[:, None, :]).reshape(U.shape[0], -1)
                phi = jnp.concatenate([jnp.maximum(pre, 0.0), grad_w], axis=1) / math.sqrt(m)
            else:
                order = int(self.kind[-1])
                phi = math.sqrt(2.0 / m) * step * jnp.maximum(pre, 0.0) ** order
        return phi[0] if single else phi

    def __call__(self, x, z):
        return jnp.dot(self.features(x), self.features(z), precision=_HI)

    def block(self, X, Z):
        return jnp.matmul(self.features(X), self.features(Z).T, precision=_HI)

    def work_per_entry(self, n_features):
        return 2

    def params(self):
        return {"kernel": "random-features", "kind": self.kind, "n_features": self.n_features}


def random_features(key: jax.Array, kernel: Kernel, n_features: int, n_inputs: int, *,
                    dtype: DTypeLike | None = None) -> RandomFeatures:
    """Draw a random feature map approximating ``kernel`` on ``n_inputs``-dimensional inputs.

    Args:
      key: a JAX PRNG key.
      kernel: :class:`RBF`, :class:`Laplace`, :class:`ArcCosine` or :class:`ReLUNTK`.
      n_features: ``m``, the number of random directions (the NTK map has ``m (p + 2)`` features).
      n_inputs: ``p``, the input dimension.
      dtype: dtype of the weights (default: JAX's default float).

    Returns:
      :class:`RandomFeatures`.

    Raises:
      ValueError: a kernel without a random-feature expansion here (linear and polynomial kernels:
        the linear kernel's features are the inputs themselves).

    Examples:
      >>> import jax, jax.numpy as jnp, kcollapse as kc
      >>> k = kc.kernels.RBF(gamma=0.5)
      >>> rf = kc.kernels.random_features(jax.random.key(0), k, 20000, 3)
      >>> x, z = jnp.array([0.1, 0.2, 0.3]), jnp.array([0.3, 0.1, -0.2])
      >>> bool(abs(rf(x, z) - k(x, z)) < 0.03)
      True
    """
    m = _checks.check_int("n_features", n_features, minimum=1)
    p = _checks.check_int("n_inputs", n_inputs, minimum=1)
    dt = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    k_w, k_b, k_u = jax.random.split(key, 3)
    zeros = jnp.zeros((m,), dt)
    if isinstance(kernel, RBF):
        gamma = jnp.asarray(kernel.gamma, dt)
        W = jnp.sqrt(2.0 * gamma) * jax.random.normal(k_w, (p, m), dt)
    elif isinstance(kernel, Laplace):
        gamma = jnp.asarray(kernel.gamma, dt)
        if kernel.metric == "l1":
            W = gamma * jax.random.cauchy(k_w, (p, m), dt)
        else:  # multivariate Cauchy: characteristic function exp(-gamma ||delta||_2)
            W = gamma * jax.random.normal(k_w, (p, m), dt) / jnp.abs(jax.random.normal(k_u, (1, m), dt))
    elif isinstance(kernel, ArcCosine):
        W = jax.random.normal(k_w, (p, m), dt)
        return RandomFeatures(W, zeros, kernel.gamma, 0.0, f"arccos{kernel.order}")
    elif isinstance(kernel, ReLUNTK):
        W = jax.random.normal(k_w, (p + 1, m), dt)
        return RandomFeatures(W, zeros, kernel.gamma, kernel.bias, "ntk")
    else:
        raise ValueError(
            f"no random-feature expansion for {type(kernel).__name__}; supported: RBF, Laplace (random Fourier "
            "features), ArcCosine (random ReLU/step features) and ReLUNTK (finite-width NTK features)"
        )
    b = jax.random.uniform(k_b, (m,), dt, 0.0, 2.0 * math.pi)
    return RandomFeatures(W, b, 1.0, 0.0, "fourier")
