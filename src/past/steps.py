"""The PaST steps, each written once: the DVC stages, the Prefect flows and the tests all call these.

    prepare -> base -> source_sft -> skill_rl (iterative refinement) -> extract (+ lambda chosen) -> inject -> evaluate
                   \\-> target_sft ---------------------------------------------------------/   \\-> oracle

Every step takes typed inputs (params groups, folders, knowledge sets) and returns typed outputs; each
writes its artifact whole into place (temporary sibling + rename), so a failed step never replaces a
good artifact. Nothing here knows whether DVC or Prefect called it: the callers choose the folders.

A training step given a `TrainingRun` with a work folder (`training_run(params, work=...)`) keeps what a
rerun can resume there: trainer checkpoints (`train.checkpoint_steps`) and skill RL's finished rounds. The
folder is keyed by the step's inputs (`training.checkpoints.open_work`) and removed once the output is
published.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from past.config import LoraParams, Params, SFTParams
from past.distributed import barrier, is_main, on_main, world_size
from past.errors import DataError
from past.evaluation.spec import EvalSpec
from past.files import atomic_dir, publish_folder, sha256_json
from past.knowledge.format import KnowledgeSet, content_hash, read_knowledge_set, split_by_title, write_knowledge_set

if TYPE_CHECKING:  # imported where used: prepare and inject run without torch (seconds of every fresh repro)
    from past.training.arguments import TrainingRun
    from past.training.refinement import RoundPair

VOCABULARY = "vocabulary.json"
LIKELIHOOD = "answer_loglik"  # the lambda choice's tie-break: the gold answers' mean log-likelihood


def texts(ks: KnowledgeSet) -> list[str]:
    """What SFT learns from: the documents' text."""
    return [d["text"] for d in ks.documents]


def training_run(params: Params, work: Path | None = None, live: Path | None = None) -> TrainingRun:
    """How a training step of these params runs (`train:`, `lora:`), its checkpoint and tracking folders."""
    from past.training.arguments import TrainingRun

    return TrainingRun(params.train, params.lora, Path(work) if work is not None else None, live)


def _open_work(run: TrainingRun, step: str, folders: dict, **inputs) -> None:
    """Key the run's work folder by what the step depends on: the params given, the run's knobs and the input
    folders' fingerprints. Work left there by other inputs is wiped."""
    from past.training.checkpoints import fingerprint, open_work, run_inputs

    open_work(run.work, {"step": step, **inputs, **run_inputs(run),
                         "folders": {name: fingerprint(folder) for name, folder in folders.items()}})


def served_dtype(params: Params, base_dir: Path):
    """The dtype of the model folders a user serves (`train.save_dtype`; auto: the base's own)."""
    from past.modeling import save_dtype

    return save_dtype(params.train.save_dtype, base_dir)


# ------------------------------------------------------------------------------------------ knowledge


def prepare(params: Params, out: Path) -> dict[str, KnowledgeSet]:
    """The knowledge sets of `prepare.source` (p0, source, target), each checked against its contract,
    and the vocabulary a tiny tokenizer needs, written to `out` as one folder."""
    from past.knowledge.sources import SPLITS, knowledge_sets

    sets, vocabulary = knowledge_sets(params)
    with atomic_dir(out) as tmp:
        for name, knowledge in sets.items():
            write_knowledge_set(tmp / name, knowledge, splits=SPLITS[name])
            print(f"prepare: {name}: {len(knowledge.documents)} documents, {len(knowledge.questions)} questions")
        (tmp / VOCABULARY).write_text(json.dumps(vocabulary) + "\n", encoding="utf-8")
    return sets


# ------------------------------------------------------------------------------------------ models


def base(params: Params, world: Path, out: Path, run: TrainingRun | None = None) -> Path:
    """The base model: the embedded tiny Llama pre-trained on P0 (full training: `lora:` does not apply), a
    packaged GGUF LLM, or a hub model."""
    from past.modeling import save_model
    from past.training.arguments import checkpointing
    from past.training.checkpoints import close_work
    from past.training.pretrain import pretrain_tiny_base
    from past.training.tracking import record_no_training

    run = replace(run or training_run(params), lora=LoraParams())  # pre-training trains every weight
    if params.base.model != "tiny":  # nothing to train: the main process alone converts or fetches it
        on_main(_save_published_base, params.base.model, out)
        if run.live is not None:
            on_main(record_no_training, run.live)
        return Path(out)
    if checkpointing(run):
        on_main(_open_work, run, "base", {"world": Path(world) / "p0", "vocabulary": Path(world) / VOCABULARY},
                base=params.base.model_dump(), prompt=params.prompt, seed=params.seed)
    vocabulary = json.loads((Path(world) / VOCABULARY).read_text(encoding="utf-8"))
    model, tokenizer = pretrain_tiny_base(params, read_knowledge_set(Path(world) / "p0"), vocabulary, run)
    on_main(save_model, model, tokenizer, out)  # made in fp32 here
    on_main(close_work, run)
    return Path(out)


def _save_published_base(model_id: str, out: Path) -> None:
    """A packaged GGUF LLM converted once (fp32), or a hub model in the dtype it is published in."""
    from past.modeling import save_model
    from past.modeling_gguf import is_package_model, load_packaged_model
    from past.training.pretrain import load_pretrained_base

    if is_package_model(model_id):
        model, tokenizer = load_packaged_model(model_id)
        save_model(model, tokenizer, out)
    else:
        model, tokenizer, dtype = load_pretrained_base(model_id)
        save_model(model, tokenizer, out, dtype=dtype)


def sft(start: Path, documents: list[str], params: SFTParams, seed: int, out: Path, run: TrainingRun | None = None,
        dtype=None) -> Path:
    """SFT of the model in `start` on `documents`, saved to `out` (in `dtype`, default fp32): how knowledge
    goes into the weights. The target SFT of the pipeline and of every adapted drop is this step. With a work
    folder and checkpoints it resumes a run of the same inputs (start folder, documents, params, seed)."""
    from past.training.arguments import TrainingRun, checkpointing
    from past.training.checkpoints import close_work
    from past.training.sft import finetune_folder

    run = run or TrainingRun()
    if checkpointing(run):
        on_main(_open_work, run, "sft", {"start": Path(start)}, documents=sha256_json(documents),
                sft=params.model_dump(), seed=seed)
    finetune_folder(start, documents, params, seed, out, run, save_dtype=dtype)
    on_main(close_work, run)
    return Path(out)


def check_memory(params: Params, model: Path, step: str, documents: list[str] | None = None,
                 root: Path = Path(".")) -> None:
    """Refuse a step that will not fit the accelerator (or `train.memory_limit_gib`) before anything loads:
    the planner's estimate from the model's safetensors headers and the knobs, naming the knob to change.
    `root`: the project's home, where train.launcher's relative paths point (a stage and a launched step run there)."""
    from past.planner import check_step, longest_tokens

    words = 1.0 if params.base.model == "tiny" else 1.3  # the tiny tokenizer is word-level
    check_step(params, model, step, sft_tokens=longest_tokens(documents, words) if documents else None, root=root)


def check_rl(params: Params, model: Path, step: str, key: str) -> None:
    """Refuse an RL step before anything loads: sampling it cannot do here (`<key>.mode`), or memory it lacks."""
    from past.training.arguments import device
    from past.training.grpo import check_sampling

    check_sampling(params.skill_rl.grpo.vllm if step == "skill_rl" else params.oracle.grpo.vllm, device(), key)
    check_memory(params, model, step)


def target_sft(params: Params, base_dir: Path, target: KnowledgeSet, out: Path, run: TrainingRun | None = None) -> Path:
    """SFT of the base on the target's documents only, stored in the served dtype."""
    check_memory(params, base_dir, "target_sft", texts(target))
    return sft(base_dir, texts(target), params.target_sft, params.seed, out, run or training_run(params),
               served_dtype(params, base_dir))


def source_sft(params: Params, base_dir: Path, source: KnowledgeSet, out: Path, run: TrainingRun | None = None) -> Path:
    """SFT of the base on the source documents (the first refinement round's subset), stored in the served
    dtype: RL starts from the stored values, so the RL pair stays exact."""
    first_round = split_by_title(source, params.skill_rl.rounds)[0]
    check_memory(params, base_dir, "source_sft", texts(first_round))
    return sft(base_dir, texts(first_round), params.source_sft, params.seed, out, run or training_run(params),
               served_dtype(params, base_dir))


@dataclass(frozen=True)
class SkillRun:
    """A finished skill RL run: its folder, the pair whose difference is the skill, and what it learned."""

    folder: Path
    last: RoundPair
    rounds: list[dict] = field(default_factory=list)  # per round: source scores before and after RL
    reward_curve: list[dict] = field(default_factory=list)  # [{"round", "step", "reward"}]


def skill_rl(params: Params, base_dir: Path, source_sft_dir: Path, source: KnowledgeSet, out: Path,
             spec: EvalSpec | None = None, run: TrainingRun | None = None) -> SkillRun:
    """GRPO on the source questions with iterative refinement (`skill_rl.rounds`), into `out` whole.

    With a work folder the rounds are built in it (`run/`, trainer checkpoints in `checkpoints/`): a rerun of the
    same inputs keeps the finished rounds and resumes the unfinished one; the finished run is renamed to `out`.
    Without one they are built in a temporary sibling of `out`, gone on any error."""
    from past.training.checkpoints import close_work
    from past.training.refinement import acquire_skill, last_round

    check_rl(params, source_sft_dir, "skill_rl", "skill_rl.grpo.vllm")
    spec = spec or EvalSpec.from_params(params)
    run = run or training_run(params)
    if run.work is None and world_size() > 1:  # the processes need one build folder they all know
        run = replace(run, work=Path(out).with_name(f".{Path(out).name}.work"))
    if run.work is None:
        with atomic_dir(out) as tmp:
            report = acquire_skill(params, Path(base_dir), Path(source_sft_dir), source, tmp, spec, run,
                                   final=Path(out))
    else:
        on_main(_open_work, run, "skill_rl", {"base": Path(base_dir), "source_sft": Path(source_sft_dir)},
                source=sha256_json([source.documents, source.questions, source.tools]), seed=params.seed,
                prompt=params.prompt, chat=params.chat, source_sft=params.source_sft.model_dump(),
                skill_rl=params.skill_rl.model_dump(), spec=spec.key)
        build = Path(run.work) / "run"
        report = acquire_skill(params, Path(base_dir), Path(source_sft_dir), source, build, spec,
                               replace(run, work=Path(run.work) / "checkpoints"), final=Path(out))
        on_main(publish_folder, build, out)
        on_main(close_work, run)
    return SkillRun(Path(out), last_round(out), report["rounds"], report["reward_curve"])


def oracle(params: Params, target_sft_dir: Path, target: KnowledgeSet, out: Path, run: TrainingRun | None = None) -> Path:
    """GRPO on the target's oracle questions from target SFT: the RL that PaST saves (stored like target SFT)."""
    from past.modeling import load_model, load_tokenizer, save_model, stored_dtype
    from past.training.arguments import checkpointing
    from past.training.checkpoints import close_work
    from past.training.grpo import run_grpo

    run = run or training_run(params)
    check_rl(params, target_sft_dir, "oracle", "oracle.grpo.vllm")
    questions = target.questions_in("oracle")
    if checkpointing(run):
        on_main(_open_work, run, "oracle", {"target_sft": Path(target_sft_dir)}, seed=params.seed,
                prompt=params.prompt, chat=params.chat, oracle=params.oracle.model_dump(),
                questions=sha256_json([questions, target.tools]))
    model, tokenizer = load_model(target_sft_dir), load_tokenizer(target_sft_dir)
    model, _ = run_grpo(model, tokenizer, questions, params.prompt, params.oracle.grpo,
                        params.seed, chat=params.chat, tools=target.tools, run=run, key="oracle.grpo")
    if is_main():
        if run.uses_lora:
            model = model.merge_and_unload()  # the oracle is a model to evaluate, not a skill
        save_model(model, tokenizer, out, dtype=stored_dtype(target_sft_dir))
    barrier()
    on_main(close_work, run)
    return Path(out)


# ------------------------------------------------------------------------------------------ skill


def skill_provenance(base_model: str, source_set: Path, rounds: int, lam: float, seed: int) -> dict:
    """What a skill file records about its making, beyond what extraction adds (architecture, inputs):
    one set of keys for the pipeline and the flows."""
    return {"base_model": base_model, "source_data_hash": content_hash(source_set), "rounds": rounds,
            "recommended_lam": lam, "seed": seed}


def extract(run: SkillRun | Path, out: Path, provenance: dict) -> Path:
    """v = theta_rl - theta_sft of the run's last round, streamed into one skill file with provenance."""
    from past.skills import extract_skill
    from past.training.refinement import last_round, round_start

    pair = run.last if isinstance(run, SkillRun) else last_round(run)
    return Path(extract_skill(pair.rl, pair.sft, out, metadata=provenance, overwrite=True, rl_base=round_start(pair)))


def validation_questions(source: KnowledgeSet, rounds: int) -> list[dict]:
    """The source questions lambda is chosen on: split `validation` of the last refinement round's subset, the
    one whose documents sft_K learned and whose questions no RL round trained on."""
    questions = split_by_title(source, rounds)[-1].questions_in("validation")
    if not questions:
        raise DataError(f"{source.name}: no `validation` questions in the last of {rounds} refinement round(s): "
                        f"lambda is chosen on them (prepare.validation_fraction above 0 makes them; rerun prepare)")
    return questions


@dataclass(frozen=True)
class LambdaChoice:
    """The lambda chosen on the source's validation questions, and every candidate's scores there."""

    lam: float
    metric: str
    questions: int
    scores: list[dict]  # [{"lambda", metric: value..., "answer_loglik"}], by lambda
    tied: int = 1  # candidates at the best metric, which the likelihood decided between

    @property
    def score(self) -> float:
        """The chosen lambda's validation score."""
        return next(row[self.metric] for row in self.scores if row["lambda"] == self.lam)

    def metrics(self) -> dict:
        return {"lambda": self.lam, "metric": self.metric, "questions": self.questions,
                "score": round(self.score, 4), "tied": self.tied,
                "validation": {f"{row['lambda']:g}": round(row[self.metric], 4) for row in self.scores},
                "answer_loglik": {f"{row['lambda']:g}": round(row[LIKELIHOOD], 4) for row in self.scores}}

    def rows(self) -> list[dict]:
        return [{key: round(value, 4) for key, value in row.items() if key != "questions"} for row in self.scores]


def choose_lambda(spec: EvalSpec, run: SkillRun | Path, source: KnowledgeSet, rounds: int,
                  candidates: list[float]) -> LambdaChoice:
    """Score sft_K + lambda v (the run's last round) on the source's validation questions for every candidate;
    the best by `spec.metric` wins. A tie (a few dozen questions saturate: several lambdas at 1.0) goes to the
    highest mean log-likelihood of the gold answers, a continuous score that still tells them apart, and only
    an exact tie of both to the smallest |lambda| (the least change to the SFT weights the skill is added to).

    Only the source set comes in: the target's evaluation questions stay a report, not what lambda is fit on."""
    from past.modeling import load_model, load_tokenizer
    from past.training.refinement import last_round, skill_vector

    pair = run.last if isinstance(run, SkillRun) else last_round(run)
    questions = validation_questions(source, rounds)
    scores = _sweep(spec, skill_vector(pair), load_model(pair.sft), load_tokenizer(pair.sft), candidates, questions,
                    source.tools, spec.judge(), "validation lambda", likelihood=True)
    best = max(row[spec.metric] for row in scores)
    tied = [row for row in scores if row[spec.metric] >= best - 1e-9]
    chosen = min(tied, key=lambda row: (-row[LIKELIHOOD], abs(row["lambda"]), row["lambda"]))
    return LambdaChoice(float(chosen["lambda"]), spec.metric, len(questions), scores, tied=len(tied))


def resolved_lambda(skill: Path, pinned: float | None) -> float:
    """The lambda a skill is injected at: `pinned` (inject.lam, adapt.lam) when set, else the one chosen on
    validation questions and recorded in the skill's provenance (`recommended_lam`)."""
    if pinned is not None:
        return float(pinned)
    from past.skills import SkillError
    from past.skills.checkpoints import open_delta
    from past.skills.provenance import decode_metadata

    source = open_delta(skill)
    try:
        lam = decode_metadata(source.metadata).get("recommended_lam")
    finally:
        source.close()
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam):
        raise SkillError(f"{skill}: its provenance has no recommended_lam (a number), got {lam!r}: rerun "
                         f"extract_skill, which chooses it, or pin inject.lam")
    return float(lam)


def inject(target_sft_dir: Path, skill: Path, lam: float, out: Path, card: dict | None = None) -> Path:
    """theta_final = theta_sft_T + lambda * v, a normal Hugging Face folder with a model card (a non-finite
    lambda, or a skill of another base, is refused by the engine)."""
    from past.skills import inject as inject_skills

    return Path(inject_skills(target_sft_dir, [skill], [lam], out, overwrite=True, card=card))


@dataclass(frozen=True)
class Orthogonality:
    """cos(Delta_SFT_S, v) overall and per weight matrix, next to cos(Delta_SFT_S, Delta_SFT_T) for scale."""

    skill: dict  # {"overall": cos, "per_tensor": {name: cos}}
    target: dict
    norm_skill: float
    norm_sft_source: float

    def metrics(self) -> dict:
        return {"cos_sft_source_vs_skill": round(self.skill["overall"], 4),
                "cos_sft_source_vs_sft_target": round(self.target["overall"], 4),
                "norm_skill": round(self.norm_skill, 4), "norm_sft_source": round(self.norm_sft_source, 4)}

    def rows(self) -> list[dict]:
        return [{"tensor": name, "cos_sft_source_vs_skill": round(self.skill["per_tensor"][name], 4),
                 "cos_sft_source_vs_sft_target": round(self.target["per_tensor"][name], 4)}
                for name in sorted(self.skill["per_tensor"])]


def orthogonality(skill: Path, source_sft_dir: Path, target_sft_dir: Path, base_dir: Path) -> Orthogonality:
    """The paper's diagnostic: SFT and RL move the weights in nearly orthogonal directions."""
    from past.skills import SkillVector, delta_cosines

    v = SkillVector.load(skill)
    sft_source = SkillVector.from_models(source_sft_dir, base_dir)
    sft_target = SkillVector.from_models(target_sft_dir, base_dir)
    return Orthogonality(delta_cosines(sft_source, v), delta_cosines(sft_source, sft_target), v.norm(),
                         sft_source.norm())


# ------------------------------------------------------------------------------------------ evaluate


def disk_usage(folders: dict[str, Path]) -> dict:
    """Bytes on disk of each artifact (a folder's files, or one file) and their sum: what a run costs to keep."""
    def size(path: Path) -> int:
        path = Path(path)
        return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    sizes = {name: size(path) for name, path in folders.items()}
    return {"bytes": sizes, "total_bytes": sum(sizes.values()), "total_gib": round(sum(sizes.values()) / 2**30, 4)}


def score(spec: EvalSpec, model, questions: list[dict], tokenizer=None, desc: str = "evaluating",
          tools: list[dict] | None = None, judge=None) -> dict[str, float]:
    """Closed-book scores of a model (a saved folder, or a loaded model with its tokenizer) on `questions`."""
    from past.evaluation.backends import closed_book_eval
    from past.modeling import load_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
    return closed_book_eval(model, tokenizer, questions, spec, desc, tools, judge)


@dataclass(frozen=True)
class Evaluation:
    """The pipeline's comparison on the target's evaluation questions."""

    questions: int
    scores: dict[str, dict]  # model name -> {metric: value}
    sweep: list[dict]  # [{"lambda", metric: value...}]


def evaluate(spec: EvalSpec, models: dict[str, Path], skill: Path, lam: float, lambdas: list[float],
             target: KnowledgeSet, base_dir: Path, target_sft_dir: Path) -> Evaluation:
    """Score every model in `models`, the control base + lambda v (the skill without the knowledge) and a
    lambda sweep target SFT + lambda v, all with one spec (and one judge cache)."""
    from past.modeling import load_model, load_tokenizer
    from past.skills import SkillVector

    questions = target.questions_in("eval")
    tokenizer = load_tokenizer(target_sft_dir)
    judge = spec.judge()

    def run(model, name):  # a saved folder or a model in memory, through spec.backend (hf or vllm)
        return score(spec, model, questions, tokenizer, name, target.tools, judge)

    v = SkillVector.load(skill)
    scores = {name: run(folder, name) for name, folder in models.items()}
    scores["control"] = run(v.apply_to(load_model(base_dir), lam), "control")
    sweep = _sweep(spec, v, load_model(target_sft_dir), tokenizer, lambdas, questions, target.tools, judge, "lambda")
    return Evaluation(len(questions), scores, sweep)


def _sweep(spec: EvalSpec, v, model, tokenizer, lambdas: list[float], questions: list[dict], tools, judge,
           label: str, likelihood: bool = False) -> list[dict]:
    """Scores of model + lambda v for each lambda (ascending): [{"lambda", metric: value...}], with the gold
    answers' mean log-likelihood (`answer_loglik`) when `likelihood`. `model` is changed in place."""
    sweep, applied = [], 0.0
    for value in sorted(lambdas):
        v.apply_to(model, value - applied)  # step the same weights along v instead of reloading
        applied = value
        row = {"lambda": value, **score(spec, model, questions, tokenizer, f"{label}={value}", tools, judge)}
        if likelihood:
            row[LIKELIHOOD] = answer_likelihood(spec, model, questions, tokenizer)
        sweep.append(row)
    return sweep


def answer_likelihood(spec: EvalSpec, model, questions: list[dict], tokenizer) -> float:
    """The gold answers' mean log-likelihood under a loaded model (in-process, whatever `spec.backend`)."""
    from past.evaluation.likelihood import answer_log_likelihood

    return answer_log_likelihood(model, tokenizer, questions, spec.prompt, spec.batch_size, spec.chat)

