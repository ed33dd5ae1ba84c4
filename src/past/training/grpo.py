"""Skill acquisition by RL: TRL's GRPOTrainer on questions with a verifiable reward.

No answers are shown to the model; it samples a group of answers per question and is pushed towards
the ones the reward grades correct. What it learns is the *skill* of retrieving stored facts.
"""

from __future__ import annotations

import tempfile

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from past.config import GRPOParams
from past.prompting import question_prompt, uses_chat
from past.training.arguments import quiet_transformers, trainer_arguments
from past.training.rewards import reward_function


def run_grpo(model, tokenizer, questions: list[dict], prompt: str, params: GRPOParams, seed: int,
             chat: str = "auto", tools: list[dict] | None = None) -> list[dict]:
    """Train `model` in place; returns the reward curve as [{"step", "reward"}].

    With a chat template in use (see `prompting.uses_chat`) each prompt is one user turn: TRL applies the
    template, opens the assistant's turn, and a completion ends at the tokenizer's EOS (end of turn).
    """
    quiet_transformers()
    prompts = [question_prompt(prompt, q) for q in questions]
    if uses_chat(tokenizer, chat):
        prompts = [[{"role": "user", "content": p}] for p in prompts]
    dataset = Dataset.from_dict({
        "prompt": prompts,
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
            **vllm_server_arguments(params.vllm_server),
        )
        trainer = GRPOTrainer(model=model, reward_funcs=reward_function(params.reward, tools), args=config,
                              train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    return [{"step": int(row["step"]), "reward": float(row["reward"])}
            for row in trainer.state.log_history if "reward" in row]


def vllm_server_arguments(url: str) -> dict:
    """GRPOConfig fields for TRL's vllm_mode="server" (a `trl vllm-serve` process generates the samples).

    TRL's client imports vllm in the *trainer's* environment and syncs weights over NCCL (a GPU), so on a
    GPU machine the RL stages run from the vLLM environment (docs/real-models.md).
    """
    if not url:
        return {}
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(f"grpo.vllm_server={url}: TRL's vLLM client needs vllm importable in this environment; "
                           "run the RL stages from the vLLM environment (docs/real-models.md)")
    return {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": url}
