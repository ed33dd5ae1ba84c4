"""Models and tokenizers: word-level tokenizer, tiny Llama, safe loading from folders or hub ids."""

import pytest
import torch

from past.config import TinyModelParams
from past.modeling import build_tiny_llama, build_word_tokenizer, load_model, load_state, save_model
from past.training.pretrain import load_pretrained_base

SMALL = TinyModelParams(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_positions=32)


@pytest.fixture
def saved(tmp_path):
    tokenizer = build_word_tokenizer(["ann", "was", "born", "in", "kelm", "."])
    model = build_tiny_llama(SMALL, tokenizer, seed=0)
    return save_model(model, tokenizer, tmp_path / "tiny"), model, tokenizer


def test_tokenizer_round_trips_words_and_starts_with_bos(saved):
    _, _, tokenizer = saved
    ids = tokenizer("ann was born in kelm .")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and len(ids) == 7
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ann was born in kelm ."
    assert tokenizer.convert_ids_to_tokens(tokenizer("zork")["input_ids"])[1] == "<unk>"


def test_saved_folder_reloads_identically_through_the_hub_loading_path(saved):
    folder, model, _ = saved
    assert (folder / "model.safetensors").exists() and not list(folder.glob("*.bin"))
    reloaded, tokenizer, published = load_pretrained_base(str(folder))  # from_pretrained takes folders like hub ids
    assert published == torch.float32 and reloaded.dtype == torch.float32
    assert not reloaded.config.tie_word_embeddings
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    assert load_state(folder).keys() == model.state_dict().keys()
    assert tokenizer.padding_side == "left"


def test_pickle_only_checkpoints_are_refused(saved, tmp_path):
    folder, model, _ = saved
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="only pickle checkpoints .*pytorch_model.bin.*safetensors only"):
        load_model(pickled)


def test_failed_save_keeps_the_previous_model(saved):
    folder, model, tokenizer = saved
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(AttributeError):
        save_model(model, object(), folder)  # the tokenizer save fails half way
    assert (folder / "model.safetensors").read_bytes() == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tiny")]


def test_a_served_dtype_is_stored_while_the_model_in_memory_stays_fp32(saved, tmp_path):
    from safetensors import safe_open

    from past.modeling import save_dtype, save_model, stored_dtype

    folder, model, tokenizer = saved
    half = save_model(model, tokenizer, tmp_path / "bf16", dtype=torch.bfloat16)
    with safe_open(half / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert model.dtype == torch.float32 and str(model.config.dtype).removeprefix("torch.") == "float32"  # still fp32
    assert stored_dtype(half) == torch.bfloat16 and stored_dtype(folder) == torch.float32
    assert save_dtype("auto", half) == torch.bfloat16 and save_dtype("fp32", half) == torch.float32
    reloaded, _, published = load_pretrained_base(str(half))
    assert published == torch.bfloat16 and reloaded.dtype == torch.float32  # master weights: fp32
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor.to(torch.bfloat16).float()), name


@pytest.mark.parametrize("typo", ["models/no_such_model", "./no_such_model", "/no/such/model", "a/b/c"])
@pytest.mark.reliability(6, '`base.model: models/no_such_model` (a typo)', 'a missing folder, no hub request')
def test_a_missing_local_path_is_named_not_sent_to_the_hub(typo, tmp_path, monkeypatch):
    """A path-like base.model that does not exist is a missing folder: no hub request (which offline fails naming
    no path, and online waits first), through the base step as the stage runs it."""
    from past import steps
    from past.config import validate_params
    from past.errors import DataError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(DataError, match=f"{typo}: no such model folder"):
        steps.base(validate_params({"base": {"model": typo}}), tmp_path / "world", tmp_path / "models/base")
    assert not (tmp_path / "models/base").exists()


def test_hub_ids_stay_hub_ids():
    from past.modeling import looks_like_path

    assert not looks_like_path("Qwen/Qwen2.5-7B") and not looks_like_path("gpt2")


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
@pytest.mark.reliability(7, 'a model folder whose config carries `auto_map`', 'refused by name, nothing copied')
def test_a_model_carrying_custom_code_is_refused_by_name(saved, tmp_path, file):
    """auto_map names Python classes shipped with the model: refused (never run, never copied into models/base)."""
    import json
    import shutil

    from past.errors import DataError
    from past.training.pretrain import load_pretrained_base

    folder = tmp_path / "custom"
    shutil.copytree(saved[0], folder)
    config = json.loads((folder / file).read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / file).write_text(json.dumps(config))
    with pytest.raises(DataError, match=rf"{file}: auto_map \['AutoModelForCausalLM'\] points at custom code"):
        load_pretrained_base(str(folder))
