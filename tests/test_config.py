"""params.yaml is checked before any work: errors name the key."""

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from past.config import (AdaptParams, ConfigError, GRPOParams, Params, SFTParams, WorldParams, load_params,
                         validate_params)

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_repository_params_file_equals_the_model_defaults():
    """One set of defaults: params.yaml spells out the schema's defaults, so the two can never drift apart."""
    def flat(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    in_file, defaults = dict(flat(load_params(ROOT / "params.yaml").model_dump())), dict(flat(Params().model_dump()))
    assert {k: (v, defaults[k]) for k, v in in_file.items() if v != defaults[k]} == {}  # key: (params.yaml, default)
    assert in_file["evaluate.lambdas"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    # every group of the schema is written out in the file
    assert set(yaml.safe_load((ROOT / "params.yaml").read_text())) == set(Params.model_fields)


def test_every_knob_has_help_text():
    def groups(model):
        yield model
        for f in model.model_fields.values():
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
                yield from groups(f.annotation)

    for group in groups(Params):
        for name, f in group.model_fields.items():
            if not (isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)):  # a knob, not a group
                assert f.description, f"{group.__name__}.{name} has no description"


def test_missing_keys_take_defaults(tmp_path):
    params = load_params(write(tmp_path, {"seed": 3, "inject": {"lam": 1}}))
    assert params.seed == 3
    assert params.inject.lam == 1.0 and isinstance(params.inject.lam, float)
    assert load_params(write(tmp_path, {"inject": {"lam": None}})).inject.lam is None  # null: the validated choice
    assert params.base.model == "tiny"


@pytest.mark.parametrize("data, message", [
    ({"sede": 1}, "sede: unknown key (did you mean 'seed'?)"),
    ({"skill_rl": {"grpo": {"stpes": 5}}}, "skill_rl.grpo.stpes: unknown key (did you mean 'skill_rl.grpo.steps'?)"),
    ({"inject": {"lam": "big"}}, "inject.lam: expected a number or null, got 'big'"),
    ({"source_sft": {"steps": -5}}, "source_sft.steps: -5 is below the minimum 1"),
    ({"prepare": {"world": {"p0_people": 2.5}}}, "prepare.world.p0_people: expected an integer, got 2.5"),
    ({"evaluate": {"lambdas": [0.5, "x"]}}, "evaluate.lambdas[1]: 'x' is not a number"),
    ({"evaluate": {"lambdas": 0.5}}, "evaluate.lambdas: expected a list"),
    ({"base": {"steps": True}}, "base.steps: expected an integer, got True"),
    ({"skill_rl": {"grpo": {"reward": "bleu"}}}, "skill_rl.grpo.reward: 'bleu' is not one of"),
    ({"evaluate": {"metric": "bleu"}}, "evaluate.metric: 'bleu' is not one of"),
    ({"evaluate": {"metric": "judge"}}, "evaluate.metric: judge needs evaluate.judge_url"),
    ({"evaluate": {"metric": "call_success"}}, "call_success needs prepare.source: toolbench"),
    ({"prompt": "no placeholder"}, "prompt: must contain '{question}'"),
    ({"base": 3}, "base: expected a mapping, got int"),
    # strict: no string is read as a number, no boolean as a number; NaN and infinity are refused
    ({"inject": {"lam": "1.0"}}, "inject.lam: expected a number or null, got '1.0'"),
    ({"inject": {"lam": True}}, "inject.lam: expected a number or null, got True"),
    ({"base": {"steps": "1000"}}, "base.steps: expected an integer, got '1000'"),
    ({"inject": {"lam": float("nan")}}, "inject.lam: nan is not a finite number"),
    ({"skill_rl": {"grpo": {"lr": float("inf")}}}, "skill_rl.grpo.lr: inf is not a finite number"),
    ({"evaluate": {"lambdas": [0.0, float("-inf")]}}, "evaluate.lambdas[1]: -inf is not a finite number"),
    ({"adapt": {"lam": float("nan")}}, "adapt.lam: nan is not a finite number"),
    ({"inject": {"lam": 101}}, "inject.lam: 101 is above the maximum 100.0"),
    ({"inject": {"candidates": []}}, "inject.candidates: must not be empty"),
    ({"inject": {"candidates": [0.5, "x"]}}, "inject.candidates[1]: 'x' is not a number"),
    ({"prepare": {"validation_fraction": 0.9}}, "prepare.validation_fraction: 0.9 is above the maximum 0.5"),
    ({"prepare": {"validation_fraction": -0.1}}, "prepare.validation_fraction: -0.1 is below the minimum 0.0"),
    # a choice names every allowed value
    ({"skill_rl": {"grpo": {"reward": "token_f1"}}},
     "skill_rl.grpo.reward: 'token_f1' is not one of exact_match, f1, contained, call_success"),
    ({"evaluate": {"backend": "tgi"}}, "evaluate.backend: 'tgi' is not one of hf, vllm"),
    ({"adapt": {"on_top": "sft"}}, "adapt.on_top: 'sft' is not one of target, base"),
    ({"chat": True}, "chat: True is not one of auto, on, off (quote on and off"),
    ({"skill_rl": {"grpo": {"lrr": 0.1}}}, "skill_rl.grpo.lrr: unknown key (did you mean 'skill_rl.grpo.lr'?)"),
    ({"adapt": {"sft": {"stesp": 1}}}, "adapt.sft.stesp: unknown key (did you mean 'adapt.sft.steps'?)"),
    ({"evaluate": {"lambdas": []}}, "evaluate.lambdas: must not be empty"),
    ({"evaluate": {"vllm_args": ["--enforce-eager", 0]}}, "evaluate.vllm_args[1]: 0 is not a string"),
    ({"adapt": {"lam": "high"}}, "adapt.lam: expected a number or null, got 'high'"),
    ({"adapt": {"regression_splits": ["eval", 3]}}, "adapt.regression_splits[1]: 3 is not a string"),
    ({"prepare": {"loogle": {"overlap_words": 512}}},
     "prepare.loogle.overlap_words: must be below prepare.loogle.chunk_words"),
    ({"skill_rl": {"grpo": {"reward": "call_success"}}},
     "skill_rl.grpo.reward: call_success needs prepare.source: toolbench"),
])
def test_bad_values_name_the_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


@pytest.mark.parametrize("text, message", [
    ("inject:\n  lam: .nan\n", "inject.lam: nan is not a finite number"),
    ("skill_rl:\n  grpo:\n    lr: .inf\n", "skill_rl.grpo.lr: inf is not a finite number"),
    ("evaluate:\n  lambdas: [0.5, -.inf]\n", "evaluate.lambdas[1]: -inf is not a finite number"),
    ("chat: on\n", "chat: True is not one of auto, on, off"),
    ("- seed\n", "top level: expected a mapping, got list"),
])
def test_yaml_spellings_are_refused(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: ")) as err:
        load_params(path)
    assert message in str(err.value)


def test_validate_params_checks_a_mapping_without_a_file():
    assert validate_params({"adapt": {"lam": 1}}).adapt.lam == 1.0
    assert validate_params({"prepare": {"source": "toolbench"}, "evaluate": {"metric": "call_success"},
                            "skill_rl": {"grpo": {"reward": "call_success"}}}).evaluate.metric == "call_success"
    with pytest.raises(ConfigError, match="^evaluate.metric: judge needs evaluate.judge_url$"):
        validate_params({"evaluate": {"metric": "judge"}})
    assert validate_params({"evaluate": {"metric": "judge", "judge_url": "http://127.0.0.1:1/v1"}}).evaluate.metric


def test_groups_build_directly_are_immutable_and_copy_with_updates():
    world = WorldParams(first_names=20, p0_people=60)
    assert world.first_names == 20 and world.last_names == Params().prepare.world.last_names
    assert AdaptParams().sft == SFTParams(steps=200, lr=3e-4)  # a nested group with defaults of its own
    assert Params().adapt.sft.steps == 200 and Params().source_sft.steps == 400
    with pytest.raises(ValidationError):
        world.first_names = 3
    with pytest.raises(ValidationError):
        GRPOParams(reward="token_f1")
    with pytest.raises(ValidationError):
        SFTParams(lr=float("nan"))
    params = Params()
    assert params.model_copy(update={"seed": 7}).seed == 7 and params.seed == 0
    assert params.source_sft.model_dump() == {"steps": 400, "lr": 1e-3, "batch_size": 32, "warmup_ratio": 0.05}
    assert Params().evaluate.lambdas is not Params().evaluate.lambdas  # no default shared between instances
