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

from past.sandbox import ROOT, make_pipeline_repo, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="past-bench-") as folder:
        repo = make_pipeline_repo(Path(folder), args.params)
        stages = list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])  # written in DAG order
        times = {}
        for stage in stages:
            start = time.perf_counter()
            run(["dvc", "repro", "--single-item", stage], repo)
            times[stage] = time.perf_counter() - start
        run(["dvc", "status", "--quiet"], repo)  # fails if a stage was missed: the order really was the DAG's
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest single descendant
    print(f"fresh dvc repro: {sum(times.values()):.0f} s wall, peak RSS {peak_mib:.0f} MiB (largest process)")
    for stage, seconds in times.items():
        print(f"  {stage:<14} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
