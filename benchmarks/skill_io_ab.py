"""A/B of engine variants: `past skill inject` under different environments, interleaved with the I/O floor.

Each variant is a list of NAME=VALUE settings joined by '+' (an empty one is the checkout as it is). A variant
of the code itself runs through PYTHONPATH pointing at a patched copy of `src/`:

    python benchmarks/skill_io_ab.py --workdir /tmp/pb --repeat 7 "" "PYTHONPATH=/tmp/patched/src"

Uses the 1B checkpoints that `skill_io.py --sizes 1 --keep` generated in the same workdir (and extracts the
skill if it is missing). Round k runs every variant and the floor once, so slow minutes fall on all of them;
prints each one's median wall time, kernel time and its median per-round ratio to the floor.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import skill_io as bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="NAME=VALUE[+NAME=VALUE...] per variant; '' for none")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/past-bench"))
    ap.add_argument("--size", default="1", help="the size folder skill_io.py generated (default 1, i.e. 1B)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="append this run's results here, one JSON line per run")
    args = ap.parse_args()
    root = args.workdir / f"{float(args.size):g}B"
    target, skill, out = root / "sft_t", root / "skill.safetensors", root / "out"
    if not target.exists():
        raise SystemExit(f"no checkpoints in {root}: run skill_io.py --workdir {args.workdir} --sizes {args.size} --keep first")
    past = [bench.PYTHON, "-m", "past.cli", "skill"]
    if not skill.exists():
        subprocess.run(past + ["extract", "--rl", str(root / "rl_s"), "--sft", str(root / "sft_s"), "-o", str(skill), "-q"], check=True)
    inject = past + ["inject", "--target", str(target), "--skill", str(skill), "--lam", "1.0", "-o", str(out), "-q"]
    methods = [bench.spec(v or "(as checked out)", [["env", *filter(None, v.split("+"))] + inject], [target, skill], [out])
               for v in args.variants]
    methods.append(bench.spec("(e1) I/O floor", [bench.floor_cmd(out, target, skill)], [target, skill], [out]))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results = bench.measure(methods, root / "ab.log", args.repeat)
    floor = results[-1]
    print()
    for r in results:
        line = f"{r['method']}: warm {r['warm_wall_s']:.2f} s (kernel {sorted(r['warm_sys_s'])[len(r['warm_sys_s']) // 2]:.2f} s), " \
               f"cold {r['cold_wall_s']:.2f} s, peak RSS {r['peak_rss_mb']} MB"
        if r is not floor:
            line += f", vs. floor {bench.vs_floor(r, floor, 'warm'):.2f}x / {bench.vs_floor(r, floor, 'cold'):.2f}x"
        print(line)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"started": started, "repeat": args.repeat, "results": results}) + "\n")


if __name__ == "__main__":
    main()
