"""Settings every process of a batch job needs."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_thread_per_process() -> None:
    """Parallelism comes from processes. BLAS and OpenMP threads on top of them fight over
    the cores: KeyBERT's small matrix products and the tag ranker ran several times slower
    with their default thread pools on a 2-core machine."""
    threadpool_limits(limits=1)
