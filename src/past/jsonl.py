"""JSON Lines: reading with errors that name the file and line, and rendering rows."""

from __future__ import annotations

import json
from pathlib import Path

from past.errors import DataError


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file; bad UTF-8 or JSON raises DataError naming the file and line."""
    path = Path(path)
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: row {number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: row {number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def jsonl_text(rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
