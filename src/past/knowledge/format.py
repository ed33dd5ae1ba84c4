"""One knowledge format for every part: a folder with documents, questions and a manifest.

- `documents.jsonl`: {"id", "title", "text"}: what SFT learns from;
- `questions.jsonl`: {"id", "doc_id", "question", "answers": [...], "split"}: what RL trains on in the
  source domain and what evaluation asks in the target domain;
- `manifest.json`: name, kind, per-file sha256, counts; written last, so its presence says the set
  is complete.
A synthetic world, SQuAD or a drop a user copies into the landing folder all look the same to training
and evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from past import contracts
from past.errors import DataError
from past.files import atomic_dir, sha256_bytes, sha256_file, sha256_json
from past.jsonl import jsonl_text, read_jsonl

DOCUMENTS = "documents.jsonl"
QUESTIONS = "questions.jsonl"
TOOLS = "tools.jsonl"  # kind `tool` only: {name, description, parameters (JSON schema)}
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class KnowledgeSet:
    name: str
    kind: str
    documents: list[dict]
    questions: list[dict]
    tools: list[dict] | None = None  # kind `tool`: the APIs whose calls are the answers

    def questions_in(self, *splits: str) -> list[dict]:
        return [q for q in self.questions if q["split"] in splits]


def write_knowledge_set(folder: str | Path, ks: KnowledgeSet, splits: list[str] | None = None) -> Path:
    """Validate both files against their contracts, then write the set atomically (manifest last)."""
    folder = Path(folder)
    contracts.validate_documents(ks.documents, str(folder / DOCUMENTS))
    contracts.validate_questions(ks.questions, str(folder / QUESTIONS), [d["id"] for d in ks.documents], splits)
    with atomic_dir(folder) as tmp:
        hashes = {}
        files = [(DOCUMENTS, ks.documents), (QUESTIONS, ks.questions)] + ([(TOOLS, ks.tools)] if ks.tools else [])
        for name, rows in files:
            data = jsonl_text(rows).encode("utf-8")
            (tmp / name).write_bytes(data)
            hashes[name] = sha256_bytes(data)
        manifest = {"name": ks.name, "kind": ks.kind, "files": hashes,
                    "documents": len(ks.documents), "questions": len(ks.questions)}  # no wall-clock time: DVC hashes this folder
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def read_knowledge_set(folder: str | Path, validate: bool = False) -> KnowledgeSet:
    """Load a complete set; checks the manifest hashes (and, with `validate`, the contracts)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise DataError(f"{manifest_path}: missing; the knowledge set is incomplete")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for name, expected in manifest.get("files", {}).items():
        actual = sha256_file(folder / name)
        if actual != expected:
            raise DataError(f"{folder / name}: sha256 {actual[:12]} does not match the manifest ({expected[:12]})")
    documents = read_jsonl(folder / DOCUMENTS)
    questions = read_jsonl(folder / QUESTIONS)
    if validate:
        contracts.validate_documents(documents, str(folder / DOCUMENTS))
        contracts.validate_questions(questions, str(folder / QUESTIONS), [d["id"] for d in documents])
    tools = read_jsonl(folder / TOOLS) if TOOLS in manifest.get("files", {}) else None
    return KnowledgeSet(manifest["name"], manifest.get("kind", "qa"), documents, questions, tools)


def content_hash(folder: str | Path) -> str:
    """Hash of a set's content (its manifest's file hashes), stable across copies and timestamps."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    return sha256_json(manifest["files"])


def split_by_title(ks: KnowledgeSet, parts: int) -> list[KnowledgeSet]:
    """`parts` disjoint subsets, whole subjects (documents sharing a title) at a time, in file order.

    Iterative skill refinement trains each round on knowledge the earlier rounds never saw.
    """
    titles = list(dict.fromkeys(d["title"] for d in ks.documents))
    if parts > len(titles):
        raise ValueError(f"{ks.name}: cannot split {len(titles)} subjects into {parts} rounds")
    title_of = {d["id"]: d["title"] for d in ks.documents}
    subsets = []
    for k in range(parts):
        chosen = set(titles[k * len(titles) // parts:(k + 1) * len(titles) // parts])
        subsets.append(KnowledgeSet(
            f"{ks.name}[{k + 1}/{parts}]", ks.kind,
            [d for d in ks.documents if d["title"] in chosen],
            [q for q in ks.questions if title_of.get(q["doc_id"]) in chosen], ks.tools))
    return subsets
