"""Per-GPU peak memory of Qwen2.5-7B's source_sft and skill_rl under each launcher of configs/accelerate/, for
docs/training.md ("Several GPUs and nodes"). Each launcher is read into (processes, sharding) by
past.planner.launcher_layout, exactly as a run would read train.launcher; the knobs are
presets/squad-qwen7b-gpu.yaml's (full fine-tuning) with the SQuAD preset's lengths.

Pure arithmetic (past.planner), no GPU and no weights: seconds.

    python benchmarks/launcher_plans.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from planner_tables import preset, squad_lengths  # noqa: E402

from past.planner import GiB, describe_model, launcher_layout, plan_step  # noqa: E402

LAUNCHERS = {
    "1 GPU": "python",
    "DDP": "accelerate launch --config_file configs/accelerate/ddp.yaml",
    "FSDP2": "accelerate launch --config_file configs/accelerate/fsdp2.yaml",
    "ZeRO-3": "accelerate launch --config_file configs/accelerate/zero3.yaml",
}
LIMIT = 141 * GiB  # one H200


def main() -> None:
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
    main()
