"""Two models on the same questions: the paired test that says whether one answers more than the other by more
than chance (exact McNemar on the questions only one of them answers), and a mean's 95% interval over seeds."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# t(0.975, n - 1) for n = 2..10 seeds
_T975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}


@dataclass(frozen=True)
class Paired:
    gained: int  # questions the second model answers and the first does not
    lost: int  # the other way round
    p_value: float  # exact two-sided McNemar

    def as_dict(self) -> dict:
        return {"gained": self.gained, "lost": self.lost, "p_value": self.p_value}


def mcnemar(first: list[bool], second: list[bool]) -> Paired:
    """Exact two-sided McNemar test of `second` against `first`, question by question: under no difference, each
    question only one of them answers is a fair coin's toss."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} and {len(second)} outcomes: the same questions are needed")
    gained = sum(b and not a for a, b in zip(first, second))
    lost = sum(a and not b for a, b in zip(first, second))
    n, k = gained + lost, min(gained, lost)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return Paired(gained, lost, p)


def interval95(values: list[float]) -> tuple[float, float]:
    """The mean's 95% interval over 2-10 seeds: mean +- t(0.975, n - 1) * s / sqrt(n)."""
    if len(values) not in _T975:
        raise ValueError(f"{len(values)} values: the interval needs 2 to 10")
    mean, half = statistics.mean(values), _T975[len(values)] * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half
