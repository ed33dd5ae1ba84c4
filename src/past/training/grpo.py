"""Skill acquisition by RL: TRL's GRPOTrainer on questions with a verifiable reward.

No answers are shown to the model; it samples a group of answers per question and is pushed towards
the ones the reward grades correct. What it learns is the *skill* of retrieving stored facts.
"""

from __future__ import annotations

import tempfile

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from past.config import GRPOParams
from past.prompting import question_prompt
from past.training.common import quiet_transformers, trainer_arguments
from past.training.rewards import reward_function


def run_grpo(model, tokenizer, questions: list[dict], prompt: str, params: GRPOParams, seed: int) -> list[dict]:
    """Train `model` in place; returns the reward curve as [{"step", "reward"}]."""
    quiet_transformers()
    dataset = Dataset.from_dict({
        "prompt": [question_prompt(prompt, q) for q in questions],
        "answers": [q["answers"] for q in questions],
    })
    with tempfile.TemporaryDirectory(prefix="past-grpo-") as out:
        args = trainer_arguments(out, params.steps, params.lr, seed)
        args.update(lr_scheduler_type="constant", lr_scheduler_kwargs={}, logging_steps=1)
        config = GRPOConfig(
            **args,
            per_device_train_batch_size=params.prompts_per_step * params.num_generations,
            num_generations=params.num_generations,
            max_completion_length=params.max_new_tokens,
            temperature=params.temperature,
            beta=params.beta,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=reward_function(params.reward), args=config,
                              train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    return [{"step": int(row["step"]), "reward": float(row["reward"])}
            for row in trainer.state.log_history if "reward" in row]
