"""Cross-check against mergekit's task_arithmetic: base_model = source SFT, target at weight 1, RL at lambda.

task_arithmetic computes base + sum_i w_i (m_i - base) = theta_T + lambda (theta_rl - theta_sft_S): the same
model PaST injection builds, by an independent implementation.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mergekit", reason="mergekit is optional: pip install 'past[bench]' (mergekit==0.1.5) to cross-check")
from mergekit.config import MergeConfiguration  # noqa: E402
from mergekit.merge import MergeOptions, run_merge  # noqa: E402

from past.skills import extract_skill, inject  # noqa: E402
from skills_fixtures import family, load_weights  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_inject_equals_mergekit_task_arithmetic(tmp_path_factory, tmp_path, dtype):
    m = family(tmp_path_factory, dtype)
    lam, out_dtype = 0.7, str(dtype).removeprefix("torch.")
    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(m["sft_s"]),
        "models": [
            {"model": str(m["sft_t"]), "parameters": {"weight": 1.0}},
            {"model": str(m["rl_s"]), "parameters": {"weight": lam}},
        ],
        "parameters": {"normalize": False},
        "dtype": "float32",  # arithmetic in fp32, as ours
        "out_dtype": out_dtype,
    }
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "mergekit"), MergeOptions(copy_tokenizer=False, quiet=True))
    skill = extract_skill(m["rl_s"], m["sft_s"], tmp_path / "v.safetensors")
    ours, theirs = load_weights(inject(m["sft_t"], [skill], [lam], tmp_path / "past")), load_weights(tmp_path / "mergekit")
    assert set(ours) == set(theirs)
    for name, w in theirs.items():
        assert ours[name].dtype == w.dtype == dtype
        if dtype == torch.float32:
            torch.testing.assert_close(ours[name], w, rtol=1e-6, atol=1e-6)
        else:  # both round one fp32 result; they may differ by one ulp where fp32 rounding differed
            torch.testing.assert_close(ours[name].float(), w.float(), rtol=2**-7, atol=1e-7)
            assert (ours[name] != w).float().mean() < 0.01, name
