"""A LoRA model gathered from ZeRO-3 (`training.gathering.trained_model`): trained parameters come from their fp32
master weights, frozen ones (the base LoRA adapts) from their gathered partitions, since DeepSpeed keeps no
master for what the optimizer does not train (`safe_get_full_fp32_param` returns None there: stage3.py's
`get_full_hp_param`). DeepSpeed is not installed here (GPU only): a stand-in for its gather API takes its
place, modelling a model partitioned as ZeRO-3 leaves it."""

import sys
import types
from contextlib import contextmanager

import pytest
import torch
import transformers.integrations.deepspeed  # noqa: F401  imported before the stand-in: it probes for deepspeed
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

from past.training.gathering import trained_model
from skills_fixtures import tiny_config

EMPTY = torch.empty(0)


class PartitionedModel:
    """DeepSpeed's gather API over `model` as ZeRO-3 holds it: every p.data empty (the process's partition aside),
    the whole 16-bit values kept here, fp32 master weights for the trained parameters only."""

    def __init__(self, model, masters: dict):
        self.whole = {p: p.data for p in model.parameters()}
        self.masters = masters
        for p in model.parameters():
            p.data = EMPTY

    def safe_get_full_fp32_param(self, param):
        return self.masters.get(param)  # None for a frozen parameter, as DeepSpeed's

    @contextmanager
    def GatheredParameters(self, params, modifier_rank=None, fwd_module=None, enabled=True):  # noqa: N802
        for p in params:
            p.data = self.whole[p]
        try:
            yield
        finally:
            for p in params:
                p.data = EMPTY

    def install(self, monkeypatch) -> None:
        """As `import deepspeed` (and `from deepspeed.utils import ...`) would find it."""
        package, utils, zero = (types.ModuleType(name) for name in ("deepspeed", "deepspeed.utils", "deepspeed.zero"))
        utils.safe_get_full_fp32_param = self.safe_get_full_fp32_param
        zero.GatheredParameters = self.GatheredParameters
        package.utils, package.zero = utils, zero
        for module in (package, utils, zero):
            monkeypatch.setitem(sys.modules, module.__name__, module)


def zero3_trainer(model):
    plugin = types.SimpleNamespace(zero_stage=3)
    return types.SimpleNamespace(model=model, accelerator=types.SimpleNamespace(
        state=types.SimpleNamespace(fsdp_plugin=None, deepspeed_plugin=plugin)))


@pytest.fixture
def lora_model():
    torch.manual_seed(0)
    model = get_peft_model(LlamaForCausalLM(tiny_config()), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    return model.to(torch.bfloat16)  # DeepSpeed's bf16 copy of the weights


def test_a_lora_model_gathers_its_frozen_base_and_its_trained_masters(lora_model, monkeypatch):
    original = {name: p.data.clone() for name, p in lora_model.named_parameters()}
    g = torch.Generator().manual_seed(1)
    # the adapter's fp32 masters: values its bf16 copy cannot hold, so a gather of the copy would show
    masters = {p: p.data.float() + 1e-3 + 1e-4 * torch.randn(p.shape, generator=g)
               for p in lora_model.parameters() if p.requires_grad}
    trained = {name: masters[p] for name, p in lora_model.named_parameters() if p.requires_grad}
    assert trained and len(trained) < len(original)  # LoRA: some parameters trained, most frozen
    PartitionedModel(lora_model, masters).install(monkeypatch)

    gathered = dict(trained_model(zero3_trainer(lora_model)).named_parameters())

    assert gathered.keys() == original.keys()
    for name, value in gathered.items():
        expected = trained.get(name, original[name].float())
        assert value.dtype == torch.float32 and torch.equal(value.data, expected), name
