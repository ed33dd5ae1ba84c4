"""What every DVC stage entry point does first: check params, set threads and seeds, join the other processes
of a launched stage (past.distributed), report errors; SIGTERM (preemption) ends it with exit code 143 and
nothing half-published (past.preemption)."""

from __future__ import annotations

import functools
import random
import sys
from pathlib import Path

from past import failpoints
from past.config import ConfigError, Params, load_params
from past.errors import DataError
from past.files import DiskFullError
from past.preemption import EXIT_CODE, Preempted, preemptible


def stage(main=None, *, torch: bool = True):
    """Wrap `main(params)`: bad params, data or skill inputs end the stage with one clear message.

    `@stage(torch=False)` marks a stage that computes without torch (prepare, inject): it never imports torch or
    transformers, seconds of every fresh `dvc repro`, and seeds only Python's and numpy's generators."""
    if main is None:
        return functools.partial(stage, torch=torch)

    @functools.wraps(main)
    def run(params_path: str = "params.yaml") -> None:
        try:
            params = load_params(params_path)
        except ConfigError as err:
            sys.exit(f"error: {err}")
        # imported only now, so that a bad params file fails at once, before torch even loads
        from past import distributed
        from past.contracts import ContractViolation
        from past.planner import PlanError
        from past.skills import SkillError

        failpoints.set_scope(Path(sys.argv[0]).stem)  # the fault tests' `stage/point`
        _seed_and_threads(params, torch)
        distributed.start()  # under a launcher: the process group exists before any model loads
        try:
            with preemptible():
                main(params)
        except (DataError, ContractViolation, SkillError, PlanError, DiskFullError) as err:
            sys.exit(f"error: {err}")
        except Preempted as err:
            print(f"preempted: {err}", file=sys.stderr)
            sys.exit(EXIT_CODE)

    return run


def _seed_and_threads(params: Params, torch: bool) -> None:
    if torch:
        from transformers import set_seed

        from past.modeling import set_threads

        set_threads(params.threads)
        set_seed(params.seed)
    else:
        import numpy

        random.seed(params.seed)
        numpy.random.seed(params.seed)
