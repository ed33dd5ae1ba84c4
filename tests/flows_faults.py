"""The flows' fault and load scenarios, run for real against a Prefect server: written once, asserted by
tests/test_flows_adapt.py (docs/reliability.md, cases 16 and 17).

- `kill_adapt_at`: the adapt flow on one drop, run again and again, each run killed (SIGKILL, past.failpoints)
  at the next step; what every kill left behind.
- `land_and_serve`: N drops landing at once, the `adapt` deployment served with its trigger from prefect.yaml,
  watch passes as its schedule would run them; the runs and the registry's log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flows_fixtures import make_drop, wait_for
from past.files import temporaries

ROOT = Path(__file__).resolve().parents[1]

# after validation, mid-SFT (a checkpoint saved), after inject, mid-evaluation (two of the four scores done),
# during record (registry.json written, the production symlink not yet moved)
KILLS = ["adapt:validated", "checkpoint", "adapt:injected", "adapt:scored@2", "registry:written"]


def stray_temporaries(folder: Path) -> list[str]:
    """What a killed writer leaves (past.files.temporaries), relative to `folder`."""
    return [str(p.relative_to(folder)) for p in temporaries(folder)]


def kill_adapt_at(points: list[str], drop: str, params: str, registry, api_url: str) -> list[dict]:
    """Run `flows/adapt.py drop` once per point, killed there; per kill: the exit code, whether registry.json and
    production (its weights, skill and symlink) are as before, and the run's output."""
    state = registry.root / "registry.json"
    before, production = state.read_bytes(), registry.production()["id"]
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONUNBUFFERED": "1"}
    out = []
    for point in points:
        child = subprocess.run([sys.executable, str(ROOT / "flows/adapt.py"), drop, "--params", params],
                               env={**env, "PAST_KILL_AT": point}, capture_output=True, text=True, timeout=300)
        link = (registry.root / "production").resolve() == registry.path(registry.production()["path"]).resolve()
        out.append({"point": point, "returncode": child.returncode, "registry_unchanged": state.read_bytes() == before,
                    "production_whole": registry.verify()["id"] == production and link,
                    "log": child.stdout + child.stderr})
    return out


def forget_deployments(names: list[str], work_pool: str | None = None) -> None:
    """Delete these deployments, the automations their triggers created and `work_pool` from the current Prefect
    server, so that a test which deploys leaves no trigger behind to start runs for the tests after it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
            client.delete_deployment(deployment.id)
        if work_pool:
            try:
                client.delete_work_pool(work_pool)
            except ObjectNotFound:
                pass


def land_and_serve(project, count: int, watch, api_url: str, first_index: int = 10) -> dict:
    """Serve `adapt` (flows/serve.py), land `count` one-person drops at once, run a watch pass a second (its
    schedule in prefect.yaml runs one every 30 s) until every drop has a final decision; returns the drop names
    (landing order), how long landing took, what watch announced, the deployment's runs (oldest first) and the
    registry's decisions on those drops, in log order."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from past.continual.registry import FINAL

    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen([sys.executable, str(ROOT / "flows/serve.py"), "--params", project.params,
                               "--only", "adapt"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    names = [f"drop-{i:02d}" for i in range(count)]
    announced: list[str] = []
    try:
        def deployment():
            with get_client(sync_client=True) as client:
                try:
                    return client.read_deployment_by_name("adapt/adapt")
                except Exception:
                    return None
        wait_for(deployment, 90, 0.5, "the served adapt deployment")
        time.sleep(2)  # its automation is created right after the deployment
        started = time.monotonic()
        for i, name in enumerate(names):
            make_drop(project.landing, name, first_index + i, people=1)
        landed = time.monotonic() - started

        def all_decided():
            announced.extend(a["name"] for a in watch(params=project.params)["announced"])
            decided = {d.get("drop", {}).get("name") for d in project.registry.state()["decisions"]
                       if d["decision"] in FINAL}
            return decided >= set(names)
        wait_for(all_decided, 60 * count, 1.0, f"{count} drops to be decided")
        elapsed = time.monotonic() - started
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["adapt"])))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        forget_deployments(["adapt/adapt"])
    log = [d for d in project.registry.state()["decisions"] if d.get("drop", {}).get("name") in names]
    return {"names": names, "landed_seconds": landed, "seconds": elapsed, "announced": announced,
            "runs": sorted(runs, key=lambda r: r.start_time), "log": log}
