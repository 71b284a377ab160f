"""Kernel density estimators refit on their own samples (shared/THEORY.md §7, Kazdan et al. Theorems 5-7).

A Gaussian-kernel KDE with bandwidth ``h`` is fit on ``n`` real samples from ``N(mu, sigma^2)``; every
generation draws ``n`` samples from the current KDE and refits under ``replace`` (new samples only),
``accumulate`` (all samples so far) or ``subsample`` (``n`` of all samples so far; a fixed budget).

kcollapse's exact results (docs/notes/kde.md): the genealogy-depth law of a training point gives
the expected KDE as a Gaussian mixture (replace: ``N(mu, sigma^2 + (t+1) h^2)``); the KDE's mean and
variance follow closed linear recursions; the expected test NLL is bracketed by two Jensen bounds.
Replace: the KDE keeps a bounded width while its centre random-walks (the test NLL diverges);
accumulate: the spread grows like ``h^2 ln t`` (NLL nearly flat); subsample: in between.

Fu et al. (ICML 2024, 2402.11778) setting (``FuKDEConfig``): d-dimensional truth, each training point
of generation ``i >= 1`` real with probability ``alpha`` or drawn from an earlier generation's KDE; the
expected squared L2 error is exact (``fu_kde_theory``, lineage dynamic programme) and the simulator
(``simulate_fu_kde``) records the exact per-chain ISE and an unbiased Monte-Carlo TV.

Example:
  >>> import jax
  >>> from kcollapse import kde
  >>> cfg = kde.KDEConfig(samples_per_generation=20, n_generations=20, mode="replace", bandwidth=0.5)
  >>> th = kde.kde_moments(cfg, [0, 5, 20])
  >>> sim = kde.simulate_kde(jax.random.key(0), cfg, [0, 5, 20], n_chains=64)
  >>> rows, summary = kde.compare_kde(th, sim)
"""

from ._compare import compare_kde as compare_kde
from ._config import MODES as MODES
from ._config import KDEConfig as KDEConfig
from ._fu import FU_MIXINGS as FU_MIXINGS
from ._fu import FuKDEConfig as FuKDEConfig
from ._fu import fu_bandwidths as fu_bandwidths
from ._fu import fu_kde_theory as fu_kde_theory
from ._fu import fu_lineage_laws as fu_lineage_laws
from ._fu import fu_mixing_weights as fu_mixing_weights
from ._fu import fu_one_shot_mise as fu_one_shot_mise
from ._fu import fu_stability_bound as fu_stability_bound
from ._fu_simulate import FuKDESimulation as FuKDESimulation
from ._fu_simulate import simulate_fu_kde as simulate_fu_kde
from ._simulate import KDESimulation as KDESimulation
from ._simulate import simulate_kde as simulate_kde
from ._theory import depth_pmf as depth_pmf
from ._theory import kde_moments as kde_moments
from ._theory import mean_depth as mean_depth
from ._theory import replace_closed_forms as replace_closed_forms

__all__ = [
    "FU_MIXINGS",
    "FuKDEConfig",
    "FuKDESimulation",
    "KDEConfig",
    "KDESimulation",
    "MODES",
    "compare_kde",
    "depth_pmf",
    "fu_bandwidths",
    "fu_kde_theory",
    "fu_lineage_laws",
    "fu_mixing_weights",
    "fu_one_shot_mise",
    "fu_stability_bound",
    "kde_moments",
    "mean_depth",
    "replace_closed_forms",
    "simulate_fu_kde",
    "simulate_kde",
]
