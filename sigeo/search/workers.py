"""Scoring several candidates at once: a thread pool and the job's thread and memory settings."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

from ..space.choice import Architecture

T = TypeVar("T")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


class Workers:
    """Scores candidates ``count`` at a time in threads; results come back in the candidates' order.

    With ``cost`` (a candidate's relative scoring cost) the costliest start first, so that the last
    candidates of a batch do not leave workers idle while one finishes a large subnet.
    """

    def __init__(self, count: int, cost: Callable[[Architecture], float] | None = None) -> None:
        self.count, self.cost = count, cost
        self._pool = ThreadPoolExecutor(count) if count > 1 else None

    def map(self, fn: Callable[[Architecture], T], archs: Sequence[Architecture]) -> Iterator[T]:
        if self._pool is None:
            return map(fn, archs)
        order = sorted(range(len(archs)), key=lambda i: -self.cost(archs[i])) if self.cost else range(len(archs))
        futures = {i: self._pool.submit(fn, archs[i]) for i in order}
        return (futures[i].result() for i in range(len(archs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


@contextmanager
def scoring_workers(device: torch.device, cost: Callable[[Architecture], float] | None = None) -> Iterator[Workers]:
    """The workers a job scores with: on CPU one per thread the job has, each single-threaded.

    A small subnet's operators are too small to keep several intra-op threads busy, so candidates
    side by side use the cores better than one candidate on all of them (bench/search.py compares
    the two layouts); and a single-threaded candidate's scores do not depend on the job's thread
    count, so records are the same whatever ``--cores``. On a GPU, one at a time. On CPU the process
    also keeps the memory it frees (see :func:`_keep_freed_memory`).
    """
    threads = torch.get_num_threads()
    on_gpu = device.type != "cpu"
    if not on_gpu:
        _keep_freed_memory()
        torch.set_num_threads(1)
    workers = Workers(1 if on_gpu else threads, cost)
    try:
        yield workers
    finally:
        workers.close()
        torch.set_num_threads(threads)


def _keep_freed_memory() -> None:
    """Have glibc keep freed memory in the process rather than hand it back to the OS at once.

    Scoring a candidate allocates and frees hundreds of MB of activations and gradients. With the
    default malloc settings each big block is a fresh mmap, handed back when freed, whose pages must
    fault in again for the next candidate; that system time is a large share of a small candidate's
    cost. Raising the trim and mmap thresholds lets the next candidate reuse the pages instead.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return  # not glibc: nothing to tune
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
