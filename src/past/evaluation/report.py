"""The pull-request report: what the workspace changed against a base revision, told apart from seed noise.

Everything comes from DVC: `dvc metrics diff --all`, `dvc params diff` and `dvc plots diff` (the plot definitions
of dvc.yaml filled into Vega-Lite specs, both revisions' data inlined). The report leads with the headline (PaST,
target SFT, oracle, control, the gain, the chosen lambda), each change next to its noise floor, the metric's
spread over seeds (past.evaluation.noise). What a reviewer seldom needs is folded into <details>: the other
metrics, the DVCLive training internals, DVCLive curves and plots that moved only within noise. Plots whose data
is the same at both revisions are left out; the others are rendered to PNG files beside the report.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from past.evaluation.metrics_diff import Change, changes, dvc_json, format_change, format_value, markdown_table, \
    metric_key
from past.evaluation.noise import BEYOND, CHANGED, DEFAULT_PATH, UNCHANGED, UNKNOWN, WIDTH, WITHIN, NoiseFloors, \
    as_number, is_number, verdict
from past.evaluation.stream import stream_section
from past.evaluation.vega import to_png

WORKSPACE = "workspace"  # DVC's name for the working tree in plots diff
EVAL = "metrics/eval.json"
DVCLIVE = "dvclive/"  # where DVCLive writes each training stage's metrics and curves
# (label, key in metrics/eval.json): {metric} is the pipeline's evaluate.metric, recorded in the file as "metric"
HEADLINE = [("PaST", "{metric}.past"), ("target SFT", "{metric}.target_sft"), ("oracle", "{metric}.oracle"),
            ("control (base + λ v)", "{metric}.control"), ("gain (PaST − target SFT)", "past_gain_over_target_sft"),
            ("chosen lambda", "lambda")]
_ORDER = [BEYOND, CHANGED, UNKNOWN, WITHIN, UNCHANGED]  # how verdicts are counted in a summary


class ReportError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plot:
    name: str
    spec: dict  # Vega-Lite, both revisions' data inlined
    verdict: str  # WITHIN, or CHANGED: a point moved beyond noise, or without a floor at all
    training: bool  # a DVCLive curve


def repository_root(base: str, cwd: Path) -> Path:
    """The repository's top folder; refuses, with a message a person can act on, before DVC prints its own."""
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
    return top


def params_diff(base: str, cwd: Path) -> dict:
    """`dvc params diff` with the change of each numeric param, as `dvc metrics diff` gives it."""
    diff = dvc_json("params", "diff", base, cwd=cwd)
    for params in diff.values():
        for values in params.values():
            old, new = values.get("old"), values.get("new")
            if is_number(old) and is_number(new):
                values["diff"] = new - old
    return diff


def headline(metrics: dict[str, Change]) -> list[tuple[str, Change]]:
    """(label, change) of each headline metric, present or not at either revision."""
    recorded = metrics.get(metric_key(EVAL, "metric"))
    name = (recorded.new or recorded.old) if recorded else "exact_match"
    rows = []
    for label, pattern in HEADLINE:
        key = metric_key(EVAL, pattern.format(metric=name))
        rows.append((label, metrics.get(key, Change(key, None, None, None))))
    return rows


def changed_plots(base: str, cwd: Path, floors: NoiseFloors) -> list[Plot]:
    """Each vega plot whose data differs between `base` and the workspace, with what the difference is."""
    shown = dvc_json("plots", "diff", base, cwd=cwd)
    curves = _dvclive_plots(cwd)
    changed = []
    for name, renderers in shown.get("data", {}).items():
        for renderer in renderers:
            if renderer.get("type") != "vega":  # image outputs (lambda_sweep.png) are drawn by the stage itself
                continue
            values = renderer["content"]["data"]["values"]
            found = plot_verdict(name, _rows(values, base), _rows(values, WORKSPACE), floors)
            if found != UNCHANGED:
                changed.append(Plot(name, renderer["content"], found, name.startswith(DVCLIVE) or name in curves))
    return changed


def plot_verdict(name: str, old: list[dict], new: list[dict], floors: NoiseFloors) -> str:
    """UNCHANGED, WITHIN (every point that moved, within its column's noise floor) or CHANGED."""
    if old == new:
        return UNCHANGED
    if len(old) != len(new):
        return CHANGED
    points = [verdict(as_number(a.get(column)), as_number(b.get(column)), floors.plot(metric_key(name, column)))
              for a, b in zip(old, new) for column in a.keys() | b.keys()]
    return WITHIN if set(points) <= {UNCHANGED, WITHIN} else CHANGED


def write_report(base: str, output: Path, cwd: Path | None = None, noise: Path | None = None) -> Path:
    """Write `output` (Markdown) and, in `<output stem>_files/`, a PNG per changed plot; return `output`.

    `noise`: the noise floors (default benchmarks/results/noise.json, relative to `cwd`); without the file each
    change is reported with its noise floor unknown."""
    cwd = Path(cwd or Path.cwd())
    root = repository_root(base, cwd)
    floors = NoiseFloors.load(cwd / (noise or DEFAULT_PATH))
    metrics = {row.key: row for row in changes(dvc_json("metrics", "diff", base, "--all", cwd=cwd))}
    top = headline(metrics)
    shown = {row.key for _, row in top}
    rest = [row for row in metrics.values() if row.old != row.new and row.key not in shown]
    parts = [f"## PaST pipeline: workspace against `{base}`",
             f"**Headline** (`{EVAL}`): {_tally([_verdict(row, floors) for _, row in top])}.",
             metric_table(top, base, floors, kind="headline"),
             metric_details(rest, base, floors),
             "### Params", markdown_table(params_diff(base, cwd), base, WORKSPACE, kind="param"),
             "### Plots", plots_section(changed_plots(base, root, floors), output)]
    stream = stream_section(_registry_state(cwd), output)
    if stream:  # the workspace's flows have adapted drops: how the stream went
        parts += ["### Continual adaptation", stream]
    parts.append(footer(floors, cwd))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return output


def _registry_state(cwd: Path) -> Path:
    """The workspace's registry.json (params.yaml's adapt.registry, relative to it)."""
    from past.config import AdaptParams, ConfigError, load_params

    try:
        registry = load_params(cwd / "params.yaml").adapt.registry
    except ConfigError:  # no or unreadable params: the params diff says so; the default registry's place
        registry = AdaptParams().registry
    return cwd / registry / "registry.json"


def metric_table(rows: list[tuple[str, Change]], base: str, floors: NoiseFloors, kind: str = "metric") -> str:
    """Old, new and change of each row, the metric's standard deviation over seeds and the verdict."""
    lines = [f"| {kind} | {base} | {WORKSPACE} | change | σ over seeds | vs noise |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, row in rows:
        std = floors.metric(row.key)
        found = _verdict(row, floors)
        lines.append(f"| {label} | {format_value(row.old)} | {format_value(row.new)} | {format_change(row.diff)} "
                     f"| {'?' if std is None else format_value(float(std))} "
                     f"| {f'**{found}**' if found == BEYOND else found} |")
    return "\n".join(lines)


def metric_details(rows: list[Change], base: str, floors: NoiseFloors) -> str:
    """The changed metrics outside the headline, folded: evaluation metrics, then DVCLive's training internals."""
    if not rows:
        return "No other metric changed."
    internals = [row for row in rows if row.key.startswith(DVCLIVE)]
    others = [row for row in rows if not row.key.startswith(DVCLIVE)]
    return "\n\n".join(
        details(f"{title}: {len(group)} changed ({_tally([_verdict(row, floors) for row in group])})",
                metric_table([(f"`{row.key}`", row) for row in group], base, floors))
        for title, group in [("Other metrics", others), ("Training internals (DVCLive)", internals)] if group)


def plots_section(plots: list[Plot], output: Path) -> str:
    """Plots that changed beyond noise, open; those within noise and DVCLive's curves, folded."""
    if not plots:
        return "No plot changed."
    shown = [plot for plot in plots if not plot.training and plot.verdict != WITHIN]
    quiet = [plot for plot in plots if not plot.training and plot.verdict == WITHIN]
    curves = [plot for plot in plots if plot.training]
    parts = [_images(shown, output) if shown else "No plot changed beyond noise."]
    if quiet:
        parts.append(details(f"{len(quiet)} {'plot' if len(quiet) == 1 else 'plots'} changed within noise",
                             _images(quiet, output)))
    if curves:
        parts.append(details(f"DVCLive training curves: {len(curves)} changed", _images(curves, output)))
    return "\n\n".join(parts)


def footer(floors: NoiseFloors, cwd: Path) -> str:
    rule = (f"A change is *within noise* when |change| ≤ {WIDTH}σ, *beyond noise* otherwise; a plot is shown open "
            "when a point moved beyond noise (or, with no σ for it, when its data differ).")
    path = _relative(floors.path, cwd)
    if not floors.measured:
        where = (f"No `{path}` here: {UNKNOWN} (measure it with `python benchmarks/seeds.py --seeds 0 1 2 3 4 "
                 f"--noise {path}`).")
    else:
        where = (f"σ: the standard deviation of each metric over seeds {', '.join(map(str, floors.seeds))} "
                 f"(`{path}`, from `{floors.source}`).")
    return f"---\n\n{where} {rule}"


def details(summary: str, body: str) -> str:
    """A collapsed section; GitHub renders Markdown inside it only after a blank line."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _images(plots: list[Plot], output: Path) -> str:
    files = output.parent / f"{output.stem}_files"
    files.mkdir(parents=True, exist_ok=True)
    images = []
    for plot in plots:
        path = files / f"{_slug(plot.name)}.png"
        path.write_bytes(to_png(plot.spec))
        images.append(f"![{plot.name}]({path.relative_to(output.parent).as_posix()})")
    return "\n\n".join(images)


def _dvclive_plots(root: Path) -> set[str]:
    """dvc.yaml's top-level plots drawn only from DVCLive files (a stage's own plots are named by their file)."""
    dvc_yaml = root / "dvc.yaml"
    definitions = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("plots", []) if dvc_yaml.is_file() else []
    curves = set()
    for entry in definitions:
        for name, spec in (entry.items() if isinstance(entry, dict) else []):
            files = list(spec["y"]) if isinstance(spec, dict) and isinstance(spec.get("y"), dict) else [name]
            if all(file.startswith(DVCLIVE) for file in files):
                curves.add(name)
    return curves


def _verdict(row: Change, floors: NoiseFloors) -> str:
    return verdict(row.old, row.new, floors.metric(row.key))


def _tally(verdicts: list[str]) -> str:
    return ", ".join(f"{verdicts.count(found)} {found}" for found in _ORDER if found in verdicts)


def _relative(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def _rows(values: list[dict], rev: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "rev"} for row in values if row.get("rev") == rev]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")
