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

from flows_fixtures import TOLERANCE, build_project, copy_project, make_drop, wait_for, write_params
from past.continual.registry import Registry

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
    return SimpleNamespace(report=report, decision=decision, before=before)


def test_valid_drop_runs_end_to_end_and_promotes(shared, promoted):
    decision, drop_hash = promoted.decision, promoted.report["announced"][0]["hash"]
    assert [a["name"] for a in promoted.report["announced"]] == ["news-0"]
    assert decision["decision"] == "promoted", decision["reasons"]
    m = decision["metrics"]
    assert m["new_candidate_exact_match"] > m["new_production_exact_match"]
    assert m["regression_production_exact_match"] - m["regression_candidate_exact_match"] <= TOLERANCE + 1e-9
    # the registry says so: production is the candidate, from this drop, skill and lambda, on top of the old one
    production = shared.registry.verify()
    assert production["id"] == decision["candidate"] == production_id(shared)
    assert production["drop"] == {"name": "news-0", "hash": drop_hash}
    assert production["skill"] == shared.registry.skill()["id"] and production["lambda"] == 0.5
    assert production["parent"] == decision["production_before"]
    assert production["metrics"] == m
    assert (shared.registry.root / "production").resolve() == shared.registry.path(production["path"]).resolve()
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

    folder = shared.registry.root / "production"
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


def test_forgetting_earlier_knowledge_is_rejected_by_the_gate(shared, promoted, flows):
    """SFT from the base without replay learns the drop but forgets the regression set: rejected."""
    make_drop(shared.landing, "news-forget", 2)
    params = write_params(shared.root, "params-from-base.yaml", on_top="base", replay=0.0)  # same registry
    before = production_id(shared)
    decision = flows.adapt("news-forget", params=str(params))
    m = decision["metrics"]
    assert decision["decision"] == "rejected" and decision["stage"] == "gate"
    assert m["new_candidate_exact_match"] > m["new_production_exact_match"]  # it did learn the new drop...
    assert m["regression_production_exact_match"] - m["regression_candidate_exact_match"] > TOLERANCE  # ...forgot
    assert any("regression set" in r and "> tolerance" in r for r in decision["reasons"])
    assert production_id(shared) == before


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


def test_a_flow_killed_mid_run_resumes_and_never_exposes_a_partial_model(template, tmp_path, flows, api_url):
    shared = project_at(tmp_path / "project", copy_project(template, tmp_path / "project"))
    from past.continual.adaptation import ensure_production, settings
    ensure_production(settings(shared.params))  # the pipeline's model is production before the run starts
    make_drop(shared.landing, "news-kill", 3)
    before = production_id(shared)
    cache = shared.registry.cache_dir
    done_before = set(cache.glob("target-sft-*"))
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(["nice", "-n", "10", sys.executable, str(ROOT / "flows/adapt.py"), "news-kill",
                              "--params", shared.params], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the moment target SFT's result is cached, freeze the run, then kill it: it is mid-way (inject/evaluate)
        wait_for(lambda: set(cache.glob("target-sft-*")) - done_before or child.poll() is not None, 240, 0.01,
                 "target SFT to finish in the child run")
        os.killpg(child.pid, signal.SIGSTOP)
        assert child.poll() is None and production_id(shared) == before, "the child run ended before it was frozen"
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert production_id(shared) == before and shared.registry.verify()["id"] == before
    decision = flows.adapt("news-kill", params=shared.params)
    assert decision["timings"]["target_sft"]["cached"] is True  # the finished step is not redone
    assert decision["decision"] == "promoted", decision["reasons"]
    assert shared.registry.verify()["id"] == decision["candidate"]
    leftovers = [p.name for p in shared.registry.model_dir(decision["candidate"]).iterdir() if p.name.startswith(".")]
    assert shared.registry.model(decision["candidate"])["path"].endswith("/model") and "model" not in leftovers


# ------------------------------------------------------------------------------------------ skill refresh


def test_refresh_skill_registers_a_new_skill_only_if_it_beats_the_current_one(shared, promoted, flows):
    skill_before, production_before = shared.registry.skill()["id"], production_id(shared)
    params = write_params(shared.root, "params-refresh.yaml")  # shorter source SFT + RL than the template's
    data = yaml.safe_load(params.read_text())
    data["source_sft"]["steps"], data["skill_rl"]["grpo"]["steps"] = 60, 4
    params.write_text(yaml.safe_dump(data))
    decision = flows.refresh_skill(params=str(params))
    scores = decision["scores"]
    better = scores["candidate"]["exact_match"] > scores["production"]["exact_match"]
    assert decision["stage"] == "skill" and (decision["decision"] == "promoted") == better
    if better:
        assert shared.registry.skill()["id"] == decision["skill"] != skill_before
        production = shared.registry.verify()
        assert production["id"] == decision["candidate"] and production["skill"] == decision["skill"]
        assert production["sft"] == shared.registry.model(production_before)["sft"]  # same knowledge, new skill
        events("past.skill.registered", f"past.skill.{decision['skill']}")
    else:
        assert shared.registry.skill()["id"] == skill_before and production_id(shared) == production_before
        assert not shared.registry.skill_file(decision["skill"]).exists()
        events("past.skill.rejected", f"past.skill.{decision['skill']}")
    assert not (shared.registry.root / "refresh").exists() or not any((shared.registry.root / "refresh").iterdir())


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


def test_two_drops_in_a_row_trigger_two_sequential_runs_both_recorded(template, tmp_path, flows, api_url):
    """The real path: watch emits events, the deployment trigger (from prefect.yaml) starts adapt runs on a
    served deployment, one at a time."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    sft = {"steps": 40, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.05}  # any decision will do here
    project = project_at(tmp_path / "project", copy_project(template, tmp_path / "project", sft=sft))
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen([sys.executable, str(ROOT / "flows/serve.py"), "--params", project.params,
                               "--only", "adapt"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def deployment():
            with get_client(sync_client=True) as client:
                try:
                    return client.read_deployment_by_name("adapt/adapt")
                except Exception:
                    return None
        wait_for(deployment, 90, 0.5, "the served adapt deployment")
        time.sleep(2)  # its automation is created right after the deployment
        make_drop(project.landing, "monday", 4, people=2)
        make_drop(project.landing, "tuesday", 5, people=2)
        report = flows.watch(params=project.params)
        hashes = {a["name"]: a["hash"] for a in report["announced"]}
        assert set(hashes) == {"monday", "tuesday"}

        def finished_runs():
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["adapt"])))
            return runs if len(runs) >= 2 and all(r.state.is_final() for r in runs) else None
        runs = wait_for(finished_runs, 240, 1.0, "two triggered adapt runs to finish")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
    runs = sorted(runs, key=lambda r: r.start_time)
    assert sorted(r.parameters["drop"] for r in runs) == ["monday", "tuesday"]
    decisions = {name: project.registry.decision_for(h) for name, h in hashes.items()}
    assert all(d["stage"] == "gate" for d in decisions.values())
    assert runs[1].start_time >= runs[0].end_time  # sequential: never two adaptations at once
    assert {d["run"] for d in decisions.values()} == {str(r.id) for r in runs}
    first, second = sorted(decisions.values(), key=lambda d: d["at"])
    if first["decision"] == "promoted":  # the second run was planned on top of the first one's model
        assert second["production_before"] == first["candidate"]


def test_prefect_deploy_creates_the_deployments_trigger_and_limits(api_url):
    """`prefect deploy --all` with this repository's prefect.yaml, against the test server (runs last: it
    registers deployments of its own)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="gpu", type="process", concurrency_limit=1))
    result = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT,
                            env={**os.environ, "PREFECT_API_URL": api_url}, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    with get_client(sync_client=True) as client:
        deployments = {name: client.read_deployment_by_name(name)
                       for name in ("adapt/adapt", "watch/watch", "refresh_skill/refresh-skill")}
        automations = client.request("POST", "/automations/filter", json={}).json()
        assert client.read_work_pool("gpu").concurrency_limit == 1
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
