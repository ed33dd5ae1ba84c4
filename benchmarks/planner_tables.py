"""The planner's tables: Qwen2.5-0.5B, 7B and 72B on 1 and 8 H200s (141 GiB each) for docs/planner.md, and
Qwen2.5-7B's per-GPU peak under each launcher of configs/accelerate/ for docs/training.md ("Several GPUs and nodes").

Pure arithmetic (past.planner), no GPU and no weights: seconds.

    python benchmarks/planner_tables.py > /tmp/tables.md    # docs/planner.md's tables
    python benchmarks/planner_tables.py launchers           # docs/training.md's
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from past.config import validate_params  # noqa: E402
from past.pipeline_repo import deep_merge, dotted_override  # noqa: E402
from past.planner import GiB, describe_model, launcher_layout, longest_tokens, plan_step, suggest  # noqa: E402

LIMIT = 141 * GiB  # one H200
LAUNCHERS = {
    "1 GPU": "python",
    "DDP": "accelerate launch --config_file configs/accelerate/ddp.yaml",
    "FSDP2": "accelerate launch --config_file configs/accelerate/fsdp2.yaml",
    "ZeRO-3": "accelerate launch --config_file configs/accelerate/zero3.yaml",
}
SQUAD = Path("/work/shared/data/squad-seal")


def preset(name: str, *overrides: str):
    raw = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                     yaml.safe_load((ROOT / "presets" / name).read_text()))
    return validate_params(deep_merge(raw, dotted_override(list(overrides))))


def squad_lengths(params) -> dict[str, dict]:
    """Longest document and prompt of the SQuAD preset's sets, when the SEAL files are at hand."""
    root = SQUAD if SQUAD.exists() else ROOT / params.prepare.squad.root
    if not root.exists():
        return {"source_sft": {"sft_tokens": 668}, "skill_rl": {"prompt_tokens": 51}}
    from past.knowledge.squad import squad_sets

    s = params.prepare.squad
    sets = squad_sets(str(root), s.source_passages, s.target_passages, s.oracle_passages, s.source_documents,
                      s.target_documents, s.implication_lists)
    docs = longest_tokens([d["text"] for ks in sets.values() for d in ks.documents])
    prompt = longest_tokens([params.prompt.format(question=q["question"]) for ks in sets.values()
                             for q in ks.questions], specials=1)
    return {"source_sft": {"sft_tokens": docs}, "skill_rl": {"prompt_tokens": prompt}}


def fix(est) -> str:
    if est.total <= LIMIT:
        return "fits as is"
    fit, _, combo = suggest(est, LIMIT, 0)
    if fit:
        from past.planner import PREFERENCE

        best = sorted(fit, key=lambda t: PREFERENCE.index(t.knob))[0]
        return f"{best.text.split(' (')[0]} -> {best.estimate.total / GiB:.1f}"
    if combo and combo[-1].estimate.total <= LIMIT:
        return " + ".join(t.text.split(" (")[0] for t in combo) + f" -> {combo[-1].estimate.total / GiB:.1f}"
    last = combo[-1].estimate.total / GiB if combo else est.total / GiB
    return f"does not fit even with every knob ({last:.1f}): more GPUs, sharded"


def main() -> None:
    params = preset("squad-qwen7b-gpu.yaml")
    lengths = squad_lengths(params)
    print(f"SQuAD preset lengths: SFT documents up to {lengths['source_sft']['sft_tokens']} tokens, "
          f"GRPO prompts up to {lengths['skill_rl']['prompt_tokens']} tokens (+64 new)\n")
    print("| model | GPUs | training | step | peak GiB per GPU (phase) | largest terms | at the preset's knobs | "
          "knobs that make it fit -> GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for model in ("qwen2.5-0.5b", "qwen2.5-7b", "qwen2.5-72b"):
        spec = describe_model(model)
        for gpus, sharding in ((1, "none"), (8, "none"), (8, "fsdp")):
            for rank in (0, 16):
                p = params.model_copy(update={"lora": params.lora.model_copy(update={"rank": rank})})
                for step in ("source_sft", "skill_rl"):
                    est = plan_step(p, spec, step, device="cuda", processes=gpus, sharding=sharding, **lengths[step])
                    where = "1" if gpus == 1 else f"8 ({'FSDP' if sharding == 'fsdp' else 'DDP'})"
                    largest = ", ".join(f"{t} {v / GiB:.0f}" for t, v in est.largest(3))
                    print(f"| {model} | {where} | {'LoRA r=16' if rank else 'full'} | "
                          f"{'SFT' if step == 'source_sft' else 'GRPO'} | {est.total / GiB:.1f} ({est.peak_phase}) | "
                          f"{largest} | {'fits' if est.total <= LIMIT else 'no'} | {fix(est)} |")

    print("\nEvery training step of each 7B preset on one H200, lengths as `past plan` finds them without data "
          "(train.max_length 0: the model's context):\n")
    print("| preset | step | peak GiB | fits | knobs that make it fit -> GiB |")
    print("|---|---|---|---|---|")
    for name in ("squad-qwen7b-gpu.yaml", "loogle-qwen7b-gpu.yaml", "toolbench-qwen7b-gpu.yaml"):
        p = preset(name)
        spec = describe_model(p.base.model)
        for step in ("source_sft", "skill_rl", "target_sft", "oracle", "adapt_sft"):
            kw = {}
            if name.startswith("loogle") and step.endswith("sft"):
                kw = {"sft_tokens": longest_tokens(["w " * p.prepare.loogle.chunk_words])}
            if step in ("skill_rl", "oracle"):
                kw = {"prompt_tokens": 51 + (32 if p.chat != "off" else 0)}
            est = plan_step(p, spec, step, device="cuda", **kw)
            print(f"| {name.removesuffix('.yaml')} | {step} ({est.knobs.batch} x {est.knobs.seq} tokens) | "
                  f"{est.total / GiB:.1f} | {'yes' if est.total <= LIMIT else 'no'} | {fix(est)} |")


def launchers() -> None:
    """Each launcher read into (processes, sharding) by past.planner.launcher_layout, exactly as a run reads
    train.launcher; the knobs are presets/squad-qwen7b-gpu.yaml's (full fine-tuning) with the SQuAD preset's lengths."""
    params = preset("squad-qwen7b-gpu.yaml")
    lengths = squad_lengths(params)
    spec = describe_model("qwen2.5-7b")
    t = params.train
    print(f"qwen2.5-7b, presets/squad-qwen7b-gpu.yaml (full fine-tuning, {t.optimizer}, micro-batch "
          f"{t.micro_batch_size}, checkpointing {t.activation_checkpointing}, {t.precision}); SFT documents up to "
          f"{lengths['source_sft']['sft_tokens']} tokens, GRPO prompts up to {lengths['skill_rl']['prompt_tokens']}\n")
    print("| config | processes | sharding | source_sft GiB per GPU (phase) | skill_rl GiB per GPU (phase) |")
    print("|---|---|---|---|---|")
    for name, launcher in LAUNCHERS.items():
        processes, sharding = launcher_layout(launcher, ROOT)
        cells = []
        for step in ("source_sft", "skill_rl"):
            est = plan_step(params, spec, step, device="cuda", processes=processes, sharding=sharding,
                            **lengths[step])
            fits = "" if est.total <= LIMIT else ", over 141"
            cells.append(f"{est.total / GiB:.1f} ({est.peak_phase}{fits})")
        print(f"| {name} (`{launcher}`) | {processes} | {sharding} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    if sys.argv[1:] == ["launchers"]:
        launchers()
    elif sys.argv[1:]:
        raise SystemExit(f"usage: {sys.argv[0]} [launchers]")
    else:
        main()
