"""Load and save models and tokenizers; the embedded tiny Llama and its word-level tokenizer.

Loading is safe by default: safetensors only (never pickle) and `trust_remote_code` off, for local
folders and hub ids alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from past.config import TinyModelParams
from past.errors import DataError
from past.files import PICKLE_SUFFIXES, atomic_dir

SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<bos>", "eos_token": "<eos>"}


def set_threads(threads: int) -> None:
    """One torch thread per process: on shared 2-core machines two threads ran ten times slower."""
    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_word_tokenizer(vocabulary: list[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a closed vocabulary; every sequence starts with <bos>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(list(SPECIALS.values()) + sorted(set(vocabulary)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIALS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **SPECIALS)
    tokenizer.padding_side = "left"  # batched generation appends to the right of every prompt
    return tokenizer


def build_tiny_llama(params: TinyModelParams, tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=params.hidden_size, intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_layers, num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads, max_position_embeddings=params.max_positions,
        tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def looks_like_path(source: str | Path) -> bool:
    """Whether a model reference names a local folder rather than a hub id (`org/name`): it starts with . / ~,
    has more than one slash, or its first part is a folder here (`models/base_typo` when ./models exists)."""
    text = str(source)
    if isinstance(source, Path) or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        return True
    return "/" in text and Path(text.split("/")[0]).is_dir()


def checked_source(source: str | Path) -> str:
    """The reference, once it is known not to be a missing folder (a typo must not become a hub request that
    fails, or waits, naming no path) nor a folder carrying custom code."""
    folder = Path(str(source)).expanduser()
    if folder.is_dir():
        for name in ("config.json", "tokenizer_config.json"):
            if (folder / name).is_file():
                refuse_custom_code(json.loads((folder / name).read_text(encoding="utf-8")), folder / name)
        return str(folder)
    if looks_like_path(source):
        raise DataError(f"{source}: no such model folder (a local path; hub ids look like org/name)")
    return str(source)


def refuse_custom_code(config: dict, where) -> None:
    """`auto_map` names Python classes shipped with a model: past never runs custom code (trust_remote_code is
    off), and must not copy the entries into the folders it saves either, where a later loader might run them."""
    if config.get("auto_map"):
        raise DataError(f"{where}: auto_map {sorted(config['auto_map'])} points at custom code; past loads only "
                        "architectures transformers ships (remove auto_map, or use a model without custom code)")


def load_model(source: str | Path, dtype: torch.dtype = torch.float32):
    """A causal LM from a local folder or hub id; refuses pickle-only checkpoints and custom code."""
    source = checked_source(source)
    folder = Path(source)
    if folder.is_dir():
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles and not any(p.suffix == ".safetensors" for p in folder.iterdir()):
            raise ValueError(f"{folder}: only pickle checkpoints ({', '.join(pickles)}); "
                             "past loads safetensors only")
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    refuse_custom_code(model.config.to_dict(), f"{source}: config")  # a hub model's, read only once downloaded
    return model


def load_tokenizer(source: str | Path):
    source = checked_source(source)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    refuse_custom_code(tokenizer.init_kwargs, f"{source}: tokenizer")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def save_model(model, tokenizer, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Save as a normal Hugging Face folder (safetensors), atomically: a failure keeps the old one.

    With `dtype`, the weights are stored in it (the model in memory keeps its own: training goes on in fp32).
    """
    with atomic_dir(folder) as tmp:
        if dtype is None or dtype == model.dtype:
            model.save_pretrained(tmp, safe_serialization=True)
        else:
            state = {name: tensor.to(dtype) for name, tensor in model.state_dict().items()}
            model.save_pretrained(tmp, safe_serialization=True, state_dict=state)
            config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))  # it names the model's dtype
            config["dtype"] = str(dtype).removeprefix("torch.")
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tokenizer.save_pretrained(tmp)
    return Path(folder)


def hub_dtype(source: str | Path) -> torch.dtype:
    """The dtype a hub model (or local folder) is published in, read from its config alone."""
    from transformers import AutoConfig

    dtype = getattr(AutoConfig.from_pretrained(str(source), trust_remote_code=False), "dtype", None)
    return DTYPES.get(str(dtype).removeprefix("torch."), torch.float32) if dtype is not None else torch.float32


def stored_dtype(folder: str | Path) -> torch.dtype:
    """The dtype a saved model folder's config declares (fp32 when it says nothing)."""
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    return DTYPES.get(str(config.get("dtype") or config.get("torch_dtype") or "float32"), torch.float32)


def save_dtype(knob: str, base: str | Path) -> torch.dtype:
    """`train.save_dtype` resolved: `auto` is the dtype the base model was stored in."""
    return stored_dtype(base) if knob == "auto" else DTYPES[knob]


def load_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a saved model folder as fp32, by name (small models only)."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for shard in sorted(Path(folder).glob("*.safetensors")):
        state.update({k: v.float() for k, v in load_file(shard).items()})
    if not state:
        raise FileNotFoundError(f"{folder}: no .safetensors files")
    return state
