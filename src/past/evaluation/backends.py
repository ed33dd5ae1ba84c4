"""Closed-book answers through the configured generation backend, scored (and judged, when configured).

`hf` generates in-process (batched, left padding, progress bar). `vllm` serves the model folder from
vLLM's own environment and asks its OpenAI-compatible API; a model held in memory (a lambda sweep
point) is saved to a temporary folder first. Both render prompts the same way and decode greedily, so
they give the same answers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from past.config import Params
from past.evaluation.metrics import closed_book_predictions, score_answers
from past.prompting import render_prompts, uses_chat


def closed_book_answers(model, tokenizer, questions: list[dict], params: Params, desc: str = "evaluating") -> list[str]:
    """Greedy answers of `model` (a loaded model or a saved folder) with `params.evaluate.backend`."""
    ev = params.evaluate
    if ev.backend == "hf":
        if isinstance(model, (str, Path)):
            from past.modeling import load_model

            model = load_model(model)
        return closed_book_predictions(model, tokenizer, questions, params.prompt, ev.batch_size, ev.max_new_tokens,
                                       desc=desc, chat=params.chat)
    from past.evaluation.vllm_backend import VLLMServer, completions

    prompts = render_prompts(tokenizer, params.prompt, questions, params.chat)
    with tempfile.TemporaryDirectory(prefix="past-vllm-") as tmp:
        folder = model
        if not isinstance(model, (str, Path)):
            from past.modeling import save_model

            folder = save_model(model, tokenizer, Path(tmp) / "model")
        with VLLMServer(folder, venv=ev.vllm_venv, extra_args=[str(a) for a in ev.vllm_args]) as url:
            return completions(url, "past", prompts, ev.max_new_tokens,
                               add_special_tokens=not uses_chat(tokenizer, params.chat))


def judge_for(params: Params):
    """The configured LLM judge, or None."""
    ev = params.evaluate
    if not ev.judge_url:
        return None
    from past.evaluation.judge import Judge

    return Judge(ev.judge_url, ev.judge_model, ev.judge_cache)


def closed_book_eval(model, tokenizer, questions: list[dict], params: Params, desc: str = "evaluating",
                     judge=None, tools: list[dict] | None = None) -> dict[str, float]:
    """Exact match, F1, answer-contained (call success, given `tools`; `judge` accuracy, given a judge)."""
    predictions = closed_book_answers(model, tokenizer, questions, params, desc)
    scores = score_answers(predictions, questions, tools)
    if judge is not None:
        scores["judge"] = judge.accuracy(predictions, questions)
    return scores
