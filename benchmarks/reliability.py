"""The reliability catalogue (issue 15): each case as a new user or an unlucky operator meets it, what past must do,
and what it did. Every case runs the real code on small real artifacts in a temporary folder (seconds in all).

    python benchmarks/reliability.py            # prints the Markdown table for the README (about 15 s)
    python benchmarks/reliability.py --flows    # and the adapt flow's kill and load cases (about 5 min)

The flow cases run the scenarios of tests/flows_faults.py (the ones tests/test_flows_adapt.py asserts) on the
flow tests' tiny project, against a throw-away Prefect server. The pipeline's own kill case (`dvc repro`
killed in every stage) runs in tests/test_pipeline_e2e.py only: it needs the end-to-end pipeline twice.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CASES, FLOW_CASES = [], []
ROOT = Path(__file__).resolve().parents[1]


def case(name: str, expected: str, flows: bool = False):
    def register(fn):
        (FLOW_CASES if flows else CASES).append((name, expected, fn))
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


# ------------------------------------------------------------------------------------------ killed writers

KILLED_WRITE = """
import sys
from past.files import atomic_dir, write_json_atomic
if sys.argv[2] == "folder":
    with atomic_dir(sys.argv[1]) as tmp:
        (tmp / "weights").write_text("new")
else:
    write_json_atomic(sys.argv[1], {"version": "new"})
"""


def killed_writing(target: Path, kind: str) -> int:
    return subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target), kind], capture_output=True,
                          env={**os.environ, "PAST_KILL_AT": "publish"}).returncode


@case("a model folder's writer killed (SIGKILL) between its two renames", "the previous folder back whole, nothing left")
def killed_folder_swap(root, m):
    from past.files import atomic_dir, clear_stale

    folder = root / "killed-folder"
    target = folder / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("old")
    code = killed_writing(target, "folder")
    missing = not target.exists()
    restored = clear_stale(target)
    ok = code == -signal.SIGKILL and (target / "weights").read_text() == "old" and len(list(folder.iterdir())) == 1
    return ok, f"killed ({code}); path missing until the next write: {missing}; {len(restored)} stray entries resolved"


@case("`registry.json`'s writer killed (SIGKILL) just before its rename", "never missing, previous state kept")
def killed_registry_write(root, m):
    from past.files import write_json_atomic

    folder = root / "killed-file"
    target = folder / "registry.json"
    write_json_atomic(target, {"version": "old"})
    code = killed_writing(target, "file")
    kept = json.loads(target.read_text()) == {"version": "old"}
    stray = len(list(folder.iterdir())) - 1
    write_json_atomic(target, {"version": "newer"})
    ok = code == -signal.SIGKILL and kept and len(list(folder.iterdir())) == 1
    return ok, f"killed ({code}); previous state kept: {kept}; {stray} temporary, cleared by the next write"


# ------------------------------------------------------------------------------------------ flows (--flows)


def flow_project(ctx: dict, name: str, **adapt):
    from types import SimpleNamespace

    from flows_fixtures import copy_project
    from past.continual.registry import Registry

    root = ctx["root"] / name
    params = copy_project(ctx["template"], root, **adapt)
    return SimpleNamespace(root=root, params=str(params), landing=root / "landing",
                           registry=Registry(root / "models/registry"))


@case("the adapt flow killed (SIGKILL) at each step: after validation, mid-SFT, after inject, mid-evaluation, "
      "during record", "after every kill production whole; the reruns end in one decision", flows=True)
def adapt_killed(ctx, m):
    import yaml

    from flows_faults import KILLS, kill_adapt_at, stray_temporaries
    from flows_fixtures import make_drop
    from past.continual.adaptation import ensure_production, settings
    from past.continual.registry import FINAL

    project = flow_project(ctx, "killed", sft={"steps": 6, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.05})
    params = yaml.safe_load(Path(project.params).read_text())
    params["train"] = {"checkpoint_steps": 2}
    Path(project.params).write_text(yaml.safe_dump(params))
    ensure_production(settings(project.params))
    make_drop(project.landing, "news-kill", 3, people=2)
    kills = kill_adapt_at(KILLS, "news-kill", project.params, project.registry, ctx["api_url"])
    killed = sum(k["returncode"] == -signal.SIGKILL for k in kills)
    whole = sum(k["production_whole"] and (k["registry_unchanged"] or k["point"] == "registry:written") for k in kills)
    last = ctx["flows"].adapt("news-kill", params=project.params)
    log = [d for d in project.registry.state()["decisions"] if d.get("drop", {}).get("hash") == last["drop"]["hash"]]
    final = [d for d in log if d["decision"] in FINAL]
    stray = stray_temporaries(project.registry.root)
    ok = killed == whole == len(KILLS) and len(final) == 1 and not stray
    return ok, (f"{killed} of {len(KILLS)} runs killed, production whole after {whole}; {len(final)} decision "
                f"({final[0]['decision'] if final else '-'}), then {len(log) - len(final)} skipped rerun; "
                f"{len(stray)} stray files")


@case("20 drops landing at once, through watch and the served deployment's trigger",
      "each adapted exactly once, in landing order, none lost", flows=True)
def load(ctx, m):
    from flows_faults import land_and_serve

    project = flow_project(ctx, "load", sft={"steps": 1, "lr": 0.001, "batch_size": 16, "warmup_ratio": 0.0})
    out = land_and_serve(project, 20, ctx["flows"].watch, ctx["api_url"])
    names, runs, log = out["names"], out["runs"], out["log"]
    in_order = [d["drop"]["name"] for d in log] == names == [r.parameters["drop"] for r in runs]
    once = len(log) == len(names) == len({d["drop"]["name"] for d in log})
    sequential = all(b.start_time >= a.end_time for a, b in zip(runs, runs[1:]))
    promoted = sum(d["decision"] == "promoted" for d in log)
    ok = in_order and once and sequential and out["announced"] == names
    return ok, (f"{len(names)} landed in {out['landed_seconds']:.2f} s; {len(log)} decisions ({promoted} promoted), "
                f"in order: {in_order}, {len(names) - len({d['drop']['name'] for d in log})} lost, "
                f"{len(runs)} runs one at a time: {sequential}; {out['seconds']:.0f} s in all")


def flows_context(root: Path):
    """The flow tests' tiny project, a throw-away Prefect server and the flows, for the --flows cases."""
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from types import SimpleNamespace

    import prefect.settings
    from prefect.flows import load_flow_from_entrypoint
    from prefect.testing.utilities import prefect_test_harness

    from flows_fixtures import build_project

    stack = contextlib.ExitStack()
    stack.enter_context(prefect_test_harness(server_startup_timeout=90))
    flows = SimpleNamespace(**{name: load_flow_from_entrypoint(str(ROOT / f"flows/{name}.py:{name}"))
                               for name in ("adapt", "watch")})
    ctx = {"root": root, "template": build_project(root / "template"), "flows": flows,
           "api_url": prefect.settings.PREFECT_API_URL.value()}
    return stack, ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", action="store_true", help="also the adapt flow's kill and load cases (minutes)")
    args = parser.parse_args()
    rows, passed = [], 0
    with tempfile.TemporaryDirectory(prefix="past-reliability-") as tmp:
        root = Path(tmp)
        m = models(root / "models")
        cases = list(enumerate(CASES, start=1))
        for i, (name, expected, fn) in enumerate(FLOW_CASES if args.flows else [], start=len(CASES) + 1):
            cases.append((i, (name, expected, lambda here, m, fn=fn: fn(ctx, m))))
        if args.flows:
            with contextlib.redirect_stdout(sys.stderr):  # the training logs: stdout is the table
                stack, ctx = flows_context(root / "flows")
        for i, (name, expected, fn) in cases:
            here = root / f"case{i}"
            here.mkdir()
            os.chdir(here)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    ok, what = fn(root, m)
            except Exception as err:  # noqa: BLE001 - an unexpected failure is a finding, not a crash
                ok, what = False, f"unexpected {type(err).__name__}: {str(err)[:80]}"
            passed += ok is True
            mark = {True: "as expected", False: "**NOT**", None: "skipped"}[ok]
            rows.append(f"| {i} | {name} | {expected} | {mark}: {what.replace('|', '/')} |")
        if args.flows:
            stack.close()
    print("| # | case | expected | what happened |\n| --- | --- | --- | --- |")
    print("\n".join(rows))
    print(f"\n{passed} of {len(cases)} cases as expected")


if __name__ == "__main__":
    main()
