"""Figures from results. Plotting never computes: it takes arrays/results and returns figures.

matplotlib is imported lazily (``import kcollapse`` stays light) with the non-interactive Agg
backend unless a backend is already chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_error_vs_generation", "plot_error_vs_ridge", "save_figure"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo") and "inline" not in matplotlib.get_backend():
        try:
            matplotlib.use("Agg")
        except Exception:  # noqa: BLE001 - keep whatever backend the user set
            pass
    import matplotlib.pyplot as plt

    return plt


def plot_error_vs_generation(
    generations: np.ndarray,
    mean: np.ndarray,
    sem: np.ndarray,
    *,
    theory: np.ndarray | None = None,
    theory_label: str = "theory",
    label: str = "simulation",
    ax: Any = None,
    title: str | None = None,
):
    """Test error vs generation ``n``: simulation as markers with ±1 SEM bars, theory as a line.

    Args:
      generations: ``(k,)`` generation numbers.
      mean, sem: ``(k,)`` simulated mean test error and its standard error.
      theory: optional ``(k,)`` analytic values.

    Returns:
      The matplotlib ``Figure``.
    """
    plt = _plt()
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    ax.errorbar(generations, mean, yerr=sem, fmt="o", ms=4, capsize=2, label=f"{label} (±1 SEM)")
    if theory is not None:
        ax.plot(generations, theory, "-", lw=1.5, label=theory_label)
    ax.set_xlabel("generation n")
    ax.set_ylabel(r"test error $\|\hat w - w_0\|_\Sigma^2$")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_error_vs_ridge(
    ridges: np.ndarray,
    generations: Sequence[int],
    mean: np.ndarray,
    sem: np.ndarray,
    *,
    theory: np.ndarray | None = None,
    ax: Any = None,
    title: str | None = None,
):
    """Test error vs ridge, one curve per generation (log-log), simulation ± SEM, theory as lines.

    Args:
      ridges: ``(r,)`` positive ridge values.
      generations: the generations ``n`` of the rows of ``mean``.
      mean, sem: ``(len(generations), r)``.
      theory: optional ``(len(generations), r)``.
    """
    plt = _plt()
    fig = ax.figure if ax is not None else plt.figure(figsize=(5, 4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, n in enumerate(generations):
        col = colors[i % len(colors)]
        ax.errorbar(ridges, mean[i], yerr=sem[i], fmt="o", ms=3, capsize=2, color=col, label=f"n = {n}")
        if theory is not None:
            ax.plot(ridges, theory[i], "-", color=col, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"ridge $\lambda$")
    ax.set_ylabel(r"test error $\|\hat w - w_0\|_\Sigma^2$")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Any, path: str, *, dpi: int = 150) -> str:
    """Save atomically (render to memory, then replace) and close the figure; returns the path."""
    import io

    from ._io import atomic_write_bytes

    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    _plt().close(fig)
    return path
