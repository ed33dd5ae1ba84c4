"""The TRL reward wrapper around past.scoring: what RL optimises is exactly what the benchmark measures.

TRL calls a reward as `reward(completions, **dataset_columns) -> list[float]`.
"""

from __future__ import annotations

from past.scoring import REWARDS, SCORERS


def reward_function(name: str, tools: list[dict] | None = None):
    """The TRL reward for scorer `name` (one of past.scoring.REWARDS), reading the dataset's `answers` column.

    `call_success` (closed-book tool use) grades the call against the knowledge set's `tools` schemas.
    """
    if name == "call_success":
        from past.knowledge.toolbench import call_success

        if not tools:
            raise ValueError("reward call_success needs the knowledge set's tools")
        by_name = {t["name"]: t for t in tools}
        score = lambda prediction, answers: call_success(prediction, answers, by_name)  # noqa: E731
    elif name in SCORERS:
        score = SCORERS[name]
    else:
        raise ValueError(f"unknown reward {name!r}: one of {', '.join(REWARDS)}")

    def reward(completions, answers, **_columns) -> list[float]:
        return [score(_text(c), a) for c, a in zip(completions, answers)]

    reward.__name__ = name
    return reward


def _text(completion) -> str:
    # conversational datasets give a list of messages; plain ones give a string
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion
