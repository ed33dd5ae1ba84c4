"""Preemption (SIGTERM), written once: a step stops where it can resume, and never half-publishes.

A preempted machine gets SIGTERM, then SIGKILL after a grace period. Inside `preemptible()` (every DVC stage
runs in one, and so does every training loop) SIGTERM raises `Preempted` in the main thread, the way Ctrl-C
raises KeyboardInterrupt: the temporary folders the step was filling are removed on the way out and the
process exits non-zero (`EXIT_CODE`), so neither DVC nor Prefect takes the step as done.

Code that must not be cut short runs in `deferred()`: there SIGTERM only sets a flag (`requested()`), and
`Preempted` is raised when the outermost deferred block ends. A training loop runs deferred: its callback
saves a checkpoint at the end of the current optimizer step and stops (`past.training.checkpoints`); a
publishing rename pair runs deferred, so a signal never lands between its two renames.

Signals reach the main thread only: elsewhere (a worker thread of a flow) nothing is installed, and SIGTERM
does what it did before (the process ends; the next run resumes from the last periodic checkpoint).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class Preempted(BaseException):
    """SIGTERM: the step stopped (at a checkpoint where it trains) and must be run again. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way swallows it."""


class _State:
    requested = False  # a SIGTERM arrived
    depth = 0  # nesting of deferred() blocks


_STATE = _State()


def _on_sigterm(signum, frame) -> None:
    _STATE.requested = True
    if _STATE.depth == 0:
        raise Preempted("SIGTERM: stopped; run the step again to resume it")


def requested() -> bool:
    """Whether a SIGTERM arrived (inside `preemptible()`)."""
    return _STATE.requested


@contextmanager
def preemptible() -> Iterator[None]:
    """SIGTERM raises `Preempted` in this block (deferred ones excepted); the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    outermost = previous is not _on_sigterm
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if outermost:  # a request is answered once: after the block, no deferred block raises for it
            _STATE.requested = False


@contextmanager
def deferred() -> Iterator[None]:
    """A block SIGTERM does not interrupt: a request made meanwhile raises `Preempted` when it ends."""
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
    if _STATE.depth == 0 and _STATE.requested:
        raise Preempted("SIGTERM: stopped at a checkpoint; run the step again to resume it")
