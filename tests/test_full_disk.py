"""A full disk during publish, for real: a small tmpfs is mounted and filled. The write fails with a message that
names the artifact and the full disk, and the previous artifact stays whole (skipped where mounting is not allowed:
it needs root)."""

import hashlib
import subprocess

import pytest

from past.config import TinyModelParams
from past.files import DiskFullError, write_json_atomic
from past.modeling import build_tiny_llama, build_word_tokenizer, save_model


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def tree_hash(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.reliability(13, 'the disk fills up while a model is published', 'clear error, previous model kept')
def test_a_model_that_does_not_fit_keeps_the_previous_one(small_disk):
    tokenizer = build_word_tokenizer(["ann", "was", "born", "in", "kelm", "."])
    small = TinyModelParams(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_positions=32)
    large = small.model_copy(update={"hidden_size": 64, "num_layers": 4, "intermediate_size": 256})  # ~1 MB
    target = small_disk / "model"
    save_model(build_tiny_llama(small, tokenizer, 0), tokenizer, target)
    before = tree_hash(target)
    with pytest.raises(DiskFullError, match=rf"{target}: the disk filled up while writing it .* the previous one is kept"):
        save_model(build_tiny_llama(large, tokenizer, 0), tokenizer, target)
    assert tree_hash(target) == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["model"]  # no temporary left behind


@pytest.mark.reliability(13, 'the disk fills up while a model is published', 'clear error, previous model kept')
def test_a_metrics_file_that_does_not_fit_is_not_created(small_disk):
    path = small_disk / "metrics.json"
    with pytest.raises(DiskFullError, match="it was not created"):
        write_json_atomic(path, {"rows": ["x" * 1000] * 1000})
    assert list(small_disk.iterdir()) == []
