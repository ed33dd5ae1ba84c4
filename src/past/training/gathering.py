"""The trained weights, whole, on the main process: what a sharded trainer holds in pieces.

One process, or DDP (every process holds a replica of every weight): the trainer's model itself. FSDP2 and
ZeRO-3 shard the weights across processes; every process then takes part in gathering them, through the
engines' own calls, into an ordinary model in the main process's memory, in fp32 (the master weights: the
RL pair and its SFT start must not be rounded, `docs/training.md`):
- FSDP2 (`fsdp_state_dict_type: FULL_STATE_DICT`): accelerate's `get_state_dict`, the full state dict
  `trainer.save_model` saves, offloaded to the main process's CPU;
- ZeRO-3: DeepSpeed's `safe_get_full_fp32_param` for each trained parameter, the fp32 master weights held by the
  optimizer, not the 16-bit copy that `trainer.save_model` would gather (`zero3_save_16bit_model`); frozen ones
  (LoRA's base), which have no master, gathered as they are (`deepspeed.zero.GatheredParameters`).
The caller saves that model on the main process (`past.distributed.on_main`), as it saves a one-process run.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from past.distributed import is_main


def check_exact_rl_start(start_dtype: torch.dtype, rounds: int) -> None:
    """Refuse skill RL under ZeRO-3 with bf16 when v would not be exact. DeepSpeed casts the model to bf16 and
    makes its fp32 master weights from that copy, so RL really starts from the start rounded to bf16: exact
    for a bf16-stored SFT model (round 1 of a hub model), not for an fp32 start or sft_k + v_(k-1)."""
    import os

    zero3 = (os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
             and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3")
    if zero3 and os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16" and (rounds > 1 or start_dtype != torch.bfloat16):
        from past.planner import PlanError

        raise PlanError(f"skill RL under ZeRO-3 with bf16 starts from a bf16 copy of the weights, so v = rl - sft "
                        f"would carry its rounding (start stored as {str(start_dtype).removeprefix('torch.')}, "
                        f"skill_rl.rounds {rounds}): shard with FSDP2 instead (fp32 sharded weights), train.launcher: "
                        "accelerate launch --config_file configs/accelerate/fsdp2.yaml; or one round from a bf16 "
                        "source SFT (skill_rl.rounds: 1, train.save_dtype: bf16)")


def sharding(trainer) -> str:
    """'fsdp', 'zero3' or '' (the weights are not sharded: one process, DDP, ZeRO-1/2)."""
    state = trainer.accelerator.state
    if getattr(state, "fsdp_plugin", None) is not None:
        return "fsdp"
    plugin = getattr(state, "deepspeed_plugin", None)
    if plugin is not None and plugin.zero_stage == 3:
        return "zero3"
    return ""


def trained_model(trainer):
    """The trainer's trained model, whole: on every process when it is not sharded, else on the main process
    (None on the others; every process must call this, the gathering is collective)."""
    kind = sharding(trainer)
    if not kind:
        return trainer.model
    state = trainer.accelerator.get_state_dict(trainer.model) if kind == "fsdp" else _zero3_state(trainer.model)
    return _plain_copy(trainer.model, state) if is_main() else None


def _zero3_state(model) -> dict[str, torch.Tensor]:
    """Every parameter of a ZeRO-3 model, whole, on the main process's CPU ({} on the others). Every process walks
    the same parameters in the same order: each gather is a collective."""
    state = {}
    for name, param in model.named_parameters():
        value = _zero3_parameter(param)
        if is_main():
            state[name] = value
    return state


def _zero3_parameter(param) -> torch.Tensor:
    """A trained parameter from its fp32 master weights. A frozen one (LoRA's base) has none: the optimizer holds only
    what it trains (`safe_get_full_fp32_param` returns None), so its partitions are gathered as they are, the 16-bit
    copy being all DeepSpeed keeps of it."""
    import deepspeed

    if param.requires_grad:
        return deepspeed.utils.safe_get_full_fp32_param(param).cpu()
    with deepspeed.zero.GatheredParameters([param]):  # read-only (no modifier_rank): p.data is whole inside
        return param.data.detach().cpu().clone()


def _plain_copy(model, state: dict[str, torch.Tensor]):
    """An unsharded fp32 model of `model`'s architecture (a PEFT model keeps its adapter) holding `state`."""
    from transformers import AutoModelForCausalLM

    peft = getattr(model, "peft_config", None)
    base = model.get_base_model() if peft else model
    with unpartitioned():
        plain = AutoModelForCausalLM.from_config(base.config, dtype=torch.float32)
    if peft:
        from peft import get_peft_model

        plain = get_peft_model(plain, peft["default"])
    result = plain.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in result.missing_keys if k in dict(plain.named_parameters())]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"gathered weights do not fit the model: missing {missing[:3]}, "
                           f"unexpected {result.unexpected_keys[:3]}")
    if plain.config.tie_word_embeddings:
        plain.tie_weights()
    return plain


@contextmanager
def unpartitioned():
    """Build or load a model whole although ZeRO-3 is on: transformers would partition it across processes
    (a collective), which the main process alone must not start."""
    from transformers.integrations import deepspeed

    config = deepspeed._hf_deepspeed_config_weak_ref  # transformers' one switch for zero.Init loading
    deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        deepspeed._hf_deepspeed_config_weak_ref = config
