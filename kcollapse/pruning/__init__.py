"""Pruned synthesized labels: the breakdown point ``p*`` of Feng et al. (shared/THEORY.md §7).

Feng, Dohmatob, Yang, Charton, Kempe, *Beyond Model Collapse* (arXiv:2406.07515), Theorem 4.2/E.3:
a Gaussian-mixture classifier trained on synthesized labels with flip rate ``p``, pruned by a rule
that keeps correct labels with probability ``phi`` and wrong ones with probability ``psi``, is
perfect as ``N -> inf`` iff ``p < p* = 1/(1 + psi/phi)``.

====================================================  ==========================================  ==========================
result                                                theory                                      simulator
====================================================  ==========================================  ==========================
breakdown point, pruned flip rate, keep rate          :func:`breakdown_point`,                    :func:`simulate_pruning`
                                                      :func:`pruned_flip_rate`, :func:`keep_rate`
``N -> inf`` step law (finite ``||mu||``)             :func:`limit_accuracy`                      :func:`simulate_pruning`
exact finite-``(N, d)`` accuracy (kcollapse)          :func:`finite_accuracy`                     :func:`simulate_pruning`
deterministic equivalent (sharpening width)           :func:`deterministic_equivalent_accuracy`   :func:`simulate_pruning`
linear verifier: ``(p, phi, psi)`` by orthants        :func:`verifier_rates`                      :func:`simulate_verifier`
linear verifier: limit and finite-``N`` accuracy      :func:`verifier_limit_accuracy`,            :func:`simulate_verifier`
                                                      :func:`verifier_finite_accuracy`
====================================================  ==========================================  ==========================

Classifier: the mean difference of the kept points, ``w_hat = sum_kept y'_i x_i``, predicting
``sign(w_hat^T x)`` (the estimator the paper's Gaussian-mixture analysis covers). Accuracy is the
expected accuracy on a fresh test point. Derivations and evidence: docs/notes/pruning.md.

Examples:
  >>> import jax; jax.config.update("jax_enable_x64", True)
  >>> from kcollapse import pruning
  >>> float(pruning.breakdown_point(0.9, 0.3))
  0.75
  >>> sim = pruning.simulate_pruning(jax.random.key(0), 500, 20, 1.0, [0.5, 0.9], 0.9, 0.3, n_seeds=2000)
  >>> ex = [float(pruning.finite_accuracy(500, 20, 1.0, p, 0.9, 0.3).accuracy) for p in (0.5, 0.9)]
  >>> bool(all(abs(sim.mean()[j] - ex[j]) < 4 * sim.sem()[j] for j in range(2)))
  True
"""

from ._accuracy import AccuracyTable as AccuracyTable
from ._accuracy import FiniteAccuracy as FiniteAccuracy
from ._accuracy import accuracy_table as accuracy_table
from ._accuracy import conditional_accuracy as conditional_accuracy
from ._accuracy import conditional_accuracy_quadrature as conditional_accuracy_quadrature
from ._accuracy import deterministic_equivalent_accuracy as deterministic_equivalent_accuracy
from ._accuracy import finite_accuracy as finite_accuracy
from ._compare import compare_rows as compare_rows
from ._compare import pruning_theory as pruning_theory
from ._compare import summarise as summarise
from ._compare import verifier_theory as verifier_theory
from ._rates import breakdown_point as breakdown_point
from ._rates import keep_rate as keep_rate
from ._rates import limit_accuracy as limit_accuracy
from ._rates import pruned_flip_rate as pruned_flip_rate
from ._simulate import SAMPLERS as SAMPLERS
from ._simulate import PruningSimulation as PruningSimulation
from ._simulate import simulate_pruning as simulate_pruning
from ._simulate import simulate_pruning_seed as simulate_pruning_seed
from ._verifier import VerifierRates as VerifierRates
from ._verifier import simulate_verifier as simulate_verifier
from ._verifier import verifier_directions as verifier_directions
from ._verifier import verifier_finite_accuracy as verifier_finite_accuracy
from ._verifier import verifier_limit_accuracy as verifier_limit_accuracy
from ._verifier import verifier_rates as verifier_rates

__all__ = [
    "AccuracyTable",
    "FiniteAccuracy",
    "PruningSimulation",
    "SAMPLERS",
    "VerifierRates",
    "accuracy_table",
    "breakdown_point",
    "compare_rows",
    "conditional_accuracy",
    "conditional_accuracy_quadrature",
    "deterministic_equivalent_accuracy",
    "finite_accuracy",
    "keep_rate",
    "limit_accuracy",
    "pruned_flip_rate",
    "pruning_theory",
    "simulate_pruning",
    "simulate_pruning_seed",
    "simulate_verifier",
    "summarise",
    "verifier_directions",
    "verifier_finite_accuracy",
    "verifier_limit_accuracy",
    "verifier_rates",
    "verifier_theory",
]
