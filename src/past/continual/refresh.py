"""Refreshing the production skill vector: source SFT + RL (iterative refinement) + extraction, again.

The weekly counterpart of `adaptation`: it runs the DVC pipeline's source steps (`past.steps`, the same
functions) on the registered base, chooses the new vector's lambda on the source's validation questions (as
extract_skill does; `adapt.lam`, then `inject.lam`, pin it), and registers the vector only if it beats the
current one where it matters: injected into production's own SFT weights at that lambda, it must answer the
regression set (knowledge production already holds) better than production does. If it does, the
re-injected model is promoted with it in the same atomic registry write; if not, nothing changes and the
work is deleted. Each refresh uses a new seed (params.seed + 1 + number of earlier refreshes), so reruns
explore. Its source SFT and RL run where the adapt flow's SFT does: under `train.launcher` in `train.python`
(`continual.launched`) when those start processes of their own, else in the flow's process.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from past.continual.adaptation import (Settings, digest, ensure_production, production_ref, regression_questions,
                                       score)
from past.continual.launched import launch_step
from past.continual.plans import Ref, RefreshPlan, Regression
from past.continual.registry import weights_sha256
from past.knowledge.format import content_hash, read_knowledge_set
from past.launcher import is_launched


def plan(s: Settings) -> RefreshPlan:
    """The refresh's inputs and id; a new seed per refresh (params.seed + 1 + earlier refreshes)."""
    started = time.perf_counter()
    registry, params = s.registry, s.params
    production = ensure_production(s)
    skill, base = registry.skill(), registry.base()
    source = s.resolve(params.adapt.source_set)
    attempts = sum(1 for d in registry.state()["decisions"] if d.get("stage") == "skill")
    seed = params.seed + 1 + attempts
    pinned = params.adapt.lam if params.adapt.lam is not None else params.inject.lam  # None: the new skill's choice
    inputs = {"base": base["id"], "source": content_hash(source), "source_sft": params.source_sft.model_dump(),
              "skill_rl": params.skill_rl.model_dump(), "seed": seed, "production": production["id"],
              "skill": skill["id"], "lambda": pinned, "candidates": params.inject.candidates, "prompt": params.prompt,
              "chat": params.chat}
    key = digest(inputs)
    skill_id, candidate = "s-" + key[:12], "m-" + key[:12]
    regression = regression_questions(s)
    return RefreshPlan(
        key=key, inputs=inputs, seed=seed, work=str(registry.root / "refresh" / key[:16]), source=str(source),
        base=Ref(id=base["id"], path=str(registry.path(base["path"]))), production=production_ref(s, production),
        current_skill=Ref(id=skill["id"], path=str(registry.path(skill["path"]))), lam=pinned,
        skill_id=skill_id, skill_file=str(registry.skill_file(skill_id)), candidate=candidate,
        model_dir=str(registry.model_dir(candidate) / "model"),
        regression=Regression(id=regression["id"], count=len(regression["questions"])), eval_key=s.spec.key,
        seconds=round(time.perf_counter() - started, 3))


def _params(s: Settings, p: RefreshPlan):
    return s.params.model_copy(update={"seed": p.seed})


def _launched(s: Settings) -> bool:
    """Whether the training steps run in processes of their own (`continual.launched`), as the adapt flow's SFT."""
    return is_launched(s.params.train.launcher, s.params.train.python)


def source_sft_dir(p: RefreshPlan) -> Path:
    return Path(p.work) / "source_sft"


def skill_rl_dir(p: RefreshPlan) -> Path:
    return Path(p.work) / "skill_rl"


def source_sft(s: Settings, p: RefreshPlan) -> dict:
    """The DVC `source_sft` step: SFT of the base on the first refinement round's source subset."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps
    from past.modeling import set_threads

    set_threads(s.params.threads)
    if _launched(s):
        launch_step(_params(s, p), s.home, s.params.train, "source_sft", source_sft_dir(p), p.seed, base=p.base.path,
                    source=p.source, work=str(Path(p.work) / ".work/source_sft"))
        out = source_sft_dir(p)
    else:
        out = steps.source_sft(_params(s, p), Path(p.base.path), read_knowledge_set(p.source), source_sft_dir(p),
                               steps.training_run(_params(s, p), work=Path(p.work) / ".work/source_sft"))
    return {"dir": str(out), "seconds": round(time.perf_counter() - started, 3)}


def skill_rl(s: Settings, p: RefreshPlan) -> dict:
    """The DVC `skill_rl` step: GRPO rounds with iterative refinement."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps
    from past.modeling import set_threads

    set_threads(s.params.threads)
    if _launched(s):  # graded by EvalSpec.from_params(the refresh's params) there: s.spec, whatever the seed
        launch_step(_params(s, p), s.home, s.params.train, "skill_rl", skill_rl_dir(p), p.seed, base=p.base.path,
                    source_sft=str(source_sft_dir(p)), source=p.source, work=str(Path(p.work) / ".work/skill_rl"))
        rounds = round_reports(skill_rl_dir(p), s.params.skill_rl.rounds)
    else:
        run = steps.skill_rl(_params(s, p), Path(p.base.path), source_sft_dir(p), read_knowledge_set(p.source),
                             skill_rl_dir(p), s.spec,
                             steps.training_run(_params(s, p), work=Path(p.work) / ".work/skill_rl"))
        rounds = run.rounds
    return {"rounds": rounds, "seconds": round(time.perf_counter() - started, 3)}


def round_reports(folder: Path, rounds: int) -> list[dict]:
    """The per-round scores of a finished skill RL run in `folder`, read back from its rounds' reports (what
    `steps.skill_rl` returns as `rounds`, here for a run in processes of its own)."""
    from past.training.refinement import ROUND_REPORT, round_pair

    return [json.loads((round_pair(folder, k).rl.parent / ROUND_REPORT).read_text(encoding="utf-8"))["round"]
            for k in range(1, rounds + 1)]


def extract(s: Settings, p: RefreshPlan) -> dict:
    """The DVC `extract_skill` step: lambda chosen on the source's validation questions, then v = theta_rl -
    theta_sft into the registry's skill folder with the choice in its provenance. `lambda`: what the candidate
    is injected at (the plan's pin, else the choice)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps

    rounds = s.params.skill_rl.rounds
    choice = steps.choose_lambda(s.spec, skill_rl_dir(p), read_knowledge_set(p.source), rounds,
                                 s.params.inject.candidates)
    provenance = steps.skill_provenance(s.params.base.model, Path(p.source), rounds, choice.lam, p.seed)
    steps.extract(skill_rl_dir(p), Path(p.skill_file), provenance)
    return {"skill_file": p.skill_file, "weights_sha256": weights_sha256(p.skill_file),
            "lambda": steps.resolved_lambda(Path(p.skill_file), p.lam), "validation": choice.metrics(),
            "seconds": round(time.perf_counter() - started, 3)}


def inject_candidate(s: Settings, p: RefreshPlan, lam: float) -> dict:
    """Production's SFT weights + lambda * v_new (lambda: `extract`'s): what production would be with the new
    skill."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps

    steps.inject(Path(p.production.sft_path), Path(p.skill_file), lam, Path(p.model_dir),
                 card={"refresh": p.key[:16], "parent": p.production.id})
    return {"model_dir": p.model_dir, "weights_sha256": weights_sha256(p.model_dir),
            "seconds": round(time.perf_counter() - started, 3)}


def evaluate(s: Settings, model_dir: str) -> dict:
    return score(s, model_dir, regression_questions(s)["questions"])


def gate(candidate: dict, production: dict, min_gain: float) -> tuple[bool, list[str]]:
    c, p = candidate["exact_match"], production["exact_match"]
    if c > p + min_gain:
        return True, [f"regression set with the new skill: {c:.3f} > {p:.3f} with the current one"]
    return False, [f"regression set with the new skill: {c:.3f} does not beat {p:.3f} with the current one"]


def entries(s: Settings, p: RefreshPlan, extracted: dict, injected: dict, scores: dict,
            run: str | None) -> tuple[dict, dict]:
    """(model entry, skill entry) for a registered refresh."""
    registry = s.registry
    skill = {"id": p.skill_id, "path": str(Path(p.skill_file).relative_to(registry.root)), "lambda": extracted["lambda"],
             "base": p.base.id, "seed": p.seed, "weights_sha256": extracted["weights_sha256"],
             "replaces": p.current_skill.id,
             "metrics": {"regression_exact_match": scores["candidate"]["exact_match"]}}
    model = {"id": p.candidate, "path": str(Path(p.model_dir).relative_to(registry.root)),
             "sft": str(Path(p.production.sft_path).relative_to(registry.root)), "base": p.base.id,
             "skill": p.skill_id, "lambda": extracted["lambda"], "drop": None, "parent": p.production.id,
             "on_top": "skill-refresh", "run": run, "weights_sha256": injected["weights_sha256"],
             "metrics": {"regression_candidate_exact_match": scores["candidate"]["exact_match"],
                         "regression_production_exact_match": scores["production"]["exact_match"],
                         "regression_set": p.regression.id}}
    return model, skill


def cleanup(s: Settings, p: RefreshPlan, registered: bool) -> None:
    """The RL work is never needed again; a rejected skill and its model go too."""
    shutil.rmtree(p.work, ignore_errors=True)
    if not registered:
        shutil.rmtree(Path(p.skill_file).parent, ignore_errors=True)
        s.registry.discard(p.candidate)
