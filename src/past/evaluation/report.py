"""The pull-request report: what the workspace changed against a base revision, as Markdown with PNGs.

Everything comes from DVC: `dvc metrics diff`, `dvc params diff` and `dvc plots diff` (the plot definitions
of dvc.yaml filled into Vega-Lite specs, both revisions' data inlined). Plots whose data is the same at
both revisions are left out; the others are rendered to PNG files beside the report.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from past.evaluation.metrics_diff import dvc_json, markdown_table
from past.evaluation.vega import to_png

WORKSPACE = "workspace"  # DVC's name for the working tree in plots diff


class ReportError(RuntimeError):
    pass


def check_revision(base: str, cwd: Path) -> None:
    """Refuse, with a message a person can act on, before DVC prints its own."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=cwd, capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise ReportError(f"{cwd} is not in a git repository: the report compares the workspace with a commit")
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd=cwd,
                           capture_output=True, text=True)
    if known.returncode != 0:
        raise ReportError(f"unknown base revision {base!r} (in CI, check out with fetch-depth: 0 so the base "
                          "branch is there)")
    top = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True,
                              text=True).stdout.strip())
    if not (top / ".dvc").is_dir():
        raise ReportError(f"{top} is not a DVC repository (no .dvc/)")


def params_diff(base: str, cwd: Path) -> dict:
    """`dvc params diff` with the change of each numeric param, as `dvc metrics diff` gives it."""
    diff = dvc_json("params", "diff", base, cwd=cwd)
    for params in diff.values():
        for values in params.values():
            old, new = values.get("old"), values.get("new")
            if _number(old) and _number(new):
                values["diff"] = new - old
    return diff


def changed_plots(base: str, cwd: Path) -> list[tuple[str, dict]]:
    """(plot id, Vega-Lite spec) for each vega plot whose data differs between `base` and the workspace."""
    shown = dvc_json("plots", "diff", base, cwd=cwd)
    changed = []
    for name, renderers in shown.get("data", {}).items():
        for renderer in renderers:
            if renderer.get("type") != "vega":  # image outputs (lambda_sweep.png) are drawn by the stage itself
                continue
            values = renderer["content"]["data"]["values"]
            if _rows(values, base) != _rows(values, WORKSPACE):
                changed.append((name, renderer["content"]))
    return changed


def write_report(base: str, output: Path, cwd: Path | None = None) -> Path:
    """Write `output` (Markdown) and, in `<output stem>_files/`, a PNG per changed plot; return `output`."""
    cwd = Path(cwd or Path.cwd())
    check_revision(base, cwd)
    metrics = markdown_table(dvc_json("metrics", "diff", base, cwd=cwd), base, WORKSPACE)
    params = markdown_table(params_diff(base, cwd), base, WORKSPACE, kind="param")
    files = output.parent / f"{output.stem}_files"
    images = []
    for name, spec in changed_plots(base, cwd):
        files.mkdir(parents=True, exist_ok=True)
        path = files / f"{_slug(name)}.png"
        path.write_bytes(to_png(spec))
        images.append(f"![{name}]({path.relative_to(output.parent).as_posix()})")
    lines = [f"## PaST pipeline: workspace against `{base}`", "", "### Metrics", "", metrics, "",
             "### Params", "", params, "", "### Plots", "",
             "\n\n".join(images) if images else "No plot changed.", ""]
    output.write_text("\n".join(lines), encoding="utf-8")
    return output


def _rows(values: list[dict], rev: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "rev"} for row in values if row.get("rev") == rev]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")
