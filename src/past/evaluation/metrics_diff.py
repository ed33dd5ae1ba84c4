"""`dvc metrics diff` as a Markdown table for a pull-request comment.

DVC computes the diff (committed metrics JSON against the workspace or another revision); this turns
its JSON into a table a reviewer reads at a glance: old, new, change, and an arrow for the direction.
"""

from __future__ import annotations

import json
import subprocess
import sys


def dvc_json(*args: str, cwd=None) -> dict:
    """`dvc <args> --json`'s output, parsed; a RuntimeError with dvc's message when it fails."""
    # dvc of this very environment, whether or not its bin/ folder is on PATH
    result = subprocess.run([sys.executable, "-m", "dvc", *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def dvc_metrics_diff(a_rev: str = "HEAD", b_rev: str | None = None, cwd=None, everything: bool = False) -> dict:
    return dvc_json("metrics", "diff", a_rev, *([b_rev] if b_rev else []), *(["--all"] if everything else []), cwd=cwd)


def markdown_table(diff: dict, a_rev: str = "HEAD", b_rev: str = "workspace", kind: str = "metric") -> str:
    """One row per metric in `diff` (changed ones, or every one with dvc's --all), grouped by file.

    `dvc params diff --json` has the same shape (without "diff"), so `kind="param"` renders it too."""
    lines = [f"| {kind} | {a_rev} | {b_rev} | change |", "| --- | ---: | ---: | ---: |"]
    for file, metrics in sorted(diff.items()):
        for name, values in sorted(metrics.items()):
            old, new, change = values.get("old"), values.get("new"), values.get("diff")
            lines.append(f"| `{file}:{name}` | {_fmt(old)} | {_fmt(new)} | {_change(change)} |")
    if len(lines) == 2:
        return f"No {kind} changed."
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _change(value) -> str:
    if not isinstance(value, (int, float)) or value == 0:
        return "-" if value is None else "0"
    arrow = "▲" if value > 0 else "▼"
    return f"{arrow} {value:+.4g}"

