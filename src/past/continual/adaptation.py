"""Continual adaptation, step by step: the plain functions that the Prefect flows wrap as tasks.

One knowledge drop -> maybe a new production model, with no RL on the new data:

    resolve (landing.py: confined, complete, hashed) -> validate (Great Expectations) and snapshot
    -> plan (ids, lambda, where to start) -> train (target SFT on the drop: `steps.sft`, as in the DVC stage,
    on production's SFT weights, with replay of earlier knowledge) -> inject (production skill at the lambda
    chosen on validation questions, or a pinned one) -> score (the drop's questions, the fixed regression set
    and a sample of the earlier drops' questions, candidate and production) -> gate -> the registry records
    the decision (registry.py).

Incremental SFT erodes a little earlier knowledge each time, and the gate's drift budget stops that from
accumulating. With `consolidate.on_forgetting` (or every `consolidate.every` promotions), a candidate that
learned its drop but forgot beyond tolerance or drift is followed by a *consolidation*: one SFT over all the
knowledge the lineage holds plus the drop (from production's SFT weights or the base), with the production
skill injected, decided by the same gate. PaST is what makes that affordable: the skill needs no RL on the new
knowledge, so it costs SFT alone. Each SFT also replays the base's pre-training mixture
(`replay_pretraining`): documents alone wear down question answering itself (README, A stream of drops).

Every function takes a typed plan (`plans.AdaptPlan`) or JSON-able values (paths as strings) and returns
JSON-able values, so Prefect can cache results by the plan's key and a rerun after a crash skips the
steps that finished. Every artifact is written whole into place (temporary sibling + rename), so an
interrupted step leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from past.config import Params, SFTParams, load_params
from past.continual.landing import Drop, DropNotReady, Pending, inspect_drop, load_drop
from past.continual.launched import launch_sft
from past.continual.plans import AdaptPlan, DropRef, Production, Ref, Regression, Start
from past.continual.registry import Registry, RegistryError, weights_sha256
from past.evaluation.spec import EvalSpec
from past.errors import DataError
from past.files import sha256_file, sha256_json
from past.jsonl import read_jsonl
from past.knowledge.format import DOCUMENTS, QUESTIONS
from past.launcher import is_launched
from past.layout import Layout


@dataclass(frozen=True)
class Settings:
    """params.yaml with the adapt paths resolved against the folder that holds it."""

    params_path: Path
    params: Params

    @property
    def home(self) -> Path:
        return self.params_path.resolve().parent

    def resolve(self, path: str | Path) -> Path:
        path = Path(path)
        return path if path.is_absolute() else self.home / path

    @property
    def landing(self) -> Path:
        return self.resolve(self.params.adapt.landing)

    @property
    def registry(self) -> Registry:
        return Registry(self.resolve(self.params.adapt.registry))

    @property
    def regression_set(self) -> Path:
        return self.resolve(self.params.adapt.regression_set)

    @property
    def spec(self) -> EvalSpec:
        """How every score of the flows is graded: as the pipeline's evaluate stage grades."""
        return EvalSpec.from_params(self.params)


def settings(params_path: str | Path = "params.yaml") -> Settings:
    return Settings(Path(params_path), load_params(params_path))


digest = sha256_json  # ids of plans and sets: the same inputs give the same id


# ------------------------------------------------------------------------------------------ production


def ensure_production(s: Settings) -> dict:
    """The production model; on first use, the DVC pipeline's PaST model is registered as production."""
    registry = s.registry
    production = registry.production()
    if production is not None:
        return production
    pipeline = Layout(s.home)
    paths = {"model": pipeline.past, "sft": pipeline.target_sft, "base": pipeline.base, "skill": pipeline.skill}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise RegistryError(f"{registry.root}: no production model, and the pipeline outputs to register as the "
                            f"first one are missing ({', '.join(missing)}): run `dvc repro` first")
    from past import steps

    # the lambda the pipeline's PaST model was injected at: inject.lam, else the skill's validated choice
    lam = steps.resolved_lambda(pipeline.skill, s.params.inject.lam)
    registry.bootstrap(**paths, lam=lam, source=f"the DVC pipeline in {s.home}")
    return registry.production()


# ------------------------------------------------------------------------------------------ drop


def resolve_drop(s: Settings, name: str, expected_hash: str | None = None) -> dict:
    """A complete drop in the landing folder, as a dict; raises DropNotReady while it is being copied and
    LandingError if it can never be used (a name leading outside the landing folder, a symlink...)."""
    started = time.perf_counter()
    result = inspect_drop(s.landing, name, s.params.adapt.settle_seconds)
    if isinstance(result, Pending):
        raise DropNotReady(f"{s.landing / name}: not complete: {result.reason}")
    out = result.as_dict()
    out.update(announced_hash=expected_hash, seconds=round(time.perf_counter() - started, 3))
    return out


def validate_and_snapshot(s: Settings, drop: dict) -> dict:
    """Check the drop's contracts (raises DataError / ContractViolation with the report) and copy it into
    the registry, so every later step reads the very files that were validated."""
    started = time.perf_counter()
    ks = load_drop(Drop(drop["name"], Path(drop["path"]), drop["hash"], drop["files"], drop["marker"],
                        drop["unsafe"]), s.params.adapt.max_document_chars, s.params.adapt.max_drop_mb)
    snapshot = s.registry.archive_drop(drop["hash"], drop["path"], sorted(drop["files"]))
    copied = {name: sha256_file(snapshot / name) for name in drop["files"]}
    if copied != drop["files"]:  # the files changed between validation and the copy: train on nothing unseen
        shutil.rmtree(snapshot, ignore_errors=True)
        raise DataError(f"{drop['path']}: files changed while the drop was being validated; drop it again")
    return {"snapshot": str(snapshot), "documents": len(ks.documents), "questions": len(ks.questions),
            "seconds": round(time.perf_counter() - started, 3)}


def failure_report(err: Exception) -> dict:
    """A contract or data error as a JSON report naming the file, the expectation and the rows."""
    from past.contracts import ContractViolation

    if isinstance(err, ContractViolation):
        return {"file": err.file, "failures": [f.as_dict() for f in err.failures], "message": str(err)}
    return {"message": str(err)}


# ------------------------------------------------------------------------------------------ plan


INCREMENTAL, CONSOLIDATION = "incremental", "consolidation"


def plan(s: Settings, drop: dict, snapshot: dict, lam: float | None = None, kind: str | None = None) -> AdaptPlan:
    """Everything that decides the candidate, and its id: the same inputs give the same candidate. `kind`:
    incremental (SFT on the drop + replay) or consolidation (SFT on all knowledge); None: consolidation when
    `consolidate.every` promotions have passed since the lineage's last one, else incremental."""
    started = time.perf_counter()
    registry, a = s.registry, s.params.adapt
    production = registry.verify(ensure_production(s)["id"])  # before any work: weights and skill as recorded
    skill = registry.skill()
    kind = kind or (CONSOLIDATION if consolidation_due(s, production["id"]) else INCREMENTAL)
    if kind not in (INCREMENTAL, CONSOLIDATION):
        raise ValueError(f"kind: {kind!r}, expected {INCREMENTAL} or {CONSOLIDATION}")
    on_top = a.on_top if kind == INCREMENTAL else {"base": "base", "production": "target"}[a.consolidate.start]
    if on_top == "target":
        start = Start(kind="target", id=production["id"], path=str(registry.path(production["sft"])))
    else:
        start = Start(kind="base", id=production["base"], path=str(registry.path(registry.base()["path"])))
    lam = lam if lam is not None else a.lam if a.lam is not None else None if a.lambdas else skill["lambda"]
    if lam is not None and not math.isfinite(lam):
        raise ValueError(f"lam: must be a finite number, got {lam!r}")
    lambdas = [] if lam is not None else list(a.lambdas)
    if lambdas and not validation_questions(s):
        raise DataError(f"{s.regression_set / QUESTIONS}: no questions in adapt.validation_splits {a.validation_splits} "
                        f"to choose lambda on; pin adapt.lam or set adapt.lambdas: []")
    pretraining_folder(s)  # a missing pre-training set fails here, before any training
    regression, earlier = regression_questions(s), earlier_questions(s, production["id"])
    inputs = {
        "drop": drop["hash"], "production": production["id"], "start": start.id, "on_top": on_top,
        "skill": skill["id"], **({"lambda": float(lam)} if lam is not None else {"lambdas": lambdas}),
        "seed": s.params.seed, "replay_pool": replay_pool_id(s, production),
        **({"sft": a.sft.model_dump(), "replay": a.replay} if kind == INCREMENTAL
           else {"kind": kind, "consolidate": a.consolidate.model_dump()}),
    }
    key = digest(inputs)
    candidate = "m-" + key[:12]
    return AdaptPlan(
        key=key, candidate=candidate, kind=kind, inputs=inputs, drop=DropRef(name=drop["name"], hash=drop["hash"]),
        snapshot=snapshot["snapshot"], production=production_ref(s, production), start=start,
        skill=Ref(id=skill["id"], path=str(registry.path(skill["path"]))),
        lam=float(lam) if lam is not None else None, lambdas=lambdas,
        sft_dir=str(registry.model_dir(candidate) / "sft"), model_dir=str(registry.model_dir(candidate) / "model"),
        regression=Regression(id=regression["id"], count=len(regression["questions"]),
                              baseline=regression_baseline(registry, production["id"], regression["id"])),
        earlier=Regression(id=earlier["id"], count=len(earlier["questions"]), baseline=earlier["baseline"])
        if earlier["questions"] else None,
        new_questions=snapshot["questions"], eval_key=s.spec.key, seconds=round(time.perf_counter() - started, 3))


def consolidation_due(s: Settings, production_id: str) -> bool:
    """Whether `consolidate.every` drops were promoted incrementally since the lineage's last consolidation."""
    every = s.params.adapt.consolidate.every
    if not every:
        return False
    since = 0
    for entry in s.registry.lineage(production_id):  # newest first
        if entry.get("kind") == CONSOLIDATION or not entry.get("drop"):
            break
        since += 1
    return since >= every


def production_ref(s: Settings, production: dict) -> Production:
    registry = s.registry
    return Production(id=production["id"], path=str(registry.path(production["path"])),
                      sft_path=str(registry.path(production["sft"])), lam=production["lambda"],
                      skill=production["skill"])


# ------------------------------------------------------------------------------------------ train + inject


def replay_pool_id(s: Settings, production: dict) -> str:
    """Identity of the replay pool: the regression set's content, the drops in production's lineage and the
    pre-training set's share and content."""
    a = s.params.adapt
    drops = [m["drop"]["hash"] for m in s.registry.lineage(production["id"]) if m.get("drop")]
    pretraining = ({"share": a.replay_pretraining, "set": _set_hash(s.resolve(a.pretraining_set))}
                   if _uses_pretraining(s) else None)
    return digest({"regression": _set_hash(s.regression_set), "drops": drops,
                   **({"pretraining": pretraining} if pretraining else {})})


def _uses_pretraining(s: Settings) -> bool:
    return bool(s.params.adapt.pretraining_set and s.params.adapt.replay_pretraining)


def pretraining_folder(s: Settings) -> Path | None:
    """`adapt.pretraining_set` when replay uses it (else None); a set without documents is a DataError."""
    if not _uses_pretraining(s):
        return None
    folder = s.resolve(s.params.adapt.pretraining_set)
    if not (folder / DOCUMENTS).exists():
        raise DataError(f"{folder / DOCUMENTS}: adapt.pretraining_set has no documents; point it at the knowledge "
                        f"set the base was pre-trained on, or set adapt.replay_pretraining: 0")
    return folder


def pretraining_texts(s: Settings) -> list[str]:
    """The base's pre-training mixture (`adapt.pretraining_set`: documents + worked QA pairs, mixed as the base
    stage mixes them), replayed beside earlier knowledge: SFT on documents alone erodes the base's ability to
    answer questions drop by drop, and no earlier drop's documents hold that ability. [] when not used."""
    folder = pretraining_folder(s)
    if folder is None:
        return []
    from past.knowledge.format import read_knowledge_set
    from past.training.pretrain import pretraining_mixture

    return pretraining_mixture(read_knowledge_set(folder), s.params.prompt, s.params.base.qa_fraction, s.params.seed)


def lineage_drops(s: Settings, production_id: str) -> list[Path]:
    """The snapshots of the drops production's lineage learned, oldest first."""
    return [s.registry.drop_dir(entry["drop"]["hash"]) for entry in reversed(s.registry.lineage(production_id))
            if entry.get("drop")]


def known_documents(s: Settings, production_id: str) -> list[str]:
    """Every document production's knowledge came from: the regression set's and its lineage's drops'."""
    pool = [d["text"] for d in read_jsonl(s.regression_set / DOCUMENTS)]
    for folder in lineage_drops(s, production_id):
        pool += [d["text"] for d in read_jsonl(folder / DOCUMENTS)]
    return pool


def replay_texts(s: Settings, production_id: str, count: int, seed: int) -> list[str]:
    """`count` texts, seeded: documents of earlier knowledge (regression set + drops already in production)
    and, `adapt.replay_pretraining` of them, the base's pre-training mixture."""
    if count <= 0:
        return []
    mixture = pretraining_texts(s)
    from_mixture = round(count * s.params.adapt.replay_pretraining) if mixture else 0
    pool, count = known_documents(s, production_id), count - from_mixture
    rng = random.Random(seed)
    texts = rng.sample(pool, count) if count <= len(pool) else [pool[i % len(pool)] for i in range(count)]
    return texts + _sample(rng, mixture, from_mixture)


def _sample(rng: random.Random, texts: list[str], count: int) -> list[str]:
    return rng.sample(texts, count) if count <= len(texts) else [rng.choice(texts) for _ in range(count)]


def consolidation_texts(s: Settings, p: AdaptPlan) -> tuple[list[str], SFTParams]:
    """All knowledge (production's and the drop's), capped at `consolidate.max_texts` by a seeded sample,
    and the SFT that makes `consolidate.epochs` passes over it."""
    c = s.params.adapt.consolidate
    documents = known_documents(s, p.production.id) + [d["text"] for d in read_jsonl(Path(p.snapshot) / DOCUMENTS)]
    rng = random.Random(s.params.seed)
    if c.max_texts and len(documents) > c.max_texts:
        documents = rng.sample(documents, c.max_texts)
    share = s.params.adapt.replay_pretraining
    mixture = pretraining_texts(s)
    if mixture:  # the same share of the base's pre-training mixture as every incremental SFT replays
        documents += _sample(rng, mixture, round(len(documents) * share / (1 - share)) if share < 1 else len(documents))
    steps = max(1, math.ceil(c.epochs * len(documents) / c.batch_size))
    return documents, SFTParams(steps=steps, lr=c.lr, batch_size=c.batch_size, warmup_ratio=c.warmup_ratio)


def train(s: Settings, p: AdaptPlan) -> dict:
    """Target SFT (`steps.sft`, as in the DVC stage) on the drop's documents + replay, from production's
    SFT weights or the base, saved atomically to the candidate's sft/ folder; under `train.launcher` or in
    another Python (`train.python`), in processes of its own (`continual.launched`)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps
    from past.modeling import set_threads

    set_threads(s.params.threads)
    a = s.params.adapt
    if p.kind == CONSOLIDATION:
        documents, sft = consolidation_texts(s, p)
        replayed = 0
    else:
        documents, sft = [d["text"] for d in read_jsonl(Path(p.snapshot) / DOCUMENTS)], a.sft
        replayed = round(len(documents) * a.replay / (1 - a.replay)) if a.replay else 0
        documents += replay_texts(s, p.production.id, replayed, s.params.seed)
    steps.check_memory(s.params, Path(p.start.path), "adapt_sft", documents, root=s.home)
    work = s.registry.root / "work" / f"{p.candidate}-sft"  # its checkpoints; removed once sft/ is saved
    dtype = steps.served_dtype(s.params, Path(p.start.path))
    train = s.params.train
    if is_launched(train.launcher, train.python):  # its own processes: every GPU of this worker, the training env
        launch_sft(s.params_path, s.home, train, Path(p.start.path), documents, sft, s.params.seed, Path(p.sft_dir), work,
                   str(dtype).removeprefix("torch."))
    else:
        steps.sft(Path(p.start.path), documents, sft, s.params.seed, Path(p.sft_dir),
                  steps.training_run(s.params, work=work), dtype)
    return {"sft_dir": p.sft_dir, "texts": len(documents), "replayed": replayed, "steps": sft.steps,
            "seconds": round(time.perf_counter() - started, 3)}


def inject_skill(s: Settings, p: AdaptPlan) -> dict:
    """theta = theta_sft(candidate) + lambda * v(production skill), streamed into the candidate's model/; lambda
    pinned by the plan, or chosen among `p.lambdas` on the regression set's validation questions (the gate never
    asks them): the best exact match, ties to the smallest |lambda|. How much skill a candidate needs depends on
    its SFT weights, not only on the skill (a registered lambda was chosen for the pipeline's target SFT)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps

    card = {"drop": p.drop.name, "drop_hash": p.drop.hash, "parent": p.production.id, "candidate": p.candidate,
            "kind": p.kind}
    lam, choice = p.lam, None
    if lam is None:
        questions, choice = validation_questions(s), {}
        work = s.registry.root / "work"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work, prefix=f"{p.candidate}-lambda-") as tmp:
            for candidate in p.lambdas:
                out = steps.inject(Path(p.sft_dir), Path(p.skill.path), candidate, Path(tmp) / f"{candidate:g}")
                choice[f"{candidate:g}"] = round(steps.score(s.spec, str(out), questions,
                                                             desc=f"lambda {candidate:g}")["exact_match"], 4)
                shutil.rmtree(out)
        lam = max(p.lambdas, key=lambda c: (choice[f"{c:g}"], -abs(c)))
    steps.inject(Path(p.sft_dir), Path(p.skill.path), lam, Path(p.model_dir), card={**card, "lambda": lam})
    return {"model_dir": p.model_dir, "weights_sha256": weights_sha256(p.model_dir), "lambda": lam,
            **({"lambda_choice": {"splits": s.params.adapt.validation_splits, "questions": len(questions),
                                  "exact_match": choice}} if choice is not None else {}),
            "seconds": round(time.perf_counter() - started, 3)}


# ------------------------------------------------------------------------------------------ evaluate


def regression_questions(s: Settings) -> dict:
    """The fixed regression set: a seeded sample of earlier questions, with an id for caching."""
    a = s.params.adapt
    questions = _split_sample(s, a.regression_splits)
    if not questions:
        raise RegistryError(f"{s.regression_set / QUESTIONS}: no questions in splits {a.regression_splits}")
    return {"id": digest([[q["id"], q["question"], q["answers"]] for q in questions])[:16], "questions": questions}


def validation_questions(s: Settings) -> list[dict]:
    """The regression set's `validation_splits` questions lambda is chosen on, sampled like the regression
    set: about the same earlier knowledge, never asked by the gate."""
    return _split_sample(s, s.params.adapt.validation_splits)


def _split_sample(s: Settings, splits: list[str]) -> list[dict]:
    """The regression set's questions in `splits`, a seeded sample of at most `adapt.regression_questions`."""
    cap = s.params.adapt.regression_questions
    questions = [q for q in read_jsonl(s.regression_set / QUESTIONS) if q.get("split") in splits]
    if cap and len(questions) > cap:
        questions = random.Random(s.params.seed).sample(questions, cap)
    return questions


def earlier_questions(s: Settings, production_id: str) -> dict:
    """The questions of the drops production's lineage learned (their `regression_splits`), a seeded sample
    of `earlier_questions` of them: what the gate protects grows with the lineage, its cost does not. With
    the baseline `drift` is measured from: each drop's score when it was learned (its promotion's), weighted
    by its share of the sample, so a drop forgotten by small steps is caught like the regression set."""
    a = s.params.adapt
    learned = {entry["drop"]["hash"]: entry.get("metrics", {}).get("new_candidate_exact_match")
               for entry in s.registry.lineage(production_id) if entry.get("drop")}  # newest first
    questions = []
    for drop_hash in reversed(learned):  # oldest first: a stable order, so the seeded sample is too
        path = s.registry.drop_dir(drop_hash) / QUESTIONS
        if path.exists():
            questions += [{**q, "_drop": drop_hash} for q in read_jsonl(path)
                          if q.get("split", "eval") in a.regression_splits]
    if len(questions) > a.earlier_questions:
        questions = random.Random(s.params.seed).sample(questions, a.earlier_questions)
    scores = [learned[q.pop("_drop")] for q in questions]
    baseline = ({"model": "each drop when learned", "exact_match": round(sum(scores) / len(scores), 4)}
                if questions and None not in scores else None)
    return {"id": digest([[q["id"], q["question"], q["answers"]] for q in questions])[:16], "questions": questions,
            "baseline": baseline}


SETS = ("new", "regression", "earlier")  # what a candidate is scored on: the drop's questions, the original
# regression set, the earlier drops' questions


def questions_for(s: Settings, which: str, p: AdaptPlan) -> list[dict]:
    if which == "regression":
        return regression_questions(s)["questions"]
    if which == "earlier":
        return earlier_questions(s, p.production.id)["questions"]
    path = Path(p.snapshot) / QUESTIONS
    return read_jsonl(path) if path.exists() else []


def score_key(model_id: str, questions_id: str, eval_key: str) -> str:
    """Cache key of one score: the model, the question set and everything else a score depends on."""
    return f"evaluate-{model_id}-{questions_id}-{eval_key}"


def score(s: Settings, model_dir: str, questions: list[dict]) -> dict:
    """Closed-book scores of a saved model on `questions`, graded as the pipeline grades (`Settings.spec`)."""
    started = time.perf_counter()  # imports included: they are the step's cost too
    from past import steps
    from past.modeling import set_threads

    set_threads(s.params.threads)
    scores = steps.score(s.spec, model_dir, questions, desc=f"scoring {Path(model_dir).parent.name}")
    return {**{k: round(v, 4) for k, v in scores.items() if k != "questions"}, "questions": len(questions),
            "seconds": round(time.perf_counter() - started, 3)}


# ------------------------------------------------------------------------------------------ gate


def regression_baseline(registry: Registry, production_id: str, regression_id: str) -> dict | None:
    """The regression score of the oldest ancestor of production measured on this regression set (the
    reference for `drift`), from the metrics its first evaluated descendant recorded at promotion."""
    for entry in reversed(registry.lineage(production_id)):  # oldest first
        metrics = entry.get("metrics", {})
        if metrics.get("regression_set") == regression_id and "regression_production_exact_match" in metrics:
            return {"model": entry.get("parent"), "exact_match": metrics["regression_production_exact_match"]}
    return None


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: promote or not, why, and whether the drop itself was learned (a candidate that
    learned it and only forgot earlier knowledge is what a consolidation can fix)."""

    promote: bool
    learned: bool
    reasons: list[str]

    @property
    def forgot(self) -> bool:
        return self.learned and not self.promote


def gate(scores: dict, tolerance: float, min_gain: float, drift: float = 1.0,
         baseline: dict | None = None, earlier_baseline: dict | None = None) -> Verdict:
    """Promote only if the candidate answers the drop's questions better than production, loses no more
    than `tolerance` exact match against production on the regression set and on the earlier drops'
    questions (when scored), and no more than `drift` against their baselines: the lineage's first measured
    model on the regression set, each drop's score when it was learned on the earlier drops'."""
    new_c, new_p = scores["new"]["candidate"]["exact_match"], scores["new"]["production"]["exact_match"]
    reasons, kept = [], True
    learned = new_c > new_p + min_gain
    if learned:
        reasons.append(f"new questions: candidate {new_c:.3f} > production {new_p:.3f}"
                       + (f" + min_gain {min_gain:g}" if min_gain else ""))
    else:
        reasons.append(f"new questions: candidate {new_c:.3f} does not beat production {new_p:.3f}"
                       + (f" by more than {min_gain:g}" if min_gain else ""))
    for which, name in (("regression", "regression set"), ("earlier", "earlier drops")):
        if not scores.get(which):
            continue
        after, before = scores[which]["candidate"]["exact_match"], scores[which]["production"]["exact_match"]
        loss = round(before - after, 4)
        within = loss <= tolerance + 1e-9
        kept &= within
        reasons.append(f"{name}: {before:.3f} -> {after:.3f} (loss {max(loss, 0) if within else loss:.3f} "
                       f"{'<=' if within else '>'} tolerance {tolerance:g})")
    references = (("regression", "regression", baseline), ("earlier", "earlier drops", earlier_baseline))
    for which, name, reference in references:
        if reference is None or not scores.get(which):
            continue
        after = scores[which]["candidate"]["exact_match"]
        total = round(reference["exact_match"] - after, 4)
        if total > drift + 1e-9:
            kept = False
            reasons.append(f"{name} drift since {reference['model']}: {reference['exact_match']:.3f} -> {after:.3f} "
                           f"(total loss {total:.3f} > drift {drift:g})")
    return Verdict(promote=learned and kept, learned=learned, reasons=reasons)


def model_entry(s: Settings, p: AdaptPlan, injected: dict, scores: dict, run: str | None) -> dict:
    """The registry entry a promoted candidate gets."""
    registry = s.registry
    return {
        "id": p.candidate, "path": str(Path(p.model_dir).relative_to(registry.root)),
        "sft": str(Path(p.sft_dir).relative_to(registry.root)),
        "base": registry.production()["base"] if registry.production() else None,
        "skill": p.skill.id, "lambda": injected["lambda"], "drop": p.drop.model_dump(), "parent": p.production.id,
        "on_top": p.start.kind, "kind": p.kind, "run": run, "weights_sha256": injected["weights_sha256"],
        "metrics": metrics_summary(scores, p.regression.id),
    }


def metrics_summary(scores: dict, regression_id: str | None = None) -> dict:
    out = {f"{which}_{model}_exact_match": scores[which][model]["exact_match"]
           for which in SETS if scores.get(which) for model in ("candidate", "production") if model in scores[which]}
    if regression_id:
        out["regression_set"] = regression_id
    return out


def _set_hash(folder: Path) -> str:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return digest(manifest["files"])
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return digest({n: sha256_file(folder / n)
                       for n in (DOCUMENTS, QUESTIONS) if (folder / n).exists()})


__all__ = ["Settings", "settings", "ensure_production", "resolve_drop", "validate_and_snapshot", "failure_report",
           "plan", "consolidation_due", "train", "inject_skill", "score", "questions_for", "gate", "Verdict",
           "model_entry", "metrics_summary", "regression_questions", "earlier_questions", "replay_texts",
           "known_documents", "consolidation_texts", "pretraining_texts", "validation_questions", "INCREMENTAL", "CONSOLIDATION", "SETS"]
