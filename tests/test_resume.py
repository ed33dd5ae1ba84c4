"""Long steps survive preemption, for real: the DVC stage scripts run as subprocesses on a tiny world, are
killed (SIGKILL) or preempted (SIGTERM) mid-training, and run again. The rerun resumes from the checkpoint in
models/.work/<stage> and ends with exactly (torch.equal, no tolerance) the weights of an uninterrupted run;
skill RL keeps its finished rounds. Every run uses one thread, so the float order is the same in all of them.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from past.config import validate_params
from past.files import temporaries
from pipeline_params import SMALL_WORLD

REPO = Path(__file__).resolve().parents[1]

# The stage script, with every training step slowed down by $STEP_SECONDS (so that a signal lands mid-training)
# and counted in $STEP_FILE; the stage itself is what `dvc repro` runs.
RUNNER = """
import os, runpy, sys, time
import transformers
delay, counter = float(os.environ["STEP_SECONDS"]), os.environ["STEP_FILE"]
step = transformers.Trainer.training_step
def slow(self, *args, **kwargs):
    time.sleep(delay)
    with open(counter, "a") as f:
        f.write(".")
    return step(self, *args, **kwargs)
transformers.Trainer.training_step = slow
runpy.run_path(sys.argv[1], run_name="__main__")
"""

PARAMS = {
    **SMALL_WORLD, "threads": 1,
    "source_sft": {"steps": 16, "batch_size": 8},
    # 20 questions per round, 8 per step: 2 steps an epoch, so 6 steps run 3 epochs of GRPO
    "skill_rl": {"rounds": 2, "grpo": {"steps": 6, "prompts_per_step": 8, "num_generations": 4}},
    "evaluate": {"batch_size": 64},
    "train": {"checkpoint_steps": 4},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """data/world, models/base and models/source_sft of a tiny pipeline, made once."""
    from past import steps
    from past.knowledge.format import read_knowledge_set

    params = validate_params(PARAMS)
    root = tmp_path_factory.mktemp("resume-world")
    steps.prepare(params, root / "data/world")
    steps.base(params, root / "data/world", root / "models/base")
    steps.source_sft(params, root / "models/base", read_knowledge_set(root / "data/world/source"),
                     root / "models/source_sft")
    return root


def project(world: Path, root: Path, models: list[str], **train) -> Path:
    """A checkout to run stages in: params.yaml (with `train` overrides), the world and the given models."""
    shutil.copytree(world / "data", root / "data")
    for name in models:
        shutil.copytree(world / "models" / name, root / "models" / name)
    params = {**PARAMS, "train": {**PARAMS["train"], **train}}
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return root


def start(root: Path, stage: str, delay: float = 0.0, **env) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "STEP_SECONDS": str(delay),
           "STEP_FILE": str(root / "steps.log"), **env}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(REPO / "stages" / f"{stage}.py")], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(root: Path, stage: str) -> str:
    process = start(root, stage)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def complete_checkpoints(work: Path) -> list[Path]:
    """Checkpoints with their trainer state and their copy of the metrics folder (what a resume needs)."""
    return [c for c in work.glob("checkpoint-*") if (c / "trainer_state.json").is_file() and (c / "dvclive").is_dir()]


def curves(root: Path, stage: str) -> dict[str, bytes]:
    folder = root / "dvclive" / stage
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every safetensors file under `folder`, by relative file and tensor name."""
    return {f"{path.relative_to(folder)}:{name}": tensor for path in sorted(folder.rglob("*.safetensors"))
            for name, tensor in load_file(path).items()}


def assert_equal_weights(folder: Path, reference: Path) -> None:
    a, b = weights(folder), weights(reference)
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a), [key for key in a if not torch.equal(a[key], b[key])]


def assert_clean(root: Path, stage: str) -> None:
    """Nothing half-written or left over: no temporaries, no `.old-` folders, the stage's work folder gone."""
    models = root / "models"
    assert not temporaries(models)
    assert not (models / ".work" / stage).exists()


@pytest.fixture(scope="module")
def uninterrupted_sft(world, tmp_path_factory):
    root = project(world, tmp_path_factory.mktemp("sft-reference"), ["base"])
    run(root, "source_sft")
    assert_clean(root, "source_sft")
    return root / "models/source_sft"


@pytest.mark.reliability(19, 'a training stage killed mid-training, or after its last step before publishing',
                         'resumes from its checkpoint to the same weights and curves')
def test_a_killed_sft_stage_resumes_to_the_same_weights(world, uninterrupted_sft, tmp_path):
    root = project(world, tmp_path, ["base"])
    work = root / "models/.work/source_sft"
    process = start(root, "source_sft", delay=0.15)
    wait_for(lambda: complete_checkpoints(work), process)  # the first periodic checkpoint (step 4 of 16)
    process.kill()
    process.wait()
    [checkpoint] = complete_checkpoints(work)
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] < 16  # killed mid-training
    assert not (root / "models/source_sft").exists()
    assert json.loads((work / "inputs.json").read_text())["inputs"]["step"] == "sft"

    out = run(root, "source_sft")
    assert f"resuming from {checkpoint.relative_to(root)}" in out
    assert_equal_weights(root / "models/source_sft", uninterrupted_sft)
    # the curves too: the points logged after the checkpoint by the killed run are there once
    assert curves(root, "source_sft") == curves(uninterrupted_sft.parents[1], "source_sft") != {}
    assert_clean(root, "source_sft")


def test_a_killed_sft_stage_with_length_grouped_batches_resumes_to_the_same_weights(world, uninterrupted_sft,
                                                                                     tmp_path):
    """`train.group_by_length` orders the rows itself (the Trainer then samples them in order): a resumed run must
    take the same batches as the uninterrupted one."""
    reference = project(world, tmp_path / "reference", ["base"], group_by_length=True)
    run(reference, "source_sft")
    root = project(world, tmp_path / "killed", ["base"], group_by_length=True)
    work = root / "models/.work/source_sft"
    process = start(root, "source_sft", delay=0.15)
    wait_for(lambda: complete_checkpoints(work), process)
    process.kill()
    process.wait()
    assert "resuming from" in run(root, "source_sft")
    assert_equal_weights(root / "models/source_sft", reference / "models/source_sft")
    # grouping changed the batches: not the shuffled run's weights
    a, b = weights(root / "models/source_sft"), weights(uninterrupted_sft)
    assert any(not torch.equal(a[key], b[key]) for key in a)


@pytest.mark.reliability(19, 'a training stage killed mid-training, or after its last step before publishing',
                         'resumes from its checkpoint to the same weights and curves')
def test_a_stage_killed_after_its_last_step_resumes_from_the_last_periodic_checkpoint(world, uninterrupted_sft,
                                                                                      tmp_path):
    """Killed once trained, before publishing: no checkpoint of the last step (16, mid-epoch: six steps an epoch),
    because Hugging Face's Trainer resumed from one runs a 17th step; the rerun redoes 13-16 from step 12's."""
    root = project(world, tmp_path, ["base"])
    work = root / "models/.work/source_sft"
    process = start(root, "source_sft", PAST_KILL_AT="trained")
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL and not (root / "models/source_sft").exists()
    [checkpoint] = complete_checkpoints(work)
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 12

    out = run(root, "source_sft")
    assert f"resuming from {checkpoint.relative_to(root)}" in out
    assert_equal_weights(root / "models/source_sft", uninterrupted_sft)
    assert curves(root, "source_sft") == curves(uninterrupted_sft.parents[1], "source_sft") != {}
    assert_clean(root, "source_sft")


@pytest.mark.reliability(20, 'SIGTERM (preemption) during training',
                         'a checkpoint saved, exit 143, the rerun completes')
def test_sigterm_saves_a_checkpoint_and_exits_non_zero_and_the_rerun_completes(world, uninterrupted_sft, tmp_path):
    # no periodic checkpoint before the end (and checkpoint_steps is not an input: the reference used 4)
    root = project(world, tmp_path, ["base"], checkpoint_steps=1000)
    work = root / "models/.work/source_sft"
    process = start(root, "source_sft", delay=0.3)
    wait_for(lambda: (root / "steps.log").exists(), process)  # training has started
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "preempted" in err
    [checkpoint] = complete_checkpoints(work)  # saved on SIGTERM, at the end of the step it was in
    assert 1 <= json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] < 16
    assert not (root / "models/source_sft").exists()  # nothing published
    assert not temporaries(root / "models")

    out = run(root, "source_sft")
    assert "resuming from" in out
    assert_equal_weights(root / "models/source_sft", uninterrupted_sft)
    assert_clean(root, "source_sft")


def test_the_grpo_prompt_order_of_an_epoch_does_not_depend_on_the_epochs_before():
    from trl.trainer.utils import RepeatSampler

    from past.training.grpo import EpochSeededRepeatSampler

    trl = RepeatSampler(range(10), mini_repeat_count=2, batch_size=3, repeat_count=2, seed=7)
    orders = [list(trl) for _ in range(3)]  # an uninterrupted run: epoch e is the sampler's (e+1)-th pass
    assert orders[0] != orders[2]
    ours = EpochSeededRepeatSampler(range(10), mini_repeat_count=2, batch_size=3, repeat_count=2, seed=7)
    for epoch in (2, 0, 1, 2):  # a resumed run enters epoch e first
        ours.set_epoch(epoch)
        assert list(ours) == orders[epoch]


@pytest.mark.reliability(19, 'a training stage killed mid-training, or after its last step before publishing',
                         'resumes from its checkpoint to the same weights and curves')
def test_skill_rl_killed_in_round_two_keeps_round_one_and_ends_equal(world, tmp_path):
    reference = project(world, tmp_path / "reference", ["base", "source_sft"], checkpoint_steps=3)
    run(reference, "skill_rl")
    skill = reference / "models/skill_rl/round_2"
    rl, sft = weights(skill / "rl"), weights(skill / "sft")
    assert not all(torch.equal(rl[key], sft[key]) for key in rl)  # RL learned something: the check has teeth

    root = project(world, tmp_path / "killed", ["base", "source_sft"], checkpoint_steps=3)
    work = root / "models/.work/skill_rl"
    process = start(root, "skill_rl", delay=0.25)
    # round 2's RL at step 4-5 of 6: it resumes from step 3, in the middle of its second epoch
    wait_for(lambda: complete_checkpoints(work / "checkpoints/round_2/rl"), process)
    process.kill()
    process.wait()
    [checkpoint] = complete_checkpoints(work / "checkpoints/round_2/rl")
    assert checkpoint.name == "checkpoint-3"
    finished = work / "run/round_1"
    assert (finished / "report.json").is_file() and not (work / "run/round_2/report.json").exists()
    assert not (work / "checkpoints/round_1").exists()  # a finished round's checkpoints are deleted
    assert not (root / "models/skill_rl").exists()
    kept = {p.relative_to(finished): (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished.rglob("*")}

    out = run(root, "skill_rl")
    assert "round 1/2: finished by an earlier run, kept" in out and "resuming from" in out
    published = root / "models/skill_rl/round_1"  # round 1 was not redone: the same files, moved by renames
    assert {p.relative_to(published): (p.stat().st_ino, p.stat().st_mtime_ns) for p in published.rglob("*")} == kept
    assert_equal_weights(root / "models/skill_rl", reference / "models/skill_rl")
    for report in ("metrics/skill_rl.json", "plots/reward_curve.csv"):  # scores and reward curve too
        assert (root / report).read_text() == (reference / report).read_text()
    assert (root / "models/skill_rl/LAST_ROUND").read_text() == "round_2\n"
    assert_clean(root, "skill_rl")
