"""Benchmark: skill injection at scale, against mergekit, the naive way and the I/O floor.

Generates synthetic Llama-layout checkpoints (bf16, 5 shards) for theta_sft_S, theta_rl_S and theta_sft_T,
then times, each in its own process (peak RSS from wait4, wall time from the parent):

  (a)  past skill inject with a pre-extracted skill
  (a') the same through past.skills.inject() inside a running Python process (no interpreter/torch startup)
  (b)  past skill extract + past skill inject
  (c)  mergekit task_arithmetic (base_model = sft_S, sft_T at weight 1, rl_S at weight lambda)
  (d)  naive: from_pretrained x3, add in fp32, save_pretrained
  (e1) I/O floor of (a): read target + skill, write one output of the same size (plain file copies)
  (e2) I/O floor of (c)/(d): read the three models, write one output of the same size

and (a), (b), (e1) again at every smaller size, to show memory is flat. Each method runs twice: from a warm
page cache (inputs read just before) and from a cold one (inputs evicted with posix_fadvise DONTNEED).
Dirty pages are synced before each run; no method fsyncs its own output.

    python benchmarks/skill_io.py --workdir /tmp/past-bench --sizes 0.25,0.5,1

Two more modes, on the 1B checkpoints a `--sizes 1 --keep` run left in the workdir:

    python benchmarks/skill_io.py ab --workdir /tmp/pb --repeat 7 "" "PYTHONPATH=/tmp/patched/src"
    python benchmarks/skill_io.py summary benchmarks/results/skill_io_ab_reliability.jsonl --bound 1.5

`ab` is an A/B of engine variants: (a) under different environments, interleaved with the I/O floor. Each
variant is a list of NAME=VALUE settings joined by '+' (an empty one is the checkout as it is); a variant of the
code itself runs through PYTHONPATH pointing at a patched copy of `src/`. Round k runs every variant and the
floor once, so slow minutes fall on all of them; it prints each one's median wall time, kernel time and its
median per-round ratio to the floor (`--json F` appends the run to F, one line per run). `summary` reads such
runs: is (a) within a bound of the I/O floor in every run, and every round?
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

# torch is imported inside the functions that need it: this file is also the tiny launcher that measures
# each method (see `run`), and the floor must not pay for an import it does not need.

HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, VOCAB = 2048, 5632, 32, 4, 32000  # TinyLlama-1.1B's layout
SHARDS = 5
PYTHON = sys.executable


def llama_config(layers: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE, "num_hidden_layers": layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "hidden_act": "silu", "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2,
    }


def llama_shapes(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    kv = HIDDEN // HEADS * KV_HEADS
    shapes = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
        ]
    return shapes + [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


def layers_for(billions: float) -> int:
    per_layer = sum(math.prod(s) for _, s in llama_shapes(1)) - sum(math.prod(s) for _, s in llama_shapes(0))
    fixed = sum(math.prod(s) for _, s in llama_shapes(0))
    return max(1, round((billions * 1e9 - fixed) / per_layer))


# --------------------------------------------------------------------------------------------- generation


def generate(folder: Path, layers: int, seed: int, noise_seed: int | None = None) -> None:
    """Write a random bf16 checkpoint, streaming (weights ~ N(0, 0.02); + N(0, 0.002) if noise_seed)."""
    import torch

    from past.skills.dtypes import as_dtype, from_torch
    from past.skills.safetensors_io import ShardedFolderWriter
    from past.skills.sources import TensorSpec, row_blocks

    if (folder / "config.json").exists():
        return
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    specs = [(n, TensorSpec(as_dtype("bf16"), s)) for n, s in llama_shapes(layers)]
    total = sum(s.nbytes for _, s in specs)
    cap = total // SHARDS
    while len(_plan(specs, cap)) > SHARDS:  # smallest cap that gives exactly SHARDS shards
        cap = int(cap * 1.01)
    writer = ShardedFolderWriter(tmp, specs, cap)
    for i, (name, spec) in enumerate(specs):
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        h = torch.Generator().manual_seed(noise_seed * 100_003 + i) if noise_seed is not None else None
        for start, stop in row_blocks(spec):
            n = (stop - start) * spec.row_numel
            x = torch.randn(n, generator=g).mul_(0.02)
            if h is not None:
                x.add_(torch.randn(n, generator=h), alpha=0.002)
            writer.write_at(name, start, from_torch(x.to(torch.bfloat16)))
    writer.finish()
    (tmp / "config.json").write_text(json.dumps(llama_config(layers), indent=2))
    tmp.rename(folder)


def _plan(specs, cap):
    groups, size = [[]], 0
    for name, spec in specs:
        if groups[-1] and size + spec.nbytes > cap:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += spec.nbytes
    return groups


# ------------------------------------------------------------------------------ methods run in children


def naive(sft_s: str, rl_s: str, sft_t: str, out: str, lam: float) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    load = lambda p: AutoModelForCausalLM.from_pretrained(p, dtype=torch.bfloat16)  # noqa: E731
    target, sft, rl = load(sft_t), load(sft_s), load(rl_s)
    s, r = sft.state_dict(), rl.state_dict()
    with torch.no_grad():
        for name, p in target.state_dict().items():
            p.copy_((p.float() + lam * (r[name].float() - s[name].float())).to(p.dtype))
    target.save_pretrained(out)


def floor_cmd(out: Path, copy_from: Path, *read_only: Path) -> list[str]:
    """The I/O floor as coreutils: read each of `read_only` once, copy `copy_from` (read + write) to `out`."""
    files = [str(f) for f in _files(*read_only)]
    script = 'cat "$@" > /dev/null && cp -r "$0" "$OUT"'
    return ["env", f"OUT={out}", "sh", "-c", script, str(copy_from), *files]


# ------------------------------------------------------------------------------------------- measuring


def _files(*paths: Path) -> list[Path]:
    return [f for p in paths for f in (sorted(p.glob("*.safetensors")) if p.is_dir() else [p])]


def set_cache(state: str, *paths: Path) -> None:
    """Put the inputs in the page cache ("warm": read once) or out of it ("cold": fadvise DONTNEED).

    Dirty pages of earlier runs are flushed first (sync), so no run pays for another's writeback.
    """
    os.sync()
    for f in _files(*paths):
        fd = os.open(f, os.O_RDONLY)
        try:
            if state == "cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while os.read(fd, 64 << 20):
                    pass
        finally:
            os.close(fd)


def run(cmd: list[str], log: Path) -> dict:
    """Wall time and peak RSS of one command.

    The command is started by a small launcher process (this file, `_launch`), not by this one: on Linux a
    child's peak RSS starts at its parent's RSS at fork and survives exec, so forking straight from this
    process (which has imported torch and generated data) would report our memory, not the command's.
    """
    result = log.with_suffix(".run.json")
    with open(log, "ab") as err:
        subprocess.run([PYTHON, str(Path(__file__).resolve()), "_launch", str(result), *cmd], stderr=err, stdout=subprocess.DEVNULL, check=True)
    return json.loads(result.read_text())


def launch(result: str, *cmd: str) -> None:
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (status {status})")
    Path(result).write_text(json.dumps({"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024),
                                        "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2)}))


def spec(name: str, cmds: list[list[str]], inputs: list[Path], outputs: list[Path], inside: Path | None = None) -> dict:
    """One method to measure: commands run in sequence; with `inside`, the command writes its own time there."""
    return {"name": name, "cmds": cmds, "inputs": inputs, "outputs": outputs, "inside": inside}


def measure(methods: list[dict], log: Path, repeat: int) -> list[dict]:
    """Run every method from a warm and from a cold page cache, `repeat` times each, interleaved.

    Round k runs each method once, so that the machine's slow phases fall on all of them alike (on this VM,
    writes into freshly allocated page-cache pages now and then cost 4x the kernel time), in a new random
    order each round: a method that always followed a large writer (extraction writes 6 GB) would pay for the
    host's writeback of it in every cold run. Reports the median wall time of each state and the largest
    peak RSS seen.
    """
    results = [{"method": m["name"]} for m in methods]
    runs: list[dict[str, list]] = [{"warm": [], "cold": []} for _ in methods]
    order = random.Random(0)
    for state in ("warm", "cold"):
        for _ in range(repeat):
            for i in order.sample(range(len(methods)), len(methods)):
                m, result, mine = methods[i], results[i], runs[i]
                for out in m["outputs"]:
                    _rm(out)
                set_cache(state, *m["inputs"])
                parts = [run(cmd, log) for cmd in m["cmds"]]
                mine[state].append({"wall_s": round(sum(p["wall_s"] for p in parts), 2), "parts": parts,
                                    "sys_s": round(sum(p["sys_s"] for p in parts), 2),
                                    **({"inside_s": json.loads(m["inside"].read_text())["inside_s"]} if m["inside"] else {})})
                result["peak_rss_mb"] = max([result.get("peak_rss_mb", 0)] + [p["peak_rss_mb"] for p in parts])
    for m, result, mine in zip(methods, results, runs):
        key = "inside_s" if m["inside"] else "wall_s"
        for state in ("warm", "cold"):
            median = sorted(mine[state], key=lambda r: r[key])[len(mine[state]) // 2]
            result[f"{state}_wall_s"] = median[key]
            result[f"{state}_runs_s"] = [r[key] for r in mine[state]]
            result[f"{state}_sys_s"] = [r["sys_s"] for r in mine[state]]  # kernel time: where this VM's noise lives
            if len(m["cmds"]) > 1:
                result[f"{state}_parts"] = median["parts"]
        print(json.dumps(result), flush=True)
    return results


def inject_timed(result: str, target: str, skill: str, out: str, lam: str) -> None:
    """past.skills.inject() timed inside the process, as a DVC stage or a Prefect flow calls it."""
    from past.skills import inject

    t0 = time.perf_counter()
    inject(target, [skill], [float(lam)], out)
    Path(result).write_text(json.dumps({"inside_s": round(time.perf_counter() - t0, 2)}))


def _rm(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


def _size_gb(p: Path) -> float:
    files = p.glob("*.safetensors") if p.is_dir() else [p]
    return sum(f.stat().st_size for f in files) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/past-bench"))
    ap.add_argument("--sizes", default="0.25,0.5,1", help="model sizes in billions of parameters; the largest gets every method")
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--skip", default="", help="comma-separated methods to skip: mergekit,naive")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method and cache state (median reported)")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of mergekit and naive per cache state")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--keep", action="store_true", help="keep generated checkpoints")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    past = [PYTHON, "-m", "past.cli", "skill"]
    here = [PYTHON, str(Path(__file__).resolve())]
    sizes = sorted(float(s) for s in args.sizes.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    log = args.workdir / "bench.log"
    results = {"lam": args.lam, "sizes": [], "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}

    for size in sizes:
        layers = layers_for(size)
        root = args.workdir / f"{size:g}B"
        m = {k: root / k for k in ("sft_s", "rl_s", "sft_t")}
        t0 = time.perf_counter()
        generate(m["sft_s"], layers, seed=1)
        generate(m["rl_s"], layers, seed=1, noise_seed=2)
        generate(m["sft_t"], layers, seed=3)
        params = sum(math.prod(s) for _, s in llama_shapes(layers))
        print(f"# {size:g}B: {layers} layers, {params / 1e9:.3f}B parameters, {_size_gb(m['sft_t']):.2f} GB per model "
              f"(generated in {time.perf_counter() - t0:.0f} s)", flush=True)
        skill, out = root / "skill.safetensors", root / "out"
        extract = past + ["extract", "--rl", str(m["rl_s"]), "--sft", str(m["sft_s"]), "-o", str(skill), "-q"]
        inject = past + ["inject", "--target", str(m["sft_t"]), "--skill", str(skill), "--lam", str(args.lam), "-o", str(out), "-q"]
        row = {"size_b": round(params / 1e9, 3), "layers": layers, "model_gb": round(_size_gb(m["sft_t"]), 2)}
        r = args.repeat
        inside = root / "inside.json"
        timed = here + ["_inject_timed", str(inside), str(m["sft_t"]), str(skill), str(out), str(args.lam)]
        _rm(skill)
        run(extract, log)  # the skill that (a) and (a') inject; (b) recreates it in every round
        row["b_extract_inject"], row["a_inject"], row["a_inside"], row["e1_floor_a"] = measure([
            spec("(b) past extract + inject", [extract, inject], [m["rl_s"], m["sft_s"]], [skill, out]),
            spec("(a) past inject", [inject], [m["sft_t"], skill], [out]),
            spec("(a') past.skills.inject() in a running process", [timed], [m["sft_t"], skill], [out], inside),
            spec("(e1) I/O floor of (a)", [floor_cmd(out, m["sft_t"], skill)], [m["sft_t"], skill], [out]),
        ], log, r)
        row["skill_gb"] = round(_size_gb(skill), 2)
        if size == sizes[-1]:
            if "mergekit" not in skip:
                cfg = root / "mergekit.yml"
                cfg.write_text(json.dumps({
                    "merge_method": "task_arithmetic", "base_model": str(m["sft_s"]),
                    "models": [{"model": str(m["sft_t"]), "parameters": {"weight": 1.0}},
                               {"model": str(m["rl_s"]), "parameters": {"weight": args.lam}}],
                    "parameters": {"normalize": False}, "dtype": "float32", "out_dtype": "bfloat16",
                }))
                mk = str(Path(PYTHON).parent / "mergekit-yaml")
                [row["c_mergekit"]] = measure([spec("(c) mergekit task_arithmetic", [[mk, str(cfg), str(out), "--no-copy-tokenizer", "--quiet"]],
                                                    list(m.values()), [out])], log, args.slow_repeat)
            if "naive" not in skip:
                [row["d_naive"]] = measure([spec("(d) naive from_pretrained x3", [here + ["_naive", str(m["sft_s"]), str(m["rl_s"]), str(m["sft_t"]), str(out), str(args.lam)]],
                                                 list(m.values()), [out])], log, args.slow_repeat)
            [row["e2_floor_cd"]] = measure([spec("(e2) I/O floor of (c)/(d)", [floor_cmd(out, m["sft_t"], m["sft_s"], m["rl_s"])],
                                                 list(m.values()), [out])], log, r)
        _rm(out)
        _rm(skill)
        results["sizes"].append(row)
        if not args.keep and size != sizes[-1]:
            shutil.rmtree(root)

    results["load_after"] = os.getloadavg()[0]
    print()
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def vs_floor(result: dict, floor: dict, state: str) -> float:
    """Wall time over the floor's: the median of per-round ratios when both ran in the same rounds.

    Pairing each run with the floor run beside it cancels this VM's slow phases (the floor itself moves
    2-4x from one minute to the next); methods run once (mergekit, naive) fall back to the ratio of medians.
    """
    runs = len(result[f"{state}_runs_s"])
    if runs != len(floor[f"{state}_runs_s"]) or runs < 2:
        return result[f"{state}_wall_s"] / floor[f"{state}_wall_s"]
    ratios = sorted(round_ratios(result, floor, state))
    return ratios[len(ratios) // 2]


def round_ratios(result: dict, floor: dict, state: str) -> list[float]:
    """Each run's wall time over the floor's run from the same round."""
    return [a / b for a, b in zip(result[f"{state}_runs_s"], floor[f"{state}_runs_s"])]


def markdown(results: dict) -> str:
    big = results["sizes"][-1]
    lines = [
        f"{big['size_b']}B parameters: {big['model_gb']} GB per bf16 checkpoint (5 shards); fp32 skill {big['skill_gb']} GB. "
        f"{results['cpus']} CPUs, load average {results['load_before']:.1f} before and {results['load_after']:.1f} after (other jobs).",
        "",
        "| method | wall, warm cache (s) | wall, cold cache (s) | peak RSS (MB) | vs. floor (warm / cold) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    floors = {"a_inject": "e1_floor_a", "a_inside": "e1_floor_a", "b_extract_inject": "e1_floor_a", "c_mergekit": "e2_floor_cd", "d_naive": "e2_floor_cd"}
    for key in ("a_inject", "a_inside", "b_extract_inject", "c_mergekit", "d_naive", "e1_floor_a", "e2_floor_cd"):
        if key not in big:
            continue
        r, ratio = big[key], ""
        if floors.get(key) in big:
            f = big[floors[key]]
            ratio = f"{vs_floor(r, f, 'warm'):.1f}x / {vs_floor(r, f, 'cold'):.1f}x"
        lines.append(f"| {r['method']} | {r['warm_wall_s']:.1f} | {r['cold_wall_s']:.1f} | {r['peak_rss_mb']:,} | {ratio} |")
    lines += ["", "| parameters | (a) inject, warm / cold (s) | (a') in-process, warm / cold (s) | (a) peak RSS (MB) | (e1) floor, warm / cold (s) | (a) vs. floor, warm / cold | (b) extract + inject, warm / cold (s) | (b) peak RSS (MB) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in results["sizes"]:
        a, i, e, b = row["a_inject"], row["a_inside"], row["e1_floor_a"], row["b_extract_inject"]
        lines.append(f"| {row['size_b']}B | {a['warm_wall_s']:.1f} / {a['cold_wall_s']:.1f} | {i['warm_wall_s']:.1f} / {i['cold_wall_s']:.1f} | "
                     f"{a['peak_rss_mb']:,} | {e['warm_wall_s']:.1f} / {e['cold_wall_s']:.1f} | {vs_floor(a, e, 'warm'):.1f}x / {vs_floor(a, e, 'cold'):.1f}x | "
                     f"{b['warm_wall_s']:.1f} / {b['cold_wall_s']:.1f} | {b['peak_rss_mb']:,} |")
    return "\n".join(lines)


def ab(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="skill_io.py ab", description="A/B of engine variants against the I/O floor (see the module docstring)")
    ap.add_argument("variants", nargs="+", help="NAME=VALUE[+NAME=VALUE...] per variant; '' for none")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/past-bench"))
    ap.add_argument("--size", default="1", help="the size folder skill_io.py generated (default 1, i.e. 1B)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="append this run's results here, one JSON line per run")
    args = ap.parse_args(argv)
    root = args.workdir / f"{float(args.size):g}B"
    target, skill, out = root / "sft_t", root / "skill.safetensors", root / "out"
    if not target.exists():
        raise SystemExit(f"no checkpoints in {root}: run skill_io.py --workdir {args.workdir} --sizes {args.size} --keep first")
    past = [PYTHON, "-m", "past.cli", "skill"]
    if not skill.exists():
        subprocess.run(past + ["extract", "--rl", str(root / "rl_s"), "--sft", str(root / "sft_s"), "-o", str(skill), "-q"], check=True)
    inject = past + ["inject", "--target", str(target), "--skill", str(skill), "--lam", "1.0", "-o", str(out), "-q"]
    methods = [spec(v or "(as checked out)", [["env", *filter(None, v.split("+"))] + inject], [target, skill], [out])
               for v in args.variants]
    methods.append(spec("(e1) I/O floor", [floor_cmd(out, target, skill)], [target, skill], [out]))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results = measure(methods, root / "ab.log", args.repeat)
    floor = results[-1]
    print()
    for r in results:
        line = f"{r['method']}: warm {r['warm_wall_s']:.2f} s (kernel {sorted(r['warm_sys_s'])[len(r['warm_sys_s']) // 2]:.2f} s), " \
               f"cold {r['cold_wall_s']:.2f} s, peak RSS {r['peak_rss_mb']} MB"
        if r is not floor:
            line += f", vs. floor {vs_floor(r, floor, 'warm'):.2f}x / {vs_floor(r, floor, 'cold'):.2f}x"
        print(line)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"started": started, "repeat": args.repeat, "results": results}) + "\n")


def summary(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="skill_io.py summary", description="Is (a) within a bound of the I/O floor in every ab run, and every round?")
    ap.add_argument("runs", type=Path, help="JSON lines written by `skill_io.py ab --json`")
    ap.add_argument("--bound", type=float, default=1.5, help="the goal: wall time of (a) at most BOUND x the floor")
    args = ap.parse_args(argv)
    print("| started | (a) warm / cold (s) | floor warm / cold (s) | vs. floor, warm / cold | "
          f"rounds within {args.bound:g}x, warm / cold |")
    print("| --- | ---: | ---: | ---: | ---: |")
    within = total = 0
    for line in args.runs.read_text().splitlines():
        entry = json.loads(line)
        a, floor = entry["results"][0], entry["results"][-1]
        cells, counts = [], []
        for state in ("warm", "cold"):
            ratios = round_ratios(a, floor, state)
            ok = sum(r <= args.bound for r in ratios)
            within, total = within + ok, total + len(ratios)
            counts.append(f"{ok}/{len(ratios)}")
            cells.append(f"{vs_floor(a, floor, state):.2f}x")
        print(f"| {entry['started']} | {a['warm_wall_s']:.2f} / {a['cold_wall_s']:.2f} | {floor['warm_wall_s']:.2f} / "
              f"{floor['cold_wall_s']:.2f} | {' / '.join(cells)} | {' / '.join(counts)} |")
    print(f"\nsingle rounds within {args.bound:g}x: {within} of {total}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("ab", "summary"):
        {"ab": ab, "summary": summary}[sys.argv[1]](sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_naive":
        naive(*sys.argv[2:6], float(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_inject_timed":
        inject_timed(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "_launch":
        launch(*sys.argv[2:])
    else:
        main()
