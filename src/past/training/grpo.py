"""Skill acquisition by RL: TRL's GRPOTrainer on questions with a verifiable reward.

No answers are shown to the model; it samples a group of answers per question and is pushed towards
the ones the reward grades correct. What it learns is the *skill* of retrieving stored facts.
"""

from __future__ import annotations

import importlib.util

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from past.config import GRPOParams, VLLMParams
from past.distributed import is_main
from past.planner import PlanError, resolved_vllm_mode
from past.prompting import question_prompt, uses_chat
from past.training.arguments import TrainingRun, device, lora_config, quiet_transformers, trainer_arguments
from past.training.checkpoints import output_dir, train
from past.training.gathering import trained_model
from past.training.rewards import reward_function


def run_grpo(model, tokenizer, questions: list[dict], prompt: str, params: GRPOParams, seed: int,
             chat: str = "auto", tools: list[dict] | None = None, run: TrainingRun | None = None,
             key: str = "skill_rl.grpo"):
    """Train `model`; returns (the trained model, the reward curve as [{"step", "reward"}]). With LoRA the model
    is the PEFT model: the adapter is the RL update, saved as such (the skill engine reads adapters). Under a
    launcher with sharded weights the model is gathered onto the main process (None elsewhere).

    One optimizer step sees prompts_per_step x num_generations completions, generated together; training runs
    them in micro-batches of `train.micro_batch_size` (gradient accumulation), so the global batch and the
    generation batch do not depend on the memory knobs. With a chat template in use (see
    `prompting.uses_chat`) each prompt is one user turn: TRL applies the template, opens the assistant's turn,
    and a completion ends at the tokenizer's EOS (end of turn). With checkpoints (`run.work`,
    `train.checkpoint_steps`) it resumes from the latest one; the sampling RNG is in the checkpoint. Samples come
    from transformers' generate or TRL's vLLM modes (`params.vllm`, see `vllm_arguments`; `key` names the group).
    """
    run = run or TrainingRun()
    quiet_transformers()
    prompts = [question_prompt(prompt, q) for q in questions]
    if uses_chat(tokenizer, chat):
        prompts = [[{"role": "user", "content": p}] for p in prompts]
    dataset = Dataset.from_dict({
        "prompt": prompts,
        "answers": [q["answers"] for q in questions],
    })
    with output_dir(run, prefix="past-grpo-") as out:
        config = grpo_config(out, params, seed, run, key)
        trainer = ResumableGRPOTrainer(model=model, reward_funcs=reward_function(params.reward, tools), args=config,
                                       train_dataset=dataset, processing_class=tokenizer,
                                       peft_config=lora_config(run.lora), callbacks=run.callbacks())
        train(trainer, run)
        model = trained_model(trainer)
    curve = [{"step": int(row["step"]), "reward": float(row["reward"])}
             for row in trainer.state.log_history if "reward" in row]
    return model, curve


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's RepeatSampler, whose order in epoch e is the (e+1)-th permutation its seeded generator draws: a run
    resumed in epoch e (the Trainer skips finished epochs without iterating them) would replay epoch 0's. The
    Trainer calls set_epoch before each epoch; this puts the generator where an uninterrupted run has it, so
    an uninterrupted run keeps TRL's order exactly and a resumed one gets the same."""

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed)
            for _ in range(epoch):
                torch.randperm(self.num_samples, generator=self.generator)


class ResumableGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose prompt order survives a resume (see `EpochSeededRepeatSampler`)."""

    def _get_train_sampler(self, dataset=None):
        sampler = super()._get_train_sampler(dataset)
        if type(sampler) is not RepeatSampler:
            return sampler
        return EpochSeededRepeatSampler(sampler.data_source, sampler.mini_repeat_count, sampler.batch_size,
                                        sampler.repeat_count, sampler.shuffle, sampler.seed)


def grpo_config(out, params: GRPOParams, seed: int, run: TrainingRun, key: str = "skill_rl.grpo") -> GRPOConfig:
    """TRL's GRPOConfig for one GRPO step of `params` (the group at `key`), writing into `out`."""
    completions = params.prompts_per_step * params.num_generations
    args = trainer_arguments(out, params.steps, params.lr, seed, completions, run, logging_steps=1)
    args.update(lr_scheduler_type="constant", lr_scheduler_kwargs={})
    return GRPOConfig(
        **args,
        generation_batch_size=completions,  # one generation round per optimizer step, micro-batches or not
        num_generations=params.num_generations,
        max_completion_length=params.max_new_tokens,
        temperature=params.temperature,
        beta=params.beta,
        **vllm_arguments(params.vllm, device(), f"{key}.vllm"),
    )


def vllm_installed() -> bool:
    """Whether vllm is importable here: found, not imported (importing it takes seconds and initialises CUDA)."""
    return importlib.util.find_spec("vllm") is not None


def sampling_mode(vllm: VLLMParams, device: str, key: str = "skill_rl.grpo.vllm") -> str:
    """How GRPO samples here ('colocate', 'server' or 'off'): `key`.mode, checked (`check_sampling`), with auto resolved
    for this device and this environment as the planner resolves it, saying in one line which and why."""
    check_sampling(vllm, device, key)
    mode = resolved_vllm_mode(vllm, device, vllm_installed())
    if vllm.mode == "auto" and is_main():
        why = ("CUDA and vllm are here, sampling with vLLM colocated in the trainer" if mode == "colocate" else
               f"{'no CUDA device' if device != 'cuda' else 'vllm is not installed'} here, sampling with "
               "transformers' generate")
        print(f"{key}.mode auto: {why}", flush=True)
    return mode


def check_sampling(vllm: VLLMParams, device: str, key: str = "skill_rl.grpo.vllm") -> None:
    """Refuse an explicit colocate or server where it cannot run: both import vllm in the *trainer's* process and need
    CUDA (server mode syncs weights over NCCL), so the RL stages run from the GPU environment
    (`bash scripts/setup-gpu-env.sh`). Cheap and quiet: a step can call it before it loads anything."""
    if vllm.mode in ("auto", "off"):
        return
    if device != "cuda":
        raise PlanError(f"{key}.mode: {vllm.mode} needs a CUDA device (here: {device}); on CPU use mode: off or "
                           "auto (transformers' generate)")
    if not vllm_installed():
        raise PlanError(f"{key}.mode: {vllm.mode} needs vllm importable in the trainer's environment: run the RL "
                           "stages from the GPU environment (`bash scripts/setup-gpu-env.sh` makes .venv-gpu; the "
                           "image's is /opt/venv-gpu), or set mode: off (or auto) to sample with transformers' generate")


def vllm_arguments(vllm: VLLMParams, device: str, key: str = "skill_rl.grpo.vllm") -> dict:
    """GRPOConfig fields for `grpo.vllm` (the mode `sampling_mode` resolves, or its refusal); {} for off: TRL's
    default, transformers' generate in the trainer (the CPU pipeline, unchanged).

    colocate: vLLM inside each trainer process, loading the model from its folder, on `gpu_memory_utilization` of
    each GPU, asleep while the trainer trains when `sleep`, over `tensor_parallel_size` GPUs. server: a `trl
    vllm-serve` process on GPUs of its own.
    """
    mode = sampling_mode(vllm, device, key)
    if mode == "off":
        return {}
    if mode == "server":
        return {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": vllm.server_url}
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": vllm.gpu_memory_utilization,
            "vllm_enable_sleep_mode": vllm.sleep, "vllm_tensor_parallel_size": vllm.tensor_parallel_size}
