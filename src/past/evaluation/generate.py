"""Batched greedy generation in-process (the `hf` backend): left padding, a progress bar."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int,
                     desc: str = "generating") -> list[str]:
    """Greedy completions for `prompts`, in order."""
    model.eval()
    tokenizer.padding_side = "left"  # new tokens go to the right of every prompt in the batch
    answers: list[str] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch", leave=False):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True)
        batch = batch.to(model.device)
        output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return answers
