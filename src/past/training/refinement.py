"""Skill acquisition with iterative refinement over K disjoint source subsets.

Round k SFTs the base on subset k (round 1 reuses the `source_sft` model), starts RL from
theta_sft_k + v_(k-1), and sets v_k = theta_rl_k - theta_sft_k. Each round thus learns the skill on
knowledge it has not seen, starting from the skill so far, so v_K is less tied to any one subset.

A run's folder holds `round_k/{sft,rl}` for every round (and `round_k/start` with LoRA), each round's
`round_k/report.json` and `LAST_ROUND`, the name of the round whose pair defines the skill:
`last_round(folder)` is the one place that reads it.

Resuming: a round's report is written last, so a round with one is finished and a rerun into the same folder
skips it; an unfinished round keeps what it saved (its sft, its start) and its trainers resume from their
checkpoints (under the run's work folder, `round_k/sft`, `round_k/rl`).
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from past.config import Params
from past.distributed import barrier, is_main, on_main, world_size
from past.evaluation.backends import closed_book_eval
from past.evaluation.spec import EvalSpec
from past.files import atomic_dir, remove_path, remove_temporaries, write_json_atomic
from past.knowledge.format import KnowledgeSet, split_by_title
from past.modeling import load_model, load_tokenizer, save_model, stored_dtype
from past.skills import SkillVector
from past.training.arguments import TrainingRun
from past.training.checkpoints import within
from past.training.gathering import check_exact_rl_start, unpartitioned

LAST_ROUND = "LAST_ROUND"
ROUND_REPORT = "report.json"  # a round's scores and reward curve, written when the round is finished


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

    `out` may hold a part of an earlier run of the same inputs (the caller's work folder): finished rounds are
    kept, not redone, and the unfinished one resumes (see the module's doc). `run.work`, if set, is where the
    rounds' trainers checkpoint.
    """
    from past.training.grpo import run_grpo  # here, not above: extract_skill reads rounds without loading TRL
    from past.training.sft import finetune_folder

    spec = spec or EvalSpec.from_params(params)
    run = run or TrainingRun(params.train, params.lora)
    final = Path(final or out)
    rounds = params.skill_rl.rounds
    report = {"rounds": [], "reward_curve": []}
    check_exact_rl_start(stored_dtype(source_sft), rounds)
    Path(out).mkdir(parents=True, exist_ok=True)
    on_main(remove_temporaries, out)  # what a killed run was writing; only this run writes here
    for k, subset in enumerate(split_by_title(source, rounds), start=1):
        pair = round_pair(out, k)
        done = pair.rl.parent / ROUND_REPORT
        if done.is_file():
            kept = json.loads(done.read_text(encoding="utf-8"))
            report["rounds"].append(kept["round"])
            report["reward_curve"] += kept["reward_curve"]
            print(f"skill_rl: round {k}/{rounds}: finished by an earlier run, kept")
            continue
        if k == 1 and not pair.sft.is_dir():  # (a saved sft_k is whole: an interrupted run of this round left it)
            on_main(copy_model, source_sft, pair.sft)
        elif not pair.sft.is_dir():
            finetune_folder(base, [d["text"] for d in subset.documents], params.source_sft, params.seed + k, pair.sft,
                            within(run.round(k, "sft/"), f"round_{k}/sft"), save_dtype=stored_dtype(source_sft))
            if run.work is not None:
                on_main(remove_path, Path(run.work) / f"round_{k}/sft")  # sft_k is saved: its checkpoints are done
        start = pair.sft
        if k > 1 and (run.uses_lora or world_size() > 1):
            # a real folder: the adapter's base, and what every process of a launched run loads (ZeRO-3 loads
            # partitioned: sft_k + v_(k-1) cannot be made in memory there)
            start = Path(out) / f"round_{k}" / "start"
            on_main(save_round_start, pair.sft, round_pair(out, k - 1), start)
        model, tokenizer = load_model(start), load_tokenizer(start)
        if k > 1 and start == pair.sft:
            skill_vector(round_pair(out, k - 1)).apply_to(model, 1.0)
        # Every metric, not only the reward's: an instruct model's RL shows in answer-contained first. With several
        # processes the main one scores the saved start (the model in memory may be partitioned).
        before = on_main(source_scores, model if world_size() == 1 else start, tokenizer, subset, spec)
        model, curve = run_grpo(model, tokenizer, subset.questions_in("train"), params.prompt, params.skill_rl.grpo,
                                params.seed + k, chat=params.chat, tools=subset.tools,
                                run=within(run.round(k), f"round_{k}/rl"))
        after = on_main(source_scores, model, tokenizer, subset, spec)  # model: whole on the main process
        if run.uses_lora:
            on_main(save_adapter, model, pair.rl,
                    base=final / start.relative_to(out) if start.is_relative_to(out) else start)
        else:
            on_main(save_model, model, tokenizer, pair.rl, dtype=torch.float32)
        del model  # free round k's weights (and the trainer's optimizer state) before round k+1 loads its own
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        points = [{"round": k, **point} for point in curve]
        if is_main():
            entry = {"round": k, "questions": len(subset.questions_in("train")),
                     **{f"start_{m}": v for m, v in before.items() if m != "questions"},
                     **{f"rl_{m}": v for m, v in after.items() if m != "questions"}}
            write_json_atomic(done, {"round": entry, "reward_curve": points})  # last: the round is finished
            if run.work is not None:
                remove_path(Path(run.work) / f"round_{k}")  # its trainers' checkpoints are not needed again
            report["rounds"].append(entry)
            report["reward_curve"] += points
            print(f"skill_rl: round {k}/{rounds}: source exact match {before['exact_match']:.3f} -> "
                  f"{after['exact_match']:.3f}, answer contained {before['contained']:.3f} -> {after['contained']:.3f}")
        barrier()
    on_main((Path(out) / LAST_ROUND).write_text, f"round_{rounds}\n", encoding="utf-8")
    return report


def copy_model(source: Path, folder: Path) -> Path:
    """A saved model copied as it is stored (round 1's sft is the source SFT model, in its dtype)."""
    return save_model(load_model(source), load_tokenizer(source), folder, dtype=stored_dtype(source))


def save_round_start(sft: Path, previous: RoundPair, folder: Path) -> None:
    """sft_k + v_(k-1), saved in fp32 (unless an interrupted run saved it: the same values, made the same way)."""
    if folder.is_dir():
        return
    model = load_model(sft)
    skill_vector(previous).apply_to(model, 1.0)
    save_model(model, load_tokenizer(sft), folder)


def source_scores(model, tokenizer, subset: KnowledgeSet, spec: EvalSpec) -> dict:
    """Closed-book scores on a round's RL questions (of a model in memory or a saved folder, whole); its
    `validation` questions are left for the lambda choice."""
    with unpartitioned():
        return closed_book_eval(model, tokenizer, subset.questions_in("train"), spec, "source questions",
                                subset.tools)


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
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        config = json.loads((tmp / "adapter_config.json").read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = str(base)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Path(folder)
