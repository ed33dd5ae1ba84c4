"""Lower layers never import higher ones: the layering the README's layout section describes."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "past"

# a module may import its own layer and those below it
LAYERS = [
    {"errors", "failpoints", "preemption", "files", "jsonl", "layout", "scoring", "prompting", "distributed",
     "kernels"},
    {"config", "launcher"},  # config checks train.launcher; `python -m past.launcher` reads the params
    {"contracts", "knowledge", "modeling", "modeling_gguf", "skills", "planner"},
    {"evaluation"},
    {"training"},
    {"steps"},
    {"continual"},
    {"stage", "pipeline_repo", "stage_deps", "repro", "cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def imported_parts(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("past.") and node.level == 0:
            yield node.module.split(".")[1], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module == "past":
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("past."):
                    yield alias.name.split(".")[1], node.lineno


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops == set(RANK), tops ^ set(RANK)


def test_lower_layers_import_nothing_above_them():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        part = path.relative_to(SRC).parts[0].removesuffix(".py")
        if part == "__init__":
            continue
        for imported, line in imported_parts(ast.parse(path.read_text(encoding="utf-8"))):
            if RANK[imported] > RANK[part]:
                wrong.append(f"{path.relative_to(SRC.parent)}:{line}: {part} imports {imported}")
    assert not wrong, "\n".join(wrong)


BLOCK_PREFECT = r'''
import importlib, importlib.abc, importlib.util, pathlib, pkgutil, sys

class NoPrefect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" or name.startswith("prefect."):
            raise ImportError(f"{name}: blocked (the GPU training environment has no Prefect)")

sys.meta_path.insert(0, NoPrefect())
import past.steps, past.training
for info in pkgutil.walk_packages(past.training.__path__, "past.training."):
    importlib.import_module(info.name)
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.py")):  # __name__ is not __main__: the stages do not run
    spec = importlib.util.spec_from_file_location(f"stage_{path.stem}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    print(path.stem)
print(sorted(m for m in sys.modules if m.split(".")[0] == "prefect"))
'''


def test_the_dvc_stages_import_nothing_of_prefect():
    """The GPU training environment (requirements-gpu.txt: vLLM, whose fastapi pin excludes Prefect 3.9) runs every
    DVC stage: the stages, past.steps and past.training.* must import without Prefect."""
    import os
    import subprocess
    import sys

    stages = SRC.parents[1] / "stages"
    env = dict(os.environ, PYTHONPATH=str(SRC.parent))
    result = subprocess.run([sys.executable, "-c", BLOCK_PREFECT, str(stages)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split()
    assert lines[-1] == "[]"  # nothing of Prefect in sys.modules
    assert set(lines[:-1]) == {p.stem for p in stages.glob("*.py")} and len(lines) > 5
