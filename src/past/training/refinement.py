"""Skill acquisition with iterative refinement over K disjoint source subsets.

Round k SFTs the base on subset k (round 1 reuses the `source_sft` model), starts RL from
theta_sft_k + v_(k-1), and sets v_k = theta_rl_k - theta_sft_k. Each round thus learns the skill on
knowledge it has not seen, starting from the skill so far, so v_K is less tied to any one subset.
"""

from __future__ import annotations

from pathlib import Path

from past.config import Params
from past.evaluation.metrics import closed_book_scores
from past.knowledge.format import KnowledgeSet, split_by_title
from past.modeling import load_model, load_tokenizer, save_model
from past.skills import SkillVector
from past.training.grpo import run_grpo
from past.training.sft import finetune_folder


def round_dirs(root: Path, k: int) -> tuple[Path, Path]:
    return root / f"round_{k}" / "sft", root / f"round_{k}" / "rl"


def acquire_skill(params: Params, base: Path, source_sft: Path, source: KnowledgeSet, out: Path) -> dict:
    """Run all rounds, saving round_k/{sft,rl} under `out`; returns per-round scores and reward curves."""
    rounds = params.skill_rl.rounds
    report = {"rounds": [], "reward_curve": []}
    for k, subset in enumerate(split_by_title(source, rounds), start=1):
        sft_dir, rl_dir = round_dirs(out, k)
        if k == 1:
            tokenizer = load_tokenizer(source_sft)
            save_model(load_model(source_sft), tokenizer, sft_dir)
        else:
            finetune_folder(base, [d["text"] for d in subset.documents], params.source_sft, params.seed + k, sft_dir)
        model, tokenizer = load_model(sft_dir), load_tokenizer(sft_dir)
        if k > 1:
            previous_sft, previous_rl = round_dirs(out, k - 1)
            SkillVector.from_models(previous_rl, previous_sft).apply_to(model, 1.0)
        questions = subset.questions
        before = _source_scores(model, tokenizer, questions, params)
        curve = run_grpo(model, tokenizer, questions, params.prompt, params.skill_rl.grpo, params.seed + k,
                         chat=params.chat, tools=subset.tools)
        after = _source_scores(model, tokenizer, questions, params)
        save_model(model, tokenizer, rl_dir)
        report["rounds"].append({"round": k, "questions": len(questions),
                                 **{f"start_{m}": v for m, v in before.items() if m != "questions"},
                                 **{f"rl_{m}": v for m, v in after.items() if m != "questions"}})
        report["reward_curve"] += [{"round": k, **point} for point in curve]
        print(f"skill_rl: round {k}/{rounds}: source exact match {before['exact_match']:.3f} -> {after['exact_match']:.3f}, "
              f"answer contained {before['contained']:.3f} -> {after['contained']:.3f}")
    return report


def _source_scores(model, tokenizer, questions: list[dict], params: Params) -> dict[str, float]:
    # Every metric, not only exact match: an instruct model's RL shows in answer-contained first.
    return closed_book_scores(model, tokenizer, questions, params.prompt, params.evaluate.batch_size,
                              params.evaluate.max_new_tokens, desc="source questions", chat=params.chat)
