"""The streaming engine: theta_out = sum_i c_i * theta_i, one block at a time, file to file.

Extraction is (+1) rl + (-1) sft written to one safetensors file; injection is (+1) target + sum lambda_i v_i
written to a Hugging Face folder. Arithmetic is fp32 whatever the stored dtypes; the result is rounded
once, to the output dtype. Peak memory is a few blocks (see sources.BLOCK_ELEMENTS), whatever the model size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from .checkpoints import model_config, model_folders, open_delta, open_model
from .compat import check_compatible, check_same_architecture, check_skill_architecture, check_skill_base
from .dtypes import FLOAT32, as_dtype, largest
from .errors import NonFiniteError, SkillError
from .outputs import atomic_output, copy_support_files, refuse_existing, refuse_input_overlap
from .overlap import WINDOW, BufferPool, ordered_map, scratch
from .provenance import decode_metadata, encode_metadata, skill_metadata, write_model_card
from .reductions import FLOAT64, dot
from .safetensors_io import SafetensorsFileWriter, ShardedFolderWriter, check_skill_file_name, parse_size
from .sources import BLOCK_ELEMENTS, LinearCombination, TensorSource, TensorSpec, row_blocks

Terms = list[tuple[float, TensorSource]]

Sink = Callable[[str, int, np.ndarray], None]


def stream_combination(
    terms: Terms, specs: list[tuple[str, TensorSpec]], sink: Sink, *, squares: bool = False, progress: bool = False, desc: str = "",
) -> dict[str, float]:
    """Compute sum_i c_i * source_i block by block and hand each block to `sink(name, start_row, block)`.

    Blocks are computed on worker threads (overlap.py) and reach `sink` in order, on the calling thread.
    One writer, because ext4 serialises buffered writes to a file and a second writer spins in the kernel
    while it waits: with two, that spinning was 10% of all CPU time, and in slow minutes on this project's
    VMs it added 60% to the wall time. `sink` must be done with a block on return (its buffer is reused).
    A block arrives in the output dtype given by `specs`, after a check against that dtype's range:
    min/max propagate NaN and Inf from any input and catch what rounding would overflow.
    Returns the sum of squares of each output tensor if `squares`, else zeros.
    """
    combo = LinearCombination(terms)
    # Once per tensor, not per block; the arithmetic is fp32, so a wider output dtype is held to fp32's range.
    bounds = {name: min(largest(spec.dtype), largest(FLOAT32)) for name, spec in specs}
    tasks = [(name, spec, start, stop) for name, spec in specs for start, stop in row_blocks(spec)]
    # At most WINDOW blocks are in flight and one is being written.
    pool = BufferPool(WINDOW + 1, BLOCK_ELEMENTS * FLOAT32.itemsize)

    def compute(task) -> tuple[str, int, np.ndarray, np.ndarray, float]:
        name, spec, start, stop = task
        n = (stop - start) * spec.row_numel
        nbytes = n * spec.dtype.itemsize
        buf = pool.take(nbytes)
        try:
            out = buf[:nbytes].view(spec.dtype)
            acc = out if spec.dtype == FLOAT32 else scratch("acc", n, FLOAT32)
            combo.read(name, start, stop, out=acc, tmp=scratch("tmp", n, FLOAT32))
            if n:
                bound = bounds[name]
                if not (-bound <= acc.min() and acc.max() <= bound):  # False for NaN too
                    _explain_non_finite(combo, name, start, stop, spec.dtype)
            if acc is not out:
                np.copyto(out, acc, casting="unsafe")  # round to nearest even, once
            if squares and n:  # of the stored values, after rounding
                f = out if out.dtype == FLOAT32 else out.astype(FLOAT32)
                sq = dot(f, f, scratch("squares", n, FLOAT64))
            else:
                sq = 0.0
        except BaseException:
            pool.give(buf)
            raise
        return name, start, out, buf, sq

    sums = {name: 0.0 for name, _ in specs}
    total = sum(spec.nbytes for _, spec in specs)
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
        for name, start, out, buf, sq in ordered_map(compute, tasks):
            sink(name, start, out)
            pool.give(buf)
            sums[name] += sq
            bar.update(out.nbytes)
    return sums


def _explain_non_finite(combo: LinearCombination, name: str, start: int, stop: int, dtype: np.dtype) -> None:
    for _, src in combo.contributions(name):
        if not np.isfinite(src.read(name, start, stop).astype(FLOAT32)).all():
            raise NonFiniteError(f"tensor {name} in {src.where(name)} holds NaN or Inf")
    raise NonFiniteError(f"tensor {name}: the result overflows {dtype.name}")


def extract_skill(
    rl_dir: Path | str,
    sft_dir: Path | str,
    out_file: Path | str,
    metadata: dict | None = None,
    *,
    dtype: np.dtype | str = "fp32",
    overwrite: bool = False,
    rl_base: Path | str | None = None,
    sft_base: Path | str | None = None,
    progress: bool = False,
) -> Path:
    """v = theta_rl - theta_sft, streamed into one safetensors file with provenance metadata.

    fp32 by default: the difference of two bf16 weights is exact in fp32 but generally not in bf16.
    Either input may be a PEFT LoRA adapter (an RL adapter defaults to the SFT model as its base).
    """
    rl_dir, sft_dir, out_file = Path(rl_dir), Path(sft_dir), Path(out_file)
    dtype = as_dtype(dtype)
    check_skill_file_name(out_file)
    refuse_input_overlap(out_file, [*model_folders(rl_dir, rl_base), *model_folders(sft_dir, sft_base)])
    refuse_existing(out_file, overwrite)
    rl = open_model(rl_dir, base=rl_base, default_base=sft_dir)
    sft = open_model(sft_dir, base=sft_base)
    try:
        check_same_architecture(model_config(rl_dir, rl_base or sft_dir), str(rl_dir), model_config(sft_dir, sft_base), str(sft_dir))
        check_compatible(sft, [rl])
        specs = [(name, TensorSpec(dtype, sft.spec(name).shape)) for name in sft.names()]
        meta = skill_metadata(rl_dir, sft_dir, metadata)
        meta.update(
            num_tensors=len(specs),
            num_parameters=sum(s.numel for _, s in specs),
            norm=0.0,
            tensor_norms={name: 0.0 for name, _ in specs},
        )
        # Norms are known only after streaming; reserve header room for their digits (~24 chars each).
        reserve = 32 * (len(specs) + 1)
        with atomic_output(out_file, overwrite=overwrite, directory=False) as tmp:
            writer = SafetensorsFileWriter(tmp, specs, encode_metadata(meta), reserve=reserve)
            try:
                sq = stream_combination([(1.0, rl), (-1.0, sft)], specs, writer.write_at, squares=True, progress=progress, desc="extract")
            except BaseException:
                writer.abort()
                raise
            meta["tensor_norms"] = {name: math.sqrt(v) for name, v in sq.items()}
            meta["norm"] = math.sqrt(sum(sq.values()))
            writer.finish(encode_metadata(meta))
    finally:
        rl.close()
        sft.close()
    return out_file


def inject(
    target_dir: Path | str,
    skills: list[Path | str],
    lams: list[float],
    out_dir: Path | str,
    *,
    dtype: np.dtype | str | None = None,
    overwrite: bool = False,
    card: dict | None = None,
    target_base: Path | str | None = None,
    max_shard_size: int | str = "5GB",
    allow_other_base: bool = False,
    progress: bool = False,
) -> Path:
    """theta_target + sum_i lams[i] * skills[i], streamed into a complete Hugging Face model folder.

    Config, tokenizer and generation files are copied from the target; README.md (model card) and
    past_provenance.json name the target, each skill and its lambda. Built in a temporary sibling folder
    and renamed at the end. `dtype=None` keeps each tensor's dtype from the target. Dtypes may be given as
    strings ('bf16'), numpy or torch dtypes. A skill whose recorded base config differs from the target's is
    refused unless `allow_other_base`.
    """
    target_dir, out_dir = Path(target_dir), Path(out_dir)
    dtype = as_dtype(dtype)
    skills = [Path(s) for s in skills]
    lams = [float(x) for x in lams]
    if not skills or len(skills) != len(lams):
        raise SkillError(f"need one lambda per skill: got {len(skills)} skills and {len(lams)} lambdas")
    for path, lam in zip(skills, lams):  # else it surfaces as an overflow in the first tensor, naming no lambda
        if not math.isfinite(lam):
            raise SkillError(f"lambda for skill {path} must be a finite number, got {lam!r}")
    refuse_input_overlap(out_dir, [*model_folders(target_dir, target_base), *skills])
    refuse_existing(out_dir, overwrite)
    target = open_model(target_dir, base=target_base)
    deltas: list[TensorSource] = []
    try:
        for path in skills:
            deltas.append(open_delta(path))
        target_config = model_config(target_dir, target_base)
        metas = [decode_metadata(d.metadata) for d in deltas]
        for path, meta in zip(skills, metas):
            check_skill_architecture(meta, str(path), target_config, str(target_dir))
        check_compatible(target, deltas)
        if not allow_other_base:  # after the tensor checks: a mismatch they can name is named precisely
            for path, meta in zip(skills, metas):
                check_skill_base(meta, str(path), target_config, str(target_dir))
        specs = [(name, TensorSpec(dtype or target.spec(name).dtype, target.spec(name).shape)) for name in target.names()]
        terms: Terms = [(1.0, target)] + list(zip(lams, deltas))
        with atomic_output(out_dir, overwrite=overwrite, directory=True) as tmp:
            copy_support_files(model_folders(target_dir, target_base), tmp, dtype)
            writer = ShardedFolderWriter(tmp, specs, parse_size(max_shard_size))
            try:
                stream_combination(terms, specs, writer.write_at, progress=progress, desc="inject")
                writer.finish()
            except BaseException:
                writer.abort()
                raise
            write_model_card(tmp, target_dir, [(str(p), lam, m) for p, lam, m in zip(skills, lams, metas)], card,
                             name=out_dir.name)
    finally:
        target.close()
        for d in deltas:
            d.close()
    return out_dir
