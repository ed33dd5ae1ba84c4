"""`train.group_by_length`: SFT rows reordered into batches of similar length (past.training.sft.length_grouped)."""

import random

import pytest

from past.training.sft import length_grouped


def padding_share(lengths: list[int], batch_size: int) -> float:
    """The share of a padded batch's tokens that are padding, over every batch (each padded to its longest)."""
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return 1 - sum(map(sum, batches)) / sum(max(b) * len(b) for b in batches)


@pytest.fixture
def mixture():
    """Rows like the embedded base's: biographies of 31-47 tokens, question/answer pairs of 12-20, shuffled."""
    rng = random.Random(0)
    lengths = [rng.randint(31, 47) for _ in range(700)] + [rng.randint(12, 20) for _ in range(300)]
    rng.shuffle(lengths)
    return [f"row {i}" for i in range(len(lengths))], lengths


def test_grouped_batches_hold_the_same_rows_with_a_fraction_of_the_padding(mixture):
    rows, lengths = mixture
    grouped = length_grouped(rows, lengths, 32, random.Random(1))
    assert sorted(grouped) == sorted(rows)  # every row once: the same data, in other batches
    length_of = dict(zip(rows, lengths))
    before, after = padding_share(lengths, 32), padding_share([length_of[r] for r in grouped], 32)
    assert before > 0.2 and after < 0.05, (before, after)


def test_the_order_is_a_function_of_the_rows_and_the_seed_and_batches_come_in_a_random_order(mixture):
    rows, lengths = mixture
    a = length_grouped(rows, lengths, 32, random.Random(1))
    assert a == length_grouped(rows, lengths, 32, random.Random(1))  # what a resumed run needs
    assert a != length_grouped(rows, lengths, 32, random.Random(2))
    length_of = dict(zip(rows, lengths))
    firsts = [length_of[a[i]] for i in range(0, 31 * 32, 32)]  # the longest row of each full batch
    assert firsts != sorted(firsts, reverse=True)  # not longest-first: short and long batches interleave


def test_a_partial_last_batch_stays_last():
    rows, lengths = [f"r{i}" for i in range(10)], [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    grouped = length_grouped(rows, lengths, 4, random.Random(0), span=1)
    assert sorted(grouped[-2:]) == ["r8", "r9"]  # 10 rows, batches of 4: rows 8 and 9 form the partial batch
    assert sorted(grouped[:8]) == [f"r{i}" for i in range(8)]
