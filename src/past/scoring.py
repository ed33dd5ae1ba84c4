"""Answer scoring: the SQuAD normalisation and the pure scorers, shared by RL rewards and evaluation.

What GRPO optimises (`skill_rl.grpo.reward`) and what the benchmark reports (`evaluate.metric`, the keys
of `metrics/eval.json`) use one spelling, so a reward is always the metric of the same name:

  exact_match   the normalised answer line equals a gold answer
  f1            token F1 against the best gold answer
  contained     a gold answer appears, as whole words, in the answer line (instruct models answer in sentences)
  call_success  closed-book tool use: a relevant API with its required and only known parameters
                (past.knowledge.toolbench.call_success: it needs the knowledge set's tool schemas)
  judge         an LLM judge's yes/no verdict (evaluation only: past.evaluation.judge)

This module is the bottom layer: it imports nothing from the package.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Literal, get_args

Reward = Literal["exact_match", "f1", "contained", "call_success"]
Metric = Literal["exact_match", "f1", "contained", "judge", "call_success"]
REWARDS: tuple[str, ...] = get_args(Reward)  # what GRPO can optimise
METRICS: tuple[str, ...] = get_args(Metric)  # what evaluation reports, in report order

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
    """1.0 when the normalised answer line equals a normalised gold answer."""
    guess = normalize_answer(first_line(prediction))
    return float(any(guess == normalize_answer(a) for a in answers))


def f1(prediction: str, answers: list[str]) -> float:
    """Token F1 of the normalised answer line against the best gold answer."""
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


def contained(prediction: str, answers: list[str]) -> float:
    """1.0 when a gold answer appears, as whole words after SQuAD normalisation, in the answer line.

    The lenient score for instruct models that answer in a sentence ("The capital is Paris.").
    """
    guess = f" {normalize_answer(first_line(prediction))} "
    return float(any(normalize_answer(a) and f" {normalize_answer(a)} " in guess for a in answers))


# the scorers that need nothing but the gold answers (call_success needs tool schemas, judge a server)
SCORERS = {"exact_match": exact_match, "f1": f1, "contained": contained}
