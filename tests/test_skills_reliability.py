"""Issue 15: `past skill` never writes into or over its inputs, refuses non-finite numbers by flag, compares a
skill's recorded base with the target's, and makes `inspect` fail on NaN/Inf. Every refusal leaves the inputs
byte-identical."""

from __future__ import annotations

import json
import math

import pytest
import torch

from past.cli import main
from past.files import sha256_file
from past.skills import OtherBaseError, OutputOverlapError, SkillError, SkillVector, extract_skill, inject
from past.skills.compress import compress_skill
from skills_fixtures import family, load_weights


@pytest.fixture(scope="module")
def skill(models, tmp_path_factory):
    return extract_skill(models["rl_s"], models["sft_s"], tmp_path_factory.mktemp("skill") / "v.safetensors")


def hashes(*roots) -> dict:
    """sha256 of every file under the roots (a root may be a file): compared before and after a refusal."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        out.update({str(p): sha256_file(p) for p in files})
    return out


def refused(capsys, argv: list[str], *needles: str, code: int = 2) -> str:
    capsys.readouterr()
    assert main(argv + ["-q"]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("past: error: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def bad_float(capsys, argv: list[str], flag: str, value: str) -> None:
    """argparse refuses the value naming the flag (exit 2 before anything runs)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: expected a finite number, got {value!r}" in err, err


# ---------------------------------------------------------------------------------- 1. outputs vs inputs


@pytest.mark.reliability(1, '`past skill extract -o RL/model.safetensors --overwrite`', 'refused, RL model unchanged')
def test_extract_over_the_rl_weights_is_refused_even_with_overwrite(models, capsys):
    rl, sft = models["rl_s"], models["sft_s"]
    before = hashes(rl, sft)
    shard = sorted(rl.glob("*.safetensors"))[0]
    err = refused(capsys, ["skill", "extract", "--rl", str(rl), "--sft", str(sft), "-o", str(shard), "--overwrite"],
                  str(shard), str(rl), "--overwrite never replaces an input")
    assert "resolved" not in err  # no alias: the paths as given are enough
    # an output beside the weights lies inside the input folder too
    refused(capsys, ["skill", "extract", "--rl", str(rl), "--sft", str(sft), "-o", str(sft / "v.safetensors")], str(sft))
    assert hashes(rl, sft) == before and not (sft / "v.safetensors").exists()
    assert not list(rl.glob(".*")) and not list(sft.glob(".*"))


@pytest.mark.reliability(2, '`past skill inject -o TARGET/merged`', 'refused, target unchanged')
def test_inject_inside_or_over_an_input_is_refused(models, skill, tmp_path, capsys):
    target = models["sft_t"]
    before = hashes(target, skill, models["base"].parent)
    base = ["skill", "inject", "--target", str(target), "--skill", str(skill)]
    refused(capsys, base + ["-o", str(target / "merged")], str(target / "merged"), str(target))  # inside
    refused(capsys, base + ["-o", str(target), "--overwrite"], str(target))  # is
    refused(capsys, base + ["-o", str(target.parent), "--overwrite"], str(target.parent))  # contains the inputs
    refused(capsys, base + ["-o", str(skill.parent), "--overwrite"], str(skill))  # contains the skill file
    # an alias through a symlink is resolved: writing through `link` would land in the target folder
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    err = refused(capsys, base + ["-o", str(link / "merged")], str(link / "merged"), str(target), "resolved")
    assert str((target / "merged").resolve()) in err
    assert hashes(target, skill, models["base"].parent) == before
    assert not (target / "merged").exists()


@pytest.mark.reliability(2, '`past skill inject -o TARGET/merged`', 'refused, target unchanged')
def test_compress_over_its_skill_and_the_python_api_are_refused(models, skill, capsys):
    before = hashes(skill, models["rl_s"], models["sft_t"])
    refused(capsys, ["skill", "compress", str(skill), "--rank", "2", "-o", str(skill), "--overwrite"], str(skill))
    with pytest.raises(OutputOverlapError, match="lies inside the input"):
        compress_skill(skill, skill.parent, rank=2, overwrite=True)
    with pytest.raises(OutputOverlapError, match=str(models["rl_s"])):
        extract_skill(models["rl_s"], models["sft_s"], models["rl_s"] / "model.safetensors", overwrite=True)
    with pytest.raises(OutputOverlapError, match=str(models["sft_t"])):
        inject(models["sft_t"], [skill], [1.0], models["sft_t"] / "merged")
    assert hashes(skill, models["rl_s"], models["sft_t"]) == before


# ---------------------------------------------------------------------------------- 3. non-finite numbers


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "-Infinity"])
@pytest.mark.reliability(3, '`past skill inject --lam nan`', 'refused naming --lam')
def test_every_float_flag_refuses_non_finite_by_name(models, skill, tmp_path, capsys, value):
    out = tmp_path / "out"
    inj = ["skill", "inject", "--target", str(models["sft_t"]), "--skill", str(skill), "-o", str(out)]
    # FLAG=VALUE: argparse reads a bare "-inf" as an option, not a value
    bad_float(capsys, inj + [f"--lam={value}"], "--lam", value)
    bad_float(capsys, ["skill", "extract", "--rl", str(models["rl_s"]), "--sft", str(models["sft_s"]),
                       "-o", str(tmp_path / "v.safetensors"), f"--recommended-lam={value}"], "--recommended-lam", value)
    bad_float(capsys, ["skill", "compress", str(skill), f"--energy={value}", "-o", str(out)], "--energy", value)
    bad_float(capsys, ["plan", f"--gpu-gib={value}"], "--gpu-gib", value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.reliability(3, '`past skill inject --lam nan`', 'refused naming --lam')
def test_the_engine_refuses_a_non_finite_lambda_by_name(models, skill, tmp_path):
    before = hashes(models["sft_t"], skill)
    with pytest.raises(SkillError, match=rf"lambda for skill {skill} must be a finite number, got nan"):
        inject(models["sft_t"], [skill], [math.nan], tmp_path / "out")
    assert not (tmp_path / "out").exists() and hashes(models["sft_t"], skill) == before


# ---------------------------------------------------------------------------------- 5. provenance


@pytest.mark.reliability(4, 'a skill of another base lineage (same architecture)', 'refused unless --allow-other-base')
def test_a_skill_of_another_base_is_refused_unless_allowed(models, skill, tmp_path_factory, tmp_path, capsys):
    other = family(tmp_path_factory, torch.float32, rms_norm_eps=1e-5)  # same architecture and tensors, other lineage
    alien = extract_skill(other["rl_s"], other["sft_s"], tmp_path / "alien.safetensors")
    recorded = SkillVector.load(alien).metadata["base_config_hash"]
    ours = SkillVector.load(skill).metadata["base_config_hash"]
    assert recorded != ours
    before = hashes(models["sft_t"], alien)
    argv = ["skill", "inject", "--target", str(models["sft_t"]), "--skill", str(alien), "-o", str(tmp_path / "out")]
    refused(capsys, argv, str(alien), str(models["sft_t"]), recorded, ours, "rms_norm_eps", "--allow-other-base")
    with pytest.raises(OtherBaseError, match="allow_other_base=True"):
        inject(models["sft_t"], [alien], [1.0], tmp_path / "out")
    assert not (tmp_path / "out").exists() and hashes(models["sft_t"], alien) == before

    # said so: injected, with the skill's own numbers
    assert main(argv + ["--allow-other-base", "-q"]) == 0
    got, t, v = load_weights(tmp_path / "out"), load_weights(models["sft_t"]), SkillVector.load(alien)
    for name in t:
        torch.testing.assert_close(got[name], t[name] + v[name], rtol=0, atol=1e-6)
    # a skill of the target's own base is injected without the flag
    assert main(["skill", "inject", "--target", str(models["sft_t"]), "--skill", str(skill),
                 "-o", str(tmp_path / "ours"), "-q"]) == 0


# ---------------------------------------------------------------------------------- 6. inspect and NaN


@pytest.mark.reliability(5, '`past skill inspect` on a skill holding NaN', 'names the tensors, exits non-zero')
def test_inspect_names_the_tensors_holding_nan_or_inf(models, tmp_path, capsys):
    v = SkillVector.from_models(models["rl_s"], models["sft_s"])
    v.tensors["model.layers.1.mlp.up_proj.weight"][0, :3] = math.nan
    v.tensors["lm_head.weight"][2, 1] = math.inf
    bad = v.save(tmp_path / "bad.safetensors")
    before = hashes(bad)
    capsys.readouterr()
    assert main(["skill", "inspect", str(bad), "-q"]) == 3
    captured = capsys.readouterr()
    assert "layer 1" in captured.out and "model.embed_tokens.weight" in captured.out  # the table is still printed
    assert "NaN or Inf in 2 tensors" in captured.out
    err = captured.err.strip()
    assert err.startswith("past: error: ") and "\n" not in err
    assert "model.layers.1.mlp.up_proj.weight (3 non-finite)" in err and "lm_head.weight (1 non-finite)" in err
    assert "model.norm.weight" not in err

    assert main(["skill", "inspect", str(bad), "--json", "-q"]) == 3
    rep = json.loads(capsys.readouterr().out)
    assert rep["non_finite_tensors"] == {"model.layers.1.mlp.up_proj.weight": 3, "lm_head.weight": 1}
    assert rep["non_finite"] == 4 and rep["per_layer"]["layer 1"]["non_finite"] == 3
    assert hashes(bad) == before

    # a finite skill still exits 0 and reports no such tensor
    good = SkillVector.from_models(models["rl_s"], models["sft_s"]).save(tmp_path / "good.safetensors")
    assert main(["skill", "inspect", str(good), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["non_finite_tensors"] == {}
