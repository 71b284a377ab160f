"""The iterated-relabelling (model-collapse) chain simulator.

See :class:`ChainConfig` for the protocol and :func:`simulate_chain` for the driver.
"""

from ._chain import SeedOutput as SeedOutput
from ._chain import run_seed as run_seed
from ._chain import stage_keys as stage_keys
from ._config import DESIGNS as DESIGNS
from ._config import MODES as MODES
from ._config import ChainConfig as ChainConfig
from ._driver import SimulationResult as SimulationResult
from ._driver import merge_results as merge_results
from ._driver import seed_keys as seed_keys
from ._driver import simulate_chain as simulate_chain

__all__ = [
    "DESIGNS",
    "MODES",
    "ChainConfig",
    "SeedOutput",
    "SimulationResult",
    "merge_results",
    "run_seed",
    "seed_keys",
    "simulate_chain",
    "stage_keys",
]

# The chain in dual (kernel) form on real inputs (kcollapse.simulate._kernel_chain).
from ._kernel_chain import SAMPLINGS as SAMPLINGS  # noqa: E402
from ._kernel_chain import KernelData as KernelData  # noqa: E402
from ._kernel_chain import adaptive_ridge as adaptive_ridge  # noqa: E402
from ._kernel_chain import b_exponent as b_exponent  # noqa: E402
from ._kernel_chain import run_kernel_seed as run_kernel_seed  # noqa: E402
from ._kernel_chain import simulate_kernel_chain as simulate_kernel_chain  # noqa: E402

__all__ += ["SAMPLINGS", "KernelData", "adaptive_ridge", "b_exponent", "run_kernel_seed", "simulate_kernel_chain"]
