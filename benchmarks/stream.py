"""A stream of knowledge drops: does production stay current, and keep everything it learned?

Lands `--drops` drops of new people (the embedded world, `past.knowledge.drops`) one after another into a copy
of a checkout's `dvc repro` outputs (`adapt_latency.make_workdir`), each through the real flow path: a watch
pass, then the `adapt` flow, under a throw-away local Prefect server. After each drop, production is scored on
every drop's questions so far and on the original target set. Arms, each a fresh copy landing the same drops:

    past                  the defaults: PaST injection, each candidate's lambda chosen on validation questions
                          (adapt.lambdas), replay of earlier documents and of the base's pre-training mixture
                          (adapt.replay_pretraining), the earlier drops' questions protected by the gate, and a
                          consolidation when a candidate forgets (consolidate.on_forgetting)
    sft-only              no skill (lambda 0, the pipeline's target SFT as the first production)
    no-consolidation      past without the consolidation: a candidate that forgets is rejected, and that is all
    docs-replay           the defaults before the stream held: replay of earlier documents only, the skill's
                          registered lambda, no consolidation
    docs-replay-sft-only  the same without the skill
    before                the gate before earlier drops were protected (earlier_questions: 0)

Per arm: drops adopted, ACC (mean final accuracy over the drops), BWT (mean final minus just-learned accuracy,
every drop but the last), the mean just-learned accuracy, the original set at the start and the end, median and
largest landing -> decision, consolidations. Arms run `--jobs` at a time, each in a process of its own.

`--sweep` measures consolidations instead, on the registry an arm left (its production and the knowledge its
lineage holds): for each START,EPOCHS,LR (START: base or production), one SFT over all that knowledge, then
the production skill injected at each `--lambdas`, scored on the regression set and the earlier drops' sample
as the gate would:

    python benchmarks/stream.py --sweep /tmp/past-stream-bench/past base,2,0.001 production,1,0.0003

    nice python benchmarks/stream.py [--drops 20] [--arms past sft-only no-consolidation docs-replay] [--jobs 2]
        [--json benchmarks/results/stream.json] [--plot docs/images/stream.png]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapt_latency import announce, make_workdir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS_ONLY = ["replay_pretraining=0.0", "consolidate.on_forgetting=false"]  # the defaults before the stream held
ARMS = {
    "past": [],
    "sft-only": ["lam=0.0"],
    "no-consolidation": ["consolidate.on_forgetting=false"],
    "docs-replay": [*DOCS_ONLY, "lambdas=[]"],
    "docs-replay-sft-only": [*DOCS_ONLY, "lam=0.0"],
    "before": ["earlier_questions=0"],
}


def run_arm(arm: str, project: Path, workdir: Path, drops: int, people: int, extra: list[str]) -> dict:
    """One arm's stream, in this process; returns its rows and accuracy matrix."""
    import torch
    import yaml
    from prefect.flows import load_flow_from_entrypoint
    from prefect.testing.utilities import prefect_test_harness

    from past import steps
    from past.config import load_params
    from past.continual.adaptation import regression_questions, settings
    from past.knowledge.drops import world_drop
    from past.knowledge.format import write_knowledge_set
    from past.knowledge.world import build_world
    from past.modeling import load_model, load_tokenizer

    torch.set_num_threads(1)
    params = make_workdir(project, workdir, ARMS[arm] + extra)
    if arm.endswith("sft-only"):  # the first production has no skill either: the pipeline's target SFT, lambda 0
        shutil.rmtree(workdir / "models/past")
        shutil.copytree(workdir / "models/target_sft", workdir / "models/past")
        data = yaml.safe_load(params.read_text())
        data["inject"]["lam"] = 0.0
        params.write_text(yaml.safe_dump(data, sort_keys=False))
    s = settings(params)
    p = load_params(params)
    world = build_world(p.prepare.world, p.seed)
    original = regression_questions(s)["questions"]
    questions: list[list[dict]] = []
    rows, matrix = [], []
    with prefect_test_harness(server_startup_timeout=90):
        adapt = load_flow_from_entrypoint(str(ROOT / "flows/adapt.py:adapt"))
        watch = load_flow_from_entrypoint(str(ROOT / "flows/watch.py:watch"))
        for k in range(drops):
            name = f"drop-{k:03d}"
            ks = world_drop(world, p.prepare.world, people, k, p.seed)
            questions.append(ks.questions)
            tmp = workdir / f".{name}.copying"
            write_knowledge_set(tmp, ks)
            os.replace(tmp, workdir / "landing" / name)  # a user's careful copy: whole, in one rename
            landed = time.perf_counter()
            decision = adapt(name, expected_hash=announce(watch, str(params))["hash"], params=str(params))
            seconds = time.perf_counter() - landed
            production = s.registry.path(s.registry.production()["path"])
            model, tokenizer = load_model(production), load_tokenizer(production)
            score = lambda qs: steps.score(s.spec, model, qs, tokenizer, desc="stream")["exact_match"]  # noqa: E731
            matrix.append([round(score(qs), 4) for qs in questions])
            row = {"drop": k + 1, "decision": decision["decision"], "kind": decision.get("kind", "incremental"),
                   "lambda": decision.get("lambda"),
                   "attempt": (decision.get("attempt") or {}).get("reasons"), "reasons": decision["reasons"],
                   "new": matrix[-1][-1], "average": round(statistics.fmean(matrix[-1]), 4),
                   "original": round(score(original), 4), "seconds": round(seconds, 1),
                   "sft_steps": {k: v for k, v in decision.get("timings", {}).items() if k.endswith("target_sft")}}
            rows.append(row)
            print(json.dumps({"arm": arm, **{k: v for k, v in row.items() if k != "sft_steps"}}), flush=True)
    first = s.registry.lineage()[-1]  # the bootstrapped pipeline model
    return {"arm": arm, "rows": rows, "matrix": matrix, "original_first": _first_original(s, first)}


def _first_original(s, entry: dict) -> float:
    from past import steps
    from past.continual.adaptation import regression_questions

    return round(steps.score(s.spec, str(s.registry.path(entry["path"])), regression_questions(s)["questions"],
                             desc="stream")["exact_match"], 4)


def sweep(workdir: Path, specs: list[str], lambdas: list[float]) -> list[dict]:
    """Consolidation variants on an arm's registry, each scored as the gate would score it."""
    import math
    import tempfile

    import torch

    from past import steps
    from past.config import SFTParams
    from past.continual.adaptation import earlier_questions, known_documents, regression_questions, settings

    torch.set_num_threads(1)
    s = settings(workdir / "params.yaml")
    production, registry = s.registry.production(), s.registry
    documents = known_documents(s, production["id"])
    sets = {"regression": regression_questions(s)["questions"],
            "earlier": earlier_questions(s, production["id"])["questions"]}
    starts = {"base": registry.path(registry.base()["path"]), "production": registry.path(production["sft"])}
    skill = registry.path(registry.skill()["path"])
    score = lambda model: {k: round(steps.score(s.spec, str(model), qs, desc=k)["exact_match"], 4)  # noqa: E731
                           for k, qs in sets.items()}
    rows = [{"model": "production", **score(registry.path(production["path"]))}]
    print(json.dumps(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            start, epochs, lr = spec.split(",")
            batch = s.params.adapt.consolidate.batch_size
            sft = SFTParams(steps=max(1, math.ceil(float(epochs) * len(documents) / batch)), lr=float(lr),
                            batch_size=batch, warmup_ratio=s.params.adapt.consolidate.warmup_ratio)
            started = time.perf_counter()
            steps.sft(starts[start], documents, sft, s.params.seed, Path(tmp) / spec / "sft")
            seconds = round(time.perf_counter() - started, 1)
            for lam in lambdas:
                steps.inject(Path(tmp) / spec / "sft", skill, lam, Path(tmp) / spec / f"lam{lam:g}")
                rows.append({"model": spec, "documents": len(documents), "steps": sft.steps, "sft_seconds": seconds,
                             "lambda": lam, **score(Path(tmp) / spec / f"lam{lam:g}")})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def summarize(result: dict) -> dict:
    from past.evaluation.stream import figures

    rows = result["rows"]
    seconds = [r["seconds"] for r in rows]
    return {"arm": result["arm"], "drops": len(rows), "adopted": sum(r["decision"] == "promoted" for r in rows),
            "consolidations": sum(r["kind"] == "consolidation" and r["decision"] == "promoted" for r in rows),
            **figures(result["matrix"]), "original_first": result["original_first"],
            "original_last": rows[-1]["original"], "median_s": round(statistics.median(seconds), 1),
            "lambdas": dict(sorted(Counter(f"{r['lambda']:g}" for r in rows
                                           if r["decision"] == "promoted" and r.get("lambda") is not None).items())),
            "max_s": max(seconds)}


def table(summaries: list[dict]) -> str:
    lines = ["| arm | adopted | consolidations | ACC | just learned | BWT | original set: first -> last | "
             "landing -> decision: median / max |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in summaries:
        lines.append(f"| {m['arm']} | {m['adopted']} of {m['drops']} | {m['consolidations']} | {m['acc']:.3f} | "
                     f"{m['just_learned']:.3f} | {m['bwt']:+.3f} | {m['original_first']:.3f} -> "
                     f"{m['original_last']:.3f} | {m['median_s']:.0f} s / {m['max_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="checkout whose `dvc repro` outputs to copy")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/past-stream-bench"))
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--people", type=int, default=10, help="new people per drop (5 questions each)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--jobs", type=int, default=2, help="arms run at once (one torch thread each)")
    parser.add_argument("--adapt", nargs="*", default=[], metavar="KEY=VALUE", help="adapt overrides for every arm")
    parser.add_argument("--json", type=Path, help="write the rows, matrices and figures here")
    parser.add_argument("--plot", type=Path, help="write the past arm's stream plot (PNG) here")
    parser.add_argument("--sweep", nargs="+", metavar="WORKDIR SPEC",
                        help="an arm's work folder, then START,EPOCHS,LR consolidations to measure on its registry")
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 0.75, 1.25], help="--sweep's lambdas")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # a child process: run this one arm, print JSON last
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if args.sweep:
        rows = sweep(Path(args.sweep[0]), args.sweep[1:], args.lambdas)
        if args.json:
            args.json.write_text(json.dumps({"sweep": args.sweep, "rows": rows}, indent=1) + "\n")
        return
    if args.arm:
        result = run_arm(args.arm, args.project.resolve(), args.workdir / args.arm, args.drops, args.people,
                         args.adapt)
        print("RESULT " + json.dumps(result), flush=True)
        return

    def child(arm: str) -> dict:
        cmd = [sys.executable, __file__, "--arm", arm, "--project", str(args.project), "--workdir",
               str(args.workdir), "--drops", str(args.drops), "--people", str(args.people), "--adapt", *args.adapt]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        result = None
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
            elif line.startswith("{"):
                print(line, end="", flush=True)
        if proc.wait() or result is None:
            sys.exit(f"error: arm {arm} failed (exit {proc.returncode})")
        return result

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(child, args.arms))
    summaries = [summarize(r) for r in results]
    print(table(summaries))
    if args.json:
        args.json.write_text(json.dumps({"drops": args.drops, "people": args.people, "adapt": args.adapt,
                                         "summaries": summaries, "arms": results}, indent=1) + "\n")
    if args.plot:
        from past.evaluation.stream import plot_stream

        by_arm = {r["arm"]: r["rows"] for r in results}
        main_arm = "past" if "past" in by_arm else args.arms[0]
        other = next((a for a in ("sft-only", "no-consolidation", "docs-replay", "before") if a in by_arm and a != main_arm),
                     None)
        plot_stream(by_arm[main_arm], args.plot, f"{args.drops} drops of {args.people} new people, {main_arm}",
                    compare=by_arm.get(other), compare_label=other or "")


if __name__ == "__main__":
    main()
