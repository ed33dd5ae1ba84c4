"""Resumable training: checkpoints in a step's work folder, resumed exactly; SIGTERM saves and stops.

With `train.checkpoint_steps: N` (N > 0) and a work folder (`TrainingRun.work`: models/.work/<stage> for the
DVC stages, a folder under the registry for the flows), every trainer saves Hugging Face's own checkpoint
(weights, optimizer, scheduler, RNG states and the data position) every N optimizer steps into its work
folder, keeping the latest complete one, and a rerun starts from it. On CPU the resumed run ends with exactly
the weights of an uninterrupted one (tests/test_resume.py checks it bit for bit).

SIGTERM (preemption) during training: the current optimizer step finishes, a checkpoint is saved, training
stops and `Preempted` is raised (the step publishes nothing; a DVC stage exits 143). SIGKILL: the rerun
starts from the last periodic checkpoint.

A work folder belongs to its step's inputs (`open_work` keys it by a hash of params and input fingerprints):
one left by a run with other inputs is wiped, never resumed. The step removes it once its output is published.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from past import failpoints
from past.distributed import from_main
from past.files import remove_path, sha256_json, write_json_atomic
from past.preemption import deferred, preemptible, requested
from past.training.arguments import TrainingRun, checkpointing
from past.training.tracking import CURVES, LiveCallback

INPUTS = "inputs.json"  # in a work folder: the key of the inputs it was made for
TRAINER_STATE = "trainer_state.json"  # Hugging Face writes it last: a checkpoint without it is incomplete


def within(run: TrainingRun, name: str) -> TrainingRun:
    """The run with its work folder `name` inside the given one: one per trainer of a multi-trainer step."""
    return replace(run, work=Path(run.work) / name) if run.work is not None else run


@contextmanager
def output_dir(run: TrainingRun, prefix: str) -> Iterator[Path]:
    """Where a trainer writes: the run's work folder when it checkpoints, else a temporary folder."""
    if checkpointing(run):
        Path(run.work).mkdir(parents=True, exist_ok=True)
        yield Path(run.work)
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as out:
            yield Path(out)


def last_checkpoint(folder: str | Path, required: tuple[str, ...] = ()) -> str | None:
    """The latest complete checkpoint in `folder` (with the `required` entries too), or None; the others (a
    half-written one included) go."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        try:
            json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
            if not all((checkpoint / name).exists() for name in required):
                raise OSError(f"{checkpoint}: incomplete")
        except (OSError, ValueError):
            remove_path(checkpoint)
    last = get_last_checkpoint(str(folder))
    for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        if str(checkpoint) != last:
            remove_path(checkpoint)
    return last


class StopOnPreemption(TrainerCallback):
    """After a SIGTERM: end training at the end of the current optimizer step, saving a checkpoint first. And no
    checkpoint at the last step: Hugging Face's Trainer resumed from one mid-epoch runs one step past max_steps
    (its loop checks for the end only after a step), an extra update and log row an unbroken run never makes;
    a run killed after its last step resumes from the last periodic checkpoint instead."""

    def __init__(self, save: bool):
        self.save = save

    def on_step_end(self, args, state, control, **kwargs):
        if requested():
            control.should_training_stop = True
            control.should_save = self.save
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_save = False
        return control

    def on_save(self, args, state, control, **kwargs):
        failpoints.reached("checkpoint")  # the fault tests kill here: a complete checkpoint, training mid-way
        return control


def train(trainer, run: TrainingRun) -> None:
    """`trainer.train()`, resumed from the run's latest complete checkpoint. SIGTERM meanwhile: a checkpoint at
    the end of the current step, then `Preempted`."""
    # the main process tidies the folder; every process resumes from the checkpoint it found. The metrics
    # folder is part of a checkpoint (`LiveCallback`): it goes back to that step too
    curves = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, LiveCallback)]
    required = (CURVES,) if curves else ()
    resume = from_main(last_checkpoint, run.work, required) if checkpointing(run) else None
    if resume:
        print(f"resuming from {resume}", flush=True)
    for callback in curves:
        callback.open(resume)
    trainer.add_callback(StopOnPreemption(save=checkpointing(run)))
    with preemptible(), deferred():
        trainer.train(resume_from_checkpoint=resume)
    failpoints.reached("trained")


# ------------------------------------------------------------------------------------------ work folders


def fingerprint(path: str | Path) -> str:
    """A cheap identity of a folder's (or a file's) content: every file's relative path, size and mtime. An input
    rewritten since, even with the same bytes, counts as new: its step's work is redone, never mixed."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return sha256_json([[p.relative_to(path).as_posix() if path.is_dir() else p.name, p.stat().st_size,
                         p.stat().st_mtime_ns] for p in files])


def run_inputs(run: TrainingRun) -> dict:
    """The knobs of a run its results depend on (not how often it checkpoints, nor the memory plan)."""
    return {"train": run.train.model_dump(exclude={"checkpoint_steps", "memory_limit_gib"}),
            "lora": run.lora.model_dump()}


def open_work(folder: str | Path, inputs: dict) -> Path:
    """The work folder of a step with these `inputs` (JSON-able): kept when a run of the same inputs left it,
    emptied otherwise. Its `inputs.json` holds the key."""
    folder = Path(folder)
    key = sha256_json(inputs)
    try:
        kept = json.loads((folder / INPUTS).read_text(encoding="utf-8"))["key"] == key
    except (OSError, ValueError, KeyError, TypeError):
        kept = False
    if not kept:
        if folder.exists():
            print(f"{folder}: left by a run with other inputs: wiped", flush=True)
        remove_path(folder)
        folder.mkdir(parents=True)
        write_json_atomic(folder / INPUTS, {"key": key, "inputs": inputs})
    return folder


def close_work(run: TrainingRun | None) -> None:
    """Remove a step's work folder: its output is published, nothing in it is needed again."""
    if run is not None and run.work is not None:
        remove_path(Path(run.work))
