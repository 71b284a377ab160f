"""kcollapse: a JAX-accelerated theory toolkit for model-collapse scaling laws in (kernel) ridge regression.

Conventions (defined once in :mod:`kcollapse._conventions`): ridge
``w = (X^T X/T + ridge I)^{-1} X^T y/T`` (ridge 0 = min-norm least squares); test error
``||w_hat - w0||_Sigma^2``; teacher normalised to ``||w0||_Sigma^2 = 1``.

kcollapse never changes JAX's global configuration: call
``jax.config.update("jax_enable_x64", True)`` for float64 (the CLI and the test-suite do).
"""

from ._threads import _limit_lapack_threads

_limit_lapack_threads()
del _limit_lapack_threads

from . import data as data  # noqa: E402
from . import datasets as datasets  # noqa: E402
from . import diffusion as diffusion  # noqa: E402
from . import distributed as distributed  # noqa: E402
from . import gaussian as gaussian  # noqa: E402
from . import kde as kde  # noqa: E402
from . import kernels as kernels  # noqa: E402
from . import optimize as optimize  # noqa: E402
from . import pruning as pruning  # noqa: E402
from . import scaling as scaling  # noqa: E402
from . import solvers as solvers  # noqa: E402
from . import spectra as spectra  # noqa: E402
from . import strong as strong  # noqa: E402
from . import tails as tails  # noqa: E402
from . import theory as theory  # noqa: E402
from ._conventions import CONVENTIONS as CONVENTIONS  # noqa: E402
from ._conventions import test_error as test_error  # noqa: E402
from .simulate import ChainConfig as ChainConfig  # noqa: E402
from .simulate import SimulationResult as SimulationResult  # noqa: E402
from .simulate import simulate_chain as simulate_chain  # noqa: E402
from .spectra import Spectrum as Spectrum  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "ChainConfig",
    "SimulationResult",
    "Spectrum",
    "data",
    "datasets",
    "diffusion",
    "distributed",
    "gaussian",
    "kde",
    "kernels",
    "optimize",
    "pruning",
    "scaling",
    "simulate_chain",
    "solvers",
    "spectra",
    "strong",
    "tails",
    "test_error",
    "theory",
]
