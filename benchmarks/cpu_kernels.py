"""Are the numbers the same on every x86 CPU, and what does it cost? The `base` stage under emulated machines.

Each machine is emulated on this one by capping what torch's kernel libraries may use (the variables must be
set before torch computes, so every run is a fresh process): ATen's vectorised loops (`ATEN_CPU_CAPABILITY`),
MKL's GEMMs (`MKL_ENABLE_INSTRUCTIONS`) and oneDNN, which runs bf16 autocast's matmuls (`ONEDNN_MAX_CPU_ISA`).
Every configuration trains the same `base` stage (the embedded default, `--steps` steps) in a throw-away
repository from the same prepared world; the table gives the model's hash and the speed, per compute precision
and kernel policy (`pinned`: past.kernels, the default; `native`: `PAST_CPU_KERNELS=native`, torch's own pick).

    python benchmarks/cpu_kernels.py [--steps 200] [--json benchmarks/results/cpu_kernels.json]
    python benchmarks/cpu_kernels.py --steps 150 --mkl AVX2 COMPATIBLE   # the pins with each MKL branch, this CPU

`--mkl` answers the vendor question instead: the fp32 base stage under the pins with each `MKL_CBWR` branch named,
uncapped; run on two vendors' CPUs, equal hashes mean the branch gives the same bits on both.

Needs an x86 CPU with AMX (Sapphire Rapids or later) to emulate all four machines; on others the caps above
what the CPU has change nothing (and say so in the hash column).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from past.kernels import PINNED
from past.pipeline_repo import make_pipeline_repo, run

MACHINES = {  # what each emulated machine's CPU offers torch's kernel libraries
    "this CPU, uncapped": {},  # the Xeon with AMX where the table in docs/reproducibility.md was measured
    "AVX-512 BF16, no AMX": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
    "AVX-512, no BF16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "AVX2 only": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
CAPS = {key for machine in MACHINES.values() for key in machine}
CONFIGURATIONS = [("bf16", "native"), ("fp32", "native"), ("fp32", "pinned")]


@contextmanager
def uncapped_environment():
    """This process's environment without any kernel variable: importing past pinned them here (past.kernels), and
    a child would inherit them, so that a `native` run would not be native and a machine's caps would mix with
    the pins."""
    saved = {key: os.environ.pop(key) for key in [*PINNED, *CAPS] if key in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def train_base(root: Path, precision: str, kernels: str, machine: dict, steps: int) -> dict:
    """The base stage's model hash and steps per second in a fresh process under one emulated machine."""
    env = {**machine, "PAST_CPU_KERNELS": kernels}
    repo = make_pipeline_repo(root, {"base": {"steps": steps}, "train": {"precision": precision}})
    with uncapped_environment():
        run(["dvc", "repro", "-q", "prepare"], repo, env=env)
        started = time.perf_counter()
        run(["python", "stages/base.py"], repo, env=env)
        seconds = time.perf_counter() - started
    digest = hashlib.sha256((repo / "models/base/model.safetensors").read_bytes()).hexdigest()
    shutil.rmtree(repo)
    return {"sha256": digest, "seconds": round(seconds, 1), "steps_per_s": round(steps / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--mkl", nargs="+", metavar="BRANCH", help="only the pins with each of these MKL_CBWR branches")
    args = parser.parse_args()
    rows = []
    if args.mkl:
        with tempfile.TemporaryDirectory(prefix="past-kernels-") as folder:
            for branch in args.mkl:  # PAST_CPU_KERNELS=native, so that the pins come only from here
                result = train_base(Path(folder) / branch, "fp32", "native", {**PINNED, "MKL_CBWR": branch}, args.steps)
                rows.append({"precision": "fp32", "kernels": "pinned", "mkl_cbwr": branch, **result})
                print(f"MKL_CBWR={branch:12} {result['sha256'][:8]} {result['seconds']:6.1f} s", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="past-kernels-") as folder:
        for precision, kernels in CONFIGURATIONS:
            for i, (name, machine) in enumerate(MACHINES.items()):
                result = train_base(Path(folder) / f"{precision}-{kernels}-{i}", precision, kernels, machine, args.steps)
                rows.append({"precision": precision, "kernels": kernels, "machine": name, **result})
                print(f"{precision:4} {kernels:6} {name:22} {result['sha256'][:12]} {result['steps_per_s']:5.2f} steps/s",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2) + "\n")
    print()
    print(table(rows, args.steps))


def table(rows: list[dict], steps: int) -> str:
    """Markdown: one line per precision and kernel policy, a column per machine (hash letter, steps/s)."""
    lines = [f"| compute, kernels ({steps} base steps) | " + " | ".join(MACHINES) + " | models |",
             "| --- |" + " --- |" * (len(MACHINES) + 1)]
    for precision, kernels in CONFIGURATIONS:
        group = [r for r in rows if (r["precision"], r["kernels"]) == (precision, kernels)]
        hashes = list(dict.fromkeys(r["sha256"] for r in group))
        cells = [f"{chr(65 + hashes.index(r['sha256']))} ({r['sha256'][:8]}), {r['steps_per_s']:.1f}/s" for r in group]
        distinct = "one, the same everywhere" if len(hashes) == 1 else f"{len(hashes)} different"
        lines.append(f"| {precision}, {kernels} | " + " | ".join(cells) + f" | {distinct} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
