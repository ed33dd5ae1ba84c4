"""Prefect flow `refresh_skill`: re-acquire the skill vector on the source domain; register it only if better.

    plan -> source SFT -> GRPO with iterative refinement -> extract v (lambda chosen on the source's validation
    questions) -> inject into production's SFT weights -> evaluate on the regression set (new skill vs current)
    -> register + promote, or discard

Scheduled weekly (prefect.yaml). Thin: the steps are `past.continual.refresh` functions, which call the
same `past.steps` as the DVC stages. Finished steps are cached by input hash, so a rerun after a crash
resumes at the first unfinished one.

    python flows/refresh_skill.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from past.continual import adaptation, events, refresh
from past.continual.plans import RefreshPlan
from past.continual.task_runs import retry_io, run_step


def _key(step: str):
    def key(context, inputs) -> str:
        return f"refresh-{step}-{inputs['p'].key[:40]}"
    return key


def _evaluate_key(context, inputs) -> str:
    p = inputs["p"]
    return adaptation.score_key(inputs["model_id"], f"regression-{p.regression.id}", p.eval_key)


@task(name="plan-refresh", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_io, cache_policy=NO_CACHE)
def plan(params: str) -> RefreshPlan:
    return refresh.plan(adaptation.settings(params))


@task(name="source-sft", cache_key_fn=_key("source-sft"), result_serializer="json")
def source_sft(params: str, p: RefreshPlan) -> dict:
    return refresh.source_sft(adaptation.settings(params), p)


@task(name="skill-rl", cache_key_fn=_key("skill-rl"), result_serializer="json")
def skill_rl(params: str, p: RefreshPlan) -> dict:
    return refresh.skill_rl(adaptation.settings(params), p)


@task(name="extract-skill", retries=1, cache_key_fn=_key("extract"), result_serializer="json")
def extract(params: str, p: RefreshPlan) -> dict:
    return refresh.extract(adaptation.settings(params), p)


@task(name="inject-skill", retries=1, cache_key_fn=_key("inject"), result_serializer="json")
def inject_candidate(params: str, p: RefreshPlan, lam: float) -> dict:
    return refresh.inject_candidate(adaptation.settings(params), p, lam)


@task(name="evaluate", cache_key_fn=_evaluate_key, result_serializer="json")
def evaluate(params: str, p: RefreshPlan, model_id: str, model_dir: str) -> dict:
    return refresh.evaluate(adaptation.settings(params), model_dir)


@task(name="record-decision", retries=3, retry_delay_seconds=1, retry_condition_fn=retry_io, cache_policy=NO_CACHE)
def record(params: str, decision: dict, model: dict | None, skill: dict | None) -> dict:
    return adaptation.settings(params).registry.record(decision, model=model, skill=skill)


@flow(name="refresh_skill")
def refresh_skill(params: str = "params.yaml") -> dict:
    """Re-acquire the skill on the source domain; returns the recorded decision."""
    logger = get_run_logger()
    started = time.perf_counter()
    s = adaptation.settings(params)
    cache = s.registry.cache_dir
    run_id = str(flow_run.id) if flow_run.id else None
    timings: dict = {}
    p = run_step(plan, timings, "plan", params)
    run_step(source_sft, timings, "source_sft", params, p, storage=cache,
             refresh=not refresh.source_sft_dir(p).exists())
    rl = run_step(skill_rl, timings, "skill_rl", params, p, storage=cache, refresh=not refresh.skill_rl_dir(p).exists())
    extracted = run_step(extract, timings, "extract", params, p, storage=cache, refresh=not Path(p.skill_file).exists())
    injected = run_step(inject_candidate, timings, "inject", params, p, extracted["lambda"], storage=cache,
                        refresh=not Path(p.model_dir).exists())
    scores = {
        "production": run_step(evaluate, timings, "evaluate_production", params, p, p.production.id,
                               p.production.path, storage=cache),
        "candidate": run_step(evaluate, timings, "evaluate_candidate", params, p, p.candidate, p.model_dir,
                              storage=cache, refresh=not timings["inject"]["cached"]),
    }
    better, reasons = refresh.gate(scores["candidate"], scores["production"], s.params.adapt.min_gain)
    timings["total"] = {"seconds": round(time.perf_counter() - started, 3)}
    model, skill = refresh.entries(s, p, extracted, injected, scores, run_id) if better else (None, None)
    decision = run_step(record, timings, "record", params, {
        "id": f"{run_id}:{p.key[:16]}", "run": run_id, "decision": "promoted" if better else "rejected",
        "stage": "skill", "candidate": p.candidate, "skill": p.skill_id, "lambda": extracted["lambda"],
        "reasons": reasons, "rounds": rl["rounds"], "scores": scores, "timings": timings}, model, skill)
    registered = decision["decision"] == "promoted"
    payload = {"reasons": decision["reasons"], "scores": scores, "previous_skill": p.current_skill.id}
    events.emit(events.SKILL_REGISTERED if registered else events.SKILL_REJECTED,
                events.skill_resource(p.skill_id), payload)
    if registered:
        events.emit(events.PROMOTED, events.model_resource(p.candidate),
                    {**payload, "previous": decision["production_before"], "production": p.candidate},
                    [events.skill_resource(p.skill_id, "skill")])
    refresh.cleanup(s, p, registered)
    logger.info(f"refresh_skill: {decision['decision']}: {'; '.join(reasons)}")
    return decision


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Refresh the skill vector once (runs the flow locally).")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    decision = refresh_skill(params=args.params)
    print(json.dumps({k: decision.get(k) for k in ("decision", "skill", "candidate", "reasons")}, indent=2))


if __name__ == "__main__":
    main()
