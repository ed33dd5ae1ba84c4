"""Answer scoring (past.scoring) and the TRL reward built on it: the SQuAD normalisation, exact match, F1, contained."""

import pytest

from past.scoring import METRICS, REWARDS, SCORERS, exact_match, f1, normalize_answer
from past.training.rewards import reward_function


def test_normalisation_drops_case_punctuation_and_articles():
    assert normalize_answer("  The  Eiffel-Tower!! ") == "eiffeltower"
    assert normalize_answer("an apple, a day") == "apple day"


def test_exact_match_reads_the_first_line_and_any_answer():
    assert exact_match("Paris\nand more", ["paris"]) == 1.0
    assert exact_match("paris france", ["Paris"]) == 0.0
    assert exact_match("london", ["paris", "London"]) == 1.0
    assert exact_match("", ["paris"]) == 0.0


def test_f1_partial_credit():
    assert f1("new york city", ["new york"]) == pytest.approx(0.8)
    assert f1("boston", ["new york"]) == 0.0
    assert f1("the new york", ["New York"]) == 1.0


def test_trl_reward_reads_answers_column_and_chat_completions():
    reward = reward_function("exact_match")
    assert reward.__name__ == "exact_match"
    scores = reward(["kelm", "tras", [{"role": "assistant", "content": "kelm"}]],
                    answers=[["kelm"], ["kelm"], ["kelm"]], prompts=["p", "p", "p"])
    assert scores == [1.0, 0.0, 1.0]
    assert reward_function("f1")(["x b"], answers=[["b c"]]) == [pytest.approx(0.5)]
    # contained: reachable by an instruct model that answers in a sentence
    assert reward_function("contained")(["It was Ada Kelm.", "Ada"], answers=[["Ada Kelm"], ["Ada Kelm"]]) == [1.0, 0.0]


def test_rewards_and_metrics_share_one_spelling():
    assert REWARDS == ("exact_match", "f1", "contained", "call_success")
    assert METRICS == ("exact_match", "f1", "contained", "judge", "call_success")  # the keys of metrics/eval.json
    assert set(SCORERS) < set(REWARDS) < set(METRICS)
    for name in REWARDS:
        assert reward_function(name, [{"name": "f", "parameters": {}}]).__name__ == name
    with pytest.raises(ValueError, match="unknown reward 'token_f1': one of exact_match, f1, contained, call_success"):
        reward_function("token_f1")


def test_scoring_imports_nothing_of_the_package():
    import ast
    import past.scoring

    tree = ast.parse(open(past.scoring.__file__, encoding="utf-8").read())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.split(".")[0] == "past"]
