"""Wall time and peak memory of a fresh `dvc repro` on the default params (the README's figures).

Runs the whole pipeline in a throw-away repository (nothing cached), then prints the wall time, the
time of each stage and the peak resident memory of the largest process it started.

    python benchmarks/pipeline_cost.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import yaml

from past.pipeline_repo import ROOT, make_pipeline_repo, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="past-bench-") as folder:
        repo = make_pipeline_repo(Path(folder), args.params)
        stages = list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])  # written in DAG order
        times = {}
        for stage in stages:
            start_wall, start_cpu = time.perf_counter(), _children_cpu()
            run(["dvc", "repro", "--single-item", stage], repo)
            times[stage] = (time.perf_counter() - start_wall, _children_cpu() - start_cpu)
        run(["dvc", "status", "--quiet"], repo)  # fails if a stage was missed: the order really was the DAG's
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest single descendant
    wall, cpu = (sum(t[i] for t in times.values()) for i in (0, 1))
    # CPU time is the figure to trust on a busy machine: every stage runs one torch thread, so on an idle
    # machine wall time is about the same
    print(f"fresh dvc repro: {wall:.0f} s wall, {cpu:.0f} s CPU, peak RSS {peak_mib:.0f} MiB (largest process)")
    print(f"  {'stage':<14} {'wall s':>7} {'CPU s':>7}")
    for stage, (seconds, cpu_seconds) in times.items():
        print(f"  {stage:<14} {seconds:7.1f} {cpu_seconds:7.1f}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
