"""`train.launcher` and `train.python`: which launchers it accepts, the commands they build (in which Python), and
`past launch` (dvc.yaml's command); the adapt flow's SFT started in another Python."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from past.config import ConfigError, validate_params
from past.launcher import PYTHON_VARIABLE, LauncherError, argv, check_launcher, is_launched

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_image_python(monkeypatch):
    """As outside the image: $PAST_TRAIN_PYTHON unset (deploy/Containerfile sets it)."""
    monkeypatch.delenv(PYTHON_VARIABLE, raising=False)


@pytest.fixture
def training_python(tmp_path) -> tuple[Path, Path]:
    """A second Python, as a GPU environment's bin/python: a wrapper that notes the arguments of every run in a log,
    then becomes this Python. Returns (the wrapper, its log)."""
    wrapper, log = tmp_path / "gpu-env" / "bin" / "python", tmp_path / "gpu-env-runs.log"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(log))}\nexec {shlex.quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


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


def test_argv_runs_in_train_python_with_the_launchers_beside_it(training_python):
    python, _ = training_python
    assert argv("python", "stages/base.py", python=str(python)) == [str(python), "stages/base.py"]
    (python.parent / "torchrun").write_text("")  # the GPU environment's own torchrun, not this one's
    torchrun = argv("torchrun --nproc_per_node 2", "-m", "past.continual.launched", "spec.json", python=str(python))
    assert torchrun == [str(python.with_name("torchrun")), "--nproc_per_node", "2", "-m", "past.continual.launched",
                        "spec.json"]
    assert is_launched("python", str(python)) and not is_launched("python", sys.executable)  # another Python: launched


def test_the_images_variable_stands_in_for_an_empty_train_python(training_python, monkeypatch):
    python, _ = training_python
    monkeypatch.setenv(PYTHON_VARIABLE, str(python))
    assert argv("python", "stages/base.py") == [str(python), "stages/base.py"] and is_launched("python")
    assert argv("python", "stages/base.py", python=sys.executable) == [sys.executable, "stages/base.py"]  # params win


@pytest.mark.parametrize("kind", ["missing", "not executable", "a folder"])
def test_a_python_that_cannot_run_is_refused_naming_its_key(kind, tmp_path, monkeypatch):
    path = {"missing": tmp_path / "venv-gpu/bin/python", "not executable": tmp_path / "python",
            "a folder": tmp_path}[kind]
    if kind == "not executable":
        path.write_text("#!/bin/sh\n")
    with pytest.raises(LauncherError, match=rf"^train.python: '{re.escape(str(path))}' is not an executable file"):
        argv("python", "stages/base.py", python=str(path))
    monkeypatch.setenv(PYTHON_VARIABLE, str(path))
    with pytest.raises(LauncherError, match=rf"^{PYTHON_VARIABLE}: '{re.escape(str(path))}' is not an executable"):
        is_launched("python")


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


def test_past_launch_starts_the_stage_in_train_python(training_python, tmp_path):
    python, runs = training_python
    (tmp_path / "stage.py").write_text("print('stage ran', flush=True)\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"python": str(python)}}))
    result = past_launch(tmp_path, "stage.py")
    assert result.returncode == 0 and "stage ran" in result.stdout and runs.read_text() == "stage.py\n"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"python": str(tmp_path / "none/bin/python")}}))
    result = past_launch(tmp_path, "stage.py")
    assert result.returncode == 2 and "train.python: " in result.stderr and "stage ran" not in result.stdout


def test_the_adapt_flows_sft_runs_in_train_python(training_python, tmp_path):
    """What adaptation.train does when train.python names another Python: `launch_sft` runs the real SFT
    (`-m past.continual.launched`) in that Python's process, here on a tiny model."""
    from past.config import SFTParams, TinyModelParams, load_params
    from past.continual.launched import launch_sft
    from past.modeling import build_tiny_llama, build_word_tokenizer, save_model

    python, runs = training_python
    document = "alice was born in paris"
    tokenizer = build_word_tokenizer(document.split())
    tiny = TinyModelParams(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16, max_positions=16)
    save_model(build_tiny_llama(tiny, tokenizer, seed=0), tokenizer, tmp_path / "start")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"python": str(python)}}))
    train = load_params(params).train
    assert is_launched(train.launcher, train.python)  # what adaptation.train decides on
    launch_sft(params, tmp_path, train, tmp_path / "start", [document] * 4, SFTParams(steps=2, batch_size=2), 0,
               tmp_path / "sft", None, "float32")
    assert re.fullmatch(r"-m past\.continual\.launched \S+\.launch\.json\n", runs.read_text())
    assert (tmp_path / "sft" / "config.json").is_file() and not (tmp_path / "sft.launch.json").exists()
