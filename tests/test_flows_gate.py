"""The promotion gate as a pure function: better on the new questions, within tolerance and drift."""

from past.continual.adaptation import gate


def scores(new_c, new_p, reg_c, reg_p, earlier=None):
    out = {"new": {"candidate": {"exact_match": new_c}, "production": {"exact_match": new_p}},
           "regression": {"candidate": {"exact_match": reg_c}, "production": {"exact_match": reg_p}}}
    if earlier:
        out["earlier"] = {"candidate": {"exact_match": earlier[0]}, "production": {"exact_match": earlier[1]}}
    return out


def test_better_and_within_tolerance_promotes():
    verdict = gate(scores(0.9, 0.1, 0.92, 0.94), tolerance=0.04, min_gain=0.0)
    assert verdict.promote and verdict.learned and not verdict.forgot
    assert verdict.reasons == ["new questions: candidate 0.900 > production 0.100",
                               "regression set: 0.940 -> 0.920 (loss 0.020 <= tolerance 0.04)"]


def test_not_better_on_new_questions_is_rejected_even_with_no_forgetting():
    verdict = gate(scores(0.1, 0.1, 0.95, 0.94), tolerance=0.04, min_gain=0.0)
    assert not verdict.promote and not verdict.learned and not verdict.forgot  # nothing a consolidation fixes
    assert verdict.reasons[0] == "new questions: candidate 0.100 does not beat production 0.100"
    assert not gate(scores(0.15, 0.1, 0.95, 0.94), tolerance=0.04, min_gain=0.1).promote


def test_forgetting_beyond_tolerance_is_rejected_at_the_boundary_exactly():
    assert gate(scores(0.9, 0.1, 0.90, 0.94), tolerance=0.04, min_gain=0.0).promote  # loss == tolerance: allowed
    verdict = gate(scores(0.9, 0.1, 0.896, 0.94), tolerance=0.04, min_gain=0.0)
    assert not verdict.promote and verdict.forgot  # learned the drop, lost earlier knowledge: consolidate
    assert verdict.reasons[1] == "regression set: 0.940 -> 0.896 (loss 0.044 > tolerance 0.04)"


def test_drift_stops_forgetting_by_small_steps():
    baseline = {"model": "m-root", "exact_match": 0.95}
    verdict = gate(scores(0.9, 0.1, 0.86, 0.89), tolerance=0.04, min_gain=0.0, drift=0.08, baseline=baseline)
    assert not verdict.promote and verdict.forgot  # each step within tolerance, the total not
    assert verdict.reasons[-1] == "regression drift since m-root: 0.950 -> 0.860 (total loss 0.090 > drift 0.08)"
    assert gate(scores(0.9, 0.1, 0.88, 0.89), tolerance=0.04, min_gain=0.0, drift=0.08, baseline=baseline).promote


def test_the_earlier_drops_questions_are_protected_like_the_regression_set():
    kept = gate(scores(0.9, 0.1, 0.93, 0.94, earlier=(0.80, 0.82)), tolerance=0.04, min_gain=0.0)
    assert kept.promote and kept.reasons[2] == "earlier drops: 0.820 -> 0.800 (loss 0.020 <= tolerance 0.04)"
    lost = gate(scores(0.9, 0.1, 0.94, 0.94, earlier=(0.70, 0.82)), tolerance=0.04, min_gain=0.0)
    assert not lost.promote and lost.forgot
    assert lost.reasons[2] == "earlier drops: 0.820 -> 0.700 (loss 0.120 > tolerance 0.04)"


def test_earlier_drops_forgotten_by_small_steps_are_caught_against_their_scores_when_learned():
    learned = {"model": "each drop when learned", "exact_match": 0.84}
    verdict = gate(scores(0.9, 0.1, 0.94, 0.94, earlier=(0.74, 0.76)), tolerance=0.04, min_gain=0.0, drift=0.08,
                   earlier_baseline=learned)
    assert not verdict.promote and verdict.forgot  # within tolerance of production, not of what was learned
    assert verdict.reasons[-1] == ("earlier drops drift since each drop when learned: 0.840 -> 0.740 "
                                   "(total loss 0.100 > drift 0.08)")
    assert gate(scores(0.9, 0.1, 0.94, 0.94, earlier=(0.77, 0.78)), tolerance=0.04, min_gain=0.0, drift=0.08,
                earlier_baseline=learned).promote
