"""PaST with LoRA against full fine-tuning on the embedded default, over several seeds.

Each (mode, seed) is a fresh `dvc repro` of params.yaml in its own repository (`run_seed`; one repro each,
not a DVC experiment queue, so that each run's wall time is its own); LoRA sets
`lora.rank` for every SFT and GRPO step (the base's pre-training stays full). Prints accuracy, wall time and
the size of the skill artifact: the RL update as trained (full: the whole RL model; LoRA: the adapter) and
the dense skill vector extracted from it.

    python benchmarks/lora_vs_full.py [--seeds 0 1 2] [--rank 16] [--parallel 2] [--json out.json]
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


def run_seed(seed: int, params: dict) -> dict:
    """One fresh `dvc repro` of `params` at `seed`: its metrics, wall time and what its skill takes on disk."""
    with tempfile.TemporaryDirectory(prefix=f"past-seed{seed}-") as folder:
        repo = make_pipeline_repo(Path(folder) / "repo", {**params, "seed": seed})
        started = time.perf_counter()
        run(["dvc", "repro"], repo)
        metrics = json.loads((repo / "metrics/eval.json").read_text())
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        metrics["disk"] = json.loads((repo / "metrics/disk.json").read_text())
        last = (repo / "models/skill_rl/LAST_ROUND").read_text().strip()
        rl = repo / "models/skill_rl" / last / "rl"  # with LoRA: the adapter, the RL update as trained
        metrics["rl_artifact_bytes"] = sum(f.stat().st_size for f in rl.glob("*.safetensors"))
        return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0)
    parser.add_argument("--modes", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    configs = {"full": base, "lora": {**base, "lora": {**base["lora"], "rank": args.rank, "alpha": args.alpha}}}
    jobs = [(mode, seed) for mode in args.modes for seed in args.seeds]
    with ThreadPoolExecutor(args.parallel) as pool:
        results = dict(zip(jobs, pool.map(lambda job: run_seed(job[1], configs[job[0]]), jobs)))
    if args.json:
        args.json.write_text(json.dumps({f"{m}/{s}": r for (m, s), r in results.items()}, indent=2))

    print(f"lambda = {base['inject']['lam']}, LoRA rank {args.rank}, alpha {args.alpha:g}; seeds {args.seeds}\n")
    print("| mode | target SFT | PaST | gain (points) | oracle | wall (s) | RL artifact (KB) | dense skill (KB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in args.modes:
        rs = [results[(mode, s)] for s in args.seeds]
        em = lambda name: _mean_std([r["exact_match"][name] for r in rs])  # noqa: E731
        gain = _mean_std([100 * r["past_gain_over_target_sft"] for r in rs], 1)
        wall = _mean_std([r["seconds"] for r in rs], 0)
        rl = statistics.mean(r["rl_artifact_bytes"] for r in rs) / 1024
        skill = statistics.mean(r["disk"]["bytes"]["skill"] for r in rs) / 1024
        print(f"| {mode} | {em('target_sft')} | {em('past')} | {gain} | {em('oracle')} | {wall} | {rl:,.0f} | "
              f"{skill:,.0f} |")
    print("\nper seed (target SFT -> PaST):")
    for (mode, seed), r in results.items():
        print(f"  {mode} seed {seed}: {r['exact_match']['target_sft']:.3f} -> {r['exact_match']['past']:.3f} "
              f"({r['seconds']:.0f} s)")


def _mean_std(values: list[float], digits: int = 3) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


if __name__ == "__main__":
    main()
