"""Wall time and peak memory of a fresh `dvc repro` on the default params (the README's figures), and where
each stage's time goes.

Runs the whole pipeline in a throw-away repository (nothing cached), then prints the wall time, the
time of each stage and the peak resident memory of the largest process it started.

With `--profile`, every stage runs under the sampling profiler py-spy (`pip install py-spy`; ~1% overhead at
100 samples/s, unlike cProfile, which would inflate exactly the Python per-step overhead being measured), and
each stage's samples are split by what was on the stack: process start and imports, data preparation, the
training steps (and within them forward, backward, optimizer, data loading, logging), evaluation, writing,
DVC itself (the training stages run as the `past.launcher` they start with would exec them, and that
launcher's cost is measured apart). A training stage also reports tokens/s (from its DVCLive metrics) and the share of this core's
fp32 peak it reached, the peak measured here by a large fp32 matmul on one thread under the same kernel pins
(6 x parameters FLOPs per trained token, attention ignored: a floor).

With `--runner past`, the pipeline runs as one `past repro` (independent stages side by side, `--jobs` at a time)
and each stage's wall time is what `past repro` printed (they overlap). With the project's params.yaml, the run's
outputs are compared with the project's dvc.lock.

    python benchmarks/pipeline_cost.py [--params params.yaml] [--profile] [--json benchmarks/results/pipeline_cost.json]
    python benchmarks/pipeline_cost.py --runner past [--jobs 2] [--json ...]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from past.pipeline_repo import ROOT, make_pipeline_repo, run

# what a sample was doing: the first rule whose pattern appears in its stack (outermost frame first), in order
PHASES = [
    ("dvc", ("dvc/cli", "dvc/repo", "dvc/commands")),
    ("imports", ("_find_and_load", "_call_with_frames_removed")),
    ("writing", ("save_pretrained", "save_model", "_save_checkpoint", "safetensors", "atomic", "write_skill",
                 "SafetensorsFileWriter", "save_file")),
    ("evaluation", ("past/evaluation/", "closed_book_eval", "generate (transformers")),
    ("train: data loading", ("dataloader.py", "data_collator", "collate", "__next__ (accelerate")),
    ("train: logging + callbacks", ("callback_handler", "dvclive", "on_log", "_maybe_log_save_evaluate", "tqdm")),
    ("train: optimizer", ("optimizer.py", "adamw", "_single_tensor_adam", "_multi_tensor_adam", "lr_scheduler")),
    ("train: backward", ("backward (torch", "autograd", "_engine_run_backward")),
    ("train: forward", ("compute_loss", "forward (transformers", "_call_impl")),
    ("train: rest of the loop", ("_inner_training_loop", "training_step", "grpo_trainer")),
    ("data preparation", ("tokeniz", "datasets/", "past/knowledge/", "apply_chat_template", "_prepare_dataset")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--profile", action="store_true", help="split each stage's time by phase (needs py-spy)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--runner", choices=["dvc", "past"], default="dvc",
                        help="dvc: `dvc repro` stage by stage (each timed alone); past: one `past repro` (independent "
                             "stages side by side, --jobs at a time)")
    parser.add_argument("--jobs", type=int, default=2, help="with --runner past: stages at a time")
    args = parser.parse_args()
    if args.profile and args.runner == "past":
        raise SystemExit("error: --profile times stages one at a time: use it with --runner dvc")
    spy = shutil.which("py-spy") if args.profile else None
    if args.profile and not spy:
        raise SystemExit("error: --profile needs py-spy on PATH: pip install py-spy")
    peak = fp32_peak_gflops() if args.profile else None
    report: dict = {"stages": {}, "fp32_peak_gflops_one_thread": peak}
    with tempfile.TemporaryDirectory(prefix="past-bench-") as folder:
        repo = make_pipeline_repo(Path(folder), args.params)
        if spy:  # py-spy loses a process that execs: run what `past.launcher` would become (train.launcher python)
            dvc_yaml = repo / "dvc.yaml"
            dvc_yaml.write_text(dvc_yaml.read_text().replace("python -m past.launcher ", "python "))
            report["launcher_s"] = launcher_seconds(repo)
        stages = list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])  # written in DAG order
        if args.runner == "past":
            stages = []  # all of them in one `past repro`
            start_wall, start_cpu = time.perf_counter(), _children_cpu()
            output = run(["past", "repro", "--jobs", str(args.jobs)], repo).stdout
            report["runner"] = f"past repro --jobs {args.jobs}"
            report["wall_s"] = round(time.perf_counter() - start_wall, 1)
            report["cpu_s"] = round(_children_cpu() - start_cpu, 1)
            for stage, seconds in re.findall(r"^  (\S+) +(?:done|unchanged) \(([0-9.]+) s\)$", output, re.M):
                report["stages"][stage] = {"wall_s": float(seconds)}  # side by side: they overlap
        for stage in stages:
            start_wall, start_cpu = time.perf_counter(), _children_cpu()
            command = ["dvc", "repro", "--single-item", stage]
            raw = Path(folder) / f"{stage}.spy"
            if spy:  # every process of the stage, DVC's and the stage script's, sampled
                command = [spy, "record", "--rate", "100", "--subprocesses", "--nonblocking", "--format", "raw",
                           "--output", str(raw), "--", *command]
            result = run(command, repo)
            entry = {"wall_s": round(time.perf_counter() - start_wall, 1),
                     "cpu_s": round(_children_cpu() - start_cpu, 1)}
            if spy:
                entry["phases_s"] = phases(raw, rate=100)
                params = _parameters(repo / "models" / "base")  # every training stage trains the base's architecture
                entry.update(throughput(result.stdout + result.stderr, entry, peak, params))
            report["stages"][stage] = entry
        run(["dvc", "status", "--quiet"], repo)  # fails if a stage was missed: the order really was the DAG's
        if args.params.resolve() == (ROOT / "params.yaml").resolve():
            report["outputs_differing_from_dvc_lock"] = differing_outputs(repo / "dvc.lock", ROOT / "dvc.lock")
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)  # largest one
    if args.runner == "dvc":
        report["runner"] = "dvc repro, stage by stage"
        report["wall_s"] = round(sum(s["wall_s"] for s in report["stages"].values()), 1)
        report["cpu_s"] = round(sum(s["cpu_s"] for s in report["stages"].values()), 1)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def differing_outputs(lock: Path, reference: Path) -> list[str]:
    """The stages whose outputs (path and md5) differ between two dvc.lock files: [] when bit-identical."""
    def outs(path: Path) -> dict:
        return {name: [(o["path"], o.get("md5")) for o in stage.get("outs", [])]
                for name, stage in yaml.safe_load(path.read_text())["stages"].items()}
    ours, theirs = outs(lock), outs(reference)
    return sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))


def phases(raw: Path, rate: int) -> dict[str, float]:
    """Seconds per phase from py-spy's raw output (one collapsed stack and its sample count per line)."""
    seconds: Counter = Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if all(frame.startswith("process ") for frame in stack.split(";")):  # no Python frame yet or at all
            phase = "process start, native code"
        else:
            phase = next((name for name, patterns in PHASES if any(p in stack for p in patterns)), "other")
        seconds[phase] += int(count) / rate
    return {name: round(s, 1) for name, s in seconds.most_common()}


def throughput(output: str, entry: dict, peak: float | None, params: int) -> dict:
    """Tokens/s of a training stage's steps and the share of the fp32 peak: the tokens are the trainer's
    last logged `num_tokens` (it logs every 1/50 of the steps, the last at the end)."""
    logged = re.findall(r"'num_tokens': '([0-9.e+-]+)'", output)
    train_s = sum(s for name, s in entry["phases_s"].items() if name.startswith("train:"))
    if not logged or not train_s:
        return {}
    tokens = float(logged[-1])
    out = {"tokens": int(tokens), "tokens_per_s": round(tokens / train_s)}
    if peak:
        out["fp32_peak_share"] = round(6 * params * tokens / train_s / 1e9 / peak, 4)
    return out


def _parameters(model_dir: Path) -> int:
    import math

    from safetensors import safe_open

    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "np") as handle:
            total += sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return total


def launcher_seconds(repo: Path) -> float:
    """What `python -m past.launcher` costs a training stage before it execs the stage: a Python that checks
    params.yaml (the profiled run leaves it out, since py-spy cannot follow an exec)."""
    start = time.perf_counter()
    run(["python", "-c", "from past.config import load_params; from past.launcher import argv; "
                         "argv(load_params('params.yaml').train.launcher, 'stages/base.py')"], repo)
    return round(time.perf_counter() - start, 2)


def fp32_peak_gflops(n: int = 1024, repeats: int = 20) -> float:
    """What one thread of this CPU reaches on a large fp32 matmul (MKL/oneDNN), in GFLOP/s."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return round(2 * n**3 * repeats / (time.perf_counter() - start) / 1e9, 1)


def print_report(report: dict) -> None:
    print(f"fresh {report['runner']}: {report['wall_s']:.0f} s wall, {report['cpu_s']:.0f} s CPU, "
          f"peak RSS {report['peak_rss_mib']} MiB (largest process)")
    if "outputs_differing_from_dvc_lock" in report:
        differing = report["outputs_differing_from_dvc_lock"]
        print("outputs: " + (f"differ from the project's dvc.lock in {', '.join(differing)}" if differing
                             else "bit-identical to the project's dvc.lock"))
    if "launcher_s" in report:
        print(f"past.launcher before its exec (left out of the profiled training stages): {report['launcher_s']} s each")
    if report["fp32_peak_gflops_one_thread"]:
        print(f"fp32 peak, one thread (1024^3 matmul): {report['fp32_peak_gflops_one_thread']} GFLOP/s")
    print(f"  {'stage':<14} {'wall s':>7} {'CPU s':>7}  phases (s)")
    for stage, s in report["stages"].items():
        split = ", ".join(f"{k} {v:g}" for k, v in s.get("phases_s", {}).items())
        rate = (f"  [{s['tokens_per_s']} tokens/s, {100 * s['fp32_peak_share']:.1f}% of fp32 peak]"
                if "fp32_peak_share" in s else "")
        cpu = f"{s['cpu_s']:7.1f}" if "cpu_s" in s else f"{'':>7}"
        print(f"  {stage:<14} {s['wall_s']:7.1f} {cpu}  {split}{rate}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
