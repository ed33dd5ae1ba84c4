"""What an adapt run records in the registry's decision log, for each way it can end.

Each function returns the decision dict `Registry.record` appends: its `id` (the run id and what the run
decided on, so that a retried record is not recorded twice), `decision` (promoted, rejected, skipped), the
`stage` that decided it and the reasons a person reads in `past registry show`. The flow (flows/adapt.py)
calls them and records what they return; it adds the events and the decision artifact.
"""

from __future__ import annotations

from past.continual.adaptation import CONSOLIDATION, INCREMENTAL, Verdict, failure_report, metrics_summary
from past.continual.landing import PackagingError
from past.continual.plans import AdaptPlan


def drop_refused(run: str | None, name: str, err: Exception, timings: dict) -> dict:
    """The landing folder refused the drop (a bad name, a path outside it): nothing of it was read."""
    return {"run": run, "id": f"{run}:landing", "drop": {"name": name, "hash": None}, "decision": "rejected",
            "stage": "landing", "reasons": [str(err)], "timings": timings}


def already_decided(base: dict, run: str | None, previous: dict, timings: dict) -> dict:
    """The same content was decided before (and `force` was not given): skipped, pointing at that decision."""
    return {**base, "id": f"{run}:skip", "decision": "skipped", "stage": "duplicate",
            "candidate": previous.get("candidate"),
            "reasons": [f"drop already adapted: {previous['decision']} at {previous['at']} "
                        f"(run {previous.get('run')}); pass force=True to adapt it again"], "timings": timings}


def data_refused(base: dict, run: str | None, err: Exception, timings: dict) -> dict:
    """The drop broke its data contract, or is packed wrong (stage `landing`: a corrected drop may return
    under the same name); the report names the file, the expectation and the rows."""
    report = failure_report(err)
    stage = "landing" if isinstance(err, PackagingError) else "contract"
    return {**base, "id": f"{run}:{stage}", "decision": "rejected", "stage": stage, "reasons": [report["message"]],
            "report": report, "timings": timings}


def production_unusable(base: dict, run: str | None, err: Exception, timings: dict) -> dict:
    """Production is not what the registry recorded (weights changed or gone): no work on top of it."""
    return {**base, "id": f"{run}:production", "decision": "rejected", "stage": "production",
            "reasons": [str(err)], "timings": timings}


def no_questions(base: dict, run: str | None, timings: dict) -> dict:
    """A drop without questions: nothing could show that a new model is better."""
    return {**base, "id": f"{run}:no-questions", "decision": "rejected", "stage": "contract",
            "reasons": ["the drop has no questions: nothing could show the new model is better; "
                        "add questions.jsonl and drop it again"], "timings": timings}


def forgetting_attempt(p: AdaptPlan, verdict: Verdict, scores: dict) -> dict:
    """The incremental candidate that learned the drop but forgot, kept in the consolidation's decision."""
    return {"candidate": p.candidate, "reasons": verdict.reasons,
            "metrics": metrics_summary(scores, p.regression.id)}


def gated(base: dict, run: str | None, p: AdaptPlan, verdict: Verdict, scores: dict, timings: dict,
          attempt: dict | None = None) -> dict:
    """The gate's verdict on a trained, injected and scored candidate (incremental or consolidation)."""
    return {**base, "id": f"{run}:{p.key[:16]}", "decision": "promoted" if verdict.promote else "rejected",
            "stage": "gate" if p.kind == INCREMENTAL else CONSOLIDATION, "kind": p.kind,
            "reasons": verdict.reasons, "metrics": metrics_summary(scores, p.regression.id),
            "scores": scores, "timings": timings, **({"attempt": attempt} if attempt else {})}
