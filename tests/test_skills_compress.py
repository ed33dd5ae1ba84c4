"""Low-rank skills: truncated SVD per matrix, saved as a PEFT LoRA adapter."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from transformers import LlamaForCausalLM

from past.cli import main
from past.skills import SkillVector, extract_skill, inject
from past.skills.compress import compress_skill
from skills_fixtures import family, load_weights


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    models = family(tmp_path_factory, torch.float32)
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path_factory.mktemp("skill") / "v.safetensors")
    return models, skill, SkillVector.load(skill)


def best_rank_k(d: torch.Tensor, k: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(d, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vh[:k]


@pytest.mark.parametrize("rank", [2, 6])
def test_adapter_is_best_rank_k_and_peft_agrees(setup, tmp_path, rank):
    models, skill, v = setup
    rep = compress_skill(skill, tmp_path / "adapter", rank=rank)
    out = inject(models["sft_t"], [tmp_path / "adapter"], [1.0], tmp_path / "out")
    target, got = load_weights(models["sft_t"]), load_weights(out)
    peft = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(models["sft_t"]), tmp_path / "adapter").merge_and_unload().state_dict()
    err_sq = 0.0
    for name, d in v.tensors.items():
        if d.dim() == 2:  # Eckart-Young: the truncated SVD is the best rank-k approximation
            want = target[name] + best_rank_k(d, rank)
            torch.testing.assert_close(got[name], want, rtol=1e-4, atol=1e-5)
        else:  # 1-D deltas (norm weights) have no LoRA form and are dropped
            assert torch.equal(got[name], target[name])
        torch.testing.assert_close(peft[name], got[name], rtol=1e-5, atol=1e-6)
        err_sq += float(((got[name] - target[name]) - d).pow(2).sum())
    assert rep["relative_error"] == pytest.approx((err_sq / v.norm() ** 2) ** 0.5, rel=1e-3)
    assert rep["max_rank"] == rank
    assert rep["lora_parameters"] == sum(rank * sum(d.shape) for d in v.tensors.values() if d.dim() == 2)


def test_energy_threshold_and_full_rank(setup, tmp_path, capsys):
    models, skill, v = setup
    rep = compress_skill(skill, tmp_path / "e90", energy=0.9)
    config = json.loads((tmp_path / "e90" / "adapter_config.json").read_text())
    q = "model.layers.0.self_attn.q_proj"
    s = torch.linalg.svdvals(v[q + ".weight"]) ** 2
    k = int((torch.cumsum(s, 0) < 0.9 * s.sum()).sum()) + 1  # smallest k keeping 90%
    assert config["rank_pattern"].get(q.replace(".", "\\."), config["r"]) == k
    assert rep["relative_error"] < 0.4

    capsys.readouterr()
    assert main(["skill", "compress", str(skill), "--rank", "full", "-o", str(tmp_path / "full"), "-q"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["relative_error"] == pytest.approx(rep["dropped_norm_fraction"], abs=1e-4)  # only 1-D tensors lost
    got = load_weights(inject(models["sft_t"], [tmp_path / "full"], [0.5], tmp_path / "out"))
    target = load_weights(models["sft_t"])
    name = "model.embed_tokens.weight"  # an Embedding: PEFT's transposed factor layout
    torch.testing.assert_close(got[name], target[name] + 0.5 * v[name], rtol=1e-4, atol=1e-5)
