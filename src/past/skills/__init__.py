"""Skill vectors: v = theta_rl - theta_sft, extracted once, injected as theta_T + lambda * v.

Streaming functions (`extract_skill`, `inject`) work file to file with memory independent of model size;
`SkillVector` is the in-memory value type for small models and tests.
"""

from .diagnostics import delta_cosines
from .engine import extract_skill, inject
from .errors import (CheckpointError, IncompatibleError, NonFiniteError, OtherBaseError, OutputExistsError,
                     OutputOverlapError, SkillError)


def __getattr__(name: str):
    # SkillVector holds torch tensors: imported on first use, so that the streaming CLI never loads torch.
    if name == "SkillVector":
        from .vector import SkillVector

        return SkillVector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "SkillVector",
    "extract_skill",
    "inject",
    "delta_cosines",
    "SkillError",
    "CheckpointError",
    "IncompatibleError",
    "NonFiniteError",
    "OutputExistsError",
    "OutputOverlapError",
    "OtherBaseError",
]
