"""Helpers shared by the kcollapse benchmarks (opt-in; not part of the test-suite).

Nothing here imports JAX at module level: the orchestrating process stays light, and JAX work is
done in fresh worker subprocesses (so start-up and compilation can be timed from outside, and a
stuck worker can be detected and retried instead of hanging the whole benchmark).
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def host_info() -> dict[str, Any]:
    """Machine facts that do not need JAX."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
    except ImportError:
        info["sklearn"] = None
    return info


def sem(x: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0 (``std(ddof=1)/sqrt(n)``)."""
    n = x.shape[0]
    if n < 2:
        return np.full(x.shape[1:], np.nan)
    return x.std(axis=0, ddof=1) / math.sqrt(n)


def max_abs_z(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sample z of the per-cell means of per-seed arrays ``a`` and ``b`` (seeds first).

    ``z = (mean_a - mean_b) / sqrt(sem_a^2 + sem_b^2)`` per cell; returns the max |z|, the number
    of cells, and the max relative difference of the means.
    """
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    z = (ma - mb) / np.sqrt(sem(a) ** 2 + sem(b) ** 2)
    return {
        "max_abs_z": float(np.nanmax(np.abs(z))),
        "cells": int(z.size),
        "frac_cells_abs_z_gt_3": float(np.mean(np.abs(z) > 3)),
        "max_rel_diff_of_means": float(np.max(np.abs(ma - mb) / np.abs(mb))),
    }


def write_json_atomic(path: Path, obj: Any) -> None:
    """Atomic JSON write, through the library's own writer (non-finite floats become null)."""
    from kcollapse import _io

    _io.atomic_write_text(str(path), _io.dumps(obj) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    from kcollapse import _io

    _io.atomic_write_text(str(path), text)


def write_report(out_dir: Path, name: str, stamp: str, quick: bool, report: dict, table: str) -> Path:
    """``<name>_<stamp>.json``, ``<name>_latest.md`` and an appended ``<name>_history.md`` (``_quick`` variants)."""
    sfx = "_quick" if quick else ""
    report["markdown"] = table
    out_json = out_dir / f"{name}_{stamp}{sfx}.json"
    write_json_atomic(out_json, report)
    write_text_atomic(out_dir / f"{name}_latest{sfx}.md", table)
    with open(out_dir / f"{name}_history{sfx}.md", "a") as f:
        f.write(table + "\n")
    print(table)
    print(f"wrote {out_json}", file=sys.stderr)
    return out_json


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "–"
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def run_timed_subprocess(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float, retries: int = 1
) -> dict[str, Any]:
    """Run ``argv`` in a fresh process, timed from outside (wall clock, start-up included).

    A run that exceeds ``timeout`` is killed and retried up to ``retries`` times; the number of
    such stuck runs is reported (see benchmarks/README.md on the XLA/OpenBLAS stall).
    """
    stuck = 0
    for _attempt in range(retries + 1):
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            stuck += 1
            continue
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(
                f"worker failed (exit {proc.returncode}): {' '.join(argv[:4])} ...\n{proc.stderr[-4000:]}"
            )
        return {"wall_s": wall, "stuck_runs": stuck, "stdout": proc.stdout, "stderr": proc.stderr}
    raise RuntimeError(
        f"worker did not finish within {timeout:.0f} s in {retries + 1} attempts (stuck runs: {stuck}); "
        f"see benchmarks/README.md, 'Known issue: stalls'"
    )


def python_exe() -> str:
    return sys.executable
