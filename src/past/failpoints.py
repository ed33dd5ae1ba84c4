"""Named places where the fault tests kill a process for real (SIGKILL), to show that a crash there loses nothing.

`PAST_KILL_AT=name` makes the process kill itself, with SIGKILL, the first time it reaches `reached(name)`;
`name@n` the n-th time; `stage/name` only inside that DVC stage (`past.stage` sets the scope to the stage
script's name), so one `dvc repro` can be killed in the stage chosen and run through the ones before it.
A SIGKILL runs no `finally`, no `atexit` and flushes nothing, exactly what an OOM kill or a lost machine
does; the point only chooses *where*, so a test does not race the process it kills.

Unset (always, outside the fault tests), `reached` is one dictionary lookup.

The points:
    publish            files.publish: a finished artifact, just before it is renamed into place (a folder
                       replacing another one: between stepping the old one aside and renaming the new one in)
    checkpoint         a training checkpoint was saved (training.checkpoints)
    trained            a trainer finished its last step, its step not yet published (training.checkpoints)
    registry:written   registry.json written, the production symlink not yet moved
    adapt:validated, adapt:trained, adapt:injected, adapt:scored (once per score), adapt:recorded
                       the adapt flow's steps (flows/adapt.py), each once its step is done
"""

from __future__ import annotations

import os
import signal

ENV = "PAST_KILL_AT"
_state = {"scope": None, "counts": {}}


def set_scope(scope: str | None) -> None:
    """Name the DVC stage this process runs (`stage/point` specs match only inside it)."""
    _state["scope"] = scope


def reached(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    scope, _, point = point.rpartition("/")
    if point != name or (scope and scope != _state["scope"]):
        return
    counts = _state["counts"]
    counts[name] = counts.get(name, 0) + 1
    if counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
