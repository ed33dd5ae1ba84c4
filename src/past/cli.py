"""The `past` command.

Commands are grouped (`past skill ...`, `past metrics diff`, `past report`, `past pipeline new`, `past registry show`,
`past drop new`, `past plan`, `past repro`); each group adds its subcommands in its own `_add_<group>` function. Every refusal of bad
input is a one-line `past: error: ...` on stderr and exit code 2, with nothing written (numbers included: NaN
and infinity are refused by flag name). `past skill inspect` exits 3 when the skill holds NaN or Inf.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from past.errors import Refusal


class CommandError(Refusal):
    """A command that cannot run as asked; printed as one `past: error:` line."""


def finite_float(text: str) -> float:
    """argparse type of every float flag: NaN and +-infinity are refused at parsing, naming the flag."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _meta_value(text: str):
    # KEY=VALUE: numbers, booleans and JSON objects keep their type in the skill metadata.
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_meta(items: list[str]) -> dict:
    meta = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--meta expects KEY=VALUE, got {item!r}")
        meta[key] = _meta_value(value)
    return meta


# ------------------------------------------------------------------------------------------ skill group


def _skill_extract(args) -> int:
    from past.skills import extract_skill

    meta = _parse_meta(args.meta)
    if args.recommended_lam is not None:
        meta["recommended_lam"] = args.recommended_lam
    out = extract_skill(
        args.rl, args.sft, args.output, meta, dtype=args.dtype, overwrite=args.overwrite,
        rl_base=args.rl_base, sft_base=args.sft_base, progress=not args.quiet,
    )
    print(out)
    return 0


def _skill_inject(args) -> int:
    from past.skills import inject

    lams = args.lam or [1.0] * len(args.skill)
    if len(lams) == 1 and len(args.skill) > 1:
        lams = lams * len(args.skill)  # one --lam for all skills
    out = inject(
        args.target, args.skill, lams, args.output, dtype=args.dtype, overwrite=args.overwrite,
        target_base=args.target_base, max_shard_size=args.max_shard_size, allow_other_base=args.allow_other_base,
        progress=not args.quiet,
    )
    print(out)
    return 0


def _skill_inspect(args) -> int:
    from past.skills.checkpoints import open_delta, open_model
    from past.skills.compat import check_compatible
    from past.skills.diagnostics import describe_non_finite, format_report, report
    from past.skills.errors import SkillError
    from past.skills.sources import LinearCombination

    skill = open_delta(args.skill)
    against = None
    if args.against:
        if len(args.against) > 2:
            raise SkillError("--against takes a skill, or two model folders A B (compared as A - B)")
        if len(args.against) == 1:
            against = open_delta(args.against[0])
        else:
            a, b = open_model(args.against[0]), open_model(args.against[1])
            check_compatible(b, [a])
            against = LinearCombination([(1.0, a), (-1.0, b)], label=f"{args.against[0]} - {args.against[1]}")
    try:
        rep = report(skill, against, progress=not args.quiet)
    finally:
        skill.close()
        if against is not None:
            against.close()
    if args.json:
        json.dump(rep, sys.stdout, indent=2, default=str)
        print()
    else:
        print(format_report(rep, top=args.top))
    if rep["non_finite_tensors"]:  # printed what it could; a skill holding NaN/Inf must not pass a script's check
        print(f"past: error: skill {args.skill} holds NaN or Inf in {len(rep['non_finite_tensors'])} tensors: "
              f"{describe_non_finite(rep)}", file=sys.stderr)
        return 3
    return 0


def _skill_compress(args) -> int:
    from past.skills.compress import compress_skill

    rank = None if args.rank in (None, "full") else args.rank
    if args.rank == "full":
        args.energy = 1.0
    rep = compress_skill(
        args.skill, args.output, rank=rank, energy=args.energy, dtype=args.dtype,
        overwrite=args.overwrite, progress=not args.quiet,
    )
    print(json.dumps(rep, indent=2))
    return 0


def _rank(text: str):
    if text == "full":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"rank must be a positive integer or 'full', got {text!r}")
    return value


def _add_skill(groups) -> None:
    skill = groups.add_parser("skill", help="extract, inject, inspect and compress skill vectors",
                              description="Skill vectors: v = theta_rl - theta_sft, injected as theta_T + lambda * v.")
    cmds = skill.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = cmds.add_parser("extract", parents=[common], help="v = theta_rl - theta_sft, streamed into one skill file",
                        description="Extract a skill vector from an RL model and the SFT model it started from. "
                                    "Either may be a PEFT LoRA adapter.")
    p.add_argument("--rl", required=True, type=Path, help="RL-trained model folder (or LoRA adapter)")
    p.add_argument("--sft", required=True, type=Path, help="SFT model the RL run started from")
    p.add_argument("-o", "--output", required=True, type=Path, help="skill file to write (.safetensors)")
    p.add_argument("--dtype", default="fp32", help="stored dtype of the skill (default fp32: exact for bf16 inputs)")
    p.add_argument("--rl-base", type=Path, help="base of an RL LoRA adapter (default: its recorded base, else --sft)")
    p.add_argument("--sft-base", type=Path, help="base of an SFT LoRA adapter")
    p.add_argument("--recommended-lam", type=finite_float, help="lambda to record as recommended")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="extra provenance (repeatable), e.g. --meta source_data_hash=ab12 --meta rounds=3")
    p.set_defaults(func=_skill_extract)

    p = cmds.add_parser("inject", parents=[common], help="theta_T + sum_i lambda_i v_i, streamed into a model folder",
                        description="Inject one or more skills into a target model; writes a complete Hugging Face "
                                    "folder atomically, with a model card.")
    p.add_argument("--target", required=True, type=Path, help="target SFT model folder (or LoRA adapter)")
    p.add_argument("--skill", required=True, action="append", type=Path,
                   help="skill file or LoRA adapter (repeatable)")
    p.add_argument("--lam", action="append", type=finite_float,
                   help="lambda for each --skill, in order (repeatable; one value applies to all; default 1.0)")
    p.add_argument("-o", "--output", required=True, type=Path, help="model folder to write")
    p.add_argument("--dtype", help="output dtype (default: the target's)")
    p.add_argument("--target-base", type=Path, help="base of a target LoRA adapter")
    p.add_argument("--max-shard-size", default="5GB", help="largest output shard (default 5GB)")
    p.add_argument("--allow-other-base", action="store_true",
                   help="inject a skill whose recorded base config hash differs from the target's (another lineage)")
    p.set_defaults(func=_skill_inject)

    p = cmds.add_parser("inspect", help="norms, sparsity, per-layer cosine against another delta",
                        description="Describe a skill: norms and exact-zero fractions per layer and tensor; with "
                                    "--against, cosines (the orthogonality diagnostic).")
    p.add_argument("skill", type=Path, help="skill file or LoRA adapter")
    p.add_argument("--against", nargs="+", type=Path, metavar="PATH",
                   help="another skill, or two model folders A B compared as the delta A - B")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--top", type=int, default=10, help="tensors listed by norm (default 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_skill_inspect)

    p = cmds.add_parser("compress", parents=[common], help="truncated-SVD low-rank skill, saved as a LoRA adapter",
                        description="Compress a skill to a PEFT LoRA adapter by per-matrix truncated SVD.")
    p.add_argument("skill", type=Path, help="skill file")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--rank", type=_rank, help="rank per matrix (an integer, or 'full')")
    how.add_argument("--energy", type=finite_float, help="keep this fraction of each matrix's squared norm, e.g. 0.9")
    p.add_argument("-o", "--output", required=True, type=Path, help="adapter folder to write")
    p.add_argument("--dtype", default="fp32", help="dtype of the LoRA factors (default fp32)")
    p.set_defaults(func=_skill_compress)


def _metrics_diff(args) -> int:
    from past.evaluation.metrics_diff import dvc_metrics_diff, markdown_table

    try:
        diff = dvc_metrics_diff(args.a_rev, args.b_rev, everything=args.all)
    except RuntimeError as err:
        raise CommandError(str(err)) from None
    print(markdown_table(diff, args.a_rev, args.b_rev or "workspace"))
    return 0


def _add_metrics(groups) -> None:
    metrics = groups.add_parser("metrics", help="pipeline metrics for reviews",
                                description="Pipeline metrics (the JSON files DVC tracks under metrics/).")
    cmds = metrics.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = cmds.add_parser("diff", help="`dvc metrics diff` as a Markdown table for a PR comment",
                        description="Render `dvc metrics diff` as a Markdown table for a pull-request comment.")
    p.add_argument("a_rev", nargs="?", default="HEAD", help="old revision (default: HEAD)")
    p.add_argument("b_rev", nargs="?", default=None, help="new revision (default: the workspace)")
    p.add_argument("--all", action="store_true", help="list unchanged metrics too")
    p.set_defaults(func=_metrics_diff)


def _report(args) -> int:
    from past.evaluation.report import write_report

    try:
        output = write_report(args.base, args.output, noise=args.noise)
    except RuntimeError as err:  # ReportError, NoiseFileError, or dvc's own message
        raise CommandError(str(err)) from None
    print(f"{output}: the headline, metrics, params and changed plots of the workspace against {args.base}")
    return 0


def _add_report(groups) -> None:
    p = groups.add_parser("report", help="the pull-request report: metrics, params and changed plots against a base",
                          description="Write Markdown for a pull-request comment: the headline metrics of the "
                                      "workspace against BASE, each change next to its noise floor (its spread over "
                                      "seeds), the other metrics and DVCLive's training internals folded, `dvc params "
                                      "diff`, and each plot of dvc.yaml whose data changed, as a PNG in <OUTPUT "
                                      "stem>_files/ beside it (open when it changed beyond noise).")
    p.add_argument("--base", default="main", help="the revision to compare with (default: main)")
    p.add_argument("-o", "--output", type=Path, default=Path("report.md"), help="Markdown file (default: report.md)")
    p.add_argument("--noise", type=Path, default=None,
                   help="noise floors written by `benchmarks/seeds.py --noise` (default: benchmarks/results/noise.json;"
                        " without the file each noise floor is reported unknown)")
    p.set_defaults(func=_report)


def _pipeline_new(args) -> int:
    import yaml

    from past.pipeline_repo import deep_merge, dotted_override, make_pipeline_repo

    if args.folder.exists() and any(args.folder.iterdir()):
        raise CommandError(f"{args.folder} exists and is not empty")
    try:
        override = deep_merge(yaml.safe_load(args.preset.read_text()) if args.preset else {}, dotted_override(args.set))
    except (OSError, yaml.YAMLError, ValueError) as e:
        raise CommandError(str(e)) from None
    make_pipeline_repo(args.folder, override)
    print(f"{args.folder}: a git + DVC repository with the pipeline; run `dvc repro` there")
    return 0


def _add_pipeline(groups) -> None:
    pipeline = groups.add_parser("pipeline", help="new pipeline repositories for experiments",
                                 description="The DVC pipeline of this checkout, in a repository of its own.")
    cmds = pipeline.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = cmds.add_parser("new", help="a git + DVC repo with dvc.yaml, stages/, src/ and params (preset applied)",
                        description="Copy the pipeline into FOLDER as a new git + DVC repository whose params.yaml is "
                                    "this checkout's, overridden by --preset and --set; then `cd FOLDER && dvc repro`. "
                                    "Relative data paths in params are relative to FOLDER: pass absolute ones with --set.")
    p.add_argument("folder", type=Path, help="new folder (must not exist or be empty)")
    p.add_argument("--preset", type=Path, help="a params override file, e.g. presets/squad-smollm2-cpu.yaml")
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one param (repeatable), e.g. -S prepare.squad.root=/data/squad-seal")
    p.set_defaults(func=_pipeline_new)


def _registry_show(args) -> int:
    from past.continual.registry import Registry

    registry = Registry(args.root)
    print(json.dumps(registry.state(), indent=2) if args.json else registry.summary(args.decisions))
    return 0


def _add_registry(groups) -> None:
    registry = groups.add_parser("registry", help="the model registry of the continual-adaptation flows",
                                 description="The registry (models/registry/registry.json): production, its lineage "
                                             "and the log of every decision.")
    cmds = registry.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = cmds.add_parser("show", help="production and the latest decisions",
                        description="Print production and the latest decisions for a person (or registry.json).")
    p.add_argument("root", nargs="?", type=Path, default=Path("models/registry"),
                   help="registry folder (default: models/registry)")
    p.add_argument("--decisions", type=int, default=10, help="how many recent decisions to list (default 10)")
    p.add_argument("--json", action="store_true", help="print registry.json as it is")
    p.set_defaults(func=_registry_show)


def _drop_new(args) -> int:
    from past.config import load_params
    from past.knowledge.drops import land_world_drop

    try:
        ks = land_world_drop(args.folder, load_params(args.params), args.people, args.index)
    except (FileExistsError, ValueError) as e:
        raise CommandError(str(e)) from None
    print(f"{args.folder}: {len(ks.documents)} documents, {len(ks.questions)} questions")
    return 0


def _add_drop(groups) -> None:
    drop = groups.add_parser("drop", help="knowledge drops for the landing folder",
                             description="Knowledge drops: folders of new documents and questions that the adapt "
                                         "flow turns into a new production model.")
    cmds = drop.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = cmds.add_parser("new", help="land a drop of new people of the embedded world",
                        description="Write a drop of new people (names and facts no model of the embedded world has "
                                    "seen) into the landing folder, whole: a hidden copy first, then one rename.")
    p.add_argument("folder", type=Path, help="the drop's folder inside the landing folder, e.g. landing/news-001")
    p.add_argument("--index", type=int, default=0, help="drop number: each number gives other new people")
    p.add_argument("--people", type=int, default=10, help="new people in the drop (5 questions each)")
    p.add_argument("--params", default="params.yaml", help="params file whose world the people come from")
    p.set_defaults(func=_drop_new)


def _plan(args) -> int:
    import yaml

    from past.config import validate_params
    from past.pipeline_repo import deep_merge, dotted_override
    from past.planner import (GiB, PlanError, check_fits, default_device, describe_model, launcher_layout,
                              memory_limit, pipeline_lengths, pipeline_model, pipeline_steps, plan_step)

    try:
        raw = yaml.safe_load(args.params.read_text(encoding="utf-8")) if args.params.exists() else {}
        if args.preset:
            raw = deep_merge(raw or {}, yaml.safe_load(args.preset.read_text(encoding="utf-8")) or {})
        raw = deep_merge(raw or {}, dotted_override(args.set))
    except (OSError, yaml.YAMLError, ValueError) as e:
        raise CommandError(str(e)) from None
    params = validate_params(raw)
    root = args.root or args.params.parent
    try:
        spec = describe_model(args.model) if args.model else pipeline_model(params, root)
        lengths, notes = pipeline_lengths(params, spec, root)
    except PlanError as e:
        raise CommandError(str(e)) from None
    device = args.device or ("cuda" if args.gpu_gib else None)
    if not (args.gpu_gib or params.train.memory_limit_gib > 0):
        device = device or default_device()  # the device's own memory: the one this machine has
    device = device or "cpu"
    limit, source = memory_limit(params.train, device, args.gpu_gib or 0.0)
    print(f"model {spec.describe()}")
    for note in notes:
        print(f"note: {note}")
    if limit is None:
        print(f"no limit on {device}: estimates only (give --gpu-gib or train.memory_limit_gib to check)")
    processes, sharding = launcher_layout(params.train.launcher, root)  # what the stages will run under
    if args.gpus is not None:
        processes, sharding = args.gpus, "fsdp" if args.shard else "none"
    failed = 0
    for step in pipeline_steps(params):
        est = plan_step(params, spec, step, device=device, processes=processes, sharding=sharding, device_bytes=limit,
                        **lengths[step])
        print()
        print(est.table())
        if limit is None:
            continue
        try:
            check_fits(est, limit, source, params.train.max_length)
            print(f"  fits: {est.total / GiB:.1f} of {limit / GiB:.1f} GiB")
        except PlanError as e:
            failed += 1
            print("  DOES NOT FIT: " + str(e).replace("\n", "\n  "))
    if limit is not None:
        print(f"\n{failed} of {len(pipeline_steps(params))} steps do not fit" if failed else "\nevery step fits")
    return 1 if failed else 0


def _add_plan(groups) -> None:
    p = groups.add_parser("plan", help="will each training step fit? its peak accelerator memory, before loading",
                          description="Estimate the peak accelerator memory of every training step of the pipeline "
                                      "(weights, gradients, optimizer state, activations, LM head, reference model, "
                                      "generation) from the params and the model's config, and check it against a "
                                      "limit. Nothing is loaded. Exit code 1 when a step does not fit.")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    p.add_argument("--preset", type=Path,
                   help="a params override file applied on top, e.g. presets/squad-qwen7b-gpu.yaml")
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one param (repeatable), e.g. -S train.micro_batch_size=8")
    p.add_argument("--model", help="model folder, hub id (local cache) or builtin (qwen2.5-0.5b, qwen2.5-7b, "
                                   "qwen2.5-72b, smollm2-135m); default: models/base, else base.model")
    p.add_argument("--gpu-gib", type=finite_float, help="memory of one GPU in GiB, e.g. 141 (default: train.memory_limit_gib, "
                                                 "else the local CUDA device; none on CPU)")
    p.add_argument("--gpus", type=int, help="data-parallel processes, one per GPU (default: train.launcher's, "
                                            "e.g. 8 for torchrun --nproc_per_node 8; 1 for python)")
    p.add_argument("--shard", action="store_true", help="with --gpus: FSDP / ZeRO-3 full sharding (default: "
                                                        "train.launcher's accelerate config decides)")
    p.add_argument("--device", choices=["cuda", "cpu"], help="what the steps run on (default: cuda with --gpu-gib, "
                                                             "else what torch sees)")
    p.add_argument("--root", type=Path, help="project folder with data/ and models/ (default: the params file's)")
    p.set_defaults(func=_plan)


def _launch(args) -> int:
    from past.launcher import launch

    return launch(str(args.script), args.args, str(args.params))


def _add_launch(groups) -> None:
    from past.launcher import DESCRIPTION, add_arguments

    p = groups.add_parser("launch", help="run a training stage under train.launcher (dvc.yaml's command)",
                          description=DESCRIPTION)
    add_arguments(p).set_defaults(func=_launch)


def _repro(args) -> int:
    from past.repro import run

    if args.jobs < 1:
        raise CommandError(f"--jobs must be at least 1, got {args.jobs}")
    if not (args.root / "dvc.yaml").is_file():
        raise CommandError(f"{args.root / 'dvc.yaml'}: no such file (run past repro in the project folder, or --root)")
    return run(args.root, args.targets or None, args.jobs, force=args.force, keep_going=args.keep_going)


def _add_repro(groups) -> None:
    p = groups.add_parser("repro", help="dvc repro with independent stages side by side (the same dvc.lock)",
                          description="Reproduce the pipeline as `dvc repro` does, each stage a `dvc repro "
                                      "--single-item` of its own, independent stages (source and target SFT) "
                                      "side by side: the same checks and outputs, less wall time on a "
                                      "multi-core machine. Each stage's output goes to .dvc/tmp/repro/STAGE.log.")
    p.add_argument("targets", nargs="*", metavar="STAGE", help="stages to reproduce with what they depend on "
                                                               "(default: all)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="stages at a time (default: 2)")
    p.add_argument("-f", "--force", action="store_true", help="rerun every stage, changed or not (dvc repro --force)")
    p.add_argument("-k", "--keep-going", action="store_true",
                   help="after a failure, go on with the stages that do not depend on it (dvc repro --keep-going)")
    p.add_argument("--root", type=Path, default=Path("."), help="the project folder with dvc.yaml (default: .)")
    p.set_defaults(func=_repro)


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="past", description="Parametric Skill Transfer: keep an LLM current.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    _add_skill(groups)
    _add_metrics(groups)
    _add_report(groups)
    _add_pipeline(groups)
    _add_registry(groups)
    _add_drop(groups)
    _add_plan(groups)
    _add_launch(groups)
    _add_repro(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.group == "launch":  # nothing else imported: this process becomes the launcher's
        return args.func(args)
    if args.group == "skill":
        # numpy's OpenBLAS starts a server thread per core that spins ~0.1 s of CPU after import; the
        # skill engine makes no products worth threading (its parallelism is across blocks), so skip them.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from past.config import ConfigError
    from past.continual.registry import RegistryError
    from past.planner import PlanError
    from past.repro import ReproError
    from past.skills.errors import SkillError

    try:
        return args.func(args)
    except (SkillError, CommandError, ConfigError, RegistryError, PlanError, ReproError,
            argparse.ArgumentTypeError) as e:
        print(f"past: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
