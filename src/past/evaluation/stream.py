"""A stream of knowledge drops as a person reads it: accuracy per drop, the continual-learning figures, a plot.

Rows come from a stream benchmark's full matrix (`benchmarks/stream.py`: production scored on every drop
after each one) or from a registry's decision log (`rows_from_decisions`: what the gate measured). One row
per drop, in landing order: {"drop", "decision", "kind", "new" (the drop's questions right after it),
"average" (mean over the drops learned so far, when known), "original" (the original regression set),
"seconds" (landing -> decision)}.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from past.files import atomic_path


def figures(matrix: list[list[float]]) -> dict:
    """ACC, BWT and the just-learned mean of an accuracy matrix: `matrix[k][j]` is production's accuracy on
    drop j's questions after drop k landed (j <= k). ACC is the mean over all drops after the last; BWT the
    mean change, over every drop but the last, from just after it landed to the end (negative: forgetting)."""
    last = matrix[-1]
    just = [matrix[j][j] for j in range(len(matrix))]
    bwt = [last[j] - just[j] for j in range(len(matrix) - 1)]
    return {"acc": round(statistics.fmean(last), 4), "just_learned": round(statistics.fmean(just), 4),
            "bwt": round(statistics.fmean(bwt), 4) if bwt else 0.0}


def rows_from_decisions(decisions: list[dict]) -> list[dict]:
    """One row per drop decided by the gate (incremental or consolidation), from a registry's decision log:
    a promoted drop's candidate scores, a rejected one's production scores (what stayed in production)."""
    rows = []
    for d in decisions:
        metrics = d.get("metrics") or {}
        if d.get("stage") not in ("gate", "consolidation") or "new_candidate_exact_match" not in metrics:
            continue
        model = "candidate" if d["decision"] == "promoted" else "production"
        rows.append({"drop": d["drop"]["name"], "decision": d["decision"], "kind": d.get("kind", "incremental"),
                     "new": metrics[f"new_{model}_exact_match"],
                     "earlier": metrics.get(f"earlier_{model}_exact_match"),
                     "original": metrics.get(f"regression_{model}_exact_match"),
                     "seconds": (d.get("timings") or {}).get("total", {}).get("seconds")})
    return rows


def plot_stream(rows: list[dict], path: str | Path, title: str = "A stream of knowledge drops",
                compare: list[dict] | None = None, compare_label: str = "") -> Path:
    """Accuracy per drop over the stream: each drop's questions right after it landed, the average over all
    drops learned so far (or the earlier drops' sample), the original set; consolidations as dotted lines,
    rejections as crosses; `compare` (another arm's rows) as thin dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    x = list(range(1, len(rows) + 1))
    fig, ax = plt.subplots(figsize=(9.5, 3.8), dpi=120)
    average = "average" if any(r.get("average") is not None for r in rows) else "earlier"
    series = [("new", "the drop's questions, just learned", "tab:blue"),
              (average, "all drops so far (average)" if average == "average" else "earlier drops (gate's sample)",
               "tab:green"),
              ("original", "original target set", "tab:gray")]
    for key, label, color in series:
        points = [(i, r[key]) for i, r in zip(x, rows) if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), "o-", markersize=3, color=color, label=label)
        if compare:
            points = [(i, r[key]) for i, r in zip(x, compare) if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), "--", linewidth=1, color=color, label=f"{label}, {compare_label}")
    for i, r in zip(x, rows):
        if r.get("kind") == "consolidation" and r["decision"] == "promoted":
            ax.axvline(i, linestyle=":", linewidth=1, color="tab:purple")
        if r["decision"] != "promoted":
            ax.plot(i, r["new"], "x", color="tab:red", markersize=8)
    if any(r.get("kind") == "consolidation" and r["decision"] == "promoted" for r in rows):
        ax.plot([], [], ":", color="tab:purple", label="consolidated (SFT on all knowledge + skill)")
    if any(r["decision"] != "promoted" for r in rows):
        ax.plot([], [], "x", color="tab:red", label="rejected: production kept")
    ax.set_xlabel("drop")
    ax.set_ylabel("closed-book exact match")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(x)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})  # no version stamp: same plot, same bytes
    plt.close(fig)
    return path


def stream_section(registry_state: Path, output: Path, last: int = 10) -> str | None:
    """The report's section on continual adaptation, from a registry's registry.json: drops adopted, the
    consolidations, the latest drops' scores and the stream plot (a PNG beside `output`); None without drops."""
    import json

    if not registry_state.is_file():
        return None
    rows = rows_from_decisions(json.loads(registry_state.read_text(encoding="utf-8")).get("decisions", []))
    if not rows:
        return None
    files = output.parent / f"{output.stem}_files"
    files.mkdir(parents=True, exist_ok=True)
    image = plot_stream(rows, files / "stream.png", f"{len(rows)} drops decided by the gate")
    adopted = sum(r["decision"] == "promoted" for r in rows)
    consolidated = sum(r["decision"] == "promoted" and r["kind"] == "consolidation" for r in rows)
    lines = [f"{adopted} of {len(rows)} drops adopted ({consolidated} by a consolidation), from "
             f"`{registry_state}`; scores are the gate's (the production model after each decision).", "",
             f"![stream]({image.relative_to(output.parent).as_posix()})", "",
             "| drop | decision | how | its questions | earlier drops | original set | seconds |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    cell = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows[-last:]:
        lines.append(f"| {r['drop']} | {r['decision']} | {r['kind']} | {cell(r['new'])} | {cell(r['earlier'])} | "
                     f"{cell(r['original'])} | {'-' if r['seconds'] is None else round(r['seconds'])} |")
    return "\n".join(lines)
