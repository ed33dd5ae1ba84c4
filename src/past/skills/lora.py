"""PEFT LoRA adapters as tensor sources, merged on the fly, block by block.

With a base source, the adapter reads as the merged model (what PEFT's `merge_and_unload` gives). Without
one, it reads as the delta alone (`scale * B @ A` per adapted module) and is `partial`: modules it does not
adapt are zero. That second form is how a compressed skill vector (see compress.py) is applied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dtypes import FLOAT32
from .errors import CheckpointError
from .safetensors_io import SafetensorsSource, raise_if_pickle
from .sources import TensorSource, TensorSpec, read_full

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."
_UNSUPPORTED = ("use_dora", "lora_bias", "trainable_token_indices", "layer_replication", "target_parameters")


@dataclass(frozen=True)
class _Adapted:
    a: str  # key of A in the adapter file
    b: str
    scale: float
    embedding: bool  # PEFT stores embedding factors transposed relative to Linear ones
    transpose: bool  # fan_in_fan_out (GPT-2 Conv1D layout)


def is_adapter(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base_path(adapter_dir: Path) -> Path | None:
    """The base recorded in the adapter config, if it is a local folder."""
    base = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    return Path(base) if base and Path(base).is_dir() else None


def _pattern_value(patterns: dict, module: str, default):
    # PEFT's rule (tuners_utils.get_pattern_key): a key matches a module name that ends with it.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


class LoraSource:
    def __init__(self, adapter_dir: Path | str, base: TensorSource | None):
        adapter_dir = Path(adapter_dir)
        self.label = str(adapter_dir)
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
        if config.get("peft_type", "LORA") != "LORA":
            raise CheckpointError(f"{adapter_dir}: peft_type {config.get('peft_type')} is not LoRA")
        for key in _UNSUPPORTED:
            if config.get(key):
                raise CheckpointError(f"{adapter_dir}: LoRA option {key} is not supported")
        weights = adapter_dir / ADAPTER_WEIGHTS
        if not weights.exists():
            for p in sorted(adapter_dir.iterdir()):
                raise_if_pickle(p)
            raise CheckpointError(f"missing {weights}")
        self._file = SafetensorsSource(weights)
        self.metadata = dict(self._file.metadata)
        self._base = base
        self.partial = base is None

        keys = set(self._file.names())
        self._adapted: dict[str, _Adapted] = {}
        self._replaced: dict[str, str] = {}  # full tensors saved in the adapter (modules_to_save, resized embeddings)
        for key in sorted(keys):
            if not key.startswith(_PREFIX):
                raise CheckpointError(f"{weights}: unexpected tensor {key}")
            name = key[len(_PREFIX):]
            if name.endswith((".lora_A.weight", ".lora_embedding_A")):
                embedding = name.endswith(".lora_embedding_A")
                module = name.rsplit(".lora_", 1)[0]
                b = key.replace(".lora_A.", ".lora_B.") if not embedding else key.replace("_embedding_A", "_embedding_B")
                if b not in keys:
                    raise CheckpointError(f"{weights}: {key} has no matching {b}")
                r = _pattern_value(config.get("rank_pattern") or {}, module, config["r"])
                alpha = _pattern_value(config.get("alpha_pattern") or {}, module, config["lora_alpha"])
                scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
                self._adapted[module + ".weight"] = _Adapted(key, b, scale, embedding, bool(config.get("fan_in_fan_out")))
            elif ".lora_" in name:
                continue  # the B half, consumed above
            else:
                self._replaced[name.replace(".base_layer.", ".")] = key
        if base is None and self._replaced:
            name = next(iter(self._replaced))
            raise CheckpointError(f"{adapter_dir}: full tensor {name} in the adapter needs a base model to apply")
        if base is not None:
            base_names = set(base.names())
            for name in list(self._adapted) + list(self._replaced):
                if name not in base_names:
                    raise CheckpointError(f"{adapter_dir}: adapted tensor {name} is not in the base model {base.label}")
        self._specs = {name: self._delta_spec(name, adapted) for name, adapted in self._adapted.items()}

    def _delta_spec(self, name: str, ad: _Adapted) -> TensorSpec:
        a, b = self._file.spec(ad.a).shape, self._file.spec(ad.b).shape
        shape = (a[1], b[0]) if ad.embedding or ad.transpose else (b[0], a[1])
        if self._base is not None and self._base.spec(name).shape != shape:
            raise CheckpointError(f"{self.label}: LoRA factors of {name} give shape {shape}, base has {self._base.spec(name).shape}")
        return TensorSpec(FLOAT32, shape)

    def names(self) -> list[str]:
        return self._base.names() if self._base is not None else list(self._adapted)

    def spec(self, name: str) -> TensorSpec:
        if self._base is None:
            return self._specs[name]
        if name in self._replaced:
            return self._file.spec(self._replaced[name])
        return self._base.spec(name)

    def where(self, name: str) -> str:
        if name in self._adapted or name in self._replaced or self._base is None:
            return self._file.where(self._replaced.get(name) or self._adapted[name].a)
        return self._base.where(name)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        if name in self._replaced:
            base = self._file.read(self._replaced[name], start, stop)
        elif self._base is not None:
            base = self._base.read(name, start, stop)
        else:
            base = None
        ad = self._adapted.get(name)
        if ad is None:
            return base
        delta = self._delta_rows(ad, start, stop)
        if base is None:
            return delta
        # Stay in fp32: the engine does its arithmetic in fp32 and rounds once, to the output dtype.
        return base.astype(FLOAT32) + delta

    def _delta_rows(self, ad: _Adapted, start: int, stop: int) -> np.ndarray:
        a = read_full(self._file, ad.a).astype(FLOAT32)
        b = read_full(self._file, ad.b).astype(FLOAT32)
        if ad.embedding or ad.transpose:  # delta = (B @ A).T; its rows are columns of A
            rows = (b @ a[:, start:stop]).T
        else:
            rows = b[start:stop] @ a
        return (rows * np.float32(ad.scale)).reshape(-1)

    def close(self) -> None:
        self._file.close()
        if self._base is not None:
            self._base.close()

