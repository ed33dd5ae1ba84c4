"""PaST against target-SFT-only over several seeds: mean, spread and the gain on every seed.

Each seed runs the whole default pipeline (`dvc repro`) in its own throw-away repository; two run at
once (one torch thread each, one per core). Prints a Markdown table for the README.

    python benchmarks/seeds.py [--seeds 0 1 2] [--params params.yaml] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from past.pipeline_repo import ROOT, make_pipeline_repo, run

MODELS = ["base", "target_sft", "past", "oracle", "control"]


def run_seed(seed: int, params: dict) -> dict:
    """One fresh `dvc repro` of `params` at `seed`: its metrics, wall time and what its skill takes on disk."""
    with tempfile.TemporaryDirectory(prefix=f"past-seed{seed}-") as folder:
        folder = Path(folder)
        params_file = folder / "params.seed.yaml"
        params_file.write_text(yaml.safe_dump({**params, "seed": seed}))
        repo = make_pipeline_repo(folder / "repo", params_file)
        started = time.perf_counter()
        run(["dvc", "repro"], repo)
        metrics = json.loads((repo / "metrics/eval.json").read_text())
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        metrics["orthogonality"] = json.loads((repo / "metrics/orthogonality.json").read_text())
        metrics["disk"] = json.loads((repo / "metrics/disk.json").read_text())
        last = (repo / "models/skill_rl/LAST_ROUND").read_text().strip()
        rl = repo / "models/skill_rl" / last / "rl"  # with LoRA: the adapter, the RL update as trained
        metrics["rl_artifact_bytes"] = sum(f.stat().st_size for f in rl.glob("*.safetensors"))
        metrics["sweep"] = (repo / "plots/lambda_sweep.csv").read_text()
        return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every seed's metrics here")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    with ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(args.seeds, pool.map(lambda s: run_seed(s, params), args.seeds)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))

    print(f"| model (lambda = {params['inject']['lam']}) | " + " | ".join(f"seed {s}" for s in args.seeds)
          + " | mean ± std |")
    print("| --- |" + " ---: |" * (len(args.seeds) + 1))
    for model in MODELS:
        values = [results[s]["exact_match"][model] for s in args.seeds]
        print(f"| {model} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {_mean_std(values)} |")
    gains = [results[s]["past_gain_over_target_sft"] for s in args.seeds]
    shares = [results[s]["past_share_of_oracle"] for s in args.seeds]
    cos_skill = [results[s]["orthogonality"]["cos_sft_source_vs_skill"] for s in args.seeds]
    cos_target = [results[s]["orthogonality"]["cos_sft_source_vs_sft_target"] for s in args.seeds]
    for label, values in [("PaST gain over target SFT (EM points x100)", [100 * g for g in gains]),
                          ("PaST / oracle", shares),
                          ("cos(Delta SFT_S, v)", cos_skill),
                          ("cos(Delta SFT_S, Delta SFT_T)", cos_target)]:
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {_mean_std(values)} |")
    print(f"\ngain on every seed: {all(g > 0 for g in gains)}")


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


if __name__ == "__main__":
    main()
