"""`past repro`: `dvc repro` with independent stages side by side.

DVC runs one stage at a time; for independent branches its documentation says to start several `dvc repro` at
once ("Parallel stage execution"). This does that for the whole DAG: every stage of the targets and what they depend
on runs as `dvc --wait-for-lock repro --single-item STAGE` once the stages it depends on are done, at most `jobs`
at a time. So each stage is DVC's own run: it checks whether it changed and skips otherwise, records itself in
dvc.lock, and DVC's read/write locks keep stages off each other's outputs; `--wait-for-lock` queues the moments
two hold the repository lock. The outputs are the bits a plain `dvc repro` writes (tests/test_repro.py).

A stage that may run beside another lets idle OpenMP threads sleep (`past.kernels.SIDE_BY_SIDE`: two spinning
2-thread stages on 2 cores take several times as long); one that always runs alone, like `base`, keeps spinning,
~25% faster alone. The bits are the same either way. Each stage's output goes to a log file under
.dvc/tmp/repro/; after a failure nothing new starts (with `--keep-going`, only what depends on the failed stage
is left out), the running stages finish (as `make -j` does), and the failed stage's log tail is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from past.errors import Refusal
from past.kernels import SIDE_BY_SIDE

LOGS = Path(".dvc/tmp/repro")  # under DVC's own scratch folder: ignored by git, never an output
TAIL_LINES = 25


class ReproError(Refusal):
    """A target DVC does not know, or a repository it cannot read: nothing was started."""


@dataclass
class Plan:
    """The stages to run, each with the stages it waits for, in dvc.yaml's order."""

    upstream: dict[str, set[str]]
    order: list[str]

    def side_by_side(self, stage: str) -> bool:
        """Whether another stage of the plan may run at the same time: one neither upstream nor downstream of it."""
        related = _reachable(self.upstream.__getitem__, stage)
        related |= {other for other in self.upstream if stage in _reachable(self.upstream.__getitem__, other)}
        return any(other != stage and other not in related for other in self.upstream)


def plan(root: Path, targets: list[str] | None = None) -> Plan:
    """The stages `dvc repro [targets]` would consider, from DVC's own graph of the repository at `root`."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            graph = repo.index.graph  # an edge goes from a stage to one whose outputs it depends on
            chosen = [s for target in targets for s in repo.stage.collect(target)] if targets else list(graph)
            wanted = set(chosen).union(*(_reachable(graph.successors, stage) for stage in chosen))
            upstream = {s.addressing: {u.addressing for u in graph.successors(s)} for s in wanted}
            order = [s.addressing for s in repo.index.stages if s in wanted]  # dvc.yaml's order: a stable schedule
    except DvcException as e:
        raise ReproError(f"{root}: {e}") from None
    return Plan(upstream, order)


def _reachable(successors, start) -> set:
    """Everything `successors` leads to from `start`, itself excluded unless on a cycle."""
    seen, todo = set(), list(successors(start))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(successors(node))
    return seen


def log_path(root: Path, stage: str) -> Path:
    return root / LOGS / (re.sub(r"[^\w.-]", "_", stage) + ".log")


def run(root: Path, targets: list[str] | None = None, jobs: int = 2, force: bool = False, keep_going: bool = False,
        out=sys.stdout) -> int:
    """Reproduce the targets (all stages when none), `jobs` stages at a time; 0 when every stage succeeded.
    `force` reruns every stage (`dvc repro --force`); `keep_going` goes on with the stages that do not depend on a
    failed one (`dvc repro --keep-going`)."""
    steps = plan(root, targets)
    (root / LOGS).mkdir(parents=True, exist_ok=True)
    print(f"past repro: {len(steps.order)} stages, up to {jobs} at a time (logs: {LOGS}/)", file=out, flush=True)
    done, failed, running = set(), [], {}
    start = time.perf_counter()
    try:
        while True:
            if keep_going or not failed:
                for stage in steps.order:
                    if len(running) >= jobs:
                        break
                    started = done | set(running) | set(failed)
                    if stage not in started and steps.upstream[stage] <= done:
                        running[stage] = _start(root, stage, jobs > 1 and steps.side_by_side(stage), force)
                        print(f"  {stage:<16} started", file=out, flush=True)
            if not running:
                break
            time.sleep(0.05)
            for stage, (process, began) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[stage]
                seconds = time.perf_counter() - began
                if process.returncode:
                    failed.append(stage)
                    print(f"  {stage:<16} FAILED after {seconds:.1f} s (exit {process.returncode})", file=out, flush=True)
                else:
                    done.add(stage)
                    print(f"  {stage:<16} {_outcome(log_path(root, stage))} ({seconds:.1f} s)", file=out, flush=True)
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached the stages too: let DVC finish cleaning up
        for process, _ in running.values():
            process.wait()
        print("past repro: interrupted", file=out, flush=True)
        return 130
    for stage in failed:
        log = log_path(root, stage)
        print(f"past repro: stage {stage!r} failed; the end of {log.relative_to(root)}:", file=out)
        print(_tail(log), file=out)
    skipped = [s for s in steps.order if s not in done and s not in failed]
    if skipped:
        reason = "they depend on a failed stage" if keep_going else "they depend on a failed stage or came after it"
        print(f"past repro: not run ({reason}): {', '.join(skipped)}", file=out)
    print(f"past repro: {'failed' if failed else 'done'} in {time.perf_counter() - start:.1f} s", file=out, flush=True)
    return 1 if failed else 0


def _start(root: Path, stage: str, side_by_side: bool, force: bool) -> tuple[subprocess.Popen, float]:
    env = dict(os.environ)
    if side_by_side:
        env = {**SIDE_BY_SIDE, **env}  # a policy the user set is kept
    log = log_path(root, stage).open("w")
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []),
               stage]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child holds its own descriptor
    return process, time.perf_counter()


def _outcome(log: Path) -> str:
    """What DVC did, from its log: ran the command, found the stage unchanged, or restored it from the run cache."""
    text = log.read_text(errors="replace")
    if "didn't change, skipping" in text:
        return "unchanged"
    return "restored from the run cache" if "is cached - skipping run" in text else "done"


def _tail(log: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a stage's log, each progress bar's last state only (tqdm rewrites a line with \\r)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]  # not splitlines(): it splits at \r too
    return "\n".join("    " + line for line in shown[-lines:] if line.strip())
