"""Optimal and adaptive regularisation, and crossovers, for the model-collapse chain.

* optimal ridge from theory: :func:`optimal_ridge` -> :class:`OptimalRidge` (grid + bracketed
  root of ``dE/dlog lambda``, the derivative through ``kappa``; ``vmap``-able), and
  :func:`optimal_ridge_batch` (broadcast tables of optima in one compiled call);
* optimal ridge from simulation: :func:`empirical_optimal_ridge` (argmin of the seed-averaged curve,
  percentile-bootstrap CI over seeds) -> :class:`EmpiricalOptimalRidge`; :func:`grid_minimizer`;
* adaptive regularisation ``lambda = lambda0 T^{-ell}``: :func:`adaptive_ridge`,
  :func:`ridge_exponents` (``ell_crit``, ``ell* = (b - a) ell_crit``, Corollary 5.3),
  :func:`effective_b`, :func:`fit_ridge_exponent` (``ell`` from a ``lambda*(T)`` curve);
* crossovers -> :class:`Crossover` (point, residual, level, status): :func:`collapse_crossover`
  (collapse term = clean error), :func:`rate_switch` (fast -> slow rate),
  :func:`classical_divergence_threshold` (``b*`` for ``T^{-ell_crit}``),
  :func:`mixture_plateau_fraction` (Strong Model Collapse ``p2*``).

Status codes (:func:`status_message`): 0 converged, 1 at the lower bound, 2 at the upper bound,
3 not converged, 4 non-finite objective, 5 no crossing inside the bounds.

References:
  Dohmatob, Feng, Kempe, "Model Collapse Demystified: The Case of Regression", arXiv:2402.07712v2
  (Theorem 4.3, Corollary 4.7, Theorem 5.2, Corollary 5.3, Fig. 1-2); Dohmatob, Feng, Subramonian,
  Kempe, "Strong Model Collapse", arXiv:2410.04840v2 (Theorem 1, Corollary 1).
"""

from ._adaptive import RidgeExponentFit as RidgeExponentFit
from ._adaptive import RidgeExponents as RidgeExponents
from ._adaptive import adaptive_ridge as adaptive_ridge
from ._adaptive import effective_b as effective_b
from ._adaptive import fit_ridge_exponent as fit_ridge_exponent
from ._adaptive import ridge_exponents as ridge_exponents
from ._crossover import Crossover as Crossover
from ._crossover import classical_divergence_threshold as classical_divergence_threshold
from ._crossover import collapse_crossover as collapse_crossover
from ._crossover import mixture_plateau_fraction as mixture_plateau_fraction
from ._crossover import rate_switch as rate_switch
from ._empirical import EmpiricalOptimalRidge as EmpiricalOptimalRidge
from ._empirical import empirical_optimal_ridge as empirical_optimal_ridge
from ._empirical import grid_minimizer as grid_minimizer
from ._ridge import OptimalRidge as OptimalRidge
from ._ridge import default_ridge_bounds as default_ridge_bounds
from ._ridge import optimal_ridge as optimal_ridge
from ._ridge import optimal_ridge_batch as optimal_ridge_batch
from ._ridge import status_message as status_message
from ._solve1d import STATUS_MESSAGES as STATUS_MESSAGES

__all__ = [
    "STATUS_MESSAGES",
    "Crossover",
    "EmpiricalOptimalRidge",
    "OptimalRidge",
    "RidgeExponentFit",
    "RidgeExponents",
    "adaptive_ridge",
    "classical_divergence_threshold",
    "collapse_crossover",
    "default_ridge_bounds",
    "effective_b",
    "empirical_optimal_ridge",
    "fit_ridge_exponent",
    "grid_minimizer",
    "mixture_plateau_fraction",
    "optimal_ridge",
    "optimal_ridge_batch",
    "rate_switch",
    "ridge_exponents",
    "status_message",
]
