"""`dvc metrics diff` as a Markdown table for a pull-request comment.

DVC computes the diff (committed metrics JSON against the workspace or another revision); this turns
its JSON into a table a reviewer reads at a glance: old, new, change, and an arrow for the direction.
Each row is named `file:key` (`metrics/eval.json:exact_match.past`), DVC's flattened key after its file:
the report and the noise floors of benchmarks/seeds.py use the same names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

LONGEST_VALUE = 40  # characters of a value in a cell: DVC gives a list (skill_rl.json's rounds) as its repr


@dataclass(frozen=True)
class Change:
    """One row of a `dvc metrics diff` or `dvc params diff`: old and new value, and new - old for numbers."""
    key: str
    old: object
    new: object
    diff: float | None


def dvc_json(*args: str, cwd=None) -> dict:
    """`dvc <args> --json`'s output, parsed; a RuntimeError with dvc's message when it fails."""
    # dvc of this very environment, whether or not its bin/ folder is on PATH
    result = subprocess.run([sys.executable, "-m", "dvc", *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def dvc_metrics_diff(a_rev: str = "HEAD", b_rev: str | None = None, cwd=None, everything: bool = False) -> dict:
    return dvc_json("metrics", "diff", a_rev, *([b_rev] if b_rev else []), *(["--all"] if everything else []), cwd=cwd)


def metric_key(file: str, name: str) -> str:
    return f"{file}:{name}"


def changes(diff: dict) -> list[Change]:
    """DVC's diff JSON ({file: {name: {"old", "new", "diff"}}}) as rows, sorted by file, then name."""
    return [Change(metric_key(file, name), values.get("old"), values.get("new"), values.get("diff"))
            for file, metrics in sorted(diff.items()) for name, values in sorted(metrics.items())]


def markdown_table(diff: dict, a_rev: str = "HEAD", b_rev: str = "workspace", kind: str = "metric") -> str:
    """One row per metric in `diff` (changed ones, or every one with dvc's --all), grouped by file.

    `dvc params diff --json` has the same shape (without "diff"), so `kind="param"` renders it too."""
    rows = changes(diff)
    if not rows:
        return f"No {kind} changed."
    lines = [f"| {kind} | {a_rev} | {b_rev} | change |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| `{row.key}` | {format_value(row.old)} | {format_value(row.new)} | {format_change(row.diff)} |"
              for row in rows]
    return "\n".join(lines)


def format_value(value) -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    text = text if len(text) <= LONGEST_VALUE else text[:LONGEST_VALUE - 1] + "…"
    return text.replace("|", "\\|")  # a table cell


def format_change(value) -> str:
    if not isinstance(value, (int, float)) or value == 0:
        return "-" if value is None else "0"
    arrow = "▲" if value > 0 else "▼"
    return f"{arrow} {value:+.4g}"
