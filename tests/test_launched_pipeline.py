"""The pipeline under a launcher, for real: `dvc repro` with `train.launcher: torchrun --nproc_per_node 2` (DDP on
gloo, two processes per training stage) in a temporary git + DVC repository, then its outputs against one-process
runs of the same steps from the same inputs.

Small params (every stage, two refinement rounds, about 90 s on 2 cores): this checks the machinery, not the
headline, which tests/test_pipeline_e2e.py measures one process at a time.
"""

import json
from pathlib import Path

import pytest
import torch

from past.pipeline_repo import make_pipeline_repo, run
from pipeline_params import LAUNCHED

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    folder = make_pipeline_repo(tmp_path_factory.mktemp("launched"), LAUNCHED)
    result = run(["dvc", "repro"], folder)
    assert result.stderr.count("past launch: ") == 5 and "torchrun --nproc_per_node 2 stages/skill_rl.py" in result.stderr
    return folder


def params_of(repo: Path, **changes):
    from past.config import load_params

    return load_params(repo / "params.yaml").model_copy(update=changes)


def flat_delta(a: dict, b: dict) -> torch.Tensor:
    return torch.cat([(a[k] - b[k]).flatten() for k in sorted(b)])


def test_dvc_repro_under_torchrun_writes_every_output_once(repo):
    assert "up to date" in run(["dvc", "status"], repo).stdout
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert set(metrics["exact_match"]) == {"base", "target_sft", "past", "oracle", "control"}
    rounds = json.loads((repo / "metrics/skill_rl.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    # one writer: no temporaries, work folders or second copies beside the outputs
    leftovers = [str(p.relative_to(repo)) for p in (repo / "models").rglob(".*") if p.name != ".gitignore"]
    assert leftovers in ([], ["models/.work"]) and not any((repo / "models/.work").iterdir())
    # round 2 started from a saved sft_2 + v_1 that every process loaded, and the skill file names round 2
    assert (repo / "models/skill_rl/round_2/start/model.safetensors").exists()
    # each training curve once, by the main process: as many points as the trainer logged, not twice as many
    curve = (repo / "dvclive/target_sft/plots/metrics/loss.tsv").read_text().splitlines()
    assert curve[0].startswith("step") and len(curve) - 1 == LAUNCHED["target_sft"]["steps"]  # logging_steps = 1
    assert json.loads((repo / "dvclive/source_sft/metrics.json").read_text())["step"] == LAUNCHED["source_sft"]["steps"]
    reward = (repo / "plots/reward_curve.csv").read_text().splitlines()
    assert len(reward) - 1 == 2 * LAUNCHED["skill_rl"]["grpo"]["steps"]


def test_sft_under_torchrun_matches_one_process_with_the_same_global_batch(repo, tmp_path):
    """Two processes of 16 sequences make the global batch of 32 one process makes: the same data, the same
    updates, up to the order of bf16 sums. Measured 2-3% of the SFT update apart; a run with another seed lands
    ~40% away (also measured here), so the tolerance of a tenth of the seed-to-seed distance separates them."""
    from past import steps
    from past.knowledge.format import read_knowledge_set
    from past.modeling import load_state

    target = read_knowledge_set(repo / "data/world/target")
    for seed in (0, 1):
        steps.target_sft(params_of(repo, seed=seed), repo / "models/base", target, tmp_path / f"one_{seed}")
    base = load_state(repo / "models/base")
    launched, one, other = (flat_delta(load_state(f), base) for f in
                            (repo / "models/target_sft", tmp_path / "one_0", tmp_path / "one_1"))
    apart, seed_apart = float((launched - one).norm()), float((other - one).norm())
    assert apart < 0.1 * seed_apart, f"launched vs one process {apart:.4f}, another seed {seed_apart:.4f}"
    assert apart / float(one.norm()) < 0.06


def test_skill_vector_under_torchrun_matches_one_process_in_distribution(repo, tmp_path):
    """GRPO samples its completions with a seed per process (TRL's `set_seed(seed, device_specific=True)`), so the
    two processes draw other completions than one process does and v can only match in distribution: the
    launched v is no farther from the one-process v than a one-process run with another seed is, and its size
    is of the same order. (On this tiny model a seed moves v as far as its own length.)"""
    from past import steps
    from past.knowledge.format import read_knowledge_set
    from past.modeling import load_state
    from past.training.refinement import last_round

    def skill(folder: Path) -> torch.Tensor:
        pair = last_round(folder)
        return flat_delta(load_state(pair.rl), load_state(pair.sft))

    source = read_knowledge_set(repo / "data/world/source")
    for seed in (0, 1):
        steps.skill_rl(params_of(repo, seed=seed), repo / "models/base", repo / "models/source_sft", source,
                       tmp_path / f"rl_{seed}")
    launched, one, other = skill(repo / "models/skill_rl"), skill(tmp_path / "rl_0"), skill(tmp_path / "rl_1")
    # Measured on LAUNCHED's repository (skill_rl at seeds 0-4 in one process, 0-2 launched): a launched v's distance
    # to the one-process v of its seed, over the distance from there to another seed's, spans 0.76-1.02 (12 pairs);
    # one-process seeds lie 0.55-0.72 apart. 1.25 leaves a fifth above the worst of them.
    assert float((launched - one).norm()) <= 1.25 * float((other - one).norm())
    # Adam's steps are ~lr each whatever the gradient's scale, so |v| only says how consistent the updates were.
    # Measured as above: launched |v| 0.28, 0.40, 0.37 (seeds 0-2) against one-process 0.40-0.53 (seeds 0-4), a
    # ratio of 0.70-0.84 at the same seed and 0.53-0.99 across seeds. A lost, repeated or unreduced batch is the SFT
    # test's to catch; here, the same order: (0.5, 1.5) holds every measured ratio, its upper bound half again the
    # largest.
    assert 0.5 < float(launched.norm()) / float(one.norm()) < 1.5
