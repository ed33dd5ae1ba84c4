"""Low-rank form of a skill vector: per-matrix truncated SVD, saved as a PEFT LoRA adapter.

Each 2-D delta D is replaced by B @ A with rank k (fixed, or the smallest k keeping a fraction of
||D||_F^2), the singular values split evenly between the factors so both have similar scale. The
adapter uses lora_alpha = r per module (scale 1), so `PeftModel.from_pretrained(target, adapter)` and
`past skill inject --skill ADAPTER` both give theta_T + lambda * D_k.

LoRA has no form for 1-D tensors (norm weights, biases): they are dropped, and the report says how
much of the skill's squared norm that loses (typically a fraction of a percent).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .checkpoints import open_delta
from .dtypes import as_dtype, to_torch, torch_dtype
from .errors import SkillError
from .lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from .outputs import atomic_output, refuse_existing, refuse_input_overlap
from .provenance import decode_metadata, encode_metadata
from .sources import read_full

_EMBEDDINGS = ("embed_tokens", "wte", "wpe", "word_embeddings", "embed_positions")
# Exact SVD up to this smaller dimension (seconds on CPU). Beyond it (70B-class matrices), a fixed rank uses
# randomized SVD (Halko et al.), minutes instead of hours, and near-exact on the decaying spectra of real deltas.
_EXACT_UP_TO = 4096


def _rank_for(s: torch.Tensor, rank: int | None, energy: float | None) -> int:
    if rank is not None:
        return min(rank, s.numel())
    cum = torch.cumsum(s.double() ** 2, 0)
    return int(torch.searchsorted(cum, energy * cum[-1]).item()) + 1


def _factors(m: torch.Tensor, rank: int | None, energy: float | None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(B, A, squared Frobenius error) with B @ A the best rank-k approximation of m."""
    small = min(m.shape)
    if rank is not None and small > _EXACT_UP_TO and 4 * rank < small:
        with torch.random.fork_rng(devices=[]):  # deterministic output for a given skill
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(m, q=min(small, 2 * rank + 10), niter=6)
        vh = v.T
    else:
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
    k = _rank_for(s, rank, energy)
    root = s[:k].sqrt()
    b, a = u[:, :k] * root, root[:, None] * vh[:k]
    err = max(0.0, torch.dot(m.flatten(), m.flatten()).item() - (s[:k].double() ** 2).sum().item())
    return b.contiguous(), a.contiguous(), err


def compress_skill(
    skill: Path | str,
    out_dir: Path | str,
    *,
    rank: int | None = None,
    energy: float | None = None,
    dtype="fp32",
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Write `out_dir` as a PEFT LoRA adapter approximating the skill; return a size/error report."""
    if (rank is None) == (energy is None):
        raise SkillError("give exactly one of rank or energy")
    if rank is not None and rank < 1 or energy is not None and not 0 < energy <= 1:
        raise SkillError(f"rank must be >= 1 and energy in (0, 1]: got rank={rank}, energy={energy}")
    dtype = torch_dtype(as_dtype(dtype))
    out_dir = Path(out_dir)
    refuse_input_overlap(out_dir, [Path(skill)])
    refuse_existing(out_dir, overwrite)
    src = open_delta(skill)
    tensors: dict[str, torch.Tensor] = {}
    ranks: dict[str, int] = {}
    embeddings: list[str] = []
    total_sq = err_sq = dropped_sq = 0.0
    dense_params = 0
    dropped = []
    try:
        for name in tqdm(src.names(), desc="compress", disable=not progress):
            d = to_torch(read_full(src, name)).float()
            dense_params += d.numel()
            sq = torch.dot(d.flatten(), d.flatten()).item()
            total_sq += sq
            if d.dim() != 2 or not name.endswith(".weight"):
                dropped.append(name)
                dropped_sq += sq
                continue
            if not torch.isfinite(d).all():
                raise SkillError(f"tensor {name} in {src.where(name)} holds NaN or Inf")
            module = name.removesuffix(".weight")
            key = f"base_model.model.{module}"
            if any(e in module for e in _EMBEDDINGS):  # PEFT: delta = (B @ A).T, A is [r, vocab]
                b, a, err = _factors(d.T, rank, energy)
                tensors[f"{key}.lora_embedding_A"], tensors[f"{key}.lora_embedding_B"] = a.to(dtype), b.to(dtype)
                embeddings.append(module)
            else:
                b, a, err = _factors(d, rank, energy)
                tensors[f"{key}.lora_A.weight"], tensors[f"{key}.lora_B.weight"] = a.to(dtype), b.to(dtype)
            ranks[module] = a.shape[0]
            err_sq += err
        meta = decode_metadata(src.metadata)
    finally:
        src.close()
    if not ranks:
        raise SkillError(f"skill {skill} has no 2-D weight to compress")

    r = max(ranks.values())
    lora_params = sum(t.numel() for t in tensors.values())
    rep = {
        "skill": str(skill),
        "rank": rank,
        "energy": energy,
        "max_rank": r,
        "relative_error": math.sqrt((err_sq + dropped_sq) / total_sq) if total_sq else 0.0,
        "dropped_tensors": len(dropped),
        "dropped_norm_fraction": math.sqrt(dropped_sq / total_sq) if total_sq else 0.0,
        "dense_parameters": dense_params,
        "lora_parameters": lora_params,
        "bytes": lora_params * dtype.itemsize,
    }
    config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": meta.get("base_model"),
        "r": r,
        "lora_alpha": r,
        # Per-module rank with alpha = rank keeps the LoRA scale at exactly 1 everywhere. Keys are regexes
        # in PEFT, hence escaped.
        "rank_pattern": {_escape(m): k for m, k in ranks.items() if k != r},
        "alpha_pattern": {_escape(m): k for m, k in ranks.items() if k != r},
        "target_modules": sorted(ranks),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "modules_to_save": None,
        "inference_mode": True,
    }
    with atomic_output(out_dir, overwrite=overwrite, directory=True) as tmp:
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        header = {k: v for k, v in meta.items() if k not in ("tensor_norms", "norm")}
        header["compression"] = {k: v for k, v in rep.items() if k != "skill"}
        save_file(tensors, tmp / ADAPTER_WEIGHTS, metadata={"format": "pt", **encode_metadata(header)})
    return rep


def _escape(module: str) -> str:
    return module.replace(".", r"\.")
