"""What is at a path: a full checkpoint, a LoRA adapter, or a skill file, opened as a tensor source."""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError
from .lora import LoraSource, adapter_base_path, is_adapter
from .provenance import read_config
from .safetensors_io import SafetensorsSource
from .sources import TensorSource


def open_model(path: Path | str, *, base: Path | str | None = None, default_base: Path | str | None = None) -> TensorSource:
    """Full weights at `path`; a LoRA adapter is merged onto its base on the fly.

    The base of an adapter is `base` if given, else the local folder recorded in its adapter_config.json,
    else `default_base` (e.g. the SFT model an RL adapter was trained from).
    """
    path = Path(path)
    if not is_adapter(path):
        return SafetensorsSource(path)
    base_path = Path(base) if base else adapter_base_path(path) or (Path(default_base) if default_base else None)
    if base_path is None:
        raise CheckpointError(f"LoRA adapter {path} needs its base model: its recorded base is not a local folder (pass --base)")
    return LoraSource(path, SafetensorsSource(base_path))


def open_delta(path: Path | str) -> TensorSource:
    """A skill: a skill-vector safetensors file, or a LoRA adapter read as a (partial) delta."""
    path = Path(path)
    if is_adapter(path):
        return LoraSource(path, None)
    return SafetensorsSource(path)


def model_folders(path: Path | str, base: Path | str | None = None) -> list[Path]:
    """The folders whose config and tokenizer files describe the model: [base, adapter] for an adapter."""
    path = Path(path)
    if is_adapter(path):
        base_path = Path(base) if base else adapter_base_path(path)
        return [base_path, path] if base_path else [path]
    return [path]


def model_config(path: Path | str, base: Path | str | None = None) -> dict | None:
    """config.json of a model folder; for an adapter, of its base."""
    for folder in reversed(model_folders(path, base)):
        if (folder / "config.json").is_file():
            return read_config(folder)
    return None
