"""How many threads a task's computation gets (PyTorch's intra-op pool, OpenCV's):
the cores this worker may run on (its CPU affinity) divided among the tasks it runs
at once (its concurrency), at least one; WORKER_COMPUTE_THREADS overrides.

Without this every task takes every core: two folds on a 2-core worker run four
threads, and beside any other busy process PyTorch's threads wait on each other
at every step (a tiny run went from 6 s alone to 125 s beside one busy process).
OpenMP's waiting threads also sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE,
set by ``config/celery.py`` before PyTorch loads), so a core shared with other
work is not burnt waiting.

Set in each pool process (``worker_process_init``) and, for the solo and threads
pools, in the worker's main process (``worker_init``).
"""

from __future__ import annotations

import logging
import os
import sys

from celery.signals import worker_init, worker_process_init

logger = logging.getLogger(__name__)

_CONCURRENCY_ENV = "SPERMGRADE_WORKER_CONCURRENCY"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def compute_threads(*, concurrency: int, cores: int, override: int = 0) -> int:
    if override > 0:
        return override
    return max(1, cores // max(1, concurrency))


def threads_apply(n: int, *, load: bool = False) -> None:
    """PyTorch and OpenCV get ``n`` threads: set now in whichever is loaded (both,
    with ``load``), and through OMP_NUM_THREADS for a PyTorch loaded later in
    this process. A prefork pool process never loads them here: it must be up
    within billiard's start-up timeout (4 s), and importing PyTorch on a loaded
    machine takes longer. The worker's main process does (solo and threads
    pools), before it takes any task: importing PyTorch in a task's thread while
    the worker shuts down can hold the import lock its shutdown needs."""
    if load:
        import cv2  # noqa: F401
        import torch  # noqa: F401
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(n)


def _configured(concurrency: int, *, load: bool = False) -> int:
    from django.conf import settings

    n = compute_threads(
        concurrency=concurrency,
        cores=available_cores(),
        override=settings.WORKER_COMPUTE_THREADS,
    )
    threads_apply(n, load=load)
    return n


@worker_init.connect
def _main_process(sender=None, **_: object) -> None:
    pool = str(getattr(sender, "pool_cls", "") or "").lower()
    try:
        concurrency = int(getattr(sender, "concurrency", 0) or 1)
    except (TypeError, ValueError):  # "auto": resolved later, up to the cores
        concurrency = available_cores()
    if "solo" in pool:
        concurrency = 1  # one task at a time, whatever --concurrency says
    os.environ[_CONCURRENCY_ENV] = str(concurrency)  # inherited by pool processes
    if "prefork" in pool:
        return  # the pool processes set their own
    n = _configured(concurrency, load=True)
    logger.info(
        "compute threads per task: %d (%d cores, concurrency %d)",
        n,
        available_cores(),
        concurrency,
    )


@worker_process_init.connect
def _pool_process(**_: object) -> None:
    concurrency = int(os.environ.get(_CONCURRENCY_ENV, "1"))
    n = _configured(concurrency)
    logger.info(
        "compute threads per task: %d (%d cores, concurrency %d, pool process)",
        n,
        available_cores(),
        concurrency,
    )
