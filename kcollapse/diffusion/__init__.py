"""Self-consuming diffusion models (Fu et al., ICML 2024, arXiv:2402.11778; shared/THEORY.md §7) with an exact anchor.

* Setting: truth ``p0 = N(0, sigma^2 I_d)``; generation ``i`` fits a score model by denoising score
  matching on ``n_r`` fresh real points and ``n - n_r`` points from generation ``i - 1`` and samples by
  the reverse SDE of the VP/OU process (:class:`DiffusionConfig`, :func:`simulate_diffusion`).
* Anchor ([DERIVED], docs/notes/diffusion.md): with a score linear in ``x`` per time, the DSM optimum is
  the score of the diffused empirical Gaussian (:func:`linear_score_fit`), its exact reverse process
  returns ``N(m, S)``, so the chain is the Gaussian MLE refit chain with exact moments
  (:func:`diffusion_theory`, :func:`anchor_moments`); the Euler sampler's bias is exact for it
  (:func:`euler_output_law`, :func:`sampler_affine_law`).
* Fu et al.'s model: a one-hidden-layer score network (:func:`mlp_init`, :func:`mlp_score`,
  :func:`train_mlp`, optax Adam); :func:`compare_diffusion` puts it (or the anchor) next to the exact moments.

Example:
  >>> import jax
  >>> from kcollapse import diffusion as kd
  >>> cfg = kd.DiffusionConfig(dim=1, samples=64, n_generations=5, score="linear", sampler="exact")
  >>> sim = kd.simulate_diffusion(jax.random.key(0), cfg, n_chains=256)
  >>> rows, summary = kd.compare_diffusion(kd.diffusion_theory(cfg), sim)
"""

from ._compare import compare_diffusion as compare_diffusion
from ._config import SAMPLERS as SAMPLERS
from ._config import SCORES as SCORES
from ._config import DiffusionConfig as DiffusionConfig
from ._config import real_count as real_count
from ._metrics import gaussian_fit_metrics as gaussian_fit_metrics
from ._metrics import gaussian_tv_1d as gaussian_tv_1d
from ._metrics import gaussian_w2_sq as gaussian_w2_sq
from ._sampler import euler_output_law as euler_output_law
from ._sampler import reverse_sample as reverse_sample
from ._sampler import time_grid as time_grid
from ._score import MLPParams as MLPParams
from ._score import dsm_loss as dsm_loss
from ._score import forward_coefficients as forward_coefficients
from ._score import linear_score_fit as linear_score_fit
from ._score import mlp_init as mlp_init
from ._score import mlp_noise_prediction as mlp_noise_prediction
from ._score import mlp_score as mlp_score
from ._score import train_mlp as train_mlp
from ._simulate import DiffusionSimulation as DiffusionSimulation
from ._simulate import chain as chain
from ._simulate import simulate_diffusion as simulate_diffusion
from ._theory import anchor_moments as anchor_moments
from ._theory import diffusion_theory as diffusion_theory
from ._theory import sampler_affine_law as sampler_affine_law

__all__ = [
    "DiffusionConfig",
    "DiffusionSimulation",
    "MLPParams",
    "SAMPLERS",
    "SCORES",
    "anchor_moments",
    "chain",
    "compare_diffusion",
    "diffusion_theory",
    "dsm_loss",
    "euler_output_law",
    "forward_coefficients",
    "gaussian_fit_metrics",
    "gaussian_tv_1d",
    "gaussian_w2_sq",
    "linear_score_fit",
    "mlp_init",
    "mlp_noise_prediction",
    "mlp_score",
    "real_count",
    "reverse_sample",
    "sampler_affine_law",
    "simulate_diffusion",
    "time_grid",
    "train_mlp",
]
