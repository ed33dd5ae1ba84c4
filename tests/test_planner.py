"""The memory planner: model descriptions read from headers, the arithmetic's invariants, the refusal, `past plan`."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from past.cli import main
from past.config import TinyModelParams, validate_params
from past.planner import GiB, Knobs, PlanError, check_fits, check_step, describe_model, estimate, plan_step

ROOT = Path(__file__).resolve().parents[1]
TINY = TinyModelParams(hidden_size=64, num_layers=3, num_heads=4, intermediate_size=160, max_positions=96)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from past.modeling import build_tiny_llama, build_word_tokenizer, save_model

    tokenizer = build_word_tokenizer([f"w{i}" for i in range(200)])
    model = build_tiny_llama(TINY, tokenizer, seed=0)
    folder = save_model(model, tokenizer, tmp_path_factory.mktemp("tiny") / "model")
    return folder, model


def test_parameter_count_from_headers_is_the_models(tiny_folder):
    folder, model = tiny_folder
    spec = describe_model(folder)
    assert spec.params == sum(p.numel() for p in model.parameters())
    assert spec.tokens_per_word == 1.0  # word-level tokenizer
    assert (spec.layers, spec.hidden, spec.vocab, spec.context) == (3, 64, 204, 96)
    # the shapes a config implies are the shapes the checkpoint holds
    config = yaml.safe_load((folder / "config.json").read_text())
    assert dict(describe_model(config).tensors) == dict(spec.tensors)


def test_qwen2_config_implies_its_checkpoint(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(tmp_path / "q", safe_serialization=True)
    spec = describe_model(tmp_path / "q")
    assert spec.params == sum(p.numel() for p in model.parameters())  # q/k/v biases, tied head
    assert dict(describe_model(config.to_dict()).tensors) == dict(spec.tensors)


def test_builtin_qwen_sizes_are_the_published_ones():
    assert describe_model("qwen2.5-0.5b").params == 494_032_768
    assert describe_model("Qwen/Qwen2.5-7B").params == 7_615_616_512
    assert round(describe_model("qwen2.5-72b").params / 1e9, 1) == 72.7
    with pytest.raises(PlanError, match="cannot describe model"):
        describe_model("no-such/model-anywhere")


def test_module_does_not_import_torch():
    code = "import sys, past.planner; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")}).returncode == 0


def knobs(**kw) -> Knobs:
    return Knobs(**{**dict(kind="sft", batch=8, seq=64, device="cpu", bf16=False), **kw})


def test_full_fine_tuning_adamw_is_16_bytes_a_parameter(tiny_folder):
    folder, _ = tiny_folder
    spec = describe_model(folder)
    est = estimate(spec, knobs())
    static = est.static["weights"] + est.static["gradients"] + est.static["optimizer state"]
    assert static == 16 * spec.params and est.static["adapter"] == 0
    opt = est.phases["optimizer step"]  # weights + gradients + moments, nothing else on CPU with fused AdamW
    assert opt == 16 * spec.params
    assert est.total >= opt


def test_lora_shrinks_gradients_and_optimizer_to_the_adapter(tiny_folder):
    from peft import LoraConfig, get_peft_model

    folder, model = tiny_folder
    spec = describe_model(folder)
    full, lora = estimate(spec, knobs()), estimate(spec, knobs(lora_rank=8))
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    adapter = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    peft_model.unload()  # leave the fixture's model as it was
    assert lora.static["gradients"] == 4 * adapter and lora.static["optimizer state"] == 8 * adapter
    assert lora.static["adapter"] == 4 * adapter and lora.static["weights"] == full.static["weights"]
    assert lora.static["gradients"] < full.static["gradients"] / 5
    assert lora.total < full.total


def test_micro_batch_scales_activations_and_logits(tiny_folder):
    folder, _ = tiny_folder
    spec = describe_model(folder)
    whole, half = estimate(spec, knobs(batch=8)), estimate(spec, knobs(batch=8, micro_batch=4))
    assert half.knobs.passes == 2 and half.knobs.pass_batch == 4
    assert half.terms["activations"] == pytest.approx(whole.terms["activations"] / 2, rel=0.01)
    tiles = "LM head (fused logits tiles)"
    assert half.terms[tiles] == pytest.approx(whole.terms[tiles] / 2, rel=0.01)
    assert half.terms["gradients (earlier passes)"] == half.static["gradients"]  # accumulation holds them
    # GRPO: the global batch stays prompts x generations; only what one pass holds shrinks
    g = estimate(spec, knobs(kind="grpo", batch=32, seq=24, completion=8, micro_batch=8))
    g_whole = estimate(spec, knobs(kind="grpo", batch=32, seq=24, completion=8))
    assert g.knobs.passes == 4 and g.phases["forward/backward"] < g_whole.phases["forward/backward"]


def test_checkpointing_bf16_and_reference_model(tiny_folder):
    folder, _ = tiny_folder
    spec = describe_model(folder)
    base = knobs(batch=16, seq=96)
    assert estimate(spec, replace(base, checkpointing=True)).total < estimate(spec, base).total
    bf16 = estimate(spec, replace(base, bf16=True))
    assert bf16.terms["autocast bf16 copies"] == 2 * spec.linear_params
    grpo = knobs(kind="grpo", batch=16, seq=40, completion=16)
    with_ref = estimate(spec, replace(grpo, beta=0.04))
    assert with_ref.terms["reference model"] == 4 * spec.params
    assert "reference model" not in estimate(spec, replace(grpo, beta=0.04, lora_rank=8)).terms  # adapter off


def qwen7b_params(**train):
    return validate_params({"base": {"model": "Qwen/Qwen2.5-7B"}, "train": train,
                            "source_sft": {"batch_size": 16},
                            "skill_rl": {"grpo": {"prompts_per_step": 16, "num_generations": 8,
                                                  "max_new_tokens": 64}}})


def test_refusal_names_the_knobs():
    est = plan_step(qwen7b_params(), "qwen2.5-7b", "source_sft", device="cuda")  # whole context: 131072 tokens
    assert est.knobs.seq == 131072
    with pytest.raises(PlanError) as err:
        check_fits(est, 141 * GiB, "--gpu-gib 141")
    text = str(err.value)
    assert text.startswith("source_sft: needs about") and "141.0 GiB limit (--gpu-gib 141)" in text
    assert "largest terms: activations" in text
    assert "train.max_length" in text and "train.micro_batch_size" in text
    # GRPO with a KL reference: the reference copy and the knobs that drop it are named
    params = validate_params({"skill_rl": {"grpo": {"beta": 0.04, "prompts_per_step": 16, "num_generations": 8,
                                                    "max_new_tokens": 64}}})
    grpo = plan_step(params, "qwen2.5-7b", "skill_rl", device="cuda", prompt_tokens=64)
    with pytest.raises(PlanError) as err:
        check_fits(grpo, 141 * GiB)
    assert "skill_rl.grpo.beta: 0" in str(err.value) and "lora.rank: 16" in str(err.value)
    assert check_fits(grpo, 1000 * GiB) is grpo


def test_check_step_uses_the_memory_limit_knob():
    short = dict(sft_tokens=512)
    with pytest.raises(PlanError, match="train.memory_limit_gib"):
        check_step(qwen7b_params(memory_limit_gib=80.0), "qwen2.5-7b", "source_sft", device="cuda", **short)
    fits = check_step(qwen7b_params(memory_limit_gib=80.0, optimizer="adamw_8bit"),
                      "qwen2.5-7b", "source_sft", device="cuda", sft_tokens=512)
    assert fits.total <= 80 * GiB
    # on CPU without memory_limit_gib there is nothing to check against
    assert check_step(qwen7b_params(), "qwen2.5-7b", "source_sft", device="cpu", **short).knobs.device == "cpu"


def test_past_plan_prints_a_table_per_step(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "tests/params_small.yaml").read_text())
    assert main(["plan", "--params", str(params), "--gpu-gib", "141"]) == 0
    out = capsys.readouterr().out
    for step in ("base", "source_sft", "skill_rl", "target_sft", "oracle", "adapt_sft"):
        assert f"\n{step} (" in out
    assert "model tiny:" in out and "at the peak (" in out and "total" in out and "every step fits" in out

    assert main(["plan", "--params", str(params), "--model", "qwen2.5-7b", "--gpu-gib", "100",
                 "-S", "train.max_length=1024"]) == 1
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out and "lora.rank: 16" in out

    # a tiny model whose vocabulary cannot be known without the prepared data
    assert main(["plan", "--params", str(params), "-S", "prepare.source=squad"]) == 2
    assert "vocabulary.json is missing" in capsys.readouterr().err


def test_a_training_step_that_will_not_fit_is_refused_before_anything_loads(tmp_path):
    """steps.target_sft with a memory limit far below the estimate: PlanError naming a knob, no output."""
    from past import steps
    from past.config import validate_params
    from past.knowledge.format import KnowledgeSet
    from past.modeling import build_tiny_llama, build_word_tokenizer, save_model
    from past.planner import PlanError

    words = "ann was born in kelm".split()
    tokenizer = build_word_tokenizer(words)
    base = save_model(build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=2, num_heads=2,
                                                       intermediate_size=64), tokenizer, 0), tokenizer, tmp_path / "base")
    target = KnowledgeSet("t", "qa", [{"id": "d", "title": "ann", "text": "ann was born in kelm"}], [])
    params = validate_params({"train": {"memory_limit_gib": 0.0001}, "target_sft": {"steps": 1, "batch_size": 1}})
    with pytest.raises(PlanError) as refused:
        steps.target_sft(params, base, target, tmp_path / "target_sft")
    message = str(refused.value)
    assert "target_sft" in message and "train.memory_limit_gib" in message
    assert any(knob in message for knob in ("train.micro_batch_size", "lora.rank", "train.optimizer"))
    assert not (tmp_path / "target_sft").exists()


# ------------------------------------------------------------------------------------------ launcher_layout

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("launcher, layout", [
    ("python", (1, "none")),
    ("/usr/bin/python3", (1, "none")),
    ("torchrun --nproc_per_node 8", (8, "none")),
    ("torchrun --nproc-per-node=4 --nnodes 2", (8, "none")),
    ("torchrun", (1, "none")),  # torchrun's default: one process per node
    ("python -m torch.distributed.run --nproc_per_node 2", (2, "none")),
    ("accelerate launch --config_file configs/accelerate/ddp.yaml", (8, "none")),
    ("accelerate launch --config_file configs/accelerate/fsdp2.yaml", (8, "fsdp")),
    ("accelerate launch --config-file=configs/accelerate/zero3.yaml", (8, "fsdp")),
    ("accelerate launch --config_file configs/accelerate/fsdp2.yaml --num_processes 16", (16, "fsdp")),
])
def test_launcher_layout_of_the_shipped_launchers(launcher, layout):
    from past.planner import launcher_layout

    assert launcher_layout(launcher, REPO) == layout


def test_launcher_layout_reads_the_config_it_is_given(tmp_path):
    from past.planner import launcher_layout

    (tmp_path / "z2.yaml").write_text("distributed_type: DEEPSPEED\nnum_processes: 16\nnum_machines: 2\n"
                                      "deepspeed_config: {zero_stage: 2}\n")
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 3}}')
    (tmp_path / "dsfile.yaml").write_text("distributed_type: DEEPSPEED\nnum_processes: 4\n"
                                          "deepspeed_config: {deepspeed_config_file: ds.json}\n")
    # num_processes is the total over machines; ZeRO-2 keeps whole weights: the unsharded model
    assert launcher_layout("accelerate launch --config_file z2.yaml", tmp_path) == (16, "none")
    assert launcher_layout("accelerate launch --config_file dsfile.yaml", tmp_path) == (4, "fsdp")


def test_check_step_reads_the_launchers_config_in_the_projects_home(tmp_path, monkeypatch):
    """The adapt flow checks its SFT in a worker whose folder is not the project's: an accelerate config named
    relative to the project is read there (`root`), not in the worker's folder."""
    params = qwen7b_params(launcher="accelerate launch --config_file configs/accelerate/fsdp2.yaml",
                           memory_limit_gib=80.0)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlanError, match=re.escape("configs/accelerate/fsdp2.yaml")):
        check_step(params, "qwen2.5-7b", "source_sft", device="cuda", sft_tokens=512)
    sharded = check_step(params, "qwen2.5-7b", "source_sft", device="cuda", sft_tokens=512, root=REPO)
    alone = check_step(qwen7b_params(memory_limit_gib=1000.0), "qwen2.5-7b", "source_sft", device="cuda",
                       sft_tokens=512)
    assert sharded.total < alone.total / 4  # fsdp2.yaml: 8 processes, full shard


@pytest.mark.parametrize("launcher, says", [
    ("torchrun --nproc_per_node gpu", "--nproc_per_node 'gpu'"),
    ("torchrun --nproc_per_node 8 --nnodes 1:4", "--nnodes '1:4'"),
    ("accelerate launch", "--config_file"),
    ("accelerate launch --config_file missing.yaml", "missing.yaml"),
    ("deepspeed train.py", "the planner knows"),
    ("", "empty"),
])
def test_launcher_layout_refuses_what_it_cannot_count(launcher, says, tmp_path):
    from past.planner import launcher_layout

    with pytest.raises(PlanError, match=re.escape(says)):
        launcher_layout(launcher, tmp_path)


def test_vllm_colocate_takes_its_share_of_the_device_and_sleep_gives_it_back():
    """On a GPU GRPO samples with vLLM colocated: it holds gpu_memory_utilization of the device (the trainer's step
    fits in the rest) instead of the trainer's own KV cache; asleep it keeps 10% of that while the trainer trains."""
    limit = 80 * GiB
    rl = {"prompts_per_step": 16, "num_generations": 8, "max_new_tokens": 64}
    off = validate_params({"skill_rl": {"grpo": {**rl, "vllm": {"mode": "off"}}}})
    colocate = validate_params({"skill_rl": {"grpo": rl}})  # auto: colocate on cuda
    asleep = validate_params({"skill_rl": {"grpo": {**rl, "vllm": {"sleep": True}}}})
    plan = lambda p, device="cuda", **kw: plan_step(p, "qwen2.5-0.5b", "skill_rl", device=device,  # noqa: E731
                                                    prompt_tokens=64, **kw)
    base, awake, slept = plan(off, device_bytes=limit), plan(colocate, device_bytes=limit), plan(asleep,
                                                                                                device_bytes=limit)
    share = int(0.3 * limit)
    assert awake.knobs.sampler == "colocate" and base.knobs.sampler == "generate"
    for phase in ("forward/backward", "optimizer step"):
        assert awake.phases[phase] == base.phases[phase] + share  # the trainer's own terms are unchanged
        assert slept.phases[phase] == base.phases[phase] + int(0.1 * share)
    # generation: vLLM awake, the trainer holds weights and optimizer state (no KV cache, no sampling logits)
    assert awake.phases["generation"] == slept.phases["generation"] < base.phases["generation"] + share
    assert plan(colocate, device="cpu").knobs.sampler == "generate"  # auto on CPU: transformers' generate
    unknown = plan(colocate)
    assert "vLLM (colocate)" not in unknown.terms and any("vLLM colocate takes 0.3" in n for n in unknown.notes)
    # the check counts it: a limit the trainer alone fits is refused with vLLM's share, and sleep is offered
    tight = int(base.total * 1.2)
    assert check_fits(base, tight) is base
    with pytest.raises(PlanError) as err:
        check_step(colocate, "qwen2.5-0.5b", "skill_rl", device="cuda", limit_bytes=tight, prompt_tokens=64)
    assert "vLLM (colocate)" in str(err.value) and "skill_rl.grpo.vllm.sleep: true" in str(err.value)
