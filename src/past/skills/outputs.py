"""Atomic outputs: build in a temporary sibling, rename into place only when complete.

A crash or a refusal half way (NaN found in the last shard) therefore never leaves a partial model that a
later stage could mistake for a finished one. The sibling lives in the same directory so the final
rename is atomic (same filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from past.files import PICKLE_SUFFIXES, atomic_path, overlapping_input

from .errors import OutputExistsError, OutputOverlapError
from .lora import ADAPTER_CONFIG
from .safetensors_io import INDEX_NAME

# Files a model folder carries besides weights are copied; these are produced anew or belong to adapters.
_NOT_COPIED = {INDEX_NAME, "README.md", ADAPTER_CONFIG, "past_provenance.json"}


def refuse_input_overlap(out: Path, inputs: list[Path]) -> None:
    """Refuse an output that is, contains, or lies inside an input: `overwrite` never replaces an input, and
    nothing is written into an input's folder (a DVC-tracked model, say)."""
    hit = overlapping_input(out, [p for p in inputs if p is not None])
    if hit is not None:
        real = f" (resolved: {Path(out).resolve()} and {hit.resolve()})" if Path(out).resolve() != Path(out).absolute() \
            or hit.resolve() != hit.absolute() else ""
        raise OutputOverlapError(f"output {out} is, contains or lies inside the input {hit}{real}: "
                                 "choose an output outside every input (--overwrite never replaces an input)")


def refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} exists (use --overwrite to replace it)")


@contextmanager
def atomic_output(out: Path, *, overwrite: bool, directory: bool) -> Iterator[Path]:
    """Yield a temporary path to fill; on success it replaces `out`, on any exception it is removed."""
    out = Path(out)
    refuse_existing(out, overwrite)
    with atomic_path(out, directory=directory) as tmp:
        yield tmp


def copy_support_files(sources: list[Path], out_dir: Path, dtype: np.dtype | None) -> None:
    """Copy config, generation config, tokenizer files... (later sources win); record a new dtype."""
    for src in sources:
        for f in sorted(Path(src).iterdir()):
            if f.is_file() and f.name not in _NOT_COPIED and f.suffix not in PICKLE_SUFFIXES | {".safetensors"}:
                shutil.copy2(f, out_dir / f.name)
    config = out_dir / "config.json"
    if dtype is not None and config.is_file():
        data = json.loads(config.read_text())
        name = dtype.name  # numpy names them as Hugging Face configs do: 'bfloat16', 'float32'
        data["dtype"] = name
        if "torch_dtype" in data:
            data["torch_dtype"] = name
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
