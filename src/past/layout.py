"""Where the pipeline's artifacts live (the same paths as `dvc.yaml`), under a project root.

`PIPELINE` is the layout of the checkout the DVC stages run in (paths relative to it, so nothing
absolute is written into a tracked output); the flows and the tests lay out other roots the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    @property
    def world(self) -> Path:
        return self.root / "data/world"

    @property
    def p0(self) -> Path:
        return self.world / "p0"

    @property
    def source(self) -> Path:
        return self.world / "source"

    @property
    def target(self) -> Path:
        return self.world / "target"

    @property
    def vocabulary(self) -> Path:
        return self.world / "vocabulary.json"

    @property
    def base(self) -> Path:
        return self.root / "models/base"

    @property
    def source_sft(self) -> Path:
        return self.root / "models/source_sft"

    @property
    def skill_rl(self) -> Path:
        return self.root / "models/skill_rl"  # round_k/{sft,rl} and LAST_ROUND (training.refinement)

    @property
    def skill(self) -> Path:
        return self.root / "models/skill/skill.safetensors"

    @property
    def target_sft(self) -> Path:
        return self.root / "models/target_sft"

    @property
    def past(self) -> Path:
        return self.root / "models/past"

    @property
    def oracle(self) -> Path:
        return self.root / "models/oracle"

    def live(self, stage: str) -> Path:
        """The stage's training metrics (DVCLive: metrics.json, plots/metrics/*.tsv)."""
        return self.root / "dvclive" / stage

    def work(self, stage: str) -> Path:
        """A training stage's resumable work (checkpoints, finished RL rounds): ignored by git and DVC, removed
        once the stage's output is published (past.training.checkpoints)."""
        return self.root / "models/.work" / stage

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def plots(self) -> Path:
        return self.root / "plots"


PIPELINE = Layout()
