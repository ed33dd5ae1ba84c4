"""configs/accelerate/*.yaml, read by accelerate's own code: the worker environment `accelerate launch` would set,
and the plugins accelerate builds from it (accelerate refuses FSDP and DeepSpeed on CPU, so the launch itself needs
GPUs; the mapping does not)."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from accelerate.commands.config.config_args import load_config_from_file  # noqa: E402
from accelerate.commands.launch import _validate_launch_command, launch_command_parser  # noqa: E402
from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin  # noqa: E402
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
DOCUMENTED_PROCESSES = 8  # docs/training.md, "Several GPUs and nodes": one node of 8 GPUs
OURS = ("ACCELERATE_", "FSDP_")


def launch_env(name: str, monkeypatch) -> tuple[object, dict[str, str]]:
    """(args, worker environment) as `accelerate launch --config_file configs/accelerate/<name> script.py` makes
    them: launch_command's own steps, up to handing the environment to torchrun."""
    for key in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_MIXED_PRECISION"):
        monkeypatch.delenv(key, raising=False)  # a clean parent environment: what we read is the config's doing
    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / name), "script.py"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:
        # launch_command sets this argument before deepspeed_launcher (the fields the config gave)
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return args, {k: v for k, v in env.items() if k.startswith(OURS)}


def use_env(env: dict[str, str], monkeypatch) -> None:
    """The worker's view: accelerate's plugins read these variables (its documented interface)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name", ["ddp.yaml", "fsdp2.yaml", "zero3.yaml"])
def test_every_config_is_one_node_of_eight_gpus_in_bf16(name, monkeypatch):
    config = load_config_from_file(str(CONFIGS / name))  # refuses unknown keys
    assert (config.num_processes, config.num_machines, config.machine_rank) == (DOCUMENTED_PROCESSES, 1, 0)
    assert config.mixed_precision == "bf16"
    args, env = launch_env(name, monkeypatch)
    assert args.nproc_per_node == str(DOCUMENTED_PROCESSES)  # what torchrun starts on this node
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"


def test_ddp_is_multi_gpu_without_sharding(monkeypatch):
    args, env = launch_env("ddp.yaml", monkeypatch)
    assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed
    assert "ACCELERATE_USE_FSDP" not in env and "ACCELERATE_USE_DEEPSPEED" not in env
    assert not [k for k in env if k.startswith(("FSDP_", "ACCELERATE_DEEPSPEED"))]


def test_fsdp2_env_and_plugin(monkeypatch):
    args, env = launch_env("fsdp2.yaml", monkeypatch)
    assert args.use_fsdp and not args.multi_gpu
    assert env["ACCELERATE_USE_FSDP"] == "true"
    assert env["FSDP_VERSION"] == "2"
    assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    assert env["FSDP_RESHARD_AFTER_FORWARD"] == "true"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env  # left to the model's _no_split_modules
    assert env["FSDP_ACTIVATION_CHECKPOINTING"] == "false"  # train.activation_checkpointing does it

    use_env(env, monkeypatch)
    plugin = FullyShardedDataParallelPlugin()
    from torch.distributed.fsdp import StateDictType

    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    assert plugin.state_dict_config.offload_to_cpu and plugin.state_dict_config.rank0_only
    assert plugin.cpu_ram_efficient_loading is True
    assert plugin.reshard_after_forward is True
    assert plugin.activation_checkpointing is False
    assert plugin.transformer_cls_names_to_wrap is None
    # AcceleratorState does this with the launch's mixed precision: bf16 compute, the sharded params untouched
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    policy = plugin.mixed_precision_policy
    assert (policy.param_dtype, policy.reduce_dtype, policy.output_dtype) == (torch.bfloat16,) * 3


def test_fsdp2_gathered_state_dict_keeps_an_update_below_bf16_spacing(tmp_path, monkeypatch):
    """Under the config's mixed precision policy FSDP2 computes in bf16 but the sharded parameters stay fp32, and
    the full state dict (the call accelerate's get_state_dict makes for FSDP2) returns them in fp32: an update of
    1e-6 on weights near 0.02 (bf16 spacing there: ~1.2e-4) survives the save. Single-process gloo on CPU."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    _, env = launch_env("fsdp2.yaml", monkeypatch)
    use_env(env, monkeypatch)
    plugin = FullyShardedDataParallelPlugin()
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(0.02)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        mesh = init_device_mesh("cpu", (1,))
        for layer in model:
            fully_shard(layer, mesh=mesh, mp_policy=plugin.mixed_precision_policy,
                        reshard_after_forward=plugin.reshard_after_forward)
        fully_shard(model, mesh=mesh, mp_policy=plugin.mixed_precision_policy)
        out = model(torch.randn(4, 16))
        assert out.dtype == torch.bfloat16  # the compute copy
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        out.float().sum().backward()
        for p in model.parameters():  # a fixed tiny update, like GRPO's at lr ~1e-6
            p.grad = torch.full_like(p.grad, 1e-6)
        opt.step()
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True,
                                                                    cpu_offload=True))
    finally:
        dist.destroy_process_group()
    for name, value in full.items():
        assert value.dtype == torch.float32, name
        v = value - start[name]
        assert torch.allclose(v, torch.full_like(v, -1e-6), rtol=1e-2), name  # in bf16 it would be exactly 0
        assert torch.equal(value.bfloat16().float(), start[name].bfloat16().float())  # bf16 storage would lose it


def test_zero3_env_and_plugin(monkeypatch):
    args, env = launch_env("zero3.yaml", monkeypatch)
    assert args.use_deepspeed and not args.multi_gpu and not args.use_fsdp
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
    assert env["ACCELERATE_DEEPSPEED_ZERO3_INIT"] == "true"
    assert env["ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"] == "false"
    assert env["ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE"] == "none"
    assert env["ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"] == "none"
    # left "auto" so that the trainer's accumulation and clipping fill them (a fixed value would conflict)
    assert "ACCELERATE_GRADIENT_ACCUMULATION_STEPS" not in env and "ACCELERATE_GRADIENT_CLIPPING" not in env
    assert not [k for k in env if k.startswith("FSDP_")]

    use_env(env, monkeypatch)
    # DeepSpeedPlugin builds its config without importing deepspeed (only deepspeed.initialize needs it)
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    ds = plugin.deepspeed_config
    assert plugin.zero_stage == 3 and ds["zero_optimization"]["stage"] == 3
    assert plugin.zero3_init_flag is True
    assert plugin.zero3_save_16bit_model is False
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is False
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert ds["gradient_accumulation_steps"] == "auto" and ds["gradient_clipping"] == "auto"
    assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False


def test_skill_rl_refuses_zero3_where_its_bf16_start_would_round_v(monkeypatch):
    """Under the environment zero3.yaml gives the workers, RL from an fp32 start or over several rounds is refused
    (DeepSpeed makes the fp32 masters from the bf16 copy); one round from a bf16 SFT is exact and allowed; the
    same starts under FSDP2 (fp32 sharded weights) are allowed."""
    from past.planner import PlanError
    from past.training.gathering import check_exact_rl_start

    _, env = launch_env("zero3.yaml", monkeypatch)
    use_env(env, monkeypatch)
    check_exact_rl_start(torch.bfloat16, rounds=1)
    for dtype, rounds in ((torch.float32, 1), (torch.bfloat16, 2)):
        with pytest.raises(PlanError, match="configs/accelerate/fsdp2.yaml"):
            check_exact_rl_start(dtype, rounds)
    for key in env:
        monkeypatch.delenv(key, raising=False)
    _, env = launch_env("fsdp2.yaml", monkeypatch)
    use_env(env, monkeypatch)
    check_exact_rl_start(torch.float32, rounds=2)
