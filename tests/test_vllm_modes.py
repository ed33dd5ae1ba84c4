"""GRPO's vLLM modes (`grpo.vllm.mode`): auto resolved for the device and the environment (vLLM colocated only
where there are CUDA and vllm, else transformers' generate, said in one line), explicit colocate and server
refused where they cannot run, and each mode's fields on a real TRL GRPOConfig. CUDA and vllm are pretended
here: `device` is an argument, and `vllm_installed` the one place that looks for vllm."""

import pytest

from past.config import ConfigError, GRPOParams, VLLMParams, validate_params
from past.planner import PlanError, resolved_vllm_mode
from past.training import grpo
from past.training.arguments import TrainingRun
from past.training.grpo import check_sampling, grpo_config, sampling_mode, vllm_arguments

SERVER = "http://10.0.0.2:8000"


def pretend_vllm(monkeypatch, installed: bool = True) -> None:
    """vllm importable here or not, as `vllm_installed` answers (nothing imports vllm)."""
    monkeypatch.setattr(grpo, "vllm_installed", lambda: installed)


@pytest.mark.parametrize("installed", [True, False], ids=["vllm", "no-vllm"])
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_auto_colocates_only_with_cuda_and_vllm_and_says_why(device, installed, monkeypatch, capsys):
    pretend_vllm(monkeypatch, installed)
    mode = sampling_mode(VLLMParams(), device, "oracle.grpo.vllm")
    assert mode == ("colocate" if device == "cuda" and installed else "off")
    line = {("cuda", True): "oracle.grpo.vllm.mode auto: CUDA and vllm are here, sampling with vLLM colocated in "
                            "the trainer",
            ("cuda", False): "oracle.grpo.vllm.mode auto: vllm is not installed here, sampling with transformers' "
                             "generate",
            ("cpu", True): "oracle.grpo.vllm.mode auto: no CUDA device here, sampling with transformers' generate",
            ("cpu", False): "oracle.grpo.vllm.mode auto: no CUDA device here, sampling with transformers' generate"}
    assert capsys.readouterr().out.splitlines() == [line[device, installed]]  # one line


def test_the_planner_plans_auto_for_the_gpu_environment():
    """`past plan` may run where vllm is not (a laptop planning a GPU run): it assumes the GPU environment's vllm;
    the trainer passes what it finds."""
    assert resolved_vllm_mode(VLLMParams(), "cuda") == "colocate"
    assert resolved_vllm_mode(VLLMParams(), "cuda", vllm_installed=False) == "off"
    assert resolved_vllm_mode(VLLMParams(), "cpu") == "off"
    assert resolved_vllm_mode(VLLMParams(mode="colocate"), "cpu", vllm_installed=False) == "colocate"  # refused later


@pytest.mark.parametrize("mode", ["colocate", "server"])
@pytest.mark.parametrize("key", ["skill_rl.grpo.vllm", "oracle.grpo.vllm"])
def test_colocate_and_server_without_vllm_are_refused_naming_the_key_and_the_setup(mode, key, monkeypatch, capsys):
    """The check a step can make before it loads anything (`check_sampling`), and the one the GRPO config makes."""
    pretend_vllm(monkeypatch, installed=False)
    for check in (check_sampling, vllm_arguments):
        with pytest.raises(PlanError) as err:
            check(VLLMParams(mode=mode, server_url=SERVER), "cuda", key)
        message = str(err.value)
        assert message.startswith(f"{key}.mode: {mode} needs vllm importable in the trainer's environment")
        assert "bash scripts/setup-gpu-env.sh" in message and "mode: off" in message
    assert capsys.readouterr().out == ""
    for fine in (VLLMParams(), VLLMParams(mode="off")):
        check_sampling(fine, "cuda", key)  # auto and off run anywhere, and the check says nothing
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("installed", [True, False], ids=["vllm", "no-vllm"])
@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_colocate_and_server_are_refused_on_cpu(mode, installed, monkeypatch):
    pretend_vllm(monkeypatch, installed)
    with pytest.raises(PlanError, match=rf"oracle.grpo.vllm.mode: {mode} needs a CUDA device"):
        vllm_arguments(VLLMParams(mode=mode, server_url=SERVER), "cpu", "oracle.grpo.vllm")


@pytest.mark.parametrize("installed", [True, False], ids=["vllm", "no-vllm"])
def test_off_adds_nothing_anywhere(installed, monkeypatch):
    """off (and auto without CUDA or vllm) adds no GRPOConfig field: TRL's default, transformers' generate."""
    pretend_vllm(monkeypatch, installed)
    assert vllm_arguments(VLLMParams(mode="off"), "cuda") == vllm_arguments(VLLMParams(mode="off"), "cpu") == {}
    assert vllm_arguments(VLLMParams(), "cpu") == {}


def test_the_config_of_auto_on_a_gpu_without_vllm_samples_with_generate(monkeypatch, tmp_path, capsys):
    """The project's builder (grpo_config) on a pretend CUDA device without vllm: a real GRPOConfig that does not
    use vLLM, where `auto` used to ask for colocate and fail."""
    pretend_vllm(monkeypatch, installed=False)
    monkeypatch.setattr(grpo, "device", lambda: "cuda")  # what the builder asks; the trainer's own args stay CPU's
    config = grpo_config(tmp_path, GRPOParams(), seed=0, run=TrainingRun(), key="skill_rl.grpo")
    assert config.use_vllm is False and config.num_generations == GRPOParams().num_generations
    assert "vllm is not installed here, sampling with transformers' generate" in capsys.readouterr().out


def test_colocate_maps_every_knob_onto_trl(monkeypatch, tmp_path):
    from trl import GRPOConfig

    pretend_vllm(monkeypatch)
    vllm = VLLMParams(mode="auto", gpu_memory_utilization=0.45, sleep=True, tensor_parallel_size=2)
    args = vllm_arguments(vllm, "cuda")
    assert args == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.45,
                    "vllm_enable_sleep_mode": True, "vllm_tensor_parallel_size": 2}
    # TRL takes these fields as they are (GRPOConfig checks for vllm only when the trainer starts)
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **args)
    assert (config.use_vllm, config.vllm_mode, config.vllm_gpu_memory_utilization, config.vllm_enable_sleep_mode,
            config.vllm_tensor_parallel_size) == (True, "colocate", 0.45, True, 2)


def test_server_maps_the_url_onto_trl(monkeypatch, tmp_path):
    from trl import GRPOConfig

    pretend_vllm(monkeypatch)
    args = vllm_arguments(VLLMParams(mode="server", server_url=SERVER), "cuda")
    assert args == {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": SERVER}
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **args)
    assert (config.use_vllm, config.vllm_mode, config.vllm_server_base_url) == (True, "server", SERVER)


def test_server_mode_needs_its_url():
    with pytest.raises(ConfigError,
                       match=r"oracle.grpo.vllm.server_url: must be set for oracle.grpo.vllm.mode: server"):
        validate_params({"oracle": {"grpo": {"vllm": {"mode": "server"}}}})
    with pytest.raises(ConfigError, match=r"skill_rl.grpo.vllm.gpu_memory_utilization: 1.0 is above the maximum 0.99"):
        validate_params({"skill_rl": {"grpo": {"vllm": {"gpu_memory_utilization": 1.0}}}})


@pytest.mark.parametrize("step", ["skill_rl", "oracle"])
def test_the_rl_steps_refuse_before_any_model_loads(step, tmp_path):
    """On CPU an explicit colocate stops the step before it reads its input folder (which does not even exist)."""
    from past import steps
    from past.config import Params

    params = Params.model_validate({step: {"grpo": {"vllm": {"mode": "colocate"}}}})
    missing = tmp_path / "no-such-model"
    with pytest.raises(PlanError, match=rf"^{step}.grpo.vllm.mode: colocate needs a CUDA device"):
        if step == "skill_rl":
            steps.skill_rl(params, missing, missing, None, tmp_path / "out")
        else:
            steps.oracle(params, missing, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()
