"""`past pipeline new`: a git + DVC repository with the pipeline, a preset and single-key overrides applied."""

from __future__ import annotations

import yaml

from past.cli import main
from past.pipeline_repo import ROOT, run


def test_new_repo_with_preset_and_overrides(tmp_path, capsys):
    folder = tmp_path / "sq"
    preset = ROOT / "presets/squad-smollm2-cpu.yaml"
    assert main(["pipeline", "new", str(folder), "--preset", str(preset),
                 "-S", "prepare.squad.root=/data/squad-seal", "-S", "evaluate.lambdas=[0.0, 2.0]", "-S", "seed=7"]) == 0
    params = yaml.safe_load((folder / "params.yaml").read_text())
    want = yaml.safe_load(preset.read_text())
    assert params["prepare"]["source"] == "squad" and params["base"]["model"] == want["base"]["model"]
    assert params["skill_rl"]["grpo"] == {**params["skill_rl"]["grpo"], **want["skill_rl"]["grpo"]}
    assert params["prepare"]["squad"]["root"] == "/data/squad-seal"  # -S wins over the preset
    assert params["prepare"]["squad"]["source_passages"] == want["prepare"]["squad"]["source_passages"]
    assert params["evaluate"]["lambdas"] == [0.0, 2.0] and params["seed"] == 7
    assert params["target_sft"]["warmup_ratio"] == 0.05  # keys the preset leaves alone come from params.yaml
    stages = run(["dvc", "stage", "list", "--name-only"], folder).stdout.split()
    assert stages[:3] == ["prepare", "base", "source_sft"] and "evaluate" in stages
    assert run(["git", "status", "--porcelain"], folder).stdout == ""  # all committed

    assert main(["pipeline", "new", str(folder)]) == 2  # not empty: refused, nothing touched
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["pipeline", "new", str(tmp_path / "other"), "-S", "seed"]) == 2
    assert "expected KEY=VALUE, got 'seed'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_new_repo_renders_plots_offline(tmp_path):
    folder = tmp_path / "p"
    assert main(["pipeline", "new", str(folder)]) == 0
    assert run(["dvc", "config", "plots.html_template"], folder).stdout.strip() == "plots/offline.html"
    committed = run(["git", "ls-files", ".dvc/plots"], folder).stdout.split()
    assert committed == [".dvc/plots/by_round.json", ".dvc/plots/lambda_sweep.json", ".dvc/plots/offline.html"]
