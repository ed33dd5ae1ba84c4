"""The base model: the embedded tiny Llama pre-trained on P0, or a pretrained LLM by hub id.

The tiny base sees P0 biographies *and* P0 question/answer pairs, so, like any pretrained LLM, it can
already answer questions about what it knows. RL needs that: from a base that never saw the question
format the reward is ~1/vocabulary, every GRPO advantage is zero and nothing is learned.
"""

from __future__ import annotations

import random

from dataclasses import replace

from past.config import LoraParams, Params
from past.knowledge.format import KnowledgeSet
from past.modeling import build_tiny_llama, build_word_tokenizer, hub_dtype, load_model, load_tokenizer
from past.prompting import qa_text
from past.training.arguments import TrainingRun
from past.training.sft import run_sft


def pretrain_tiny_base(params: Params, p0: KnowledgeSet, vocabulary: list[str], run: TrainingRun | None = None):
    """A word-level tokenizer over the world and a tiny Llama pre-trained on P0 bios + QA pairs (every weight
    trained: LoRA is for fine-tuning; `run`: where its checkpoints and metrics go)."""
    tokenizer = build_word_tokenizer(vocabulary)
    model = build_tiny_llama(params.base.tiny, tokenizer, params.seed)
    if params.base.steps:
        texts = pretraining_mixture(p0, params.prompt, params.base.qa_fraction, params.seed)
        run = replace(run, lora=LoraParams()) if run else TrainingRun(train=params.train)
        model = run_sft(model, tokenizer, texts, params.base.as_sft(), params.seed, run)
    return model, tokenizer


def pretraining_mixture(p0: KnowledgeSet, prompt: str, qa_fraction: float, seed: int) -> list[str]:
    """Biographies plus worked QA pairs, the pairs making up `qa_fraction` of the mixture."""
    documents = [d["text"] for d in p0.documents]
    pairs = [qa_text(prompt, q) for q in p0.questions]
    if not pairs or qa_fraction == 0:
        return documents
    rng = random.Random(seed)
    wanted = round(len(documents) * qa_fraction / (1 - qa_fraction)) if qa_fraction < 1 else len(documents)
    return documents + [rng.choice(pairs) for _ in range(wanted)]


def load_pretrained_base(model_id: str):
    """A pretrained LLM from the hub (or a local folder): the real `from_pretrained` path, in fp32 (the master
    weights of every training step), with the dtype it was published in (what the base is stored as)."""
    return load_model(model_id), load_tokenizer(model_id), hub_dtype(model_id)
