"""Strong Model Collapse: real/synthetic mixtures, random projections, mixing strategies.

Dohmatob, Feng, Subramonian, Kempe, "Strong Model Collapse", arXiv:2410.04840v2 (shared/THEORY.md
§4). Every analytic result has its simulator:

==========================================  ==========================================  ===============================
result                                      theory                                      simulator
==========================================  ==========================================  ===============================
Theorem 1 (ridge on a mixture, any Sigma)   :func:`mixture_error`                       :func:`simulate_mixture`
  isotropic form / Corollary 1 / Cor. 4     :func:`mixture_error_isotropic`,            :func:`simulate_mixture`
  (corrected, over-parameterised)           :func:`ridgeless_mixture_error`,
                                            :func:`overparameterised_mixture_error`
Theorem 2 (random projections, corrected)   :func:`random_projection_error`,            :func:`simulate_random_projection`
                                            :func:`random_projection_order_parameters`
Corollary 2 (weighted mixing) and alpha*    :func:`weighted_mixture_error` (kcollapse   :func:`simulate_weighted_mixture`
                                            deterministic equivalent),
                                            :func:`weighted_mixture_error_small_phi`,
                                            :func:`optimal_mixing_weight`
Corollary 3 (iterative mixing)              :func:`iterative_mixture_error`             :func:`simulate_iterative_mixture`
==========================================  ==========================================  ===============================

Conventions (:mod:`kcollapse.strong._normalisation`): the paper's ridge is kcollapse's ridge
unchanged; quality ``c^2 = E||w2 - w1||_Sigma^2 = tr(Sigma Delta)`` with :func:`mismatch_covariance`;
random-projection ridge ``lambda`` corresponds to the classical ridge :func:`linear_equivalent_ridge`.
Corrections to printed formulas are listed in docs/notes/strong.md.

Examples:
  >>> import jax, kcollapse as kc
  >>> s = kc.spectra.isotropic(50)
  >>> D = kc.strong.mismatch_covariance(s, 0.5)
  >>> th = kc.strong.mixture_error(s, D, 500, 0.2, 0.0, 0.1)
  >>> sim = kc.strong.simulate_mixture(jax.random.key(0), s, D, 500, [0.2], [0.0], label_noise=0.1, n_seeds=64)
  >>> bool(abs(sim.mean[0, 0] - float(th.total)) < 4 * sim.sem[0, 0] + 0.03 * float(th.total))
  True
"""

from ._driver import GridSimulation as GridSimulation
from ._driver import merge_grid_simulations as merge_grid_simulations
from ._mixing import iterative_mixture_error as iterative_mixture_error
from ._mixing import optimal_mixing_weight as optimal_mixing_weight
from ._mixing import weighted_mixture_error as weighted_mixture_error
from ._mixing import weighted_mixture_error_small_phi as weighted_mixture_error_small_phi
from ._mixture import mixture_error as mixture_error
from ._mixture import mixture_error_isotropic as mixture_error_isotropic
from ._mixture import overparameterised_mixture_error as overparameterised_mixture_error
from ._mixture import ridgeless_mixture_error as ridgeless_mixture_error
from ._normalisation import MISMATCH_SHAPES as MISMATCH_SHAPES
from ._normalisation import STRONG_CONVENTIONS as STRONG_CONVENTIONS
from ._normalisation import linear_equivalent_ridge as linear_equivalent_ridge
from ._normalisation import mismatch_covariance as mismatch_covariance
from ._normalisation import paper_ridge as paper_ridge
from ._projection import RandomProjectionOrderParameters as RandomProjectionOrderParameters
from ._projection import random_projection_error as random_projection_error
from ._projection import random_projection_order_parameters as random_projection_order_parameters
from ._simulate import simulate_iterative_mixture as simulate_iterative_mixture
from ._simulate import simulate_mixture as simulate_mixture
from ._simulate import simulate_weighted_mixture as simulate_weighted_mixture
from ._simulate_rp import simulate_random_projection as simulate_random_projection
from ._surrogate import GOLDEN_REAL_WEIGHT as GOLDEN_REAL_WEIGHT
from ._surrogate import RetrainingError as RetrainingError
from ._surrogate import optimal_real_weight as optimal_real_weight
from ._surrogate import optimal_real_weight_given_design as optimal_real_weight_given_design
from ._surrogate import retraining_error as retraining_error
from ._surrogate import retraining_error_given_design as retraining_error_given_design
from ._surrogate import retraining_variance_factor as retraining_variance_factor
from ._surrogate import simulate_retraining as simulate_retraining

__all__ = [
    "GOLDEN_REAL_WEIGHT",
    "GridSimulation",
    "iterative_mixture_error",
    "linear_equivalent_ridge",
    "merge_grid_simulations",
    "mismatch_covariance",
    "MISMATCH_SHAPES",
    "mixture_error",
    "mixture_error_isotropic",
    "optimal_mixing_weight",
    "optimal_real_weight",
    "optimal_real_weight_given_design",
    "overparameterised_mixture_error",
    "paper_ridge",
    "random_projection_error",
    "random_projection_order_parameters",
    "RandomProjectionOrderParameters",
    "retraining_error",
    "retraining_error_given_design",
    "retraining_variance_factor",
    "RetrainingError",
    "ridgeless_mixture_error",
    "simulate_iterative_mixture",
    "simulate_mixture",
    "simulate_random_projection",
    "simulate_retraining",
    "simulate_weighted_mixture",
    "STRONG_CONVENTIONS",
    "weighted_mixture_error",
    "weighted_mixture_error_small_phi",
]
