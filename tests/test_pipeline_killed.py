"""A `dvc repro` killed with SIGKILL once in every stage, and run again, reproduces an unbroken run's dvc.lock
(an unbroken `past repro`'s: independent stages side by side, the same bits).

The smallest params that still run every stage (two refinement rounds) and train past a checkpoint, in one
process: the kills land mid-training where a stage trains, and the property (nothing lost, nothing
half-published, the same bits) needs no model that answers anything (tests/test_pipeline_e2e.py has the headline).
"""

import pytest
import yaml

from past.files import temporaries
from past.pipeline_repo import make_pipeline_repo, run
from pipeline_params import MINIMAL

pytestmark = pytest.mark.e2e
# every training SFT (round 2's too) saves a checkpoint (and is killed there) at step 20 of 30, then resumes for the
# last 10; GRPO's 2 steps save none, so skill_rl is killed in round 2's SFT
KILLED = {**MINIMAL, "train": {"checkpoint_steps": 20}}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """An unbroken run's dvc.lock, by `past repro` (independent stages side by side): the killed run below is plain
    `dvc repro`, so the comparison also shows the two runners write the same bits."""
    folder = make_pipeline_repo(tmp_path_factory.mktemp("pipeline"), KILLED)
    run(["past", "repro"], folder)
    return folder, (folder / "dvc.lock").read_text()


# Where the second run is killed (SIGKILL at a past.failpoints point, `stage/point`): in every stage, mid-training
# where it trains (a checkpoint just saved), while publishing its output elsewhere. skill_rl is killed in round
# 2's SFT, after round 1 is done.
KILLS = ["prepare/publish", "base/checkpoint", "source_sft/checkpoint", "skill_rl/checkpoint", "target_sft/checkpoint",
         "extract_skill/publish", "inject/publish", "oracle/publish", "evaluate/publish"]


@pytest.mark.reliability(18, '`dvc repro` killed (SIGKILL) once in every stage, then run again',
                         'the same `dvc.lock` as an unbroken run, nothing left behind')
def test_a_second_run_killed_in_every_stage_reproduces_dvc_lock(first_run, tmp_path):
    # another folder (absolute paths differ) and other processes (hash seeds, temporary names differ)
    again = make_pipeline_repo(tmp_path / "again", KILLED)
    for point in KILLS:
        stage = point.split("/")[0]
        result = run(["dvc", "repro", stage], again, check=False, env={"PAST_KILL_AT": point})
        assert result.returncode != 0 and f"failed to reproduce '{stage}'" in result.stderr, point
        assert stage in run(["dvc", "status", stage], again).stdout, point  # DVC knows the stage is not done
    run(["dvc", "repro"], again)  # the killed ones resume (from their checkpoints), nothing else reruns
    first, second = yaml.safe_load(first_run[1]), yaml.safe_load((again / "dvc.lock").read_text())
    differing = lock_differences(first, second)
    assert not differing, "a `dvc repro` killed in every stage gave other hashes for: " + "; ".join(differing)
    assert first == second
    work = again / "models/.work"
    assert not temporaries(again), "left behind by the killed runs"
    assert not work.exists() or not any(work.iterdir()), f"work folders left: {list(work.iterdir())}"


def lock_differences(first: dict, second: dict) -> list[str]:
    """'stage: deps|outs path' for each path whose hash, size or file count differs (or that one lock lacks),
    'stage: params|cmd' when those differ."""
    differing = []
    for name in sorted(set(first["stages"]) | set(second["stages"])):
        a, b = first["stages"].get(name, {}), second["stages"].get(name, {})
        for kind in ("deps", "outs"):
            entries_a = {e["path"]: e for e in a.get(kind, [])}
            entries_b = {e["path"]: e for e in b.get(kind, [])}
            differing += [f"{name}: {kind} {path}" for path in sorted(set(entries_a) | set(entries_b))
                          if entries_a.get(path) != entries_b.get(path)]
        differing += [f"{name}: {key}" for key in ("cmd", "params") if a.get(key) != b.get(key)]
    return differing
