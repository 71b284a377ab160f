"""Boundary validation with messages that name the argument, the value, what is allowed and the fix.

Everything here runs on concrete (non-traced) Python/NumPy values before any arithmetic
(STYLE.md practice 10). Inside jit, numerical trouble is reported as data instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_choice",
    "check_finite_array",
    "check_fraction",
    "check_int",
    "check_nonneg_float",
    "check_nonneg_array",
    "check_positive_float",
]


def _is_traced(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """An integer ``>= minimum``; bools and non-integral floats are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def check_nonneg_float(name: str, value: Any) -> float:
    """A finite real ``>= 0`` (noise levels, ridge values)."""
    out = _as_float(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def check_positive_float(name: str, value: Any) -> float:
    """A finite real ``> 0``."""
    out = _as_float(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def check_fraction(name: str, value: Any) -> float:
    """A finite real in ``[0, 1]``."""
    out = _as_float(name, value)
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {out}")
    return out


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_finite_array(name: str, value: Any, *, ndim: int | None = None, length: int | None = None) -> np.ndarray | Any:
    """A finite real array of the given rank/length. Traced values pass through unchecked."""
    if _is_traced(value):
        return value
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - any conversion failure is a type error for the user
        raise TypeError(f"{name} must be a real array, got {type(value).__name__}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if length is not None and arr.shape[-1] != length:
        raise ValueError(f"{name} must have length {length} (one entry per eigen-direction), got {arr.shape[-1]}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {arr.size - int(np.isfinite(arr).sum())} non-finite entries")
    return arr


def check_nonneg_array(name: str, value: Any, *, ndim: int | None = None, positive: bool = False) -> np.ndarray | Any:
    """A finite, non-negative (or strictly positive) real array."""
    arr = check_finite_array(name, value, ndim=ndim)
    if _is_traced(arr):
        return arr
    if positive and arr.size and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 everywhere, got minimum {arr.min()}")
    if arr.size and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 everywhere, got minimum {arr.min()}")
    return arr
