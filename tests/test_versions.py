"""One set of library versions: the CPU environment (pyproject.toml, where the suite runs) and the GPU one
(requirements-gpu.txt) pin every package they share alike, and the trainer arguments build real TRL configs
under whichever transformers is installed (activation checkpointing changed its name in 5.23)."""

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from past.config import TrainParams
from past.training.arguments import TrainingRun, trainer_arguments

ROOT = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def by_name(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    out = {canonical(r.name): r for r in reqs}
    assert len(out) == len(reqs), "a package listed twice"
    return out


def cpu_requirements() -> dict[str, Requirement]:
    return by_name(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"])


def gpu_requirements() -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-gpu.txt").read_text("utf-8").splitlines()]
    return by_name(line for line in lines if line)


def test_the_cpu_and_gpu_environments_pin_every_shared_package_alike():
    cpu, gpu = cpu_requirements(), gpu_requirements()
    shared = cpu.keys() & gpu.keys()
    assert {"torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy", "tokenizers"} <= shared
    differ = {name: (str(cpu[name]), str(gpu[name])) for name in sorted(shared)
              if (cpu[name].specifier, cpu[name].extras, cpu[name].marker)
              != (gpu[name].specifier, gpu[name].extras, gpu[name].marker)}
    assert not differ, f"pyproject.toml and requirements-gpu.txt disagree: {differ}"
    assert str(cpu["transformers"].specifier) == "==5.17.0"  # the newest vllm 0.31 allows (< 5.18)


def test_name_normalisation_follows_pep_503():
    assert canonical("ML_dtypes") == canonical("ml-dtypes") == canonical("ml.dtypes") == "ml-dtypes"
    assert canonical("Great__Expectations") == "great-expectations"


@pytest.mark.parametrize("checkpointing", ["on", "off"])
@pytest.mark.parametrize("config", ["SFTConfig", "GRPOConfig"])
def test_trl_configs_take_the_trainer_arguments_with_activation_checkpointing(config, checkpointing, tmp_path):
    """Real TRL configs from the project's builder: `activation_checkpointing` exists from transformers 5.23,
    `gradient_checkpointing` before (and as its alias after); off must stay off (TRL's configs default it on)."""
    import trl

    run = TrainingRun(train=TrainParams(activation_checkpointing=checkpointing))
    args = trainer_arguments(tmp_path, steps=2, lr=1e-5, seed=0, global_batch=4, run=run)
    extra = {"num_generations": 2, "generation_batch_size": 4} if config == "GRPOConfig" else {}
    built = getattr(trl, config)(**args, **extra)
    on = checkpointing == "on"
    assert built.gradient_checkpointing is on  # what TRL's trainers read
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(built)}:
        assert built.activation_checkpointing is on
