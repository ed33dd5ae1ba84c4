"""Serve past's deployments from this process: no work pool or worker needed (local use, tests).

The deployments, their event trigger, schedules and concurrency limits are read from prefect.yaml, so
`serve` and `prefect deploy` run the same definitions. At most one flow run executes at a time.

    python flows/serve.py [--params /abs/path/params.yaml] [--only adapt watch refresh-skill]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def deployments(params: str, only: list[str] | None = None, prefect_yaml: Path = ROOT / "prefect.yaml") -> list:
    """RunnerDeployments for the entries of prefect.yaml (optionally only some, by name)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events import DeploymentEventTrigger
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load(prefect_yaml.read_text(encoding="utf-8"))
    out = []
    for spec in config["deployments"]:
        if only and spec["name"] not in only:
            continue
        flow = load_flow_from_entrypoint(str(ROOT / spec["entrypoint"]))
        schedules = spec.get("schedules") or []
        limit = spec.get("concurrency_limit")
        out.append(flow.to_deployment(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags"),
            parameters={**spec.get("parameters", {}), "params": params},
            triggers=[DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"})
                      for t in spec.get("triggers", [])],
            interval=[s["interval"] for s in schedules if "interval" in s] or None,
            cron=[s["cron"] for s in schedules if "cron" in s] or None,
            concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
        ))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file the flows read")
    parser.add_argument("--only", nargs="*", help="deployment names to serve (default: all)")
    args = parser.parse_args(argv)
    from prefect import serve

    serve(*deployments(str(Path(args.params).resolve()), args.only), limit=1)


if __name__ == "__main__":
    main()
