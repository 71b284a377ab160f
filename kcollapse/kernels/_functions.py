"""Kernel functions: linear, RBF, Laplace, polynomial, arc-cosine and the two-layer ReLU NTK.

Every kernel is a frozen pytree dataclass: continuous parameters (``gamma``, ``coef0``, ...) are
array leaves, so one compiled function serves any value (and can be ``vmap``-ed over them);
discrete choices (polynomial degree, arc-cosine order, Laplace metric) are static fields.

Each kernel offers two views of the same function:

* ``kernel(x, z)`` — the kernel on **one pair** of inputs ``x, z`` of shape ``(p,)``, a pure
  function written directly from its definition (the reference, usable under ``vmap``/``grad``);
* ``kernel.block(X, Z)`` — the ``(n, m)`` block ``[k(x_i, z_j)]``, written with matrix products
  (norms and inner products) for speed; :func:`kcollapse.kernels.gram` tiles it under a memory
  budget. The test-suite checks ``block == vmap(vmap(pair))``.

Matrix products run at ``Precision.HIGHEST`` so float32 on GPUs/TPUs does not drop to TF32/bf16.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["KERNELS", "ArcCosine", "Kernel", "Laplace", "Linear", "Polynomial", "RBF", "ReLUNTK", "Scaled", "make_kernel",
           "normalized"]

_HI = jax.lax.Precision.HIGHEST


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HI)


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


def _p(value: ArrayLike, like: jax.Array) -> jax.Array:
    """A kernel parameter in the dtype of the data it multiplies (strict dtype promotion)."""
    return jnp.asarray(value, like.dtype)


def _safe_sqrt(sq: jax.Array) -> jax.Array:
    """``sqrt`` with a finite gradient at 0."""
    return jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)


def _sq_dists(X: jax.Array, Z: jax.Array) -> jax.Array:
    """``||x_i - z_j||^2`` via ``|x|^2 + |z|^2 - 2 x.z``, clipped at 0 (round-off)."""
    xx = jnp.sum(X * X, axis=-1)
    zz = jnp.sum(Z * Z, axis=-1)
    return jnp.maximum(xx[:, None] + zz[None, :] - 2.0 * _mm(X, Z.T), 0.0)


class Kernel:
    """Base class: ``__call__(x, z)`` on one pair, ``block(X, Z)`` on two sets of rows.

    Subclasses are frozen pytree dataclasses. ``work_per_entry(p)`` is the number of array
    elements one block entry needs while it is computed (used to size tiles under a memory
    budget); ``name`` is the CLI name.
    """

    name = "kernel"

    def __call__(self, x: ArrayLike, z: ArrayLike) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def block(self, X: ArrayLike, Z: ArrayLike) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def work_per_entry(self, n_features: int) -> int:
        return 4

    def validate(self) -> Kernel:
        """Check the parameters on concrete values (``ValueError`` naming the parameter); returns ``self``."""
        return self

    def params(self) -> dict[str, Any]:
        """Plain-Python parameters for output metadata."""
        out: dict[str, Any] = {"kernel": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v if isinstance(v, (str, int)) else float(v)
        return out


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Linear(Kernel):
    """``k(x, z) = scale * x . z`` (the primal ridge model in dual form).

    Attributes:
      scale: ``> 0`` multiplier.
    """

    scale: ArrayLike = 1.0
    name = "linear"

    def __call__(self, x, z):
        x, z = jnp.asarray(x), jnp.asarray(z)
        return _p(self.scale, x) * jnp.dot(x, z, precision=_HI)

    def block(self, X, Z):
        X = jnp.asarray(X)
        return _p(self.scale, X) * _mm(X, jnp.asarray(Z).T)

    def work_per_entry(self, n_features):
        return 2

    def validate(self):
        _checks.check_positive_float("scale", self.scale)
        return self


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RBF(Kernel):
    """Gaussian / RBF kernel ``k(x, z) = exp(-gamma ||x - z||^2)`` (scikit-learn's ``rbf`` convention).

    A length-scale ``l`` corresponds to ``gamma = 1/(2 l^2)``.

    Attributes:
      gamma: ``> 0`` inverse squared length-scale.
    """

    gamma: ArrayLike = 1.0
    name = "rbf"

    def __call__(self, x, z):
        diff = jnp.asarray(x) - jnp.asarray(z)
        return jnp.exp(-_p(self.gamma, diff) * jnp.dot(diff, diff, precision=_HI))

    def block(self, X, Z):
        X = jnp.asarray(X)
        return jnp.exp(-_p(self.gamma, X) * _sq_dists(X, jnp.asarray(Z)))

    def validate(self):
        _checks.check_positive_float("gamma", self.gamma)
        return self


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Laplace(Kernel):
    """Laplace (exponential) kernel ``k(x, z) = exp(-gamma ||x - z||)``.

    ``metric="l2"`` (default) uses the Euclidean norm (the Matérn-1/2 kernel, positive definite in
    every dimension); ``metric="l1"`` uses ``||x - z||_1``, scikit-learn's ``laplacian_kernel``.
    The ``l1`` block needs ``p`` elements per entry (pairwise absolute differences).

    Attributes:
      gamma: ``> 0`` inverse length-scale.
      metric: ``"l2"`` or ``"l1"`` (static).
    """

    gamma: ArrayLike = 1.0
    metric: str = _static("l2")
    name = "laplace"

    def __call__(self, x, z):
        diff = jnp.asarray(x) - jnp.asarray(z)
        if self.metric == "l1":
            dist = jnp.sum(jnp.abs(diff))
        else:
            dist = _safe_sqrt(jnp.dot(diff, diff, precision=_HI))
        return jnp.exp(-_p(self.gamma, dist) * dist)

    def block(self, X, Z):
        X, Z = jnp.asarray(X), jnp.asarray(Z)
        if self.metric == "l1":
            dist = jnp.sum(jnp.abs(X[:, None, :] - Z[None, :, :]), axis=-1)
        else:
            dist = _safe_sqrt(_sq_dists(X, Z))
        return jnp.exp(-_p(self.gamma, dist) * dist)

    def work_per_entry(self, n_features):
        return n_features + 3 if self.metric == "l1" else 5

    def validate(self):
        _checks.check_positive_float("gamma", self.gamma)
        _checks.check_choice("metric", self.metric, ("l2", "l1"))
        return self


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Polynomial(Kernel):
    """Polynomial kernel ``k(x, z) = (gamma x . z + coef0)^degree`` (scikit-learn's convention).

    Attributes:
      degree: integer ``>= 1`` (static).
      gamma: ``> 0`` scale of the inner product.
      coef0: ``>= 0`` offset (``coef0 >= 0`` keeps the kernel positive semi-definite).
    """

    degree: int = _static(3)
    gamma: ArrayLike = 1.0
    coef0: ArrayLike = 1.0
    name = "poly"

    def __call__(self, x, z):
        x = jnp.asarray(x)
        return (_p(self.gamma, x) * jnp.dot(x, jnp.asarray(z), precision=_HI) + _p(self.coef0, x)) ** self.degree

    def block(self, X, Z):
        X = jnp.asarray(X)
        return (_p(self.gamma, X) * _mm(X, jnp.asarray(Z).T) + _p(self.coef0, X)) ** self.degree

    def validate(self):
        _checks.check_int("degree", self.degree, minimum=1)
        _checks.check_positive_float("gamma", self.gamma)
        _checks.check_nonneg_float("coef0", self.coef0)
        return self


def _angular(xx: jax.Array, zz: jax.Array, xz: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(|x||z|, cos theta, theta)`` from squared norms and the inner product.

    A zero input has no direction: its angle to anything is taken as ``pi/2`` (``cos = 0``).
    """
    nn = jnp.sqrt(xx * zz)
    ok = nn > 0
    cos = jnp.clip(jnp.where(ok, xz / jnp.where(ok, nn, 1.0), 0.0), -1.0, 1.0)
    return nn, cos, jnp.arccos(cos)


def _arccos_J(order: int, cos: jax.Array, theta: jax.Array) -> jax.Array:
    """Cho & Saul's angular function ``J_n(theta)`` for ``n = 0, 1, 2``."""
    sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0))
    if order == 0:
        return math.pi - theta
    if order == 1:
        return sin + (math.pi - theta) * cos
    return 3.0 * sin * cos + (math.pi - theta) * (1.0 + 2.0 * cos * cos)


class _InnerProductKernel(Kernel):
    """A kernel that is a function ``_value(|x|^2, |z|^2, x.z)`` of the squared norms and the inner product."""

    def _value(self, xx, zz, xz):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x, z):
        x, z = jnp.asarray(x), jnp.asarray(z)
        return self._value(jnp.dot(x, x, precision=_HI), jnp.dot(z, z, precision=_HI), jnp.dot(x, z, precision=_HI))

    def block(self, X, Z):
        X, Z = jnp.asarray(X), jnp.asarray(Z)
        return self._value(jnp.sum(X * X, -1)[:, None], jnp.sum(Z * Z, -1)[None, :], _mm(X, Z.T))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ArcCosine(_InnerProductKernel):
    """Arc-cosine kernel of order ``n`` (Cho & Saul 2009), on inputs scaled by ``sqrt(gamma)``::

        k_n(x, z) = (1/pi) |u|^n |v|^n J_n(theta),   u = sqrt(gamma) x, v = sqrt(gamma) z,
        J_0 = pi - theta,  J_1 = sin theta + (pi - theta) cos theta,
        J_2 = 3 sin theta cos theta + (pi - theta)(1 + 2 cos^2 theta),

    with ``theta`` the angle between ``x`` and ``z``. It equals ``2 E_w[s(w.u) s(w.v)]`` for
    ``w ~ N(0, I)`` and ``s(t) = step(t) t^n`` (``n = 1``: an infinitely wide ReLU layer).

    Attributes:
      order: ``0`` (step), ``1`` (ReLU) or ``2`` (squared ReLU) (static).
      gamma: ``> 0`` input scale.

    References:
      Cho & Saul, "Kernel Methods for Deep Learning", NeurIPS 2009, eqs. (1)-(6).
    """

    order: int = _static(1)
    gamma: ArrayLike = 1.0
    name = "arccos"

    def _value(self, xx, zz, xz):
        g = _p(self.gamma, xz)
        nn, cos, theta = _angular(g * xx, g * zz, g * xz)
        return nn**self.order * _arccos_J(self.order, cos, theta) / math.pi

    def work_per_entry(self, n_features):
        return 8

    def validate(self):
        _checks.check_choice("order", self.order, (0, 1, 2))
        _checks.check_positive_float("gamma", self.gamma)
        return self


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ReLUNTK(_InnerProductKernel):
    """Neural tangent kernel of a two-layer ReLU network (both layers trained), closed form::

        Theta(x, z) = ( |u||v| J_1(theta) + (u . v)(pi - theta) ) / (2 pi),

    with ``u = sqrt(gamma) [x, sqrt(bias)]`` (likewise ``v``) and ``theta`` the angle between
    ``u`` and ``v``. This is the infinite-width limit of ``f(x) = m^{-1/2} sum_j a_j relu(w_j . u)``
    with ``a_j ~ N(0, 1)``, ``w_j ~ N(0, I)``: ``E[relu(w.u) relu(w.v)] = |u||v| J_1/(2 pi)`` (second
    layer) plus ``u.v E[step(w.u) step(w.v)] = u.v (pi - theta)/(2 pi)`` (first layer).

    Attributes:
      gamma: ``> 0`` input scale.
      bias: ``>= 0`` variance of a first-layer bias (``0``: no bias).

    References:
      Jacot, Gabriel, Hongler, "Neural Tangent Kernel", NeurIPS 2018; Cho & Saul 2009 (``J_1``);
      Arora et al., "On Exact Computation with an Infinitely Wide Neural Net", NeurIPS 2019, §3.
    """

    gamma: ArrayLike = 1.0
    bias: ArrayLike = 0.0
    name = "ntk"

    def _value(self, xx, zz, xz):
        g, b = _p(self.gamma, xz), _p(self.bias, xz)
        uu, vv, uv = g * xx + b, g * zz + b, g * xz + b
        nn, cos, theta = _angular(uu, vv, uv)
        return (nn * _arccos_J(1, cos, theta) + uv * (math.pi - theta)) / (2.0 * math.pi)

    def work_per_entry(self, n_features):
        return 9

    def validate(self):
        _checks.check_positive_float("gamma", self.gamma)
        _checks.check_nonneg_float("bias", self.bias)
        return self


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Scaled(Kernel):
    """``scale * base(x, z)``: e.g. a kernel normalised to unit mean diagonal (:func:`normalized`).

    Multiplying a kernel by ``s`` multiplies every eigenvalue of its operator by ``s``; with the
    ridge convention ``(K + ridge T I)`` the same estimator then needs ``ridge * s``. Normalising
    kernels to ``E k(x, x) = 1`` (the RBF and Laplace kernels already are) makes an adaptive ridge
    ``T^{-ell}`` mean the same thing for every kernel.

    Attributes:
      base: the kernel being scaled.
      scale: ``> 0`` factor.
    """

    base: Kernel
    scale: ArrayLike = 1.0
    name = "scaled"

    def __call__(self, x, z):
        v = self.base(x, z)
        return _p(self.scale, v) * v

    def block(self, X, Z):
        v = self.base.block(X, Z)
        return _p(self.scale, v) * v

    def work_per_entry(self, n_features):
        return self.base.work_per_entry(n_features) + 1

    def validate(self):
        self.base.validate()
        _checks.check_positive_float("scale", self.scale)
        return self

    def params(self):
        return {**self.base.params(), "scale": float(self.scale)}


def normalized(kernel: Kernel, X: ArrayLike) -> Scaled:
    """``kernel / mean_j k(x_j, x_j)``: unit mean diagonal on the inputs ``X`` (trace-1 operator).

    Raises:
      ValueError: a kernel whose diagonal vanishes on ``X``.
    """
    X = jnp.asarray(_checks.check_finite_array("X", X, ndim=2))
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.result_type(float))
    diag = float(jnp.mean(jax.vmap(lambda x: kernel(x, x))(X)))
    if not diag > 0:
        raise ValueError(f"the kernel's mean diagonal on X is {diag:g}; it cannot be normalised")
    return Scaled(kernel, 1.0 / diag)


#: CLI name -> kernel class.
KERNELS: dict[str, type] = {
    "linear": Linear,
    "rbf": RBF,
    "laplace": Laplace,
    "poly": Polynomial,
    "arccos": ArcCosine,
    "ntk": ReLUNTK,
}


def make_kernel(name: str, **params: Any) -> Kernel:
    """A validated kernel by name (``linear``, ``rbf``, ``laplace``, ``poly``, ``arccos``, ``ntk``).

    Floating parameters are stored as Python floats (JAX gives them the compute dtype).

    Raises:
      ValueError: unknown name, unknown parameter for that kernel, or an invalid value.

    Examples:
      >>> from kcollapse import kernels
      >>> k = kernels.make_kernel("rbf", gamma=0.5)
      >>> round(float(k([0.0, 0.0], [1.0, 1.0])), 6)  # exp(-0.5 * 2)
      0.367879
    """
    _checks.check_choice("kernel", name, tuple(KERNELS))
    cls = KERNELS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ValueError(f"kernel {name!r} has no parameter(s) {unknown}; its parameters are {sorted(fields)}")
    clean = {}
    for k, v in params.items():
        if isinstance(v, str) or k in ("degree", "order"):
            clean[k] = v
        else:
            clean[k] = float(v)
    return cls(**clean).validate()
