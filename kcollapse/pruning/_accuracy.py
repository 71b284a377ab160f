"""Exact finite-(N, d) accuracy of the mean-difference classifier on pruned synthesized labels.

kcollapse derivation (docs/notes/pruning.md §2), in the setting of Feng et al. (arXiv:2406.07515)
Theorem 4.2: ``x = y mu + z`` with ``y = +-1`` equiprobable, ``z ~ N(0, I_d)``, ``||mu|| = m``; the
synthesized label ``y'`` is flipped with probability ``p``, independently of ``x``; a point is kept
with probability ``phi`` (``y' = y``) or ``psi`` (``y' != y``), independently of ``x``. The classifier
is the mean difference of the kept points, ``w_hat = sum_kept y'_i x_i`` (any positive scaling), and
predicts ``sign(w_hat^T x)``.

With ``C`` kept correct and ``W`` kept wrong points (multinomial), ``K = C + W`` and ``A = C - W``,

    sum_kept y'_i x_i = A mu + sqrt(K) g,    g ~ N(0, I_d) independent of (C, W),

and the accuracy of a fixed ``w`` is ``Phi(w^T mu / ||w||)``. Hence, exactly,

    E acc = sum_{C, W} P(C, W) G(m A / sqrt(K)),    G(c) = E Phi(m t / sqrt(t^2 + Q)),

``t ~ N(c, 1)``, ``Q ~ chi^2_{d-1}`` independent (``cos`` of the angle of ``w_hat`` to ``mu`` is
``t / sqrt(t^2 + Q)``, a transformed non-central ``t``). ``K = 0`` (nothing kept) counts as accuracy
1/2 (a random guess). ``G`` is odd about 1/2 (``G(-c) = 1 - G(c)``) and increasing, so the expected
accuracy is exactly 1/2 at ``p = p*`` and above/below 1/2 exactly when ``p`` is below/above ``p*``,
for every ``N`` and ``d``.

``G`` is evaluated by a product Gauss rule (Gauss-Hermite in ``t``, Gauss-Gamma in ``Q``), tabulated
once per ``(m, d)`` on a grid uniform in ``asinh(c / sqrt(d + 1))`` and read by linear interpolation;
the pair sum runs over a +-5 sqrt(N) band around the multinomial mode (``>= 10`` standard deviations),
and the captured probability mass is returned so truncation is never silent.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from jax.typing import ArrayLike

from .. import _checks
from ._rates import keep_rate, pruned_flip_rate

__all__ = [
    "AccuracyTable",
    "FiniteAccuracy",
    "accuracy_table",
    "conditional_accuracy",
    "conditional_accuracy_quadrature",
    "deterministic_equivalent_accuracy",
    "finite_accuracy",
]

#: Gauss-Hermite / Gauss-Gamma orders of the product rule for G, and the interpolation grid size.
HERMITE_NODES = 64
GAMMA_NODES = 32
TABLE_SIZE = 8193


def _dtype():
    return jnp.result_type(float)


@functools.lru_cache(maxsize=64)
def _hermite_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes/weights for ``E f(xi)``, ``xi ~ N(0, 1)`` (probabilists' Gauss-Hermite, weights sum to 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


@functools.lru_cache(maxsize=64)
def _gamma_rule(shape: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes/weights for ``E f(G)``, ``G ~ Gamma(shape, 1)`` (Golub-Welsch on the Laguerre recurrence).

    The Jacobi matrix of the generalised Laguerre polynomials with ``alpha = shape - 1`` has diagonal
    ``2i + alpha + 1`` and off-diagonal ``sqrt(i (i + alpha))``; weights are the squared first
    components of its eigenvectors (normalised to 1), which is stable for any ``shape > 0``.
    """
    alpha = shape - 1.0
    i = np.arange(n, dtype=np.float64)
    diag = 2 * i + alpha + 1
    off = np.sqrt(i[1:] * (i[1:] + alpha))
    jac = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    x, v = np.linalg.eigh(jac)
    w = v[0] ** 2
    return x, w / w.sum()


@functools.lru_cache(maxsize=8)
def _legendre_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights on ``[0, pi]``."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1) * (np.pi / 2), w * (np.pi / 2)


#: the angle rule is used for ``d <= ANGLE_RULE_MAX_DIM`` and ``|c| < ANGLE_RULE_MAX_DRIFT``, the product rule otherwise
ANGLE_RULE_MAX_DIM = 14
ANGLE_RULE_MAX_DRIFT = 20.0
ANGLE_NODES = 256


def _angle_rule(c, m, dim):
    """``G(c) = int_0^pi Phi(m cos th) f(th) d th`` with the exact density of the angle of ``N(c e1, I_d)`` to ``e1``.

    ``f(th) = S_{d-2} (2 pi)^{-d/2} sin^{d-2}(th) J_{d-1}(c cos th)``, ``S_{d-2} = 2 pi^{(d-1)/2}/Gamma((d-1)/2)``,
    ``J_k(a) = e^{-c^2/2} int_0^inf r^k e^{-r^2/2 + a r} dr`` by the upward recursion
    ``J_0 = sqrt(2 pi) e^{-c^2 sin^2/2} Phi(a)``, ``J_1 = e^{-c^2/2} + a J_0``, ``J_k = a J_{k-1} + (k-1) J_{k-2}``
    (every term is bounded by ``poly(c)``: no overflow, absolute error ~ machine precision).
    """
    dt = c.dtype
    th, w = (jnp.asarray(a, dt) for a in _legendre_rule(ANGLE_NODES))
    cos, sin = jnp.cos(th), jnp.sin(th)
    cc = c[..., None]
    a = cc * cos
    j_prev = math.sqrt(2 * math.pi) * jnp.exp(-0.5 * cc * cc * sin * sin) * jsp.ndtr(a)
    j_cur = jnp.exp(-0.5 * cc * cc) + a * j_prev
    for k in range(2, dim):
        j_prev, j_cur = j_cur, a * j_cur + (k - 1) * j_prev
    const = 2 * math.pi ** ((dim - 1) / 2) / math.gamma((dim - 1) / 2) * (2 * math.pi) ** (-dim / 2)
    dens = const * sin ** (dim - 2) * j_cur
    return jnp.sum(w * dens * jsp.ndtr(m * cos), axis=-1)


def _product_rule(c, m, dim, hermite_nodes, gamma_nodes):
    """Gauss-Hermite in ``t ~ N(c, 1)`` times Gauss-Gamma in ``Q/2 ~ Gamma((d-1)/2)`` (smooth unless ``t ~ 0`` and ``d`` small)."""
    dt = c.dtype
    xh, wh = _hermite_rule(hermite_nodes)
    xg, wg = _gamma_rule((dim - 1) / 2.0, gamma_nodes)
    xh, wh, q, wg = (jnp.asarray(a, dt) for a in (xh, wh, 2.0 * xg, wg))
    t = c[..., None, None] + xh[:, None]
    vals = jsp.ndtr(m * t / jnp.sqrt(t * t + q))
    return jnp.einsum("...ij,i,j->...", vals, wh, wg)


def conditional_accuracy_quadrature(drift: ArrayLike, signal: ArrayLike, dim: int, *,
                                    hermite_nodes: int = HERMITE_NODES,
                                    gamma_nodes: int = GAMMA_NODES) -> jnp.ndarray:
    """``G(c) = E Phi(m t / sqrt(t^2 + Q))`` by Gauss quadrature (no interpolation).

    ``t ~ N(c, 1)``, ``Q ~ chi^2_{d-1}``: ``G(c)`` is the expected accuracy of a classifier
    ``w ~ N(c mu/m, I_d)``. ``d = 1``: ``G(c) = Phi(c) Phi(m) + Phi(-c) Phi(-m)`` (closed form).
    ``2 <= d <= 14`` and ``|c| < 20``: Gauss-Legendre over the angle of ``w`` to ``mu`` with its exact
    density (the product rule is inaccurate there: ``t/sqrt(t^2 + Q)`` jumps at ``t = 0`` when ``Q``
    has few degrees of freedom). Otherwise: the product Gauss-Hermite x Gauss-Gamma rule. Both
    agree with an adaptive scipy integral over the non-central t density to < 1e-13 (measured,
    docs/notes/pruning.md §2).

    Args:
      drift: ``c`` (any shape). signal: ``m = ||mu||`` (scalar). dim: ``d >= 1`` (static).

    Returns:
      ``G(c)``, the shape of ``drift``.
    """
    dt = _dtype()
    c = jnp.asarray(drift, dt)
    m = jnp.asarray(signal, dt)
    if dim == 1:
        return jsp.ndtr(c) * jsp.ndtr(m) + jsp.ndtr(-c) * jsp.ndtr(-m)
    product = _product_rule(c, m, dim, hermite_nodes, gamma_nodes)
    if dim > ANGLE_RULE_MAX_DIM:
        return product
    near = jnp.abs(c) < ANGLE_RULE_MAX_DRIFT
    angle = _angle_rule(jnp.where(near, c, 0.0), m, dim)
    return jnp.where(near, angle, product)


class AccuracyTable(NamedTuple):
    """``G`` tabulated on ``c = scale sinh(u)``, ``u`` uniform on ``[0, u_max]`` (``G(-c) = 1 - G(c)``).

    Attributes:
      u_max: ``()``. scale: ``()`` ``sqrt(d + 1)``. values: ``(TABLE_SIZE,)`` ``G`` at the grid.
    """

    u_max: jax.Array
    scale: jax.Array
    values: jax.Array


def accuracy_table(signal: ArrayLike, dim: int, max_drift: float, *, size: int = TABLE_SIZE) -> AccuracyTable:
    """Tabulate ``G`` (:func:`conditional_accuracy_quadrature`) for ``|c| <= max_drift`` (jit-compatible in ``signal``)."""
    dt = _dtype()
    scale = jnp.asarray(math.sqrt(dim + 1.0), dt)
    u_max = jnp.asarray(math.asinh(max(float(max_drift), 1.0) / math.sqrt(dim + 1.0)) + 1e-3, dt)
    u = jnp.linspace(0.0, 1.0, size, dtype=dt) * u_max
    values = jax.lax.map(lambda c: conditional_accuracy_quadrature(c, signal, dim), scale * jnp.sinh(u),
                         batch_size=256)
    return AccuracyTable(u_max, scale, values)


def conditional_accuracy(drift: ArrayLike, table: AccuracyTable) -> jnp.ndarray:
    """``G(c)`` read from a table (linear interpolation in ``u = asinh(|c|/scale)``, odd symmetry)."""
    c = jnp.asarray(drift, table.values.dtype)
    u = jnp.arcsinh(jnp.abs(c) / table.scale)
    grid = jnp.linspace(0.0, 1.0, table.values.shape[0], dtype=c.dtype) * table.u_max
    g = jnp.interp(u, grid, table.values)
    return 0.5 + jnp.sign(c) * (g - 0.5)


def band_size(n: int) -> int:
    """Static width of the summation band: ``+-5 sqrt(n)`` (>= 10 sd of any Binomial(n, .)), capped at ``n + 1``."""
    return int(min(n + 1, 2 * math.ceil(5.0 * math.sqrt(n)) + 1))


def _binom_logpmf(k, n, prob):
    return (jsp.gammaln(n + 1) - jsp.gammaln(k + 1) - jsp.gammaln(n - k + 1)
            + jsp.xlogy(k, prob) + jsp.xlog1py(n - k, -prob))


def _band(n, prob, width):
    """``width`` consecutive integers covering the mode of Binomial(n, prob), inside ``[0, n]`` where possible."""
    dt = prob.dtype
    start = jnp.clip(jnp.round(n * prob) - (width - 1) // 2, 0, jnp.maximum(n - width + 1, 0))
    k = start + jnp.arange(width, dtype=dt)
    return k, k <= n


class FiniteAccuracy(NamedTuple):
    """Exact expected accuracy and diagnostics (one problem; batched under ``vmap``).

    Attributes:
      accuracy: ``E acc``. mass: probability mass captured by the summation band (``1`` up to
        rounding; compare with ``1 - 1e-12`` to detect truncation). keep_probability: ``q``.
      pruned_flip_rate: ``p_eff``. expected_kept: ``N q``.
    """

    accuracy: jax.Array
    mass: jax.Array
    keep_probability: jax.Array
    pruned_flip_rate: jax.Array
    expected_kept: jax.Array


def finite_accuracy(n_samples: int, dim: int, signal: ArrayLike, flip_rate: ArrayLike, keep_correct: ArrayLike,
                    keep_wrong: ArrayLike, *, table: AccuracyTable | None = None) -> FiniteAccuracy:
    """Exact expected test accuracy of the mean-difference classifier trained on the kept points.

    ``E acc = sum_{K, W} Bin(K; N, q) Bin(W; K, p_eff) G(m (K - 2W)/sqrt(K))`` with ``q = (1-p)phi +
    p psi``, ``p_eff = p psi / q``, ``G`` from :func:`conditional_accuracy` (``K = 0`` counts 1/2).

    Args:
      n_samples: ``N`` synthesized points before pruning (static int >= 1).
      dim: ``d >= 1`` (static).
      signal: ``m = ||mu|| >= 0``. flip_rate: ``p`` in ``[0, 1]``. keep_correct: ``phi``. keep_wrong: ``psi``.
      table: a :func:`accuracy_table` for ``(signal, dim)`` covering ``|c| <= m sqrt(N)``; built here if
        omitted (pass one to share it across a ``vmap`` over ``p``, ``phi``, ``psi`` or ``N``).

    Returns:
      :class:`FiniteAccuracy`. Accuracy is exact up to the quadrature and interpolation error of
      ``G`` (< 2e-7, measured in tests/test_pruning.py) and the band truncation (``1 - mass``).

    References:
      Setting of Feng et al. (arXiv:2406.07515) Theorem 4.2; the finite-sample formula is kcollapse's
      (docs/notes/pruning.md §2). ``N -> inf`` recovers :func:`~kcollapse.pruning.limit_accuracy`.

    Examples:
      >>> import jax; jax.config.update("jax_enable_x64", True)
      >>> from kcollapse import pruning
      >>> r = pruning.finite_accuracy(1000, 20, 1.0, 0.4, 1.0, 0.5)   # p* = 2/3
      >>> bool(0.5 < float(r.accuracy) < float(pruning.limit_accuracy(0.4, 1.0, 0.5, 1.0)))
      True
    """
    dt = _dtype()
    n = _checks.check_int("n_samples", n_samples, minimum=1)
    d = _checks.check_int("dim", dim, minimum=1)
    m = jnp.asarray(signal, dt)
    if table is None:
        if isinstance(m, jax.core.Tracer):
            raise ValueError("finite_accuracy under jit/vmap over signal needs table=accuracy_table(signal, dim, "
                             "max_signal * sqrt(n_samples)) built outside the transformation")
        table = accuracy_table(m, d, _checks.check_nonneg_float("signal", float(m)) * math.sqrt(n))
    q = keep_rate(jnp.asarray(flip_rate, dt), jnp.asarray(keep_correct, dt), jnp.asarray(keep_wrong, dt))
    pe = pruned_flip_rate(jnp.asarray(flip_rate, dt), jnp.asarray(keep_correct, dt), jnp.asarray(keep_wrong, dt))
    pe_safe = jnp.where(q > 0, pe, 0.5)
    nf = jnp.asarray(n, dt)
    width = band_size(n)
    ks, k_ok = _band(nf, q, width)
    log_pk = _binom_logpmf(ks, nf, q)

    def over_k(args):
        k, lpk, ok = args
        ws, w_ok = _band(k, pe_safe, width)
        prob = jnp.exp(lpk + _binom_logpmf(ws, k, pe_safe))
        prob = jnp.where(ok & w_ok, prob, 0.0)
        drift = m * (k - 2 * ws) / jnp.sqrt(jnp.maximum(k, 1.0))
        acc = jnp.where(k > 0, conditional_accuracy(drift, table), 0.5)
        return jnp.stack([jnp.sum(prob * acc), jnp.sum(prob)])

    sums = jax.lax.map(over_k, (ks, log_pk, k_ok), batch_size=min(width, 64))
    total = jnp.sum(sums, axis=0)
    mass = total[1]
    return FiniteAccuracy(total[0] / mass, mass, q, pe, nf * q)


def deterministic_equivalent_accuracy(n_samples: ArrayLike, dim: ArrayLike, signal: ArrayLike, flip_rate: ArrayLike,
                                      keep_correct: ArrayLike, keep_wrong: ArrayLike) -> jnp.ndarray:
    """Large-``N`` deterministic equivalent: ``Phi(m s / sqrt(s^2 + d/(N q)))`` with ``s = m (1 - 2 p_eff)``.

    Replaces the kept count by ``N q`` and the classifier ``w_hat/K = (1 - 2 p_eff) mu + g/sqrt(K)`` by
    its concentrated angle, ``cos = s/sqrt(s^2 + d/(N q))``. It shows the sharpening directly: the
    transition in ``1 - 2 p_eff`` has width ``sqrt(d/(N q))/m``, and ``N -> inf`` gives the step law.
    Error ``O(1/sqrt(N q))`` (fluctuations of ``W`` and ``g^T mu`` are dropped; measured in the tests).

    References:
      kcollapse derivation (docs/notes/pruning.md §2), setting of Feng et al. (arXiv:2406.07515) Thm 4.2.
    """
    dt = _dtype()
    q = keep_rate(jnp.asarray(flip_rate, dt), keep_correct, keep_wrong)
    pe = pruned_flip_rate(jnp.asarray(flip_rate, dt), keep_correct, keep_wrong)
    m = jnp.asarray(signal, dt)
    s = m * (1 - 2 * pe)
    return jsp.ndtr(m * s / jnp.sqrt(s * s + jnp.asarray(dim, dt) / (jnp.asarray(n_samples, dt) * q)))
