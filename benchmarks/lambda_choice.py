"""Lambda chosen on held-out source questions, against the fixed 0.5 and the best value in hindsight.

Each seed runs the whole default pipeline (`dvc repro`, `inject.lam: null`) in its own throw-away repository;
two run at once at most (one torch thread each). Per seed: the lambda extract_skill chose on the source's
validation questions (metrics/lambda_choice.json) and PaST's score on the target's evaluation questions at that
lambda (metrics/eval.json), next to PaST at 0.5 and at the best lambda of the evaluation sweep
(plots/lambda_sweep.csv: the report, which peeks at the test, so no method could pick it) and target SFT alone.
Prints a Markdown table for the README.

    python benchmarks/lambda_choice.py [--seeds 0 1 2] [--params params.yaml] [--parallel 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from past.pipeline_repo import ROOT, make_pipeline_repo, run

FIXED = 0.5


def run_seed(seed: int, params: dict) -> dict:
    """One fresh `dvc repro` at `seed` with lambda left to the validation choice: the numbers of one row."""
    with tempfile.TemporaryDirectory(prefix=f"past-lam{seed}-") as folder:
        folder = Path(folder)
        params_file = folder / "params.seed.yaml"
        params_file.write_text(yaml.safe_dump({**params, "seed": seed, "inject": {**params["inject"], "lam": None}}))
        repo = make_pipeline_repo(folder / "repo", params_file)
        started = time.perf_counter()
        run(["dvc", "repro"], repo)
        choice = json.loads((repo / "metrics/lambda_choice.json").read_text())
        metrics = json.loads((repo / "metrics/eval.json").read_text())
        sweep = list(csv.DictReader(io.StringIO((repo / "plots/lambda_sweep.csv").read_text())))
    metric = metrics["metric"]
    scores = {float(row["lambda"]): float(row[metric]) for row in sweep}
    if FIXED not in scores:
        raise SystemExit(f"evaluate.lambdas has no {FIXED}: the fixed lambda is read from the sweep")
    best = max(scores.values())
    hindsight = min((lam for lam, s in scores.items() if s >= best - 1e-9), key=lambda x: (abs(x), x))
    assert metrics["lambda"] == choice["lambda"], (metrics["lambda"], choice["lambda"])  # inject used the choice
    return {"seed": seed, "metric": metric, "chosen": choice["lambda"], "validation": choice["score"],
            "validation_questions": choice["questions"], "past_chosen": metrics[metric]["past"],
            "past_fixed": scores[FIXED], "hindsight": hindsight, "past_hindsight": best,
            "target_sft": metrics[metric]["target_sft"], "sweep": scores,
            "seconds": round(time.perf_counter() - started, 1)}


def table(rows: list[dict]) -> str:
    metric = rows[0]["metric"]
    lines = [f"| seed | chosen lambda (validation {metric}) | PaST at chosen | PaST at {FIXED} | "
             f"best lambda in hindsight | PaST there | target SFT |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['chosen']:g} ({r['validation']:.3f} on {r['validation_questions']}) | "
                     f"{r['past_chosen']:.3f} | {r['past_fixed']:.3f} | {r['hindsight']:g} | "
                     f"{r['past_hindsight']:.3f} | {r['target_sft']:.3f} |")
    mean = {key: statistics.mean(r[key] for r in rows) for key in ("past_chosen", "past_fixed", "past_hindsight",
                                                                  "target_sft")}
    lines.append(f"| mean | | {mean['past_chosen']:.3f} | {mean['past_fixed']:.3f} | | {mean['past_hindsight']:.3f} | "
                 f"{mean['target_sft']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every seed's numbers here")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    rows = []
    with ThreadPoolExecutor(min(args.parallel, 2)) as pool:  # 2 cores: more at once only slows each
        for row in pool.map(lambda s: run_seed(s, params), args.seeds):
            rows.append(row)
            print(f"seed {row['seed']}: chose {row['chosen']:g}, PaST {row['past_chosen']:.3f} "
                  f"({row['seconds']:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
