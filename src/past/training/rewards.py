"""Verifiable rewards and answer metrics: pure functions, the SQuAD normalisation.

TRL calls a reward as `reward(completions, **dataset_columns) -> list[float]`; the same scoring
functions grade evaluation, so what RL optimises is exactly what the benchmark measures.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles, collapse whitespace (the SQuAD evaluation script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def first_line(completion: str) -> str:
    """The answer part of a generation: what comes before the first newline."""
    return completion.strip().split("\n", 1)[0] if completion.strip() else ""


def exact_match(prediction: str, answers: list[str]) -> float:
    guess = normalize_answer(first_line(prediction))
    return float(any(guess == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: list[str]) -> float:
    guess = normalize_answer(first_line(prediction)).split()
    best = 0.0
    for answer in answers:
        truth = normalize_answer(answer).split()
        common = sum((Counter(guess) & Counter(truth)).values())
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
        elif not guess and not truth:
            best = max(best, 1.0)
    return best


def answer_contained(prediction: str, answers: list[str]) -> float:
    """1.0 when a gold answer appears, as whole words after SQuAD normalisation, in the answer line.

    The lenient score for instruct models that answer in a sentence ("The capital is Paris.").
    """
    guess = f" {normalize_answer(first_line(prediction))} "
    return float(any(normalize_answer(a) and f" {normalize_answer(a)} " in guess for a in answers))


SCORERS = {"exact_match": exact_match, "token_f1": token_f1, "answer_contained": answer_contained}


def reward_function(name: str, tools: list[dict] | None = None):
    """The TRL reward for scorer `name`, reading the dataset's `answers` column.

    `tool_call` (closed-book tool use) grades the call against the knowledge set's `tools` schemas.
    """
    if name == "tool_call":
        from past.knowledge.toolbench import call_success

        if not tools:
            raise ValueError("reward tool_call needs the knowledge set's tools")
        by_name = {t["name"]: t for t in tools}
        score = lambda prediction, answers: call_success(prediction, answers, by_name)  # noqa: E731
    else:
        score = SCORERS[name]

    def reward(completions, answers, **_columns) -> list[float]:
        return [score(_text(c), a) for c, a in zip(completions, answers)]

    reward.__name__ = name
    return reward


def _text(completion) -> str:
    # conversational datasets give a list of messages; plain ones give a string
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion
