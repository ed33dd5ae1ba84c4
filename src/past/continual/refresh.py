"""Refreshing the production skill vector: source SFT + RL (iterative refinement) + extraction, again.

The weekly counterpart of `adaptation`: it reruns the DVC pipeline's source stages (the same functions)
on the registered base, and registers the new vector only if it beats the current one where it matters:
injected into production's own SFT weights at the registered lambda, it must answer the regression set
(knowledge production already holds) better than production does. If it does, the re-injected model is
promoted with it in the same atomic registry write; if not, nothing changes and the work is deleted.
Each refresh uses a new seed (params.seed + number of earlier refreshes), so reruns explore.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from past.continual.adaptation import Settings, digest, ensure_production, regression_questions, score
from past.knowledge.format import content_hash, read_knowledge_set, split_by_title
from past.continual.registry import weights_sha256


def plan(s: Settings) -> dict:
    """The refresh's inputs and id; a new seed per refresh (params.seed + 1 + earlier refreshes)."""
    started = time.perf_counter()
    registry, params = s.registry, s.params
    production = ensure_production(s)
    skill, base = registry.skill(), registry.base()
    source = s.resolve(params.adapt.source_set)
    attempts = sum(1 for d in registry.state()["decisions"] if d.get("stage") == "skill")
    seed = params.seed + 1 + attempts
    inputs = {"base": base["id"], "source": content_hash(source), "source_sft": params.source_sft.model_dump(),
              "skill_rl": params.skill_rl.model_dump(), "seed": seed, "production": production["id"],
              "skill": skill["id"], "lambda": skill["lambda"], "prompt": params.prompt}
    key = digest(inputs)
    work = registry.root / "refresh" / key[:16]
    return {
        "key": key, "inputs": inputs, "seed": seed, "work": str(work), "source": str(source),
        "base": str(registry.path(base["path"])), "base_id": base["id"],
        "production": {"id": production["id"], "path": str(registry.path(production["path"])),
                       "sft": production["sft"], "sft_path": str(registry.path(production["sft"]))},
        "current_skill": {"id": skill["id"], "lambda": skill["lambda"]},
        "skill_id": "s-" + key[:12], "skill_file": str(registry.skill_file("s-" + key[:12])),
        "candidate": "m-" + key[:12], "model_dir": str(registry.model_dir("m-" + key[:12]) / "model"),
        "regression": {"id": regression_questions(s)["id"]}, "seconds": round(time.perf_counter() - started, 3),
    }


def _params(s: Settings, p: dict):
    return s.params.model_copy(update={"seed": p["seed"]})


def source_sft(s: Settings, p: dict) -> dict:
    """The DVC `source_sft` stage's work: SFT of the base on the first refinement round's source subset."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past.modeling import set_threads
    from past.training.sft import finetune_folder

    set_threads(s.params.threads)
    params = _params(s, p)
    first = split_by_title(read_knowledge_set(p["source"]), params.skill_rl.rounds)[0]
    out = Path(p["work"]) / "source_sft"
    finetune_folder(p["base"], [d["text"] for d in first.documents], params.source_sft, params.seed, out)
    return {"dir": str(out), "seconds": round(time.perf_counter() - started, 3)}


def skill_rl(s: Settings, p: dict) -> dict:
    """The DVC `skill_rl` stage's work: GRPO rounds with iterative refinement (training.refinement)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past.files import atomic_dir
    from past.modeling import set_threads
    from past.training.refinement import acquire_skill

    set_threads(s.params.threads)
    params = _params(s, p)
    out = Path(p["work"]) / "skill_rl"
    with atomic_dir(out) as tmp:
        report = acquire_skill(params, Path(p["base"]), Path(p["work"]) / "source_sft",
                               read_knowledge_set(p["source"]), tmp)
    last = f"round_{params.skill_rl.rounds}"
    return {"rl": str(out / last / "rl"), "sft": str(out / last / "sft"), "rounds": report["rounds"],
            "seconds": round(time.perf_counter() - started, 3)}


def extract(s: Settings, p: dict, rl: dict) -> dict:
    """v = theta_rl - theta_sft into the registry's skill folder (written whole, then renamed)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past.skills import extract_skill

    metadata = {"base_model": s.params.base.model, "source_data_sha256": p["inputs"]["source"],
                "rounds": s.params.skill_rl.rounds, "recommended_lambda": p["current_skill"]["lambda"],
                "seed": p["seed"]}
    extract_skill(rl["rl"], rl["sft"], p["skill_file"], metadata=metadata, overwrite=True)
    return {"skill_file": p["skill_file"], "weights_sha256": weights_sha256(p["skill_file"]),
            "seconds": round(time.perf_counter() - started, 3)}


def inject_candidate(s: Settings, p: dict) -> dict:
    """Production's SFT weights + lambda * v_new: what production would be with the new skill."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past.skills import inject

    inject(p["production"]["sft_path"], [p["skill_file"]], [p["current_skill"]["lambda"]], p["model_dir"],
           overwrite=True, card={"refresh": p["key"][:16], "parent": p["production"]["id"]})
    return {"model_dir": p["model_dir"], "weights_sha256": weights_sha256(p["model_dir"]),
            "seconds": round(time.perf_counter() - started, 3)}


def evaluate(s: Settings, model_dir: str) -> dict:
    return score(s, model_dir, regression_questions(s)["questions"])


def gate(candidate: dict, production: dict, min_gain: float) -> tuple[bool, list[str]]:
    c, p = candidate["exact_match"], production["exact_match"]
    if c > p + min_gain:
        return True, [f"regression set with the new skill: {c:.3f} > {p:.3f} with the current one"]
    return False, [f"regression set with the new skill: {c:.3f} does not beat {p:.3f} with the current one"]


def entries(s: Settings, p: dict, extracted: dict, injected: dict, scores: dict, run: str | None) -> tuple[dict, dict]:
    """(model entry, skill entry) for a registered refresh."""
    registry = s.registry
    skill = {"id": p["skill_id"], "path": str(Path(p["skill_file"]).relative_to(registry.root)),
             "lambda": p["current_skill"]["lambda"], "base": p["base_id"], "seed": p["seed"],
             "weights_sha256": extracted["weights_sha256"], "replaces": p["current_skill"]["id"],
             "metrics": {"regression_exact_match": scores["candidate"]["exact_match"]}}
    model = {"id": p["candidate"], "path": str(Path(p["model_dir"]).relative_to(registry.root)),
             "sft": p["production"]["sft"], "base": p["base_id"], "skill": p["skill_id"],
             "lambda": p["current_skill"]["lambda"], "drop": None, "parent": p["production"]["id"],
             "on_top": "skill-refresh", "run": run, "weights_sha256": injected["weights_sha256"],
             "metrics": {"regression_candidate_exact_match": scores["candidate"]["exact_match"],
                         "regression_production_exact_match": scores["production"]["exact_match"],
                         "regression_set": p["regression"]["id"]}}
    return model, skill


def cleanup(s: Settings, p: dict, registered: bool) -> None:
    """The RL work is never needed again; a rejected skill and its model go too."""
    shutil.rmtree(p["work"], ignore_errors=True)
    if not registered:
        shutil.rmtree(Path(p["skill_file"]).parent, ignore_errors=True)
        s.registry.discard(p["candidate"])
