"""The adapt flow's SFT under `train.launcher`: `<launcher> -m past.continual.launched SPEC.json`.

With `python` (the default) the flow calls `steps.sft` in its own process. With torchrun or accelerate launch,
or another Python (`train.python`: the GPU environment, where the flow runs in Prefect's), it writes the step's
inputs to a spec file and starts the launcher on this module in that Python: every process reads the spec, joins
the process group (`past.distributed.start`) and calls the same `steps.sft` the DVC stages and a one-process flow
call; the main process saves. A GPU worker with 8 GPUs thus trains on all 8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from past.config import SFTParams, TrainParams
from past.files import remove_path, write_json_atomic
from past.launcher import argv


class LaunchError(RuntimeError):
    """The launched SFT ended with a non-zero exit code (its output, above, says why)."""


def launch_sft(params_path: Path, train: TrainParams, start: Path, documents: list[str], sft: SFTParams, seed: int,
               out: Path, work: Path | None, dtype: str) -> None:
    """Run `steps.sft` under `train.launcher` in `train.python` and wait; raises LaunchError if it fails (`out` is
    then untouched)."""
    spec = Path(f"{out}.launch.json")
    command = argv(train.launcher, "-m", "past.continual.launched", str(spec), python=train.python)
    write_json_atomic(spec, {"params": str(Path(params_path).resolve()), "start": str(start), "documents": documents,
                             "sft": sft.model_dump(), "seed": seed, "out": str(out),
                             "work": str(work) if work is not None else None, "dtype": dtype})
    try:
        code = subprocess.run(command, check=False).returncode  # its progress bars go where the flow's go
    finally:
        remove_path(spec)
    if code != 0:
        raise LaunchError(f"adapt SFT under `{train.launcher}` failed with exit code {code}: {' '.join(command)}")


def main(spec_path: str) -> None:
    from transformers import set_seed

    from past import distributed, steps
    from past.config import load_params
    from past.modeling import DTYPES, set_threads

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    params = load_params(spec["params"])
    set_threads(params.threads)
    set_seed(spec["seed"])
    distributed.start()  # before the model loads
    work = Path(spec["work"]) if spec["work"] else None
    steps.sft(Path(spec["start"]), spec["documents"], SFTParams(**spec["sft"]), spec["seed"], Path(spec["out"]),
              steps.training_run(params, work=work), DTYPES[spec["dtype"]])


if __name__ == "__main__":
    main(sys.argv[1])
