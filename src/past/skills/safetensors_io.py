"""Streaming safetensors I/O: read any block of any tensor, write blocks in place, in any order.

Reading parses the JSON header ourselves and maps each file (mmap): a block of a tensor is a zero-copy
view of the page cache, converted to fp32 by the arithmetic that consumes it. Touched pages of a mapping
count in the process's RSS, so each file's mapping is released (madvise DONTNEED) every
`_RELEASE_BYTES` read; pages stay in the page cache, and a view still in use simply faults them back
in, so releasing early is never wrong, only slower. Peak RSS thus stays flat whatever the model size.
Measured on a 1B injection (docs/skill-vectors.md): page faults on the mappings are under 1% of the time;
pread into reused buffers costs an extra copy of every input (1.7 s against 1.2 s), and releasing every
256 MB instead gains nothing measurable for 1 GB of RSS.

Writing exploits the format: every tensor's offset is known from the header before any data is
computed, so files are created at their final size (preallocated) and each block is written at its
own offset with pwrite, in any order. Nothing is assembled in memory (unlike `safetensors.torch.save_file`).
(The engine writes from one thread all the same: engine.stream_combination says why.)
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import threading
from pathlib import Path

import numpy as np

from past.files import PICKLE_SUFFIXES

from .dtypes import BY_NAME, NAME_OF
from .errors import CheckpointError, SkillError
from .sources import TensorSpec

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_MAX_HEADER = 100 * 1024 * 1024  # a header this large means a corrupt length field, not a real model
WRITE_PIECE = 512 * 1024  # bytes per pwrite (see SafetensorsFileWriter._pwrite_all)


def read_header(path: Path) -> tuple[dict[str, dict], dict[str, str], int]:
    """Parse and validate a safetensors header: (tensor entries, __metadata__, offset of the data)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"truncated safetensors file {path}: {size} bytes, no header")
        n = int.from_bytes(raw, "little")
        if n > min(size - 8, _MAX_HEADER):
            raise CheckpointError(f"truncated or corrupt safetensors file {path}: header of {n} bytes in a {size}-byte file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"corrupt safetensors header in {path}: {e}") from None
    metadata = header.pop("__metadata__", None) or {}
    end = 0
    for name, info in header.items():
        if info.get("dtype") not in BY_NAME:
            raise CheckpointError(f"unsupported dtype {info.get('dtype')!r} for tensor {name} in {path}")
        begin, stop = info["data_offsets"]
        spec = TensorSpec(BY_NAME[info["dtype"]], tuple(info["shape"]))
        if stop - begin != spec.nbytes:
            raise CheckpointError(f"corrupt safetensors file {path}: tensor {name} has {stop - begin} bytes for shape {spec.shape}")
        end = max(end, stop)
    if 8 + n + end > size:
        raise CheckpointError(f"truncated safetensors file {path}: {size} bytes, header promises {8 + n + end}")
    return header, metadata, 8 + n


_RELEASE_BYTES = 32 * 1024 * 1024


class _MappedFile:
    """One file mapped read-only, with its resident span bounded."""

    def __init__(self, path: Path):
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            self.map = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self._lock = threading.Lock()
        self._touched = 0

    def view(self, dtype: np.dtype, offset: int, count: int) -> np.ndarray:
        with self._lock:
            self._touched += count * dtype.itemsize
            if self._touched >= _RELEASE_BYTES:
                self._touched = 0
                self.map.madvise(mmap.MADV_DONTNEED)
        return np.frombuffer(self.map, dtype=dtype, count=count, offset=offset)

    def close(self) -> None:
        try:
            self.map.close()
        except BufferError:
            pass  # a caller still holds a view; the mapping goes when the last view does


class SafetensorsSource:
    """A safetensors file, or a Hugging Face folder (`model.safetensors` or shards + index).

    `read` returns read-only views of the mapped file: callers copy what they keep.
    """

    partial = False

    def __init__(self, path: Path | str):
        path = Path(path)
        self.label = str(path)
        files = _weight_files(path)
        self._entries: dict[str, tuple[Path, int, TensorSpec]] = {}
        self.metadata: dict[str, str] = {}
        expected = _index_map(path) if path.is_dir() and (path / INDEX_NAME).exists() else None
        for file in files:
            header, metadata, data_start = read_header(file)
            self.metadata.update(metadata)
            for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                if expected is not None and expected.get(name) != file.name:
                    continue  # not the copy the index points to (HF ignores it too)
                spec = TensorSpec(BY_NAME[info["dtype"]], tuple(info["shape"]))
                self._entries[name] = (file, data_start + info["data_offsets"][0], spec)
        if expected is not None:
            for name, shard in expected.items():
                if name not in self._entries:
                    raise CheckpointError(f"{path / INDEX_NAME} maps tensor {name} to {shard}, which does not contain it")
        self._maps: dict[Path, _MappedFile] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._entries)

    def spec(self, name: str) -> TensorSpec:
        return self._entries[name][2]

    def where(self, name: str) -> str:
        return str(self._entries[name][0])

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        file, offset, spec = self._entries[name]
        count = (stop - start) * spec.row_numel
        if count == 0:
            return np.empty(0, dtype=spec.dtype)
        with self._lock:
            mapped = self._maps.get(file) or self._maps.setdefault(file, _MappedFile(file))
        return mapped.view(spec.dtype, offset + start * spec.row_numel * spec.dtype.itemsize, count)

    def close(self) -> None:
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _index_map(folder: Path) -> dict[str, str]:
    try:
        return dict(json.loads((folder / INDEX_NAME).read_text())["weight_map"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"corrupt index {folder / INDEX_NAME}: {e}") from None


def check_skill_file_name(path: Path) -> None:
    """One rule for skill files, written or read: a single file named `*.safetensors`."""
    if path.suffix != ".safetensors":
        raise_if_pickle(path)
        raise CheckpointError(f"not a safetensors file: {path} (a skill file's name ends in .safetensors)")


def _weight_files(path: Path) -> list[Path]:
    """The safetensors files that make up a checkpoint at `path`, refusing missing shards and pickles."""
    if not path.exists():
        raise CheckpointError(f"no such file or directory: {path}")
    if path.is_file():
        check_skill_file_name(path)
        return [path]
    if (path / INDEX_NAME).exists():
        shards = sorted(set(_index_map(path).values()))
        for shard in shards:
            if not (path / shard).is_file():
                raise CheckpointError(f"missing shard {path / shard} (listed in {INDEX_NAME})")
        return [path / s for s in shards]
    if (path / SINGLE_NAME).exists():
        return [path / SINGLE_NAME]
    found = sorted(path.glob("*.safetensors"))
    if len(found) == 1:
        return found
    for candidate in sorted(path.iterdir()):
        raise_if_pickle(candidate)
    if found:
        raise CheckpointError(f"several safetensors files and no {INDEX_NAME} in {path}")
    raise CheckpointError(f"no safetensors weights in {path}")


def raise_if_pickle(path: Path) -> None:
    # Loading a pickle runs arbitrary code, and a pickle cannot be read one tensor at a time.
    if path.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(f"refusing pickle checkpoint {path}: convert it to safetensors first")


# ---------------------------------------------------------------------------------------------- writing


class SafetensorsFileWriter:
    """Write one safetensors file: header first, then blocks at their own offsets (thread-safe).

    The file is preallocated at its final size: on ext4 here, appending writes ran at ~0.5 GB/s and
    writes into preallocated space at ~5 GB/s (block allocation dominated). `reserve` extra header bytes
    let `finish(metadata=...)` rewrite the header in place with metadata known only at the end (norms
    computed while streaming) without moving the data.
    """

    def __init__(self, path: Path, specs: list[tuple[str, TensorSpec]], metadata: dict[str, str], reserve: int = 0):
        self.path = path
        self._specs = specs
        self._header_size = len(self._header(metadata)) + reserve
        self._header_size += -self._header_size % 8  # data starts 8-byte aligned, as safetensors itself does
        self._offsets: dict[str, tuple[int, TensorSpec]] = {}
        pos = 8 + self._header_size
        for name, spec in specs:
            self._offsets[name] = (pos, spec)
            pos += spec.nbytes
        self._expected = pos - 8 - self._header_size
        self._written = 0
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.posix_fallocate(self._fd, 0, pos)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                os.close(self._fd)
                raise SkillError(f"not enough disk space for {path} ({pos:,} bytes)") from None
            # otherwise unsupported here: writes still work, only slower
        self._write_header(metadata)

    def _header(self, metadata: dict[str, str]) -> bytes:
        header: dict = {"__metadata__": metadata} if metadata else {}
        offset = 0
        for name, spec in self._specs:
            header[name] = {"dtype": NAME_OF[spec.dtype], "shape": list(spec.shape), "data_offsets": [offset, offset + spec.nbytes]}
            offset += spec.nbytes
        return json.dumps(header, separators=(",", ":")).encode()

    def _write_header(self, metadata: dict[str, str]) -> None:
        raw = self._header(metadata)
        if len(raw) > self._header_size:
            raise RuntimeError(f"header of {self.path} outgrew its reserved {self._header_size} bytes")
        # JSON allows trailing spaces: pad to the reserved size.
        self._pwrite_all(self._header_size.to_bytes(8, "little") + raw + b" " * (self._header_size - len(raw)), 0)

    def _pwrite_all(self, data, offset: int) -> None:
        # At most WRITE_PIECE bytes per call (a bf16 block is 2 MB): the page cache sizes new folios by the
        # write, and on this project's VMs 1-4 MB writes into a new file were erratic, their medians up to 5x
        # those of 512 KB writes, the steadiest and fastest (benchmarks/page_cache_writes.py).
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done : done + WRITE_PIECE], offset + done)

    def write_at(self, name: str, start_row: int, block: np.ndarray) -> None:
        """Write a block of rows of `name` (flat, in the planned dtype) at its place in the file."""
        pos, spec = self._offsets[name]
        if block.dtype != spec.dtype:
            raise RuntimeError(f"{self.path}: block of {name} is {block.dtype}, planned {spec.dtype}")
        if block.size:
            self._pwrite_all(np.ascontiguousarray(block).view(np.uint8), pos + start_row * spec.row_numel * spec.dtype.itemsize)
        with self._lock:
            self._written += block.nbytes

    def finish(self, metadata: dict[str, str] | None = None) -> None:
        if self._written != self._expected:
            raise RuntimeError(f"{self.path}: wrote {self._written} bytes of tensor data, expected {self._expected}")
        if metadata is not None:
            self._write_header(metadata)
        self._close()

    def abort(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse_size(size: int | str) -> int:
    """'5GB' / '500MB' / 1234 -> bytes (decimal units, as Hugging Face's max_shard_size)."""
    if isinstance(size, int):
        return size
    s = size.strip().upper()
    for unit, mult in (("GIB", 2**30), ("MIB", 2**20), ("KIB", 2**10), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3), ("B", 1)):
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * mult)
    return int(s)


class ShardedFolderWriter:
    """Write tensors into a Hugging Face weight layout: `model.safetensors`, or shards plus an index.

    Shards are planned up front from the specs (greedy, in order, at most `max_shard_bytes` each unless a
    single tensor is larger), so every file is created at its final name and size before any data.
    """

    def __init__(self, folder: Path, specs: list[tuple[str, TensorSpec]], max_shard_bytes: int):
        self.folder = folder
        groups: list[list[tuple[str, TensorSpec]]] = [[]]
        size = 0
        for name, spec in specs:
            if groups[-1] and size + spec.nbytes > max_shard_bytes:
                groups.append([])
                size = 0
            groups[-1].append((name, spec))
            size += spec.nbytes
        n = len(groups)
        self._files = [SINGLE_NAME] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self._shard_of = {name: i for i, g in enumerate(groups) for name, _ in g}
        self._total = sum(s.nbytes for _, s in specs)
        self._writers: list[SafetensorsFileWriter] = []
        try:
            for file, group in zip(self._files, groups):
                self._writers.append(SafetensorsFileWriter(folder / file, group, {"format": "pt"}))
        except BaseException:
            self.abort()
            raise

    def write_at(self, name: str, start_row: int, block: np.ndarray) -> None:
        self._writers[self._shard_of[name]].write_at(name, start_row, block)

    def finish(self) -> None:
        for writer in self._writers:
            writer.finish()
        if len(self._files) > 1:
            index = {
                "metadata": {"total_size": self._total},
                "weight_map": {name: self._files[i] for name, i in self._shard_of.items()},
            }
            (self.folder / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
