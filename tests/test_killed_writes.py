"""A writer killed with SIGKILL mid-publish (no cleanup runs) never leaves a torn or missing artifact that the
next run would find: real child processes, killed for real at `past.failpoints`' "publish" point."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from past.files import atomic_dir, clear_stale, write_json_atomic

WRITE_FOLDER = """
import sys
from past.files import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "weights").write_text("new")
"""
WRITE_FILE = """
import sys
from past.files import write_json_atomic
write_json_atomic(sys.argv[1], {"version": "new"})
"""


def killed_at_publish(code: str, target: Path) -> None:
    child = subprocess.run([sys.executable, "-c", code, str(target)], env={**os.environ, "PAST_KILL_AT": "publish"},
                           capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.reliability(14, "a model folder's writer killed (SIGKILL) between its two renames",
                         'the previous folder back whole, nothing left')
def test_a_folder_killed_between_its_two_renames_comes_back_whole(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("old")
    killed_at_publish(WRITE_FOLDER, target)
    # the old folder stepped aside, the new one complete but not renamed in: the path itself is missing
    assert not target.exists() and len(siblings(tmp_path)) == 2
    restored = clear_stale(target)
    assert len(restored) == 2 and (target / "weights").read_text() == "old" and siblings(tmp_path) == ["model"]


@pytest.mark.reliability(14, "a model folder's writer killed (SIGKILL) between its two renames",
                         'the previous folder back whole, nothing left')
def test_the_next_write_after_a_kill_leaves_only_the_new_artifact(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("old")
    killed_at_publish(WRITE_FOLDER, target)
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("newer")
    assert (target / "weights").read_text() == "newer" and siblings(tmp_path) == ["model"]


@pytest.mark.reliability(15, "a file's writer (`registry.json`'s) killed (SIGKILL) just before its rename",
                         'never missing, previous state kept')
def test_a_file_is_never_missing_and_the_killed_writers_temporary_is_cleared(tmp_path):
    target = tmp_path / "registry.json"
    write_json_atomic(target, {"version": "old"})
    killed_at_publish(WRITE_FILE, target)
    assert json.loads(target.read_text()) == {"version": "old"}  # a file replaces a file in one rename
    [stale] = [name for name in siblings(tmp_path) if name != "registry.json"]
    assert stale.startswith(".registry.json.") and stale.endswith(".tmp")
    write_json_atomic(target, {"version": "newer"})
    assert json.loads(target.read_text()) == {"version": "newer"} and siblings(tmp_path) == ["registry.json"]


def test_a_live_writers_temporaries_are_left_alone(tmp_path):
    target = tmp_path / "model"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".model.{writer.pid}.abcd1234.tmp"
        live.mkdir()
        mine = tmp_path / f".model.old-{os.getpid()}"
        mine.mkdir()
        assert clear_stale(target) == [] and live.exists() and mine.exists()
    finally:
        writer.kill()
        writer.wait()
    assert clear_stale(target) == [live] and not live.exists()
