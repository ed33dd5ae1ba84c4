"""Evaluation: scoring, batched generation equal to one-by-one generation, the metrics-diff table."""

import pytest
import torch

from past.config import TinyModelParams
from past.evaluation.generate import generate_answers
from past.evaluation.metrics import score_answers
from past.evaluation.metrics_diff import markdown_table
from past.modeling import build_tiny_llama, build_word_tokenizer

QUESTIONS = [{"id": "a", "answers": ["kelm"]}, {"id": "b", "answers": ["new tras"]}]


def test_scores_average_exact_match_and_f1():
    scores = score_answers(["kelm", "tras"], QUESTIONS)
    assert scores == {"exact_match": 0.5, "f1": pytest.approx((1 + 2 / 3) / 2), "contained": 0.5, "questions": 2}
    with pytest.raises(ValueError, match="no questions"):
        score_answers([], [])


def test_batched_left_padded_generation_matches_one_by_one():
    words = "question answer : ? where was ann bob cy born kelm tras zu the of".split()
    tokenizer = build_word_tokenizer(words)
    torch.manual_seed(0)
    model = build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
                             tokenizer, seed=0)
    prompts = ["question : where was ann born ? answer :", "question : where ? answer :",
               "question : where was the bob of cy born ? answer :"]
    batched = generate_answers(model, tokenizer, prompts, batch_size=3, max_new_tokens=3)
    single = [generate_answers(model, tokenizer, [p], batch_size=1, max_new_tokens=3)[0] for p in prompts]
    assert batched == single
    # not vacuous: the prompts differ in length (left padding is exercised), every answer runs the full
    # max_new_tokens (no EOS cut it short) and they differ; right padding would have broken the first one
    assert len({len(tokenizer(p).input_ids) for p in prompts}) == 3
    assert [len(a.split()) for a in batched] == [3, 3, 3] and len(set(batched)) > 1
    tokenizer.padding_side = "right"
    right = tokenizer(prompts, return_tensors="pt", padding=True)
    output = model.generate(**right, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.batch_decode(output[:, right["input_ids"].shape[1]:], skip_special_tokens=True) != batched


def test_metrics_diff_markdown_marks_direction():
    diff = {"metrics/eval.json": {"exact_match.past": {"old": 0.9, "new": 0.95, "diff": 0.05},
                                  "exact_match.base": {"old": 0.05, "new": 0.04, "diff": -0.01}}}
    table = markdown_table(diff, "main", "workspace").splitlines()
    assert table[0] == "| metric | main | workspace | change |"
    assert "| `metrics/eval.json:exact_match.past` | 0.9 | 0.95 | ▲ +0.05 |" in table
    assert "| `metrics/eval.json:exact_match.base` | 0.05 | 0.04 | ▼ -0.01 |" in table
    assert markdown_table({}) == "No metric changed."
