"""Which modules of src/past each DVC stage runs, read from the code: what its `deps` in dvc.yaml must list.

DVC reruns a stage only when one of its listed deps changes, so a module the stage imports that dvc.yaml does
not list is an edit `dvc status` cannot see (issue 20). The import closure is read from the source, nothing is
imported: from the stage's script, every import of `past` is followed, those inside functions too (the code
imports lazily, so that a bad params file fails before torch loads), with the packages whose `__init__` an
import runs. A training stage's command, `python -m past.launcher stages/X.py`, runs that module first (it checks
params.yaml, then becomes the launcher), so its closure is the stage's too.

`python -m past.stage_deps` prints every stage's `deps:` for dvc.yaml: its other deps as they are, then the
modules it runs, a folder where it runs every module below it.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SOURCE = PurePosixPath("src")  # where `past` lives, relative to the project root
PACKAGE = SOURCE / "past"


def _module_file(name: str, root: Path) -> PurePosixPath | None:
    """The file that importing `name` runs (a module, or a package's __init__); None when src/ has none."""
    base = SOURCE.joinpath(*name.split("."))
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if (root / path).is_file()), None)


def _module_name(path: PurePosixPath) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _parse(path: PurePosixPath, root: Path) -> ast.Module:
    return ast.parse((root / path).read_text(), str(path))


def _imported(nodes: list[ast.AST], module: str, is_package: bool) -> set[str]:
    """The dotted names the imports anywhere under `nodes` (in `module`) name. `from p import x` counts p.x
    too: it is a module when a file has that name (names without one are dropped by `closure`)."""
    names = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:  # relative to the module's package (a package's __init__ is its own package)
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(package + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def closure(seeds: set[str], root: Path = Path(".")) -> set[PurePosixPath]:
    """The package's files that importing the dotted names `seeds` may run, lazy imports included: importing
    a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    found, todo = set(), list(seeds)
    while todo:
        parts = todo.pop().split(".")
        for path in {_module_file(".".join(parts[:i]), root) for i in range(1, len(parts) + 1)} - {None} - found:
            found.add(path)
            todo.extend(_imported([_parse(path, root)], _module_name(path), path.name == "__init__.py"))
    return found


def stage_script(cmd: str) -> PurePosixPath:
    """The script of a dvc.yaml command: `python stages/X.py` or `python -m past.launcher stages/X.py`."""
    return PurePosixPath(cmd.split()[-1])


def command_closure(cmd: str, root: Path = Path(".")) -> set[PurePosixPath]:
    """The package's files a dvc.yaml command runs: its `-m` module's, then its script's."""
    words = cmd.split()
    seeds = _imported([_parse(stage_script(cmd), root)], "__main__", False)
    if "-m" in words:
        seeds.add(words[words.index("-m") + 1])
    return closure(seeds, root)


def dvc_stages(root: Path = Path(".")) -> dict[str, dict]:
    import yaml  # a dependency of the project (params.yaml, past.cli); the rest of this module is standard library

    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def stage_closures(root: Path = Path(".")) -> dict[str, list[str]]:
    """{stage of root/dvc.yaml: the sorted paths of the modules it runs, like 'src/past/steps.py'}."""
    return {stage: sorted(map(str, command_closure(spec["cmd"], root))) for stage, spec in dvc_stages(root).items()}


def is_code(dep: str) -> bool:
    return PurePosixPath(dep).is_relative_to(PACKAGE)


def _modules_below(dep: str, root: Path) -> set[str]:
    """What a dep covers: a module, or every module below a folder."""
    if not (root / dep).is_dir():
        return {dep}
    return {str(PurePosixPath(path.relative_to(root))) for path in (root / dep).rglob("*.py")}


@dataclass(frozen=True)
class DepsCheck:
    missing: list[str]  # modules the stage runs that no dep covers
    unnecessary: list[str]  # deps in src/past it does not need: a module it never runs, a folder it runs in part


def check_deps(modules: list[str], deps: list[str], root: Path = Path(".")) -> DepsCheck:
    """How a stage's dvc.yaml `deps` differ from the modules it runs."""
    covered = {dep: _modules_below(dep, root) for dep in deps if is_code(dep)}
    return DepsCheck(missing=sorted(set(modules) - set().union(*covered.values())),
                     unnecessary=[dep for dep, below in covered.items() if not below or not below <= set(modules)])


def minimal_deps(modules: list[str], root: Path = Path(".")) -> list[str]:
    """The fewest deps covering exactly `modules`: the highest folder whose every module is one of them."""
    deps = []
    for path in map(PurePosixPath, sorted(modules)):
        top = next(folder for folder in [*reversed(path.parents), path]
                   if folder.is_relative_to(PACKAGE) and _modules_below(str(folder), root) <= set(modules))
        if str(top) not in deps:
            deps.append(str(top))
    return deps


def _flow_list(key: str, items: list[str], indent: int, width: int = 120) -> str:
    """`key: [a, b, ...]` as dvc.yaml writes it: wrapped within `width`, continued under the first item."""
    first = " " * indent + f"{key}: ["
    return "\n".join(textwrap.wrap(", ".join(items) + "]", width, initial_indent=first,
                                   subsequent_indent=" " * len(first), break_long_words=False, break_on_hyphens=False))


def main() -> int:
    closures = stage_closures()
    for stage, spec in dvc_stages().items():
        deps = [dep for dep in spec["deps"] if not is_code(dep)] + minimal_deps(closures[stage])
        print(f"  {stage}:\n{_flow_list('deps', deps, indent=4)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
