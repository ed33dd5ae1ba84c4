"""Rewards and answer metrics: the SQuAD normalisation, exact match, token F1, the TRL reward."""

import pytest

from past.training.rewards import exact_match, normalize_answer, reward_function, token_f1


def test_normalisation_drops_case_punctuation_and_articles():
    assert normalize_answer("  The  Eiffel-Tower!! ") == "eiffeltower"
    assert normalize_answer("an apple, a day") == "apple day"


def test_exact_match_reads_the_first_line_and_any_answer():
    assert exact_match("Paris\nand more", ["paris"]) == 1.0
    assert exact_match("paris france", ["Paris"]) == 0.0
    assert exact_match("london", ["paris", "London"]) == 1.0
    assert exact_match("", ["paris"]) == 0.0


def test_token_f1_partial_credit():
    assert token_f1("new york city", ["new york"]) == pytest.approx(0.8)
    assert token_f1("boston", ["new york"]) == 0.0
    assert token_f1("the new york", ["New York"]) == 1.0


def test_trl_reward_reads_answers_column_and_chat_completions():
    reward = reward_function("exact_match")
    assert reward.__name__ == "exact_match"
    scores = reward(["kelm", "tras", [{"role": "assistant", "content": "kelm"}]],
                    answers=[["kelm"], ["kelm"], ["kelm"]], prompts=["p", "p", "p"])
    assert scores == [1.0, 0.0, 1.0]
    assert reward_function("token_f1")(["x b"], answers=[["b c"]]) == [pytest.approx(0.5)]
    # answer_contained: reachable by an instruct model that answers in a sentence
    assert reward_function("answer_contained")(["It was Ada Kelm.", "Ada"], answers=[["Ada Kelm"], ["Ada Kelm"]]) == [1.0, 0.0]
