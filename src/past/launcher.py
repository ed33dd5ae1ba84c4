"""`train.launcher`: how a training step's processes start (python, torchrun, accelerate launch).

`dvc.yaml` runs each training stage as `python -m past.launcher stages/<stage>.py` (what `past launch` runs too),
which checks params.yaml and then becomes `<launcher> stages/<stage>.py`; this module, not the whole CLI, so that
an edit to another command leaves the training stages up to date (their deps: past.stage_deps); the adapt flow starts its SFT as `<launcher> -m
past.continual.launched ...`: one knob decides for both (`argv`). Only the three launchers and plain options
are accepted, never shell syntax: the value is a command line, and someone will paste one into a shell.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

PROGRAMS = ("python", "torchrun", "accelerate")
SAFE_WORD = re.compile(r"[A-Za-z0-9_./:=,+@%-]+")  # options and paths: no ; | & $ ` < > quotes or spaces


class LauncherError(ValueError):
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


def is_launched(launcher: str) -> bool:
    """Whether steps run in processes of their own (torchrun, accelerate) rather than the caller's (python)."""
    return launcher.split()[0] != "python"


def argv(launcher: str, *target: str) -> list[str]:
    """The command that runs `python TARGET...` (a script, or `-m module`, and its arguments) under the
    launcher, with this environment's programs (the launchers beside this interpreter, not PATH's first)."""
    words = shlex.split(check_launcher(launcher))
    here = Path(sys.executable).with_name(words[0])
    words[0] = sys.executable if words[0] == "python" else str(here) if here.exists() else words[0]
    return [*words, *target]


def launch(script: str, args: list[str], params_path: str = "params.yaml") -> int:
    """Check `params_path`, then become `<train.launcher> SCRIPT ARGS` (2: bad params, before any process starts)."""
    from past.config import ConfigError, load_params

    try:
        params = load_params(params_path)
    except ConfigError as e:
        print(f"past: error: {e}", file=sys.stderr)
        return 2
    command = argv(params.train.launcher, script, *args)
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
