"""Where the pipeline's artifacts live (the same paths as `dvc.yaml`)."""

from pathlib import Path

WORLD = Path("data/world")
P0, SOURCE, TARGET = WORLD / "p0", WORLD / "source", WORLD / "target"
VOCABULARY = WORLD / "vocabulary.json"

BASE = Path("models/base")
SOURCE_SFT = Path("models/source_sft")
SKILL_RL = Path("models/skill_rl")  # holds sft/ and rl/ of the last refinement round
SKILL = Path("models/skill/skill.safetensors")
TARGET_SFT = Path("models/target_sft")
PAST = Path("models/past")
ORACLE = Path("models/oracle")

METRICS = Path("metrics")
PLOTS = Path("plots")
