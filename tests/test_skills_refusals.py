"""Bad input is refused with a one-line error naming the tensor or file, and nothing is written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from past.cli import main
from past.skills import SkillVector, extract_skill
from skills_fixtures import family, load_weights


@pytest.fixture(scope="module")
def skill(models, tmp_path_factory):
    return extract_skill(models["rl_s"], models["sft_s"], tmp_path_factory.mktemp("skill") / "v.safetensors")


@pytest.fixture(scope="module")
def bare_skill(models, tmp_path_factory):
    """The same skill without provenance metadata: only tensor-level checks can catch a mismatch."""
    tensors = SkillVector.from_models(models["rl_s"], models["sft_s"]).tensors
    return SkillVector(tensors).save(tmp_path_factory.mktemp("bare") / "v.safetensors")


def refused(capsys, tmp_path, argv: list[str], *needles: str) -> str:
    """Run the CLI, expect exit 2, one stderr line containing the needles, and no output path."""
    out = tmp_path / ("out.safetensors" if argv[1] == "extract" else "out")
    capsys.readouterr()
    assert main(argv + ["-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("past: error: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists() and not list(tmp_path.glob(".out*")), list(tmp_path.iterdir())
    return err


def inject_argv(target, skill) -> list[str]:
    return ["skill", "inject", "--target", str(target), "--skill", str(skill), "--lam", "1.0"]


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def shard_of(folder, name):
    return next(f for f in sorted(folder.glob("*.safetensors")) if name in load_file(f))


def test_different_parameter_names(tmp_path_factory, tmp_path, capsys, skill):
    biased = family(tmp_path_factory, torch.float32, attention_bias=True)  # adds q/k/v/o biases
    refused(capsys, tmp_path, inject_argv(biased["sft_t"], skill), "model.layers.0.self_attn.", ".bias", "missing from")


def test_different_shapes(tmp_path_factory, tmp_path, capsys, bare_skill):
    wide = family(tmp_path_factory, torch.float32, intermediate_size=48)
    refused(capsys, tmp_path, inject_argv(wide["sft_t"], bare_skill), "shape mismatch for tensor model.layers.0.mlp.", "[48, 16]")


def test_different_vocabulary(tmp_path_factory, tmp_path, capsys, skill, bare_skill):
    big = family(tmp_path_factory, torch.float32, vocab_size=80)
    refused(capsys, tmp_path, inject_argv(big["sft_t"], skill), "different base architecture", "vocab_size=64", "80")
    refused(capsys, tmp_path, inject_argv(big["sft_t"], bare_skill), "vocabulary size differs in tensor model.embed_tokens.weight", "64", "80")


def test_different_base_architecture(tmp_path_factory, tmp_path, capsys, skill, models):
    # Same tensor names and shapes, different architecture: only the recorded fingerprint can tell.
    other = family(tmp_path_factory, torch.float32, hidden_act="gelu")
    refused(capsys, tmp_path, inject_argv(other["sft_t"], skill), "different base architecture", "hidden_act='silu'", "'gelu'")
    refused(capsys, tmp_path, ["skill", "extract", "--rl", str(other["rl_s"]), "--sft", str(models["sft_s"])], "hidden_act")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_input(models, tmp_path, capsys, skill, bad):
    target = copy_model(models["sft_t"], tmp_path / "target")
    name = "model.layers.1.mlp.down_proj.weight"
    shard = shard_of(target, name)
    tensors = load_file(shard)
    tensors[name][3, 5] = bad
    save_file(tensors, shard, metadata={"format": "pt"})
    refused(capsys, tmp_path, inject_argv(target, skill), f"tensor {name} in {shard}", "NaN or Inf")
    refused(capsys, tmp_path, ["skill", "extract", "--rl", str(target), "--sft", str(models["sft_s"])], name, "NaN or Inf")


def test_overflow_of_output_dtype(models, tmp_path, capsys, skill):
    err = refused(capsys, tmp_path, inject_argv(models["sft_t"], skill)[:-1] + ["1e9", "--dtype", "fp16"], "overflows float16")
    assert "tensor model." in err


def test_missing_shard(models, tmp_path, capsys, skill):
    target = copy_model(models["sft_t"], tmp_path / "target")
    (target / "model-00002-of-00003.safetensors").unlink()
    refused(capsys, tmp_path, inject_argv(target, skill), f"missing shard {target / 'model-00002-of-00003.safetensors'}")


def test_truncated_shard(models, tmp_path, capsys, skill):
    target = copy_model(models["sft_t"], tmp_path / "target")
    shard = target / "model-00003-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    refused(capsys, tmp_path, inject_argv(target, skill), f"truncated safetensors file {shard}")
    truncated_skill = tmp_path / "skill.safetensors"
    truncated_skill.write_bytes(skill.read_bytes()[:5])
    refused(capsys, tmp_path, inject_argv(models["sft_t"], truncated_skill), f"truncated safetensors file {truncated_skill}")


def test_pickle_checkpoints(models, tmp_path, capsys, skill):
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(models["sft_t"] / "config.json", target)
    torch.save(load_weights(models["sft_t"]), target / "pytorch_model.bin")
    refused(capsys, tmp_path, inject_argv(target, skill), f"refusing pickle checkpoint {target / 'pytorch_model.bin'}")
    torch.save(load_weights(models["sft_t"]), tmp_path / "skill.pth")
    refused(capsys, tmp_path, inject_argv(models["sft_t"], tmp_path / "skill.pth"), f"refusing pickle checkpoint {tmp_path / 'skill.pth'}")


def test_existing_output_needs_overwrite(models, tmp_path, capsys, skill):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    argv = inject_argv(models["sft_t"], skill) + ["-o", str(out), "-q"]
    assert main(argv) == 2
    assert f"output {out} exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
    assert main(argv + ["--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    assert main(["skill", "extract", "--rl", str(models["rl_s"]), "--sft", str(models["sft_s"]), "-o", str(skill), "-q"]) == 2


def test_one_name_rule_for_skill_files_written_and_read(models, tmp_path, capsys):
    # a skill file is named *.safetensors on both sides: extract refuses to write what inject would refuse to read
    out = tmp_path / "skill"
    argv = ["skill", "extract", "--rl", str(models["rl_s"]), "--sft", str(models["sft_s"]), "-o", str(out), "-q"]
    assert main(argv) == 2
    assert f"not a safetensors file: {out} (a skill file's name ends in .safetensors)" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(argv[:-3] + ["-o", str(out.with_suffix(".safetensors")), "-q"]) == 0
    out.with_suffix(".safetensors").rename(out)  # the same bytes under a name inject must refuse as well
    assert main(inject_argv(models["sft_t"], out) + ["-o", str(tmp_path / "model"), "-q"]) == 2
    assert "not a safetensors file" in capsys.readouterr().err and not (tmp_path / "model").exists()


def test_lambda_count_must_match(models, tmp_path, capsys, skill):
    argv = inject_argv(models["sft_t"], skill) + ["--skill", str(skill), "--skill", str(skill), "--lam", "0.5"]
    refused(capsys, tmp_path, argv, "need one lambda per skill: got 3 skills and 2 lambdas")


def test_console_script_exit_code(models, tmp_path):
    missing = tmp_path / "nope"
    proc = subprocess.run(
        [sys.executable, "-m", "past.cli", "skill", "extract", "--rl", str(missing), "--sft", str(models["sft_s"]), "-o", str(tmp_path / "v.safetensors")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"past: error: no such file or directory: {missing}"
    assert not (tmp_path / "v.safetensors").exists()
