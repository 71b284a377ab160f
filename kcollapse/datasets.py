"""Real inputs for the kernel chain: scikit-learn's digits (embedded), MNIST files, any ``.npz``/``.csv``.

A :class:`Dataset` holds raw inputs, a clean target ``f0`` and, for classification data, the class
labels. The kernel experiment of "Model Collapse Demystified" (§6, shared/THEORY.md §2.7) uses the
**parity target** ``f0(x) = label mod 2`` (:func:`parity_target`); label noise is added by the
chain, not here. :func:`prepare` standardises the inputs (every feature centred, one global scale
so that ``E ||x||^2/p = 1``, constant features dropped, all with the *pool's* statistics) and
centres the target (KRR has no intercept), applying the pool's statistics to the test set too, so
nothing about the test set leaks into training.

Loaders:

* :func:`digits`: the 1797 real 8x8 handwritten digits shipped with scikit-learn (no download);
* :func:`load_mnist`: MNIST from files the user already has — a folder of the four IDX files
  (``train-images-idx3-ubyte[.gz]`` ...), one IDX images file (its labels file next to it), or an
  ``.npz`` with ``x_train, y_train[, x_test, y_test]`` (Keras' ``mnist.npz``) or ``X, y``;
* :func:`load_arrays`: any ``.npz`` (inputs under ``X``/``x``/``inputs``/``data``, targets under
  ``y``/``targets``/``target``/``labels``) or ``.csv`` (numeric, last column the target, optional
  header row).

Examples:
  >>> import kcollapse as kc
  >>> ds = kc.datasets.digits()
  >>> ds.inputs.shape, sorted(set(ds.targets.tolist()))
  ((1797, 64), [0.0, 1.0])
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from typing import Any

import numpy as np

from . import _checks

__all__ = [
    "Dataset",
    "digits",
    "load_arrays",
    "load_dataset",
    "load_mnist",
    "parity_target",
    "prepare",
    "read_idx",
    "split",
    "standardize",
]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Inputs and a clean target.

    Attributes:
      inputs: ``(N, p)`` float64 inputs.
      targets: ``(N,)`` float64 clean target ``f0(x)`` (no label noise).
      labels: ``(N,)`` integer class labels, or ``None`` for regression data.
      name: short description (for output metadata).
      info: provenance and preprocessing (plain Python, JSON-serialisable).
    """

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None = None
    name: str = "data"
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        X = np.asarray(self.inputs)
        y = np.asarray(self.targets)
        if X.ndim != 2:
            raise ValueError(f"inputs must be 2-dimensional (samples, features), got shape {X.shape}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"targets must have shape ({X.shape[0]},) to match the inputs, got {y.shape}")
        if X.shape[0] < 1:
            raise ValueError("a dataset needs at least one sample")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError(f"dataset {self.name!r} has NaN or inf in its inputs or targets; clean the file first")

    @property
    def n_samples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.inputs.shape[1])

    def subset(self, index: Any, name: str | None = None) -> Dataset:
        """The rows ``index`` (an integer array or a slice)."""
        return Dataset(self.inputs[index], self.targets[index], None if self.labels is None else self.labels[index],
                       name or self.name, dict(self.info))


def parity_target(labels: Any) -> np.ndarray:
    """The paper's target ``f0 = label mod 2`` as float64 (Demystified §6, MNIST KRR experiment).

    Raises:
      ValueError: labels that are not integers.
    """
    lab = np.asarray(labels)
    if not (np.issubdtype(lab.dtype, np.integer) or np.all(np.mod(lab, 1) == 0)):
        raise ValueError("the parity target needs integer class labels (label mod 2); got non-integer labels")
    return np.mod(lab.astype(np.int64), 2).astype(np.float64)


def _with_target(X: np.ndarray, labels: np.ndarray, target: str, name: str, info: dict[str, Any]) -> Dataset:
    _checks.check_choice("target", target, ("parity", "label"))
    y = parity_target(labels) if target == "parity" else labels.astype(np.float64)
    return Dataset(X.astype(np.float64), y, labels.astype(np.int64), name, {**info, "target": target})


def digits(*, target: str = "parity") -> Dataset:
    """scikit-learn's handwritten digits: 1797 real 8x8 images (64 pixels in 0..16), no download.

    Args:
      target: ``"parity"`` (``label mod 2``, the paper's target) or ``"label"`` (the digit).

    References:
      UCI ML hand-written digits (test part), via ``sklearn.datasets.load_digits``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return _with_target(np.asarray(d.data), np.asarray(d.target), target, "digits",
                        {"source": "sklearn.datasets.load_digits", "n_classes": 10})


# --------------------------------------------------------------------------------------------
# MNIST (IDX or NPZ files the user has)
# --------------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (MNIST's format; gzip-compressed if the name ends in ``.gz``).

    Format: 2 zero bytes, a type code (``0x08`` ubyte, ``0x09`` byte, ``0x0B`` int16, ``0x0C``
    int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, then each dimension as a
    big-endian int32, then the data in row-major order.

    Raises:
      ValueError: a malformed file (the message says what is wrong).
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path!r}: unknown IDX type code 0x{code:02x}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path!r}: truncated IDX header")
    shape = struct.unpack(f">{ndim}i", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[code])
    count = int(np.prod(shape)) if ndim else 1
    body = data[4 + 4 * ndim :]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path!r}: expected {count * dtype.itemsize} data bytes for shape {shape}, found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def _labels_for(images_path: str) -> str | None:
    folder, name = os.path.split(images_path)
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if a in name:
            p = os.path.join(folder, name.replace(a, b))
            if os.path.isfile(p):
                return p
    return None


def _idx_pair(images: str, labels: str | None, which: str, target: str) -> Dataset:
    if labels is None:
        raise ValueError(f"found MNIST images {images!r} but no labels file next to it (…labels-idx1-ubyte[.gz])")
    X = read_idx(images)
    y = read_idx(labels)
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"MNIST images {X.shape} and labels {y.shape} do not match (need N images and N labels)")
    return _with_target(X.reshape(X.shape[0], -1), y, target, f"mnist-{which}", {"source": images})


def load_mnist(path: str, *, target: str = "parity") -> tuple[Dataset, Dataset | None]:
    """MNIST from files the user already has (kcollapse never downloads anything).

    Args:
      path: a folder with ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]`` and
        optionally the ``t10k-`` pair; one IDX images file (its labels file next to it); or an
        ``.npz`` with ``x_train, y_train`` (and optionally ``x_test, y_test``) or ``X, y``.
      target: ``"parity"`` (``label mod 2``, the paper's) or ``"label"``.

    Returns:
      ``(train, test)``; ``test`` is ``None`` when the files have no test part. Images are
      flattened to ``(N, 784)`` raw pixel values (standardise with :func:`prepare`).

    Raises:
      FileNotFoundError / ValueError: missing or malformed files (the message names what is missing).
    """
    if os.path.isdir(path):
        train_images = _find(path, "train-images-idx3-ubyte")
        if train_images is None:
            raise FileNotFoundError(f"no train-images-idx3-ubyte[.gz] in {path!r}")
        train = _idx_pair(train_images, _labels_for(train_images), "train", target)
        test_images = _find(path, "t10k-images-idx3-ubyte")
        test = _idx_pair(test_images, _labels_for(test_images), "test", target) if test_images else None
        return train, test
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such MNIST file or folder: {path!r}")
    if path.endswith(".npz"):
        with np.load(path) as z:
            keys = set(z.files)
            if {"x_train", "y_train"} <= keys:
                train = _with_target(np.asarray(z["x_train"]).reshape(len(z["x_train"]), -1), np.asarray(z["y_train"]),
                                     target, "mnist-train", {"source": path})
                test = None
                if {"x_test", "y_test"} <= keys:
                    test = _with_target(np.asarray(z["x_test"]).reshape(len(z["x_test"]), -1), np.asarray(z["y_test"]),
                                        target, "mnist-test", {"source": path})
                return train, test
            if {"X", "y"} <= keys:
                X = np.asarray(z["X"])
                return _with_target(X.reshape(X.shape[0], -1), np.asarray(z["y"]), target, "mnist", {"source": path}), None
            raise ValueError(f"{path!r} has arrays {sorted(keys)}; expected x_train, y_train[, x_test, y_test] or X, y")
    return _idx_pair(path, _labels_for(path), "train", target), None


# --------------------------------------------------------------------------------------------
# Generic arrays
# --------------------------------------------------------------------------------------------

_X_KEYS = ("X", "x", "inputs", "data", "features")
_Y_KEYS = ("y", "targets", "target", "labels")


def load_arrays(path: str, *, target: str = "value") -> Dataset:
    """Inputs and targets from an ``.npz`` or ``.csv`` file.

    Args:
      path: ``.npz`` with the inputs under one of ``X, x, inputs, data, features`` and the targets
        under one of ``y, targets, target, labels``; or ``.csv``/``.txt`` of numbers, one sample per
        row, the last column the target (a non-numeric first row is taken as a header).
      target: ``"value"`` (the targets as given), ``"parity"`` (``target mod 2`` of integer
        labels, the paper's target) or ``"label"`` (integer labels as numbers).

    Raises:
      FileNotFoundError / ValueError: a missing file, missing arrays, ragged or non-numeric data.
    """
    _checks.check_choice("target", target, ("value", "parity", "label"))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if path.endswith(".npz"):
        with np.load(path) as z:
            xk = next((k for k in _X_KEYS if k in z.files), None)
            yk = next((k for k in _Y_KEYS if k in z.files), None)
            if xk is None or yk is None:
                raise ValueError(f"{path!r} has arrays {sorted(z.files)}; need inputs ({'/'.join(_X_KEYS)}) and "
                                 f"targets ({'/'.join(_Y_KEYS)})")
            X, y = np.asarray(z[xk]), np.asarray(z[yk])
        X = X.reshape(X.shape[0], -1)
    else:
        delim = "," if path.endswith(".csv") else None
        try:
            data = np.loadtxt(path, delimiter=delim, ndmin=2)
        except ValueError:
            try:
                data = np.loadtxt(path, delimiter=delim, ndmin=2, skiprows=1)
            except ValueError as e:
                raise ValueError(f"cannot read {path!r} as numbers (one sample per row, last column the target): {e}") from None
        if data.shape[1] < 2:
            raise ValueError(f"{path!r} needs at least two columns (inputs..., target), got {data.shape[1]}")
        X, y = data[:, :-1], data[:, -1]
    if y.ndim != 1:
        y = np.squeeze(y)
        if y.ndim != 1:
            raise ValueError(f"targets must be one value per sample, got shape {np.shape(y)}")
    if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"{path!r}: inputs and targets must be numeric")
    name = os.path.basename(path)
    if target == "value":
        return Dataset(X.astype(np.float64), y.astype(np.float64), None, name, {"source": path, "target": "value"})
    return _with_target(X, y, target, name, {"source": path})


def load_dataset(spec: str, *, target: str | None = None) -> tuple[Dataset, Dataset | None]:
    """A dataset from a CLI-style spec: ``digits``, ``mnist:PATH``, ``npz:PATH`` or ``csv:PATH``.

    Returns:
      ``(data, test)``: ``test`` is the file's own test part (MNIST) or ``None``.
    """
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        return digits(target=target or "parity"), None
    if kind == "mnist" and path:
        return load_mnist(path, target=target or "parity")
    if kind in ("npz", "csv") and path:
        return load_arrays(path, target=target or "value"), None
    raise ValueError(f"unknown data spec {spec!r}; use digits, mnist:PATH, npz:PATH or csv:PATH")


# --------------------------------------------------------------------------------------------
# Preprocessing and splits
# --------------------------------------------------------------------------------------------


def standardize(X: Any, *, reference: Any = None, per_feature: bool = False) -> np.ndarray:
    """Centre every feature and rescale, using ``reference``'s statistics (default ``X``).

    Default (``per_feature=False``): divide by one global scale, the root mean feature variance, so
    that ``E ||x||^2 / p = 1`` and the features keep their relative sizes. ``per_feature=True``:
    z-score every feature (standard deviation 1 each). For images the global scale is the safer
    choice: z-scoring a pixel that is almost always blank turns its rare ink into values of ~40
    standard deviations (on the digits, ``||x||^2/p`` reaches 38 instead of 1.9), and kernels such
    as the polynomial one are then dominated by those few images. Features that are constant in
    ``reference`` carry no information and are dropped.
    """
    X = np.asarray(X, dtype=np.float64)
    ref = X if reference is None else np.asarray(reference, dtype=np.float64)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    keep = std > 0
    if not keep.any():
        raise ValueError("every input feature is constant; nothing to learn from")
    scale = std[keep] if per_feature else np.sqrt(np.mean(std[keep] ** 2))
    return (X[:, keep] - mean[keep]) / scale


def split(dataset: Dataset, test_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A random ``(pool, test)`` split with ``round(test_fraction N)`` test samples (``numpy`` PRNG ``seed``)."""
    frac = _checks.check_fraction("test_fraction", test_fraction)
    n = dataset.n_samples
    n_test = int(round(frac * n))
    if not 1 <= n_test < n:
        raise ValueError(f"test_fraction={frac} leaves {n_test} of {n} samples for testing; need between 1 and {n - 1}")
    perm = np.random.default_rng(seed).permutation(n)
    return dataset.subset(np.sort(perm[n_test:]), f"{dataset.name}-pool"), dataset.subset(np.sort(perm[:n_test]), f"{dataset.name}-test")


def prepare(pool: Dataset, test: Dataset | None = None, *, standardize_inputs: bool = True, per_feature: bool = False,
            center_target: bool = True, unit_target: bool = False) -> tuple[Dataset, Dataset | None]:
    """Standardise inputs and centre the target with the **pool's** statistics (applied to ``test`` too).

    Args:
      pool: the data the chain draws training points from.
      test: a held-out set, or ``None``.
      standardize_inputs: centre every feature and scale so that ``E ||x||^2/p = 1`` (constant
        features dropped; see :func:`standardize`); kernels' default bandwidths assume this (e.g.
        RBF ``gamma = 1/p``).
      per_feature: z-score every feature separately instead of one global scale.
      center_target: subtract the pool mean of the target (KRR has no intercept).
      unit_target: also divide the target by its pool standard deviation (then the null predictor
        has error ~1, kcollapse's teacher normalisation; the paper keeps the raw ``{0, 1}`` scale).

    Returns:
      ``(pool, test)`` with the preprocessing recorded in ``info``.
    """
    if test is not None and test.n_features != pool.n_features:
        raise ValueError(f"test has {test.n_features} features but the pool has {pool.n_features}")
    X, Xt = pool.inputs, None if test is None else test.inputs
    info: dict[str, Any] = {"standardized_inputs": bool(standardize_inputs), "centered_target": bool(center_target),
                            "unit_target": bool(unit_target)}
    if standardize_inputs:
        keep = pool.inputs.std(axis=0) > 0
        X = standardize(pool.inputs, per_feature=per_feature)
        Xt = None if test is None else standardize(test.inputs, reference=pool.inputs, per_feature=per_feature)
        info["input_scaling"] = "per-feature z-score" if per_feature else "centred, one global scale (E|x|^2/p = 1)"
        info["features_kept"] = int(keep.sum())
        info["features_dropped_constant"] = int((~keep).sum())
    shift = float(pool.targets.mean()) if center_target else 0.0
    scale = float(pool.targets.std()) if unit_target else 1.0
    if unit_target and not scale > 0:
        raise ValueError("unit_target: the target is constant on the pool, so it cannot be scaled to unit variance")
    info["target_shift"], info["target_scale"] = shift, scale
    y = (pool.targets - shift) / scale
    out_pool = Dataset(X, y, pool.labels, pool.name, {**pool.info, **info})
    out_test = None
    if test is not None:
        out_test = Dataset(Xt, (test.targets - shift) / scale, test.labels, test.name, {**test.info, **info})
    return out_pool, out_test
