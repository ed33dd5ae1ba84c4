"""Trainer arguments shared by SFT and GRPO: the `train:` knobs mapped onto TRL's configs, quiet logs.

One place decides how a step uses the device: how the global batch is split into micro-batches (gradient
accumulation keeps the global batch whatever the micro-batch), whether activations are recomputed, which
optimizer holds the state, and the compute precision. Master weights stay fp32: the models are loaded in
fp32 and bf16 only wraps the forward pass (autocast), because GRPO's updates at small learning rates are far
below bf16's spacing near typical weight magnitudes.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

from past.config import LoraParams, TrainParams
from past.distributed import BARRIER_TIMEOUT, world_size
from past.planner import resolved_checkpointing, resolved_precision

OPTIMIZERS = {"adamw": "adamw_torch_fused", "adafactor": "adafactor", "adamw_8bit": "adamw_bnb_8bit"}


@dataclass(frozen=True)
class TrainingRun:
    """How and where one training step runs: the `train:` and `lora:` knobs, the folder its resumable
    checkpoints go to (None: no checkpoints) and the folder its metrics are logged to (None: not tracked)."""

    train: TrainParams = field(default_factory=TrainParams)
    lora: LoraParams = field(default_factory=LoraParams)
    work: Path | None = None
    live: Path | None = None
    live_prefix: str = ""  # metric names of one refinement round: "round_2/"
    live_resume: bool = False  # continue the folder's step count (a later round) instead of clearing it

    @property
    def uses_lora(self) -> bool:
        return self.lora.rank > 0

    def callbacks(self) -> list:
        from past.training.tracking import tracking_callbacks

        return tracking_callbacks(self.live, self.live_prefix, self.live_resume)

    def round(self, k: int, part: str = "") -> "TrainingRun":
        """The same run for refinement round k (its metrics under `round_<k>/<part>`)."""
        return replace(self, live_prefix=f"round_{k}/{part}", live_resume=self.live_resume or k > 1 or bool(part))


def batch_split(global_batch: int, micro_batch_size: int, processes: int = 1) -> tuple[int, int]:
    """(per-device micro-batch, gradient accumulation steps) that make exactly `global_batch` per step."""
    micro = micro_batch_size or -(-global_batch // processes)
    if global_batch % (micro * processes):
        raise ValueError(f"train.micro_batch_size: {micro} x {processes} process(es) does not divide the global batch "
                         f"of {global_batch}: choose a divisor of {global_batch // processes or global_batch}")
    return micro, global_batch // (micro * processes)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def uses_bf16(train: TrainParams) -> bool:
    """Whether the forward runs under bf16 autocast: as the planner resolves `train.precision` (auto: bf16 on CUDA,
    fp32 on CPU), but never on a GPU without bf16."""
    if resolved_precision(train, device()) != "bf16":
        return False
    return train.precision == "bf16" or not torch.cuda.is_available() or torch.cuda.is_bf16_supported()


def checkpointing(run: TrainingRun) -> bool:
    """Whether this run's trainers save resumable checkpoints (a work folder and `train.checkpoint_steps`)."""
    return run.work is not None and run.train.checkpoint_steps > 0


def checkpoint_arguments(run: TrainingRun, logging_steps: int = 1) -> dict:
    """The Trainer's save arguments: every `checkpoint_steps` optimizer steps, rounded up to whole logging
    intervals (a logged point averages the steps since the previous one: resumed mid-interval, it would average
    fewer, and the curve would not be the uninterrupted run's); the latest one kept (the older is deleted only
    once the newer is complete, so a kill while saving leaves the older whole)."""
    if not checkpointing(run):
        return {"save_strategy": "no"}
    every = -(-run.train.checkpoint_steps // logging_steps) * logging_steps
    return {"save_strategy": "steps", "save_steps": every, "save_total_limit": 1, "save_only_model": False}


def trainer_arguments(output_dir, steps: int, lr: float, seed: int, global_batch: int, run: TrainingRun,
                      warmup_ratio: float = 0.0, logging_steps: int | None = None) -> dict:
    train = run.train
    logging_steps = logging_steps or max(1, steps // 50)
    if train.optimizer == "adamw_8bit" and importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("train.optimizer: adamw_8bit needs bitsandbytes (pip install bitsandbytes; CUDA only); "
                         "or use adafactor")
    # the global batch is params.yaml's whatever the number of processes: each takes its share of it
    micro, accumulation = batch_split(global_batch, train.micro_batch_size, world_size())
    return dict(
        output_dir=str(output_dir),
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},  # cosine to 10% of the peak
        warmup_steps=int(round(warmup_ratio * steps)),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        optim=OPTIMIZERS[train.optimizer],
        bf16=uses_bf16(train),
        adam_beta2=0.98,
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=seed,
        data_seed=seed,
        **checkpoint_arguments(run, logging_steps),  # resumable checkpoints into run.work (training.checkpoints)
        report_to="none",
        logging_steps=logging_steps,
        use_cpu=device() == "cpu",
        # recomputation saves GPU memory on large models but costs ~25% of the step time on CPU, where memory
        # is not what limits the tiny model: auto = on with CUDA only (the planner counts the same)
        **recompute_argument(resolved_checkpointing(train, device())),
        dataloader_num_workers=0,
        ddp_timeout=int(BARRIER_TIMEOUT.total_seconds()),  # the others wait while the main process evaluates
        disable_tqdm=False,  # the progress bar is the only sign of life in a long stage
    )


def recompute_argument(on: bool) -> dict:
    """TrainingArguments' activation recomputation switch, under the name the installed transformers has:
    `activation_checkpointing` (5.23 on; `gradient_checkpointing` is its deprecated alias there), else
    `gradient_checkpointing` (5.17-5.22, the GPU environment's). Set either way: TRL's configs default it on."""
    from transformers import TrainingArguments

    name = "activation_checkpointing" if "activation_checkpointing" in {f.name for f in fields(TrainingArguments)} \
        else "gradient_checkpointing"
    return {name: on}


def lora_config(lora: LoraParams, task_type: str = "CAUSAL_LM"):
    """PEFT's LoraConfig for the `lora:` knobs (None for full fine-tuning)."""
    if lora.rank == 0:
        return None
    from peft import LoraConfig

    targets = lora.target_modules[0] if lora.target_modules == ["all-linear"] else list(lora.target_modules)
    return LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                      task_type=task_type)


def quiet_transformers() -> None:
    for name in ("transformers", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
