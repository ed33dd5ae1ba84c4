"""The file system, written once: atomic writes and publishing, sha256 hashing, the pickle suffixes, overlap of
outputs with inputs.

Nothing half-written is ever left where a reader looks: a file or folder is built in a temporary sibling
(same directory, so the rename is atomic), flushed to disk with fsync, then renamed into place. A crash
or a full disk leaves the previous artifact, never a torn one.

A process killed mid-write (SIGKILL: no cleanup runs) leaves its temporary sibling, named after the
path and its pid (`.name.PID.xxxx.tmp`, `.name.old-PID`). The next write of the same path clears those
of processes that are gone, and puts the previous artifact back if the kill fell between a folder's two
renames; so a rerun never finds, hashes or uses what a killed run left.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from past import failpoints
from past.preemption import deferred

# Weight formats that unpickle (and so can run code) when loaded: never read, never copied.
PICKLE_SUFFIXES = frozenset({".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pickle"})


# ------------------------------------------------------------------------------------------ hashing


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(value) -> str:
    """The sha256 of a JSON-able value, independent of key order."""
    return sha256_bytes(json.dumps(value, sort_keys=True, default=str).encode("utf-8"))


# ------------------------------------------------------------------------------------------ paths


def overlapping_input(output: str | Path, inputs: list[str | Path]) -> Path | None:
    """The first of `inputs` that `output` is, contains, or lies inside (symlinks resolved), else None.

    Writing there (or replacing it with an overwrite) would destroy an input, so callers refuse it.
    """
    out = Path(output).resolve()
    for item in inputs:
        path = Path(item).resolve()
        if out == path or out.is_relative_to(path) or path.is_relative_to(out):
            return Path(item)
    return None


# ------------------------------------------------------------------------------------------ writing


def _fsync_tree(path: Path) -> None:
    """Flush a finished file, or every file and folder under a finished folder, to disk."""
    paths = [path] if path.is_file() else [*path.rglob("*"), path]
    for p in paths:
        if p.is_symlink():
            continue
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (the directory entry itself)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write a file through a temporary sibling, fsync, and an atomic rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | Path, rows: list[dict], columns: list[str]) -> Path:
    """A CSV table (header + one line per row, `\n` line ends) for `dvc plots`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


@contextmanager
def atomic_path(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to fill (a folder with `directory`); on success it is fsynced
    and replaces `path` whole, on any exception it vanishes and `path` keeps what it held."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(path)  # a killed writer's temporary: its space is needed now
    prefix = f".{path.name}.{os.getpid()}."
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=prefix, suffix=".tmp"))
        tmp.chmod(0o755)  # mkdtemp's private 0700 would leak into the published artifact
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        tmp.chmod(0o644)
    try:
        yield tmp
        _fsync_tree(tmp)
    except BaseException as err:
        remove_path(tmp)
        if is_disk_full(err):
            raise DiskFullError(f"{path}: the disk filled up while writing it ({err}); nothing was replaced: "
                                f"{'the previous one is kept' if path.exists() else 'it was not created'}") from err
        raise
    publish(tmp, path)


class DiskFullError(OSError):
    """A write ran out of space (or quota); the artifact it was replacing is untouched."""


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC / EDQUOT, also when a library reports it in its own exception (safetensors: "os error 28")."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside `path` that replaces it whole on success (see `atomic_path`)."""
    with atomic_path(path, directory=True) as tmp:
        yield tmp


def publish(tmp: Path, path: Path) -> None:
    """Put a finished file or folder `tmp` at `path`, replacing what was there.

    A file replaces a file in one rename. A folder cannot be renamed over a non-empty one, so the old one
    steps aside first; readers see the old artifact or the new one, never a mix. SIGTERM waits until both
    renames are done (see `preemption`); after a SIGKILL between them, the next write of `path` puts the old
    one back first (`clear_stale`).
    """
    with deferred():
        clear_stale(path)
        replacing = path.exists() or path.is_symlink()
        if replacing and (_is_folder(tmp) or _is_folder(path)):
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            remove_path(old)
            os.replace(path, old)
            failpoints.reached("publish")
            os.replace(tmp, path)
            remove_path(old)
        else:
            failpoints.reached("publish")
            os.replace(tmp, path)
        _fsync_dir(path.parent)


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def clear_stale(path: str | Path) -> list[Path]:
    """Remove what killed writers of `path` left beside it (their pid is gone); if the kill fell between a
    folder's two renames (`path` missing, its stepped-aside old copy there), put the old copy back. Returns
    what was removed or restored. A live writer's temporaries (this process's too) are left alone."""
    path = Path(path)
    stale = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)(?:\.[^./]+)?\.tmp|old-(\d+))$")
    found = []
    try:
        siblings = list(path.parent.iterdir())
    except FileNotFoundError:
        return []
    for sibling in sorted(siblings):
        match = stale.match(sibling.name)
        if match is None or _alive(int(match.group(1) or match.group(2))):
            continue
        if match.group(2) and not (path.exists() or path.is_symlink()):
            os.replace(sibling, path)  # the previous artifact, whole: the new one never finished publishing
        else:
            remove_path(sibling)
        found.append(sibling)
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def publish_folder(folder: str | Path, path: str | Path) -> Path:
    """Put a finished folder built elsewhere on the same file system (a step's work folder) at `path`: fsynced,
    then renamed into place like `atomic_dir` does."""
    folder, path = Path(folder), Path(path)
    _fsync_tree(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    publish(folder, path)
    return path


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def temporaries(folder: str | Path) -> list[Path]:
    """Everything under `folder` that a write in progress or a killed one leaves: `atomic_path`'s
    `.name.*.tmp` and `publish`'s `.name.old-PID`, deepest first."""
    return [path for path in sorted(Path(folder).rglob(".*"), reverse=True)
            if path.name.endswith(".tmp") or ".old-" in path.name]


def remove_temporaries(folder: str | Path) -> None:
    """Remove, anywhere under `folder`, what a killed process left half-written (`temporaries`). Only for a
    folder no other process writes to (a step's work folder)."""
    for path in temporaries(folder):
        remove_path(path)


def copy_folder_atomic(source: str | Path, target: Path) -> None:
    """Copy a folder into place whole; symlinks inside are followed (their targets' bytes are copied)."""
    with atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True, symlinks=False)
