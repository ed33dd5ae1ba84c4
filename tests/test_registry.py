"""The registry: bootstrap, atomic promotion, stale-promotion refusal, retried records, verification."""

import json
import os
import subprocess
import sys

import pytest

from past.continual.registry import Registry, RegistryError, weights_sha256


def fake_model(folder, content: bytes):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(content)
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def registry(tmp_path):
    src = tmp_path / "pipeline"
    skill = src / "skill" / "skill.safetensors"
    skill.parent.mkdir(parents=True)
    skill.write_bytes(b"skill")
    registry = Registry(tmp_path / "registry")
    registry.bootstrap(fake_model(src / "past", b"past"), fake_model(src / "target_sft", b"sft"),
                       fake_model(src / "base", b"base"), skill, lam=0.5)
    return registry


def candidate(registry, name: bytes, parent):
    model_id = "m-" + name.decode()
    fake_model(registry.model_dir(model_id) / "model", name)
    fake_model(registry.model_dir(model_id) / "sft", name + b"-sft")
    return {"id": model_id, "path": f"models/{model_id}/model", "sft": f"models/{model_id}/sft", "base": None,
            "skill": registry.skill()["id"], "lambda": 0.5, "drop": {"name": "d", "hash": name.decode() * 4},
            "parent": parent, "weights_sha256": weights_sha256(registry.model_dir(model_id) / "model"),
            "metrics": {}}


def test_bootstrap_copies_and_is_idempotent(registry, tmp_path):
    production = registry.production()
    assert registry.path(production["path"]).joinpath("model.safetensors").read_bytes() == b"past"
    assert registry.path(production["sft"]).joinpath("model.safetensors").read_bytes() == b"sft"
    assert registry.skill()["lambda"] == 0.5 and registry.base() is not None
    again = registry.bootstrap(tmp_path / "pipeline/past", tmp_path / "pipeline/target_sft",
                               tmp_path / "pipeline/base", tmp_path / "pipeline/skill/skill.safetensors", lam=0.5)
    assert again == production["id"]
    assert len(registry.state()["decisions"]) == 1
    assert os.readlink(registry.root / "production") == production["path"]


def test_promotion_switches_production_and_logs_the_decision(registry):
    before = registry.production()["id"]
    entry = candidate(registry, b"aaaa", before)
    decision = registry.record({"id": "run1", "decision": "promoted", "drop": entry["drop"],
                                "reasons": ["better"]}, model=entry)
    assert decision["production_before"] == before and decision["production_after"] == "m-aaaa"
    assert registry.production()["id"] == "m-aaaa"
    assert registry.verify()["id"] == "m-aaaa"
    assert (registry.root / "production" / "model.safetensors").read_bytes() == b"aaaa"
    assert registry.decision_for("aaaa" * 4)["decision"] == "promoted"
    assert [m["id"] for m in registry.lineage()] == ["m-aaaa", before]


def test_a_retried_record_is_not_logged_twice(registry):
    entry = candidate(registry, b"bbbb", registry.production()["id"])
    first = registry.record({"id": "run2", "decision": "promoted", "drop": entry["drop"]}, model=entry)
    second = registry.record({"id": "run2", "decision": "promoted", "drop": entry["drop"]}, model=entry)
    assert first == second
    assert sum(d.get("id") == "run2" for d in registry.state()["decisions"]) == 1


def test_a_promotion_built_on_a_stale_production_is_refused(registry):
    parent = registry.production()["id"]
    first, second = candidate(registry, b"cccc", parent), candidate(registry, b"dddd", parent)
    registry.record({"id": "r1", "decision": "promoted", "drop": first["drop"]}, model=first)
    decision = registry.record({"id": "r2", "decision": "promoted", "drop": second["drop"]}, model=second)
    assert decision["decision"] == "rejected" and decision["stage"] == "stale"
    assert registry.production()["id"] == "m-cccc"


def test_verify_catches_tampered_weights_and_rollback_is_logged(registry):
    original = registry.production()["id"]
    entry = candidate(registry, b"eeee", original)
    registry.record({"id": "r", "decision": "promoted", "drop": entry["drop"]}, model=entry)
    (registry.model_dir("m-eeee") / "model" / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="do not match"):
        registry.verify()
    registry.rollback(original, "bad weights")
    assert registry.production()["id"] == original and registry.verify()["id"] == original
    assert registry.state()["decisions"][-1]["stage"] == "rollback"


def test_a_rollback_takes_the_skill_back_with_the_model(registry, tmp_path):
    """A refresh promoted a model with a new skill; rolling back to the model before it makes that model's skill
    the one the next drop uses again (the newer skill stays registered), and `past registry show` says so."""
    original, old_skill = registry.production()["id"], registry.skill()["id"]
    new_skill_file = registry.skill_file("s-new")
    new_skill_file.parent.mkdir(parents=True)
    new_skill_file.write_bytes(b"new skill")
    new_skill = {"id": "s-new", "path": str(new_skill_file.relative_to(registry.root)), "lambda": 0.75,
                 "weights_sha256": weights_sha256(new_skill_file)}
    entry = {**candidate(registry, b"gggg", original), "skill": "s-new"}
    registry.record({"id": "refresh", "decision": "promoted", "drop": entry["drop"]}, model=entry, skill=new_skill)
    assert registry.production()["id"] == "m-gggg" and registry.skill()["id"] == "s-new"

    decision = registry.rollback(original, "the refreshed skill answers worse in production")
    assert registry.production()["id"] == original and registry.skill()["id"] == old_skill
    assert (decision["skill_before"], decision["skill_after"]) == ("s-new", old_skill)
    assert "s-new" in registry.state()["skills"]  # kept: a later refresh or rollback can use it again
    shown = subprocess.run([sys.executable, "-m", "past.cli", "registry", "show", str(registry.root)],
                           capture_output=True, text=True, check=True).stdout
    assert f"skill for the next drop: {old_skill}" in shown and "rollback" in shown


def test_discard_never_deletes_a_registered_model(registry):
    production = registry.production()["id"]
    registry.discard(production)
    assert registry.verify()["id"] == production
    candidate(registry, b"ffff", production)
    registry.discard("m-ffff")
    assert not registry.model_dir("m-ffff").exists()


def test_a_person_can_read_it(registry):
    past = [sys.executable, "-m", "past.cli", "registry", "show", str(registry.root)]
    out = subprocess.run(past, capture_output=True, text=True, check=True).stdout
    assert f"production: {registry.production()['id']}" in out and "bootstrap" in out
    state = json.loads(subprocess.run([*past, "--json"], capture_output=True, text=True, check=True).stdout)
    assert state["format"] == "past-registry/1"


@pytest.mark.reliability(8, 'a truncated `registry.json`', 'named, never rewritten')
def test_a_truncated_registry_is_named_and_never_rewritten(registry):
    state = registry.root / "registry.json"
    state.write_bytes(state.read_bytes()[:100])
    before = state.read_bytes()
    with pytest.raises(RegistryError, match=r"registry.json: not a readable registry"):
        registry.production()
    with pytest.raises(RegistryError, match="not a readable registry"):
        registry.record({"id": "x", "decision": "rejected"})
    shown = subprocess.run([sys.executable, "-m", "past.cli", "registry", "show", str(registry.root)],
                           capture_output=True, text=True)
    assert shown.returncode == 2 and f"{state}: not a readable registry" in shown.stderr
    assert state.read_bytes() == before


@pytest.mark.reliability(10, "production's skill file deleted, then a drop lands",
                         'refused before any work (flow: a recorded decision)')
def test_production_is_verified_with_its_sft_and_skill(registry):
    production = registry.production()
    assert registry.verify()["id"] == production["id"]
    skill = registry.path(registry.skill()["path"])
    skill.write_bytes(b"other skill")
    with pytest.raises(RegistryError, match=rf"weights do not match the registry \(model {production['id']}: its skill"):
        registry.verify()
    skill.unlink()
    with pytest.raises(RegistryError, match=rf"{skill}: missing \(model {production['id']}: its skill"):
        registry.verify()


@pytest.mark.reliability(9, 'rollback to a model whose weights are gone', 'refused, production and its link unchanged')
def test_rollback_refuses_a_model_whose_weights_are_gone(registry):
    first = registry.production()["id"]
    entry = candidate(registry, b"cccc", first)
    registry.record({"id": "run3", "decision": "promoted", "drop": entry["drop"]}, model=entry)
    (registry.path(registry.model(first)["path"]) / "model.safetensors").unlink()
    link = os.readlink(registry.root / "production")
    with pytest.raises(RegistryError, match=rf"missing|no .safetensors"):
        registry.rollback(first, "bad release")
    assert registry.production()["id"] == "m-cccc" and os.readlink(registry.root / "production") == link


def test_a_candidate_whose_weights_changed_is_not_promoted(registry):
    before = registry.production()["id"]
    entry = candidate(registry, b"dddd", before)
    (registry.model_dir("m-dddd") / "model" / "model.safetensors").write_bytes(b"tampered")
    decision = registry.record({"id": "run4", "decision": "promoted", "drop": entry["drop"]}, model=entry)
    assert decision["decision"] == "rejected" and decision["stage"] == "promotion"
    assert "weights do not match the registry (candidate m-dddd)" in decision["reasons"][-1]
    assert registry.production()["id"] == before
    assert registry.decision_for(entry["drop"]["hash"]) is None  # nothing was said about the drop's knowledge
