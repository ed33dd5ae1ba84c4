"""Tensor dtypes of the streaming engine: numpy dtypes, named as safetensors names them.

The engine works on numpy arrays (bf16 and fp8 from ml_dtypes) so that `past skill inject` starts without
importing torch: on a 1B model from a warm page cache, importing torch took longer than the injection.
Torch appears only at the edges (SkillVector, compression), through `to_torch` / `from_torch`.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .errors import SkillError

BY_NAME: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
NAME_OF = {v: k for k, v in BY_NAME.items()}
FLOAT32 = BY_NAME["F32"]

_ALIASES = {
    "fp32": "F32", "float32": "F32", "float": "F32",
    "bf16": "BF16", "bfloat16": "BF16",
    "fp16": "F16", "float16": "F16", "half": "F16",
}


def as_dtype(dtype) -> np.dtype | None:
    """'bf16', 'float16', torch.bfloat16, np.float32... -> the numpy dtype (None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, type):  # np.float32, ml_dtypes.bfloat16
        dtype = np.dtype(dtype)
    if isinstance(dtype, np.dtype) and dtype in NAME_OF:
        return dtype
    # str() of a torch dtype is 'torch.bfloat16': recognised by name, without importing torch.
    try:
        return BY_NAME[_ALIASES[str(dtype).lower().removeprefix("torch.")]]
    except KeyError:
        raise SkillError(f"unknown dtype {dtype!r} (use one of {', '.join(sorted(_ALIASES))})") from None


def is_float(dtype: np.dtype) -> bool:
    return NAME_OF[dtype].startswith(("F", "BF"))


def largest(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype."""
    return float(ml_dtypes.finfo(dtype).max)


# numpy has no bf16/fp8 of its own: between torch and numpy their bits travel as integers of the same width.
_AS_BITS = {"BF16": np.dtype(np.int16), "F8_E4M3": np.dtype(np.int8), "F8_E5M2": np.dtype(np.int8)}


def torch_dtype(dtype: np.dtype):
    import torch

    return {"F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}.get(NAME_OF[dtype]) or getattr(torch, dtype.name)


def from_torch(tensor) -> np.ndarray:
    """A CPU torch tensor as a numpy array sharing its memory (bf16 and fp8 included)."""
    t = tensor.detach()
    for name, bits in _AS_BITS.items():
        if t.dtype == torch_dtype(BY_NAME[name]):
            return t.view(torch_dtype(bits)).numpy().view(BY_NAME[name])
    return t.numpy()


def to_torch(array: np.ndarray):
    """A numpy array as a torch tensor sharing its memory (bf16 and fp8 included)."""
    import torch

    bits = _AS_BITS.get(NAME_OF[array.dtype])
    if bits is not None:
        return torch.from_numpy(array.view(bits)).view(torch_dtype(array.dtype))
    return torch.from_numpy(array)
