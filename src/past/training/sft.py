"""Supervised fine-tuning on documents with TRL's SFTTrainer (knowledge goes into the weights)."""

from __future__ import annotations

import random
import tempfile

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from past.config import SFTParams
from past.training.arguments import quiet_transformers, trainer_arguments


def run_sft(model, tokenizer, texts: list[str], params: SFTParams, seed: int):
    """Train `model` in place on `texts` for `params.steps` steps; returns the trainer's log history."""
    quiet_transformers()
    # the step budget, not the epoch count, sets the work: repeat the shuffled texts to fill it
    rng = random.Random(seed)
    needed = params.steps * params.batch_size
    rows = [texts[i % len(texts)] for i in range(max(needed, len(texts)))]
    rng.shuffle(rows)
    with tempfile.TemporaryDirectory(prefix="past-sft-") as out:
        config = SFTConfig(**trainer_arguments(out, params.steps, params.lr, seed, params.warmup_ratio),
                           per_device_train_batch_size=params.batch_size, max_length=model.config.max_position_embeddings,
                           dataset_text_field="text", packing=False)
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_dict({"text": rows}),
                             processing_class=tokenizer)
        trainer.train()
    return trainer.state.log_history


def finetune_folder(source, texts: list[str], params: SFTParams, seed: int, output) -> None:
    """Load a saved model, SFT it on `texts` and save it to `output` (atomically)."""
    from past.modeling import load_model, load_tokenizer, save_model

    model, tokenizer = load_model(source), load_tokenizer(source)
    run_sft(model, tokenizer, texts, params, seed)
    save_model(model, tokenizer, output)
