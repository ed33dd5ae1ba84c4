"""Training metrics through DVCLive, by transformers' own `DVCLiveCallback`: a folder per stage.

What is logged is what a reviewer diffs: loss, learning rate, grad norm and entropy (SFT and GRPO; token
accuracy for SFT), and for GRPO also the reward, its std, the completion length and the KL (when beta > 0).
Wall-clock figures (runtime, samples per second, step time) are left out and so are the trainer's arguments
(they hold temporary paths), and so is the run-average `train_loss` (after a resume transformers averages
only the steps since): a tracked output carries nothing that differs between two runs of the same inputs, an
interrupted and resumed one included, so `dvc repro` reproduces `dvc.lock`. Every checkpoint holds a copy of
the folder as it was at that step (`CURVES`), and a resumed run starts from it: the points a killed run logged
after its last checkpoint are logged once, not twice. Refinement rounds share their stage's folder, each
under a `round_<k>/` prefix, continuing the step count (DVCLive's resume), so `dvc plots show` draws them side
by side from one plots folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers.integrations import DVCLiveCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from past.distributed import is_main
from past.files import copy_folder_atomic

# what is plotted: the curves people ask for first (anything else TRL logs stays in the trainer's own log)
TRACKED = re.compile(r"loss|learning_rate|grad_norm|reward|reward_std|completions/mean_length|kl|entropy|"
                     r"mean_token_accuracy")
CURVES = "dvclive"  # in a checkpoint: the metrics folder as it was at that step


class LiveCallback(DVCLiveCallback):
    def __init__(self, folder: Path, prefix: str = "", resume: bool = False):
        super().__init__(live=None)  # opened once the checkpoint to resume from is known (`open`)
        self.folder, self.prefix, self.resume = Path(folder), prefix, resume

    def open(self, checkpoint: str | None = None) -> None:
        """Open the metrics folder: as it was at `checkpoint` when resuming one; else cleared, or continued
        (a later refinement round)."""
        from dvclive import Live

        saved = Path(checkpoint) / CURVES if checkpoint else None
        if saved is not None:
            copy_folder_atomic(saved, self.folder)
        # no experiment commits from inside a DVC stage, no dvc.yaml of its own: dvc.yaml declares the folder
        self.live = Live(str(self.folder), resume=self.resume or saved is not None, save_dvc_exp=False,
                         dvcyaml=False)

    def setup(self, args, state, model):
        if self.live is None:
            self.open()
        self._initialized = True  # transformers would log every TrainingArguments field: temp paths, times

    def on_save(self, args, state, control, **kwargs):
        if self.live is not None:  # the checkpoint is complete once its copy of the curves is in it
            checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            copy_folder_atomic(self.folder, checkpoint / CURVES)

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        kept = {f"{self.prefix}{key}": value for key, value in (logs or {}).items() if TRACKED.fullmatch(key)}
        super().on_log(args, state, control, model=model, logs=kept, **kwargs)


def tracking_callbacks(folder: Path | None, prefix: str = "", resume: bool = False) -> list:
    """The callbacks that track a trainer into `folder` (none when it is None; none but on the main process of
    several: a new `Live` clears its folder, and the metrics are the same on every process)."""
    return [LiveCallback(Path(folder), prefix, resume)] if folder is not None and is_main() else []


def record_no_training(folder: Path) -> None:
    """The metrics folder of a step that trains nothing (a published base model is converted or fetched, not
    pre-trained): the folder dvc.yaml declares, saying zero steps, instead of a missing output."""
    from dvclive import Live

    with Live(str(folder), save_dvc_exp=False, dvcyaml=False) as live:
        live.log_metric("trained_steps", 0)

