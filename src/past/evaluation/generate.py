"""Batched greedy generation in-process (the `hf` backend): left padding, a progress bar."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int,
                     desc: str = "generating", add_special_tokens: bool = True) -> list[str]:
    """Greedy completions for `prompts`, in order.

    Prompts rendered with a chat template already hold their special tokens: pass
    `add_special_tokens=False`. Generation stops at the tokenizer's EOS or any EOS the model's
    generation config names (instruct models end a turn with one, base models with another).
    """
    model.eval()
    tokenizer.padding_side = "left"  # new tokens go to the right of every prompt in the batch
    answers: list[str] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch", leave=False):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=add_special_tokens)
        batch = batch.to(model.device)
        output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_token_ids(model, tokenizer))
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return answers


def eos_token_ids(model, tokenizer) -> list[int]:
    """The tokenizer's EOS first, then those of the model's generation config (deduplicated)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    configured = [configured] if isinstance(configured, int) else list(configured or [])
    ids = [tokenizer.eos_token_id] + configured if tokenizer.eos_token_id is not None else configured
    return list(dict.fromkeys(ids))
