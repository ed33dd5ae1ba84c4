"""Skill acquisition with iterative refinement over K disjoint source subsets.

Round k SFTs the base on subset k (round 1 reuses the `source_sft` model), starts RL from
theta_sft_k + v_(k-1), and sets v_k = theta_rl_k - theta_sft_k. Each round thus learns the skill on
knowledge it has not seen, starting from the skill so far, so v_K is less tied to any one subset.

A run's folder holds `round_k/{sft,rl}` for every round and `LAST_ROUND`, the name of the round whose
pair defines the skill: `last_round(folder)` is the one place that reads it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import torch

from past.config import Params
from past.evaluation.backends import closed_book_eval
from past.evaluation.spec import EvalSpec
from past.knowledge.format import KnowledgeSet, split_by_title
from past.modeling import load_model, load_tokenizer, save_model, stored_dtype
from past.skills import SkillVector
from past.training.arguments import TrainingRun
from past.training.grpo import run_grpo
from past.training.sft import finetune_folder

LAST_ROUND = "LAST_ROUND"


@dataclass(frozen=True)
class RoundPair:
    """The two models of one refinement round: v_k = rl - sft."""

    sft: Path
    rl: Path


def round_pair(root: Path, k: int) -> RoundPair:
    return RoundPair(Path(root) / f"round_{k}" / "sft", Path(root) / f"round_{k}" / "rl")


def last_round(root: str | Path) -> RoundPair:
    """The pair of the last round of a finished run (its `LAST_ROUND` file names it)."""
    name = (Path(root) / LAST_ROUND).read_text(encoding="utf-8").strip()
    return RoundPair(Path(root) / name / "sft", Path(root) / name / "rl")


def acquire_skill(params: Params, base: Path, source_sft: Path, source: KnowledgeSet, out: Path,
                  spec: EvalSpec | None = None, run: TrainingRun | None = None, final: Path | None = None) -> dict:
    """Run all rounds, saving round_k/{sft,rl} and LAST_ROUND under `out`; returns per-round source scores
    (before and after RL, graded by `spec`, by default the pipeline's) and the reward curve.

    The RL model of a round is stored in fp32 whatever `train.save_dtype` says, and its SFT model exactly as
    RL started from it, so that v = rl - sft is exact. With LoRA, rl/ is the adapter itself, on top of the
    round's start (sft, or a saved sft + v_(k-1)); it records that start by its final path (`final`, where
    `out` is published), never by the temporary one.
    """
    spec = spec or EvalSpec.from_params(params)
    run = run or TrainingRun(params.train, params.lora)
    final = Path(final or out)
    rounds = params.skill_rl.rounds
    report = {"rounds": [], "reward_curve": []}
    for k, subset in enumerate(split_by_title(source, rounds), start=1):
        pair = round_pair(out, k)
        if k == 1:
            save_model(load_model(source_sft), load_tokenizer(source_sft), pair.sft, dtype=stored_dtype(source_sft))
        else:
            finetune_folder(base, [d["text"] for d in subset.documents], params.source_sft, params.seed + k, pair.sft,
                            run.round(k, "sft/"), save_dtype=stored_dtype(source_sft))
        model, tokenizer = load_model(pair.sft), load_tokenizer(pair.sft)
        start = pair.sft
        if k > 1:
            previous = round_pair(out, k - 1)
            skill_vector(previous).apply_to(model, 1.0)
            if run.uses_lora:  # the adapter's base must be a real folder: sft_k + v_(k-1), saved exactly
                start = save_model(model, tokenizer, Path(out) / f"round_{k}" / "start")
        # Every metric, not only the reward's: an instruct model's RL shows in answer-contained first.
        before = closed_book_eval(model, tokenizer, subset.questions, spec, "source questions", subset.tools)
        model, curve = run_grpo(model, tokenizer, subset.questions, params.prompt, params.skill_rl.grpo,
                                params.seed + k, chat=params.chat, tools=subset.tools, run=run.round(k))
        after = closed_book_eval(model, tokenizer, subset.questions, spec, "source questions", subset.tools)
        if run.uses_lora:
            save_adapter(model, pair.rl, base=final / start.relative_to(out) if start.is_relative_to(out) else start)
        else:
            save_model(model, tokenizer, pair.rl, dtype=torch.float32)
        del model  # free round k's weights (and the trainer's optimizer state) before round k+1 loads its own
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        report["rounds"].append({"round": k, "questions": len(subset.questions),
                                 **{f"start_{m}": v for m, v in before.items() if m != "questions"},
                                 **{f"rl_{m}": v for m, v in after.items() if m != "questions"}})
        report["reward_curve"] += [{"round": k, **point} for point in curve]
        print(f"skill_rl: round {k}/{rounds}: source exact match {before['exact_match']:.3f} -> "
              f"{after['exact_match']:.3f}, answer contained {before['contained']:.3f} -> {after['contained']:.3f}")
    (Path(out) / LAST_ROUND).write_text(f"round_{rounds}\n", encoding="utf-8")
    return report


def round_start(pair: RoundPair) -> Path:
    """Where a round's RL started: its saved sft + v_(k-1) (LoRA refinement) or its sft."""
    start = pair.rl.parent / "start"
    return start if start.is_dir() else pair.sft


def skill_vector(pair: RoundPair):
    """v_k = rl_k - sft_k of a finished round; an RL adapter is read on top of its start in this run's folder
    (never a folder its recorded path may name from an earlier run)."""
    return SkillVector.from_models(pair.rl, pair.sft, rl_base=round_start(pair))


def save_adapter(model, folder: Path, base: Path) -> Path:
    """A trained PEFT model's adapter, atomically, recording `base` as the folder it adapts."""
    import json

    from past.files import atomic_dir

    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        config = json.loads((tmp / "adapter_config.json").read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = str(base)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Path(folder)
