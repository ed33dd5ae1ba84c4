"""dvc.yaml and the stages agree: every stage depends on the code it runs and on the paths it reads and writes.

A module a stage imports but dvc.yaml does not list is an edit `dvc status` cannot see, so the metrics go stale
in silence (issue 20); a path a stage uses but does not declare is a dependency DVC cannot order or cache.
"""

from __future__ import annotations

import ast
import copy
import json
import shutil
from pathlib import Path, PurePosixPath

import pytest

from past.layout import PIPELINE
from past.pipeline_repo import run
from past.stage_deps import check_deps, closure, command_closure, dvc_stages, is_code, stage_closures, stage_script

ROOT = Path(__file__).resolve().parents[1]
STAGES = dvc_stages(ROOT)
CLOSURES = stage_closures(ROOT)
WORK = PurePosixPath(PIPELINE.work("any").parent)  # models/.work: resumable work, ignored by git and DVC
SCORING = "src/past/scoring.py"


# ------------------------------------------------------------------------------------------ code deps


def code_problems(stage: str, spec: dict) -> str:
    check = check_deps(CLOSURES[stage], spec["deps"], ROOT)
    problems = [f"add {', '.join(check.missing)}"] * bool(check.missing)
    problems += [f"remove {', '.join(check.unnecessary)}"] * bool(check.unnecessary)
    return f"{stage}: deps: {'; '.join(problems)} (python -m past.stage_deps prints them)" if problems else ""


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_depends_on_every_module_it_runs_and_no_other(stage):
    problems = code_problems(stage, STAGES[stage])
    assert not problems, problems


@pytest.mark.parametrize("mutate, expected", [
    (lambda deps: deps.remove(SCORING), f"evaluate: deps: add {SCORING} "),
    (lambda deps: deps.append("src/past/continual"), "evaluate: deps: remove src/past/continual "),
    (lambda deps: deps.append("src/past/skills/compress.py"), "remove src/past/skills/compress.py "),
    (lambda deps: deps.append("src/past"), "remove src/past "),  # a folder the stage runs only in part
])
def test_a_missing_or_unneeded_module_is_named(mutate, expected):
    spec = copy.deepcopy(STAGES["evaluate"])
    mutate(spec["deps"])
    assert expected in code_problems("evaluate", spec)


def _imports_of(tree: ast.AST, module: str) -> list[ast.Import | ast.ImportFrom]:
    """The import statements under `tree` that name `module` (import module, from module import ...)."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == module
            or isinstance(node, ast.Import) and any(alias.name == module for alias in node.names)]


def test_imports_inside_functions_are_followed():
    # the premise: only functions import past.modeling_gguf (steps._save_published_base)
    trees = [ast.parse(path.read_text()) for path in (ROOT / "src/past").rglob("*.py")]
    anywhere = {id(node) for tree in trees for node in _imports_of(tree, "past.modeling_gguf")}
    in_functions = {id(node) for tree in trees for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
                    for node in _imports_of(function, "past.modeling_gguf")}
    assert anywhere and anywhere == in_functions
    assert "src/past/modeling_gguf.py" in CLOSURES["base"]


def test_the_launcher_adds_its_own_closure_and_none_of_the_cli():
    launched, plain = CLOSURES["base"], CLOSURES["prepare"]
    assert {"src/past/launcher.py", "src/past/config.py"} <= set(launched)
    assert "src/past/launcher.py" not in plain or "src/past/launcher.py" in set(map(str, closure({"past.stage"}, ROOT)))
    # an edit to another command (the report, the registry) leaves the training stages up to date
    assert not {"src/past/cli.py", "src/past/continual/registry.py", "src/past/evaluation/report.py"} & set(launched)


def test_closure_of_a_small_package(tmp_path):
    files = {
        "stages/run.py": "import os\nfrom pkg.a import main\n",
        "src/pkg/__init__.py": "",
        "src/pkg/a.py": "def main():\n    import pkg.b  # lazy\n",
        "src/pkg/b.py": "from pkg import sub, CONSTANT\n",  # a submodule, and a name that is none
        "src/pkg/sub/__init__.py": "from .c import x\n",  # relative, in a package's __init__
        "src/pkg/sub/c.py": "from . import d\nfrom ..e import y\nx = 1\n",  # relative, in a module
        "src/pkg/sub/d.py": "",
        "src/pkg/e.py": "y = 2\n",
        "src/pkg/unused.py": "import pkg.a\n",
        "src/pkg/sub/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    expected = {f"src/pkg/{name}" for name in ["__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/c.py",
                                               "sub/d.py", "e.py"]}
    assert set(map(str, command_closure("python stages/run.py", tmp_path))) == expected
    assert set(map(str, closure({"pkg.sub.d"}, tmp_path))) == {
        "src/pkg/__init__.py", "src/pkg/sub/__init__.py", "src/pkg/sub/c.py", "src/pkg/sub/d.py", "src/pkg/e.py"}


# ------------------------------------------------------------------------------------------ data paths


def _is_layout_path(node: ast.AST, name: str) -> bool:
    """`P.attr`, `P.method("constant")`, or either `/ "constant"`, where P is past.layout.PIPELINE."""
    if isinstance(node, ast.BinOp):
        return (isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant)
                and _is_layout_path(node.left, name))
    if isinstance(node, ast.Call) and not node.keywords and all(isinstance(arg, ast.Constant) for arg in node.args):
        node = node.func
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name


def layout_paths(script: Path) -> set[PurePosixPath]:
    """The paths a stage script names through past.layout.PIPELINE, as the layout itself computes them."""
    tree = ast.parse(script.read_text(), str(script))
    name = next(alias.asname or alias.name for node in _imports_of(tree, "past.layout") for alias in node.names
                if alias.name == "PIPELINE")
    paths, todo = set(), [tree]
    while todo:
        node = todo.pop()
        if not _is_layout_path(node, name):
            todo.extend(ast.iter_child_nodes(node))
            continue
        value = eval(compile(ast.Expression(node), str(script), "eval"), {name: PIPELINE})
        assert isinstance(value, Path), f"{script.name}: {ast.unparse(node)} is not a path: {value!r}"
        paths.add(PurePosixPath(value))
    return paths


def _declared(spec: dict) -> set[PurePosixPath]:
    """The stage's paths in dvc.yaml besides its code: deps, outs, metrics and plots."""
    entries = [*spec["deps"], *(e for key in ("outs", "metrics", "plots") for e in spec.get(key, []))]
    paths = {path for entry in entries for path in ([entry] if isinstance(entry, str) else entry)}
    return {PurePosixPath(path) for path in paths if not is_code(path) and path != str(stage_script(spec["cmd"]))}


def _overlap(a: PurePosixPath, b: PurePosixPath) -> bool:
    return a == b or a in b.parents or b in a.parents


def path_problems(stage: str, spec: dict) -> list[str]:
    script = stage_script(spec["cmd"])
    used = {path for path in layout_paths(ROOT / script) if not path.is_relative_to(WORK)}
    declared = _declared(spec)
    return ([f"{stage}: {script} uses {path}, which none of its deps, outs, metrics or plots in dvc.yaml covers"
             for path in sorted(used) if not any(_overlap(path, d) for d in declared)]
            + [f"{stage}: dvc.yaml declares {path}, which {script} never names (through past.layout.PIPELINE)"
               for path in sorted(declared) if not any(_overlap(path, u) for u in used)])


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_declares_the_paths_it_uses_and_uses_those_it_declares(stage):
    problems = path_problems(stage, STAGES[stage])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage, key, mutate, expected", [
    ("evaluate", "deps", lambda deps: deps.remove("models/source_sft"),
     "evaluate: stages/evaluate.py uses models/source_sft, which none of its deps"),
    ("inject", "deps", lambda deps: deps.append("data/world/p0"),
     "inject: dvc.yaml declares data/world/p0, which stages/inject.py never names"),
    ("evaluate", "metrics", lambda metrics: metrics.pop(0),
     "evaluate: stages/evaluate.py uses metrics/eval.json, which none"),
    ("base", "outs", lambda outs: outs.append("models/extra"),
     "base: dvc.yaml declares models/extra, which stages/base.py never names"),
])
def test_a_path_dvc_yaml_and_the_stage_disagree_on_is_named(stage, key, mutate, expected):
    spec = copy.deepcopy(STAGES[stage])
    mutate(spec[key])
    assert any(problem.startswith(expected) for problem in path_problems(stage, spec)), path_problems(stage, spec)


# ------------------------------------------------------------------------------------------ dvc status


def copy_checkout(source: Path, folder: Path) -> Path:
    """The checkout's files as DVC sees them (tracked, and new ones git does not ignore) in a new git repo."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], source).stdout
    for name in filter(None, listed.split("\0")):
        if (source / name).is_file():  # not a tracked file deleted in the checkout
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, folder / name)
    run(["git", "init", "-q"], folder)
    run(["git", "add", "-A"], folder)
    run(["git", "-c", "user.email=ci@past.invalid", "-c", "user.name=ci", "commit", "-qm", "checkout"], folder)
    return folder


def lock_as_checked_out(repo: Path) -> None:
    """Record every stage's deps as the copy has them (`dvc commit -f`) over placeholder outputs, so that the test
    rests on dvc.yaml and DVC alone, not on how recently the committed dvc.lock was reproduced."""
    for spec in STAGES.values():
        entries = [*spec.get("outs", []), *spec.get("metrics", []), *spec.get("plots", []), *spec["deps"]]
        for entry in entries:
            path = repo / (entry if isinstance(entry, str) else next(iter(entry)))
            if not path.exists():
                target = path if path.suffix else path / "placeholder"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("placeholder\n")
    run(["dvc", "commit", "-f"], repo)


def changed_deps(repo: Path) -> dict[str, set[str]]:
    """{dep: the stages whose changed deps in `dvc status` include it}."""
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    changed: dict[str, set[str]] = {}
    for stage, changes in status.items():
        for dep in (dep for change in changes if isinstance(change, dict) for dep in change.get("changed deps", {})):
            changed.setdefault(dep, set()).add(stage)
    return changed


def test_changing_a_scorer_makes_dvc_status_name_the_stages_that_run_it(tmp_path):
    # a scorer (every stage runs it), a module only evaluate runs, and the CLI, which no stage runs
    edited = [SCORING, "src/past/evaluation/plots.py", "src/past/cli.py"]
    repo = copy_checkout(ROOT, tmp_path / "repo")
    users = {path: {stage for stage, modules in stage_closures(repo).items() if path in modules} for path in edited}
    assert users[SCORING] == set(STAGES) and users["src/past/evaluation/plots.py"] == {"evaluate"}
    assert users["src/past/cli.py"] == set()
    lock_as_checked_out(repo)
    assert not changed_deps(repo)  # every stage up to date before the edit
    for path in edited:
        with open(repo / path, "a", encoding="utf-8") as handle:
            handle.write("# an edit\n")
    changed = changed_deps(repo)
    assert {path: changed.get(path, set()) for path in edited} == users
