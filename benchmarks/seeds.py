"""Does PaST work across seeds, and is lambda chosen well? Fresh `dvc repro` runs of the pipeline, one per seed.

Each seed runs in a throw-away repository of its own (`--params` over params.yaml, then any `-S key=value`,
`inject.lam` left to the validation choice), `--parallel` at a time (their OpenMP threads sleep when idle: past.kernels.SIDE_BY_SIDE).
Prints the README's results table and the lambda-choice table: the lambda chosen on the source's validation questions, PaST there, PaST at a
fixed 0.5, and the best lambda in hindsight (the target sweep's maximum, which peeks at the test).

`--machine` runs every seed on an emulated CPU (benchmarks/cpu_kernels.py); `--compare` then checks that every
stage output has the hash another run's `--json` recorded: the same numbers on another machine, or not.
`--noise` writes the noise floors `past report` tells a change from noise with (past.evaluation.noise): the mean
and standard deviation over the seeds of every numeric metric, and the spread of a point of each plot table.

    python benchmarks/seeds.py --seeds 0 1 2 3 4 --json benchmarks/results/seeds.json \\
        --noise benchmarks/results/noise.json
    python benchmarks/seeds.py --seeds 0 1 2 3 4 --machine "AVX2 only" --compare benchmarks/results/seeds.json
    python benchmarks/seeds.py --seeds 0 1 2 -S lora.rank=16 -S lora.alpha=32   # LoRA against full (docs/training.md)

The table's last rows say what the skill takes on disk: the RL update as trained (full: the whole RL model; LoRA:
the adapter) and the dense skill vector extracted from it.

The same seeds as DVC experiments, in a checkout of the project:

    dvc exp run --queue -n seed-0 -S seed=0      # and seed-1, seed-2
    dvc exp run --run-all -j 2                   # or: dvc queue start -j 2, then dvc queue status
    dvc exp show --md --drop '.*' --keep 'Experiment|^seed$|exact_match\\.|past_gain|past_share|cos_sft'
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from cpu_kernels import MACHINES
from past.evaluation.noise import measure
from past.kernels import SIDE_BY_SIDE
from past.pipeline_repo import ROOT, deep_merge, dotted_override, make_pipeline_repo, run

MODELS = ["base", "target_sft", "past", "oracle", "control"]
FIXED = 0.5  # the lambda the paper's recipe and the old default used


def run_seed(seed: int, params: dict, machine: dict) -> dict:
    """One fresh `dvc repro` at `seed`: every metric file, plot table and stage output hash it left."""
    with tempfile.TemporaryDirectory(prefix=f"past-seed{seed}-") as folder:
        repo = make_pipeline_repo(Path(folder) / "repo",
                                  {**params, "seed": seed, "inject": {**params.get("inject", {}), "lam": None}})
        started = time.perf_counter()
        run(["dvc", "repro"], repo, env=machine)
        seconds = time.perf_counter() - started
        files = [*repo.glob("metrics/*.json"), *repo.glob("dvclive/*/metrics.json")]
        lock = yaml.safe_load((repo / "dvc.lock").read_text())
        last = (repo / "models/skill_rl/LAST_ROUND").read_text().strip()
        rl = repo / "models/skill_rl" / last / "rl"  # with LoRA: the adapter, the RL update as trained
        return {"seed": seed, "seconds": round(seconds, 1),
                "rl_artifact_bytes": sum(f.stat().st_size for f in rl.glob("*.safetensors")),
                "metrics": {str(f.relative_to(repo)): json.loads(f.read_text()) for f in files},
                "plots": {str(f.relative_to(repo)): list(csv.DictReader(f.read_text().splitlines()))
                          for f in repo.glob("plots/*.csv")},
                "outs": {out["path"]: out.get("md5") for stage in lock["stages"].values() for out in stage.get("outs", [])}}


def lambda_row(result: dict) -> dict:
    """The lambda choice of one seed against the fixed 0.5 and the best in hindsight."""
    metrics, choice = result["metrics"]["metrics/eval.json"], result["metrics"]["metrics/lambda_choice.json"]
    metric = metrics["metric"]
    sweep = {float(row["lambda"]): float(row[metric]) for row in result["plots"]["plots/lambda_sweep.csv"]}
    best = max(sweep.values())
    hindsight = min((lam for lam, s in sweep.items() if s >= best - 1e-9), key=lambda x: (abs(x), x))
    return {"seed": result["seed"], "metric": metric, "chosen": choice["lambda"], "validation": choice["score"],
            "tied": choice.get("tied", 1), "questions": choice["questions"], "past_chosen": metrics[metric]["past"],
            "past_fixed": sweep.get(FIXED, math.nan), "hindsight": hindsight, "past_hindsight": best,
            "target_sft": metrics[metric]["target_sft"]}


def results_table(results: list[dict]) -> str:
    """Exact match per model and seed, the gain, the oracle share, the cosines and the lambda chosen."""
    evals = [r["metrics"]["metrics/eval.json"] for r in results]
    cosines = [r["metrics"]["metrics/orthogonality.json"] for r in results]
    lines = ["| model | " + " | ".join(f"seed {r['seed']}" for r in results) + " | mean ± std |",
             "| --- |" + " ---: |" * (len(results) + 1)]
    rows = [(model, [e["exact_match"][model] for e in evals]) for model in MODELS]
    rows += [("PaST gain over target SFT (points)", [100 * e["past_gain_over_target_sft"] for e in evals]),
             ("PaST / oracle", [e.get("past_share_of_oracle", math.nan) for e in evals]),  # absent: oracle scored 0
             ("lambda chosen on validation", [e["lambda"] for e in evals]),
             ("cos(Delta SFT_S, v)", [c["cos_sft_source_vs_skill"] for c in cosines]),
             ("cos(Delta SFT_S, Delta SFT_T)", [c["cos_sft_source_vs_sft_target"] for c in cosines]),
             ("wall time of dvc repro (s)", [r["seconds"] for r in results]),
             ("RL update on disk (KB)", [r["rl_artifact_bytes"] // 1024 for r in results]),
             ("dense skill vector (KB)", [r["metrics"]["metrics/disk.json"]["bytes"]["skill"] // 1024 for r in results])]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else f"{v}" for v in values)
                     + f" | {_mean_std(values)} |")
    gains = [e["past_gain_over_target_sft"] for e in evals]
    return "\n".join(lines) + f"\n\ngain on every seed: {all(g > 0 for g in gains)}"


def lambda_table(rows: list[dict]) -> str:
    metric = rows[0]["metric"]
    lines = [f"| seed | chosen lambda (validation {metric}, tied candidates) | PaST at chosen | PaST at {FIXED:g} | "
             f"best lambda in hindsight | PaST there | target SFT |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['chosen']:g} ({r['validation']:.3f} on {r['questions']}, {r['tied']} tied) | "
                     f"{r['past_chosen']:.3f} | {r['past_fixed']:.3f} | {r['hindsight']:g} | "
                     f"{r['past_hindsight']:.3f} | {r['target_sft']:.3f} |")
    mean = {key: statistics.mean(r[key] for r in rows) for key in ("past_chosen", "past_fixed", "past_hindsight",
                                                                  "target_sft")}
    lines.append(f"| mean | | {mean['past_chosen']:.3f} | {mean['past_fixed']:.3f} | | {mean['past_hindsight']:.3f} | "
                 f"{mean['target_sft']:.3f} |")
    return "\n".join(lines)


def compare(results: list[dict], recorded: list[dict]) -> list[str]:
    """Where these runs' stage outputs differ from a recorded run's, seed by seed."""
    by_seed = {r["seed"]: r["outs"] for r in recorded}
    return [f"seed {r['seed']}: {path} {by_seed[r['seed']].get(path)} -> {md5}"
            for r in results if r["seed"] in by_seed for path, md5 in r["outs"].items()
            if by_seed[r["seed"]].get(path) != md5]


def write_noise(path: Path, results: list[dict], source: str) -> None:
    floors = measure({r["seed"]: r["metrics"] for r in results}, {r["seed"]: r["plots"] for r in results}, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(floors, indent=2) + "\n", encoding="utf-8")
    print(f"{path}: noise floors of {len(floors['metrics'])} metrics and {len(floors['plots'])} plot columns",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param over --params, as `dvc exp run -S` (e.g. lora.rank=16); repeatable")
    parser.add_argument("--parallel", type=int, default=2,
                        help="seeds at a time (at most 2). With --parallel 1 beside another run on the same cores, "
                             "export OMP_WAIT_POLICY=PASSIVE: spinning threads made each seed ~4x slower here")
    parser.add_argument("--machine", choices=list(MACHINES), default=next(iter(MACHINES)),
                        help="the emulated CPU every seed runs on (default: this one, uncapped)")
    parser.add_argument("--json", type=Path, help="also write every seed's metrics, plots and output hashes here")
    parser.add_argument("--compare", type=Path, help="a --json of another run: report any output that differs")
    parser.add_argument("--noise", type=Path, help="also write the noise floors here (benchmarks/results/noise.json, "
                                                   "which `past report` reads)")
    args = parser.parse_args()
    if args.noise and len(set(args.seeds)) < 2:
        parser.error("--noise needs at least two seeds: a spread over one is no measure")
    params = deep_merge(yaml.safe_load(args.params.read_text()), dotted_override(args.set))
    results, parallel = [], min(args.parallel, 2)  # 2 cores: more at once only slows each
    env = {**MACHINES[args.machine], **(SIDE_BY_SIDE if parallel > 1 else {})}  # the same bits, less spinning
    with ThreadPoolExecutor(parallel) as pool:
        for result in pool.map(lambda s: run_seed(s, params, env), args.seeds):
            results.append(result)
            print(f"seed {result['seed']}: {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": "python " + shlex.join(sys.argv), "machine": args.machine,
                                         "seeds": results}, indent=2) + "\n")
    if args.noise:
        write_noise(args.noise, results, source="python " + shlex.join(sys.argv))
    print(f"machine: {args.machine}\n")
    print(results_table(results) + "\n")
    print(lambda_table([lambda_row(r) for r in results]))
    if args.compare:
        differences = compare(results, json.loads(args.compare.read_text())["seeds"])
        print(f"\noutputs against {args.compare}: " + ("every one identical" if not differences else
                                                      f"{len(differences)} differ\n" + "\n".join(differences)))


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


if __name__ == "__main__":
    main()
