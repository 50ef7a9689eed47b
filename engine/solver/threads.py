"""Keep BLAS single-threaded while the solver runs.

The solver's dense work is tiny (6×6 element blocks, Krylov dot products); BLAS thread pools
only spin against each other and against the data generator's worker processes. Measured on a
busy 2-core machine, multi-threaded OpenBLAS made a step 4× slower in CPU time and far more in
wall time.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def single_threaded_blas() -> threadpool_limits:
    """A context manager (also usable as a plain call in a worker process) limiting BLAS to 1."""
    return threadpool_limits(limits=1, user_api="blas")
