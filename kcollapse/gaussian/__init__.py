"""Recursive refitting of a Gaussian: theory and simulator side by side (shared/THEORY.md §6-§7).

* Shumailov et al. (replace, unbiased variance): ``E(mu_g - mu)^2 = g sigma^2/M``, ``E sigma_g^2 =
  sigma^2``, ``E sigma_g = sigma c4(M)^g``, ``E W2^2 = sigma^2 [g/M + 2(1 - c4^g)]``, the exact
  ``Var W2^2``, the random walk of ``log sigma_g^2`` (almost-sure collapse), the second-order forms,
  the noisy-approximation lower bound;
* Kazdan et al. (accumulate, MLE variance): ``E sigma_t^2 = sigma^2 prod_k (1 - 1/(n k^2))`` ->
  ``sigma^2 sin(pi/sqrt n)/(pi/sqrt n)``, ``E(mu_t - mu)^2 = sigma^2 (1 - prod_k ...)``, bounded ``W2``;
* Suresh et al.: ``P(sigma_k > eps) <= (sigma/eps) exp(-k/(4n))``.

Every formula takes any estimator (``"unbiased"``, ``"mle"``; ``"paper"`` = the paper's), any
sample-size schedule ``M_k``, and (where stated) ``d``-dimensional Gaussians ``N(mu, sigma^2 I_d)``.

Main entry points: :class:`RefitConfig`, :func:`refit_theory`, :func:`simulate_refit`,
:func:`compare_refit`.

Example:
  >>> import jax
  >>> from kcollapse import gaussian as kg
  >>> cfg = kg.RefitConfig(samples_per_generation=100, n_generations=200)
  >>> th = kg.refit_theory(cfg, [1, 10, 100, 200])
  >>> sim = kg.simulate_refit(jax.random.key(0), cfg, [1, 10, 100, 200], n_chains=512)
  >>> rows, summary = kg.compare_refit(th, sim)
"""

from ._compare import RefitTheory as RefitTheory
from ._compare import compare_refit as compare_refit
from ._compare import refit_theory as refit_theory
from ._config import ESTIMATORS as ESTIMATORS
from ._config import MODES as MODES
from ._config import PAPER_ESTIMATOR as PAPER_ESTIMATOR
from ._config import RefitConfig as RefitConfig
from ._config import refit_schedule as refit_schedule
from ._simulate import RefitSimulation as RefitSimulation
from ._simulate import RefitState as RefitState
from ._simulate import SAMPLERS as SAMPLERS
from ._simulate import StepParams as StepParams
from ._simulate import init_state as init_state
from ._simulate import refit_step as refit_step
from ._simulate import simulate_refit as simulate_refit
from ._simulate import step_params as step_params
from ._theory import chi_mean_factor as chi_mean_factor
from ._theory import collapse_probability_bound as collapse_probability_bound
from ._theory import expected_log_det_change as expected_log_det_change
from ._theory import expected_mean_sq_error as expected_mean_sq_error
from ._theory import expected_scale as expected_scale
from ._theory import expected_variance as expected_variance
from ._theory import expected_w2_sq as expected_w2_sq
from ._theory import kazdan_limits as kazdan_limits
from ._theory import log_det_change_variance as log_det_change_variance
from ._theory import log_spread as log_spread
from ._theory import shumailov_second_order as shumailov_second_order
from ._theory import suresh_collapse_bound as suresh_collapse_bound
from ._theory import w2_sq_variance as w2_sq_variance

__all__ = [
    "ESTIMATORS",
    "MODES",
    "PAPER_ESTIMATOR",
    "RefitConfig",
    "RefitSimulation",
    "RefitState",
    "RefitTheory",
    "SAMPLERS",
    "StepParams",
    "chi_mean_factor",
    "collapse_probability_bound",
    "compare_refit",
    "expected_log_det_change",
    "expected_mean_sq_error",
    "expected_scale",
    "expected_variance",
    "expected_w2_sq",
    "init_state",
    "kazdan_limits",
    "log_det_change_variance",
    "log_spread",
    "refit_schedule",
    "refit_step",
    "refit_theory",
    "shumailov_second_order",
    "simulate_refit",
    "step_params",
    "suresh_collapse_bound",
    "w2_sq_variance",
]
