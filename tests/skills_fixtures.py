"""Tiny random Llamas on disk, shared by the skill tests.

A "family" is a base model and three fine-tunes of it, built the way PaST uses them: sft_s (source SFT),
rl_s (RL on top of sft_s) and sft_t (target SFT). Weights are real LlamaForCausalLM parameters perturbed
by different random deltas, saved with `save_pretrained` in several shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

torch.set_num_threads(1)
hf_logging.disable_progress_bar()



def tiny_config(**overrides) -> LlamaConfig:
    kw = dict(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=False,
    )
    kw.update(overrides)
    return LlamaConfig(**kw)


def save_model(model: LlamaForCausalLM, path: Path, dtype: torch.dtype) -> Path:
    # ~6.7k parameters: 3 KB per byte of dtype gives 3+ shards whatever the dtype
    model.to(dtype).save_pretrained(path, max_shard_size=f"{3 * dtype.itemsize}KB")
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    return path


def perturbed(model: LlamaForCausalLM, seed: int, scale: float = 0.05) -> LlamaForCausalLM:
    g = torch.Generator().manual_seed(seed)
    out = LlamaForCausalLM(model.config)
    out.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return out


def make_family(root: Path, dtype: torch.dtype, seed: int = 0, **config) -> dict[str, Path]:
    torch.manual_seed(seed)
    base = LlamaForCausalLM(tiny_config(**config))
    sft_s = perturbed(base, seed + 1)
    rl_s = perturbed(sft_s, seed + 2, scale=0.02)
    sft_t = perturbed(base, seed + 3)
    root.mkdir(parents=True, exist_ok=True)
    return {
        name: save_model(model, root / name, dtype)
        for name, model in {"base": base, "sft_s": sft_s, "rl_s": rl_s, "sft_t": sft_t}.items()
    }


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a HF folder, read with the reference safetensors library (not ours)."""
    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(f))
    return out


_CACHE: dict = {}


def family(tmp_path_factory, dtype: torch.dtype, **config) -> dict[str, Path]:
    """Built once per session for each (dtype, config)."""
    key = (dtype, tuple(sorted(config.items())))
    if key not in _CACHE:
        _CACHE[key] = make_family(tmp_path_factory.mktemp("family"), dtype, **config)
    return _CACHE[key]
