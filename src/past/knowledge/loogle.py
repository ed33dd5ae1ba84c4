"""LooGLE long-dependency QA as knowledge sets: long documents chunked for SFT, questions closed book.

Input: LooGLE's JSONL (the `longdep_qa` / `shortdep_qa` files), one document a line:
`{"input": <document, often > 20k tokens>, "title": ..., "qa_pairs": [{"Q", "A", "S"}, ...], ...}`.
`qa_pairs` is published as the *string* of a Python list of dicts; a real list is accepted too.
`S` is the evidence span(s) that the question depends on.

A document becomes chunks of at most `chunk_words` words (SFT sequences must fit the context window),
overlapping by `overlap_words`; each question points at the chunk that holds the start of its evidence
(the first chunk when the evidence cannot be found) and carries the title as its topic.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from past.errors import DataError
from past.jsonl import read_jsonl
from past.knowledge.format import KnowledgeSet


def qa_pairs(row: dict, where: str) -> list[dict]:
    """The {Q, A, S} pairs of one LooGLE row, parsed safely (ast.literal_eval, never eval)."""
    raw = row.get("qa_pairs")
    if isinstance(raw, str):
        if raw.strip().lower() in ("", "none"):
            return []
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            try:
                raw = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                raise DataError(f"{where}: qa_pairs is neither JSON nor a Python literal") from None
    if not isinstance(raw, list) or not all(isinstance(p, dict) and "Q" in p and "A" in p for p in raw):
        raise DataError(f"{where}: qa_pairs must be a list of {{Q, A, S}} objects")
    return raw


def chunk_words(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(first word index, chunk text) pairs covering `text` with windows of `size` words."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"chunk size {size} and overlap {overlap}: need size >= 1 and 0 <= overlap < size")
    words = text.split()
    step, chunks = size - overlap, []
    for start in range(0, max(len(words), 1), step):
        chunks.append((start, " ".join(words[start:start + size])))
        if start + size >= len(words):
            break
    return chunks


def _evidence_word(text: str, evidence) -> int | None:
    spans = evidence if isinstance(evidence, list) else [evidence]
    for span in spans:
        if isinstance(span, str) and span.strip():
            at = text.find(span.strip()[:200])
            if at >= 0:
                return len(text[:at].split())
    return None


def loogle_set(path: str | Path, name: str, split: str, chunk_size: int = 512, overlap: int = 64,
               documents: int = 0, prefix: str = "lg", skip: int = 0, splits: list[str] | None = None) -> KnowledgeSet:
    """Knowledge set of `documents` rows of a LooGLE JSONL file after the first `skip` (0: all).

    `splits`, when given, names the question split of each row in turn (else every row has `split`).
    """
    path = Path(path)
    rows = read_jsonl(path)[skip:]
    rows = rows[:documents] if documents else rows
    docs, questions = [], []
    for i, row in enumerate(rows, start=skip):
        row_split = splits[i - skip] if splits else split
        where = f"{path}: row {i + 1}"
        if not isinstance(row.get("input"), str) or not row["input"].strip():
            raise DataError(f"{where}: missing the document text 'input'")
        title = str(row.get("title") or f"document {i + 1}").strip()
        doc_id = f"{prefix}{i:04d}"
        chunks = chunk_words(row["input"], chunk_size, overlap)
        ids = [f"{doc_id}-c{k:03d}" for k in range(len(chunks))]
        docs += [{"id": cid, "title": title, "text": f"{title}\n{text}"} for cid, (_, text) in zip(ids, chunks)]
        for k, pair in enumerate(qa_pairs(row, where)):
            word = _evidence_word(row["input"], pair.get("S"))
            chunk = 0 if word is None else max(j for j, (start, _) in enumerate(chunks) if start <= word)
            answer = pair["A"] if isinstance(pair["A"], str) else "; ".join(map(str, pair["A"]))
            questions.append({"id": f"{doc_id}-q{k:03d}", "doc_id": ids[chunk],
                              "question": f"Topic: {title}\n{str(pair['Q']).strip()}",
                              "answers": [answer.strip()], "split": row_split})
    return KnowledgeSet(name, "qa", docs, questions)


def loogle_sets(path: str | Path, source: int, target: int, oracle: int, chunk_size: int,
                overlap: int) -> dict[str, KnowledgeSet]:
    """Consecutive documents: `source` for SFT + RL, then `target` (split eval), then `oracle` (split oracle)."""
    rows = len(read_jsonl(path))
    if rows < source + target + oracle:
        raise DataError(f"{path}: {rows} documents, fewer than the {source} + {target} + {oracle} asked for")
    return {"source": loogle_set(path, "loogle-source", "train", chunk_size, overlap, source),
            "target": loogle_set(path, "loogle-target", "eval", chunk_size, overlap, target + oracle, skip=source,
                                 splits=["eval"] * target + ["oracle"] * oracle)}
