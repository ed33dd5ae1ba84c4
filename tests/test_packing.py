"""`train.pack_batches`: SFT micro-batches packed into rows of their longest sequence (past.training.packing)."""

import random

import pytest
import torch

from past.config import SFTParams, TinyModelParams, TrainParams
from past.modeling import build_tiny_llama, build_word_tokenizer
from past.training.arguments import TrainingRun
from past.training.packing import PackingCollator, pack
from past.training.sft import run_sft

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture
def examples():
    """A batch like the embedded base's: biographies of 31-47 tokens beside question/answer pairs of 12-20."""
    rng = random.Random(0)
    lengths = [rng.randint(31, 47) for _ in range(22)] + [rng.randint(12, 20) for _ in range(10)]
    rng.shuffle(lengths)
    return [{"input_ids": [rng.randrange(4, 44) for _ in range(n)]} for n in lengths]


@pytest.fixture
def model():
    tokenizer = build_word_tokenizer(WORDS)
    return build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64),
                            tokenizer, seed=0)


def test_rows_hold_every_sequence_once_within_the_longest_ones_length():
    lengths = [40, 12, 35, 20, 13, 44, 15, 31]
    rows = pack(lengths)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max(lengths) for row in rows)
    assert len(rows) == 6  # 44 | 40 | 35 | 31+13 | 20+15 | 12: first-fit decreasing
    assert pack(lengths) == rows  # a pure function of the lengths (a resumed run packs the same rows)


def padded(examples, pad=0):
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in examples])
    mask = (torch.arange(width)[None] < torch.tensor([len(e["input_ids"]) for e in examples])[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def loss_and_gradient(model, batch):
    """The causal LM loss averaged over every target token (what the Trainer divides by), and its gradient."""
    model.zero_grad()
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum") \
        / labels.ne(-100).sum()
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])


def test_a_packed_batch_has_the_padded_batchs_loss_and_gradient_on_a_fraction_of_its_tokens(model, examples):
    packed = PackingCollator(pad_token_id=0)(examples)
    reference = padded(examples)
    real = sum(len(e["input_ids"]) for e in examples)
    filler, filler_padded = packed["input_ids"].numel() - real, reference["input_ids"].numel() - real
    assert filler < filler_padded / 2, (filler, filler_padded)  # 32 rows became fewer, with less than half the filler
    assert packed["labels"].ne(-100).sum() == reference["labels"][:, 1:].ne(-100).sum()  # the same targets
    loss, gradient = loss_and_gradient(model, packed)
    loss_padded, gradient_padded = loss_and_gradient(model, reference)
    assert loss == pytest.approx(loss_padded, rel=1e-5)
    assert torch.allclose(gradient, gradient_padded, atol=1e-6, rtol=1e-4)
    # what keeps them equal: positions restarting at each sequence (else attention spans the row's sequences)
    across = dict(packed, position_ids=torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"]))
    assert not torch.allclose(loss_and_gradient(model, across)[1], gradient_padded, atol=1e-6, rtol=1e-4)


def test_sft_with_packed_batches_trains_the_padded_runs_model(model):
    """Through TRL's SFTTrainer: the same steps on the same samples, so the weights agree up to rounding."""
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.choice([6, 9, 25, 30]))) for _ in range(64)]
    tokenizer = build_word_tokenizer(WORDS)
    params = SFTParams(steps=3, lr=1e-3, batch_size=16, warmup_ratio=0.0)
    trained = {}
    for packing in (False, True):
        start = build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64),
                                 tokenizer, seed=0)
        run = TrainingRun(train=TrainParams(pack_batches=packing))
        trained[packing] = torch.cat([p.detach().flatten() for p in
                                      run_sft(start, tokenizer, texts, params, seed=0, run=run).parameters()])
    initial = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = (trained[False] - initial).abs().max()
    assert moved > 1e-3  # three steps at lr 1e-3 move the weights ...
    assert not torch.equal(trained[True], trained[False])  # packed rows ran (the rounding differs) ...
    assert (trained[True] - trained[False]).abs().max() < 1e-3 * moved  # ... and did not change where the steps go
