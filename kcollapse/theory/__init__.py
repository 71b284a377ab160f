"""Analytic test-error results from the model-collapse literature (shared/THEORY.md)."""

from ._exact import accumulate_ols_exact as accumulate_ols_exact
from ._exact import ols_chain_exact as ols_chain_exact
from ._exact import ols_chain_proportional as ols_chain_proportional

__all__ = ["accumulate_ols_exact", "ols_chain_exact", "ols_chain_proportional"]
