"""Recursive refitting of a Gaussian: theory and simulator side by side (shared/THEORY.md §6-§7).

* Shumailov et al. (replace, unbiased variance): ``E(mu_g - mu)^2 = g sigma^2/M``, ``E sigma_g^2 =
  sigma^2``, ``E sigma_g = sigma c4(M)^g``, ``E W2^2 = sigma^2 [g/M + 2(1 - c4^g)]``, the exact
  ``Var W2^2``, the random walk of ``log sigma_g^2`` (almost-sure collapse), the second-order forms,
  the noisy-approximation lower bound;
* Kazdan et al. (accumulate, MLE variance): ``E sigma_t^2 = sigma^2 prod_k (1 - 1/(n k^2))`` ->
  ``sigma^2 sin(pi/sqrt n)/(pi/sqrt n)``, ``E(mu_t - mu)^2 = sigma^2 (1 - prod_k ...)``, bounded ``W2``;
* Suresh et al.: ``P(sigma_k > eps) <= (sigma/eps) exp(-k/(4n))``;
* Bertrand et al. (real + lambda synthetic, fixed or fresh real data): exact moments, fixed point and
  contraction ratio ``lambda/(1 + lambda)`` (:class:`MixConfig`, :func:`mixing_moments`, :func:`simulate_mixing`);
* Barzilai & Shamir (accumulate under any schedule): schedule-free consistency bounds
  (:func:`accumulate_uniform_bounds`, :func:`accumulate_limit_bracket`);
* Suresh et al., discrete: the Wright-Fisher chain of a categorical ML fit -- exact survival of a symbol,
  forgetting times, branching/Feller/Kimura limits (:func:`survival_probability`, :func:`simulate_categorical`).

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
from ._compare_related import compare_categorical as compare_categorical
from ._compare_related import compare_mixing as compare_mixing
from ._consistency import accumulate_limit_bracket as accumulate_limit_bracket
from ._consistency import accumulate_uniform_bounds as accumulate_uniform_bounds
from ._discrete import CategoricalSimulation as CategoricalSimulation
from ._discrete import absorption_times as absorption_times
from ._discrete import branching_survival as branching_survival
from ._discrete import feller_survival as feller_survival
from ._discrete import forgetting_time_quantile as forgetting_time_quantile
from ._discrete import kimura_times as kimura_times
from ._discrete import simulate_categorical as simulate_categorical
from ._discrete import suresh_survival_bound as suresh_survival_bound
from ._discrete import survival_probability as survival_probability
from ._discrete import truncated_forgetting_time as truncated_forgetting_time
from ._discrete import wright_fisher_transition as wright_fisher_transition
from ._mixing import MixConfig as MixConfig
from ._mixing import MixSimulation as MixSimulation
from ._mixing import bertrand_stated_ratio as bertrand_stated_ratio
from ._mixing import mixing_contraction as mixing_contraction
from ._mixing import mixing_fixed_point as mixing_fixed_point
from ._mixing import mixing_moments as mixing_moments
from ._mixing import mixing_population_map as mixing_population_map
from ._mixing import simulate_mixing as simulate_mixing
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
    "CategoricalSimulation",
    "ESTIMATORS",
    "MODES",
    "MixConfig",
    "MixSimulation",
    "PAPER_ESTIMATOR",
    "RefitConfig",
    "RefitSimulation",
    "RefitState",
    "RefitTheory",
    "SAMPLERS",
    "StepParams",
    "absorption_times",
    "accumulate_limit_bracket",
    "accumulate_uniform_bounds",
    "bertrand_stated_ratio",
    "branching_survival",
    "chi_mean_factor",
    "collapse_probability_bound",
    "compare_categorical",
    "compare_mixing",
    "compare_refit",
    "expected_log_det_change",
    "expected_mean_sq_error",
    "expected_scale",
    "expected_variance",
    "expected_w2_sq",
    "feller_survival",
    "forgetting_time_quantile",
    "init_state",
    "kazdan_limits",
    "kimura_times",
    "log_det_change_variance",
    "log_spread",
    "mixing_contraction",
    "mixing_fixed_point",
    "mixing_moments",
    "mixing_population_map",
    "refit_schedule",
    "refit_step",
    "refit_theory",
    "shumailov_second_order",
    "simulate_categorical",
    "simulate_mixing",
    "simulate_refit",
    "step_params",
    "suresh_collapse_bound",
    "suresh_survival_bound",
    "survival_probability",
    "truncated_forgetting_time",
    "w2_sq_variance",
    "wright_fisher_transition",
]
