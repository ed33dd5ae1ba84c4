"""PaST against target-SFT-only over several seeds: mean, spread and the gain on every seed.

One throw-away repository holds the pipeline (`--params` over params.yaml); each seed is a DVC experiment,
queued and run `--parallel` at a time by DVC's queue workers (one torch thread each, one per core), its
metrics read back from `dvc exp show --json`. Prints a Markdown table for the README.

    python benchmarks/seeds.py [--seeds 0 1 2] [--params params.yaml] [--parallel 2] [--json out.json]

The same with DVC alone, in a checkout of the project:

    dvc exp run --queue -n seed-0 -S seed=0      # and seed-1, seed-2
    dvc exp run --run-all -j 2                   # or: dvc queue start -j 2, then dvc queue status
    dvc exp show --md --drop '.*' --keep 'Experiment|^seed$|exact_match\\.|past_gain|past_share|cos_sft'
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from dvc.api import DVCFileSystem

from past.pipeline_repo import ROOT, make_pipeline_repo, run

MODELS = ["base", "target_sft", "past", "oracle", "control"]


def run_seeds(seeds: list[int], params: dict, parallel: int) -> dict[int, dict]:
    """Every seed's metrics/eval.json, with its orthogonality, disk use and lambda sweep."""
    with tempfile.TemporaryDirectory(prefix="past-seeds-") as folder:
        repo = make_pipeline_repo(Path(folder) / "repo", params)
        for seed in seeds:
            run(["dvc", "exp", "run", "--queue", "-n", f"seed-{seed}", "-S", f"seed={seed}"], repo)
        started = time.perf_counter()
        run(["dvc", "exp", "run", "--run-all", "-j", str(parallel)], repo)  # blocks until the queue is empty
        print(f"{len(seeds)} experiments, {parallel} at a time: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        experiments = experiments_by_name(json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout))
        return {seed: seed_results(repo, experiments[f"seed-{seed}"]) for seed in seeds}


def experiments_by_name(shown: list[dict]) -> dict[str, dict]:
    """`dvc exp show --json` -> {experiment name: its newest rev}, refusing any experiment that did not succeed."""
    experiments = {}
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            state = (experiment.get("executor") or {}).get("state", "success")
            if state != "success":
                raise RuntimeError(f"experiment {experiment['name']} {state}: {experiment['executor']['local']['log']}")
            experiments[experiment["name"]] = experiment["revs"][0]
    return experiments


def seed_results(repo: Path, experiment: dict) -> dict:
    metrics = experiment["data"]["metrics"]
    results = dict(metrics["metrics/eval.json"]["data"])
    results["orthogonality"] = metrics["metrics/orthogonality.json"]["data"]
    results["disk"] = metrics["metrics/disk.json"]["data"]
    # an experiment is a git commit: the sweep (committed plot data, not a metric) is read at its revision
    results["sweep"] = DVCFileSystem(str(repo), rev=experiment["rev"]).read_text("plots/lambda_sweep.csv")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every seed's metrics here")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    results = run_seeds(args.seeds, params, args.parallel)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))

    print(table(results, args.seeds))


def table(results: dict[int, dict], seeds: list[int]) -> str:
    """The README's Markdown table: exact match per model and seed, the gain, the oracle share and the cosines."""
    lines = [f"| model (lambda = {results[seeds[0]]['lambda']}) | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean ± std |", "| --- |" + " ---: |" * (len(seeds) + 1)]
    for model in MODELS:
        values = [results[s]["exact_match"][model] for s in seeds]
        lines.append(f"| {model} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {_mean_std(values)} |")
    gains = [results[s]["past_gain_over_target_sft"] for s in seeds]
    shares = [results[s].get("past_share_of_oracle", math.nan) for s in seeds]  # absent: the oracle scored 0
    cos_skill = [results[s]["orthogonality"]["cos_sft_source_vs_skill"] for s in seeds]
    cos_target = [results[s]["orthogonality"]["cos_sft_source_vs_sft_target"] for s in seeds]
    for label, values in [("PaST gain over target SFT (EM points x100)", [100 * g for g in gains]),
                          ("PaST / oracle", shares),
                          ("cos(Delta SFT_S, v)", cos_skill),
                          ("cos(Delta SFT_S, Delta SFT_T)", cos_target)]:
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {_mean_std(values)} |")
    return "\n".join(lines) + f"\n\ngain on every seed: {all(g > 0 for g in gains)}"


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


if __name__ == "__main__":
    main()
