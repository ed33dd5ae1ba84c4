"""Plots a reader would rather look at than read: the lambda sweep as a PNG."""

from __future__ import annotations

from pathlib import Path

from past.files import atomic_path


_LABELS = {"exact_match": "exact match", "f1": "token F1", "contained": "answer contained",
           "judge": "judged correct", "call_success": "tool-call success"}


def plot_lambda_sweep(sweep: list[dict], references: dict[str, float], path: str | Path,
                      chosen_lambda: float | None = None, metric: str = "exact_match") -> Path:
    """`metric` against lambda, with horizontal lines for reference models (e.g. oracle, base)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    lambdas = [row["lambda"] for row in sweep]
    ax.plot(lambdas, [row[metric] for row in sweep], "o-", color="tab:blue",
            label="target SFT + $\\lambda$ v (PaST)")
    styles = iter(["tab:green", "tab:gray", "tab:red", "tab:purple"])
    for name, value in references.items():
        ax.axhline(value, linestyle="--", linewidth=1, color=next(styles), label=name)
    if chosen_lambda is not None:
        ax.axvline(chosen_lambda, linestyle=":", color="black", linewidth=1, label=f"injected $\\lambda$={chosen_lambda}")
    ax.set_xlabel("$\\lambda$ (skill-vector scale)")
    ax.set_ylabel(f"closed-book {_LABELS.get(metric, metric)}")
    ax.set_ylim(0, 1.02)
    ax.set_title("Skill injection on the target domain (no RL on target)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})  # no version stamp: same plot, same bytes
    plt.close(fig)
    return path
