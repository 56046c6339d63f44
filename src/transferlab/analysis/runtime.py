"""Threads for analyses: torch and the numpy/scipy BLAS pools capped together.

numpy's BLAS (OpenBLAS) starts one thread per core. On the shared 2-core machine a logistic-regression
probe ran 90× slower with 2 BLAS threads than with 1 when the other core was busy (44 s vs 0.48 s for
five fits), the same oversubscription that makes transferlab train on 1 torch thread by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..engine.runtime import resolve_threads, set_threads


@contextmanager
def analysis_threads(threads: int | None = None) -> Iterator[int]:
    """Run the body with `threads` torch and BLAS threads (default: --threads / $TRANSFERLAB_THREADS / 1)."""
    from threadpoolctl import threadpool_limits

    n = resolve_threads(threads)
    set_threads(n)
    with threadpool_limits(limits=n):
        yield n
