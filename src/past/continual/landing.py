"""The landing folder: where organisations drop new knowledge, one sub-folder per drop.

A drop is a knowledge-set folder (`documents.jsonl`, optionally `questions.jsonl`) that is *complete*
once its `manifest.json` or an empty `_READY` marker exists: whoever copies a drop writes that file
last (or copies to a hidden name and renames the folder into place). Until then, and while any file is
younger than `settle_seconds` or does not match the sha256 its manifest lists, the drop is left alone,
so a half-copied file is never picked up.

Everything that comes in is untrusted: drop names are single plain path components inside the landing
folder, and symlinks (to the drop or inside it) are refused, so nothing outside the landing folder is
ever read. A drop's identity is its content hash (the same formula as `knowledge.format.content_hash`),
which makes adaptation idempotent: the same files under another name are the same drop.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from past.errors import DataError, Refusal
from past.files import sha256_file, sha256_json
from past.knowledge.format import DOCUMENTS, MANIFEST, QUESTIONS, KnowledgeSet

READY = "_READY"
DATA_FILES = (DOCUMENTS, QUESTIONS)
MARKERS = (MANIFEST, READY)
INCONSISTENT_GRACE = 60.0  # seconds a manifest may disagree with its files (copied first) before adapt rejects it


class LandingError(Refusal):
    """An incoming path that past refuses to read (outside the landing folder, a symlink, not a folder)."""


class PackagingError(DataError):
    """What is wrong is how the drop was packed (a stray file, a manifest that disagrees with its files), not its
    knowledge: the flows record it as a landing rejection, so a corrected drop of the same content (the same
    identity) is adapted again, without `force`. A DataError, so every caller that reports bad data reports it."""


class DropNotReady(LandingError):
    """A drop that is still being copied (no marker yet, files settling); asking again later may succeed."""


@dataclass(frozen=True)
class Drop:
    """A complete drop: its folder, content hash, the sha256 of each data file, and any refused entries."""

    name: str
    path: Path
    hash: str
    files: dict[str, str]
    marker: str
    unsafe: list[str] = field(default_factory=list)  # entries refused (symlinks, devices...): adapt rejects the drop

    def as_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "hash": self.hash, "files": self.files,
                "marker": self.marker, "unsafe": self.unsafe}


@dataclass(frozen=True)
class Pending:
    """A folder in the landing area that is not (yet) a complete drop, and why."""

    name: str
    reason: str


def files_hash(files: dict[str, str]) -> str:
    """The content hash of a drop from its files' sha256 (= knowledge.format.content_hash of its manifest)."""
    return sha256_json(files)


def drop_folder(landing: str | Path, name: str) -> Path:
    """The folder of drop `name`, refusing anything that could lead outside the landing folder."""
    landing = Path(landing)
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise LandingError(f"drop name {name!r}: must be a single folder name inside {landing}")
    if name.startswith((".", "_")):
        raise LandingError(f"drop name {name!r}: hidden and '_' names are reserved for copies in progress")
    path = landing / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise LandingError(f"{path}: no such drop") from None
    if stat.S_ISLNK(info.st_mode):
        raise LandingError(f"{path}: is a symlink; drops must be real folders inside the landing folder")
    if not stat.S_ISDIR(info.st_mode):
        raise LandingError(f"{path}: not a folder")
    if path.resolve().parent != landing.resolve():
        raise LandingError(f"{path}: resolves outside the landing folder {landing}")
    return path


def inspect_drop(landing: str | Path, name: str, settle_seconds: float = 0.0,
                 now: float | None = None) -> Drop | Pending:
    """A complete Drop, or Pending with the reason it is not complete yet."""
    path = drop_folder(landing, name)
    now = time.time() if now is None else now
    entries = {}
    unsafe = []
    for entry in os.scandir(path):
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            unsafe.append(entry.name + ("" if not stat.S_ISLNK(info.st_mode) else " (symlink)"))
        elif entry.name not in DATA_FILES + MARKERS:
            unsafe.append(f"{entry.name} (not part of a drop)")  # never silently ignored: the sender meant something
        else:
            entries[entry.name] = info
    marker = next((m for m in MARKERS if m in entries), None)
    if marker is None:
        return Pending(name, f"no {MANIFEST} or {READY} yet")
    young = [n for n, info in entries.items() if now - info.st_mtime < settle_seconds]
    if young:
        return Pending(name, f"settling: {', '.join(sorted(young))} changed less than {settle_seconds:g} s ago")
    files = {n: sha256_file(path / n) for n in DATA_FILES if n in entries}
    if marker == MANIFEST:
        listed = _manifest_files(path / MANIFEST)
        mismatched = [n for n, digest in (listed or {}).items() if files.get(n) != digest]
        newest = max(info.st_mtime for info in entries.values())
        if mismatched and now - newest < max(settle_seconds, INCONSISTENT_GRACE):
            # a manifest copied before its files: wait (a drop that stays inconsistent is rejected by adapt)
            return Pending(name, f"{', '.join(mismatched)} do not match the manifest yet")
    return Drop(name, path, files_hash(files), files, marker, sorted(unsafe))


def scan(landing: str | Path, settle_seconds: float = 0.0,
         now: float | None = None) -> tuple[list[Drop], list[Pending]]:
    """Complete drops (oldest first) and pending folders in the landing folder; hidden/'_' names are skipped."""
    landing = Path(landing)
    if not landing.is_dir():
        return [], []
    drops, pending = [], []
    names = sorted((e for e in os.scandir(landing) if not e.name.startswith((".", "_"))),
                   key=lambda e: (e.stat(follow_symlinks=False).st_mtime, e.name))
    for entry in names:
        try:
            result = inspect_drop(landing, entry.name, settle_seconds, now)
        except LandingError as err:
            pending.append(Pending(entry.name, str(err)))
            continue
        (drops if isinstance(result, Drop) else pending).append(result)
    return drops, pending


def load_drop(drop: Drop, max_document_chars: int = 0, max_drop_mb: float = 0.0) -> KnowledgeSet:
    """The drop's documents and questions, checked against their contracts and size limits (0: none).

    Raises PackagingError (a refused entry, a manifest mismatch), DataError (bad UTF-8 or JSON, naming file and
    row; a file or document over its limit) or ContractViolation (Great Expectations report naming file,
    expectation and rows).
    """
    from past import contracts
    from past.jsonl import read_jsonl

    if drop.unsafe:
        raise PackagingError(f"{drop.path}: refused entries {drop.unsafe}: a drop holds {', '.join(DATA_FILES)} "
                             f"and {' or '.join(MARKERS)}, as regular files")
    if DOCUMENTS not in drop.files:
        raise DataError(f"{drop.path / DOCUMENTS}: missing; a drop needs documents")
    size = sum((drop.path / n).stat().st_size for n in drop.files)
    if max_drop_mb and size > max_drop_mb * 2**20:  # before reading: a huge drop is never loaded
        raise DataError(f"{drop.path}: {size / 2**20:.1f} MB of data, over adapt.max_drop_mb = {max_drop_mb:g}")
    current = {n: sha256_file(drop.path / n) for n in drop.files}
    if current != drop.files:
        raise DataError(f"{drop.path}: files changed since the drop was announced (hash {drop.hash[:12]})")
    if drop.marker == MANIFEST:
        listed = _manifest_files(drop.path / MANIFEST)
        if listed is None:
            raise PackagingError(f"{drop.path / MANIFEST}: not a JSON object with a 'files' mapping of sha256")
        for n, digest in listed.items():
            if n not in DATA_FILES:
                raise PackagingError(f"{drop.path / MANIFEST}: lists {n!r}; a drop holds {', '.join(DATA_FILES)}")
            if current.get(n) != digest:
                raise PackagingError(f"{drop.path / n}: sha256 {str(current.get(n))[:12]} does not match the "
                                     f"manifest ({str(digest)[:12]})")
    documents = read_jsonl(drop.path / DOCUMENTS)
    if max_document_chars:  # SFT repeats documents to fill its steps: one huge document becomes tens of GB
        for row, document in enumerate(documents, start=1):
            length = len(str(document.get("text", "")))
            if length > max_document_chars:
                raise DataError(f"{drop.path / DOCUMENTS}: row {row} (id {document.get('id')!r}): {length:,} "
                                f"characters, over adapt.max_document_chars = {max_document_chars:,}")
    questions = read_jsonl(drop.path / QUESTIONS) if QUESTIONS in drop.files else []
    contracts.validate_documents(documents, str(drop.path / DOCUMENTS))
    if questions:
        contracts.validate_questions(questions, str(drop.path / QUESTIONS), [str(d.get("id")) for d in documents])
    kind = "qa"
    if drop.marker == MANIFEST:
        kind = json.loads((drop.path / MANIFEST).read_text(encoding="utf-8")).get("kind", "qa")
    return KnowledgeSet(drop.name, kind, documents, questions)


def _manifest_files(path: Path) -> dict[str, str] | None:
    """The manifest's {file: sha256}; {} for a manifest without hashes; None if it is not usable JSON."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None
    return files


