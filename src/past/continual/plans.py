"""Typed plans of the adapt and refresh flows: everything that decides a candidate, and its id.

A plan is computed once at the start of a run and handed to every later step (Prefect caches each step
by the plan's `key`). pydantic models rather than nested dicts: a misspelt field fails at once, and
Prefect's JSON result serializer stores and restores them as they are.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ref(_Frozen):
    """A registered artifact: its id and where it lies."""

    id: str
    path: str


class Production(Ref):
    sft_path: str  # production's SFT weights before injection (the next drop trains on these)
    lam: float
    skill: str


class Start(Ref):
    kind: str  # "target": production's own SFT weights; "base": the registered base


class Regression(_Frozen):
    id: str  # identity of the fixed regression question sample
    count: int
    baseline: dict | None = None  # the lineage's first measured score on it (the reference for `drift`)


class DropRef(_Frozen):
    name: str
    hash: str


class AdaptPlan(_Frozen):
    key: str  # sha256 of `inputs`: the same inputs give the same candidate
    candidate: str
    kind: str  # incremental (SFT on the drop + replay) or consolidation (SFT on all knowledge)
    inputs: dict
    drop: DropRef
    snapshot: str
    production: Production
    start: Start
    skill: Ref
    lam: float | None  # pinned; None: chosen among `lambdas` when the skill is injected
    lambdas: list[float] = []
    sft_dir: str
    model_dir: str
    regression: Regression
    earlier: Regression | None  # the earlier drops' questions; None before the lineage has any
    new_questions: int
    eval_key: str  # EvalSpec.key: what the scores depend on besides model and questions
    seconds: float = 0.0


class RefreshPlan(_Frozen):
    key: str
    inputs: dict
    seed: int
    work: str  # source SFT and RL rounds; deleted once the refresh is decided
    source: str
    base: Ref
    production: Production
    current_skill: Ref
    lam: float | None  # pinned (adapt.lam, then inject.lam); None: the lambda the new skill is chosen with
    skill_id: str
    skill_file: str
    candidate: str
    model_dir: str
    regression: Regression
    eval_key: str
    seconds: float = 0.0
