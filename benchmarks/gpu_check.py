"""The GPU check: the training steps on CUDA at a real model's sizes, no download, sized for ~8 minutes on one H200.

1. The embedded pipeline's steps (`past.steps`: prepare, base, source SFT, skill RL, target SFT, inject,
   evaluate) on a small synthetic world, on the device.
2. SFT and GRPO steps of a randomly initialised model with Qwen2.5-7B's published sizes (no weights needed:
   memory and speed depend on the shapes alone), at the knobs of a preset (`--preset`, its `train:` and
   `lora:` groups and GRPO sizes), printing peak accelerator memory, tokens per second and the planner's
   estimate side by side.

    python benchmarks/gpu_check.py --preset presets/squad-qwen7b-lora-gpu.yaml --out gpu_check.json
    python benchmarks/gpu_check.py --tiny            # the same on CPU with a ~10M-parameter model (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from past.planner import BUILTIN_MODELS

# Qwen2.5-7B's published sizes, as the planner knows them (one table for both)
QWEN25_7B = {k: v for k, v in BUILTIN_MODELS["qwen2.5-7b"].items() if k != "model_type"}
TINY = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=8192, max_position_embeddings=1024, tie_word_embeddings=False)


def device_peak() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def random_model(sizes: dict, folder: Path):
    """A randomly initialised Qwen2 causal LM with `sizes`, saved (bf16, like a hub model) with a word-level
    tokenizer over its vocabulary, so every step loads it through the normal path."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from past.modeling import build_word_tokenizer, save_model

    tokenizer = build_word_tokenizer([f"w{i}" for i in range(sizes["vocab_size"] - 4)])
    config = Qwen2Config(**sizes, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    save_model(model, tokenizer, folder, dtype=torch.bfloat16)
    del model
    return folder


def scale_steps(params, sizes: dict, work: Path, steps: int) -> list[dict]:
    """`steps` optimizer steps of SFT and of GRPO at the preset's knobs; peak memory, tokens/s, the estimate."""
    from past.modeling import load_model, load_tokenizer
    from past.training.arguments import TrainingRun
    from past.training.grpo import run_grpo
    from past.training.sft import run_sft

    folder = random_model(sizes, work / "random")
    tokenizer = load_tokenizer(folder)
    run = TrainingRun(params.train, params.lora)
    length = params.train.max_length or 512
    words = [f"w{i}" for i in range(1000)]
    texts = [" ".join(words[(i * 7 + j) % 1000] for j in range(length - 2)) for i in range(64)]
    questions = [{"id": str(i), "question": " ".join(words[i:i + 40]), "answers": [words[i + 41]]} for i in range(64)]
    rows = []
    for kind in ("sft", "grpo"):
        reset_peak()
        model = load_model(folder)
        if torch.cuda.is_available():
            model = model.cuda()
        started = time.perf_counter()
        if kind == "sft":
            sft = params.target_sft.model_copy(update={"steps": steps})
            run_sft(model, tokenizer, texts, sft, 0, run)
            tokens = steps * sft.batch_size * length
        else:
            grpo = params.skill_rl.grpo.model_copy(update={"steps": steps})
            run_grpo(model, tokenizer, questions, "{question}", grpo, 0, chat="off", run=run)
            tokens = steps * grpo.prompts_per_step * grpo.num_generations * (42 + grpo.max_new_tokens)
        seconds = time.perf_counter() - started
        rows.append({"step": kind, "peak_gib": device_peak(), "tokens_per_s": round(tokens / seconds),
                     "seconds": round(seconds, 1), "estimate_gib": estimate(params, folder, kind)})
        print(json.dumps(rows[-1]), flush=True)
        del model
    return rows


def estimate(params, folder: Path, kind: str):
    try:
        from past import planner
    except ImportError:
        return None
    return round(planner.plan_step(params, folder, kind).total / 2**30, 2)


def embedded_steps(work: Path) -> dict:
    """The embedded pipeline's steps on a small world, timed."""
    from past import steps
    from past.config import validate_params
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set

    params = validate_params({
        "prepare": {"world": {"p0_people": 60, "source_people": 24, "target_oracle_people": 10,
                              "target_eval_people": 10, "renders_per_person": 12}},
        "base": {"steps": 150, "batch_size": 16}, "source_sft": {"steps": 60, "batch_size": 16},
        "skill_rl": {"rounds": 2, "grpo": {"steps": 8, "prompts_per_step": 8, "num_generations": 4}},
        "target_sft": {"steps": 60, "batch_size": 16}, "evaluate": {"lambdas": [0.0, 0.5]}})
    timings, clock = {}, time.perf_counter()

    def lap(name):
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    steps.prepare(params, work / "world"); lap("prepare")
    steps.base(params, work / "world", work / "base"); lap("base")
    source, target = read_knowledge_set(work / "world/source"), read_knowledge_set(work / "world/target")
    steps.source_sft(params, work / "base", source, work / "source_sft"); lap("source_sft")
    run = steps.skill_rl(params, work / "base", work / "source_sft", source, work / "skill_rl"); lap("skill_rl")
    steps.extract(run, work / "skill.safetensors", {}); lap("extract")
    steps.target_sft(params, work / "base", target, work / "target_sft"); lap("target_sft")
    steps.inject(work / "target_sft", work / "skill.safetensors", 0.5, work / "past"); lap("inject")
    result = steps.evaluate(EvalSpec.from_params(params), {"target_sft": work / "target_sft", "past": work / "past"},
                            work / "skill.safetensors", 0.5, [0.5], target, work / "base", work / "target_sft")
    lap("evaluate")
    return {"seconds": timings, "exact_match": {k: v["exact_match"] for k, v in result.scores.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", type=Path, default=Path("presets/squad-qwen7b-lora-gpu.yaml"))
    parser.add_argument("--tiny", action="store_true", help="a ~10M-parameter model instead of Qwen2.5-7B's sizes")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps of each scale step")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from past.config import validate_params
    from past.pipeline_repo import ROOT, deep_merge

    override = yaml.safe_load(args.preset.read_text())
    if args.tiny:  # a smoke test on CPU: the preset's knobs, fewer and shorter completions
        override = deep_merge(override, {"skill_rl": {"grpo": {"prompts_per_step": 4, "max_new_tokens": 8}}})
    params = validate_params(deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), override))
    print(f"device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}", flush=True)
    report = {"preset": str(args.preset), "model": "tiny" if args.tiny else "Qwen2.5-7B sizes (random init)"}
    with tempfile.TemporaryDirectory(prefix="past-gpu-check-") as tmp:
        if not args.skip_embedded:
            report["embedded"] = embedded_steps(Path(tmp) / "embedded")
            print(json.dumps(report["embedded"]), flush=True)
        report["scale"] = scale_steps(params, TINY if args.tiny else QWEN25_7B, Path(tmp), args.steps)
    print("\n| step | peak (GiB) | planner (GiB) | tokens/s | seconds |\n| --- | ---: | ---: | ---: | ---: |")
    for row in report["scale"]:
        print(f"| {row['step']} | {row['peak_gib'] if row['peak_gib'] is None else round(row['peak_gib'], 1)} | "
              f"{row['estimate_gib']} | {row['tokens_per_s']:,} | {row['seconds']} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
