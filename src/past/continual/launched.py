"""The flows' training steps under `train.launcher`: `<launcher> -m past.continual.launched SPEC.json`.

The adapt flow's SFT (`steps.sft`) and the refresh flow's source SFT and skill RL (`steps.source_sft`,
`steps.skill_rl`). With `python` (the default) the flows call those steps in their own process. With torchrun or
accelerate launch, or another Python (`train.python`: the GPU environment, where the flow runs in Prefect's), they
write the step's name and inputs to a spec file and start the launcher on this module in that Python: every process
reads the spec, joins the process group (`past.distributed.start`) and calls (`call_step`) the same `past.steps`
function the DVC stages and a one-process flow call; the main process saves. A GPU worker with 8 GPUs thus trains on
all 8.

The spec holds the params as a path to the params file (adapt: the file the flow read) or as the params themselves
(refresh: params.yaml with the refresh's own seed), paths as strings, and the step's other inputs as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from past.config import Params, SFTParams, TrainParams, load_params
from past.files import remove_path, write_json_atomic
from past.launcher import argv

STEPS = ("sft", "source_sft", "skill_rl")


class LaunchError(RuntimeError):
    """A launched step ended with a non-zero exit code (its output, above, says why)."""


def launch_step(params: Params | Path, home: Path, train: TrainParams, step: str, out: Path, seed: int,
                **inputs) -> None:
    """Run `steps.<step>` (one of STEPS) into `out` under `train.launcher` in `train.python` and wait; raises
    LaunchError if it fails. `params`: a params file or the params themselves; `home`: the project's folder, where
    the processes run (the launcher's relative paths, such as an accelerate config, point there, as in a DVC
    stage); `seed`: what every process seeds with first; `inputs`: the step's other inputs, JSON values with
    absolute paths (see `call_step`)."""
    if step not in STEPS:
        raise ValueError(f"no launched step {step!r}: expected one of {', '.join(STEPS)}")
    out = Path(out).resolve()
    spec = Path(f"{out}.launch.json")
    command = argv(train.launcher, "-m", "past.continual.launched", str(spec), python=train.python)
    write_json_atomic(spec, {"step": step, "params": params.model_dump(mode="json") if isinstance(params, Params)
                             else str(Path(params).resolve()), "out": str(out), "seed": seed, **inputs})
    try:
        code = subprocess.run(command, check=False, cwd=home).returncode  # its progress bars go where the flow's go
    finally:
        remove_path(spec)
    if code != 0:
        raise LaunchError(f"{step} under `{train.launcher}` failed with exit code {code}: {' '.join(command)}")


def launch_sft(params_path: Path, home: Path, train: TrainParams, start: Path, documents: list[str], sft: SFTParams,
               seed: int, out: Path, work: Path | None, dtype: str) -> None:
    """The adapt flow's `steps.sft`, launched (`launch_step`; `out` is untouched if it fails)."""
    launch_step(Path(params_path), home, train, "sft", out, seed, start=str(Path(start).resolve()),
                documents=documents, sft=sft.model_dump(), work=str(Path(work).resolve()) if work is not None else None,
                dtype=dtype)


def spec_params(value: str | dict) -> Params:
    """The params a spec carries: a params file's path, or the params themselves (`Params.model_dump(mode="json")`)."""
    return load_params(value) if isinstance(value, str) else Params.model_validate(value)


def call_step(params: Params, spec: dict):
    """Call the spec's step, as the DVC stage does: what every launched process runs."""
    from past import steps
    from past.evaluation.spec import EvalSpec
    from past.knowledge.format import read_knowledge_set
    from past.modeling import DTYPES

    run = steps.training_run(params, work=Path(spec["work"]) if spec["work"] else None)
    out = Path(spec["out"])
    if spec["step"] == "sft":
        return steps.sft(Path(spec["start"]), spec["documents"], SFTParams(**spec["sft"]), spec["seed"], out, run,
                         DTYPES[spec["dtype"]])
    if spec["step"] == "source_sft":
        return steps.source_sft(params, Path(spec["base"]), read_knowledge_set(spec["source"]), out, run)
    if spec["step"] == "skill_rl":  # graded as the flows grade (adaptation.Settings.spec: the same params, any seed)
        return steps.skill_rl(params, Path(spec["base"]), Path(spec["source_sft"]), read_knowledge_set(spec["source"]),
                              out, EvalSpec.from_params(params), run)
    raise ValueError(f"no launched step {spec['step']!r}: expected one of {', '.join(STEPS)}")


def main(spec_path: str) -> None:
    from transformers import set_seed

    from past import distributed
    from past.modeling import set_threads

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    params = spec_params(spec["params"])
    set_threads(params.threads)
    set_seed(spec["seed"])
    distributed.start()  # before the model loads
    call_step(params, spec)


if __name__ == "__main__":
    main(sys.argv[1])
