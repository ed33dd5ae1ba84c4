"""Small helpers the Prefect flows share: which failures to retry, and timing a task call."""

from __future__ import annotations

import time
from pathlib import Path

from past.continual.landing import DropNotReady


def retry_io(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry a drop still being copied, an I/O error, a timeout, a crashed training
    process; never a refusal (past.errors.Refusal: bad params or data, a registry operation that does not apply,
    a broken contract) nor any other ValueError: asking again cannot help."""
    try:
        state.result()
    except DropNotReady:
        return True
    except ValueError:  # Refusal among them
        return False
    except Exception:
        return True
    return False


def run_step(task, timings: dict, name: str, *args, storage: Path | None = None, refresh: bool = False):
    """Call a Prefect task and note its wall time, whether its result came from the cache and its own
    compute time (the `seconds` its result reports). With `storage`, results and cache records are kept
    there (JSON); `refresh` recomputes even on a cache hit (used when the step's output folder is gone)."""
    started = time.perf_counter()
    if storage is not None:
        task = task.with_options(result_storage=Path(storage), refresh_cache=refresh or None)
    state = task(*args, return_state=True)
    result = state.result()  # raises the task's exception if it failed
    cached = state.name == "Cached"
    reported = result.get("seconds", 0.0) if isinstance(result, dict) else getattr(result, "seconds", 0.0)
    compute = 0.0 if cached else reported
    timings[name] = {"seconds": round(time.perf_counter() - started, 3), "cached": cached, "compute": compute}
    return result
