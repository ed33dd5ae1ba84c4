"""How likely a model finds the gold answers: a continuous score where exact match saturates.

Exact match on a few dozen validation questions is coarse (steps of 1/n) and often reaches 1.0 at several
lambdas at once; the mean log-probability of the gold answer's tokens, given the prompt, still ranks them.
"""

from __future__ import annotations

import torch

from past.prompting import render_prompts, uses_chat


@torch.no_grad()
def answer_log_likelihood(model, tokenizer, questions: list[dict], prompt: str, batch_size: int,
                          chat: str = "auto") -> float:
    """Mean over questions of the mean log-probability per token of each question's first gold answer, scored
    by teacher forcing after the prompt as evaluation renders it (chat template included)."""
    model.eval()
    prompts = render_prompts(tokenizer, prompt, questions, chat)
    chatting = uses_chat(tokenizer, chat)
    special = not chatting  # a chat-rendered prompt already holds its special tokens
    separator = "" if chatting else " "  # the answer follows the opened assistant turn, or `answer :` and a space
    per_question = []
    for start in range(0, len(prompts), batch_size):
        rows = []
        for text, question in zip(prompts[start:start + batch_size], questions[start:start + batch_size]):
            context = tokenizer(text, add_special_tokens=special)["input_ids"]
            # the answer's tokens as generation would emit them after the prompt, not re-merged across it
            answer = tokenizer(separator + question["answers"][0], add_special_tokens=False)["input_ids"]
            if not answer:
                raise ValueError(f"question {question.get('id', start)!r}: its gold answer has no tokens")
            rows.append((context + answer, len(context)))
        per_question += _mean_token_log_probs(model, tokenizer, rows)
    return sum(per_question) / len(per_question)


def _mean_token_log_probs(model, tokenizer, rows: list[tuple[list[int], int]]) -> list[float]:
    """Each (token ids, prompt length) row's mean log-probability of its tokens after the prompt (right padding)."""
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([row + [pad] * (width - len(row)) for row, _ in rows], device=model.device)
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row, _ in rows], device=model.device)
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    means = []
    for i, (row, prompt_length) in enumerate(rows):
        answer = log_probs[i, prompt_length - 1:len(row) - 1]  # position t predicts token t + 1
        means.append(answer.mean().item())
    return means
