"""Lower layers never import higher ones: the layering the README's layout section describes."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "past"

# a module may import its own layer and those below it
LAYERS = [
    {"errors", "preemption", "files", "jsonl", "layout", "scoring", "prompting", "distributed", "launcher"},
    {"config"},
    {"contracts", "knowledge", "modeling", "modeling_gguf", "skills", "planner"},
    {"evaluation"},
    {"training"},
    {"steps"},
    {"continual"},
    {"stage", "pipeline_repo", "cli"},
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
