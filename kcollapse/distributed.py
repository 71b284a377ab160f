"""Sweeps across processes (hosts) with ``jax.distributed``.

Launch one process per host (or several on one machine), each with the same arguments plus its
process id::

    # host 0 (also the coordinator)                # host 1
    kcollapse simulate --distributed \\             kcollapse simulate --distributed \\
      --coordinator 10.0.0.1:12345 \\                 --coordinator 10.0.0.1:12345 \\
      --num-processes 2 --process-id 0 ...           --num-processes 2 --process-id 1 ...

or set ``KCOLLAPSE_COORDINATOR``, ``KCOLLAPSE_NUM_PROCESSES`` and ``KCOLLAPSE_PROCESS_ID`` in the
environment (cluster launchers that ``jax.distributed.initialize()`` detects by itself — SLURM,
Open MPI, Kubernetes — need none of them).

Every process simulates a contiguous share of the seeds on its own devices (seed ``i`` always uses
``fold_in(key, i)``, so the numbers do not depend on how many processes or devices there are), the
per-seed results are gathered to every process with ``process_allgather`` (gloo collectives on CPU),
and only process 0 writes output. Tested with 2 processes x 2 CPU devices on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from . import _checks
from .simulate._driver import SimulationResult
from .simulate._driver import simulate_chain as _simulate_local

__all__ = ["initialize", "is_main_process", "simulate_chain"]

_ENV = ("KCOLLAPSE_COORDINATOR", "KCOLLAPSE_NUM_PROCESSES", "KCOLLAPSE_PROCESS_ID")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = 300) -> None:
    """Join the distributed job (call once per process, before any other JAX call).

    Args:
      coordinator_address: ``host:port`` of process 0 (default: ``$KCOLLAPSE_COORDINATOR``, else
        JAX's cluster auto-detection).
      num_processes: number of processes (default: ``$KCOLLAPSE_NUM_PROCESSES``).
      process_id: this process, ``0 .. num_processes - 1`` (default: ``$KCOLLAPSE_PROCESS_ID``).
      timeout_s: how long to wait for the other processes.

    Raises:
      ValueError: incomplete or inconsistent arguments.
    """
    env = {k: os.environ.get(k) for k in _ENV}
    coordinator_address = coordinator_address or env["KCOLLAPSE_COORDINATOR"]
    if num_processes is None and env["KCOLLAPSE_NUM_PROCESSES"]:
        num_processes = int(env["KCOLLAPSE_NUM_PROCESSES"])
    if process_id is None and env["KCOLLAPSE_PROCESS_ID"]:
        process_id = int(env["KCOLLAPSE_PROCESS_ID"])
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "distributed launch needs all of coordinator address, number of processes and process id "
            "(--coordinator HOST:PORT --num-processes N --process-id I, or KCOLLAPSE_COORDINATOR/"
            "KCOLLAPSE_NUM_PROCESSES/KCOLLAPSE_PROCESS_ID); got only some of them"
        )
    if all(given):
        num_processes = _checks.check_int("num_processes", num_processes, minimum=1)
        process_id = _checks.check_int("process_id", process_id, minimum=0)
        if process_id >= num_processes:
            raise ValueError(f"process_id={process_id} must be < num_processes={num_processes}")
        if ":" not in str(coordinator_address):
            raise ValueError(f"coordinator address {coordinator_address!r} must be HOST:PORT, e.g. 127.0.0.1:12345")
    # CPU processes exchange results through gloo (no effect on GPU/TPU collectives).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=timeout_s)


def is_main_process() -> bool:
    """True on process 0 (the one that prints and writes results)."""
    return jax.process_index() == 0


def _share(n_seeds: int, n_proc: int, index: int) -> tuple[int, int, int]:
    """(first seed, count, padded share size) of process ``index``: contiguous, balanced."""
    per = -(-n_seeds // n_proc)
    start = min(index * per, n_seeds)
    return start, min(per, n_seeds - start), per


def simulate_chain(key: jax.Array, spectrum: Any, config: Any, ridges: Any = (0.0,), n_seeds: int = 32, *,
                   seed_offset: int = 0, **kwargs: Any) -> SimulationResult:
    """:func:`kcollapse.simulate_chain` with the seeds split over every process of the job.

    Call it on every process with the same arguments; each returns the full result (all seeds, in
    seed order), identical to a single-process run with the same key. With one process it is
    exactly :func:`kcollapse.simulate_chain`. ``kwargs`` are passed on (``batch_size``,
    ``memory_budget``, ``estimator``, ``sampler``, ``devices`` ...); ``progress`` reports this
    process's share.
    """
    n_proc, index = jax.process_count(), jax.process_index()
    n_seeds = _checks.check_int("n_seeds", n_seeds, minimum=1)
    if n_proc == 1:
        return _simulate_local(key, spectrum, config, ridges, n_seeds, seed_offset=seed_offset, **kwargs)
    from jax.experimental import multihost_utils

    start, count, per = _share(n_seeds, n_proc, index)
    # A process with no seeds of its own still runs one (discarded) so every process joins the gather.
    local = _simulate_local(key, spectrum, config, ridges, max(count, 1), seed_offset=seed_offset + min(start, n_seeds - 1),
                            **kwargs)

    def padded(a):
        a = np.asarray(a)[:count]
        pad = np.repeat(a[-1:] if count else np.zeros((1,) + a.shape[1:], a.dtype), per - count, axis=0)
        return np.concatenate([a, pad], axis=0)

    fields = {"per_seed": local.per_seed, "generator_per_seed": local.generator_per_seed,
              "seed_indices": local.seed_indices}
    if local.mc_per_seed is not None:
        fields["mc_per_seed"] = local.mc_per_seed
        fields["generator_mc_per_seed"] = local.generator_mc_per_seed
    gathered = multihost_utils.process_allgather({k: padded(v) for k, v in fields.items()})
    counts = [_share(n_seeds, n_proc, i)[1] for i in range(n_proc)]
    merged = {k: np.concatenate([np.asarray(v)[i, :counts[i]] for i in range(n_proc)]) for k, v in gathered.items()}
    stats = multihost_utils.process_allgather(np.array([local.generator_fallbacks if count else 0, count]))
    pm = local.per_mode_mean
    if pm is not None:  # seed-weighted mean of the per-mode means
        all_pm = multihost_utils.process_allgather(pm * count)
        pm = np.asarray(all_pm).sum(axis=0) / n_seeds
    return dataclasses.replace(local, generator_fallbacks=int(np.asarray(stats)[:, 0].sum()), per_mode_mean=pm,
                               **merged)
