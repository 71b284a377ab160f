"""Analytic test-error results from the model-collapse literature (shared/THEORY.md §1-§3).

* effective regularisation: :func:`effective_ridge` (``kappa(lambda, T)``, implicit gradients),
  :func:`degrees_of_freedom`, :func:`effective_ridge_derivative`, :func:`effective_ridge_isotropic`;
* decompositions (:class:`Decomposition`: ``bias``, ``variance``, ``collapse``, ``total``):
  :func:`clean_risk`, :func:`chain_error` (Demystified Thms 4.1/4.3/4.6/4.8/4.9, Cor. 4.7),
  :func:`collapse_rho`, isotropic closed forms (:func:`clean_risk_isotropic`, :func:`rho_isotropic`,
  :func:`overparameterised_isotropic`), Theorem 4.1 (:func:`ols_chain_exact`,
  :func:`ols_chain_proportional`), Gerstgrasser et al. (:func:`replace_vs_accumulate`,
  :func:`accumulate_ols_exact`, :func:`accumulate_chain`);
* power laws: :func:`power_law_exponents` (Cor. 5.3), :func:`power_law_error_curve` (Thm 5.2);
* the simulator's counterpart: :func:`predict_chain` -> :class:`TheoryResult`, raising
  :class:`TheoryNotApplicable` where no theorem applies.

Corrections to printed formulas are listed in ``docs/theory-notes.md``.
"""

from ._accumulate import accumulate_chain as accumulate_chain
from ._accumulate import accumulate_downstream_variance as accumulate_downstream_variance
from ._accumulate import replace_vs_accumulate as replace_vs_accumulate
from ._exact import accumulate_ols_exact as accumulate_ols_exact
from ._exact import ols_chain_exact as ols_chain_exact
from ._exact import ols_chain_proportional as ols_chain_proportional
from ._general import chain_error as chain_error
from ._general import clean_risk as clean_risk
from ._general import collapse_rho as collapse_rho
from ._isotropic import clean_risk_isotropic as clean_risk_isotropic
from ._isotropic import overparameterised_isotropic as overparameterised_isotropic
from ._isotropic import rho_isotropic as rho_isotropic
from ._kappa import degrees_of_freedom as degrees_of_freedom
from ._kappa import effective_ridge as effective_ridge
from ._kappa import effective_ridge_derivative as effective_ridge_derivative
from ._kappa import effective_ridge_isotropic as effective_ridge_isotropic
from ._power_law import PowerLawExponents as PowerLawExponents
from ._power_law import power_law_error_curve as power_law_error_curve
from ._power_law import power_law_exponents as power_law_exponents
from ._predict import TheoryResult as TheoryResult
from ._predict import predict_chain as predict_chain
from ._types import Decomposition as Decomposition
from ._types import TheoryNotApplicable as TheoryNotApplicable

__all__ = [
    "Decomposition",
    "PowerLawExponents",
    "TheoryNotApplicable",
    "TheoryResult",
    "accumulate_chain",
    "accumulate_downstream_variance",
    "accumulate_ols_exact",
    "chain_error",
    "clean_risk",
    "clean_risk_isotropic",
    "collapse_rho",
    "degrees_of_freedom",
    "effective_ridge",
    "effective_ridge_derivative",
    "effective_ridge_isotropic",
    "ols_chain_exact",
    "ols_chain_proportional",
    "overparameterised_isotropic",
    "power_law_error_curve",
    "power_law_exponents",
    "predict_chain",
    "replace_vs_accumulate",
    "rho_isotropic",
]
