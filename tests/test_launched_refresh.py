"""The refresh flow's training steps under `train.launcher` / `train.python` (`past.continual.launched`): the spec
carries the refresh's params exactly, and with another Python the real source SFT and skill RL run in that Python's
processes, on a tiny world, with the rounds the flow records read back from the run's round reports."""

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from flows_fixtures import PARAMS as FLOWS_PARAMS
from pipeline_params import CHEAPEST
from past.config import Params, load_params, validate_params
from past.continual import launched, refresh
from past.continual.adaptation import Settings
from past.continual.plans import Ref, RefreshPlan
from past.evaluation.spec import EvalSpec
from past.launcher import PYTHON_VARIABLE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_image_python(monkeypatch):
    monkeypatch.delenv(PYTHON_VARIABLE, raising=False)


@pytest.mark.parametrize("data", [{}, FLOWS_PARAMS, yaml.safe_load((ROOT / "tests/params_small.yaml").read_text()),
                                  {"train": {"python": sys.executable, "launcher": "torchrun --nproc_per_node 2"},
                                   "evaluate": {"judge_url": "http://judge:8000/v1", "judge_cache": "cache/j.sqlite",
                                                "vllm_args": ["--enforce-eager"]}, "adapt": {"lam": None}}],
                         ids=["defaults", "flows", "params_small", "paths"])
def test_the_spec_carries_the_refresh_params_exactly(data, tmp_path, monkeypatch):
    """`launch_step` with the refresh's params (another seed): the child reads back equal params, so the same
    evaluation spec (`Settings.spec`) and training run."""
    params = validate_params(data)
    seeded = params.model_copy(update={"seed": params.seed + 3})  # refresh._params
    written = {}

    def child(command, check, cwd):  # the launched process: what it reads from the spec file
        written.update(json.loads(Path(command[-1]).read_text(encoding="utf-8")), cwd=cwd)
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(launched.subprocess, "run", child)
    launched.launch_step(seeded, tmp_path, Params().train, "skill_rl", tmp_path / "skill_rl", seeded.seed, base="b",
                         source_sft="s", source="k", work=None)
    read = launched.spec_params(written["params"])
    assert read == seeded and read.model_dump() == seeded.model_dump() and written["seed"] == seeded.seed
    assert EvalSpec.from_params(read) == Settings(tmp_path / "params.yaml", params).spec  # what skill_rl grades with
    assert written["step"] == "skill_rl" and not (tmp_path / "skill_rl.launch.json").exists()
    assert written["cwd"] == tmp_path  # the project's home
    with pytest.raises(ValueError, match="no launched step"):
        launched.launch_step(seeded, tmp_path, Params().train, "oracle", tmp_path / "oracle", 0)


def test_the_refresh_trains_in_train_python(tmp_path, monkeypatch):
    """refresh.source_sft and refresh.skill_rl with train.python naming another Python (a wrapper that logs its
    folder and arguments, then becomes this one): both run as `-m past.continual.launched` there, in the project's
    home whatever folder the worker runs in (where an accelerate config named in train.launcher is), and
    skill_rl returns the rounds its run's reports hold."""
    from past import steps
    from past.training.refinement import LAST_ROUND, ROUND_REPORT

    python, runs = tmp_path / "gpu-env" / "bin" / "python", tmp_path / "gpu-env-runs.log"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$PWD $@" >> {shlex.quote(str(runs))}\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**CHEAPEST, "train": {"python": str(python)}}))
    params = load_params(path)
    steps.prepare(params, tmp_path / "world")
    steps.base(params, tmp_path / "world", tmp_path / "base")
    s = Settings(path, params)
    p = RefreshPlan.model_construct(seed=params.seed + 1, work=str(tmp_path / "refresh"),  # what these steps read
                                    source=str(tmp_path / "world/source"),
                                    base=Ref(id="b", path=str(tmp_path / "base")))

    (tmp_path / "worker").mkdir()
    monkeypatch.chdir(tmp_path / "worker")  # a Prefect worker's own folder
    sft = refresh.source_sft(s, p)
    rl = refresh.skill_rl(s, p)

    spec = rf"{re.escape(str(tmp_path))} -m past\.continual\.launched \S+\.launch\.json"
    assert re.fullmatch(rf"{spec}\n{spec}\n", runs.read_text())
    assert sft["dir"] == str(refresh.source_sft_dir(p)) and (refresh.source_sft_dir(p) / "config.json").is_file()
    out = refresh.skill_rl_dir(p)
    assert (out / LAST_ROUND).read_text() == "round_1\n"
    assert (out / "round_1/sft/config.json").is_file() and (out / "round_1/rl/config.json").is_file()
    report = json.loads((out / "round_1" / ROUND_REPORT).read_text())
    assert rl["rounds"] == [report["round"]] and rl["rounds"][0]["round"] == 1 and rl["rounds"][0]["questions"] > 0
    assert not list(tmp_path.rglob("*.launch.json"))
    # in the flow's own process (train.python empty: this Python) the same step returns what the reader reads
    here = RefreshPlan.model_construct(**{**dict(p), "work": str(tmp_path / "here")})
    shutil.copytree(refresh.source_sft_dir(p), refresh.source_sft_dir(here))
    in_process = refresh.skill_rl(Settings(path, params.model_copy(update={"train": Params().train})), here)
    assert in_process["rounds"] == refresh.round_reports(refresh.skill_rl_dir(here), 1) == rl["rounds"]
    assert runs.read_text().count("\n") == 2
