"""How close is the memory planner (past.planner) to the peak memory a real TRL step takes? Measured on CPU.

For randomly initialised Llamas of three sizes (~20M, ~100M, ~340M parameters), full fine-tuning and LoRA, SFT and
GRPO, each configuration runs two real optimizer steps of TRL's SFTTrainer / GRPOTrainer (the pipeline's trainer
arguments, `past.training.arguments.trainer_arguments`, with the knobs of the `train:` group applied) in a fresh
subprocess. Measured: the peak resident set size (`ru_maxrss`) minus the resident size just before the model is
built (after every import, the tokenizer and the data). Estimated: `past.planner.estimate(..., device="cpu")`.

glibc's malloc returns large blocks to the system only above its mmap threshold, which it raises as the program
frees big blocks; each subprocess fixes it (MALLOC_MMAP_THRESHOLD_=131072) so that freed tensors leave the RSS, as
they leave a GPU's caching allocator for reuse. `--malloc-default` measures without it.

    nice -n 5 python benchmarks/planner_accuracy.py                 # all configurations (~15 min on 2 cores)
    nice -n 5 python benchmarks/planner_accuracy.py --only S-sft    # names starting with S-sft
    ... --out benchmarks/results/planner_accuracy.md                # also write the table there
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 32000
SIZES = {  # name: (hidden, layers, intermediate, heads, kv heads, vocabulary)
    "S": (256, 4, 1024, 8, 2, VOCAB),
    "M": (768, 8, 2048, 12, 4, VOCAB),
    "L": (1024, 24, 2816, 16, 4, VOCAB),
    "L8k": (1024, 24, 2816, 16, 4, 8192),  # a small vocabulary: activations, not the CPU's LM-head tiles, dominate
}
SFT = dict(batch=8, seq=128)
GRPO = dict(prompts=4, generations=4, prompt_words=(18, 24), completion=16)


def configurations() -> list[dict]:
    out = []
    for size in ("S", "M", "L"):
        for kind in ("sft", "grpo"):
            for lora in (0, 16):
                out.append(dict(size=size, kind=kind, lora=lora, precision="bf16", ckpt=False, micro=0))
    # the other knobs, on the middle size
    out += [dict(size="M", kind="sft", lora=0, precision="fp32", ckpt=False, micro=0),
            dict(size="M", kind="sft", lora=0, precision="bf16", ckpt=True, micro=0),
            dict(size="M", kind="sft", lora=0, precision="bf16", ckpt=False, micro=2),
            dict(size="M", kind="grpo", lora=0, precision="fp32", ckpt=False, micro=0),
            dict(size="M", kind="grpo", lora=0, precision="bf16", ckpt=True, micro=4),
            dict(size="M", kind="sft", lora=16, precision="bf16", ckpt=True, micro=0),
            # longer sequences on the small-vocabulary L
            dict(size="L8k", kind="sft", lora=0, precision="bf16", ckpt=False, micro=0, seq=256),
            dict(size="L8k", kind="sft", lora=0, precision="fp32", ckpt=False, micro=0, seq=256),
            dict(size="L8k", kind="sft", lora=16, precision="bf16", ckpt=False, micro=0, seq=256),
            dict(size="L8k", kind="grpo", lora=0, precision="bf16", ckpt=False, micro=0, completion=64)]
    for c in out:
        extra = "".join(f"-{tag}{c[key]}" for key, tag in (("micro", "micro"), ("seq", "seq"), ("completion", "new"))
                        if c.get(key))
        c["name"] = (f"{c['size']}-{c['kind']}-{'lora' if c['lora'] else 'full'}-{c['precision']}"
                     f"{'-ckpt' if c['ckpt'] else ''}{extra}")
    return out


def model_config(size: str) -> dict:
    h, layers, i, heads, kv, vocab = SIZES[size]
    return dict(model_type="llama", hidden_size=h, num_hidden_layers=layers, intermediate_size=i,
                num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=False,
                max_position_embeddings=512)


def shapes(c: dict) -> tuple[int, int, int]:
    """(SFT sequence length, GRPO new tokens, vocabulary) of a configuration."""
    return c.get("seq", SFT["seq"]), c.get("completion", GRPO["completion"]), SIZES[c["size"]][5]


def planned(c: dict) -> "object":
    from past.planner import Knobs, estimate

    seq, completion, _ = shapes(c)
    if c["kind"] == "sft":
        knobs = Knobs(kind="sft", batch=SFT["batch"], seq=seq)
    else:
        prompt = GRPO["prompt_words"][1] + 1  # + BOS
        knobs = Knobs(kind="grpo", batch=GRPO["prompts"] * GRPO["generations"], seq=prompt + completion,
                      completion=completion)
    from dataclasses import replace

    knobs = replace(knobs, micro_batch=c["micro"], checkpointing=c["ckpt"], bf16=c["precision"] == "bf16",
                    lora_rank=c["lora"], device="cpu")
    return estimate(model_config(c["size"]), knobs, c["name"])


# ------------------------------------------------------------------------------------------ one measurement


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(c: dict) -> dict:
    import gc
    import random
    import resource

    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    from past.modeling import build_word_tokenizer
    from past.training.arguments import quiet_transformers, trainer_arguments

    torch.set_num_threads(1)
    quiet_transformers()
    import peft  # noqa: F401  (imported before the baseline, like everything else)
    from peft import LoraConfig

    rng = random.Random(0)
    seq, completion, vocab = shapes(c)
    words = [f"w{n}" for n in range(vocab - 4)]
    tokenizer = build_word_tokenizer(words)
    steps = 2
    args = trainer_arguments("/tmp/past-planner-bench", steps, 1e-4, 0)
    args.update(bf16=c["precision"] == "bf16", activation_checkpointing=c["ckpt"], logging_steps=1,
                disable_tqdm=True)
    if c["kind"] == "sft":
        batch = SFT["batch"]
        # BOS + words + EOS; two lengths so that every batch carries padding, as real documents do
        texts = [" ".join(rng.choice(words) for _ in range(seq - 2 - (n % 2))) for n in range(batch * steps * 2)]
        data = Dataset.from_dict({"text": texts})
        micro = c["micro"] or batch
        config = SFTConfig(**args, per_device_train_batch_size=micro, gradient_accumulation_steps=batch // micro,
                           max_length=seq, dataset_text_field="text", packing=False)
    else:
        prompts = [" ".join(rng.choice(words) for _ in range(rng.randint(*GRPO["prompt_words"])))
                   for _ in range(GRPO["prompts"] * steps * 2)]
        data = Dataset.from_dict({"prompt": prompts, "answers": [["w1"]] * len(prompts)})
        total = GRPO["prompts"] * GRPO["generations"]
        micro = c["micro"] or total
        args.update(lr_scheduler_type="constant", lr_scheduler_kwargs={})
        config = GRPOConfig(**args, per_device_train_batch_size=micro, gradient_accumulation_steps=total // micro,
                            num_generations=GRPO["generations"], max_completion_length=completion,
                            temperature=1.0, beta=0.0)
    peft_config = (LoraConfig(r=c["lora"], lora_alpha=2 * c["lora"], lora_dropout=0.0, target_modules="all-linear",
                              task_type="CAUSAL_LM") if c["lora"] else None)
    gc.collect()
    base = rss_now()
    t0 = time.time()
    cfg = model_config(c["size"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k != "model_type"},
                                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                         eos_token_id=tokenizer.eos_token_id))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    if c["kind"] == "sft":
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=peft_config)
    else:
        def reward(completions, **_):
            return [float(len(x) % 3) for x in completions]

        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data,
                              processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    losses = [r.get("loss") for r in trainer.state.log_history if "loss" in r]
    return {"name": c["name"], "params": n_params, "baseline": base, "peak": peak, "measured": peak - base,
            "seconds": round(time.time() - t0, 1), "losses": losses}


# ------------------------------------------------------------------------------------------ driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run configurations whose name starts with this")
    parser.add_argument("--out", type=Path, help="write the Markdown table here too")
    parser.add_argument("--malloc-default", action="store_true", help="leave glibc's mmap threshold dynamic")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(measure(json.loads(args.one))), flush=True)
        return 0

    from past.planner import GiB

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    if not args.malloc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    rows = []
    header = ("| configuration | params | estimate GiB | measured GiB | ratio est/meas | peak phase | largest terms "
              "(GiB) | s |")
    print(header + "\n|---|---|---|---|---|---|---|---|", flush=True)
    for c in configurations():
        if not c["name"].startswith(args.only):
            continue
        est = planned(c)
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(c)], env=env, capture_output=True,
                              text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"| {c['name']} | failed: {proc.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        ratio = est.total / r["measured"]
        largest = ", ".join(f"{t} {v / GiB:.2f}" for t, v in est.largest(3))
        row = (f"| {c['name']} | {r['params'] / 1e6:.1f}M | {est.total / GiB:.3f} | {r['measured'] / GiB:.3f} | "
               f"{ratio:.2f} | {est.peak_phase} | {largest} | {r['seconds']} |")
        rows.append((row, ratio))
        print(row, flush=True)
    if rows:
        worst = max(rows, key=lambda rr: abs(rr[1] - 1))
        summary = (f"\n{len(rows)} configurations; ratios {min(r for _, r in rows):.2f} to "
                   f"{max(r for _, r in rows):.2f}; worst {worst[1]:.2f} ({worst[0].split('|')[1].strip()})")
        print(summary)
        if args.out:
            command = "nice -n 5 python benchmarks/planner_accuracy.py" + (" --malloc-default" if args.malloc_default
                                                                           else "")
            text = ("# Planner accuracy: estimate vs measured peak memory (CPU)\n\n"
                    f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, 2 shared CPU cores, torch threads 1).\n"
                    "Measured: peak RSS minus the RSS just before the model is built, two optimizer steps each "
                    "(SFT: 8 sequences x 128 tokens unless -seqN; GRPO: 4 prompts x 4 generations, prompts of 19-25 "
                    "tokens, 16 new tokens unless -newN). Vocabulary 32000 (L8k: 8192). "
                    "Estimate: `past.planner.estimate(..., device=\"cpu\")`.\n\n"
                    + header + "\n|---|---|---|---|---|---|---|---|\n" + "\n".join(r for r, _ in rows) + "\n"
                    + summary + "\n")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
