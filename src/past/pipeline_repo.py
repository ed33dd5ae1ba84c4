"""A throw-away git + DVC repository holding the project's pipeline: for end-to-end tests,
benchmarks and seed studies that must not touch the project's own `data/`, `models/` or metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]  # the project checkout (src/past/pipeline_repo.py)
PIPELINE_FILES = ["dvc.yaml", "stages", "src"]


def run(args: list[str], cwd: Path, check: bool = True, capture: bool = True,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command in the pipeline repository with this venv's `dvc` and `python` and its own `src` (and
    `env` added to the environment)."""
    env = dict(os.environ, PYTHONPATH=str(cwd / "src"), **(env or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # dvc and python of this venv
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=capture, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_pipeline_repo(folder: Path, params: Path | dict) -> Path:
    """Copy dvc.yaml, stages/ and src/ into `folder` and commit them in a new git + DVC repo.

    `params` (a YAML file or a dict) overrides the project's params.yaml key by key (DVC needs every
    tracked key present).
    """
    override = yaml.safe_load(params.read_text()) if isinstance(params, Path) else params
    folder.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, folder / name)
    merged = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()), override or {})
    (folder / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    run(["git", "init", "-q"], folder)
    run(["git", "config", "user.email", "ci@past.invalid"], folder)
    run(["git", "config", "user.name", "ci"], folder)
    run(["dvc", "init", "-q"], folder)
    # the plot templates dvc.yaml names and the page that renders them offline (see .dvc/config)
    shutil.copytree(ROOT / ".dvc/plots", folder / ".dvc/plots")
    run(["dvc", "config", "plots.html_template", "plots/offline.html"], folder)
    for ignore in (".gitignore", ".dvcignore"):  # the training stages' resumable work is no one's output
        with open(folder / ignore, "a", encoding="utf-8") as handle:
            handle.write("/models/.work/\n")
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-qm", "pipeline"], folder)
    return folder


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def dotted_override(assignments: list[str]) -> dict:
    """["a.b=1", "c=x"] -> {"a": {"b": 1}, "c": "x"}; values are read as YAML (numbers, lists, booleans)."""
    override: dict = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        *parents, leaf = key.split(".")
        node = override
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return override
