"""past.evaluation.paired against values computed by hand (binomial sums, t quantiles)."""

import pytest

from past.evaluation.paired import interval95, mcnemar


def test_mcnemar_counts_only_the_questions_one_model_answers():
    first = [True, True, False, False, True, False, False, False]
    second = [True, False, True, True, True, True, True, False]
    result = mcnemar(first, second)
    assert (result.gained, result.lost) == (4, 1)
    assert result.p_value == pytest.approx(2 * (1 + 5) / 2 ** 5)  # P(X <= 1), X ~ Bin(5, 1/2), two-sided: 0.375
    assert mcnemar([True] * 10 + [False] * 10, [False] * 10 + [True] * 10).p_value == 1.0  # 10 / 10: no evidence
    assert mcnemar([False] * 10, [True] * 10).p_value == pytest.approx(2 / 2 ** 10)  # 10 / 0
    assert mcnemar([True, False], [True, False]).p_value == 1.0  # nothing discordant
    with pytest.raises(ValueError, match="the same questions"):
        mcnemar([True], [True, False])


def test_the_interval_uses_students_t():
    low, high = interval95([0.1, 0.2, 0.3])
    assert (low + high) / 2 == pytest.approx(0.2)
    assert high - low == pytest.approx(2 * 4.303 * 0.1 / 3 ** 0.5)
    with pytest.raises(ValueError, match="2 to 10"):
        interval95([0.1])
