"""Exact moments of the linear-score anchor: the self-consuming diffusion model IS a Gaussian MLE refit chain.

Derivation (kcollapse, [DERIVED]; docs/notes/diffusion.md §2). For a score linear in ``x`` at each time
``t``, ``s(x, t) = A_t x + b_t``, the denoising-score-matching loss on a training set ``{x_k}`` with the
expectation over the noise taken exactly,

    L_t(A, b) = (1/n) sum_k E_eps ||A (a_t x_k + s_t eps) + b + eps/s_t||^2
              = (1/n) sum_k ||a_t A x_k + b||^2 + ||s_t A + I/s_t||_F^2,

is minimised by ``A_t = -(a_t^2 S + s_t^2 I)^{-1}``, ``b_t = -a_t A_t m`` (``m``, ``S``: empirical mean and
covariance, divisor ``n``): the score of ``N(a_t m, a_t^2 S + s_t^2 I)``, the diffused empirical Gaussian.
Its exact reverse process returns ``N(m, S)``: the chain is the Gaussian MLE refit chain.

Moments with ``n_r`` fresh real and ``n_s = n - n_r`` synthetic points per generation (``e_g = E||m_g||^2``,
``v_g = E tr S_g``, truth ``N(0, sigma^2 I_d)``):

    e_0 = d sigma^2/n,   v_0 = d sigma^2 (1 - 1/n),
    e' = (n_s/n)^2 e + (n_r d sigma^2 + n_s v)/n^2,
    v' = (n_r d sigma^2 + n_s (e + v))/n - e'.

They need only the first two moments of the sampled law, so they hold for any model whose samples
have the training set's mean and covariance (the linear score, or a perfectly memorising score: the
bootstrap). Consequences: ``e + v = d sigma^2`` at every generation (the MLE conserves the marginal
second moment), so ``e' = rho e + d sigma^2/n`` with ``rho = n_s (n_s - 1)/n^2``; fully synthetic:
``e_g = d sigma^2 (1 - (1 - 1/n)^(g+1))``, ``v_g = d sigma^2 (1 - 1/n)^(g+1)`` (= kcollapse.gaussian's
replace/MLE chain at refit ``g + 1``); real fraction: geometric approach, ratio ``rho``, to
``e_inf = d sigma^2 n/(n^2 - n_s^2 + n_s)`` (= Bertrand et al.'s fresh fixed point,
:func:`kcollapse.gaussian.mixing_fixed_point`).

The reported per-generation quantities are the Gaussian fit of the ``n`` generated samples ``Y_g``:
``E||mean(Y_g)||^2 = e_g + v_g/n`` and ``E tr cov(Y_g) = v_g (1 - 1/n)`` (divisor ``n``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._config import DiffusionConfig
from ._sampler import euler_output_law

__all__ = ["anchor_moments", "diffusion_theory", "sampler_affine_law"]


@jax.jit
def _moments(n, n_real, dim_sigma_sq, kappa, gamma, delta_d, steps_template):
    n = jnp.asarray(n, steps_template.dtype)
    nr = jnp.asarray(n_real, steps_template.dtype)
    ds2 = jnp.asarray(dim_sigma_sq, steps_template.dtype)
    ns = n - nr
    e0, v0 = ds2 / n, ds2 * (1 - 1 / n)

    def body(c, _):
        e, v = c
        vs = gamma * v + delta_d  # E tr of the sampled law's covariance
        e1 = (ns / n) ** 2 * kappa**2 * e + (nr * ds2 + ns * vs) / n**2
        v1 = (nr * ds2 + ns * (kappa**2 * e + vs)) / n - e1
        return (e1, v1), (e1, v1)

    _, (es, vs) = jax.lax.scan(body, (e0, v0), steps_template)
    return jnp.concatenate([e0[None], es]), jnp.concatenate([v0[None], vs])


def anchor_moments(samples: ArrayLike, n_real: ArrayLike, n_generations: int, *, dim: int = 1,
                   sigma: ArrayLike = 1.0, sampler_law: tuple[ArrayLike, ArrayLike, ArrayLike] = (1.0, 1.0, 0.0),
                   ) -> tuple[jax.Array, jax.Array]:
    """``(E||m_g||^2, E tr S_g)`` for ``g = 0..G``: the model's (training set's) mean error and trace covariance.

    Args:
      samples: ``n`` (points per training set). n_real: ``n_r`` fresh real points per generation ``>= 1``
        (generation 0 is all real). n_generations: ``G`` (static). dim: ``d``. sigma: truth scale.
      sampler_law: ``(kappa, gamma, delta)``: the sampler draws from ``N(kappa m, gamma S + delta I)`` instead
        of ``N(m, S)`` (exact sampler ``(1, 1, 0)``; the Euler sampler's values come from
        :func:`sampler_affine_law`). Then ``e' = (n_s/n)^2 kappa^2 e + (n_r d sigma^2 + n_s w)/n^2`` and
        ``v' = (n_r d sigma^2 + n_s (kappa^2 e + w))/n - e'`` with ``w = gamma v + d delta``.

    Returns:
      Two ``(G + 1,)`` arrays (recursion in the module docstring; exact at finite ``n``, ``d``, ``g``).

    References:
      Setting: Fu, Zhang, Wang, Tian, Tao, ICML 2024, arXiv:2402.11778 (mixture p_i = sum_j beta_j p_theta_j +
      alpha p0). The exact recursion is kcollapse's derivation (docs/notes/diffusion.md).
    """
    dt = jnp.result_type(float)
    template = jnp.zeros((int(n_generations),), dt)
    kappa, gamma, delta = (jnp.asarray(x, dt) for x in sampler_law)
    return _moments(samples, n_real, dim * jnp.asarray(sigma, dt) ** 2, kappa, gamma, dim * delta, template)


def sampler_affine_law(config: DiffusionConfig) -> tuple[float, float, float]:
    """``(kappa, gamma, delta)``: the chord of the Euler sampler's exact law ``N(kappa m, V(lam))`` with the linear score.

    ``V(lam) ~ gamma lam + delta`` through ``lam = 0`` and ``lam = sigma^2`` (:func:`euler_output_law`;
    ``V`` is nearly affine: at 200 steps ``V(lam)/lam - 1`` varies by < 2e-3 over ``lam in [0.1, 4]``);
    ``kappa`` at ``lam = sigma^2``. The exact sampler gives ``(1, 1, 0)``.
    """
    if config.sampler == "exact":
        return 1.0, 1.0, 0.0
    s2 = float(config.sigma) ** 2
    kappa, V = euler_output_law(jnp.asarray([0.0, s2]), config.t_min, config.t_max, config.sample_steps)
    return float(kappa[1]), float((V[1] - V[0]) / s2), float(V[0])


def diffusion_theory(config: DiffusionConfig, *, sampler_bias: bool = False) -> dict[str, np.ndarray]:
    """Exact anchor moments at generations ``0..G`` (valid for ``score='linear'`` with the exact sampler).

    ``sampler_bias=True`` includes the Euler sampler's exact (affine-chord) law, :func:`sampler_affine_law`.

    Returns a dict of ``(G + 1,)`` NumPy arrays: ``mean_sq_error`` ``E||mean(Y_g)||^2``, ``trace_cov``
    ``E tr cov(Y_g)`` (the Gaussian fit of the ``n`` generated samples), ``model_mean_sq_error``
    ``E||m_g||^2``, ``model_trace_cov`` ``E tr S_g``, ``contraction`` ``rho``, ``fixed_point``
    ``lim E||m_g||^2`` (``d sigma^2`` when fully synthetic). For ``score='mlp'`` these are the anchor the
    network is compared with: the deviation measures the network's error in the first two moments.
    """
    config = config.validate()
    n, nr, d = config.samples, config.n_real, config.dim
    sigma = float(config.sigma)
    law = sampler_affine_law(config) if sampler_bias else (1.0, 1.0, 0.0)
    kappa, gamma, delta = law
    e, v = (np.asarray(a) for a in anchor_moments(n, nr, config.n_generations, dim=d, sigma=sigma, sampler_law=law))
    ns = n - nr
    rho = ns * (ns - 1) / n**2
    fp = d * sigma**2 * n / (n**2 - ns**2 + ns)
    G1 = config.n_generations + 1
    w = gamma * v + d * delta
    return {"mean_sq_error": kappa**2 * e + w / n, "trace_cov": w * (1 - 1 / n), "model_mean_sq_error": e,
            "model_trace_cov": v, "contraction": np.full(G1, rho), "fixed_point": np.full(G1, fp)}
