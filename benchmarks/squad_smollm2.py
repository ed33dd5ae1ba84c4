"""SQuAD knowledge incorporation on SmolLM2-135M-Instruct (CPU): does PaST help at this scale?

Runs on the library directly (not `dvc repro`) so that both target arms and both refinement depths share
one base, one source SFT and one RL run:
base; target SFT on passages only; target SFT on passages + implications; PaST (passages +
implications SFT + lambda v) with v from 1 and 2 refinement rounds; each scored on the same closed-book
questions with exact match, token F1 and answer-contained, beside the paper's Qwen2.5-7B figures.

    nice -n 10 python benchmarks/squad_smollm2.py [--preset presets/squad-smollm2-cpu.yaml] [--work DIR]

Writes benchmarks/results/squad_smollm2.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import yaml

from past.config import Params, validate_params
from past.pipeline_repo import ROOT, deep_merge

# Qwen2.5-7B, single passage, GPT-4.1 yes/no grader (SEAL and PaST papers; shared/data/squad-seal/README.md)
PAPER = {"base": 32.7, "target_sft_passage": 33.5, "target_sft_implications": 39.7,
         "past_1_round": None, "past_2_rounds": 56.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", type=Path, default=ROOT / "presets/squad-smollm2-cpu.yaml")
    parser.add_argument("--work", type=Path, default=None, help="keep the models here (default: a temp folder)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--epochs", type=float, default=3.0,
                        help="target SFT epochs, the same for both arms (steps follow from each arm's documents)")
    args = parser.parse_args()
    raw = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), yaml.safe_load(args.preset.read_text()))
    params = validate_params(raw)
    work = args.work or Path(tempfile.mkdtemp(prefix="past-squad-"))
    results = run_study(params, work, args.lambdas, args.epochs)
    results["preset"] = str(args.preset.relative_to(ROOT)) if args.preset.is_relative_to(ROOT) else str(args.preset)
    out = ROOT / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "squad_smollm2.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "squad_smollm2.md").write_text(markdown(results))
    print(markdown(results))


def run_study(params: Params, work: Path, lambdas: list[float], epochs: float) -> dict:
    import torch

    from past.evaluation.metrics import closed_book_predictions, score_answers
    from past.knowledge.squad import squad_sets
    from past.modeling import load_model, load_tokenizer, save_model, set_threads
    from past.modeling_gguf import load_packaged_model
    from past.scoring import contained
    from past.skills import SkillVector
    from past import steps

    set_threads(params.threads)
    s, timings, t0 = params.prepare.squad, {}, time.time()

    def lap(name):
        nonlocal t0
        timings[name] = round(time.time() - t0, 1)
        print(f"[{name}] {timings[name]} s", flush=True)
        t0 = time.time()

    arms = {arm: squad_sets(s.root, s.source_passages, s.target_passages, 0, s.source_documents, arm,
                            s.implication_lists) for arm in ("passage", "implications")}
    source, questions = arms["implications"]["source"], arms["implications"]["target"].questions_in("eval")
    base = work / "base"
    if not (base / "config.json").exists():
        save_model(*load_packaged_model(params.base.model), base)
    tokenizer = load_tokenizer(base)
    lap("base: GGUF -> safetensors")

    answers = {}

    def score(folder_or_model, name):
        model = load_model(folder_or_model) if isinstance(folder_or_model, Path) else folder_or_model
        predictions = closed_book_predictions(model, tokenizer, questions, params.prompt, params.evaluate.batch_size,
                                              params.evaluate.max_new_tokens, desc=name, chat=params.chat)
        answers[name] = predictions
        lap(f"evaluate {name}")
        return {k: round(v, 4) for k, v in score_answers(predictions, questions).items() if k != "questions"}

    scores = {"base": score(base, "base")}
    for arm, sets in arms.items():
        folder = work / f"target_sft_{arm}"
        texts = [d["text"] for d in sets["target"].documents]
        steps = math.ceil(epochs * len(texts) / params.target_sft.batch_size)
        sft = params.target_sft.model_copy(update={"steps": steps})
        if not (folder / "config.json").exists():
            steps.sft(base, texts, sft, params.seed, folder)
        lap(f"target SFT ({arm}: {len(texts)} documents, {sft.steps} steps)")
        scores[f"target_sft_{arm}"] = score(folder, f"target_sft_{arm}")

    source_sft, skill_rl = work / "source_sft", work / "skill_rl"
    if not (skill_rl / "report.json").exists():  # the source side does not depend on the target: reused
        steps.source_sft(params, base, source, source_sft)
        lap("source SFT (round 1 subset)")
        run = steps.skill_rl(params, base, source_sft, source, skill_rl)
        (skill_rl / "report.json").write_text(json.dumps({"rounds": run.rounds, "reward_curve": run.reward_curve}))
        lap(f"skill RL ({params.skill_rl.rounds} rounds, with their SFTs)")
    report = json.loads((skill_rl / "report.json").read_text())

    target = work / "target_sft_implications"
    for k in range(1, params.skill_rl.rounds + 1):
        round_dir = work / "skill_rl" / f"round_{k}"
        skill = SkillVector.from_models(round_dir / "rl", round_dir / "sft")
        for lam in lambdas:
            model = skill.apply_to(load_model(target), lam)
            scores[f"past_{k}_round{'s' if k > 1 else ''}@{lam}"] = score(model, f"past round {k} lambda {lam}")
    # controls at lambda 1 with the last round's v: the skill without the new knowledge, and a random direction
    # of the same norm per tensor (does any perturbation of that size help?)
    scores["control_base+v"] = score(skill.apply_to(load_model(base), 1.0), "control base + v")
    generator = torch.Generator().manual_seed(params.seed)
    noise = {}
    for name in skill.names:
        r = torch.randn(skill[name].shape, generator=generator)
        noise[name] = r * (skill[name].norm() / r.norm().clamp_min(1e-12))
    scores["control_sft+random"] = score(SkillVector(noise).apply_to(load_model(target), 1.0),
                                         "control target SFT + random direction")
    samples = [{"question": q["question"], "gold": q["answers"][0], **{m: a[i] for m, a in answers.items()}}
               for i, q in enumerate(questions[:8])]
    per_question = {m: [contained(a[i], q["answers"]) for i, q in enumerate(questions)]
                    for m, a in answers.items()}
    return {"questions": len(questions), "passages": {"source": s.source_passages, "target": s.target_passages},
            "scores": scores, "skill_rl": report["rounds"], "seconds": timings, "samples": samples,
            "contained_per_question": per_question,
            "params": params.skill_rl.model_dump()}


def markdown(results: dict) -> str:
    lines = [f"Closed-book SQuAD, {results['questions']} questions ({results['passages']['target']} evaluation "
             f"passages; source {results['passages']['source']} train passages). Percent.", "",
             "| model | exact match | F1 | answer contained | paper, Qwen2.5-7B (GPT-4.1 judge) |",
             "| --- | --- | --- | --- | --- |"]
    for name, s in results["scores"].items():
        key = name.split("@")[0]
        paper = PAPER.get(key)
        lines.append(f"| {name} | {100 * s['exact_match']:.1f} | {100 * s['f1']:.1f} | {100 * s['contained']:.1f} | "
                     f"{'' if paper is None else paper} |")
    per_question = results.get("contained_per_question", {})
    reference = per_question.get("target_sft_implications")
    if reference:
        lines += ["", "Answer-contained, question by question, against target SFT (passages + implications): "
                      "questions gained / lost."]
        for name, flags in per_question.items():
            if name.startswith(("past", "control")):
                gained = sum(f and not r for f, r in zip(flags, reference))
                lost = sum(r and not f for f, r in zip(flags, reference))
                lines.append(f"- {name}: +{int(gained)} / -{int(lost)}")
    lines += ["", "Wall time (s): " + ", ".join(f"{k} {v}" for k, v in results["seconds"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
