"""Streaming extract/inject against theta_T + lambda (theta_rl - theta_sft) computed directly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import LlamaForCausalLM

from past.skills import SkillVector, delta_cosines, extract_skill, inject
from skills_fixtures import family, load_weights

FP32_TOL = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(params=[torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def models(request, tmp_path_factory):
    return family(tmp_path_factory, request.param)


def expected(models, lams, skills=("rl_s",)):
    """theta_T + sum lam_i (theta_rl_i - theta_sft_S), in fp32, from the reference safetensors reader."""
    t, s = load_weights(models["sft_t"]), load_weights(models["sft_s"])
    out = {n: x.float() for n, x in t.items()}
    for lam, skill in zip(lams, skills):
        r = load_weights(models[skill])
        for n in out:
            out[n] += lam * (r[n].float() - s[n].float())
    return out


def test_inputs_are_sharded(models):
    assert len(list(models["sft_t"].glob("*.safetensors"))) >= 3
    assert (models["sft_t"] / "model.safetensors.index.json").exists()


def test_extract_then_inject_matches_direct_formula(models, tmp_path):
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v.safetensors")
    out = inject(models["sft_t"], [skill], [0.7], tmp_path / "out", max_shard_size="4KB")
    want = expected(models, [0.7])
    got = load_weights(out)
    assert set(got) == set(want)
    dtype = next(iter(load_weights(models["sft_t"]).values())).dtype
    for name, w in want.items():
        assert got[name].dtype == dtype
        if dtype == torch.float32:
            torch.testing.assert_close(got[name], w, **FP32_TOL)
        else:  # one rounding of the fp32 result: w.to(bf16), up to fp32 ties (<1% of values, 1 ulp)
            torch.testing.assert_close(got[name].float(), w, rtol=2**-8, atol=1e-7)
            assert (got[name] != w.to(dtype)).float().mean() < 0.01, name
    assert len(list(out.glob("model-*.safetensors"))) >= 3
    assert json.loads((out / "model.safetensors.index.json").read_text())["weight_map"].keys() == want.keys()


def test_skill_file_is_exact_fp32_difference(models, tmp_path):
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v.safetensors", {"rounds": 3, "source_data_hash": "abc"})
    r, s = load_weights(models["rl_s"]), load_weights(models["sft_s"])
    with safe_open(skill, "pt") as f:
        for name in r:
            assert torch.equal(f.get_tensor(name), r[name].float() - s[name].float()), name
    v = SkillVector.load(skill)
    assert v.metadata["rounds"] == 3 and v.metadata["source_data_hash"] == "abc"
    assert v.metadata["base_architecture"]["hidden_size"] == 16
    assert v.metadata["norm"] == pytest.approx(v.norm(), rel=1e-5)
    name = "model.layers.1.mlp.up_proj.weight"
    assert v.metadata["tensor_norms"][name] == pytest.approx(torch.linalg.vector_norm(v[name]).item(), rel=1e-5)


def test_composition_of_two_skills(models, tmp_path):
    v1 = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v1.safetensors")
    v2 = extract_skill(models["base"], models["sft_s"], tmp_path / "v2.safetensors")
    out = inject(models["sft_t"], [v1, v2], [0.5, -0.25], tmp_path / "out", dtype="fp32")
    want = expected(models, [0.5, -0.25], skills=("rl_s", "base"))
    got = load_weights(out)
    for name, w in want.items():
        torch.testing.assert_close(got[name], w, **FP32_TOL)


def test_output_folder_is_a_loadable_model_with_card(models, tmp_path):
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v.safetensors", {"recommended_lam": 0.5})
    out = inject(models["sft_t"], [skill], [0.5], tmp_path / "out", dtype="fp32", card={"run": "unit-test"})
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert (out / "tokenizer_config.json").exists() and (out / "generation_config.json").exists()
    card = (out / "README.md").read_text()
    assert "\n# out\n" in card  # titled as published, not after the temporary folder it was built in
    assert str(skill) in card and "lambda = 0.5" in card and str(models["sft_t"]) in card and "unit-test" in card
    prov = json.loads((out / "past_provenance.json").read_text())
    assert prov["skills"][0]["lambda"] == 0.5 and prov["skills"][0]["recommended_lam"] == 0.5
    model = LlamaForCausalLM.from_pretrained(out)
    want = expected(models, [0.5])
    for name, p in model.state_dict().items():
        torch.testing.assert_close(p, want[name], **FP32_TOL)
    assert not list(tmp_path.glob(".out.*"))  # no temporary sibling left (files.atomic_path)


def test_skill_vector_identities(models):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    w = SkillVector.from_models(models["base"], models["sft_s"])
    assert (v + (-v)).norm() == 0.0
    assert ((0.5 * v + v * 0.5) - v).norm() == 0.0
    torch.testing.assert_close((v + w)[v.names[0]], v[v.names[0]] + w[v.names[0]])
    assert (v - w).norm() == pytest.approx((v + (-1) * w).norm())
    assert (2 * v).norm() == pytest.approx(2 * v.norm())


def test_apply_to_folder_state_dict_and_module_agree_with_inject(models, tmp_path):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    want = load_weights(inject(models["sft_t"], [v.save(tmp_path / "v.safetensors")], [0.3], tmp_path / "out"))
    from_dir = v.apply_to(models["sft_t"], 0.3)
    state = load_weights(models["sft_t"])
    before = {n: t.clone() for n, t in state.items()}
    from_state = v.apply_to(state, 0.3)
    model = LlamaForCausalLM.from_pretrained(models["sft_t"])
    assert v.apply_to(model, 0.3) is model
    from_module = model.state_dict()
    for name, w in want.items():
        assert torch.equal(from_dir[name], w), name
        assert torch.equal(from_state[name], w), name
        torch.testing.assert_close(from_module[name].to(w.dtype), w, **FP32_TOL)
        assert torch.equal(state[name], before[name])  # the input state dict is untouched


def test_apply_to_tied_module(tmp_path_factory):
    tied = family(tmp_path_factory, torch.float32, tie_word_embeddings=True)
    v = SkillVector.from_models(tied["rl_s"], tied["sft_s"])
    assert "lm_head.weight" not in v.names
    model = LlamaForCausalLM.from_pretrained(tied["sft_t"])
    before = model.model.embed_tokens.weight.detach().clone()
    v.apply_to(model, 1.0)
    torch.testing.assert_close(model.model.embed_tokens.weight, before + v["model.embed_tokens.weight"])
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    state = v.apply_to(LlamaForCausalLM.from_pretrained(tied["sft_t"]).state_dict(), 1.0)
    assert state["lm_head.weight"] is state["model.embed_tokens.weight"]


def test_delta_cosines(models):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    w = SkillVector.from_models(models["sft_t"], models["base"])
    assert delta_cosines(v, v)["overall"] == pytest.approx(1.0)
    assert delta_cosines(v, -v)["overall"] == pytest.approx(-1.0)
    c = delta_cosines(v, w)
    a, b = torch.cat([v[n].flatten() for n in v.names]), torch.cat([w[n].flatten() for n in v.names])
    assert c["overall"] == pytest.approx(torch.nn.functional.cosine_similarity(a, b, dim=0).item(), abs=1e-5)
    assert abs(c["overall"]) < 0.2  # independent random deltas are near-orthogonal
    name = "model.layers.0.self_attn.q_proj.weight"
    assert c["per_tensor"][name] == pytest.approx(
        torch.nn.functional.cosine_similarity(v[name].flatten(), w[name].flatten(), dim=0).item(), abs=1e-5)


def test_many_small_blocks_and_early_mapping_release(models, tmp_path, monkeypatch):
    """Blocks of a few rows, computed out of order across workers, and mappings released every few KB."""
    from past.skills import safetensors_io, sources

    monkeypatch.setattr(sources, "BLOCK_ELEMENTS", 100)  # 3 rows of 32, or 6 of 16: dozens of blocks per tensor
    monkeypatch.setattr(safetensors_io, "_RELEASE_BYTES", 1000)  # madvise(DONTNEED) under views still in use
    skill = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "v.safetensors")
    got = load_weights(inject(models["sft_t"], [skill], [0.7], tmp_path / "out", dtype="fp32"))
    for name, w in expected(models, [0.7]).items():
        torch.testing.assert_close(got[name], w, **FP32_TOL)


def test_apply_to_module_with_grad_enabled_leaves_no_graph(models):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    model = LlamaForCausalLM.from_pretrained(models["sft_t"])
    v.apply_to(model, 1.0)  # called without torch.no_grad(): parameters require grad
    for p in model.parameters():
        assert p.requires_grad and p.grad_fn is None and p.is_leaf
    state = v.apply_to({n: p for n, p in model.named_parameters()}, 1.0)
    assert all(t.grad_fn is None for t in state.values())


def test_skill_norms_are_the_same_whatever_blas_kernel_the_cpu_picks(tmp_path_factory, tmp_path):
    """OpenBLAS picks its float32 dot kernel by CPU, and its kernels sum in different orders: the skill's norms (its
    metadata, so its bytes) came out different on another machine. A skill extracted under the oldest kernel
    (Prescott: SSE3, runs on any x86-64) and under this CPU's own must be the same file, with norms as exact as
    float64 sums (numpy's float32 np.dot is off by ~1e-7 relative)."""
    import math
    import os
    import platform
    import subprocess
    import sys

    import numpy as np

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("OPENBLAS_CORETYPE names x86 kernels")
    models = family(tmp_path_factory, torch.float32, vocab_size=512, hidden_size=64, intermediate_size=256)
    files = {}
    for kernel in ("Prescott", ""):
        out = tmp_path / f"v-{kernel or 'native'}.safetensors"
        code = "import sys; from past.skills import extract_skill; extract_skill(*sys.argv[1:4])"
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        subprocess.run([sys.executable, "-c", code, str(models["rl_s"]), str(models["sft_s"]), str(out)], check=True,
                       env={**env, **({"OPENBLAS_CORETYPE": kernel} if kernel else {})})
        files[kernel] = out.read_bytes()
    assert files["Prescott"] == files[""]
    r, s = load_weights(models["rl_s"]), load_weights(models["sft_s"])
    with safe_open(tmp_path / "v-native.safetensors", "pt") as f:
        norms = json.loads(f.metadata()["tensor_norms"])
    for name in r:
        v = (r[name] - s[name]).flatten().numpy().astype(np.float64)
        exact = math.sqrt(math.fsum(v * v))  # the float32 differences' squares are exact in float64
        assert norms[name] == pytest.approx(exact, rel=1e-13), name
