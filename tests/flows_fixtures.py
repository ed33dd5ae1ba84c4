"""A tiny PaST project on disk for the flow tests: the DVC pipeline's outputs, built in ~40 s.

Same layout as a checkout after `dvc repro` (`past.layout.Layout`: data/world/{p0,source,target},
models/{base,source_sft,skill_rl,target_sft,past}, models/skill/skill.safetensors, params.yaml with an
`adapt:` group), built by the same `past.steps` the stages call, on a small world and a 2-layer Llama:
base pre-training (P0 bios + QA), source SFT, GRPO, extraction, target SFT, injection (no oracle, no
evaluate stage). Real training throughout; the numbers are small, not fake.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
import yaml

from past.config import Params, TinyModelParams, WorldParams
from past.pipeline_repo import deep_merge

WORLD = WorldParams(first_names=20, last_names=20, cities=8, employers=8, birth_years=8, universities=8, hobbies=8,
                    p0_people=60, source_people=16, target_oracle_people=4, target_eval_people=12,
                    renders_per_person=16)
TINY = TinyModelParams(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, max_positions=64)
DROP_PEOPLE = 4
TOLERANCE = 0.1  # 6 of the 60 regression questions: drops of 4 people lose 0-5 of them (measured)

PARAMS = {
    "seed": 0, "threads": 1,
    "prepare": {"world": {k: getattr(WORLD, k) for k in WorldParams.model_fields}},
    "base": {"tiny": {k: getattr(TINY, k) for k in TinyModelParams.model_fields}, "steps": 300, "lr": 0.003,
             "batch_size": 16},
    "source_sft": {"steps": 150, "batch_size": 16},
    "skill_rl": {"rounds": 1, "grpo": {"steps": 8, "prompts_per_step": 8, "num_generations": 4}},
    "target_sft": {"steps": 150, "batch_size": 16},
    "inject": {"lam": 0.5},  # pinned: the flow tests' lambda does not depend on what RL happened to learn
    "evaluate": {"batch_size": 256, "max_new_tokens": 2},
    "adapt": {"regression_questions": 0, "tolerance": TOLERANCE, "drift": 0.2, "settle_seconds": 0.0, "replay": 0.8,
              "sft": {"steps": 80, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.05},
              # the embedded default's stream recipe is off here: on this denser world (20 x 20 names) replaying
              # the pre-training mixture hurt the regression set (0.68 -> 0.42), and a test that wants a lambda
              # choice or a consolidation asks for it
              "replay_pretraining": 0.0, "lambdas": [], "consolidate": {"on_forgetting": False}},
}


def write_params(root: Path, name: str = "params.yaml", **adapt) -> Path:
    """The project's params file with `adapt` overrides (another `name` gives a second config, same registry)."""
    data = yaml.safe_load(yaml.safe_dump(PARAMS))
    data["adapt"] = deep_merge(data["adapt"], adapt)
    path = root / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def build_project(root: Path) -> Path:
    """Build the pipeline outputs under `root` through `past.steps`, as the stages do; returns root."""
    from past import steps
    from past.config import load_params
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.layout import Layout

    torch.set_num_threads(1)
    root.mkdir(parents=True, exist_ok=True)
    params: Params = load_params(write_params(root))
    out = Layout(root)
    steps.prepare(params, out.world)
    steps.base(params, out.world, out.base)
    source, target = read_knowledge_set(out.source), read_knowledge_set(out.target)
    steps.source_sft(params, out.base, source, out.source_sft)
    run = steps.skill_rl(params, out.base, out.source_sft, source, out.skill_rl)
    choice = steps.choose_lambda(EvalSpec.from_params(params), run, source, params.skill_rl.rounds,
                                 params.inject.candidates)
    steps.extract(run, out.skill, steps.skill_provenance(params.base.model, out.source, params.skill_rl.rounds,
                                                         choice.lam, params.seed))
    steps.target_sft(params, out.base, target, out.target_sft)
    steps.inject(out.target_sft, out.skill, steps.resolved_lambda(out.skill, params.inject.lam), out.past)
    return root


def copy_project(template: Path, dest: Path, **adapt) -> Path:
    """A fresh project (own registry, landing folder, Prefect cache) from the built template."""
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns("registry", "landing"))
    (dest / "landing").mkdir()
    return write_params(dest, **adapt)


def make_drop(landing: Path, name: str, index: int, marker: str = "manifest", people: int = DROP_PEOPLE) -> Path:
    """Drop number `index` of new people (disjoint from the world and from other indices), copied in as a
    careful user would: files into a hidden folder, the marker last, then one rename into the landing folder."""
    import hashlib
    import json

    from past.jsonl import jsonl_text
    from past.knowledge.drops import world_drop
    from past.knowledge.world import build_world

    ks = world_drop(build_world(WORLD, 0), WORLD, people, index, 0)
    tmp, folder = landing / f".{name}.copying", landing / name
    tmp.mkdir(parents=True)
    files = {}
    for file, rows in (("documents.jsonl", ks.documents), ("questions.jsonl", ks.questions)):
        data = jsonl_text(rows).encode()
        (tmp / file).write_bytes(data)
        files[file] = hashlib.sha256(data).hexdigest()
    if marker == "manifest":
        (tmp / "manifest.json").write_text(json.dumps({"name": name, "kind": "qa", "files": files}))
    else:
        (tmp / "_READY").write_text("")
    tmp.rename(folder)
    return folder


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
