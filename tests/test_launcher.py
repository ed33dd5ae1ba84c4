"""`train.launcher`: which launchers it accepts, the commands it builds, and `past launch` (dvc.yaml's command)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from past.config import ConfigError, validate_params
from past.launcher import LauncherError, argv, check_launcher, is_launched

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("launcher", ["python", "torchrun --nproc_per_node 8", "torchrun --nnodes=2 --nproc-per-node=8 "
                                      "--rdzv-endpoint=10.0.0.1:29400", "accelerate launch --config_file "
                                      "configs/accelerate/fsdp2.yaml --num_processes 16"])
def test_the_launchers_are_accepted(launcher):
    assert check_launcher(launcher) == launcher


@pytest.mark.parametrize("launcher, complaint", [
    ("", "expected python, torchrun"), ("deepspeed --num_gpus 8", "expected python, torchrun"),
    ("python -u", "python takes no options"), ("accelerate config", "accelerate needs its launch command"),
    ("torchrun --nproc_per_node 8; rm -rf models", "is not a plain option"),
    ("torchrun --nproc_per_node $(nproc)", "is not a plain option"),
    ("accelerate launch --config_file a|b", "is not a plain option")])
def test_anything_else_is_refused(launcher, complaint):
    with pytest.raises(LauncherError, match=complaint.replace("(", r"\(").replace("$", r"\$")):
        check_launcher(launcher)


def test_params_name_the_key_of_a_bad_launcher():
    with pytest.raises(ConfigError, match="train.launcher"):
        validate_params({"train": {"launcher": "mpirun -n 8"}})


def test_argv_uses_this_environments_programs():
    assert argv("python", "stages/base.py") == [sys.executable, "stages/base.py"]
    torchrun = argv("torchrun --nproc_per_node 2", "-m", "past.continual.launched", "spec.json")
    assert torchrun[0] == str(Path(sys.executable).with_name("torchrun")) and Path(torchrun[0]).exists()
    assert torchrun[1:] == ["--nproc_per_node", "2", "-m", "past.continual.launched", "spec.json"]
    assert not is_launched("python") and is_launched("torchrun --nproc_per_node 2")


def past_launch(folder: Path, *args: str) -> subprocess.CompletedProcess:
    past = Path(sys.executable).with_name("past")
    return subprocess.run([str(past), "launch", *args], cwd=folder, capture_output=True, text=True)


def test_past_launch_checks_params_then_becomes_the_launcher(tmp_path):
    (tmp_path / "stage.py").write_text("import os, sys\n"
                                       "print(f\"rank {os.environ.get('RANK', '-')} {sys.argv[2:]}\", flush=True)\n"
                                       "sys.exit(int(sys.argv[1]))\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"launcher": "python"}}))
    result = past_launch(tmp_path, "stage.py", "7", "--flag")
    assert result.returncode == 7 and "rank - ['--flag']" in result.stdout  # the script's own exit code
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"launcher": "torchrun --nproc_per_node 2"}}))
    result = past_launch(tmp_path, "stage.py", "0")
    assert result.returncode == 0
    # the two ranks share stdout: print's text and its newline are two writes, so lines can interleave
    assert sorted(re.findall(r"rank \d \[\]", result.stdout)) == ["rank 0 []", "rank 1 []"]


def test_past_launch_refuses_bad_params_before_starting_anything(tmp_path):
    (tmp_path / "stage.py").write_text("open('ran', 'w').close()\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"launcher": "torchrun -n 2 && touch ran"}}))
    result = past_launch(tmp_path, "stage.py")
    assert result.returncode == 2 and "train.launcher" in result.stderr
    assert not (tmp_path / "ran").exists()
