"""Closed-book accuracy of a model on a question list: exact match, token F1 and answer-contained."""

from __future__ import annotations

from past.evaluation.generate import generate_answers
from past.prompting import render_prompts, uses_chat
from past.scoring import SCORERS


def score_answers(predictions: list[str], questions: list[dict], tools: list[dict] | None = None) -> dict[str, float]:
    """Mean exact match, F1 and answer-contained; with `tools` (closed-book tool use) also call success."""
    if not questions:
        raise ValueError("no questions to score")
    if len(predictions) != len(questions):
        raise ValueError(f"{len(predictions)} predictions for {len(questions)} questions")
    n = len(questions)
    scores = {name: sum(score(p, q["answers"]) for p, q in zip(predictions, questions)) / n
              for name, score in SCORERS.items()}
    scores["questions"] = n
    if tools:
        from past.knowledge.toolbench import call_success

        by_name = {t["name"]: t for t in tools}
        scores["call_success"] = sum(call_success(p, q["answers"], by_name) for p, q in zip(predictions, questions)) / n
    return scores


def closed_book_predictions(model, tokenizer, questions: list[dict], prompt: str, batch_size: int,
                            max_new_tokens: int, desc: str = "evaluating", chat: str = "auto") -> list[str]:
    """Greedy answers of the in-process `hf` backend, the prompt in the chat template where one is used."""
    prompts = render_prompts(tokenizer, prompt, questions, chat)
    return generate_answers(model, tokenizer, prompts, batch_size, max_new_tokens, desc=desc,
                            add_special_tokens=not uses_chat(tokenizer, chat))

