"""The `past skill` commands end to end on tiny models, checking the numbers they produce."""

from __future__ import annotations

import json

import pytest
import torch

from past.cli import build_parser, main
from past.skills import SkillVector
from skills_fixtures import family, load_weights


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return family(tmp_path_factory, torch.bfloat16)


@pytest.mark.parametrize("argv", [[], ["skill"], ["skill", "extract"], ["skill", "inject"], ["skill", "inspect"], ["skill", "compress"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv + ["--help"])
    assert e.value.code == 0
    assert "usage: past" in capsys.readouterr().out


def test_extract_inject_inspect(models, tmp_path, capsys):
    skill, other, out = tmp_path / "v.safetensors", tmp_path / "w.safetensors", tmp_path / "out"
    assert main(["skill", "extract", "--rl", str(models["rl_s"]), "--sft", str(models["sft_s"]), "-o", str(skill),
                 "--recommended-lam", "0.5", "--meta", "rounds=200", "--meta", "source_data_hash=sha256:ab12", "-q"]) == 0
    assert main(["skill", "extract", "--rl", str(models["sft_t"]), "--sft", str(models["base"]), "-o", str(other), "-q"]) == 0
    v, w = SkillVector.load(skill), SkillVector.load(other)
    assert v.metadata["recommended_lam"] == 0.5 and v.metadata["rounds"] == 200
    assert v.metadata["source_data_hash"] == "sha256:ab12"

    assert main(["skill", "inject", "--target", str(models["sft_t"]), "--skill", str(skill), "--lam", "0.5",
                 "--skill", str(other), "--lam", "-1", "--dtype", "fp32", "-o", str(out), "-q"]) == 0
    t, got = load_weights(models["sft_t"]), load_weights(out)
    for name in t:
        torch.testing.assert_close(got[name], t[name].float() + 0.5 * v[name] - w[name], rtol=1e-6, atol=1e-6)

    capsys.readouterr()
    assert main(["skill", "inspect", str(skill), "--against", str(models["sft_t"]), str(models["base"]), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["norm"] == pytest.approx(v.norm(), rel=1e-5)
    assert rep["num_parameters"] == sum(x.numel() for x in v.tensors.values())
    flat = lambda s, names: torch.cat([s[n].flatten() for n in names])  # noqa: E731
    assert rep["cosine"] == pytest.approx(torch.nn.functional.cosine_similarity(flat(v, v.names), flat(w, v.names), dim=0).item(), abs=1e-5)
    layer0 = [n for n in v.names if n.startswith("model.layers.0.")]
    assert rep["per_layer"]["layer 0"]["cosine"] == pytest.approx(
        torch.nn.functional.cosine_similarity(flat(v, layer0), flat(w, layer0), dim=0).item(), abs=1e-5)
    assert set(rep["per_layer"]) == {"embed", "layer 0", "layer 1", "head", "other"}
    assert rep["metadata"]["rounds"] == 200

    assert main(["skill", "inspect", str(skill), "--against", str(other)]) == 0
    table = capsys.readouterr().out
    assert "cosine with" in table and "layer 1" in table and "model.embed_tokens.weight" in table


def test_inspect_sparsity(models, tmp_path, capsys):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    v.tensors["model.layers.1.mlp.up_proj.weight"].zero_()
    v.tensors["model.norm.weight"][:4] = 0
    v.save(tmp_path / "sparse.safetensors")
    capsys.readouterr()
    assert main(["skill", "inspect", str(tmp_path / "sparse.safetensors"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    zeros = sum(int((t == 0).sum()) for t in v.tensors.values())
    assert rep["zero_fraction"] == pytest.approx(zeros / rep["num_parameters"])
    assert rep["per_tensor"]["model.layers.1.mlp.up_proj.weight"]["zero_fraction"] == 1.0
    norm_zeros = float((v["model.norm.weight"] == 0).float().mean())
    assert rep["per_tensor"]["model.norm.weight"]["zero_fraction"] == pytest.approx(norm_zeros)
    assert norm_zeros >= 4 / 16
    assert "cosine" not in rep
