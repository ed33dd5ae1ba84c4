"""The flows end to end under a real Prefect server (`prefect_test_harness`), real Great Expectations and
real TRL training on a tiny PaST project (tests/flows_fixtures.py): no mocks.

One project is shared by most tests (each with its own drop); every test compares production before and
after itself, so the order does not matter. The served-deployment test gets a project of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from flows_faults import KILLS, forget_deployments, kill_adapt_at, land_and_serve, stray_temporaries
from flows_fixtures import TOLERANCE, build_project, copy_project, make_drop, wait_for, write_params
from past.config import ConfigError
from past.continual.landing import DropNotReady
from past.continual.registry import FINAL, Registry, RegistryError

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL", "0.5")  # events readable sooner


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_project(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def api_url():
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield prefect.settings.PREFECT_API_URL.value()


@pytest.fixture(scope="module")
def flows(api_url):
    from prefect.flows import load_flow_from_entrypoint

    return SimpleNamespace(**{name: load_flow_from_entrypoint(str(ROOT / f"flows/{file}.py:{name}"))
                              for name, file in (("adapt", "adapt"), ("watch", "watch"),
                                                 ("refresh_skill", "refresh_skill"))})


@pytest.mark.parametrize("error, attempts", [
    pytest.param(RegistryError("no production model yet"), 1, id="registry-refusal"),  # asking again cannot help
    pytest.param(ConfigError("adapt.lam: expected a number"), 1, id="bad-params"),
    pytest.param(OSError("registry.json: Input/output error"), 3, id="io-error"),  # the flows' tasks ask again
    pytest.param(DropNotReady("landing/news: still being copied"), 3, id="drop-not-ready"),
])
def test_the_flows_retry_io_errors_and_never_a_refusal(api_url, error, attempts):
    from prefect import flow, task

    from past.continual.task_runs import retry_io

    calls = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_io)
    def step():
        calls.append(1)
        raise error

    @flow
    def once():
        step()

    assert once(return_state=True).is_failed() and len(calls) == attempts


def project_at(root: Path, params: Path) -> SimpleNamespace:
    return SimpleNamespace(root=root, params=str(params), landing=root / "landing",
                           registry=Registry(root / "models/registry"))


@pytest.fixture(scope="module")
def shared(template, tmp_path_factory, api_url):
    root = tmp_path_factory.mktemp("shared") / "project"
    return project_at(root, copy_project(template, root))


def events(name: str, resource_id: str, timeout: float = 30.0) -> list:
    """Events named `name` about `resource_id`, read back from the Prefect server (waits for delivery)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    def found():
        with get_client(sync_client=True) as client:
            page = client.read_events(EventFilter(event=EventNameFilter(name=[name]),
                                                  resource=EventResourceFilter(id=[resource_id])), limit=50)
        return page.events

    return wait_for(found, timeout, 0.5, f"event {name} for {resource_id}")


def production_id(project) -> str:
    return project.registry.production()["id"]


# ------------------------------------------------------------------------------------------ promotion


@pytest.fixture(scope="module")
def promoted(shared, flows):
    """Drop 0 lands, watch announces it, adapt promotes it."""
    make_drop(shared.landing, "news-0", 0)
    before = production_id(shared) if shared.registry.production() else None
    report = flows.watch(params=shared.params)
    decision = flows.adapt("news-0", expected_hash=report["announced"][0]["hash"], params=shared.params)
    # the registry as the promotion left it: later tests promote, refresh and roll back on `shared`
    return SimpleNamespace(report=report, decision=decision, before=before, production=shared.registry.verify(),
                           skill=shared.registry.skill()["id"],
                           folder=(shared.registry.root / "production").resolve())


def test_valid_drop_runs_end_to_end_and_promotes(shared, promoted):
    decision, drop_hash = promoted.decision, promoted.report["announced"][0]["hash"]
    assert [a["name"] for a in promoted.report["announced"]] == ["news-0"]
    assert decision["decision"] == "promoted", decision["reasons"]
    m = decision["metrics"]
    assert m["new_candidate_exact_match"] > m["new_production_exact_match"]
    assert m["regression_production_exact_match"] - m["regression_candidate_exact_match"] <= TOLERANCE + 1e-9
    # the registry says so: production is the candidate, from this drop, skill and lambda, on top of the old one
    production = promoted.production
    assert production["id"] == decision["candidate"] == decision["production_after"]
    assert production["drop"] == {"name": "news-0", "hash": drop_hash}
    assert production["skill"] == promoted.skill and production["lambda"] == 0.5
    assert production["parent"] == decision["production_before"]
    assert production["metrics"] == m
    assert promoted.folder == shared.registry.path(production["path"]).resolve()
    assert (shared.registry.drop_dir(drop_hash) / "documents.jsonl").exists()
    assert set(decision["timings"]) >= {"resolve", "validate", "plan", "target_sft", "inject", "record", "total"}
    # ... and so do the events
    landed = events("past.knowledge.landed", f"past.drop.{drop_hash}")
    assert landed[0].payload["drop"] == "news-0"
    event = events("past.model.promoted", f"past.model.{decision['candidate']}")[0]
    assert event.payload["reasons"] == decision["reasons"] and event.payload["drop_hash"] == drop_hash
    assert {r.id for r in event.related} >= {f"past.drop.{drop_hash}"}


def test_the_promoted_model_answers_the_new_questions(shared, promoted):
    from past import steps
    from past.evaluation.spec import EvalSpec
    from past.jsonl import read_jsonl

    folder = promoted.folder
    questions = read_jsonl(shared.landing / "news-0" / "questions.jsonl")
    em = steps.score(EvalSpec(prompt="question : {question} answer :"), folder, questions)["exact_match"]
    assert em == pytest.approx(promoted.decision["metrics"]["new_candidate_exact_match"], abs=1e-4)


def test_the_same_drop_twice_is_adapted_once(shared, promoted, flows):
    drop_hash = promoted.report["announced"][0]["hash"]
    shutil.copytree(shared.landing / "news-0", shared.landing / "news-0-again")  # same content, other name
    models_before = sorted(p.name for p in (shared.registry.root / "models").iterdir())
    report = flows.watch(params=shared.params)
    assert drop_hash not in {a["hash"] for a in report["announced"]}
    assert {s["name"] for s in report["skipped"]} >= {"news-0", "news-0-again"}
    decision = flows.adapt("news-0-again", params=shared.params)
    assert decision["decision"] == "skipped" and decision["stage"] == "duplicate"
    assert decision["production_after"] == decision["production_before"]
    assert "target_sft" not in decision["timings"]
    assert sorted(p.name for p in (shared.registry.root / "models").iterdir()) == models_before
    adapted = [d for d in shared.registry.state()["decisions"]
               if d.get("drop", {}).get("hash") == drop_hash and d["decision"] == "promoted"]
    assert len(adapted) == 1


# ------------------------------------------------------------------------------------------ rejections


def _bad_drop(landing: Path, kind: str) -> Path:
    folder = make_drop(landing, f"bad-{kind}", 9, marker="ready", people=2)
    docs = folder / "documents.jsonl"
    rows = [json.loads(line) for line in docs.read_text().splitlines()]
    if kind == "missing-fields":
        del rows[4]["title"]
    elif kind == "empty-docs":
        rows[6]["text"] = "   "
    elif kind == "duplicate-ids":
        rows[7]["id"] = rows[2]["id"]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if kind == "non-utf8":
        docs.write_bytes(text.encode() + '{"id": "x", "title": "zoé", "text": "zoé"}\n'.encode("latin-1"))
    else:
        docs.write_text(text)
    return folder


@pytest.mark.parametrize("kind, expectation, rows", [
    ("missing-fields", "expect_column_values_to_not_be_null", [5]),
    ("empty-docs", "expect_column_values_to_match_regex", [7]),
    ("duplicate-ids", "expect_column_values_to_be_unique", [3, 8]),
    ("non-utf8", None, "row 33: not valid UTF-8"),
])
def test_a_drop_that_breaks_its_contract_is_rejected_with_a_report(shared, promoted, flows, kind, expectation, rows):
    folder = _bad_drop(shared.landing, kind)
    before, models_before = production_id(shared), len(list((shared.registry.root / "models").iterdir()))
    decision = flows.adapt(folder.name, params=shared.params)
    assert decision["decision"] == "rejected" and decision["stage"] == "contract"
    report = decision["report"]
    assert report["message"].startswith(str(folder / "documents.jsonl"))
    if expectation:
        assert report["file"] == str(folder / "documents.jsonl")
        failure = next(f for f in report["failures"] if f["expectation"] == expectation)
        if rows:
            assert failure["rows"] == rows
    else:
        assert rows in report["message"]
    # nothing trained, production unchanged
    assert production_id(shared) == before and shared.registry.verify()["id"] == before
    assert len(list((shared.registry.root / "models").iterdir())) == models_before
    assert "target_sft" not in decision["timings"]
    event = events("past.model.rejected", f"past.drop.{decision['drop']['hash']}")[0]
    assert event.payload["stage"] == "contract" and event.payload["report"] == report


@pytest.mark.reliability(11, 'a drop holding `evil.pkl`', 'refused naming the file; corrected, adapted without force')
def test_a_drop_packed_wrong_is_refused_and_lands_once_corrected_without_force(shared, promoted, flows):
    """A stray file is refused by name (never silently ignored). That is the drop's packaging, not its knowledge:
    the decision is a landing rejection, so the corrected drop, the same content and identity, is adapted."""
    folder = make_drop(shared.landing, "news-packed", 6, people=2)
    (folder / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    decision = flows.adapt(folder.name, params=shared.params)
    assert decision["decision"] == "rejected" and decision["stage"] == "landing"
    assert "evil.pkl (not part of a drop)" in decision["reasons"][0] and "target_sft" not in decision["timings"]
    (folder / "evil.pkl").unlink()
    again = flows.adapt(folder.name, params=shared.params)
    assert again["drop"]["hash"] == decision["drop"]["hash"] and again["stage"] != "duplicate"
    assert again["decision"] in ("promoted", "rejected") and "target_sft" in again["timings"]


@pytest.mark.reliability(10, "production's skill file deleted, then a drop lands",
                         'refused before any work (flow: a recorded decision)')
def test_a_damaged_production_is_refused_before_any_work_with_a_decision(template, tmp_path, flows, api_url):
    """Production's skill file deleted: the run records a rejection (stage production) naming the file, trains
    nothing and leaves no candidate folder; restored, the same drop is adapted (the refusal said nothing of it)."""
    import shutil

    from past.continual.adaptation import ensure_production, settings

    project = project_at(tmp_path / "project", copy_project(template, tmp_path / "project"))
    ensure_production(settings(project.params))
    skill = project.registry.path(project.registry.skill()["path"])
    shutil.move(skill, tmp_path / "skill.bak")
    make_drop(project.landing, "news-damaged", 7, people=2)
    models_before = sorted(p.name for p in (project.registry.root / "models").iterdir())
    decision = flows.adapt("news-damaged", params=project.params)
    assert decision["decision"] == "rejected" and decision["stage"] == "production"
    assert f"{skill}: missing" in decision["reasons"][0] and "target_sft" not in decision["timings"]
    assert sorted(p.name for p in (project.registry.root / "models").iterdir()) == models_before
    shutil.move(tmp_path / "skill.bak", skill)
    assert project.registry.decision_for(decision["drop"]["hash"]) is None


def test_a_drop_name_leading_outside_the_landing_folder_is_refused(shared, promoted, flows):
    (shared.root / "outside").mkdir(exist_ok=True)
    before = production_id(shared)
    decision = flows.adapt("../outside", params=shared.params)
    assert decision["decision"] == "rejected" and decision["stage"] == "landing"
    assert "single folder name inside" in decision["reasons"][0]
    assert production_id(shared) == before


def test_a_run_that_fails_for_good_records_a_failed_decision(shared, promoted, flows):
    """Not a refusal (those are decisions of their own) but an error, here a drop gone incomplete since it was
    announced: after Prefect's retry the on_failure hook records "failed", so the drop is not silently lost and
    watch does not hold the drops behind it; it is announced again after adapt.reemit_after."""
    (shared.landing / "half").mkdir()
    (shared.landing / "half" / "documents.jsonl").write_text("{}\n")  # no marker: still being copied
    before = production_id(shared)
    state = flows.adapt("half", expected_hash="f" * 64, params=shared.params, return_state=True)
    assert state.is_failed()
    [failed] = [d for d in shared.registry.state()["decisions"] if d.get("drop", {}).get("name") == "half"]
    assert failed["decision"] == "failed" and failed["stage"] == "error" and "not complete" in failed["reasons"][0]
    assert failed["run"] == str(state.state_details.flow_run_id)
    assert shared.registry.decided_since("f" * 64, time.time() - 600) and shared.registry.decision_for("f" * 64) is None
    assert production_id(shared) == before


def test_a_destructive_lambda_is_rejected_by_the_gate(shared, promoted, flows):
    make_drop(shared.landing, "news-lam", 1)
    before = production_id(shared)
    decision = flows.adapt("news-lam", lam=8.0, params=shared.params)
    assert decision["decision"] == "rejected" and decision["stage"] == "gate" and decision["lambda"] == 8.0
    m = decision["metrics"]  # lambda = 8 wrecks the stored facts: earlier knowledge goes first
    worse_on_new = m["new_candidate_exact_match"] <= m["new_production_exact_match"]
    forgot = m["regression_production_exact_match"] - m["regression_candidate_exact_match"] > TOLERANCE
    assert worse_on_new or forgot
    assert any("does not beat production" in r or "> tolerance" in r for r in decision["reasons"])
    assert production_id(shared) == before and shared.registry.verify()["id"] == before
    assert not shared.registry.model_dir(decision["candidate"]).exists()  # rejected weights are not kept
    event = events("past.model.rejected", f"past.model.{decision['candidate']}")[0]
    assert event.payload["reasons"] == decision["reasons"]


# from the base, ~10 passes: what the tiny project's target SFT makes over its documents
CONSOLIDATE = {"on_forgetting": True, "start": "base", "epochs": 10.0, "batch_size": 16}
FORGETFUL = {"on_top": "base", "replay": 0.0}  # SFT from the base on the drop alone: learns it, forgets the rest


def test_forgetting_earlier_knowledge_is_rejected_by_the_gate(shared, promoted, flows):
    """SFT from the base without replay learns the drop but forgets the regression set: rejected (here with
    consolidations off; with them on, the next test)."""
    make_drop(shared.landing, "news-forget", 2)
    params = write_params(shared.root, "params-from-base.yaml", **FORGETFUL,
                          consolidate={"on_forgetting": False})  # same registry
    before = production_id(shared)
    decision = flows.adapt("news-forget", params=str(params))
    m = decision["metrics"]
    assert decision["decision"] == "rejected" and decision["stage"] == "gate"
    assert m["new_candidate_exact_match"] > m["new_production_exact_match"]  # it did learn the new drop...
    assert m["regression_production_exact_match"] - m["regression_candidate_exact_match"] > TOLERANCE  # ...forgot
    assert any("regression set" in r and "> tolerance" in r for r in decision["reasons"])
    assert production_id(shared) == before


def test_a_candidate_that_forgets_is_followed_by_a_consolidation_that_keeps_everything(shared, promoted, flows,
                                                                                       tmp_path):
    """The same forgetful SFT, consolidations on: in the same run the flow rebuilds from the base on all the
    knowledge the lineage holds (the regression set's documents, every promoted drop's, this drop's) and injects
    the production skill; the same gate promotes it, and the registry records what happened."""
    make_drop(shared.landing, "news-consolidate", 5)
    # a tolerance the tiny model's consolidation can keep (60 + 20 questions of a 2-layer d=64 model, holding 20
    # people's facts at once: it loses 7 of 60 and 5 of 20 here), far below what the forgetful SFT loses (half)
    tolerance = 0.3
    params = write_params(shared.root, "params-consolidate.yaml", **FORGETFUL, consolidate=CONSOLIDATE,
                          tolerance=tolerance, drift=tolerance)
    before = production_id(shared)
    decision = flows.adapt("news-consolidate", params=str(params))
    attempt, m = decision["attempt"], decision["metrics"]  # the incremental candidate, then the consolidated one
    assert attempt["metrics"]["new_candidate_exact_match"] > attempt["metrics"]["new_production_exact_match"]
    assert any("regression set" in r and "> tolerance" in r for r in attempt["reasons"])  # learned it, forgot
    assert not shared.registry.model_dir(attempt["candidate"]).exists()  # rejected weights are not kept
    assert decision["decision"] == "promoted" and decision["stage"] == decision["kind"] == "consolidation"
    assert m["new_candidate_exact_match"] > m["new_production_exact_match"]
    for which in ("regression", "earlier"):  # earlier: the promoted drops' questions, asked too
        loss = m[f"{which}_production_exact_match"] - m[f"{which}_candidate_exact_match"]
        assert loss <= tolerance and loss < (attempt["metrics"][f"{which}_production_exact_match"]
                                             - attempt["metrics"][f"{which}_candidate_exact_match"])
    entry = shared.registry.production()
    assert entry["id"] == decision["candidate"] != before and entry["parent"] == before
    assert entry["kind"] == "consolidation" and entry["on_top"] == "base"
    lineage_drops = [e["drop"]["name"] for e in shared.registry.lineage() if e.get("drop")]
    trained = decision["timings"]["consolidation_target_sft"]
    assert "news-0" in lineage_drops and trained["seconds"] > 0  # its SFT saw drop 0's documents too
    shown = shared.registry.summary()
    assert "(consolidated: SFT on all knowledge)" in shown and "consolidation" in shown
    # `past report`'s section on the stream, from this registry: the row and the plot
    from past.evaluation.stream import stream_section

    section = stream_section(shared.registry.root / "registry.json", tmp_path / "report.md")
    assert f"| news-consolidate | promoted | consolidation | {m['new_candidate_exact_match']:.3f} |" in section
    assert (tmp_path / "report_files/stream.png").read_bytes()[:4] == b"\x89PNG"


def test_a_consolidation_comes_on_schedule_every_n_promotions(template, tmp_path, flows, api_url):
    """consolidate.every: once that many drops were promoted incrementally since the last rebuild (or the first
    production), the next drop is consolidated straight away, with no incremental attempt."""
    from past.continual.adaptation import consolidation_due, settings

    root = tmp_path / "project"
    project = project_at(root, copy_project(template, root, consolidate={"every": 1, "epochs": 3.0, "batch_size": 16}))
    s = settings(project.params)
    make_drop(project.landing, "news-a", 8)
    first = flows.adapt("news-a", params=project.params)
    assert first["decision"] == "promoted" and first["kind"] == "incremental"  # the first production: none due
    assert consolidation_due(s, production_id(project))
    make_drop(project.landing, "news-b", 9)
    second = flows.adapt("news-b", params=project.params)
    assert second["kind"] == second["stage"] == "consolidation" and "attempt" not in second
    assert "target_sft" not in second["timings"] and second["timings"]["consolidation_target_sft"]["seconds"] > 0
    assert second["decision"] == "promoted" and not consolidation_due(s, production_id(project))  # count restarts
    assert project.registry.model(second["candidate"])["on_top"] == "target"  # consolidate.start: production's SFT


def test_a_change_of_grading_rescores_production_and_the_candidate(shared, promoted, flows):
    """Scores are cached by model, questions and EvalSpec: another max_new_tokens or chat is another score."""
    make_drop(shared.landing, "news-spec", 4)
    params = write_params(shared.root, "params-spec.yaml", min_gain=1.0, keep_rejected=1)  # rejected, kept
    first = flows.adapt("news-spec", params=str(params))
    assert first["decision"] == "rejected" and first["stage"] == "gate"
    again = flows.adapt("news-spec", force=True, params=str(params))  # same grading: every score cached
    assert all(again["timings"][f"evaluate_{w}_{m}"]["cached"] for w in ("new", "regression")
               for m in ("production", "candidate"))
    data = yaml.safe_load(params.read_text())
    data["evaluate"]["max_new_tokens"] = 3
    params.write_text(yaml.safe_dump(data))
    regraded = flows.adapt("news-spec", force=True, params=str(params))
    assert regraded["candidate"] == first["candidate"] and regraded["timings"]["target_sft"]["cached"]  # not retrained
    assert not any(regraded["timings"][f"evaluate_{w}_{m}"]["cached"] for w in ("new", "regression")
                   for m in ("production", "candidate"))
    shared.registry.discard(first["candidate"])


# ------------------------------------------------------------------------------------------ crash + resume


@pytest.mark.reliability(16, 'the adapt flow killed (SIGKILL) at each step: after validation, mid-SFT, after inject, mid-evaluation, during record',
                         'after every kill production whole; the reruns end in one decision')
def test_a_flow_killed_at_each_step_converges_to_one_decision(template, tmp_path, flows, api_url):
    """Each run is killed (SIGKILL) at the next step (flows_faults.KILLS): after validation, mid-SFT, after inject,
    mid-evaluation, during record; every rerun resumes what the last one finished."""
    sft = {"steps": 6, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.05}  # any decision will do here
    root = tmp_path / "project"
    project = project_at(root, copy_project(template, root, sft=sft, consolidate={"on_forgetting": False}))
    params = yaml.safe_load(Path(project.params).read_text())
    params["train"] = {"checkpoint_steps": 2}  # the adapt SFT checkpoints, so mid-SFT is a place to resume from
    Path(project.params).write_text(yaml.safe_dump(params))
    from past.continual.adaptation import ensure_production, settings
    ensure_production(settings(project.params))
    make_drop(project.landing, "news-kill", 3, people=2)
    registry, before = project.registry, production_id(project)
    kills = kill_adapt_at(KILLS, "news-kill", project.params, registry, api_url)
    for kill in kills:
        assert kill["returncode"] == -signal.SIGKILL, f"not killed at {kill['point']}:\n{kill['log'][-3000:]}"
        if kill["point"] != "registry:written":  # nothing recorded yet, production untouched and whole
            assert kill["registry_unchanged"] and kill["production_whole"], kill["point"]
    assert "resuming from" in kills[2]["log"]  # the run after the mid-SFT kill resumed its checkpoint
    unregistered = [p.name for p in (registry.root / "models").iterdir() if p.name not in registry.state()["models"]]
    decision = flows.adapt("news-kill", params=project.params)  # the last rerun finds the recorded decision
    drop_hash = decision["drop"]["hash"]
    decisions = [d for d in registry.state()["decisions"] if d.get("drop", {}).get("hash") == drop_hash]
    assert [d["decision"] for d in decisions][1:] == ["skipped"] and decisions[0]["decision"] in FINAL
    final = decisions[0]
    assert final["stage"] == "gate" and decision["candidate"] == final["candidate"]
    # a rejected candidate the killed run had no time to delete is deleted by the rerun
    assert unregistered == ([final["candidate"]] if final["decision"] == "rejected" else [])
    # production, its symlink and the model folders agree with the one decision; nothing half-written is left
    production = registry.verify()
    assert production["id"] == (final["candidate"] if final["decision"] == "promoted" else before)
    assert (registry.root / "production").resolve() == registry.path(production["path"]).resolve()
    assert sorted(p.name for p in (registry.root / "models").iterdir()) == sorted(registry.state()["models"])
    assert stray_temporaries(registry.root) == [] and not any((registry.root / "work").glob("*"))


# ------------------------------------------------------------------------------------------ skill refresh


def test_refresh_skill_rejects_a_new_skill_that_does_worse(shared, promoted, flows):
    """The candidate at adapt.lam 8 (a lambda that wrecks the stored facts: measured 0.017 against production's 0.70
    on the 60 questions): the refresh runs in full and is rejected; skill and production stay, the new skill's
    file is not kept."""
    skill_before, production_before = shared.registry.skill()["id"], production_id(shared)
    params = write_params(shared.root, "params-refresh.yaml", lam=8.0)
    data = yaml.safe_load(params.read_text())
    data["source_sft"]["steps"], data["skill_rl"]["grpo"]["steps"] = 60, 4  # shorter than the template's
    params.write_text(yaml.safe_dump(data))
    decision = flows.refresh_skill(params=str(params))
    scores = decision["scores"]
    assert decision["stage"] == "skill" and decision["decision"] == "rejected", scores
    assert scores["candidate"]["exact_match"] < scores["production"]["exact_match"]
    assert shared.registry.skill()["id"] == skill_before and production_id(shared) == production_before
    assert not shared.registry.skill_file(decision["skill"]).exists()
    events("past.skill.rejected", f"past.skill.{decision['skill']}")
    assert not (shared.registry.root / "refresh").exists() or not any((shared.registry.root / "refresh").iterdir())


def test_refresh_skill_registers_a_new_skill_that_does_better(template, tmp_path, flows, api_url):
    """Production without a skill (the pipeline's PaST model at lambda 0, i.e. target SFT itself) against a
    refreshed skill at lambda 0.5 (the template's source SFT and RL): the candidate answers more (measured 0.70
    against 0.63 on the 60 questions, the same on every x86 CPU: the kernels are pinned), so the skill is
    registered and production becomes the same SFT weights with the new skill."""
    import shutil

    root = tmp_path / "project"
    copy_project(template, root)
    shutil.rmtree(root / "models/past")
    shutil.copytree(root / "models/target_sft", root / "models/past")  # target SFT + 0 v
    params = write_params(root, "params-refresh.yaml", lam=0.5)  # adapt.lam: the candidate's
    data = yaml.safe_load(params.read_text())
    data["inject"]["lam"] = 0.0  # what the first production (the pipeline's PaST model) was injected at
    params.write_text(yaml.safe_dump(data))
    project = project_at(root, params)
    decision = flows.refresh_skill(params=str(params))
    scores = decision["scores"]
    assert decision["stage"] == "skill" and decision["decision"] == "promoted", scores
    assert scores["candidate"]["exact_match"] > scores["production"]["exact_match"]
    production = project.registry.verify()
    assert project.registry.skill()["id"] == decision["skill"] == production["skill"]
    assert production["id"] == decision["candidate"] and production["lambda"] == 0.5
    parent = project.registry.model(production["parent"])
    assert production["sft"] == parent["sft"] and parent["lambda"] == 0.0  # same knowledge, new skill
    events("past.skill.registered", f"past.skill.{decision['skill']}")


# ------------------------------------------------------------------------------------------ deployments


def test_prefect_yaml_declares_the_trigger_schedules_and_limits():
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.events import DeploymentEventTrigger

    config = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "prefect.yaml").read_text()))
    by_name = {d.name: d for d in config.deployments}
    assert set(by_name) == {"adapt", "watch", "refresh-skill"}
    assert {d.work_pool.name for d in by_name.values()} == {"gpu"}
    trigger = DeploymentEventTrigger(**{k: v for k, v in by_name["adapt"].triggers[0].items() if k != "type"})
    assert trigger.expect == {"past.knowledge.landed"}
    assert by_name["adapt"].concurrency_limit.limit == 1
    assert by_name["adapt"].concurrency_limit.collision_strategy == "ENQUEUE"
    assert by_name["watch"].schedules[0].interval and by_name["refresh-skill"].schedules[0].cron


@pytest.mark.reliability(17, "drops landing at once, through watch and the served deployment's trigger (`--drops N`: 4 in the suite)",
                         'each adapted exactly once, in landing order, none lost')
def test_drops_landing_at_once_are_adapted_once_each_in_order(template, tmp_path, flows, api_url, request):
    """The real path under load: watch emits events, the deployment trigger (from prefect.yaml) starts adapt runs
    on a served deployment, one at a time; every drop is adapted exactly once, in landing order. Four drops in the
    suite, three of them queued behind the first run; `--drops 20` (docs/reliability.md, case 17) takes ~5 min."""
    sft = {"steps": 1, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.0}  # any decision will do here
    project = project_at(tmp_path / "project", copy_project(template, tmp_path / "project", sft=sft,
                                                            consolidate={"on_forgetting": False}))
    load = land_and_serve(project, request.config.getoption("--drops"), flows.watch, api_url)
    names, runs, log = load["names"], load["runs"], load["log"]
    assert load["landed_seconds"] < 5
    assert load["announced"] == names  # each announced once, oldest first
    assert [r.parameters["drop"] for r in runs] == names and all(r.state.is_completed() for r in runs)
    assert all(later.start_time >= earlier.end_time for earlier, later in zip(runs, runs[1:]))  # one at a time
    # the registry's log: one final decision per drop, in landing order, each by its own run, each run on top
    # of the production the one before left
    assert [d["drop"]["name"] for d in log] == names and all(d["stage"] == "gate" for d in log)
    assert [d["run"] for d in log] == [str(r.id) for r in runs]
    assert all(later["production_before"] == earlier["production_after"] for earlier, later in zip(log, log[1:]))


def test_prefect_deploy_creates_the_deployments_trigger_and_limits(api_url):
    """`prefect deploy --all` with this repository's prefect.yaml, against the test server (the deployments, their
    trigger and the work pool are deleted afterwards: the trigger would start runs for the tests after it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    names = ("adapt/adapt", "watch/watch", "refresh_skill/refresh-skill")
    try:
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name="gpu", type="process", concurrency_limit=1))
        result = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT,
                                env={**os.environ, "PREFECT_API_URL": api_url}, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        with get_client(sync_client=True) as client:
            deployments = {name: client.read_deployment_by_name(name) for name in names}
            automations = client.request("POST", "/automations/filter", json={}).json()
            assert client.read_work_pool("gpu").concurrency_limit == 1
    finally:
        forget_deployments(list(names), work_pool="gpu")
    assert {d.work_pool_name for d in deployments.values()} == {"gpu"}
    assert all(d.global_concurrency_limit.limit == 1 for d in deployments.values())
    assert deployments["watch/watch"].schedules[0].schedule.interval.total_seconds() == 30
    assert deployments["refresh_skill/refresh-skill"].schedules[0].schedule.cron == "0 3 * * 1"
    trigger = next(a for a in automations if a["name"].startswith("adapt__automation"))
    assert trigger["trigger"]["expect"] == ["past.knowledge.landed"]
    assert trigger["actions"][0]["deployment_id"] == str(deployments["adapt/adapt"].id)
    assert trigger["actions"][0]["parameters"] == {"drop": "{{ event.payload.drop }}",
                                                   "expected_hash": "{{ event.payload.hash }}"}


# ------------------------------------------------------------------------------------------ under a launcher


def test_the_adapt_flows_sft_runs_under_the_launcher_and_matches_one_process(template, tmp_path, promoted, shared,
                                                                             flows):
    """train.launcher = torchrun with 2 processes: the flow's SFT runs in both (their logs), the main one saves,
    and the candidate's SFT weights match the one-process run of the same drop (`promoted`, news-0 from the same
    production) within the noise of a different reduction order: bf16 autocast sums the two halves of each batch
    apart. Measured: ~3% of the SFT update; a different seed moves it ~40%, so 10% separates the two."""
    from past.modeling import load_state

    project = project_at(tmp_path / "project", copy_project(template, tmp_path / "project"))
    params = yaml.safe_load(Path(project.params).read_text())
    params.setdefault("train", {})["launcher"] = f"torchrun --nproc_per_node 2 --log-dir {tmp_path / 'ranks'} --redirects 3"
    Path(project.params).write_text(yaml.safe_dump(params, sort_keys=False))
    make_drop(project.landing, "news-0", 0)
    decision = flows.adapt("news-0", params=project.params)
    assert decision["decision"] in ("promoted", "rejected") and decision["timings"]["target_sft"]
    logs = {p.parent.name: p.read_text() for p in (tmp_path / "ranks").rglob("stderr.log")}  # torchrun's, per rank
    assert sorted(logs) == ["0", "1"] and "it/s]" in logs["0"]  # two processes; the main one shows progress
    sft = project.registry.model_dir(decision["candidate"]) / "sft"
    assert sorted(p.name for p in sft.parent.iterdir() if p.name.startswith(".") or p.suffix == ".json") == []
    assert not (project.registry.root / "work" / f"{decision['candidate']}-sft").exists()
    one = shared.registry.model_dir(promoted.decision["candidate"]) / "sft"
    start, a, b = (load_state(f) for f in (template / "models/target_sft", one, sft))
    update = sum(float(((a[k] - start[k]) ** 2).sum()) for k in start) ** 0.5
    apart = sum(float(((a[k] - b[k]) ** 2).sum()) for k in start) ** 0.5
    assert 0 < apart / update < 0.10, f"{apart / update:.3f} of the SFT update"


def test_replay_mixes_in_the_pretraining_set_and_lambda_is_chosen_on_validation_questions(template, tmp_path):
    """adapt.replay_pretraining: that share of the replayed texts comes from the base's pre-training mixture, the
    rest from earlier documents; adapt.lambdas: each candidate's lambda is chosen on the regression set's
    validation split (never the questions the gate asks), a wrecking lambda is not chosen, and the served
    weights are the chosen lambda's."""
    from past import steps
    from past.config import load_params
    from past.continual import adaptation
    from past.continual.registry import weights_sha256

    root = tmp_path / "project"
    params = copy_project(template, root, replay_pretraining=0.25, lambdas=[0.0, 0.5, 8.0])
    s = adaptation.settings(params)
    production = adaptation.ensure_production(s)
    texts = adaptation.replay_texts(s, production["id"], 100, seed=0)
    mixture, known = set(adaptation.pretraining_texts(s)), set(adaptation.known_documents(s, production["id"]))
    assert mixture and not mixture & known
    assert (sum(t in mixture for t in texts), sum(t in known for t in texts)) == (25, 75)

    validation, gated = adaptation.validation_questions(s), adaptation.regression_questions(s)["questions"]
    assert validation and {q["split"] for q in validation} == {"oracle"}
    assert not {q["id"] for q in validation} & {q["id"] for q in gated}
    # the choice on a candidate without that replay (it is harmful on this small, dense world: README)
    s = adaptation.settings(write_params(root, "params-choice.yaml", lambdas=[0.0, 0.5, 8.0]))
    make_drop(root / "landing", "news-choice", 7)
    drop = adaptation.resolve_drop(s, "news-choice")
    p = adaptation.plan(s, drop, adaptation.validate_and_snapshot(s, drop))
    assert p.lam is None and p.lambdas == [0.0, 0.5, 8.0]
    adaptation.train(s, p)
    injected = adaptation.inject_skill(s, p)
    choice = injected["lambda_choice"]["exact_match"]
    assert set(choice) == {"0", "0.5", "8"} and injected["lambda_choice"]["questions"] == len(validation)
    best = max(choice.values())
    assert injected["lambda"] == min((float(k) for k, v in choice.items() if v == best), key=abs)
    assert injected["lambda"] != 8.0 and choice["8"] < best  # lambda 8 wrecks the stored facts
    again = steps.inject(Path(p.sft_dir), Path(p.skill.path), injected["lambda"], tmp_path / "again")
    assert weights_sha256(again) == injected["weights_sha256"]
    assert adaptation.model_entry(s, p, injected, {}, None)["lambda"] == injected["lambda"]

    with pytest.raises(ValueError, match="adapt.validation_splits"):
        load_params(write_params(root, "params-bad.yaml", lambdas=[0.0], validation_splits=["eval"]))
