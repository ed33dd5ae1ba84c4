"""Checks that inputs line up, by tensor name, from headers alone (before any data is read or written)."""

from __future__ import annotations

from .dtypes import is_float
from .errors import IncompatibleError, OtherBaseError
from .provenance import architecture, architecture_mismatch, base_config, config_hash
from .sources import TensorSource

_VOCAB_TENSORS = ("embed_tokens", "lm_head", "wte", "word_embeddings", "embed_out")


def check_compatible(reference: TensorSource, others: list[TensorSource]) -> None:
    """Same names (a partial source may lack some) and same shapes; float tensors only."""
    ref_names = reference.names()
    ref_set = set(ref_names)
    for name in ref_names:
        if not is_float(reference.spec(name).dtype):
            raise IncompatibleError(f"tensor {name} in {reference.where(name)} is not floating point")
    for other in others:
        names = other.names()
        for name in names:
            if name not in ref_set:
                raise IncompatibleError(f"tensor {name} is in {other.where(name)} but not in {reference.label}")
        if not other.partial:
            present = set(names)
            for name in ref_names:
                if name not in present:
                    raise IncompatibleError(f"tensor {name} is in {reference.where(name)} but missing from {other.label}")
        for name in names:
            a, b = reference.spec(name).shape, other.spec(name).shape
            if a == b:
                continue
            if any(v in name for v in _VOCAB_TENSORS) and a[1:] == b[1:]:
                raise IncompatibleError(
                    f"vocabulary size differs in tensor {name}: {a[0]} in {reference.where(name)}, {b[0]} in {other.where(name)}"
                )
            raise IncompatibleError(f"shape mismatch for tensor {name}: {list(a)} in {reference.where(name)}, {list(b)} in {other.where(name)}")


def check_same_architecture(config_a: dict | None, label_a: str, config_b: dict | None, label_b: str) -> None:
    """Two model configs describe the same architecture (skipped where a config is absent)."""
    if config_a is not None and config_b is not None:
        _refuse_mismatch(architecture(config_a), architecture(config_b), f"different base architectures", label_a, label_b)


def check_skill_architecture(skill_meta: dict, skill_label: str, target_config: dict | None, target_label: str) -> None:
    """The skill's recorded base architecture matches the target's config (skipped if either is unknown)."""
    recorded = skill_meta.get("base_architecture")
    if recorded and target_config is not None:
        _refuse_mismatch(recorded, architecture(target_config), f"skill {skill_label} was extracted from a different base architecture", "the skill", target_label)


def check_skill_base(skill_meta: dict, skill_label: str, target_config: dict | None, target_label: str) -> None:
    """The skill's recorded base config hash (architecture and lineage fields, provenance.LINEAGE_KEYS) is the
    target's: a skill moved onto another lineage of the same architecture adds noise, not a skill. Skipped where
    the target has no config, or the skill records no base config (files from before it was recorded: their
    hash covered the architecture alone, which check_skill_architecture compares)."""
    recorded = skill_meta.get("base_config")
    if not isinstance(recorded, dict) or target_config is None:
        return
    target = base_config(target_config)
    diff = architecture_mismatch(recorded, target)
    if diff is not None:
        key, va, vb = diff
        raise OtherBaseError(
            f"skill {skill_label} was extracted from another base model ({skill_meta.get('base_model', '?')}): base config "
            f"hash {skill_meta.get('base_config_hash', config_hash(recorded))} in the skill, {config_hash(target)} in "
            f"{target_label} ({key}={va!r} vs {vb!r}); pass --allow-other-base (allow_other_base=True) to inject it anyway"
        )


def _refuse_mismatch(a: dict, b: dict, what: str, label_a: str, label_b: str) -> None:
    diff = architecture_mismatch(a, b)
    if diff is not None:
        key, va, vb = diff
        raise IncompatibleError(f"{what}: {key}={va!r} in {label_a}, {vb!r} in {label_b}")
