"""The continual-learning figures of a stream of drops, and the rows a registry's decision log gives."""

import pytest

from past.evaluation.stream import figures, rows_from_decisions


def test_acc_bwt_and_just_learned_follow_their_definitions():
    # matrix[k][j]: accuracy on drop j's questions after drop k landed
    matrix = [[0.8], [0.7, 0.9], [0.6, 0.8, 1.0]]
    f = figures(matrix)
    assert f["acc"] == pytest.approx((0.6 + 0.8 + 1.0) / 3)  # the last row's mean
    assert f["just_learned"] == pytest.approx((0.8 + 0.9 + 1.0) / 3)  # the diagonal's mean
    assert f["bwt"] == pytest.approx(((0.6 - 0.8) + (0.8 - 0.9)) / 2)  # every drop but the last
    assert figures([[0.5]])["bwt"] == 0.0  # one drop: nothing to forget yet


def test_rows_come_from_gate_and_consolidation_decisions_with_what_stayed_in_production():
    decisions = [
        {"decision": "promoted", "stage": "bootstrap"},
        {"decision": "promoted", "stage": "gate", "kind": "incremental", "drop": {"name": "a"},
         "metrics": {"new_candidate_exact_match": 0.8, "new_production_exact_match": 0.0,
                     "regression_candidate_exact_match": 0.9, "regression_production_exact_match": 0.92},
         "timings": {"total": {"seconds": 31.0}}},
        {"decision": "rejected", "stage": "contract", "drop": {"name": "broken"}},
        {"decision": "rejected", "stage": "consolidation", "kind": "consolidation", "drop": {"name": "b"},
         "metrics": {"new_candidate_exact_match": 0.7, "new_production_exact_match": 0.1,
                     "regression_candidate_exact_match": 0.5, "regression_production_exact_match": 0.9,
                     "earlier_candidate_exact_match": 0.4, "earlier_production_exact_match": 0.8}},
    ]
    rows = rows_from_decisions(decisions)
    assert [r["drop"] for r in rows] == ["a", "b"]  # bootstrap and contract rejections are not drops the gate saw
    assert rows[0] == {"drop": "a", "decision": "promoted", "kind": "incremental", "new": 0.8, "earlier": None,
                       "original": 0.9, "seconds": 31.0}
    assert rows[1]["new"] == 0.1 and rows[1]["original"] == 0.9 and rows[1]["earlier"] == 0.8  # production kept
