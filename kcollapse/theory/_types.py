"""Result types and the error raised where no theorem applies."""

from __future__ import annotations

from typing import NamedTuple

import jax

__all__ = ["Decomposition", "TheoryNotApplicable", "decomposition"]


class TheoryNotApplicable(ValueError):
    """No theorem implemented in :mod:`kcollapse.theory` covers the requested configuration.

    The message names the missing assumption (e.g. an OLS generator, ``T0 >= d`` with fresh
    designs, a fixed design for accumulation). kcollapse never returns a number that no theorem
    (or documented, simulation-verified derivation) backs.
    """


class Decomposition(NamedTuple):
    """Test-error decomposition ``total = bias + variance + collapse`` (a pytree).

    Every field has the same shape: a scalar for one configuration, or with a trailing ``(d,)``
    axis for a per-eigenmode breakdown (the summands over ``i``; their sum over the last axis is
    the scalar decomposition).

    Attributes:
      bias: error due to the (possibly collapsed) teacher seen downstream and to shrinkage,
        ``Bias`` (clean) or ``Bias~`` (Demystified Thm 4.3) when the generator loses directions.
      variance: downstream label-noise variance, ``sigma^2 (df_2/T)/(1 - df_2/T)``.
      collapse: the extra error carried by the generators' noise, ``n sigma0^2 rho``.
      total: ``bias + variance + collapse`` (excess risk ``E||w_hat - w0||_Sigma^2``).
    """

    bias: jax.Array
    variance: jax.Array
    collapse: jax.Array
    total: jax.Array


def decomposition(bias: jax.Array, variance: jax.Array, collapse: jax.Array) -> Decomposition:
    """A :class:`Decomposition` with ``total = bias + variance + collapse``."""
    return Decomposition(bias, variance, collapse, bias + variance + collapse)
