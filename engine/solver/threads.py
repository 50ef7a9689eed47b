"""Keep BLAS single-threaded while the solver runs.

The solver's dense work is tiny (6×6 element blocks, Krylov dot products); BLAS thread pools
only spin against each other and against the data generator's worker processes. Measured on a
busy 2-core machine, multi-threaded OpenBLAS made a step 4× slower in CPU time and far more in
wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


def single_threaded_blas() -> threadpool_limits:
    """A context manager (also usable as a plain call in a worker process) limiting BLAS to 1."""
    return threadpool_limits(limits=1, user_api="blas")


def solver_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``fn`` over ``items`` in order, one solver run per process of ``workers`` (here if 1).

    A solver run is serial and its BLAS work too small to share, so the cores are used by running
    several at once, each single-threaded. Processes are forked: the solver's imports are already
    paid, and ``fn`` may be any module-level function.
    """
    if workers <= 1:
        with single_threaded_blas():
            return [fn(item) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=single_threaded_blas) as pool:
        return list(pool.map(fn, items))
