"""Closed-book answers through the spec's generation backend, scored (and judged, when configured).

`hf` generates in-process (batched, left padding, progress bar). `vllm` serves the model folder from
vLLM's own environment and asks its OpenAI-compatible API; a model held in memory (a lambda sweep
point) is saved to a temporary folder first. Both render prompts the same way and decode greedily, so
they give the same answers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from past.evaluation.metrics import closed_book_predictions, score_answers
from past.evaluation.spec import EvalSpec
from past.prompting import render_prompts, uses_chat


def closed_book_answers(model, tokenizer, questions: list[dict], spec: EvalSpec, desc: str = "evaluating") -> list[str]:
    """Greedy answers of `model` (a loaded model or a saved folder) through `spec.backend`."""
    if spec.backend == "hf":
        if isinstance(model, (str, Path)):
            from past.modeling import load_model

            model = load_model(model)
        return closed_book_predictions(model, tokenizer, questions, spec.prompt, spec.batch_size, spec.max_new_tokens,
                                       desc=desc, chat=spec.chat)
    from past.evaluation.vllm_backend import completions

    prompts = render_prompts(tokenizer, spec.prompt, questions, spec.chat)
    with tempfile.TemporaryDirectory(prefix="past-vllm-") as tmp:
        folder = model
        if not isinstance(model, (str, Path)):
            from past.modeling import save_model

            folder = save_model(model, tokenizer, Path(tmp) / "model")
        with vllm_server(folder, spec) as url:
            return completions(url, "past", prompts, spec.max_new_tokens,
                               add_special_tokens=not uses_chat(tokenizer, spec.chat))


def vllm_server(folder, spec: EvalSpec):
    """The vLLM server `spec` describes for one model folder (its venv, extra flags, tensor parallelism)."""
    from past.evaluation.vllm_backend import VLLMServer

    return VLLMServer(folder, venv=spec.vllm_venv, extra_args=list(spec.vllm_args),
                      tensor_parallel_size=spec.tensor_parallel_size)


def closed_book_eval(model, tokenizer, questions: list[dict], spec: EvalSpec, desc: str = "evaluating",
                     tools: list[dict] | None = None, judge=None) -> dict[str, float]:
    """Exact match, F1, answer-contained (call success, given `tools`; judge accuracy, given a judge:
    pass one `spec.judge()` to share its cache across models)."""
    predictions = closed_book_answers(model, tokenizer, questions, spec, desc)
    scores = score_answers(predictions, questions, tools)
    judge = judge if judge is not None else spec.judge()
    if judge is not None:
        scores["judge"] = judge.accuracy(predictions, questions)
    return scores
