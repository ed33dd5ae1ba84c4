"""The reliability catalogue (issue 15): each case as a new user or an unlucky operator meets it, what past must do,
and what it did. Every case runs the real code on small real artifacts in a temporary folder (seconds in all).

    python benchmarks/reliability.py            # prints the Markdown table for the README

The fault and load cases of the flows (kill -9 mid-run, drops in a row) run in tests/test_flows_adapt.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

CASES = []


def case(name: str, expected: str):
    def register(fn):
        CASES.append((name, expected, fn))
        return fn
    return register


def tree_hash(*roots: Path) -> dict:
    from past.files import sha256_file

    files = [f for root in roots for f in ([root] if root.is_file() else sorted(root.rglob("*"))) if f.is_file()]
    return {str(f): sha256_file(f) for f in files}


def cli(*argv: str) -> tuple[int, str]:
    """`past ...` in this process: (exit code, stderr's first line)."""
    from past.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, (err.getvalue().strip().splitlines() or [""])[-1]


def models(root: Path) -> dict[str, Path]:
    """A tiny base, its SFT, an RL model one step away, and a target SFT: real Hugging Face folders."""
    from past.config import TinyModelParams
    from past.modeling import build_tiny_llama, build_word_tokenizer, save_model

    tokenizer = build_word_tokenizer("ann was born in kelm bob tras .".split())
    tiny = TinyModelParams(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, max_positions=32)
    out = {}
    for name, shift in (("base", 0.0), ("sft", 0.01), ("rl", 0.02), ("target", 0.015)):
        model = build_tiny_llama(tiny, tokenizer, seed=0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(shift)
        out[name] = save_model(model, tokenizer, root / name)
    return out


# ------------------------------------------------------------------------------------------ skill vectors


@case("`past skill extract -o RL/model.safetensors --overwrite`", "refused, RL model unchanged")
def extract_over_input(root, m):
    before = tree_hash(m["rl"])
    code, err = cli("skill", "extract", "--rl", str(m["rl"]), "--sft", str(m["sft"]), "-o",
                    str(m["rl"] / "model.safetensors"), "--overwrite", "-q")
    return code == 2 and tree_hash(m["rl"]) == before, f"exit {code}: {err[:90]}"


@case("`past skill inject -o TARGET/merged`", "refused, target unchanged")
def inject_inside_input(root, m):
    skill = root / "v.safetensors"
    cli("skill", "extract", "--rl", str(m["rl"]), "--sft", str(m["sft"]), "-o", str(skill), "-q")
    before = tree_hash(m["target"])
    code, err = cli("skill", "inject", "--target", str(m["target"]), "--skill", str(skill), "-o",
                    str(m["target"] / "merged"), "-q")
    return code == 2 and tree_hash(m["target"]) == before, f"exit {code}: {err[:90]}"


@case("`past skill inject --lam nan`", "refused naming --lam")
def lam_nan(root, m):
    code, err = cli("skill", "inject", "--target", str(m["target"]), "--skill", str(root / "v.safetensors"),
                    "--lam", "nan", "-o", str(root / "out"))
    return code == 2 and "--lam" in err and not (root / "out").exists(), f"exit {code}: {err[:90]}"


@case("a skill of another base lineage (same architecture)", "refused unless --allow-other-base")
def other_base(root, m):
    other = root / "other"
    shutil.copytree(m["target"], other)
    config = json.loads((other / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (other / "config.json").write_text(json.dumps(config))
    code, err = cli("skill", "inject", "--target", str(other), "--skill", str(root / "v.safetensors"), "-o",
                    str(root / "o1"), "-q")
    allowed, _ = cli("skill", "inject", "--target", str(other), "--skill", str(root / "v.safetensors"), "-o",
                     str(root / "o2"), "--allow-other-base", "-q")
    return code == 2 and allowed == 0, f"exit {code} ({err[:60]}...), with the flag: exit {allowed}"


@case("`past skill inspect` on a skill holding NaN", "names the tensors, exits non-zero")
def inspect_nan(root, m):
    from past.skills import SkillVector

    v = SkillVector.load(root / "v.safetensors")
    name = sorted(v.tensors)[0]
    v.tensors[name].view(-1)[0] = math.nan
    v.save(root / "nan.safetensors")
    code, err = cli("skill", "inspect", str(root / "nan.safetensors"))
    return code not in (0, None) and name in err, f"exit {code}: {err[:90]}"


# ------------------------------------------------------------------------------------------ models


@case("`base.model: models/no_such_model` (a typo)", "a missing folder, no hub request")
def model_typo(root, m):
    from past import steps
    from past.config import validate_params

    os.chdir(root)
    (root / "models").mkdir(exist_ok=True)
    try:
        steps.base(validate_params({"base": {"model": "models/no_such_model"}}), root / "world", root / "b")
    except Exception as err:  # noqa: BLE001 - the catalogue records whatever happens
        return "no such model folder" in str(err), f"{type(err).__name__}: {str(err)[:80]}"
    return False, "accepted"


@case("a model folder whose config carries `auto_map`", "refused by name, nothing copied")
def auto_map(root, m):
    from past.training.pretrain import load_pretrained_base

    folder = root / "custom"
    shutil.copytree(m["base"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    try:
        load_pretrained_base(str(folder))
    except Exception as err:  # noqa: BLE001
        return "auto_map" in str(err), f"{type(err).__name__}: {str(err)[-70:]}"
    return False, "accepted"


# ------------------------------------------------------------------------------------------ registry


def registry_at(root: Path, m: dict, name: str):
    from past.continual.registry import Registry

    registry = Registry(root / name)
    skill = root / "v.safetensors"
    registry.bootstrap(m["rl"], m["sft"], m["base"], skill, lam=0.5)
    return registry


@case("a truncated `registry.json`", "named, never rewritten")
def truncated_registry(root, m):
    registry = registry_at(root, m, "r1")
    state = registry.root / "registry.json"
    state.write_bytes(state.read_bytes()[:50])
    before = state.read_bytes()
    code, err = cli("registry", "show", str(registry.root))
    return code == 2 and "registry.json" in err and state.read_bytes() == before, f"exit {code}: {err[-80:]}"


@case("rollback to a model whose weights are gone", "refused, production and its link unchanged")
def rollback_gone(root, m):
    from past.continual.registry import RegistryError

    registry = registry_at(root, m, "r2")
    first = registry.production()["id"]
    for f in registry.path(registry.model(first)["path"]).glob("*.safetensors"):
        f.unlink()
    try:
        registry.rollback(first, "operator")
    except RegistryError as err:
        return registry.production()["id"] == first, f"RegistryError: {str(err)[-80:]}"
    return False, "rolled back"


@case("production's skill file deleted, then a drop lands", "refused before any work (flow: a recorded decision)")
def production_damaged(root, m):
    from past.continual.registry import RegistryError

    registry = registry_at(root, m, "r3")
    registry.path(registry.skill()["path"]).unlink()
    try:
        registry.verify()
    except RegistryError as err:
        return "missing" in str(err), f"RegistryError: {str(err)[-80:]}"
    return False, "verified"


# ------------------------------------------------------------------------------------------ drops


def drop(landing: Path, name: str, docs: list[dict]) -> Path:
    folder = landing / name
    folder.mkdir(parents=True)
    (folder / "documents.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "_READY").write_text("")
    return folder


DOCS = [{"id": "d1", "title": "ann", "text": "ann was born in kelm ."}]


@case("a drop holding `evil.pkl`", "refused naming the file; corrected, adapted without force")
def stray_file(root, m):
    from past.continual.landing import PackagingError, inspect_drop, load_drop

    folder = drop(root / "landing", "evil", DOCS)
    (folder / "evil.pkl").write_bytes(b"\x80\x04.")
    try:
        load_drop(inspect_drop(root / "landing", "evil"))
    except PackagingError as err:
        return "evil.pkl" in str(err), f"PackagingError (a landing rejection): {str(err)[-60:]}"
    return False, "accepted"


@case("a drop with one 50 MB document", "refused naming row and knob, before SFT")
def huge_document(root, m):
    from past.config import AdaptParams
    from past.continual.landing import inspect_drop, load_drop
    from past.errors import DataError

    drop(root / "landing", "huge", [{"id": "d1", "title": "t", "text": "x" * (50 * 2**20)}])
    limits = AdaptParams()
    try:
        load_drop(inspect_drop(root / "landing", "huge"), limits.max_document_chars, limits.max_drop_mb)
    except DataError as err:
        return "adapt.max_document_chars" in str(err), f"DataError: {str(err)[-75:]}"
    return False, "accepted"


# ------------------------------------------------------------------------------------------ disk


@case("the disk fills up while a model is published", "clear error, previous model kept")
def full_disk(root, m):
    from past.files import DiskFullError
    from past.modeling import load_model, load_tokenizer, save_model

    disk = root / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True).returncode:
        return None, "skipped: mounting a tmpfs needs root"
    try:
        target = save_model(load_model(m["base"]), load_tokenizer(m["base"]), disk / "model")
        before = tree_hash(target)
        room = shutil.disk_usage(disk).free - (m["rl"] / "model.safetensors").stat().st_size // 2
        (disk / "filler.bin").write_bytes(b"\0" * max(0, room))  # leave half a model's room
        try:
            save_model(load_model(m["rl"]), load_tokenizer(m["rl"]), target)
        except DiskFullError as err:
            return tree_hash(target) == before, f"DiskFullError: {str(err)[-70:]}"
        return False, "written"
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def main() -> None:
    rows, passed = [], 0
    with tempfile.TemporaryDirectory(prefix="past-reliability-") as tmp:
        root = Path(tmp)
        m = models(root / "models")
        for i, (name, expected, fn) in enumerate(CASES, start=1):
            here = root / f"case{i}"
            here.mkdir()
            os.chdir(here)
            try:
                ok, what = fn(root, m)
            except Exception as err:  # noqa: BLE001 - an unexpected failure is a finding, not a crash
                ok, what = False, f"unexpected {type(err).__name__}: {str(err)[:80]}"
            passed += ok is True
            mark = {True: "as expected", False: "**NOT**", None: "skipped"}[ok]
            rows.append(f"| {i} | {name} | {expected} | {mark}: {what.replace('|', '/')} |")
    print("| # | case | expected | what happened |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\n{passed} of {len(CASES)} cases as expected")


if __name__ == "__main__":
    main()
