"""Where a skill came from and where it went: header metadata, base-architecture fingerprint, model card.

A skill vector is used for months after the RL run that produced it, so the file itself must say what it
is. Metadata lives in the safetensors `__metadata__` (string to string); non-string values are stored as
JSON and listed under `past.json_keys`, so a value round-trips with its type.
"""

from __future__ import annotations

import json
from pathlib import Path

from past.files import sha256_json


FORMAT = "past-skill-vector/1"
_JSON_KEYS = "past.json_keys"

# Config fields that fix the shapes and semantics of the weights. Two models whose values differ cannot
# exchange a weight delta, even where tensor shapes happen to agree (e.g. Llama vs Mistral layouts).
ARCHITECTURE_KEYS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "hidden_act",
)


# Config fields beyond the architecture that pretraining fixes and fine-tuning keeps: models of one
# architecture but another lineage (another lab's pretraining, another release) usually differ here. With
# the architecture they make the base config whose hash a skill records and injection compares (weights
# cannot be compared: the target is a fine-tune, and the base itself is not at hand).
LINEAGE_KEYS = (
    "max_position_embeddings",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "partial_rotary_factor",
    "sliding_window",
    "rms_norm_eps",
    "layer_norm_eps",
    "layer_norm_epsilon",
    "initializer_range",
)


def encode_metadata(meta: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    json_keys = []
    for key, value in meta.items():
        if isinstance(value, str):
            out[key] = value
        else:
            out[key] = json.dumps(value, sort_keys=True)
            json_keys.append(key)
    if json_keys:
        out[_JSON_KEYS] = json.dumps(sorted(json_keys))
    return out


def decode_metadata(raw: dict[str, str]) -> dict:
    json_keys = set(json.loads(raw.get(_JSON_KEYS, "[]")))
    return {k: (json.loads(v) if k in json_keys else v) for k, v in raw.items() if k != _JSON_KEYS}


def read_config(model_dir: Path) -> dict | None:
    path = Path(model_dir) / "config.json"
    return json.loads(path.read_text()) if path.is_file() else None


def architecture(config: dict) -> dict:
    """The architecture-defining subset of a Hugging Face config (nested `text_config` included)."""
    arch = {k: config[k] for k in ARCHITECTURE_KEYS if k in config}
    if isinstance(config.get("text_config"), dict):
        arch["text_config"] = architecture(config["text_config"])
    return arch


def base_config(config: dict) -> dict:
    """The architecture and lineage subset of a Hugging Face config (nested `text_config` included)."""
    out = {k: config[k] for k in ARCHITECTURE_KEYS + LINEAGE_KEYS if k in config}
    if isinstance(config.get("text_config"), dict):
        out["text_config"] = base_config(config["text_config"])
    return out


def config_hash(subset: dict) -> str:
    return sha256_json(subset)[:16]


def skill_metadata(rl_dir: Path, sft_dir: Path, user: dict | None) -> dict:
    """What extraction records about its inputs; `user` (source data hash, rounds, lambda...) wins."""
    config = read_config(sft_dir) or {}
    base = base_config(config)  # the SFT model's: a fine-tune keeps its base's (see LINEAGE_KEYS)
    meta = {
        "past.format": FORMAT,
        "base_model": str(config.get("_name_or_path") or sft_dir),
        "base_architecture": architecture(config),
        "base_config": base,
        "base_config_hash": config_hash(base),
        "rl_model": str(rl_dir),
        "sft_model": str(sft_dir),
    }  # no wall-clock time: a skill made from the same inputs is the same file (DVC hashes it)
    meta.update(user or {})
    return meta


def architecture_mismatch(a: dict, b: dict) -> tuple[str, object, object] | None:
    """The first architecture field (sorted by name) on which two architectures differ, if any."""
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key, a.get(key), b.get(key)
    return None


def write_model_card(out_dir: Path, target_dir: Path, skills: list[tuple[str, float, dict]], card: dict | None,
                     name: str | None = None) -> None:
    """README.md (human) and past_provenance.json (machine) naming target, skills and lambdas; `name` is the
    model's as published (`out_dir` may be the temporary folder it is built in)."""
    provenance = {
        "target_sft": str(target_dir),
        "skills": [
            {"path": path, "lambda": lam, **{k: meta[k] for k in _CARD_KEYS if k in meta}} for path, lam, meta in skills
        ],
        **(card or {}),
    }
    (out_dir / "past_provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    formula = " + ".join(["theta_target"] + [f"{lam:g} * v{i + 1}" for i, (_, lam, _) in enumerate(skills)])
    lines = [
        "---",
        "tags: [past, skill-vector, model-merging]",
        "---",
        "",
        f"# {name or out_dir.name}",
        "",
        "Built by Parametric Skill Transfer (`past skill inject`):",
        "",
        f"    {formula}",
        "",
        f"- target SFT model: `{target_dir}`",
    ]
    for i, s in enumerate(provenance["skills"]):
        details = ", ".join(f"{k}: {s[k]}" for k in _CARD_KEYS if k in s)
        lines.append(f"- skill v{i + 1}: `{s['path']}`, lambda = {s['lambda']:g}" + (f" ({details})" if details else ""))
    for key, value in (card or {}).items():
        lines.append(f"- {key}: {value}")
    lines += ["", "Full provenance: `past_provenance.json`.", ""]
    (out_dir / "README.md").write_text("\n".join(lines))


_CARD_KEYS = ("base_model", "base_config_hash", "rl_model", "sft_model", "source_data_hash", "rounds", "recommended_lam", "norm")
