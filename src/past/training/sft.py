"""Supervised fine-tuning on documents with TRL's SFTTrainer (knowledge goes into the weights)."""

from __future__ import annotations

import random

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from past.config import SFTParams
from past.distributed import on_main
from past.training.arguments import TrainingRun, lora_config, quiet_transformers, trainer_arguments
from past.training.checkpoints import output_dir, train
from past.training.gathering import trained_model
from past.training.packing import PackingCollator


def run_sft(model, tokenizer, texts: list[str], params: SFTParams, seed: int, run: TrainingRun | None = None):
    """Train `model` on `texts` for `params.steps` steps; returns the trained model (with LoRA, the adapter
    merged into the weights: what SFT stores is knowledge, kept in full weights), whole: under a launcher
    with sharded weights only the main process gets it (None elsewhere, `training.gathering`). With checkpoints (`run.work`,
    `train.checkpoint_steps`) it resumes from the latest one: the rows below are a pure function of `texts` and
    `seed`, and the Trainer's seeded sampler and saved data position put a resumed run on the same batches."""
    run = run or TrainingRun()
    quiet_transformers()
    # the step budget, not the epoch count, sets the work: repeat the shuffled texts to fill it
    rng = random.Random(seed)
    needed = params.steps * params.batch_size
    rows = [texts[i % len(texts)] for i in range(max(needed, len(texts)))]
    rng.shuffle(rows)
    if run.train.group_by_length:  # rows repeat the texts: tokenize each text once
        length = dict(zip(texts, map(len, tokenizer(texts)["input_ids"])))
        rows = length_grouped(rows, [length[row] for row in rows], params.batch_size, rng)
    max_length = min(run.train.max_length or model.config.max_position_embeddings,
                     model.config.max_position_embeddings)
    with output_dir(run, prefix="past-sft-") as out:
        config = SFTConfig(**trainer_arguments(out, params.steps, params.lr, seed, params.batch_size, run,
                                               params.warmup_ratio),
                           max_length=max_length, dataset_text_field="text", packing=False,
                           # grouped rows are already in their batches: the Trainer must not reshuffle them
                           **({"train_sampling_strategy": "sequential"} if run.train.group_by_length else {}))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_dict({"text": rows}),
                             processing_class=tokenizer, peft_config=lora_config(run.lora), callbacks=run.callbacks(),
                             data_collator=PackingCollator(pad) if run.train.pack_batches else None)
        train(trainer, run)
        model = trained_model(trainer)
    return model.merge_and_unload() if run.uses_lora and model is not None else model


def length_grouped(rows: list[str], lengths: list[int], batch_size: int, rng: random.Random,
                   span: int = 50) -> list[str]:
    """`rows` reordered into batches of similar length, the batches in a random order: each run of `span` batches
    sorted by length and cut (what transformers' LengthGroupedSampler does), here a pure function of the rows and
    the seed, so a resumed run takes the same batches. A last, partial batch stays last."""
    batches = []
    for start in range(0, len(rows), span * batch_size):
        block = sorted(range(start, min(start + span * batch_size, len(rows))), key=lambda i: -lengths[i])
        batches += [block[i:i + batch_size] for i in range(0, len(block), batch_size)]
    partial = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    rng.shuffle(batches)
    return [rows[i] for batch in batches + partial for i in batch]


def finetune_folder(source, texts: list[str], params: SFTParams, seed: int, output, run: TrainingRun | None = None,
                    save_dtype=None) -> None:
    """Load a saved model, SFT it on `texts` and save it to `output` (atomically, in `save_dtype`). Under a
    launcher every process trains and the main process saves; all return once `output` is there."""
    from past.modeling import load_model, load_tokenizer, save_model

    model, tokenizer = load_model(source), load_tokenizer(source)
    model = run_sft(model, tokenizer, texts, params, seed, run)
    on_main(save_model, model, tokenizer, output, dtype=save_dtype)
