"""LoRA adapters as inputs, merged on the fly, checked against PEFT's own merge_and_unload."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaForCausalLM

from past.skills import SkillVector, extract_skill, inject
from skills_fixtures import load_weights

TOL = dict(rtol=1e-5, atol=1e-6)


def make_adapter(base_dir, out_dir, seed, **lora):
    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(**lora))
    with torch.no_grad():  # PEFT initialises B to zero (a no-op adapter); make it a real update
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.normal_(std=0.1)
            elif "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.05)
    peft_model.save_pretrained(out_dir)
    return out_dir


def peft_merged(base_dir, adapter_dir) -> dict[str, torch.Tensor]:
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir), adapter_dir)
    return {k: v.detach().clone() for k, v in model.merge_and_unload().state_dict().items()}


RICH = dict(  # every LoRA feature we merge: Linear and Embedding factors, patterns, a replaced module
    r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"], modules_to_save=["lm_head"],
    rank_pattern={"model.layers.0.self_attn.q_proj": 2}, alpha_pattern={"down_proj": 3},
)


@pytest.mark.parametrize("lora", [RICH, dict(r=3, lora_alpha=5, use_rslora=True, target_modules=["k_proj", "up_proj"])], ids=["rich", "rslora"])
def test_rl_adapter_extract_matches_peft_merge(models, tmp_path, lora):
    adapter = make_adapter(models["sft_s"], tmp_path / "rl_lora", 1, **lora)
    merged = peft_merged(models["sft_s"], adapter)
    sft = load_weights(models["sft_s"])
    skill = SkillVector.load(extract_skill(adapter, models["sft_s"], tmp_path / "v.safetensors"))
    assert set(skill.names) == set(sft)
    changed = 0
    for name in sft:
        want = merged[name] - sft[name]
        torch.testing.assert_close(skill[name], want, **TOL)
        changed += bool(want.abs().max() > 0)
    assert changed >= 4  # the adapter really moved several tensors


def test_lora_target_inject_matches_peft_merge(models, tmp_path):
    # Target SFT done with LoRA on the base model: inject onto the merged target, streaming.
    adapter = make_adapter(models["base"], tmp_path / "target_lora", 2, **RICH)
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v.safetensors")
    out = inject(adapter, [skill], [0.5], tmp_path / "out")
    merged, v = peft_merged(models["base"], adapter), SkillVector.load(skill)
    got = load_weights(out)
    for name, w in got.items():
        torch.testing.assert_close(w, merged[name] + 0.5 * v[name], **TOL)
    assert (out / "config.json").exists() and (out / "tokenizer_config.json").exists()


def test_adapter_as_skill_is_a_partial_delta(models, tmp_path):
    adapter = make_adapter(models["sft_s"], tmp_path / "skill_lora", 3, r=2, lora_alpha=2, target_modules=["o_proj"])
    merged, sft = peft_merged(models["sft_s"], adapter), load_weights(models["sft_s"])
    out = inject(models["sft_t"], [adapter], [2.0], tmp_path / "out")
    target, got = load_weights(models["sft_t"]), load_weights(out)
    for name in target:
        torch.testing.assert_close(got[name], target[name] + 2.0 * (merged[name] - sft[name]), **TOL)
    assert not torch.equal(got["model.layers.1.self_attn.o_proj.weight"], target["model.layers.1.self_attn.o_proj.weight"])
    assert torch.equal(got["model.layers.1.self_attn.q_proj.weight"], target["model.layers.1.self_attn.q_proj.weight"])
