"""PaST on a real pretrained LLM: does SmolLM2-135M-Instruct, taught new (invented) people by SFT, answer more of
their questions with the skill vector added? Three questions, one sub-command each:

    python benchmarks/world_smollm2.py costs     # what a step costs here: SFT tokens/s (fp32, bf16, LoRA), GRPO
    python benchmarks/world_smollm2.py curve     # how much target SFT stores: closed-book score vs epochs
    python benchmarks/world_smollm2.py study --seeds 0 1 2   # the study: one `dvc repro` per seed, paired test

Sizes come from presets/world-smollm2-cpu.yaml (over params.yaml). `study` runs each seed as a fresh pipeline
in `--work` (kept: a killed seed resumes from its checkpoints when run again), scores target SFT, PaST and a
random direction of v's norm question by question, and adds the seed to `benchmarks/results/world_smollm2.json`
as soon as it is done (`--commit` commits that file too, so that a long study survives interruptions).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

# MKL's vendor-independent branch (past.kernels pins COMPATIBLE: the same bits on Intel and AMD) makes SmolLM2's
# SFT steps about 3x slower than its AUTO branch here (docs/real-models.md): this study keeps run-to-run
# reproducibility on one machine (fixed threads, deterministic reductions), not across vendors
os.environ.setdefault("MKL_CBWR", "AUTO")

import yaml  # noqa: E402

from past.config import Params, validate_params  # noqa: E402
from past.evaluation.paired import interval95, mcnemar  # noqa: E402
from past.pipeline_repo import ROOT, deep_merge, make_pipeline_repo, run  # noqa: E402

PRESET = ROOT / "presets/world-smollm2-cpu.yaml"
RESULTS = ROOT / "benchmarks/results/world_smollm2.json"  # the study, a seed at a time
WRITTEN = {"costs": ROOT / "benchmarks/results/world_smollm2_costs.json",
           "curve": ROOT / "benchmarks/results/world_smollm2_curve.json"}


def preset_params(preset: Path, **changes) -> Params:
    raw = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), yaml.safe_load(preset.read_text()))
    return validate_params(deep_merge(raw, changes))


def prepared(params: Params, work: Path) -> tuple[Path, Path]:
    """The world and the converted base under `work` (made once)."""
    from past import steps

    world, base = work / "world", work / "base"
    if not (world / "target").exists():
        steps.prepare(params, world)
    if not (base / "config.json").exists():
        steps.base(params, world, base)
    return world, base


# ------------------------------------------------------------------------------------------ costs


VARIANTS = {"fp32": ({"precision": "fp32"}, {}), "bf16": ({"precision": "bf16"}, {}),
            "lora": ({"precision": "fp32"}, {"rank": 16})}  # LoRA rank 16 on every linear layer, fp32


def costs(params: Params, work: Path, variants: list[str], batch: int = 8) -> dict:
    """Seconds per optimizer step, from the difference of a 1-step and a 3-step run (loading and saving cancel)."""
    from past import steps
    from past.config import SFTParams
    from past.knowledge.format import read_knowledge_set
    from past.modeling import load_model, load_tokenizer, set_threads
    from past.training.grpo import run_grpo

    set_threads(params.threads)
    world, base = prepared(params, work)
    target = read_knowledge_set(world / "target")
    docs = steps.texts(target)
    tokenizer = load_tokenizer(base)
    tokens = statistics.mean(len(tokenizer(d)["input_ids"]) for d in docs)
    out = {"threads": params.threads, "mkl_cbwr": os.environ["MKL_CBWR"], "tokens_per_document": round(tokens, 1), "sft": {}, "grpo": {}}
    for name in variants:
        train, lora = VARIANTS[name]
        p = params.model_copy(update={"train": params.train.model_copy(update={**train, "checkpoint_steps": 0}),
                                      "lora": params.lora.model_copy(update=lora)})
        walls = []
        for n in (1, 3):
            started = time.perf_counter()
            steps.sft(base, docs[: batch * n], SFTParams(steps=n, lr=2e-4, batch_size=batch, warmup_ratio=0.0),
                      0, work / "costs-sft", steps.training_run(p))
            walls.append(time.perf_counter() - started)
        step = (walls[1] - walls[0]) / 2
        out["sft"][name] = {"seconds_per_step": round(step, 2), "tokens_per_second": round(batch * tokens / step, 1)}
        print(f"SFT {name}: {step:.2f} s a step of {batch} documents, {batch * tokens / step:.0f} tokens/s", flush=True)
    questions = target.questions_in("oracle")
    grpo = params.oracle.grpo
    walls = []
    for n in (1, 3):
        model = load_model(base)
        started = time.perf_counter()
        run_grpo(model, tokenizer, questions, params.prompt, grpo.model_copy(update={"steps": n}), 0, chat=params.chat)
        walls.append(time.perf_counter() - started)
    step = (walls[1] - walls[0]) / 2
    out["grpo"] = {"seconds_per_step": round(step, 2), "prompts_per_step": grpo.prompts_per_step,
                   "num_generations": grpo.num_generations, "max_new_tokens": grpo.max_new_tokens}
    print(f"GRPO: {step:.1f} s a step ({grpo.prompts_per_step} questions x {grpo.num_generations} samples, "
          f"at most {grpo.max_new_tokens} tokens)", flush=True)
    return out


# ------------------------------------------------------------------------------------------ curve


def person(row_id: str) -> str:
    """person-00300-city (a question), person-00300-r002 (a document) -> person-00300."""
    return row_id.rsplit("-", 1)[0]


def probes(questions: list[dict], documents: list[dict]) -> list[dict]:
    """Each question as the start of a sentence of its person's first document, cut before the answer ("fefaes
    brolouzor came into the world in" -> "fouli"): whether SFT *stored* a fact, apart from whether the model
    answers a question about it."""
    first = {}
    for d in documents:
        first.setdefault(person(d["id"]), d["text"])
    out = []
    for q in questions:
        sentence = next(s for s in first[person(q["id"])].split(" . ") if f" {q['answers'][0]}" in f" {s}")
        out.append({**q, "question": sentence[: sentence.index(q["answers"][0])].rstrip()})
    return out


def curve(params: Params, work: Path, people: int, epochs: list[float], lrs: list[float], out: Path) -> dict:
    """Target SFT of the base on the first `people` evaluation people's documents for each learning rate and
    number of epochs (a fresh run each, so each has its own schedule): the share of their questions answered
    closed-book, and the share of their facts stored (completed in the documents' own sentence form). Written
    to `out` after each row (a long curve survives interruptions)."""
    import dataclasses

    from past import steps
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.modeling import set_threads

    set_threads(params.threads)
    world, base = prepared(params, work)
    target = read_knowledge_set(world / "target")
    questions = target.questions_in("eval")
    names = sorted({person(q["id"]) for q in questions})[:people]
    chosen = [q for q in questions if person(q["id"]) in names]
    documents = [d for d in target.documents if person(d["id"]) in names]
    docs = [d["text"] for d in documents]
    spec = EvalSpec.from_params(params)
    probe_spec = dataclasses.replace(spec, prompt="{question}", chat="off", max_new_tokens=6)
    probe_questions = probes(chosen, documents)

    def scored(folder: Path, desc: str) -> dict:
        return {**steps.score(spec, folder, chosen, desc=desc),
                "stored": steps.score(probe_spec, folder, probe_questions, desc=f"{desc} probes")["contained"]}

    rows = []
    result = {"people": len(names), "documents": len(docs), "renders_per_person": params.prepare.world.renders_per_person,
              "questions": len(chosen), "metric": spec.metric, "max_new_tokens": spec.max_new_tokens, "rows": rows}

    def add(row: dict) -> None:
        rows.append(row)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(row, flush=True)

    add({"epochs": 0, **scored(base, "base")})
    for lr in lrs:
        for e in epochs:
            n = max(1, math.ceil(e * len(docs) / params.target_sft.batch_size))
            started = time.perf_counter()
            folder = steps.sft(base, docs, params.target_sft.model_copy(update={"steps": n, "lr": lr}), params.seed,
                               work / f"curve-{lr:g}-{e:g}")
            add({"lr": lr, "epochs": e, "steps": n, "seconds": round(time.perf_counter() - started, 1),
                 **scored(folder, f"lr {lr:g}, {e:g} epochs")})
    return result


# ------------------------------------------------------------------------------------------ study


def per_question(spec, model, questions: list[dict], tokenizer, desc: str) -> list[bool]:
    """Whether `model` (a folder or a loaded model) answers each question, by the spec's metric."""
    from past.evaluation.metrics import closed_book_predictions
    from past.modeling import load_model
    from past.scoring import SCORERS

    model = load_model(model) if isinstance(model, Path) else model
    answers = closed_book_predictions(model, tokenizer, questions, spec.prompt, spec.batch_size,
                                      spec.max_new_tokens, desc=desc, chat=spec.chat)
    scorer = SCORERS[spec.metric]
    return [bool(scorer(a, q["answers"])) for a, q in zip(answers, questions)]


def study_seed(seed: int, preset: Path, work: Path) -> dict:
    """One fresh pipeline at `seed` (resumed if `work` holds a killed one), then the paired comparison."""
    import torch

    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.modeling import load_model, load_tokenizer
    from past.skills import SkillVector

    repo = work / f"seed-{seed}"
    resumed = (repo / "dvc.yaml").exists()  # then `seconds` counts only this process's part of the seed
    if not resumed:
        make_pipeline_repo(repo, deep_merge(yaml.safe_load(preset.read_text()), {"seed": seed}))
    started = time.perf_counter()
    run(["dvc", "repro"], repo, capture=False)  # its progress in this log: a seed takes hours
    seconds = time.perf_counter() - started
    params = validate_params(yaml.safe_load((repo / "params.yaml").read_text()))
    spec = EvalSpec.from_params(params)
    questions = read_knowledge_set(repo / "data/world/target").questions_in("eval")
    tokenizer = load_tokenizer(repo / "models/target_sft")
    v = SkillVector.load(repo / "models/skill/skill.safetensors")
    lam = json.loads((repo / "metrics/eval.json").read_text())["lambda"]
    flags = {name: per_question(spec, repo / "models" / name, questions, tokenizer, name)
             for name in ("target_sft", "past")}
    generator = torch.Generator().manual_seed(seed)  # a random direction with v's norm, tensor by tensor
    noise = {}
    for name in v.names:
        r = torch.randn(v[name].shape, generator=generator)
        noise[name] = r * (v[name].norm() / r.norm().clamp_min(1e-12))
    flags["control_random"] = per_question(spec, SkillVector(noise).apply_to(load_model(repo / "models/target_sft"),
                                                                             lam), questions, tokenizer, "random")
    metrics = {f.stem: json.loads(f.read_text()) for f in (repo / "metrics").glob("*.json")}
    return {"seed": seed, "seconds": round(seconds, 1), "resumed": resumed, "lambda": lam, "questions": len(questions),
            "scores": metrics["eval"][spec.metric], "per_question": {k: sum(f) / len(f) for k, f in flags.items()},
            "past_vs_target_sft": mcnemar(flags["target_sft"], flags["past"]).as_dict(),
            "random_vs_target_sft": mcnemar(flags["target_sft"], flags["control_random"]).as_dict(),
            "skill_rl": metrics.get("skill_rl", {}).get("rounds"), "metric": spec.metric}


def summary(seeds: list[dict]) -> dict:
    gains = [s["per_question"]["past"] - s["per_question"]["target_sft"] for s in seeds]
    return {"seeds": [s["seed"] for s in seeds], "gain_mean": round(statistics.mean(gains), 4),
            "gain_interval95": [round(x, 4) for x in interval95(gains)] if len(gains) > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["costs", "curve", "study"])
    parser.add_argument("--preset", type=Path, default=PRESET)
    parser.add_argument("--work", type=Path, default=None, help="models and pipelines (default: a temp folder)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS),
                        help="costs: the SFT variants timed")
    parser.add_argument("--people", type=int, default=10, help="curve: evaluation people taught")
    parser.add_argument("--epochs", type=float, nargs="+", default=[2, 4, 8], help="curve: epochs of target SFT")
    parser.add_argument("--lrs", type=float, nargs="+", default=None, help="curve: learning rates (default: the preset's)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="curve: answer length (default: the preset's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="study: seeds")
    parser.add_argument("--results", type=Path, default=RESULTS, help="study: where the seeds' results go")
    parser.add_argument("--commit", action="store_true", help="study: git commit the results after each seed")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="past-world-smollm2-"))
    work.mkdir(parents=True, exist_ok=True)
    params = preset_params(args.preset, **({"evaluate": {"max_new_tokens": args.max_new_tokens}}
                                           if args.max_new_tokens else {}))
    if args.command == "costs":
        out = costs(params, work, args.variants)
        WRITTEN["costs"].write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
    elif args.command == "curve":
        curve(params, work, args.people, args.epochs, args.lrs or [params.target_sft.lr], WRITTEN["curve"])
    else:
        results = json.loads(args.results.read_text()) if args.results.exists() else {"seeds": []}
        for seed in args.seeds:
            if any(s["seed"] == seed for s in results["seeds"]):
                continue
            results["seeds"].append(study_seed(seed, args.preset, work))
            results["summary"] = summary(results["seeds"])
            args.results.write_text(json.dumps(results, indent=2) + "\n")
            print(json.dumps(results["seeds"][-1], indent=2), flush=True)
            if args.commit:
                run(["git", "add", str(args.results)], ROOT)
                run(["git", "commit", "-qm", f"benchmarks/world_smollm2.py: seed {seed}", str(args.results)], ROOT)


if __name__ == "__main__":
    main()
