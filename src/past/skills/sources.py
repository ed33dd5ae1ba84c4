"""Tensor sources: what the streaming engine reads from.

A source exposes tensor *names*, their specs (dtype, shape) and a way to read a block of rows of one
tensor. Safetensors checkpoints, LoRA adapters merged on the fly and in-memory dicts all look the same to
the engine, so extraction, injection, inspection and compression are each written once.

Rows are the unit of reading because every operation we need is elementwise, except LoRA's B @ A,
whose natural slice is a block of output rows. A block is a flat numpy array (see dtypes.py for why numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Protocol

import numpy as np

from .dtypes import FLOAT32, from_torch

# Elements per block: 1M fp32 values = 4 MiB. Large enough that per-block overhead (~50 us) vanishes,
# small enough to stay in cache between the passes over a block, and never to hold a whole tensor
# (a 70B model's embedding has 1B elements).
BLOCK_ELEMENTS = 1024 * 1024


@dataclass(frozen=True)
class TensorSpec:
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_numel(self) -> int:
        return math.prod(self.shape[1:]) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


class TensorSource(Protocol):
    """Read-only access to named tensors, block by block."""

    label: str  # shown in error messages: a path, or a description
    partial: bool  # True for LoRA deltas: a name it lacks means "zero", not "missing"
    metadata: dict

    def names(self) -> list[str]: ...  # storage order, so reading in this order is sequential

    def spec(self, name: str) -> TensorSpec: ...

    def read(self, name: str, start: int, stop: int) -> np.ndarray: ...  # rows [start, stop), flat, read-only

    def where(self, name: str) -> str: ...  # the file holding `name`, for error messages

    def close(self) -> None: ...


def row_blocks(spec: TensorSpec, block_elements: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield (start, stop) row ranges covering the tensor, each at most `block_elements` (or one row)."""
    step = max(1, (block_elements or BLOCK_ELEMENTS) // max(1, spec.row_numel))
    for start in range(0, spec.rows, step):
        yield start, min(start + step, spec.rows)


def read_full(source: TensorSource, name: str) -> np.ndarray:
    """A whole tensor in its stored shape, owned by the caller (for in-memory use on small models)."""
    spec = source.spec(name)
    return source.read(name, 0, spec.rows).reshape(spec.shape).copy()


class DictSource:
    """An in-memory state dict (numpy arrays or torch tensors, shared, not copied) seen as a source.

    For SkillVector, tests and `apply_to` on a state dict or module.
    """

    partial = False

    def __init__(self, tensors: Mapping, label: str = "<in-memory>", metadata=None):
        self._arrays = {n: t if isinstance(t, np.ndarray) else from_torch(t) for n, t in tensors.items()}
        self.label = label
        self.metadata = dict(metadata or {})

    def names(self) -> list[str]:
        return list(self._arrays)

    def spec(self, name: str) -> TensorSpec:
        a = self._arrays[name]
        return TensorSpec(a.dtype, tuple(a.shape))

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        a = self._arrays[name]
        return (a.reshape(1) if a.ndim == 0 else a[start:stop]).reshape(-1)

    def where(self, name: str) -> str:
        return self.label

    def close(self) -> None:
        pass


class LinearCombination:
    """sum_i c_i * source_i, read lazily in fp32. Names and specs are those of the first source.

    A partial source (a LoRA delta) contributes zero to the tensors it lacks. Callers check
    compatibility (compat.check_compatible) before combining.
    """

    partial = False

    def __init__(self, terms: list[tuple[float, TensorSource]], label: str | None = None):
        self.terms = terms
        self._present = [set(src.names()) if src.partial else None for _, src in terms]
        self.label = label or " + ".join(f"{c:g}*{src.label}" for c, src in terms)
        self.metadata: dict = {}

    def names(self) -> list[str]:
        return self.terms[0][1].names()

    def spec(self, name: str) -> TensorSpec:
        return TensorSpec(FLOAT32, self.terms[0][1].spec(name).shape)

    def where(self, name: str) -> str:
        return self.label

    def contributions(self, name: str) -> list[tuple[float, TensorSource]]:
        return [(c, src) for (c, src), present in zip(self.terms, self._present) if present is None or name in present]

    def read(self, name: str, start: int, stop: int, out: np.ndarray | None = None, tmp: np.ndarray | None = None) -> np.ndarray:
        """The fp32 sum for rows [start, stop), accumulated into `out` (a reusable buffer) if given.

        `tmp` (another fp32 buffer) holds each further input converted and scaled: numpy has no fused
        multiply-add, and mixing a bf16 input into fp32 arithmetic directly would round in bf16.
        """
        n = (stop - start) * self.terms[0][1].spec(name).row_numel
        acc = np.empty(n, dtype=FLOAT32) if out is None else out[:n]
        first = True
        for coef, src in self.contributions(name):
            x = src.read(name, start, stop)
            if first:  # a converting copy: acc never aliases an input
                np.copyto(acc, x, casting="unsafe")
                if coef != 1:
                    acc *= coef
                first = False
            elif coef == 1 and x.dtype == FLOAT32:
                acc += x
            else:
                t = np.empty(n, dtype=FLOAT32) if tmp is None else tmp[:n]
                if x.dtype == FLOAT32:
                    np.multiply(x, coef, out=t)
                else:
                    np.copyto(t, x, casting="unsafe")
                    t *= coef
                acc += t
        if first:
            acc.fill(0)
        return acc

    def close(self) -> None:
        for _, src in self.terms:
            src.close()
