"""SQuAD knowledge incorporation in the SEAL/PaST protocol, as knowledge sets.

Input: the SEAL files (`implications_train.json`: 100 SQuAD train passages with 10 implication lists
each, the source domain; `implications_val.json`: the 200 evaluation passages with 5 lists each, the
target domain; `squad_val.json`: the SQuAD v1.1 dev passages). Each passage is
`{title, context, questions: [{question, answer}], completions: [str, ...]}`.

A training document is the passage (`"{title}\\n{context}"`) and, in the implications arm, one document
per implication line (`"{title}\\n{line}"`, the SEAL sequence). A question carries its topic, as in
SEAL's prompt `Question: Topic: {title}\\n{question}`, so the prompt template only needs `{question}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from past.errors import DataError
from past.knowledge.format import KnowledgeSet

ARMS = ("passage", "implications")
# The SEAL prompt: closed book, greedy; "Topic: {title}\n" is part of each question's text.
SEAL_PROMPT = "Let's answer a question directly and concisely.\nQuestion: {question}\nAnswer:\n"
_ENUMERATOR = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s*")


def load_passages(path: str | Path) -> list[dict]:
    """A SEAL passage file: a JSON list of {title, context, questions[, completions]}."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found (the SEAL SQuAD files live in shared/data/squad-seal/)") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of passages")
    for i, row in enumerate(rows):
        missing = {"title", "context", "questions"} - set(row)
        if missing:
            raise DataError(f"{path}: passage {i}: missing {sorted(missing)}")
    return rows


def implication_lines(completion: str) -> list[str]:
    """The lines of one implication list, enumerators ("1.", "-") stripped, empty lines dropped."""
    lines = (_ENUMERATOR.sub("", line).strip() for line in completion.split("\n"))
    return [line for line in lines if line]


def passages_to_set(passages: list[dict], name: str, prefix: str, arm: str, split: str,
                    implication_lists: int = 1) -> KnowledgeSet:
    """Documents and closed-book questions of `passages`; `arm` is `passage` or `implications`."""
    if arm not in ARMS:
        raise ValueError(f"arm {arm!r} is not one of {', '.join(ARMS)}")
    documents, questions = [], []
    for i, passage in enumerate(passages):
        title, doc_id = passage["title"].strip(), f"{prefix}{i:04d}"
        documents.append({"id": doc_id, "title": title, "text": f"{title}\n{passage['context'].strip()}"})
        if arm == "implications":
            lines = [line for c in passage.get("completions", [])[:implication_lists] for line in implication_lines(c)]
            documents += [{"id": f"{doc_id}-i{k:03d}", "title": title, "text": f"{title}\n{line}"}
                          for k, line in enumerate(lines)]
        for k, qa in enumerate(passage["questions"]):
            answer = qa["answer"] if isinstance(qa.get("answer"), str) else qa["answers"][0]
            questions.append({"id": f"{doc_id}-q{k:02d}", "doc_id": doc_id,
                              "question": f"Topic: {title}\n{qa['question'].strip()}",
                              "answers": [answer.strip()], "split": split})
    return KnowledgeSet(name, "qa", documents, questions)


def squad_sets(root: str | Path, source_passages: int, target_passages: int, oracle_passages: int,
               source_arm: str, target_arm: str, implication_lists: int) -> dict[str, KnowledgeSet]:
    """`source` (train passages, split train) and `target` (evaluation passages, split eval, plus
    `oracle_passages` further SQuAD dev passages, split oracle, for the RL-on-target upper bound).

    Counts of 0 take every passage; subsets are the first N in file order, so they are stable.
    """
    root = Path(root)
    train = _first(load_passages(root / "implications_train.json"), source_passages)
    evaluation = _first(load_passages(root / "implications_val.json"), target_passages)
    source = passages_to_set(train, "squad-source", "st", source_arm, "train", implication_lists)
    target = passages_to_set(evaluation, "squad-target", "sv", target_arm, "eval", implication_lists)
    if oracle_passages:
        taken = {p["context"].strip() for p in load_passages(root / "implications_val.json")}
        extra = [p for p in load_passages(root / "squad_val.json") if p["context"].strip() not in taken]
        oracle = passages_to_set(extra[:oracle_passages], "squad-oracle", "so", "passage", "oracle")
        target = KnowledgeSet(target.name, "qa", target.documents + oracle.documents,
                              target.questions + oracle.questions)
    return {"source": source, "target": target}


def _first(rows: list, n: int) -> list:
    return rows[:n] if n else rows
