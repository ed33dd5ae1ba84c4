"""The model registry: which model is in production, where it came from, and every decision ever taken.

One folder (by default `models/registry/`), readable by a person and by any serving process:

    registry.json            the single source of truth (format past-registry/1):
                               production: id of the production model; skill: id of the production skill;
                               base: id of the base model; models / skills / bases: one entry each, with
                               paths, provenance (drop, skill, lambda, parent), metrics and weight sha256;
                               decisions: the log of every run (promoted, rejected, skipped), with reasons
    production -> models/<id>/model   symlink to the production model folder (for serving processes)
    models/<id>/model        the served weights (theta_sft + lambda v), a normal Hugging Face folder
    models/<id>/sft          its SFT weights before injection (the next drop is trained on these)
    skills/<id>/skill.safetensors   registered skill vectors
    bases/<id>/              the base model skills were extracted against
    drops/<hash>/            copies of promoted drops (provenance, and replay against forgetting)
    cache/                   Prefect task results (JSON) and cache records of the flows

Why JSON in a folder rather than DVC artifacts (`artifacts:` in dvc.yaml, promoted with GTO git tags):
promotions happen on workers, many times a day, without a person; a registry that needs a git commit
and tag per promotion would need git write access from every worker and a push race between them. A
JSON file replaced with one `os.replace` is atomic on every POSIX filesystem, needs no service, and
the folder can still be versioned with `dvc add models/registry` when a snapshot is wanted.

Atomicity: model folders are written whole into place (temporary sibling + rename) before any entry
names them, and registry.json is replaced in one rename under an exclusive lock. Production therefore
never points at a half-written model, and a killed run leaves at worst an orphan folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from past import failpoints
from past.errors import Refusal
from past.files import (atomic_dir, atomic_path, clear_stale, copy_folder_atomic, sha256_file, sha256_json,
                        write_json_atomic)

FORMAT = "past-registry/1"
STATE = "registry.json"
PRODUCTION_LINK = "production"
FINAL = ("promoted", "rejected")
NOT_ON_CONTENT = ("landing", "production", "promotion", "stale")  # rejections that say nothing of the knowledge


class RegistryError(Refusal):
    """The registry cannot do what was asked (no production yet, unknown id, a stale promotion...)."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def weights_sha256(folder: str | Path) -> dict[str, str]:
    """sha256 of every safetensors file of a model folder (or of one skill file)."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.glob("*.safetensors"))
    if not files:
        raise RegistryError(f"{folder}: no .safetensors weights")
    return {path.name: sha256_file(path) for path in files}


def _empty() -> dict:
    return {"format": FORMAT, "production": None, "skill": None, "base": None,
            "models": {}, "skills": {}, "bases": {}, "decisions": []}


class Registry:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------------------------------ paths

    def model_dir(self, model_id: str) -> Path:
        return self.root / "models" / model_id

    def skill_file(self, skill_id: str) -> Path:
        return self.root / "skills" / skill_id / "skill.safetensors"

    def base_dir(self, base_id: str) -> Path:
        return self.root / "bases" / base_id

    def drop_dir(self, drop_hash: str) -> Path:
        return self.root / "drops" / drop_hash[:16]

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def path(self, relative: str) -> Path:
        return self.root / relative

    # ------------------------------------------------------------------------------------------ reading

    def state(self) -> dict:
        path = self.root / STATE
        if not path.exists():
            return _empty()
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:  # e.g. truncated by a full disk elsewhere
            raise RegistryError(f"{path}: not a readable registry ({err}); it is never rewritten while unreadable: "
                                "restore it (the folder's models and skills are untouched)") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise RegistryError(f"{path}: format {found!r}, expected {FORMAT}")
        return state

    def production(self) -> dict | None:
        """The production model's entry (with its id), or None before the first registration."""
        state = self.state()
        return _with_id(state["models"], state["production"])

    def skill(self) -> dict | None:
        state = self.state()
        return _with_id(state["skills"], state["skill"])

    def base(self) -> dict | None:
        state = self.state()
        return _with_id(state["bases"], state["base"])

    def model(self, model_id: str) -> dict:
        entry = _with_id(self.state()["models"], model_id)
        if entry is None:
            raise RegistryError(f"{self.root}: no model {model_id!r}")
        return entry

    def decision_for(self, drop_hash: str) -> dict | None:
        """The last final decision (promoted or rejected) taken on a drop's content, if any. A rejection for a
        reason outside the content (its packaging, a damaged production or candidate, a production that moved
        during the run: `NOT_ON_CONTENT`) is not one, so the same content is adapted again once that is fixed."""
        for decision in reversed(self.state()["decisions"]):
            if (decision.get("drop", {}).get("hash") == drop_hash and decision["decision"] in FINAL
                    and decision.get("stage") not in NOT_ON_CONTENT):
                return decision
        return None

    def decided_since(self, drop_hash: str, since: float) -> bool:
        """Whether any decision (of any kind: a failed run's too) was recorded on a drop's content at or after
        `since` (seconds since the epoch)."""
        after = datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="milliseconds")
        return any(d.get("drop", {}).get("hash") == drop_hash and d["at"] >= after for d in self.state()["decisions"])

    def lineage(self, model_id: str | None = None) -> list[dict]:
        """The model and its ancestors, newest first."""
        state = self.state()
        out, current = [], model_id or state["production"]
        while current:
            entry = _with_id(state["models"], current)
            if entry is None:
                break
            out.append(entry)
            current = entry.get("parent")
        return out

    def verify(self, model_id: str | None = None) -> dict:
        """Check a registered model (production by default) before work starts on it or production moves to it:
        its weights as recorded, its SFT weights present, its skill file as recorded. Raises RegistryError naming
        the model and what is missing or changed."""
        entry = self.model(model_id) if model_id else self.production()
        if entry is None:
            raise RegistryError(f"{self.root}: no production model")
        what = f"model {entry['id']}"
        self._check_weights(self.path(entry["path"]), entry["weights_sha256"], what)
        if entry.get("sft"):
            self._check_weights(self.path(entry["sft"]), None, f"{what}: its SFT weights")
        skill = _with_id(self.state()["skills"], entry.get("skill"))
        if entry.get("skill") and skill is None:
            raise RegistryError(f"{self.root}: {what}: its skill {entry['skill']!r} is not registered")
        if skill is not None:
            self._check_weights(self.path(skill["path"]), skill.get("weights_sha256"), f"{what}: its skill {skill['id']}")
        return entry

    @staticmethod
    def _check_weights(path: Path, recorded: dict | None, what: str) -> None:
        if not path.exists():
            raise RegistryError(f"{path}: missing ({what})")
        actual = weights_sha256(path)
        if recorded is not None and actual != recorded:
            raise RegistryError(f"{path}: weights do not match the registry ({what})")

    # ------------------------------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def transaction(self):
        """Exclusive lock, current state in, state written back atomically (one rename) on success."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.state()
                yield state
                write_json_atomic(self.root / STATE, state)
                failpoints.reached("registry:written")
                self._link_production(state)  # a kill before this: the next transaction moves the link
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _link_production(self, state: dict) -> None:
        if not state["production"]:
            return
        target = Path(state["models"][state["production"]]["path"])
        link = self.root / PRODUCTION_LINK
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        clear_stale(link)
        tmp = self.root / f".{PRODUCTION_LINK}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)

    def bootstrap(self, model: str | Path, sft: str | Path, base: str | Path, skill: str | Path, lam: float,
                  metrics: dict | None = None, source: str = "pipeline") -> str:
        """Register the pipeline's PaST model as the first production model (copies; idempotent).

        Returns the production id. Refuses if a production model already exists and differs.
        """
        model_hashes = weights_sha256(model)
        model_id = "m-" + _short(model_hashes)
        skill_hashes = weights_sha256(skill)
        skill_id = "s-" + _short(skill_hashes)
        base_id = "b-" + _short(weights_sha256(base))
        state = self.state()
        if state["production"] == model_id:
            return model_id
        if state["production"]:
            raise RegistryError(f"{self.root}: production is already {state['production']}; bootstrap refused")
        _copy_folder(base, self.base_dir(base_id))
        _copy_folder(sft, self.model_dir(model_id) / "sft")
        _copy_folder(model, self.model_dir(model_id) / "model")
        self.skill_file(skill_id).parent.mkdir(parents=True, exist_ok=True)
        if not self.skill_file(skill_id).exists():
            with atomic_path(self.skill_file(skill_id)) as tmp:
                shutil.copyfile(skill, tmp)
        rel = lambda p: str(Path(p).relative_to(self.root))  # noqa: E731
        with self.transaction() as state:
            if state["production"]:
                raise RegistryError(f"{self.root}: production is already {state['production']}; bootstrap refused")
            state["bases"][base_id] = {"path": rel(self.base_dir(base_id)), "source": str(base),
                                       "registered_at": now()}
            state["skills"][skill_id] = {"path": rel(self.skill_file(skill_id)), "lambda": float(lam),
                                         "base": base_id, "source": str(skill), "weights_sha256": skill_hashes,
                                         "metrics": {}, "registered_at": now()}
            state["models"][model_id] = {
                "path": rel(self.model_dir(model_id) / "model"), "sft": rel(self.model_dir(model_id) / "sft"),
                "base": base_id, "skill": skill_id, "lambda": float(lam), "drop": None, "parent": None,
                "source": str(model), "metrics": metrics or {}, "weights_sha256": model_hashes,
                "promoted_at": now()}
            state["production"], state["skill"], state["base"] = model_id, skill_id, base_id
            state["decisions"].append({"at": now(), "decision": "promoted", "stage": "bootstrap",
                                       "candidate": model_id, "production_before": None,
                                       "production_after": model_id, "skill": skill_id, "lambda": float(lam),
                                       "reasons": [f"first production model, registered from {source}"]})
        return model_id

    def archive_drop(self, drop_hash: str, folder: str | Path, files: list[str]) -> Path:
        """Keep a copy of a drop's data files (provenance, replay); idempotent."""
        target = self.drop_dir(drop_hash)
        if not target.exists():
            with atomic_dir(target) as tmp:
                for name in files:
                    shutil.copyfile(Path(folder) / name, tmp / name)
        return target

    def record(self, decision: dict, model: dict | None = None, skill: dict | None = None) -> dict:
        """Append a decision; with `model` (an entry with "id", "parent"), make it production atomically.

        A promotion whose parent is no longer production (another run promoted in between) is refused
        and logged as rejected (stale), so knowledge from a concurrent run is never silently dropped.
        With `skill` (an entry with "id"), that skill becomes the production skill too. A decision with an
        "id" that is already in the log is not recorded twice (retries are safe).
        """
        with self.transaction() as state:
            if decision.get("id"):  # a retried record (the write went through, the task did not return)
                done = next((d for d in state["decisions"] if d.get("id") == decision["id"]), None)
                if done is not None:
                    return done
            decision = {"at": now(), **decision, "production_before": state["production"]}
            damaged = self._unusable(model) if model is not None else None
            if damaged:  # never promote weights that are not what was evaluated
                decision.update(decision="rejected", stage="promotion", reasons=decision.get("reasons", []) + [damaged])
            elif model is not None:
                if model["parent"] != state["production"]:
                    decision.update(decision="rejected", stage="stale",
                                    reasons=decision.get("reasons", []) + [
                                        f"production moved from {model['parent']} to {state['production']} "
                                        "during the run; adapt the drop again on the new production"])
                else:
                    entry = {k: v for k, v in model.items() if k != "id"}
                    entry["promoted_at"] = now()
                    if skill is not None:
                        state["skills"][skill["id"]] = {**{k: v for k, v in skill.items() if k != "id"},
                                                        "registered_at": now()}
                        state["skill"] = skill["id"]
                    state["models"][model["id"]] = entry
                    state["production"] = model["id"]
            decision["production_after"] = state["production"]
            state["decisions"].append(decision)
        return decision

    def _unusable(self, model: dict) -> str | None:
        """Why a candidate's folder cannot be promoted (weights missing or not the evaluated ones), or None."""
        try:
            self._check_weights(self.path(model["path"]), model["weights_sha256"], f"candidate {model['id']}")
        except RegistryError as err:
            return str(err)
        return None

    def rollback(self, model_id: str, reason: str) -> dict:
        """Point production back at an earlier promoted model (logged like any decision), once its weights and
        skill are checked: production never points at a model whose files are gone.

        The skill goes back with it: production is a model and the skill it was injected with, and the next drop
        is adapted with that skill on that model's SFT weights. A newer skill (a refresh promoted after it) stays
        registered; the decision names both (skill_before, skill_after)."""
        self.verify(model_id)
        with self.transaction() as state:
            if model_id not in state["models"]:
                raise RegistryError(f"{self.root}: no model {model_id!r} to roll back to")
            skill = state["models"][model_id]["skill"]
            decision = {"at": now(), "decision": "promoted", "stage": "rollback", "candidate": model_id,
                        "production_before": state["production"], "production_after": model_id,
                        "skill_before": state["skill"], "skill_after": skill, "reasons": [reason]}
            state["production"], state["skill"] = model_id, skill
            state["decisions"].append(decision)
        return decision

    def discard(self, model_id: str) -> None:
        """Delete the folder of a candidate that was never promoted (a registered model is never deleted)."""
        if not model_id or model_id in self.state()["models"]:
            return
        shutil.rmtree(self.model_dir(model_id), ignore_errors=True)

    # ------------------------------------------------------------------------------------------ display

    def summary(self, decisions: int = 10) -> str:
        state = self.state()
        lines = [f"registry {self.root}"]
        prod = _with_id(state["models"], state["production"])
        if prod is None:
            return "\n".join(lines + ["  no production model yet"])
        drop = prod.get("drop") or {}
        lines.append(f"  production: {prod['id']}  ({prod['path']})")
        how = " (consolidated: SFT on all knowledge)" if prod.get("kind") == "consolidation" else ""
        lines.append(f"    from drop {drop.get('name', '-')} ({drop.get('hash', '-')[:12]}){how}, "
                     f"skill {prod['skill']} at lambda {prod['lambda']:g}, parent {prod.get('parent') or '-'}")
        lines.append(f"  skill for the next drop: {state['skill']}")
        for name, value in sorted(prod.get("metrics", {}).items()):
            lines.append(f"    {name}: {value}")
        consolidations = sum(m.get("kind") == "consolidation" for m in state["models"].values())
        lines.append(f"  models: {len(state['models'])} ({consolidations} consolidated), "
                     f"skills: {len(state['skills'])}, decisions: {len(state['decisions'])}")
        for d in state["decisions"][-decisions:]:
            drop = d.get("drop", {})
            lines.append(f"  {d['at']}  {d['decision']:<8} {d.get('stage', ''):<13} "
                         f"{drop.get('name', '-'):<20} {d.get('candidate') or '-':<16} "
                         f"{'; '.join(d.get('reasons', []))}")
        return "\n".join(lines)


def _with_id(entries: dict, key: str | None) -> dict | None:
    if key is None or key not in entries:
        return None
    return {"id": key, **entries[key]}


def _short(hashes: dict[str, str]) -> str:
    return sha256_json(hashes)[:12]


def _copy_folder(source: str | Path, target: Path) -> None:
    if not target.exists():
        copy_folder_atomic(source, target)

