"""The GPU check: the training steps on CUDA at a real model's sizes, no download, sized for ~8 minutes on one H200.

1. The embedded pipeline's steps (`past.steps`: prepare, base, source SFT, skill RL, target SFT, inject,
   evaluate) on a small synthetic world, on the device.
2. SFT and GRPO steps of a randomly initialised model with Qwen2.5-7B's published sizes (no weights needed:
   memory and speed depend on the shapes alone), at the knobs of a preset (`--preset`, its `train:` and
   `lora:` groups and GRPO sizes; vLLM off), printing per step the peak memory against the planner's estimate
   (`past.planner.plan_step` for target_sft and skill_rl), tokens per second and MFU.

MFU: model FLOPs per second over the GPU's dense bf16 peak (`--peak-tflops`; default 989 on an H100/H200 SXM:
NVIDIA's datasheet gives 1,979 TFLOP/s bf16 with sparsity, half that dense). Model FLOPs per trained token, with
N the parameters of every matmul (the decoder's Linears and the LM head, not the embedding lookup) and T the
tokens per sequence (attention, PaLM's appendix B): full fine-tuning 6N + 12 L q T; LoRA 4N + 6 N_adapter +
12 L q T (the frozen weights get no weight gradient: forward 2N, input gradient 2N). GRPO adds 2N per token for
sampling it (prefill or decode, attention left out). Recomputation (checkpointing) is not counted: it is
hardware work, not model work. Time is the median optimizer step after the first (warm-up), tokens are TRL's own
`num_tokens` (non-padding tokens: GRPO's prompts and completions).

    python benchmarks/gpu_check.py --preset presets/squad-qwen7b-lora-gpu.yaml --out gpu_check.json
    python benchmarks/gpu_check.py --tiny            # the same code on CPU with a tiny model, in a minute
    scripts/device-check.sh run                      # on the GPU node: installs the carried wheels, then this
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.metadata
import json
import statistics
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from transformers import TrainerCallback

from past.planner import BUILTIN_MODELS
from past.training.arguments import TrainingRun

# Qwen2.5-7B's published sizes, as the planner knows them (one table for both)
QWEN25_7B = {k: v for k, v in BUILTIN_MODELS["qwen2.5-7b"].items() if k != "model_type"}
TINY = dict(hidden_size=128, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=2048, max_position_embeddings=256, tie_word_embeddings=False)
# the embedded pipeline on a small world; --tiny shrinks it further (the same steps, fewer of them)
EMBEDDED = {
    "prepare": {"world": {"p0_people": 60, "source_people": 24, "target_oracle_people": 10,
                          "target_eval_people": 10, "renders_per_person": 12}},
    "base": {"steps": 150, "batch_size": 16}, "source_sft": {"steps": 60, "batch_size": 16},
    "skill_rl": {"rounds": 2, "grpo": {"steps": 8, "prompts_per_step": 8, "num_generations": 4}},
    "target_sft": {"steps": 60, "batch_size": 16}, "evaluate": {"lambdas": [0.0, 0.5]}}
EMBEDDED_TINY = {"prepare": {"world": {"p0_people": 30, "source_people": 12, "target_oracle_people": 5,
                                       "target_eval_people": 5, "renders_per_person": 6}},
                 "base": {"steps": 20, "batch_size": 8}, "source_sft": {"steps": 6, "batch_size": 8},
                 "skill_rl": {"rounds": 2, "grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 2}},
                 "target_sft": {"steps": 6, "batch_size": 8}}
# --tiny's scale steps: the preset's knobs (LoRA, micro-batches, checkpointing, bf16) on short sequences
SCALE_TINY = {"train": {"max_length": 64, "micro_batch_size": 2}, "target_sft": {"batch_size": 4},
              "skill_rl": {"grpo": {"prompts_per_step": 2, "num_generations": 2, "max_new_tokens": 8}}}
VLLM_OFF = {"skill_rl": {"grpo": {"vllm": {"mode": "off"}}}, "oracle": {"grpo": {"vllm": {"mode": "off"}}}}
PROMPT_WORDS = 40


class Peak:
    """Peak memory of a block in GiB: CUDA's allocator peak (what the planner estimates, less its margin) and
    what the allocator reserved; on CPU the rise of the resident set, sampled every 5 ms."""

    def __enter__(self):
        gc.collect()  # the last step's trainer holds reference cycles: its model must be gone before the reset
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            trim_heap()
            self.base = self.high = rss()
            self.done = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(0.005):
            self.high = max(self.high, rss())

    def read(self) -> dict:
        if self.cuda:
            return {"peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                    "reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2), "memory": "cuda allocator"}
        self.high = max(self.high, rss())
        return {"peak_gib": round((self.high - self.base) / 2**30, 4), "memory": "cpu resident-set rise"}

    def __exit__(self, *exc):
        if not self.cuda:
            self.done.set()
            self.thread.join()


def trim_heap() -> None:
    """Give freed heap back to the system, so that the next step's allocations show in the resident set rather than
    reuse pages the last step left (glibc; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (generation included for GRPO) and TRL's cumulative token count."""

    def __init__(self):
        self.seconds, self.tokens = [], []

    def _sync(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.seconds.append(time.perf_counter() - self.started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.tokens.append(float(logs["num_tokens"]))


@dataclass(frozen=True)
class TimedRun(TrainingRun):
    """The pipeline's TrainingRun with the step timer added to its callbacks."""

    timer: StepTimer | None = None

    def callbacks(self) -> list:
        return super().callbacks() + [self.timer]


def random_model(sizes: dict, folder: Path):
    """A randomly initialised Qwen2 causal LM with `sizes`, saved (bf16, like a hub model) so that every step loads
    it through the normal path, and a word-level tokenizer over its vocabulary. The tokenizer is returned, not
    reloaded: AutoTokenizer on a qwen2 folder makes a Qwen2Tokenizer, which drops every word (BOS alone is left)."""
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
    return folder, tokenizer


def matmul_params(model) -> int:
    """N of the FLOP count: every Linear's weight, the LM head included (a tied head still multiplies)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def scale_steps(params, sizes: dict, work: Path, steps: int, peak_tflops: float | None, report: dict, save) -> None:
    """`steps` optimizer steps of SFT and of GRPO at the preset's knobs; a failed step is recorded (with its
    traceback) and the next one still runs, so one run on the node says as much as it can."""
    from past.modeling import load_model

    started = time.perf_counter()
    folder, tokenizer = random_model(sizes, work / "random")
    report["random_model_seconds"] = round(time.perf_counter() - started, 1)
    length = params.train.max_length or 512
    words = [f"w{i}" for i in range(1000)]
    texts = [" ".join(words[(i * 7 + j) % 1000] for j in range(length - 2)) for i in range(64)]  # + BOS, EOS
    questions = [{"id": str(i), "question": " ".join(words[i:i + PROMPT_WORDS]), "answers": [words[i + PROMPT_WORDS + 1]]}
                 for i in range(64)]
    grpo = params.skill_rl.grpo
    for kind, step, prompt_tokens, sequences in (
            ("sft", "target_sft", None, params.target_sft.batch_size),
            ("grpo", "skill_rl", PROMPT_WORDS + 1, grpo.prompts_per_step * grpo.num_generations)):
        row = {"step": kind, "planner_step": step, **estimate(params, folder, step, length, prompt_tokens)}
        report["scale"].append(row)
        run, n = TimedRun(params.train, params.lora, timer=StepTimer()), 0
        with Peak() as peak:
            try:
                model = load_model(folder)
                if torch.cuda.is_available():
                    model = model.cuda()
                n = matmul_params(model)
                if kind == "sft":
                    from past.training.sft import run_sft

                    run_sft(model, tokenizer, texts, params.target_sft.model_copy(update={"steps": steps}), 0, run)
                else:
                    from past.training.grpo import run_grpo

                    run_grpo(model, tokenizer, questions, "{question}", grpo.model_copy(update={"steps": steps}), 0,
                             chat="off", run=run)
            except Exception as error:  # noqa: BLE001 - an OOM or a bug: keep what was measured, go on
                row.update(error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
                print(row["traceback"], file=sys.stderr, flush=True)
            model = None  # freed before the next step's peak is taken
            row.update(peak.read())
        row.update(speed(params, sizes, kind, n, row.get("trainable"), run.timer, sequences, peak_tflops))
        print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)
        save()


def speed(params, sizes: dict, kind: str, n: int, trainable, timer: StepTimer, sequences: int,
          peak_tflops: float | None) -> dict:
    """Tokens/s and MFU of the steps after the first (the formula is in the module's docstring)."""
    out = {"step_seconds": [round(s, 3) for s in timer.seconds]}
    per_step = [b - a for a, b in zip([0.0] + timer.tokens, timer.tokens)]
    if len(timer.seconds) < 2 or len(per_step) < len(timer.seconds):
        return out  # nothing after the warm-up step: no steady-state figure
    seconds = statistics.median(timer.seconds[1:])
    tokens = statistics.median(per_step[1:len(timer.seconds)])
    out.update(tokens_per_step=round(tokens), tokens_per_s=round(tokens / seconds, 1), matmul_params=n)
    if params.lora.rank and trainable is None:
        return out  # the adapter's size comes from the planner, which failed
    attention = 12 * sizes["num_hidden_layers"] * sizes["hidden_size"] * tokens / sequences  # q = hidden in Qwen2
    train = (4 * n + 6 * trainable if params.lora.rank else 6 * n) + attention
    flops = tokens * (train + (2 * n if kind == "grpo" else 0))
    out.update(model_tflops=round(flops / seconds / 1e12, 3),
               mfu=round(flops / seconds / (peak_tflops * 1e12), 4) if peak_tflops else None)
    return out


def estimate(params, folder: Path, step: str, sft_tokens: int, prompt_tokens: int | None) -> dict:
    """The planner's estimate for this step (its real step names, the measured lengths); its error, if any."""
    from past import planner

    try:
        est = planner.plan_step(params, folder, step, sft_tokens=sft_tokens, prompt_tokens=prompt_tokens)
    except Exception as error:  # noqa: BLE001 - recorded; main() exits non-zero
        return {"estimate_gib": None, "estimate_error": f"{type(error).__name__}: {error}"}
    return {"estimate_gib": round(est.total / 2**30, 3), "estimate_phase": est.peak_phase,
            "trainable": est.static["gradients"] // 4}


def embedded_steps(work: Path, tiny: bool) -> dict:
    """The embedded pipeline's steps on a small world, timed."""
    from past import contracts, steps
    from past.config import validate_params
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.pipeline_repo import deep_merge

    # Great Expectations is not on the node (nor carried: 20 more packages, scipy among them): the generated world's contracts are the
    # CPU suite's business; here the training steps are what is measured
    contracts._validate = lambda *args, **kwargs: None
    params = validate_params(deep_merge(deep_merge(EMBEDDED, EMBEDDED_TINY if tiny else {}), VLLM_OFF))
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


def imported() -> dict:
    """Every distribution this run imported, with its version and where it came from (the carried ones must come
    from device-check.sh's target folder)."""
    owners = importlib.metadata.packages_distributions()
    found = {}
    for name in sorted({m.split(".")[0] for m in list(sys.modules)}):
        module = sys.modules.get(name)
        for dist in dict.fromkeys(owners.get(name, [])):
            if getattr(module, "__file__", None) and dist not in found:
                try:
                    version = importlib.metadata.version(dist)
                except importlib.metadata.PackageNotFoundError:  # a name without its metadata: say so, go on
                    version = None
                found[dist] = {"version": version, "module": name, "file": module.__file__}
    return found


def default_peak() -> float | None:
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return 989.0 if ("H100" in name or "H200" in name) else None  # NVIDIA's datasheet, dense bf16 (SXM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", type=Path, default=Path("presets/squad-qwen7b-lora-gpu.yaml"))
    parser.add_argument("--tiny", action="store_true", help="a tiny model, small steps, CPU threads 1 (a smoke test)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps of each scale step (the first is warm-up)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak for MFU (H100/H200: 989)")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from past.config import validate_params
    from past.pipeline_repo import ROOT, deep_merge

    if args.tiny:
        torch.set_num_threads(1)  # the shared CI cores: one thread per process is the fast setting there
    override = deep_merge(yaml.safe_load(args.preset.read_text()), VLLM_OFF)  # vLLM is not on the node
    if args.tiny:
        override = deep_merge(override, SCALE_TINY)
    params = validate_params(deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), override))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak_tflops = args.peak_tflops or default_peak()
    print(f"gpu_check: device {device}, torch {torch.__version__}, preset {args.preset}, tiny {args.tiny}, "
          f"peak {peak_tflops} TFLOP/s", flush=True)
    report = {"device": device, "torch": torch.__version__, "python": sys.version.split()[0],
              "preset": str(args.preset), "model": "tiny" if args.tiny else "Qwen2.5-7B sizes (random init)",
              "peak_tflops": peak_tflops, "scale": []}
    save = lambda: args.out and args.out.write_text(json.dumps(report, indent=2))  # noqa: E731 - after every part
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="past-gpu-check-") as tmp:
        if not args.skip_embedded:
            try:
                report["embedded"] = embedded_steps(Path(tmp) / "embedded", args.tiny)
            except Exception as error:  # noqa: BLE001 - recorded; the scale steps still run
                report["embedded"] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
                print(report["embedded"]["traceback"], file=sys.stderr, flush=True)
            print(json.dumps({k: v for k, v in report["embedded"].items() if k != "traceback"}), flush=True)
            save()
        scale_steps(params, TINY if args.tiny else QWEN25_7B, Path(tmp), args.steps, peak_tflops, report, save)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["imported"] = imported()
    report["past"] = sys.modules["past"].__file__  # from src/, not installed
    save()
    print("\n| step | peak (GiB) | planner (GiB) | tokens/s | TFLOP/s | MFU |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in report["scale"]:
        print(f"| {row['step']} | {row.get('peak_gib')} | {row['estimate_gib']} | {row.get('tokens_per_s')} | "
              f"{row.get('model_tflops')} | {row.get('mfu')} |")
    failed = [f"{r['step']}: {r.get('error') or r.get('estimate_error') or 'no steady-state step'}"
              for r in report["scale"] if r.get("error") or r.get("estimate_error") or not r.get("tokens_per_s")]
    if "error" in report.get("embedded", {}):
        failed.insert(0, f"embedded: {report['embedded']['error']}")
    print(f"gpu_check: {'FAILED ' + '; '.join(failed) if failed else 'ok'} in {report['seconds']} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
