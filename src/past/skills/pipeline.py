"""Overlap reading, arithmetic and writing.

On a small CPU machine the engine's time is split between the kernel (reads from the page cache, and
writes, which cost as much CPU as a copy) and elementwise arithmetic. Worker threads read, combine and
write blocks; numpy's elementwise loops and the writes release the GIL. Parallelism comes from the
blocks, each worker's arithmetic being single-threaded.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, window: int = 4) -> Iterator[R]:
    """fn over items on `workers` threads, results yielded in order, at most `window` in flight.

    The window bounds memory (each result is a block) whatever the number of items. An exception in
    fn is raised here, at its item; pending work is cancelled.
    """
    pending: deque[Future] = deque()
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="past-block") as pool:
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


_local = threading.local()


def scratch(role: str, numel: int, dtype: np.dtype) -> np.ndarray:
    """A per-thread reusable buffer of at least `numel` elements.

    Allocating a fresh multi-MB array per block made the kernel zero new pages for every block
    (glibc returns large blocks to the OS on free): 3x the time of the arithmetic itself.
    """
    buffers = _local.__dict__.setdefault("buffers", {})
    buf = buffers.get((role, dtype))
    if buf is None or buf.size < numel:
        buf = buffers[(role, dtype)] = np.empty(numel, dtype=dtype)
    return buf[:numel]
