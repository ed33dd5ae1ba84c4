"""Prefect flow `adapt`: one knowledge drop -> maybe a new production model (no RL on the new data).

    resolve -> validate (+ snapshot) -> plan -> target SFT -> inject skill -> evaluate -> gate -> record

With `adapt.consolidate.on_forgetting`, a candidate that learned the drop but forgot earlier knowledge beyond
the gate's tolerance or drift is followed, in the same run, by a consolidation (one SFT over all knowledge +
the production skill), which the same gate decides (`past.continual.adaptation`).

Thin: every step is a function of `past.continual.adaptation`; this file adds Prefect's retries (I/O steps only;
never a failed contract), caching by input hash (a rerun after a crash skips the steps that finished),
events and a decision artifact. Triggered by `past.knowledge.landed` (prefect.yaml), or by hand:

    python flows/adapt.py DROP_NAME [--lam 1.0] [--force] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from past import failpoints
from past.continual import adaptation, decisions, events
from past.continual.landing import DropNotReady, LandingError
from past.continual.plans import AdaptPlan
from past.continual.registry import RegistryError
from past.continual.task_runs import retry_io, run_step
from past.contracts import ContractViolation
from past.errors import DataError


def _step_key(step: str):
    def key(context, inputs) -> str:
        return f"{step}-{inputs['p'].key[:40]}"
    return key


def _evaluate_key(context, inputs) -> str:
    p, model, which = inputs["p"], inputs["model"], inputs["which"]
    model_id = p.candidate if model == "candidate" else p.production.id
    questions = {"regression": p.regression.id, "earlier": p.earlier.id if p.earlier else None}.get(which,
                                                                                                   p.drop.hash[:16])
    return adaptation.score_key(model_id, f"{which}-{questions}", p.eval_key)


@task(name="resolve-drop", retries=3, retry_delay_seconds=2, retry_condition_fn=retry_io, cache_policy=NO_CACHE)
def resolve_drop(params: str, drop: str, expected_hash: str | None) -> dict:
    return adaptation.resolve_drop(adaptation.settings(params), drop, expected_hash)


@task(name="validate-drop", retries=0, cache_policy=NO_CACHE)  # a broken contract stays broken: no retry
def validate_drop(params: str, drop: dict) -> dict:
    return adaptation.validate_and_snapshot(adaptation.settings(params), drop)


@task(name="plan", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_io, cache_policy=NO_CACHE)
def plan(params: str, drop: dict, snapshot: dict, lam: float | None, kind: str | None = None) -> AdaptPlan:
    return adaptation.plan(adaptation.settings(params), drop, snapshot, lam, kind)


@task(name="target-sft", retries=0, cache_key_fn=_step_key("target-sft"), result_serializer="json")
def target_sft(params: str, p: AdaptPlan) -> dict:
    return adaptation.train(adaptation.settings(params), p)


@task(name="inject-skill", retries=1, retry_delay_seconds=2, cache_key_fn=_step_key("inject-skill"),
      result_serializer="json")
def inject_skill(params: str, p: AdaptPlan) -> dict:
    return adaptation.inject_skill(adaptation.settings(params), p)


@task(name="evaluate", retries=0, cache_key_fn=_evaluate_key, result_serializer="json")
def evaluate(params: str, p: AdaptPlan, model: str, which: str) -> dict:
    s = adaptation.settings(params)
    model_dir = p.model_dir if model == "candidate" else p.production.path
    return adaptation.score(s, model_dir, adaptation.questions_for(s, which, p))


@task(name="record-decision", retries=3, retry_delay_seconds=1, retry_condition_fn=retry_io, cache_policy=NO_CACHE)
def record_decision(params: str, decision: dict, model: dict | None = None) -> dict:
    return adaptation.settings(params).registry.record(decision, model=model)


def record_failure(flow, run, state) -> None:
    """A run that failed for good (its retry too) leaves a decision, "failed": the drop is not silently lost,
    and the next drop in line (flows/watch.py) is not held up behind it. Not a decision on the content: the
    drop is announced again after `adapt.reemit_after`."""
    p = run.parameters
    s = adaptation.settings(p.get("params", "params.yaml"))
    s.registry.record({"run": str(run.id), "id": f"{run.id}:failed", "drop": {"name": p["drop"],
                       "hash": p.get("expected_hash")}, "decision": "failed", "stage": "error",
                       "reasons": [state.message or "the run failed"]})


@flow(name="adapt", flow_run_name="adapt-{drop}", retries=1, retry_delay_seconds=5, on_failure=[record_failure])
def adapt(drop: str, expected_hash: str | None = None, lam: float | None = None, force: bool = False,
          params: str = "params.yaml") -> dict:
    """Adapt production to one knowledge drop of the landing folder; returns the recorded decision."""
    logger = get_run_logger()
    started = time.perf_counter()
    s = adaptation.settings(params)
    registry = s.registry
    run_id = str(flow_run.id) if flow_run.id else None
    timings: dict = {}

    try:
        found = run_step(resolve_drop, timings, "resolve", params, drop, expected_hash)
    except LandingError as err:
        if isinstance(err, DropNotReady):
            raise  # still being copied: the run fails, watch announces the drop again later
        decision = run_step(record_decision, timings, "record", params,
                            decisions.drop_refused(run_id, drop, err, timings))
        logger.error(f"drop {drop!r} refused: {err}")
        return decision
    base = {"run": run_id, "drop": {"name": found["name"], "hash": found["hash"]}}
    if expected_hash and expected_hash != found["hash"]:
        logger.warning(f"drop {drop}: content changed since it was announced ({expected_hash[:12]} -> "
                       f"{found['hash'][:12]}); adapting what is there now")

    previous = registry.decision_for(found["hash"])
    if previous is not None and not force:
        if previous["decision"] == "rejected" and not s.params.adapt.keep_rejected:
            registry.discard(previous.get("candidate"))  # a run killed after its decision left the folder
        decision = run_step(record_decision, timings, "record", params,
                            decisions.already_decided(base, run_id, previous, timings))
        logger.info(decision["reasons"][0])
        return decision

    clock = time.perf_counter()
    state = validate_drop(params, found, return_state=True)
    timings["validate"] = {"seconds": round(time.perf_counter() - clock, 3), "cached": False, "compute": 0.0}
    if state.is_failed():
        err = state.result(raise_on_failure=False)
        if not isinstance(err, (ContractViolation, DataError)):
            raise err
        decision = run_step(record_decision, timings, "record", params,
                            decisions.data_refused(base, run_id, err, timings))
        events.emit(events.REJECTED, events.drop_resource(found["hash"], found["name"]),
                    {"stage": decision["stage"], "reasons": decision["reasons"], "report": decision["report"]})
        _artifact(decision)
        logger.error(f"drop {drop} rejected, nothing trained:\n{decision['report']['message']}")
        return decision
    snapshot = state.result()
    timings["validate"]["compute"] = snapshot["seconds"]
    failpoints.reached("adapt:validated")

    try:
        p = run_step(plan, timings, "plan", params, found, snapshot, lam)
    except RegistryError as err:  # production is not what the registry recorded: no work on top of it
        decision = run_step(record_decision, timings, "record", params,
                            decisions.production_unusable(base, run_id, err, timings))
        logger.error(f"drop {drop}: production unusable, nothing trained: {err}")
        return decision
    base.update(candidate=p.candidate, skill=p.skill.id, **{"lambda": p.lam})
    if not p.new_questions:
        decision = run_step(record_decision, timings, "record", params, decisions.no_questions(base, run_id, timings))
        events.emit(events.REJECTED, events.drop_resource(found["hash"], found["name"]),
                    {"stage": "contract", "reasons": decision["reasons"]})
        _artifact(decision)
        return decision

    a = s.params.adapt
    verdict, injected, scores = _candidate(s, params, p, timings)
    attempt = None
    if verdict.forgot and a.consolidate.on_forgetting and p.kind == adaptation.INCREMENTAL:
        attempt = decisions.forgetting_attempt(p, verdict, scores)
        logger.info(f"drop {drop}: learned but forgot ({'; '.join(verdict.reasons[1:])}): consolidating")
        if not a.keep_rejected:
            registry.discard(p.candidate)
        p = run_step(plan, timings, "plan_consolidation", params, found, snapshot, lam, adaptation.CONSOLIDATION)
        base.update(candidate=p.candidate)
        verdict, injected, scores = _candidate(s, params, p, timings)
    base.update({"lambda": injected["lambda"]},
                **({"lambda_choice": injected["lambda_choice"]} if "lambda_choice" in injected else {}))
    timings["total"] = {"seconds": round(time.perf_counter() - started, 3)}  # up to the decision
    entry = adaptation.model_entry(s, p, injected, scores, run_id) if verdict.promote else None
    decision = run_step(record_decision, timings, "record", params,
                        decisions.gated(base, run_id, p, verdict, scores, timings, attempt), entry)
    failpoints.reached("adapt:recorded")
    promoted = decision["decision"] == "promoted"
    payload = {"drop": found["name"], "drop_hash": found["hash"], "stage": decision["stage"],
               "reasons": decision["reasons"], "metrics": decision.get("metrics", {}), "lambda": injected["lambda"],
               "previous": decision["production_before"], "production": decision["production_after"]}
    related = [events.drop_resource(found["hash"], found["name"]) | {"prefect.resource.role": "drop"},
               events.skill_resource(p.skill.id, "skill")]
    events.emit(events.PROMOTED if promoted else events.REJECTED, events.model_resource(p.candidate), payload,
                related)
    if not promoted and not a.keep_rejected:
        registry.discard(p.candidate)
    _artifact(decision)
    logger.info(f"drop {drop}: {decision['decision']}: " + "; ".join(decision["reasons"]))
    return decision


def _candidate(s: adaptation.Settings, params: str, p: AdaptPlan, timings: dict) -> tuple:
    """Train, inject and score one candidate (each step cached by the plan's key), then gate it; returns
    (verdict, injected, scores). A consolidation's steps are timed as consolidation_*."""
    prefix = "" if p.kind == adaptation.INCREMENTAL else f"{p.kind}_"
    cache = s.registry.cache_dir
    run_step(target_sft, timings, f"{prefix}target_sft", params, p, storage=cache,
             refresh=not Path(p.sft_dir).exists())
    failpoints.reached("adapt:trained")
    injected = run_step(inject_skill, timings, f"{prefix}inject", params, p, storage=cache,
                        refresh=not Path(p.model_dir).exists())
    failpoints.reached("adapt:injected")
    scores: dict = {}
    for which in adaptation.SETS:
        if which == "earlier" and p.earlier is None:  # the lineage has learned no drop yet
            continue
        scores[which] = {}
        for model in ("production", "candidate"):
            refresh = model == "candidate" and not timings[f"{prefix}inject"]["cached"]  # a rebuilt one is rescored
            scores[which][model] = run_step(evaluate, timings, f"{prefix}evaluate_{which}_{model}", params, p, model,
                                            which, storage=cache, refresh=refresh)
            failpoints.reached("adapt:scored")
    a = s.params.adapt
    verdict = adaptation.gate(scores, a.tolerance, a.min_gain, a.drift, p.regression.baseline,
                         p.earlier.baseline if p.earlier else None)
    return verdict, injected, scores


def _artifact(decision: dict) -> None:
    """The decision as a markdown artifact on the flow run (the Prefect UI's Artifacts tab)."""
    lines = [f"# {decision['decision']} ({decision.get('stage')})", "",
             f"- drop: `{decision['drop']['name']}` ({decision['drop']['hash'][:12]})",
             f"- candidate: `{decision.get('candidate') or '-'}`, lambda {decision.get('lambda', '-')}",
             f"- production: `{decision.get('production_before')}` -> `{decision.get('production_after')}`", ""]
    lines += [f"- {r}" for r in decision.get("reasons", [])]
    if decision.get("timings"):
        lines += ["", "| step | seconds | cached |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v['seconds']} | {v.get('cached', '')} |" for k, v in decision["timings"].items()]
    create_markdown_artifact(markdown="\n".join(lines), key="adapt-decision",
                             description=f"adapt decision for drop {decision['drop']['name']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Adapt production to one knowledge drop (runs the flow locally).")
    parser.add_argument("drop", help="folder name of the drop inside the landing folder")
    parser.add_argument("--lam", type=float, default=None, help="lambda override")
    parser.add_argument("--force", action="store_true", help="adapt even if this content was decided before")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    decision = adapt(args.drop, lam=args.lam, force=args.force, params=args.params)
    print(json.dumps({k: decision.get(k) for k in ("decision", "stage", "candidate", "reasons")}, indent=2))


if __name__ == "__main__":
    main()
