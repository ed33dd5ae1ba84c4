"""LoRA (PEFT) in the training steps, for real on tiny Llamas: SFT merges its adapter into full weights, the
GRPO skill is an adapter that the skill engine extracts exactly as PEFT merges it, and iterative refinement
with LoRA starts each round from a saved folder that the adapter records by its final path."""

import json

import pytest
import torch

from pipeline_params import SMALL_WORLD
from past.config import GRPOParams, LoraParams, SFTParams, TinyModelParams, TrainParams, validate_params
from past.modeling import build_tiny_llama, build_word_tokenizer, load_model, save_model
from past.skills import SkillVector, extract_skill
from past.training.arguments import TrainingRun, batch_split
from past.training.grpo import run_grpo
from past.training.refinement import save_adapter
from past.training.sft import run_sft

WORDS = "question answer : ? where was ann bob cy dee born kelm tras vorn zu".split()
FACTS = {"ann": "kelm", "bob": "tras", "cy": "vorn", "dee": "zu"}
QUESTIONS = [{"id": n, "question": f"where was {n} born ?", "answers": [c]} for n, c in FACTS.items()]
LORA = TrainingRun(lora=LoraParams(rank=4, alpha=8.0))


def tiny():
    tokenizer = build_word_tokenizer(WORDS)
    model = build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                             max_positions=32), tokenizer, seed=0)
    return model, tokenizer


def test_the_global_batch_does_not_depend_on_the_micro_batch():
    assert batch_split(32, 0) == (32, 1) and batch_split(32, 8) == (8, 4) and batch_split(256, 16) == (16, 16)
    with pytest.raises(ValueError, match="train.micro_batch_size: 12 x 1 process"):
        batch_split(32, 12)


def test_micro_batches_train_the_same_model_as_one_batch():
    texts = [f"question : where was {n} born ? answer : {c}" for n, c in FACTS.items()]
    models = []
    for micro in (0, 2):
        model, tokenizer = tiny()
        run = TrainingRun(train=TrainParams(micro_batch_size=micro, precision="fp32"))
        models.append(run_sft(model, tokenizer, texts, SFTParams(steps=5, lr=1e-2, batch_size=4), 0, run))
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name  # gradient accumulation: the same steps, summed in two halves


def test_lora_sft_changes_only_adapted_matrices_and_returns_full_weights(tmp_path):
    model, tokenizer = tiny()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    texts = [f"question : where was {n} born ? answer : {c}" for n, c in FACTS.items()]
    trained = run_sft(model, tokenizer, texts, SFTParams(steps=20, lr=1e-2, batch_size=4), 0, LORA)
    assert type(trained).__name__ == "LlamaForCausalLM"  # merged: SFT stores knowledge in full weights
    state = trained.state_dict()
    assert set(state) == set(start)
    changed = {k for k in state if not torch.equal(state[k], start[k])}
    assert any(".self_attn.q_proj." in k for k in changed) and any(".mlp.down_proj." in k for k in changed)
    assert not {k for k in changed if "embed_tokens" in k or "lm_head" in k or "norm" in k}  # all-linear: not these


def test_the_lora_skill_is_an_adapter_and_extraction_equals_peft_merge(tmp_path):
    model, tokenizer = tiny()
    texts = [f"question : where was {n} born ? answer : {c}" for n, c in FACTS.items()]
    model = run_sft(model, tokenizer, texts, SFTParams(steps=30, lr=1e-2, batch_size=4), 0)  # some reward to learn from
    start = save_model(model, tokenizer, tmp_path / "sft")
    model = load_model(start)
    grpo = GRPOParams(steps=3, lr=5e-2, prompts_per_step=4, num_generations=4, max_new_tokens=2)
    rl, curve = run_grpo(model, tokenizer, QUESTIONS, "question : {question} answer :", grpo, 0, run=LORA)
    assert len(curve) == 3 and type(rl).__name__.startswith("Peft")
    adapter = save_adapter(rl, tmp_path / "rl", base=start)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(start) and config["r"] == 4
    assert not list(adapter.glob("model*.safetensors"))  # only the adapter is stored: a small skill artifact
    skill = SkillVector.load(extract_skill(adapter, start, tmp_path / "v.safetensors"))
    merged = rl.merge_and_unload().state_dict()
    base = load_model(start).state_dict()
    assert skill.norm() > 0
    for name in base:
        assert torch.allclose(skill[name], merged[name] - base[name], atol=1e-6), name


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from past import steps

    params = validate_params({
        **SMALL_WORLD,
        "source_sft": {"steps": 10, "batch_size": 8},
        "skill_rl": {"rounds": 2, "grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 4}},
        "lora": {"rank": 4, "alpha": 8.0},
    })
    root = tmp_path_factory.mktemp("lora-world")
    steps.prepare(params, root / "world")
    steps.base(params, root / "world", root / "base")
    return params, root


def test_two_round_refinement_with_lora_starts_from_saved_folders(world):
    from past import steps
    from past.knowledge.format import read_knowledge_set

    params, root = world
    source = read_knowledge_set(root / "world/source")
    steps.source_sft(params, root / "base", source, root / "source_sft")
    work = root / ".work/skill_rl"  # as the stage runs it: built in its work folder, published by one rename
    run = steps.skill_rl(params, root / "base", root / "source_sft", source, root / "skill_rl",
                         run=steps.training_run(params, work=work))
    assert [r["round"] for r in run.rounds] == [1, 2]
    for k, start in ((1, root / "skill_rl/round_1/sft"), (2, root / "skill_rl/round_2/start")):
        config = json.loads((root / f"skill_rl/round_{k}/rl/adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == str(start) and start.is_dir()  # the real, final folder
    assert not (root / "skill_rl/round_1/start").exists()
    assert not list(root.glob(".skill_rl*")) and not work.exists()  # the folder it was built in is gone
    # round 2 started from sft_2 + v_1, saved exactly: its start minus its sft is v_1
    v1 = SkillVector.from_models(root / "skill_rl/round_1/rl", root / "skill_rl/round_1/sft")
    start_delta = SkillVector.from_models(root / "skill_rl/round_2/start", root / "skill_rl/round_2/sft")
    for name in v1.names:
        assert torch.allclose(start_delta[name], v1[name], atol=1e-6), name
    # v_2 = rl_2 - sft_2 = v_1 + round 2's adapter update, which touches only the adapted (linear) matrices
    v2 = SkillVector.load(steps.extract(run, root / "skill.safetensors", {"rounds": 2}))
    assert set(v2.names) == set(v1.names)
    for name in v1.names:
        if "embed_tokens" in name or "lm_head" in name or "norm" in name:
            assert torch.allclose(v2[name], v1[name], atol=1e-6), name
