"""Several processes of one step (`train.launcher`: torchrun, accelerate launch): who writes, and who waits.

Under a launcher every process runs the same stage, and they share its folders. Training is collective (each
process trains its share of the global batch and the gradients are averaged); everything else has one doer:
the main process (global rank 0) alone creates, saves, publishes, evaluates and writes metrics, and the
others wait at a barrier until it is done (`on_main`), so that every process then reads the same files.

The process group is created first thing (`start`, called by every stage and launched step before any
model loads): FSDP's loading on rank 0 alone and ZeRO-3's partitioned loading apply only when it exists.
A process that fails ends the group: torchrun (which `accelerate launch` uses for several processes) stops
the others, so a barrier never waits for a process that has died.

With one process (`python`, the default) every function here is a no-op and `on_main` just calls.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Callable, TypeVar

T = TypeVar("T")

# The main process may evaluate or save a 70B model while the others wait at a barrier: far longer than
# torch's default collective timeout (10 minutes for NCCL). A process that dies ends the group anyway.
BARRIER_TIMEOUT = timedelta(hours=3)


def world_size() -> int:
    """How many processes run this step (torchrun and accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process is the one that writes (global rank 0)."""
    return rank() == 0


def start() -> None:
    """Create the process group of a launched step (gloo on CPU, NCCL on GPUs, as accelerate chooses), before
    anything loads; the trainers reuse it. With ZeRO-3 also tell transformers, so models load partitioned."""
    if world_size() == 1:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available(), timeout=BARRIER_TIMEOUT)  # cpu: accelerate's gloo group
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        _zero3_loading()


def _zero3_loading() -> None:
    """What transformers' TrainingArguments does under `accelerate launch` with DeepSpeed, done before the
    first `from_pretrained` instead of at the trainer's creation: with ZeRO-3, weights load partitioned."""
    from accelerate.utils import DeepSpeedPlugin

    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(os.environ.get("ACCELERATE_MIXED_PRECISION", "no"))
    plugin.set_deepspeed_weakref()


def barrier() -> None:
    """Every process waits here until all have arrived."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def on_main(fn: Callable[..., T], *args, **kwargs) -> T | None:
    """`fn(*args, **kwargs)` on the main process alone, then a barrier: what it wrote is there for every
    process afterwards. Returns fn's result on the main process, None on the others."""
    result = fn(*args, **kwargs) if is_main() else None
    barrier()
    return result


def from_main(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` computed on the main process and handed to every process (a small picklable
    value: a path, a decision), so that all take the same branch."""
    value = fn(*args, **kwargs) if is_main() else None
    if world_size() == 1:
        return value
    import torch.distributed

    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
