"""Summarise `skill_io_ab.py --json FILE` runs: is (a) within a bound of the I/O floor in every run, and every round?

    python benchmarks/skill_io_ab_summary.py benchmarks/results/skill_io_ab_reliability.jsonl --bound 1.5

One row per run: when it started, the medians of the first variant and of the floor, the median of their
per-round ratios, and how many single rounds were within the bound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import skill_io as bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="JSON lines written by skill_io_ab.py --json")
    ap.add_argument("--bound", type=float, default=1.5, help="the goal: wall time of (a) at most BOUND x the floor")
    args = ap.parse_args()
    print("| started | (a) warm / cold (s) | floor warm / cold (s) | vs. floor, warm / cold | "
          f"rounds within {args.bound:g}x, warm / cold |")
    print("| --- | ---: | ---: | ---: | ---: |")
    within = total = 0
    for line in args.runs.read_text().splitlines():
        run = json.loads(line)
        a, floor = run["results"][0], run["results"][-1]
        cells, counts = [], []
        for state in ("warm", "cold"):
            ratios = bench.round_ratios(a, floor, state)
            ok = sum(r <= args.bound for r in ratios)
            within, total = within + ok, total + len(ratios)
            counts.append(f"{ok}/{len(ratios)}")
            cells.append(f"{bench.vs_floor(a, floor, state):.2f}x")
        print(f"| {run['started']} | {a['warm_wall_s']:.2f} / {a['cold_wall_s']:.2f} | {floor['warm_wall_s']:.2f} / "
              f"{floor['cold_wall_s']:.2f} | {' / '.join(cells)} | {' / '.join(counts)} |")
    print(f"\nsingle rounds within {args.bound:g}x: {within} of {total}")


if __name__ == "__main__":
    main()
