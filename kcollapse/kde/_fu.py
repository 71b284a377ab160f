"""Self-consuming KDE with real/synthetic mixing (Fu et al., ICML 2024, arXiv:2402.11778): exact L2 error.

Setting (shared/THEORY.md §7; docs/notes/kde.md §5). Truth ``p0 = N(0, sigma^2 I_d)``; Gaussian kernel
``phi_h = N(0, h^2 I_d)``. Generation ``i`` (``0..G``) has ``n_i`` training points and bandwidth
``h_i = c n_i^{-e}`` (``e = 0``: constant ``h = c``; ``e = 1/(2s + d)`` with ``s = 2``: the rate-optimal
schedule of a second-order kernel). Generation 0 is real. A generation-``i >= 1`` point is, independently,
a fresh real point (probability ``alpha_i``) or a draw from the KDE of generation ``j < i`` (probability
``beta_j^i``: a uniformly chosen training point of generation ``j`` plus ``N(0, h_j^2 I)``); this is Fu et
al.'s mixture ``p_i = sum_j beta_j^i p_{theta_j} + alpha_i p0`` with the KDE as the learner. Mixing:
``previous`` (``beta_{i-1}^i = 1 - alpha``; ``alpha = 0`` is the fully synthetic loop) or ``all``
(``beta_j^i = (1 - alpha)/i``, accumulate-like).

**Exact expected squared L2 error** (kcollapse's derivation [DERIVED]). With
``f_d(v) = (2 pi v)^{-d/2}`` and ``p_hat_i = (1/n) sum_k phi_h(x - X_k)``:

* ``E int p_hat^2 = f_d(2 h^2)/n + (1 - 1/n) E f_d(2 h^2 + V)``, ``X_k - X_l ~ N(0, V I)`` given the
  genealogy of two distinct training points;
* ``E int p_hat p0 = E f_d(2 sigma^2 + h^2 + W)`` (``int phi_h(x - X) p0(x) dx = N(X; 0, (sigma^2 + h^2) I)``
  and ``X_k ~ N(0, (sigma^2 + W) I)`` given its lineage, ``W`` = sum of the kernel variances on the
  lineage back to its real root);
* ``int p0^2 = f_d(2 sigma^2)``; ``MISE_i = E int p_hat^2 - 2 E int p_hat p0 + int p0^2``.

``W`` and ``V`` have discrete laws computed by a dynamic programme over lineage states: a single lineage
steps back (real root w.p. ``alpha_a``, else to generation ``j`` adding ``h_j^2``); a pair ``(a, b)``,
``a >= b``, steps the lineage at the later generation ``a``: a real root ends the pair with
``V = V_acc + 2 sigma^2 + W_b`` (a fresh real point is independent of every point of generations
``<= a`` that is not its descendant); a step to ``j = b`` picks the other lineage's point w.p. ``1/n_b``
(coalescence: ``V = V_acc + h_j^2``), otherwise the pair moves on. Stepping the later lineage means a
lineage never lands on a point that the other lineage has already left.

References:
  S. Fu, S. Zhang, Y. Wang, X. Tian, D. Tao, "Towards Theoretical Understandings of Self-Consuming
  Generative Models", ICML 2024, arXiv:2402.11778 (setting; KDE section: Theorem 5.4 [READ-M via
  THEORY.md]). J. S. Marron, M. P. Wand, "Exact mean integrated squared error", Ann. Statist. 20 (1992)
  (one-shot MISE of a Gaussian KDE on a normal mixture: the ``alpha = 1`` limit, tested).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from .. import _checks

__all__ = ["FU_MIXINGS", "FuKDEConfig", "fu_bandwidths", "fu_kde_theory", "fu_lineage_laws",
           "fu_mixing_weights", "fu_one_shot_mise", "fu_stability_bound"]

#: previous: the synthetic part comes from generation i - 1; all: uniformly from generations 0..i-1.
FU_MIXINGS = ("previous", "all")

_MAX_ATOMS = 2_000_000


def _static(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FuKDEConfig:
    """Self-consuming Gaussian KDE on real/synthetic mixtures (Fu et al. 2402.11778 setting).

    Attributes:
      samples: ``n_i`` (static): one int for every generation, or a tuple of ``G + 1`` ints.
      n_generations: ``G >= 0`` (static). dim: ``d >= 1`` (static).
      mixing: one of :data:`FU_MIXINGS` (static).
      real_fraction: ``alpha`` in ``[0, 1]`` for generations ``>= 1`` (array leaf; generation 0 is real).
      bandwidth: ``c > 0`` in ``h_i = c n_i^{-e}`` (array leaf).
      bandwidth_exponent: ``e >= 0`` (static; 0: constant bandwidth ``c``; ``1/(4 + d)``: the ``s = 2`` rate).
      sigma: true standard deviation per coordinate (array leaf).
    """

    samples: int | tuple[int, ...] = _static()
    n_generations: int = _static()
    dim: int = _static(1)
    mixing: str = _static("previous")
    real_fraction: ArrayLike = 0.0
    bandwidth: ArrayLike = 0.5
    bandwidth_exponent: float = _static(0.0)
    sigma: ArrayLike = 1.0

    def validate(self) -> FuKDEConfig:
        G = _checks.check_int("n_generations", self.n_generations, minimum=0)
        _checks.check_int("dim (d)", self.dim, minimum=1)
        _checks.check_choice("mixing", self.mixing, FU_MIXINGS)
        _checks.check_fraction("real_fraction (alpha)", self.real_fraction)
        _checks.check_positive_float("bandwidth (c)", self.bandwidth)
        _checks.check_nonneg_float("bandwidth_exponent (e)", self.bandwidth_exponent)
        _checks.check_positive_float("sigma", self.sigma)
        if isinstance(self.samples, (tuple, list)):
            if len(self.samples) != G + 1:
                raise ValueError(f"samples must be one int or G + 1 = {G + 1} ints (one per generation), "
                                 f"got {len(self.samples)}")
            for s in self.samples:
                _checks.check_int("samples (n_i)", s, minimum=1)
        else:
            _checks.check_int("samples (n)", self.samples, minimum=1)
        return self

    @property
    def sample_sizes(self) -> np.ndarray:
        """``(G + 1,)`` training-set sizes ``n_i``."""
        if isinstance(self.samples, (tuple, list)):
            return np.asarray(self.samples, np.int64)
        return np.full(self.n_generations + 1, int(self.samples), np.int64)

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, (tuple, list)) else (v if isinstance(v, (str, int)) else float(v))
        return out


def fu_bandwidths(config: FuKDEConfig) -> np.ndarray:
    """``(G + 1,)`` bandwidths ``h_i = c n_i^{-e}``."""
    return float(config.bandwidth) * config.sample_sizes.astype(np.float64) ** (-float(config.bandwidth_exponent))


def fu_mixing_weights(config: FuKDEConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)``: ``alpha[i]`` real probability (``alpha[0] = 1``), ``beta[i, j]`` probability
    that a generation-``i`` point is drawn from generation ``j``'s KDE (zero unless ``j < i``)."""
    G = config.n_generations
    a = float(config.real_fraction)
    alpha = np.full(G + 1, a)
    alpha[0] = 1.0
    beta = np.zeros((G + 1, G + 1))
    for i in range(1, G + 1):
        if config.mixing == "previous":
            beta[i, i - 1] = 1 - a
        else:
            beta[i, :i] = (1 - a) / i
    return alpha, beta


def _key(v: float) -> float:
    return float(f"{v:.13g}")


def _add(dst: dict, v: float, p: float) -> None:
    if p > 0:
        dst[_key(v)] += p


def fu_lineage_laws(config: FuKDEConfig) -> tuple[list[dict[float, float]], list[dict[tuple[float, int], float]]]:
    """Exact laws of the lineage variances, by the dynamic programme of the module docstring.

    Returns:
      ``(single, pair)``: ``single[i]`` maps ``W`` (sum of kernel variances on a generation-``i``
      training point's lineage) to its probability; ``pair[i]`` maps ``(V_kernel, r)`` to its
      probability, where two distinct generation-``i`` training points differ by ``N(0, V I)`` with
      ``V = V_kernel + r sigma^2`` (``r = 0``: they coalesce; ``r = 2``: distinct real roots).
    """
    config.validate()
    G = config.n_generations
    alpha, beta = fu_mixing_weights(config)
    n = config.sample_sizes
    h2 = fu_bandwidths(config) ** 2
    single: list[dict[float, float]] = []
    for i in range(G + 1):
        law: dict[float, float] = defaultdict(float)
        law[0.0] += alpha[i]
        for j in range(i):
            if beta[i, j] > 0:
                for w, p in single[j].items():
                    _add(law, w + h2[j], beta[i, j] * p)
        single.append(dict(law))
    pair: list[dict[tuple[float, int], float]] = []
    for i in range(G + 1):
        # states[(a, b)] = {V_acc: mass}, a >= b; processed in decreasing a, (a, a) before (a, b < a)
        states: dict[tuple[int, int], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        states[(i, i)][0.0] = 1.0
        out: dict[tuple[float, int], float] = defaultdict(float)
        atoms = 0
        for a in range(i, -1, -1):
            for b in [a, *range(a - 1, -1, -1)]:
                st = states.pop((a, b), None)
                if not st:
                    continue
                atoms += len(st)
                if atoms > _MAX_ATOMS:
                    raise ValueError(f"the lineage law of generation {i} has more than {_MAX_ATOMS} atoms; use fewer "
                                     "generations, a constant bandwidth, or mixing='previous'")
                for v, m in st.items():
                    if alpha[a] > 0:  # lineage a ends at a fresh real root: the other is a single lineage at b
                        for w, p in single[b].items():
                            out[(_key(v + w), 2)] += m * alpha[a] * p
                    for j in range(a):
                        bj = beta[a, j]
                        if bj == 0:
                            continue
                        v2 = v + h2[j]
                        if j == b:
                            out[(_key(v2), 0)] += m * bj / n[b]
                            _add(states[(b, b)], v2, m * bj * (1 - 1 / n[b]))
                        else:
                            _add(states[(max(j, b), min(j, b))], v2, m * bj)
        pair.append({k: p for k, p in out.items() if p > 0})
    return single, pair


def _f(v, d):
    return (2 * np.pi * np.asarray(v, np.float64)) ** (-d / 2)


def fu_kde_theory(config: FuKDEConfig) -> dict[str, np.ndarray]:
    """Exact ``E ||p_hat_i - p0||^2_{L2}`` at every generation ``i = 0..G`` (kcollapse's derivation).

    Returns (each ``(G + 1,)``):
      ``mise``: ``E int (p_hat_i - p0)^2``; ``sqrt_mise``; ``int_phat_sq``: ``E int p_hat_i^2``;
      ``int_phat_p0``: ``E int p_hat_i p0``; ``mean_lineage_variance``: ``E W_i``;
      ``coalescence_probability``: probability that two distinct training points share an ancestor;
      ``bandwidth``: ``h_i``.

    Examples:
      >>> from kcollapse import kde
      >>> cfg = kde.FuKDEConfig(samples=50, n_generations=3, real_fraction=0.5, bandwidth=0.4)
      >>> th = kde.fu_kde_theory(cfg)
      >>> bool(th["mise"][0] == kde.fu_one_shot_mise(50, 0.4))
      True

    References:
      Fu et al., arXiv:2402.11778 (setting); the formulas are kcollapse's (docs/notes/kde.md §5).
    """
    single, pair = fu_lineage_laws(config)
    d, s2 = config.dim, float(config.sigma) ** 2
    n = config.sample_sizes.astype(np.float64)
    h2 = fu_bandwidths(config) ** 2
    G = config.n_generations
    sq, cross, mw, coal = (np.zeros(G + 1) for _ in range(4))
    for i in range(G + 1):
        w = np.array(list(single[i].keys()))
        pw = np.array(list(single[i].values()))
        cross[i] = pw @ _f(2 * s2 + h2[i] + w, d)
        mw[i] = pw @ w
        if pair[i]:
            keys = np.array([k[0] + k[1] * s2 for k in pair[i]])
            pp = np.array(list(pair[i].values()))
            e_pair = pp @ _f(2 * h2[i] + keys, d)
            coal[i] = sum(p for k, p in pair[i].items() if k[1] == 0)
        else:
            e_pair = 0.0
        sq[i] = _f(2 * h2[i], d) / n[i] + (1 - 1 / n[i]) * e_pair
    mise = sq - 2 * cross + _f(2 * s2, d)
    if not np.all(np.isfinite(mise)):
        raise FloatingPointError("non-finite MISE (bandwidth or sigma out of the float range)")
    return {"mise": mise, "sqrt_mise": np.sqrt(np.maximum(mise, 0.0)), "int_phat_sq": sq, "int_phat_p0": cross,
            "mean_lineage_variance": mw, "coalescence_probability": coal, "bandwidth": np.sqrt(h2)}


def fu_one_shot_mise(n: ArrayLike, bandwidth: ArrayLike, sigma: ArrayLike = 1.0, dim: int = 1):
    """MISE of a Gaussian KDE on ``n`` i.i.d. ``N(0, sigma^2 I_d)`` points (Marron & Wand 1992, normal case).

    ``MISE = f(2h^2)/n + (1 - 1/n) f(2h^2 + 2 sigma^2) - 2 f(h^2 + 2 sigma^2) + f(2 sigma^2)``,
    ``f(v) = (2 pi v)^{-d/2}``. Pure ``jax.numpy``-compatible arithmetic (works under ``jit``/``vmap``
    when given arrays).
    """
    xp = np if all(isinstance(x, (int, float, np.ndarray, np.number)) for x in (n, bandwidth, sigma)) else jax.numpy
    h2, s2 = xp.asarray(bandwidth) ** 2, xp.asarray(sigma) ** 2

    def f(v):
        return (2 * math.pi * v) ** (-dim / 2)

    return f(2 * h2) / n + (1 - 1 / n) * f(2 * h2 + 2 * s2) - 2 * f(h2 + 2 * s2) + f(2 * s2)


def fu_stability_bound(config: FuKDEConfig) -> np.ndarray:
    """``(G + 1,)`` upper bound on ``sqrt(MISE_i)`` for ``mixing="previous"`` [DERIVED; Fu-style stability].

    Given generation ``i - 1``, the training points of generation ``i`` are i.i.d. from
    ``q = alpha p0 + (1 - alpha) p_hat_{i-1}``, so ``E[p_hat_i | F_{i-1}] - p0 = (p0 * phi_h - p0) +
    (1 - alpha)(p_hat_{i-1} - p0) * phi_h``; the fluctuation of ``p_hat_i`` about it is orthogonal to it
    with ``E||.||^2 <= f(2 h^2)/n_i``, and convolution with ``phi_h`` is an L2 contraction. By Minkowski,
    ``e_i^2 <= f(2 h^2)/n_i + (b + (1 - alpha) e_{i-1})^2`` with ``e_i = sqrt(MISE_i)``,
    ``b = ||p0 * phi_h - p0||_{L2}`` (``b^2 = f(2 sigma^2 + 2 h^2) - 2 f(2 sigma^2 + h^2) + f(2 sigma^2)``)
    and ``e_0`` the exact one-shot value. This is the L2 analogue of Fu et al.'s ``O((1 - alpha)^i)``
    memory of the initial error: the bound approaches its fixed point (``O(1/alpha)`` times the per-step
    error) geometrically with ratio ``-> 1 - alpha``. Needs a constant bandwidth.
    """
    config.validate()
    if config.mixing != "previous":
        raise ValueError(f"fu_stability_bound is derived for mixing='previous', got {config.mixing!r}")
    h = fu_bandwidths(config)
    if not np.allclose(h, h[0]):
        raise ValueError("fu_stability_bound needs a constant bandwidth (equal n_i or bandwidth_exponent = 0)")
    d, s2, h2 = config.dim, float(config.sigma) ** 2, float(h[0]) ** 2
    n = config.sample_sizes.astype(np.float64)
    a = float(config.real_fraction)
    b = math.sqrt(max(_f(2 * s2 + 2 * h2, d) - 2 * _f(2 * s2 + h2, d) + _f(2 * s2, d), 0.0))
    out = np.zeros(config.n_generations + 1)
    out[0] = math.sqrt(fu_one_shot_mise(int(n[0]), float(h[0]), float(config.sigma), d))
    for i in range(1, out.size):
        out[i] = math.sqrt(_f(2 * h2, d) / n[i] + (b + (1 - a) * out[i - 1]) ** 2)
    return out
