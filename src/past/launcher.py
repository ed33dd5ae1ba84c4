"""`train.launcher`: how a training step's processes start (python, torchrun, accelerate launch).

`dvc.yaml` runs each training stage as `python -m past.launcher stages/<stage>.py` (what `past launch` runs too),
which checks params.yaml and then becomes `<launcher> stages/<stage>.py`; this module, not the whole CLI, so that
an edit to another command leaves the training stages up to date (their deps: past.stage_deps); the adapt flow starts its SFT as `<launcher> -m
past.continual.launched ...`: one knob decides for both (`argv`). Only the three launchers and plain options
are accepted, never shell syntax: the value is a command line, and someone will paste one into a shell.

`train.python` names the environment those processes run in (`interpreter`): the flows run where Prefect is, and
Prefect cannot share an environment with vLLM, so on a GPU worker the training steps start in the GPU environment's
Python (the image sets $PAST_TRAIN_PYTHON to it), with the torchrun or accelerate beside it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

from past.errors import Refusal

PROGRAMS = ("python", "torchrun", "accelerate")
PYTHON_VARIABLE = "PAST_TRAIN_PYTHON"  # train.python when params.yaml leaves it empty (deploy/Containerfile sets it)
SAFE_WORD = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")  # options and paths: no ; | & $ ` < > quotes or spaces


class LauncherError(Refusal):
    """A `train.launcher` value that is not one of the launchers, or that holds shell syntax."""


def check_launcher(launcher: str) -> str:
    """The launcher, if it is `python`, `torchrun [options]` or `accelerate launch [options]`."""
    words = launcher.split()
    if not words or words[0] not in PROGRAMS:
        raise LauncherError(f"expected python, torchrun [options] or accelerate launch [options], got {launcher!r}")
    if words[0] == "python" and len(words) > 1:
        raise LauncherError(f"python takes no options here (the stage script follows), got {launcher!r}")
    if words[0] == "accelerate" and words[1:2] != ["launch"]:
        raise LauncherError(f"accelerate needs its launch command: accelerate launch [options], got {launcher!r}")
    unsafe = [word for word in words if not SAFE_WORD.fullmatch(word)]
    if unsafe:
        raise LauncherError(f"{unsafe[0]!r} is not a plain option or path (the launcher is part of a shell command)")
    return launcher


def interpreter(python: str = "") -> str:
    """The Python training steps run in: `python` (train.python), else $PAST_TRAIN_PYTHON, else this one. Refused
    unless it is an executable file."""
    chosen, key = (python, "train.python") if python else (os.environ.get(PYTHON_VARIABLE, ""), PYTHON_VARIABLE)
    if not chosen:
        return sys.executable
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise LauncherError(f"{key}: {chosen!r} is not an executable file: it names the Python of the environment "
                            f"training steps run in (e.g. /opt/venv-gpu/bin/python); empty: this one, {sys.executable}")
    return chosen


def is_launched(launcher: str, python: str = "") -> bool:
    """Whether steps run in processes of their own (torchrun, accelerate, or another Python: `interpreter`) rather
    than in the caller's."""
    return launcher.split()[0] != "python" or interpreter(python) != sys.executable


def argv(launcher: str, *target: str, python: str = "") -> list[str]:
    """The command that runs `python TARGET...` (a script, or `-m module`, and its arguments) under the launcher, in
    the training environment: its Python (`interpreter`: train.python) and the launchers beside it, not PATH's."""
    words = shlex.split(check_launcher(launcher))
    python = interpreter(python)
    beside = Path(python).with_name(words[0])
    words[0] = python if words[0] == "python" else str(beside) if beside.exists() else words[0]
    return [*words, *target]


def launch(script: str, args: list[str], params_path: str = "params.yaml") -> int:
    """Check `params_path`, then become `<train.launcher> SCRIPT ARGS` in train.python's environment (2: bad params,
    before any process starts)."""
    from past.config import ConfigError, load_params

    try:
        params = load_params(params_path)
        command = argv(params.train.launcher, script, *args, python=params.train.python)
    except (ConfigError, LauncherError) as e:
        print(f"past: error: {e}", file=sys.stderr)
        return 2
    print("past launch: " + " ".join(command), file=sys.stderr, flush=True)
    os.execv(command[0], command)  # the launcher takes this process over: its exit code and signals are DVC's


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`past launch`'s arguments (and `python -m past.launcher`'s)."""
    parser.add_argument("script", type=Path, help="the stage script, e.g. stages/source_sft.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    return parser


DESCRIPTION = ("Check params.yaml, then become `<train.launcher> SCRIPT ARGS`: python (one process), torchrun or "
               "accelerate launch (several; see docs/training.md).")

if __name__ == "__main__":
    options = add_arguments(argparse.ArgumentParser(prog="past launch", description=DESCRIPTION)).parse_args()
    sys.exit(launch(str(options.script), options.args, str(options.params)))
