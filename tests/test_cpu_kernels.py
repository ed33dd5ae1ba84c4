"""The same numbers on every x86 CPU: the kernel pins (past.kernels), and a fresh clone's `dvc repro` of the first
stages, on an emulated CPU without AVX-512 or AMX, reproducing the committed dvc.lock bit for bit."""

import os
import subprocess
import sys

import pytest
import yaml

from past.kernels import PINNED, pin_cpu_kernels
from past.pipeline_repo import ROOT, run
from test_stage_deps import copy_checkout

# What a CPU with AVX2 alone offers torch's kernel libraries (ATen loops, MKL GEMMs, oneDNN)
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_the_pins_fill_in_only_what_the_environment_leaves_unset():
    environ = {"MKL_CBWR": "AUTO"}
    assert pin_cpu_kernels(environ) == {key: value for key, value in PINNED.items() if key != "MKL_CBWR"}
    assert environ == {**PINNED, "MKL_CBWR": "AUTO"}  # the user's choice stays
    native = {"PAST_CPU_KERNELS": "native"}
    assert pin_cpu_kernels(native) == {} and native == {"PAST_CPU_KERNELS": "native"}


def test_importing_past_pins_the_kernels_before_torch_computes():
    """ATen reads its capability at the first kernel dispatch: importing past first is enough, even after torch."""
    probe = "import torch, past; print(torch.backends.cpu.get_cpu_capability(), __import__('os').environ['MKL_CBWR'])"
    env = {key: value for key, value in os.environ.items() if key not in PINNED and key != "PAST_CPU_KERNELS"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["AVX2", "COMPATIBLE"]


def _locked_outs(lock: dict, stage: str) -> dict:
    return {out["path"]: out["md5"] for out in lock["stages"][stage]["outs"]}


@pytest.mark.e2e
def test_a_fresh_clone_on_a_cpu_without_avx512_reproduces_the_committed_lock(tmp_path):
    """`dvc repro base` (prepare, then 700 steps of pre-training on two threads) on an emulated AVX2-only CPU gives
    exactly the committed data/world and models/base: the lock was written on a CPU with AVX-512."""
    clone = copy_checkout(ROOT, tmp_path / "clone")  # what `git clone` gives a new user: no DVC cache
    committed = yaml.safe_load((clone / "dvc.lock").read_text())
    run(["dvc", "repro", "base"], clone, env=AVX2_ONLY)
    reproduced = yaml.safe_load((clone / "dvc.lock").read_text())
    for stage in ("prepare", "base"):
        assert _locked_outs(reproduced, stage) == _locked_outs(committed, stage), stage
