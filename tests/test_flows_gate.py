"""The promotion gate as a pure function: better on the new questions, within tolerance and drift."""

from past.continual.adaptation import gate


def scores(new_c, new_p, reg_c, reg_p):
    return {"new": {"candidate": {"exact_match": new_c}, "production": {"exact_match": new_p}},
            "regression": {"candidate": {"exact_match": reg_c}, "production": {"exact_match": reg_p}}}


def test_better_and_within_tolerance_promotes():
    ok, reasons = gate(scores(0.9, 0.1, 0.92, 0.94), tolerance=0.04, min_gain=0.0)
    assert ok
    assert reasons == ["new questions: candidate 0.900 > production 0.100",
                       "regression set: 0.940 -> 0.920 (loss 0.020 <= tolerance 0.04)"]


def test_not_better_on_new_questions_is_rejected_even_with_no_forgetting():
    ok, reasons = gate(scores(0.1, 0.1, 0.95, 0.94), tolerance=0.04, min_gain=0.0)
    assert not ok and reasons[0] == "new questions: candidate 0.100 does not beat production 0.100"
    ok, _ = gate(scores(0.15, 0.1, 0.95, 0.94), tolerance=0.04, min_gain=0.1)
    assert not ok


def test_forgetting_beyond_tolerance_is_rejected_at_the_boundary_exactly():
    assert gate(scores(0.9, 0.1, 0.90, 0.94), tolerance=0.04, min_gain=0.0)[0]  # loss == tolerance: allowed
    ok, reasons = gate(scores(0.9, 0.1, 0.896, 0.94), tolerance=0.04, min_gain=0.0)
    assert not ok and reasons[1] == "regression set: 0.940 -> 0.896 (loss 0.044 > tolerance 0.04)"


def test_drift_stops_forgetting_by_small_steps():
    baseline = {"model": "m-root", "exact_match": 0.95}
    ok, reasons = gate(scores(0.9, 0.1, 0.86, 0.89), tolerance=0.04, min_gain=0.0, drift=0.08, baseline=baseline)
    assert not ok  # each step within tolerance, the total not
    assert reasons[-1] == "regression drift since m-root: 0.950 -> 0.860 (total loss 0.090 > drift 0.08)"
    assert gate(scores(0.9, 0.1, 0.88, 0.89), tolerance=0.04, min_gain=0.0, drift=0.08, baseline=baseline)[0]
