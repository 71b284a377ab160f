"""Kernels, Gram matrices, kernel ridge regression and the kernel chain's theory.

* kernels (frozen pytrees; ``k(x, z)`` on one pair, ``k.block(X, Z)`` on sets of rows):
  :class:`Linear`, :class:`RBF`, :class:`Laplace`, :class:`Polynomial`, :class:`ArcCosine`,
  :class:`ReLUNTK`; :func:`make_kernel` builds one by its CLI name; :class:`Scaled` and
  :func:`normalized` (unit mean diagonal, so adaptive ridges mean the same for every kernel);
* :func:`gram` and :func:`kernel_matvec`: tiled under a byte budget;
* :func:`random_features` (:class:`RandomFeatures`): random Fourier / ReLU / NTK features;
* kernel ridge regression in kcollapse's normalisation (``alpha = (K + ridge T I)^{-1} y``,
  scikit-learn ``alpha = ridge T``): :func:`kernel_ridge`, :func:`kernel_ridge_path`,
  :func:`kernel_ridge_factor`;
* theory of the chain with ridge (KRR) generators from a kernel spectrum:
  :func:`kernel_chain_theory`, :func:`ridge_generator_chain`.

The kernel chain simulator is :func:`kcollapse.simulate.simulate_kernel_chain`; the empirical
kernel spectrum is :func:`kcollapse.spectra.empirical`.
"""

from ._features import RandomFeatures as RandomFeatures
from ._features import random_features as random_features
from ._functions import KERNELS as KERNELS
from ._functions import RBF as RBF
from ._functions import ArcCosine as ArcCosine
from ._functions import Kernel as Kernel
from ._functions import Laplace as Laplace
from ._functions import Linear as Linear
from ._functions import Polynomial as Polynomial
from ._functions import ReLUNTK as ReLUNTK
from ._functions import Scaled as Scaled
from ._functions import normalized as normalized
from ._functions import make_kernel as make_kernel
from ._gram import DEFAULT_MEMORY_BUDGET as DEFAULT_MEMORY_BUDGET
from ._gram import gram as gram
from ._gram import kernel_matvec as kernel_matvec
from ._krr import KernelRidgeFactor as KernelRidgeFactor
from ._krr import kernel_ridge as kernel_ridge
from ._krr import kernel_ridge_factor as kernel_ridge_factor
from ._krr import kernel_ridge_path as kernel_ridge_path
from ._theory import RIDGE_GENERATOR_CHAIN as RIDGE_GENERATOR_CHAIN
from ._theory import kernel_chain_theory as kernel_chain_theory
from ._theory import ridge_generator_chain as ridge_generator_chain

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "KERNELS",
    "RBF",
    "RIDGE_GENERATOR_CHAIN",
    "ArcCosine",
    "Kernel",
    "KernelRidgeFactor",
    "Laplace",
    "Linear",
    "Polynomial",
    "RandomFeatures",
    "ReLUNTK",
    "Scaled",
    "gram",
    "kernel_chain_theory",
    "kernel_matvec",
    "kernel_ridge",
    "kernel_ridge_factor",
    "kernel_ridge_path",
    "make_kernel",
    "normalized",
    "random_features",
    "ridge_generator_chain",
]
