"""The engine's numpy dtypes: the bridge to torch, bf16 rounding equal to torch's, and a torch-free CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from past.skills.dtypes import as_dtype, from_torch, to_torch
from past.skills.engine import stream_combination
from past.skills.errors import SkillError
from past.skills.sources import DictSource, TensorSpec
from skills_fixtures import family, load_weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float8_e4m3fn])
def test_torch_bridge_round_trips_and_shares_memory(dtype):
    t = torch.randn(5, 3).to(dtype)
    a = from_torch(t)
    back = to_torch(a)
    assert a.shape == (5, 3) and back.dtype == dtype
    assert torch.equal(back.float(), t.float())
    assert back.data_ptr() == t.data_ptr()  # views, not copies: SkillVector.apply_to on a model stays cheap


def test_dtype_names():
    assert as_dtype("bf16") == as_dtype(torch.bfloat16) == as_dtype("BFloat16") == from_torch(torch.zeros(1, dtype=torch.bfloat16)).dtype
    assert as_dtype(np.float32) == as_dtype("fp32") == np.float32
    assert as_dtype(None) is None
    with pytest.raises(SkillError, match="unknown dtype 'int4'"):
        as_dtype("int4")


def test_rounding_to_bf16_is_torchs_round_to_nearest_even():
    # Exact ties between two bf16 neighbours (odd and even mantissa), values just off a tie, tiny and huge ones.
    base = torch.tensor([1.0, 1.0078125, -3.0, 1e-30, 3e38, 0.0], dtype=torch.float32)
    half_ulp = torch.tensor([2.0**-8, 2.0**-8, 2.0**-7, 0.0, 0.0, 0.0])
    values = torch.cat([base, base + half_ulp, base - half_ulp, base + 0.9 * half_ulp, torch.randn(10_000)])
    specs = [("w", TensorSpec(as_dtype("bf16"), tuple(values.shape)))]
    got = {}
    stream_combination([(1.0, DictSource({"w": values}))], specs, lambda n, s, b: got.setdefault(n, b.copy()))
    assert torch.equal(to_torch(got["w"]), values.to(torch.bfloat16))


def test_cli_inject_never_imports_torch(tmp_path_factory, tmp_path):
    """`past skill inject` runs on numpy alone: importing torch took longer than injecting a 1B model."""
    models = family(tmp_path_factory, torch.bfloat16)
    skill, out = tmp_path / "v.safetensors", tmp_path / "out"
    script = (
        "import sys\n"
        "from past.cli import main\n"
        f"assert main(['skill', 'extract', '--rl', {str(models['rl_s'])!r}, '--sft', {str(models['sft_s'])!r}, '-o', {str(skill)!r}, '-q']) == 0\n"
        f"assert main(['skill', 'inject', '--target', {str(models['sft_t'])!r}, '--skill', {str(skill)!r}, '--lam', '0.5', '-o', {str(out)!r}, '-q']) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    target, rl, sft, got = (load_weights(p) for p in (models["sft_t"], models["rl_s"], models["sft_s"], out))
    for name, t in target.items():
        want = (t.float() + 0.5 * (rl[name].float() - sft[name].float())).to(torch.bfloat16)
        assert got[name].dtype == torch.bfloat16
        torch.testing.assert_close(got[name].float(), want.float(), rtol=2**-8, atol=1e-7)
