"""Overlap reading, arithmetic and writing.

On a small CPU machine the engine's time is split between the kernel (reads from the page cache, and
writes, which cost as much CPU as a copy) and elementwise arithmetic. Worker threads read and combine
blocks, the calling thread writes them (engine.stream_combination says why one writer); numpy's elementwise
loops and the writes release the GIL. Parallelism comes from the blocks, each worker's arithmetic being
single-threaded.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


WINDOW = 4  # blocks in flight at once: bounds memory whatever the model size


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, window: int = WINDOW) -> Iterator[R]:
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


class BufferPool:
    """Byte buffers passed from the worker that fills one to the thread that writes it, then back.

    `take` blocks while all `size` buffers are out: size must exceed the blocks that can be held at once.
    """

    def __init__(self, size: int, min_bytes: int):
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._min_bytes = min_bytes
        for _ in range(size):
            self._free.put(np.empty(0, dtype=np.uint8))

    def take(self, nbytes: int) -> np.ndarray:
        buf = self._free.get()
        if buf.nbytes < nbytes:  # first use, or a block larger than usual (one very long row)
            buf = np.empty(max(nbytes, self._min_bytes), dtype=np.uint8)
        return buf

    def give(self, buf: np.ndarray) -> None:
        self._free.put(buf)
