"""Prefect flow `watch`: announce every complete, new drop of the landing folder with an event.

Runs on an interval (prefect.yaml). A drop is complete once its manifest.json or _READY marker exists
and its files have settled (past.continual.landing); half-copied files are never picked up. Each new content hash
is announced once as `past.knowledge.landed` (resource id `past.drop.<hash>`), which triggers `adapt`;
a drop with a decision is never announced again, and one announced but still undecided after
`adapt.reemit_after` seconds is announced again (an event lost while the server was down, a killed run).

Drops are announced in landing order, one in flight at a time: the next one once the previous has a
decision (promoted, rejected, or a failed run's). So drops that land together are adapted in order, each
on top of the ones before it.

    python flows/watch.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import time

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from past.continual import adaptation
from past.continual import events
from past.files import write_json_atomic
from past.continual.landing import scan

SEEN = "landing_seen.json"  # in the registry folder: content hash -> name, announced at, event id


@task(name="scan-landing", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def scan_landing(params: str) -> dict:
    s = adaptation.settings(params)
    drops, pending = scan(s.landing, s.params.adapt.settle_seconds)
    return {"drops": [d.as_dict() for d in drops], "pending": [vars(p) for p in pending]}


@task(name="announce", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def announce(params: str, found: dict) -> dict:
    """Announce the oldest new drop with an event, one drop in flight at a time; remember what was announced
    (atomically). Later drops wait their turn ("queued behind ..."): each is adapted on top of the ones that
    landed before it, whatever order Prefect would start the runs in."""
    s = adaptation.settings(params)
    registry = s.registry
    seen_path = registry.root / SEEN
    seen = json.loads(seen_path.read_text(encoding="utf-8")) if seen_path.exists() else {}
    report = {"announced": [], "skipped": [], "pending": found["pending"]}
    now = time.time()
    this_pass: dict[str, str] = {}
    in_flight = None  # the drop being adapted now: announced, no decision since, not yet due again
    for drop in found["drops"]:  # oldest first
        name, digest = drop["name"], drop["hash"]
        decided = registry.decision_for(digest)
        previous = seen.get(digest)
        due = previous is None or now - previous["announced_at"] >= s.params.adapt.reemit_after
        if digest in this_pass:
            report["skipped"].append({"name": name, "reason": f"same content as {this_pass[digest]}"})
        elif decided is not None:
            report["skipped"].append({"name": name, "reason": f"already {decided['decision']}"})
        elif not due:
            answered = registry.decided_since(digest, previous["announced_at"])  # e.g. a failed run
            reason = "answered, not final: announced again later" if answered else "awaiting adapt"
            report["skipped"].append({"name": name, "reason": f"announced as {previous['name']}, {reason}"})
            in_flight = in_flight or (None if answered else name)
        elif in_flight is not None:
            report["skipped"].append({"name": name, "reason": f"queued behind {in_flight}"})
        else:
            event_id = events.emit(events.LANDED, events.drop_resource(digest, name),
                                   {"drop": name, "hash": digest, "files": drop["files"], "marker": drop["marker"]})
            seen[digest] = {"name": name, "announced_at": now, "event": event_id}
            report["announced"].append({"name": name, "hash": digest, "event": event_id})
            in_flight = name
        this_pass.setdefault(digest, name)
    if report["announced"]:
        write_json_atomic(seen_path, seen)
    return report


@flow(name="watch")
def watch(params: str = "params.yaml") -> dict:
    """One pass over the landing folder; returns what was announced, skipped and still pending."""
    logger = get_run_logger()
    report = announce(params, scan_landing(params))
    for item in report["announced"]:
        logger.info(f"landed: {item['name']} ({item['hash'][:12]})")
    for item in report["pending"]:
        logger.info(f"pending: {item['name']}: {item['reason']}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One pass of the landing-folder watcher (runs the flow locally).")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    print(json.dumps(watch(params=args.params), indent=2))


if __name__ == "__main__":
    main()
