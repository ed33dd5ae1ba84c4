"""Errors raised on bad input.

Every refusal is a `SkillError` whose message is one line naming the tensor or file at fault, so the CLI
can print it as is and exit non-zero. Subclasses let callers (flows, tests) tell the kinds apart.
"""

from __future__ import annotations

from past.errors import Refusal


class SkillError(Refusal):
    """Base class: the inputs or the requested output cannot be used; nothing was written."""


class CheckpointError(SkillError):
    """A checkpoint is missing, truncated, malformed, or in an unsafe format (pickle)."""


class IncompatibleError(SkillError):
    """Inputs do not line up: different tensor names, shapes, vocabulary or base architecture."""


class NonFiniteError(SkillError):
    """A tensor holds NaN or Inf (in an input, or the result overflowed the output dtype)."""


class OutputExistsError(SkillError):
    """The output path exists and overwrite was not requested."""


class OutputOverlapError(SkillError):
    """The output is, contains, or lies inside one of the inputs: writing it would destroy that input."""


class OtherBaseError(IncompatibleError):
    """A skill was extracted from another base model than the target's (same architecture, other lineage)."""
