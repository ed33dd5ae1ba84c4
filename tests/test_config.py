"""params.yaml is checked before any work: errors name the key."""

import pytest
import yaml

from past.config import ConfigError, Params, load_params


def write(tmp_path, data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_repository_params_file_loads_with_every_stage_group():
    params = load_params("params.yaml")
    assert isinstance(params, Params)
    assert params.evaluate.lambdas == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    assert params.skill_rl.grpo.num_generations >= 2


def test_missing_keys_take_defaults(tmp_path):
    params = load_params(write(tmp_path, {"seed": 3, "inject": {"lam": 1}}))
    assert params.seed == 3
    assert params.inject.lam == 1.0 and isinstance(params.inject.lam, float)
    assert params.base.model == "tiny"


@pytest.mark.parametrize("data, message", [
    ({"sede": 1}, "sede: unknown key (did you mean 'seed'?)"),
    ({"skill_rl": {"grpo": {"stpes": 5}}}, "skill_rl.grpo.stpes: unknown key (did you mean 'skill_rl.grpo.steps'?)"),
    ({"inject": {"lam": "big"}}, "inject.lam: expected a number, got 'big'"),
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
    ({"base": 3}, "base.: expected a mapping"),
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
