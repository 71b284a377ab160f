"""Score models on the VP/OU forward process: the exact linear fit and a one-hidden-layer network.

Forward process ``x_t = a_t x_0 + s_t eps``, ``a_t = exp(-t)``, ``s_t^2 = 1 - exp(-2t)`` (the OU process
``dx = -x dt + sqrt(2) dW``; stationary law ``N(0, I)``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["MLPParams", "dsm_loss", "forward_coefficients", "linear_score_fit", "mlp_init", "mlp_noise_prediction",
           "mlp_score", "time_features", "train_mlp"]


def forward_coefficients(t: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(a_t, s_t) = (exp(-t), sqrt(1 - exp(-2t)))`` (``-expm1`` keeps ``s_t`` accurate at small ``t``)."""
    t = jnp.asarray(t)
    return jnp.exp(-t), jnp.sqrt(-jnp.expm1(-2 * t))


def linear_score_fit(x: ArrayLike, t: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Exact minimiser ``(A_t, b_t)`` of the denoising-score-matching loss over scores ``A x + b``.

    ``L_t(A, b) = (1/n) sum_k ||a_t A x_k + b||^2 + ||s_t A + I/s_t||_F^2`` (the DSM loss
    ``(1/n) sum_k E_eps ||A x_t + b + eps/s_t||^2`` with the Gaussian expectation done exactly) is
    minimised by ``A_t = -(a_t^2 S + s_t^2 I)^{-1}``, ``b_t = -a_t A_t m``: the score of the diffused
    empirical Gaussian ``N(a_t m, a_t^2 S + s_t^2 I)`` (``m``, ``S``: mean and covariance with divisor ``n``).

    Args:
      x: ``(n, d)`` training set. t: scalar time ``> 0``.

    Returns:
      ``A`` ``(d, d)`` and ``b`` ``(d,)``. Solved by Cholesky (``a^2 S + s^2 I`` is positive definite for ``t > 0``).

    References:
      Vincent (2011) for DSM; the closed form is kcollapse's derivation (docs/notes/diffusion.md §2).
    """
    x = jnp.asarray(x)
    n, d = x.shape
    a, s = forward_coefficients(jnp.asarray(t, x.dtype))
    m = x.mean(axis=0)
    xc = x - m
    S = xc.T @ xc / n
    C = a**2 * S + s**2 * jnp.eye(d, dtype=x.dtype)
    L = jnp.linalg.cholesky(C)
    A = -jax.scipy.linalg.cho_solve((L, True), jnp.eye(d, dtype=x.dtype))
    return A, -a * (A @ m)


class MLPParams(NamedTuple):
    """One hidden layer: ``eps_hat = W2 act(W1 x + U1 phi(t) + b1) + b2``; shapes ``(W, d)``, ``(W, 3)``, ``(W,)``, ``(d, W)``, ``(d,)``."""

    W1: jax.Array
    U1: jax.Array
    b1: jax.Array
    W2: jax.Array
    b2: jax.Array


def time_features(t: ArrayLike) -> jax.Array:
    """``phi(t) = (a_t, s_t, log(t)/4)`` (``(..., 3)``)."""
    t = jnp.asarray(t)
    a, s = forward_coefficients(t)
    return jnp.stack([a, s, jnp.log(t) / 4], axis=-1)


def mlp_init(key: jax.Array, dim: int, width: int, dtype=None) -> MLPParams:
    """LeCun-normal first layer, zero-initialised output (the untrained network predicts ``eps_hat = 0``)."""
    dtype = dtype or jnp.result_type(float)
    k1, k2, k3 = jax.random.split(key, 3)
    fan = dim + 3
    return MLPParams(W1=jax.random.normal(k1, (width, dim), dtype) / jnp.sqrt(fan),
                     U1=jax.random.normal(k2, (width, 3), dtype) / jnp.sqrt(fan),
                     b1=0.1 * jax.random.normal(k3, (width,), dtype),
                     W2=jnp.zeros((dim, width), dtype), b2=jnp.zeros((dim,), dtype))


def mlp_noise_prediction(params: MLPParams, x: ArrayLike, t: ArrayLike) -> jax.Array:
    """``eps_hat(x, t) = s_t x + W2 silu(W1 x + U1 phi(t) + b1) + b2`` for ``x`` ``(..., d)``.

    The fixed skip ``s_t x`` is the noise prediction of the stationary law ``N(0, I)`` (exact as
    ``t -> inf``); the learned part is one hidden layer. Without it the reverse SDE amplifies the
    network's error at large ``t`` (factor ``e^h`` per step) and a few chains per hundred escaped to
    ``|x| ~ 1e3`` (measured: docs/notes/diffusion.md §4).
    """
    x = jnp.asarray(x)
    tt = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:-1])
    phi = time_features(tt)
    h = jax.nn.silu(x @ params.W1.T + phi @ params.U1.T + params.b1)
    _, s = forward_coefficients(tt)
    return s[..., None] * x + h @ params.W2.T + params.b2


def mlp_score(params: MLPParams, x: ArrayLike, t: ArrayLike) -> jax.Array:
    """``s_theta(x, t) = -eps_hat(x, t)/s_t`` (noise-prediction parameterisation of the score)."""
    _, s = forward_coefficients(jnp.asarray(t, jnp.asarray(x).dtype))
    return -mlp_noise_prediction(params, x, t) / jnp.asarray(s)[..., None]


def dsm_loss(params: MLPParams, key: jax.Array, x0: ArrayLike, t_min: ArrayLike, t_max: ArrayLike) -> jax.Array:
    """Denoising score matching with weight ``s_t^2``: ``mean_k ||eps_hat(a_t x_k + s_t eps_k, t_k) - eps_k||^2``.

    One ``(t_k, eps_k)`` per training point, ``t_k`` log-uniform on ``[t_min, t_max]``. Equals
    ``s_t^2 ||s_theta + eps/s_t||^2``, the DSM loss of Vincent (2011) weighted by ``s_t^2``.
    """
    x0 = jnp.asarray(x0)
    kt, ke = jax.random.split(key)
    dt = x0.dtype
    lo, hi = jnp.log(jnp.asarray(t_min, dt)), jnp.log(jnp.asarray(t_max, dt))
    t = jnp.exp(lo + (hi - lo) * jax.random.uniform(kt, x0.shape[:1], dt))
    eps = jax.random.normal(ke, x0.shape, dt)
    a, s = forward_coefficients(t)
    xt = a[:, None] * x0 + s[:, None] * eps
    return jnp.mean(jnp.sum((mlp_noise_prediction(params, xt, t) - eps) ** 2, axis=-1))


def train_mlp(key: jax.Array, params: MLPParams, x0: ArrayLike, *, steps: int, learning_rate: ArrayLike,
              t_min: ArrayLike, t_max: ArrayLike) -> tuple[MLPParams, jax.Array]:
    """``steps`` full-batch Adam steps on :func:`dsm_loss` (fresh ``(t, eps)`` per step, key ``fold_in(key, step)``).

    Returns the trained parameters and the ``(steps,)`` loss curve.
    """
    import optax  # here, not at module level: only the network model needs it (~0.15 s of `import kcollapse`)

    opt = optax.adam(learning_rate)
    with jax.numpy_dtype_promotion("standard"):
        state = opt.init(params)

    def body(carry, i):
        p, st = carry
        loss, g = jax.value_and_grad(dsm_loss)(p, jax.random.fold_in(key, i), x0, t_min, t_max)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 step count with floats
            upd, st = opt.update(g, st, p)
        return (optax.apply_updates(p, upd), st), loss

    (params, _), losses = jax.lax.scan(body, (params, state), jnp.arange(steps))
    return params, losses
