"""SkillVector: an in-memory skill (fp32 tensors keyed by parameter name) with vector arithmetic.

For small models, tests and notebooks. Large models go through the streaming functions in engine.py,
which compute the same thing without holding a model in memory; both read through the same sources.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .checkpoints import open_delta, open_model
from .compat import check_compatible
from .dtypes import FLOAT32, from_torch, to_torch
from .engine import stream_combination
from .outputs import atomic_output
from .provenance import decode_metadata, encode_metadata, skill_metadata
from .safetensors_io import SafetensorsFileWriter
from .sources import DictSource, TensorSource, read_full

_DERIVED = ("norm", "tensor_norms")  # recomputed on save; stale after any arithmetic


class SkillVector:
    def __init__(self, tensors: Mapping[str, torch.Tensor], metadata: dict | None = None):
        self.tensors: dict[str, torch.Tensor] = {k: v.detach().to(torch.float32) for k, v in tensors.items()}
        self.metadata: dict = dict(metadata or {})

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def from_models(cls, rl_dir: Path | str, sft_dir: Path | str, rl_base: Path | str | None = None) -> "SkillVector":
        """theta_rl - theta_sft, both read from Hugging Face folders (or LoRA adapters; an RL adapter's base is
        `rl_base`, else its recorded one, else the SFT model)."""
        rl, sft = open_model(rl_dir, base=rl_base, default_base=sft_dir), open_model(sft_dir)
        try:
            check_compatible(sft, [rl])
            return cls({n: to_torch(read_full(rl, n).astype(FLOAT32) - read_full(sft, n).astype(FLOAT32)) for n in sft.names()},
                       skill_metadata(Path(rl_dir), Path(sft_dir), None))
        finally:
            rl.close()
            sft.close()

    @classmethod
    def from_state_dicts(cls, rl: Mapping[str, torch.Tensor], sft: Mapping[str, torch.Tensor]) -> "SkillVector":
        check_compatible(DictSource(sft, "sft state dict"), [DictSource(rl, "rl state dict")])
        return cls({n: rl[n].float() - sft[n].float() for n in sft})

    @classmethod
    def load(cls, path: Path | str) -> "SkillVector":
        """A skill file written by `save`/`extract_skill`, or a LoRA adapter expanded to dense deltas."""
        src = open_delta(path)
        try:
            return cls({n: to_torch(read_full(src, n)) for n in src.names()}, decode_metadata(src.metadata))
        finally:
            src.close()

    def save(self, path: Path | str, metadata: dict | None = None, *, overwrite: bool = False) -> Path:
        """Write as a skill file (fp32 safetensors; `metadata` is merged into `self.metadata`)."""
        self.metadata.update(metadata or {})
        source = self.as_source()
        specs = [(n, source.spec(n)) for n in source.names()]
        with atomic_output(Path(path), overwrite=overwrite, directory=False) as tmp:
            norms = {n: torch.linalg.vector_norm(t).item() for n, t in self.tensors.items()}
            meta = {**self.metadata, "norm": self.norm(), "tensor_norms": norms}
            writer = SafetensorsFileWriter(tmp, specs, encode_metadata(meta))
            for name, _ in specs:
                writer.write_at(name, 0, from_torch(self.tensors[name].contiguous().reshape(-1)))
            writer.finish()
        return Path(path)

    def as_source(self) -> TensorSource:
        return DictSource(self.tensors, "<SkillVector>", encode_metadata(self.metadata))

    # -------------------------------------------------------------------------------------- arithmetic

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def _same_keys(self, other: "SkillVector") -> None:
        check_compatible(DictSource(self.tensors, "left operand"), [DictSource(other.tensors, "right operand")])

    def __add__(self, other: "SkillVector") -> "SkillVector":
        if not isinstance(other, SkillVector):
            return NotImplemented
        self._same_keys(other)
        return SkillVector({n: t + other.tensors[n] for n, t in self.tensors.items()}, _common(self.metadata, other.metadata))

    def __sub__(self, other: "SkillVector") -> "SkillVector":
        if not isinstance(other, SkillVector):
            return NotImplemented
        return self + (-other)

    def __neg__(self) -> "SkillVector":
        return self * -1.0

    def __mul__(self, scale: float) -> "SkillVector":
        if not isinstance(scale, (int, float)):
            return NotImplemented
        return SkillVector({n: t * float(scale) for n, t in self.tensors.items()}, _common(self.metadata, self.metadata))

    __rmul__ = __mul__

    def norm(self) -> float:
        return math.sqrt(sum(torch.linalg.vector_norm(t).item() ** 2 for t in self.tensors.values()))

    def __repr__(self) -> str:
        return f"SkillVector({len(self)} tensors, {sum(t.numel() for t in self.tensors.values())} parameters, norm={self.norm():.4g})"

    # ------------------------------------------------------------------------------------- application

    def apply_to(self, target, lam: float = 1.0):
        """theta + lam * v, with exactly the arithmetic of the streaming `inject`.

        - a model folder: returns a new state dict (target dtypes);
        - a state dict: returns a new state dict (same dtypes); the input is untouched;
        - an nn.Module: adds in place under no_grad and returns the module.
        """
        if isinstance(target, torch.nn.Module):
            with torch.no_grad():
                params = _unique_tensors(target.state_dict(keep_vars=True))
                for name, new in self._added_to(DictSource(params, type(target).__name__), lam).items():
                    params[name].copy_(new)
            return target
        if isinstance(target, (str, Path)):
            src = open_model(target)
            try:
                return self._added_to(src, lam)
            finally:
                src.close()
        state = dict(target)
        new = self._added_to(DictSource(_unique_tensors(state), "state dict"), lam)
        # Tied names (e.g. lm_head.weight sharing embed_tokens.weight) keep sharing the new tensor.
        return {n: new[n] if n in new else new[_alias_of(state, n, new.keys())] for n in state}

    def _added_to(self, source: TensorSource, lam: float) -> dict[str, torch.Tensor]:
        check_compatible(source, [self.as_source()])
        specs = [(n, source.spec(n)) for n in source.names()]
        new = {n: np.empty(spec.numel, dtype=spec.dtype) for n, spec in specs}

        def place(name: str, start: int, block: np.ndarray) -> None:
            row = source.spec(name).row_numel
            new[name][start * row:start * row + block.size] = block

        stream_combination([(1.0, source), (float(lam), self.as_source())], specs, place)
        return {n: to_torch(new[n].reshape(spec.shape)) for n, spec in specs}


def _unique_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop names that alias a tensor already listed (tied weights), as safetensors files do."""
    seen: set[tuple[int, tuple]] = set()
    out = {}
    for name, t in state.items():
        key = (t.data_ptr(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            out[name] = t
    return out


def _alias_of(state: Mapping[str, torch.Tensor], name: str, unique_names) -> str:
    t = state[name]
    return next(n for n in unique_names if state[n].data_ptr() == t.data_ptr() and state[n].shape == t.shape)


def _common(a: dict, b: dict) -> dict:
    """Metadata both operands agree on (e.g. the base architecture); the rest no longer describes the sum."""
    return {k: v for k, v in a.items() if k in b and b[k] == v and k not in _DERIVED}

