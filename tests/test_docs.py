"""The README and docs/ stay honest: every `past ...` command they show parses with the real CLI, every project
path they name exists, every relative link (and its #anchor) resolves, and no link leaves the repository."""

import re
from pathlib import Path

import pytest

from past.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the project's own folders (what a pipeline run or an install writes, models/, metrics/, ..., is not checked)
TRACKED = ("src/", "stages/", "tests/", "benchmarks/", "docs/", "presets/", "scripts/", ".ci/", ".dvc/", "deploy/")
USERS_OWN = {".dvc/config.local"}  # what the docs tell a user to create (credentials), never committed
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def code_of(text: str) -> list[str]:
    """Every inline code span and every line of a fenced block."""
    blocks = FENCE.findall(text)
    lines = [line for block in blocks for line in block.splitlines()[1:-1]]
    return CODE_SPAN.findall(FENCE.sub("", text)) + lines


def commands_in(snippet: str) -> list[list[str]]:
    """The `past` command lines in a snippet (after a prompt, `&&`, `|` or `;`), as words up to the first option."""
    found = []
    for part in re.split(r"&&|\|\||;|\|", snippet.replace("\\\n", " ")):
        words = part.strip().removeprefix("$ ").split()
        if words[:1] == ["past"]:
            found.append(words[1:])
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+\s+(.+)$", text, re.M)}


def subcommands(parser) -> dict:
    """{name: sub-parser} of a parser's sub-commands ({} when it has none)."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_past_command_shown_exists(doc):
    groups = subcommands(build_parser())
    checked = 0
    for snippet in code_of(doc.read_text(encoding="utf-8")):
        for words in commands_in(snippet):
            if not words or words[0].startswith(("-", "<", "...")):
                continue
            assert words[0] in groups, f"{doc.name}: `past {' '.join(words)}`: no command group {words[0]!r}"
            subs = subcommands(groups[words[0]])
            if subs and len(words) > 1 and not words[1].startswith(("-", "<", "...")):
                assert words[1] in subs, f"{doc.name}: `past {' '.join(words)}`: `past {words[0]}` has no {words[1]!r}"
            checked += 1
    if doc.name == "README.md":
        assert checked >= 5, "the README shows the CLI"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_project_path_named_exists(doc):
    missing = []
    for snippet in code_of(doc.read_text(encoding="utf-8")):
        for word in snippet.split():
            path = word.strip("`'\"()[],:;").split("::")[0].split("#")[0]
            if path.startswith(TRACKED) and path not in USERS_OWN and not any(c in path for c in "*<>{}$=") and not (ROOT / path).exists():
                missing.append(path)
    assert not missing, f"{doc.name} names paths that do not exist: {sorted(set(missing))}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository(doc):
    broken = []
    for target in LINK.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{doc.name}: " + "; ".join(broken)


def test_no_doc_points_at_the_design_notes_outside_the_repository():
    for doc in DOCS:
        assert "shared/design" not in doc.read_text(encoding="utf-8"), doc.name


def test_the_check_itself_finds_what_it_looks_for(tmp_path):
    """The parsers on a made-up page: a wrong command, a missing path and a broken anchor are all seen."""
    text = "run `past skill injekt a b` or\n```bash\n$ past plan --preset x && past nope\n```\n`src/past/nope.py`"
    snippets = code_of(text)
    assert [w[:2] for s in snippets for w in commands_in(s)] == [["skill", "injekt"], ["plan", "--preset"], ["nope"]]
    assert "src/past/nope.py" in snippets
    assert slug("A stream of drops: twenty in a row") == "a-stream-of-drops-twenty-in-a-row"
    assert slug("`past plan`, the planner") == "past-plan-the-planner"
