"""Data contracts: Great Expectations suites for each kind of knowledge file.

Every dataset is validated before it is written (by `prepare`) and before it is trained on (by the
flows). A violation raises ContractViolation with a report naming the file, each failed expectation
and example rows, so nothing downstream ever runs on bad data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from past.errors import Refusal

ROW = "row"  # 1-based line number in the JSONL file, carried as a column so failures can name rows
ANSWERS_OK = "answers_ok"  # derived: answers is a non-empty list of non-empty strings (GX can't look inside lists)
EXAMPLES = 5


class ContractViolation(Refusal):
    """A dataset broke its contract; `failures` holds one entry per failed expectation."""

    def __init__(self, file: str, failures: list["Failure"]):
        self.file = file
        self.failures = failures
        lines = [f"{file}: data contract violated ({len(failures)} expectation(s) failed)"]
        lines += [f"  - {f}" for f in failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Failure:
    expectation: str
    column: str | None
    unexpected_count: int
    rows: list[int]
    values: list

    def __str__(self) -> str:
        where = f" on column '{self.column}'" if self.column else ""
        detail = f": {self.unexpected_count} row(s), e.g. rows {self.rows} values {self.values}" if self.rows else ""
        return f"{self.expectation}{where}{detail}"

    def as_dict(self) -> dict:
        return {"expectation": self.expectation, "column": self.column,
                "unexpected_count": self.unexpected_count, "rows": self.rows, "values": self.values}


def document_expectations(gx) -> list:
    E = gx.expectations
    return [
        E.ExpectTableColumnsToMatchSet(column_set=["id", "title", "text", ROW], exact_match=True),
        E.ExpectColumnValuesToNotBeNull(column="id"),
        E.ExpectColumnValuesToBeUnique(column="id"),
        E.ExpectColumnValuesToNotBeNull(column="title"),
        E.ExpectColumnValuesToNotBeNull(column="text"),
        E.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S"),
    ]


def question_expectations(gx, doc_ids: list[str], splits: list[str] | None) -> list:
    E = gx.expectations
    checks = [
        E.ExpectTableColumnsToMatchSet(column_set=["id", "doc_id", "question", "answers", "split", ROW, ANSWERS_OK],
                                       exact_match=True),
        E.ExpectColumnValuesToNotBeNull(column="id"),
        E.ExpectColumnValuesToBeUnique(column="id"),
        E.ExpectColumnValuesToMatchRegex(column="question", regex=r"\S"),
        E.ExpectColumnValuesToBeInSet(column="doc_id", value_set=doc_ids),
        E.ExpectColumnValuesToBeInSet(column=ANSWERS_OK, value_set=[True]),
    ]
    if splits is not None:
        checks.append(E.ExpectColumnValuesToBeInSet(column="split", value_set=splits))
    return checks


def validate_documents(rows: list[dict], file: str) -> None:
    _validate(_frame(rows), file, lambda gx: document_expectations(gx))


def validate_questions(rows: list[dict], file: str, doc_ids: list[str], splits: list[str] | None = None) -> None:
    frame = _frame(rows)
    frame[ANSWERS_OK] = frame["answers"].map(_answers_ok) if "answers" in frame else False
    _validate(frame, file, lambda gx: question_expectations(gx, sorted(set(doc_ids)), splits))


def _answers_ok(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(a, str) and a.strip() for a in value)


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame[ROW] = range(1, len(frame) + 1)
    return frame


def _validate(frame: pd.DataFrame, file: str, expectations) -> None:
    if len(frame) == 0:
        raise ContractViolation(file, [Failure("expect_table_row_count_to_be_at_least_1", None, 0, [], [])])
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("past")
    batch = source.add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name=f"past:{file}")
    for expectation in expectations(gx):
        suite.add_expectation(expectation)
    result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                  "unexpected_index_column_names": [ROW]})
    failures = [_failure(r) for r in result.results if not r.success]
    if failures:
        raise ContractViolation(file, failures)


def _failure(result) -> Failure:
    config = result.expectation_config
    details = result.result or {}
    rows = [i[ROW] if isinstance(i, dict) else i for i in (details.get("unexpected_index_list") or [])]
    values = details.get("partial_unexpected_list") or []
    if config.type == "expect_table_columns_to_match_set":
        observed = [c for c in details.get("observed_value", []) if c not in (ROW, ANSWERS_OK)]
        return Failure(config.type, None, 0, [], [f"columns {sorted(observed)}"])
    return Failure(config.type, config.kwargs.get("column"), int(details.get("unexpected_count") or len(rows)),
                   [int(r) for r in rows[:EXAMPLES]], [_short(v) for v in values[:EXAMPLES]])


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _gx():
    # GX takes ~3 s to import and logs chatty warnings; import it only when a contract is checked
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx
