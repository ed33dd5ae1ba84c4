"""Closed-book accuracy of a model on a question list: exact match and token F1."""

from __future__ import annotations

from past.evaluation.generate import generate_answers
from past.prompting import question_prompt
from past.training.rewards import exact_match, token_f1


def score_answers(predictions: list[str], questions: list[dict]) -> dict[str, float]:
    if not questions:
        raise ValueError("no questions to score")
    em = sum(exact_match(p, q["answers"]) for p, q in zip(predictions, questions))
    f1 = sum(token_f1(p, q["answers"]) for p, q in zip(predictions, questions))
    return {"exact_match": em / len(questions), "f1": f1 / len(questions), "questions": len(questions)}


def closed_book_scores(model, tokenizer, questions: list[dict], prompt: str, batch_size: int,
                       max_new_tokens: int, desc: str = "evaluating") -> dict[str, float]:
    prompts = [question_prompt(prompt, q) for q in questions]
    predictions = generate_answers(model, tokenizer, prompts, batch_size, max_new_tokens, desc=desc)
    return score_answers(predictions, questions)
