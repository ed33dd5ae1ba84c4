"""Stage entry points: bad params stop before any work; bad data ends with one clear message."""

import pytest

from past.contracts import ContractViolation, validate_documents
from past.pipeline_repo import ROOT
from past.stage import stage


def test_bad_params_exit_before_the_stage_body_runs(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("inject:\n  lam: strong\n")
    calls = []
    with pytest.raises(SystemExit) as exit_:
        stage(calls.append)(str(params))
    assert calls == []
    assert str(exit_.value) == f"error: {params}: inject.lam: expected a number or null, got 'strong'"


def test_contract_violation_ends_the_stage_with_the_report(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\n")

    def body(loaded):
        assert loaded.seed == 1
        validate_documents([{"id": "d1", "title": "t", "text": ""}], "data/world/target/documents.jsonl")

    with pytest.raises(SystemExit) as exit_:
        stage(body)(str(params))
    message = str(exit_.value)
    assert message.startswith("error: data/world/target/documents.jsonl: data contract violated")
    assert "expect_column_values_to_match_regex on column 'text': 1 row(s), e.g. rows [1]" in message
    assert isinstance(exit_.value.__context__, ContractViolation)


def test_a_stage_without_torch_never_imports_it(tmp_path):
    """prepare and inject compute without torch: a fresh repro saves its import (seconds) in both, and their
    seeds still hold (Python's and numpy's generators)."""
    import subprocess
    import sys

    # the two stage scripts as DVC starts them (their module level: steps, layout), then a torch-free stage body
    stages = [str(ROOT / "stages" / f"{name}.py") for name in ("prepare", "inject")]
    code = ("import random, runpy, sys, numpy\nfrom past.stage import stage\n"
            f"for path in {stages!r}: runpy.run_path(path, run_name='stage')\n"
            "stage(torch=False)(lambda p: print(random.random() == random.Random(3).random(),"
            " numpy.random.rand() == numpy.random.RandomState(3).rand()))()\n"
            "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))")
    (tmp_path / "params.yaml").write_text("seed: 3\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True True", "[]"]

