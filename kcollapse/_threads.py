"""Keep the LAPACK that JAX's CPU backend calls single-threaded.

On CPU, JAX's ``eigh``/``cholesky``/``triangular_solve`` custom calls run SciPy's bundled
OpenBLAS *from inside XLA's own thread pool*. Nested thread pools oversubscribe the cores, and on
jax 0.10.2 runs under CPU contention hung (7 of 8 with OpenBLAS threaded, 0 of 8 with one thread
per call). The root cause of those hangs was later found to be jaxlib 0.10's own nested batch map
over XLA's pool (see benchmarks/README.md, "Stalls"; jax 0.10.x is excluded by the package
requirements); keeping OpenBLAS single-threaded inside XLA's pool remains the safe choice.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` only when it is loaded, so this must run before SciPy's
LAPACK is first imported (JAX imports it lazily, at the first linear-algebra call). The variable is
set only for that import and restored afterwards, so NumPy's own BLAS (already loaded) and later
child processes are unaffected. If SciPy's LAPACK is already loaded, threadpoolctl (when
installed) limits it at run time instead. Set ``KCOLLAPSE_LAPACK_THREADS`` to override (``0``:
leave OpenBLAS alone).
"""

from __future__ import annotations

import os
import sys


def _limit_lapack_threads() -> None:
    n = os.environ.get("KCOLLAPSE_LAPACK_THREADS", "1")
    if n == "0":
        return
    if "scipy.linalg" not in sys.modules:
        saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS",)}
        os.environ["OPENBLAS_NUM_THREADS"] = n
        try:
            import scipy.linalg  # noqa: F401 - loads SciPy's OpenBLAS with n threads
        except ImportError:  # pragma: no cover - jax requires scipy
            pass
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return
    try:  # already loaded: limit at run time if threadpoolctl is available
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(n), user_api="blas")
    except Exception:  # noqa: BLE001 - best effort
        pass
