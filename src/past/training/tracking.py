"""Training metrics through DVCLive, by transformers' own `DVCLiveCallback`: a folder per stage.

What is logged is what a reviewer diffs: loss, learning rate, grad norm and entropy (SFT and GRPO; token
accuracy for SFT), and for GRPO also the reward, its std, the completion length and the KL (when beta > 0).
Wall-clock figures (runtime, samples per second, step time) are left out and so are the trainer's arguments
(they hold temporary paths): a tracked output carries nothing that differs between two runs of the same
inputs, so `dvc repro` reproduces `dvc.lock`. Refinement rounds share their stage's folder, each under a `round_<k>/` prefix, continuing the
step count (DVCLive's resume), so `dvc plots show` draws them side by side from one plots folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers.integrations import DVCLiveCallback

from past.distributed import is_main

# what is plotted: the curves people ask for first (anything else TRL logs stays in the trainer's own log)
TRACKED = re.compile(r"(train_)?loss|learning_rate|grad_norm|reward|reward_std|completions/mean_length|kl|entropy|"
                     r"mean_token_accuracy")


class LiveCallback(DVCLiveCallback):
    def __init__(self, folder: Path, prefix: str = "", resume: bool = False):
        from dvclive import Live

        # no experiment commits from inside a DVC stage, no dvc.yaml of its own: dvc.yaml declares the folder
        super().__init__(live=Live(str(folder), resume=resume, save_dvc_exp=False, dvcyaml=False))
        self.prefix = prefix

    def setup(self, args, state, model):
        self._initialized = True  # transformers would log every TrainingArguments field: temp paths, times

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        kept = {f"{self.prefix}{key}": value for key, value in (logs or {}).items() if TRACKED.fullmatch(key)}
        super().on_log(args, state, control, model=model, logs=kept, **kwargs)


def tracking_callbacks(folder: Path | None, prefix: str = "", resume: bool = False) -> list:
    """The callbacks that track a trainer into `folder` (none when it is None; none but on the main process of
    several: a new `Live` clears its folder, and the metrics are the same on every process)."""
    return [LiveCallback(Path(folder), prefix, resume)] if folder is not None and is_main() else []
