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
