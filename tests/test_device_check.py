"""scripts/device-check.sh: the GPU check's install path and `benchmarks/gpu_check.py --tiny`, on CPU, offline.

The node has no network and no TRL, datasets or pydantic: they travel as wheels (`device-check.sh fetch`). Here
the wheel folder is built from the installed distributions instead of downloaded (offline, ~1 s; `pip download`
needs PyPI), and the check runs under `python -S` with a site folder that holds only the node's packages, so the
carried wheels are the only source of the rest and anything else `past` would import fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device-check.sh"
# preinstalled on the node (its image, as the device notes list it), with everything these require; xxhash is
# datasets' one need that none of the others has
NODE = ("torch", "transformers", "accelerate", "peft", "safetensors", "numpy", "pandas", "pyarrow", "pyyaml",
        "ml-dtypes", "xxhash", "pip")


def carried() -> list[Requirement]:
    out = subprocess.run(["bash", str(SCRIPT), "list"], check=True, capture_output=True, text=True).stdout
    return [Requirement(line) for line in out.split()]


def build_wheel(name: str, folder: Path) -> Path:
    """A wheel of an installed distribution: its RECORD's files (no bytecode, nothing outside site-packages),
    its own METADATA and WHEEL, a fresh RECORD."""
    dist = md.distribution(name)
    info = next(str(f.parent) for f in dist.files if f.name == "METADATA")  # the .dist-info folder
    tag = next(line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines() if line.startswith("Tag:"))
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    path = folder / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for file in dist.files:
            if file.parts[0] == ".." or file.suffix == ".pyc" or str(file) in skip:
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            whl.writestr(str(file), data)
            record.append(f"{file},sha256={digest},{len(data)}")
        whl.writestr(f"{info}/RECORD", "\n".join(record + [f"{info}/RECORD,,"]) + "\n")
    return path


def requirement_closure(names) -> set[str]:
    """The distributions `names` need, transitively (no extras), as installed here."""
    env, seen, todo = default_environment(), set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue  # a platform-only need (CUDA wheels) that this CPU environment does not have
        seen.add(name)
        for req in map(Requirement, requires):
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def node_site(folder: Path, names: set[str]) -> Path:
    """A site folder of links to the top-level entries (packages, modules, .dist-info) of `names` alone."""
    folder.mkdir(parents=True)
    for name in names:
        dist = md.distribution(name)
        for top in {f.parts[0] for f in dist.files if f.parts[0] != ".."}:
            link, source = folder / top, Path(dist.locate_file(top))
            if not link.exists() and source.exists():
                link.symlink_to(source)
    return folder


def test_the_carried_wheels_are_the_projects_pins_and_not_the_nodes_packages():
    reqs = {canonicalize_name(r.name): r for r in carried()}
    project = {canonicalize_name(r.name): r for r in map(Requirement, tomllib.loads(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"])}
    for name, req in reqs.items():
        [pin] = req.specifier
        assert pin.operator == "==", req
        assert name not in NODE, f"{name} is on the node"
        if name in project:  # pinned where the project pins it, inside its range where it gives one
            assert project[name].specifier.contains(pin.version), (req, project[name])
    assert {"trl", "datasets", "pydantic", "pydantic-core"} <= set(reqs)
    # every need of the carried packages is carried or on the node
    assert requirement_closure(reqs) <= set(reqs) | requirement_closure(NODE), \
        requirement_closure(reqs) - set(reqs) - requirement_closure(NODE)


def test_run_tiny_installs_the_wheels_offline_and_reports_every_step(tmp_path):
    wheels, target, out = tmp_path / "wheels", tmp_path / "site", tmp_path / "out"
    wheels.mkdir()
    reqs = carried()
    for req in reqs:  # the pins are what this environment runs, so the wheels are what the node will get
        assert md.version(req.name) == next(iter(req.specifier)).version, req
        build_wheel(req.name, wheels)
    names = {canonicalize_name(r.name) for r in reqs}
    # named site-packages: without site.py sys.prefix is the base interpreter's, and dill (datasets' fingerprints)
    # pickles modules outside sys.prefix and outside any site-packages by value, which fails on pyarrow's
    site = node_site(tmp_path / "node" / "site-packages",
                     (requirement_closure(NODE) | requirement_closure(names)) - names)
    python = tmp_path / "python"  # -S: this environment's site-packages is not on the path, only `site`
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "DEVICE_WHEELS": str(wheels), "DEVICE_TARGET": str(target),
           "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    done = subprocess.run(["bash", str(SCRIPT), "run", "--tiny", "--out", str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "device-check: 1/3 installing 9 wheels" in done.stdout and "device-check: ok" in done.stdout

    report = json.loads((out / "gpu_check.json").read_text())
    assert (out / "gpu_check.log").stat().st_size > 0
    assert report["device"] == "cpu" and report["model"] == "tiny"
    assert set(report["embedded"]["seconds"]) == {"prepare", "base", "source_sft", "skill_rl", "extract",
                                                  "target_sft", "inject", "evaluate"}
    assert [r["step"] for r in report["scale"]] == ["sft", "grpo"]
    for row in report["scale"]:
        assert "error" not in row and "estimate_error" not in row, row
        assert row["tokens_per_s"] > 0 and row["peak_gib"] > 0 and row["estimate_gib"] > 0, row
        assert row["model_tflops"] > 0 and row["mfu"] is None, row  # no known peak on a CPU
        assert len(row["step_seconds"]) == 3
    sft, grpo = report["scale"]
    assert sft["tokens_per_step"] == 4 * 64  # batch 4 x max_length 64: the words are tokens, none dropped
    assert 2 * 2 * 41 < grpo["tokens_per_step"] <= 2 * 2 * (41 + 8)  # prompts x generations x (BOS + 40 words + new)
    imported = report["imported"]
    for req in reqs:
        dist = next(d for d in imported if canonicalize_name(d) == canonicalize_name(req.name))
        assert Path(imported[dist]["file"]).is_relative_to(target), (dist, imported[dist])
    assert Path(report["past"]).is_relative_to(ROOT / "src")
