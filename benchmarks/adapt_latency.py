"""Latency from a knowledge drop landing to a promoted model, on the embedded default, per step.

Copies the DVC pipeline's outputs (models/{base,target_sft,past,skill}, data/world/{source,target}) and
params.yaml of a checkout into a work folder, starts a throw-away local Prefect server, and lands drops
of new people from the default world (`past.knowledge.drops`), one after the other:

- in-process: watch pass, then the `adapt` flow called in this process; per-step wall and compute time,
  and Prefect's own overhead = flow wall time - the time the steps' functions report for themselves;
- event-driven (--served): `flows/serve.py` serves the `adapt` deployment (trigger from prefect.yaml);
  a watch pass announces the drop and the timer runs until the registry's production switches, so it
  includes the event, the trigger, the runner starting a flow-run process and the flow itself.

Neither counts the wait for the next scheduled watch pass (the `watch` interval, 30 s in prefect.yaml).

    nice python benchmarks/adapt_latency.py [--project .] [--drops 3] [--people 10] [--served 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ["models/base", "models/target_sft", "models/past", "models/skill", "data/world/source",
            "data/world/target", "data/world/p0"]


def make_workdir(project: Path, workdir: Path, overrides: list[str]) -> Path:
    """Copy the pipeline outputs and params.yaml; `overrides` are adapt keys, e.g. sft.lr=0.0003."""
    import yaml

    from past.config import load_params

    missing = [p for p in PIPELINE if not (project / p).exists()]
    if missing:
        sys.exit(f"error: {project}: missing {', '.join(missing)}: run `dvc repro` there first")
    shutil.rmtree(workdir, ignore_errors=True)
    for path in PIPELINE:
        shutil.copytree(project / path, workdir / path)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = params.setdefault("adapt", {})
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = yaml.safe_load(value)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(workdir / "params.yaml")  # a bad override stops here, naming the key
    (workdir / "landing").mkdir()
    return workdir / "params.yaml"


def land(workdir: Path, name: str, index: int, people: int) -> tuple[Path, float]:
    """Copy a drop in as a user would (hidden folder, manifest last, one rename); returns the landing time."""
    from past.config import load_params
    from past.knowledge.drops import world_drop
    from past.knowledge.format import write_knowledge_set
    from past.knowledge.world import build_world

    params = load_params(workdir / "params.yaml")
    world = build_world(params.prepare.world, params.seed)
    tmp = workdir / f".{name}.copying"
    write_knowledge_set(tmp, world_drop(world, params.prepare.world, people, index, params.seed))
    os.replace(tmp, workdir / "landing" / name)
    return workdir / "landing" / name, time.perf_counter()


def announce(watch, params: str) -> dict:
    """Watch passes until the new drop is announced (its files must settle first: adapt.settle_seconds)."""
    while True:
        report = watch(params=params)
        if report["announced"]:
            return report["announced"][0]
        time.sleep(0.5)


def in_process(workdir: Path, params: str, drops: int, people: int, first_index: int) -> list[dict]:
    from prefect.flows import load_flow_from_entrypoint

    adapt = load_flow_from_entrypoint(str(ROOT / "flows/adapt.py:adapt"))
    watch = load_flow_from_entrypoint(str(ROOT / "flows/watch.py:watch"))
    rows = []
    for i in range(drops):
        name = f"drop-{first_index + i:03d}"
        _, landed = land(workdir, name, first_index + i, people)
        started = time.perf_counter()
        announced = announce(watch, params)
        watched = time.perf_counter()
        decision = adapt(name, expected_hash=announced["hash"], params=params)
        done = time.perf_counter()
        timings = decision["timings"]
        steps = {k: v for k, v in timings.items() if k != "total"}
        compute = sum(v["compute"] for v in steps.values())
        flow_wall = done - watched
        rows.append({
            "drop": name, "decision": decision["decision"], "reasons": decision["reasons"],
            "metrics": decision.get("metrics"), "landing_to_decision_s": round(done - landed, 2),
            "settle_and_watch_s": round(watched - started, 2), "flow_wall_s": round(flow_wall, 2),
            "steps": {k: {"wall": v["seconds"], "compute": v["compute"], "cached": v["cached"]}
                      for k, v in steps.items()},
            "compute_s": round(compute, 2), "prefect_overhead_s": round(flow_wall - compute, 2),
            "prefect_overhead_share": round((flow_wall - compute) / flow_wall, 3),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def served(workdir: Path, params: str, api_url: str, drops: int, people: int, first_index: int) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.flows import load_flow_from_entrypoint

    from past.continual.registry import Registry

    watch = load_flow_from_entrypoint(str(ROOT / "flows/watch.py:watch"))
    registry = Registry(workdir / "models/registry")
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen([sys.executable, str(ROOT / "flows/serve.py"), "--params", params, "--only", "adapt"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    rows = []
    try:
        deadline = time.monotonic() + 120
        while True:
            with get_client(sync_client=True) as client:
                try:
                    client.read_deployment_by_name("adapt/adapt")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.5)
        time.sleep(2)
        for i in range(drops):
            name = f"drop-{first_index + i:03d}"
            _, landed = land(workdir, name, first_index + i, people)
            digest = announce(watch, params)["hash"]
            while registry.decision_for(digest) is None:
                time.sleep(0.2)
            decided = time.perf_counter()
            decision = registry.decision_for(digest)
            rows.append({"drop": name, "decision": decision["decision"],
                         "landing_to_decision_s": round(decided - landed, 2),
                         "flow_body_s": decision["timings"]["total"]["seconds"]})
            print(json.dumps(rows[-1]), flush=True)
            time.sleep(3)  # let the flow run finish (events, artifact) before the next drop
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    return rows


def summary(rows: list[dict], served_rows: list[dict]) -> str:
    promoted = [r for r in rows if r["decision"] == "promoted"]
    names = list(dict.fromkeys(name for r in rows for name in r["steps"]))  # the first drop has no earlier drops
    lines = ["| drop | decision | landing -> decision (s) | " + " | ".join(names) + " | Prefect overhead |",
             "| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- |"]
    for r in rows:
        cells = ["-" if (v := r["steps"].get(name)) is None else f"{v['wall']:.2f}" + (" (cached)" if v["cached"] else "")
                 for name in names]
        lines.append(f"| {r['drop']} | {r['decision']} | {r['landing_to_decision_s']:.1f} | " + " | ".join(cells)
                     + f" | {r['prefect_overhead_s']:.2f} s ({100 * r['prefect_overhead_share']:.1f}%) |")
    if promoted:
        lines.append(f"\nmedian landing -> promoted, in process: "
                     f"{statistics.median(r['landing_to_decision_s'] for r in promoted):.1f} s; "
                     f"median Prefect overhead "
                     f"{100 * statistics.median(r['prefect_overhead_share'] for r in rows):.1f}%")
    for r in served_rows:
        lines.append(f"event-driven ({r['drop']}): landing -> {r['decision']} {r['landing_to_decision_s']:.1f} s "
                     f"(flow body {r['flow_body_s']:.1f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="checkout whose `dvc repro` outputs to copy")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/past-adapt-bench"))
    parser.add_argument("--drops", type=int, default=3, help="drops adapted in process, one after the other")
    parser.add_argument("--served", type=int, default=1, help="drops adapted through the event trigger")
    parser.add_argument("--people", type=int, default=10, help="new people per drop (5 questions each)")
    parser.add_argument("--adapt", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override keys of the adapt group, e.g. sft.lr=0.0003 tolerance=0.05")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    import prefect.settings
    import torch
    from prefect.testing.utilities import prefect_test_harness  # a throw-away local server + SQLite

    torch.set_num_threads(1)
    params = str(make_workdir(args.project.resolve(), args.workdir, args.adapt))
    with prefect_test_harness(server_startup_timeout=90):
        rows = in_process(args.workdir, params, args.drops, args.people, 0)
        served_rows = served(args.workdir, params, prefect.settings.PREFECT_API_URL.value(), args.served,
                             args.people, args.drops) if args.served else []
    table = summary(rows, served_rows)
    print(table)
    if args.out:
        args.out.write_text(json.dumps({"in_process": rows, "served": served_rows, "summary": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
