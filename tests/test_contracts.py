"""Data contracts with Great Expectations: violations name the file, the expectation and rows."""

import json

import pytest

from past.contracts import ContractViolation, validate_documents, validate_questions
from past.errors import DataError
from past.jsonl import read_jsonl
from past.knowledge.format import KnowledgeSet, read_knowledge_set, split_by_title, write_knowledge_set

DOCS = [{"id": "d1", "title": "ann", "text": "ann was born in kelm ."},
        {"id": "d2", "title": "bob", "text": "bob was born in tras ."}]
QUESTIONS = [{"id": "q1", "doc_id": "d1", "question": "where was ann born ?", "answers": ["kelm"], "split": "eval"},
             {"id": "q2", "doc_id": "d2", "question": "where was bob born ?", "answers": ["tras"], "split": "eval"}]


def test_valid_data_passes():
    validate_documents(DOCS, "documents.jsonl")
    validate_questions(QUESTIONS, "questions.jsonl", ["d1", "d2"], splits=["eval"])


def test_duplicate_ids_and_empty_text_are_named_with_rows():
    docs = DOCS + [{"id": "d1", "title": "cy", "text": "   "}]
    with pytest.raises(ContractViolation) as err:
        validate_documents(docs, "drop/documents.jsonl")
    message = str(err.value)
    assert message.startswith("drop/documents.jsonl: data contract violated (2 expectation(s) failed)")
    kinds = {f.expectation: f for f in err.value.failures}
    assert kinds["expect_column_values_to_be_unique"].rows == [1, 3]
    assert kinds["expect_column_values_to_match_regex"].rows == [3]


def test_missing_field_is_reported():
    docs = [{"id": "d1", "text": "x"}]
    with pytest.raises(ContractViolation) as err:
        validate_documents(docs, "documents.jsonl")
    assert "expect_table_columns_to_match_set" in str(err.value)
    assert any(f.column == "title" for f in err.value.failures)


def test_questions_need_known_documents_and_non_empty_answers():
    bad = [dict(QUESTIONS[0], doc_id="d9"), dict(QUESTIONS[1], answers=[]), dict(QUESTIONS[1], id="q3", split="x")]
    with pytest.raises(ContractViolation) as err:
        validate_questions(bad, "questions.jsonl", ["d1", "d2"], splits=["eval"])
    failures = {(f.expectation, f.column): f.rows for f in err.value.failures}
    assert failures[("expect_column_values_to_be_in_set", "doc_id")] == [1]
    assert failures[("expect_column_values_to_be_in_set", "answers_ok")] == [2]
    assert failures[("expect_column_values_to_be_in_set", "split")] == [3]


def test_empty_file_is_a_violation():
    with pytest.raises(ContractViolation, match="row_count"):
        validate_documents([], "documents.jsonl")


def test_non_utf8_and_bad_json_name_file_and_row(tmp_path):
    path = tmp_path / "documents.jsonl"
    path.write_bytes(b'{"id": "d1"}\n{"id": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"documents.jsonl: row 2: not valid UTF-8"):
        read_jsonl(path)
    path.write_text('{"id": "d1"}\n{"id": \n')
    with pytest.raises(DataError, match=r"row 2: not valid JSON"):
        read_jsonl(path)


def test_knowledge_set_round_trip_checks_hashes_and_refuses_bad_data(tmp_path):
    folder = tmp_path / "set"
    write_knowledge_set(folder, KnowledgeSet("demo", "qa", DOCS, QUESTIONS))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["documents"] == 2 and set(manifest["files"]) == {"documents.jsonl", "questions.jsonl"}
    assert read_knowledge_set(folder).questions == QUESTIONS

    with pytest.raises(ContractViolation):
        write_knowledge_set(folder, KnowledgeSet("demo", "qa", DOCS + DOCS, QUESTIONS))
    assert read_knowledge_set(folder).documents == DOCS  # the good set is untouched

    (folder / "documents.jsonl").write_text("tampered\n")
    with pytest.raises(DataError, match="does not match the manifest"):
        read_knowledge_set(folder)


def test_split_by_title_gives_disjoint_subjects():
    docs = [{"id": f"d{i}", "title": f"t{i // 2}", "text": "x"} for i in range(8)]
    questions = [{"id": f"q{i}", "doc_id": f"d{i}", "question": "?", "answers": ["a"], "split": "train"}
                 for i in range(8)]
    first, second = split_by_title(KnowledgeSet("s", "qa", docs, questions), 2)
    assert {d["title"] for d in first.documents} == {"t0", "t1"}
    assert {d["title"] for d in second.documents} == {"t2", "t3"}
    assert [q["id"] for q in second.questions] == ["q4", "q5", "q6", "q7"]
    with pytest.raises(ValueError, match="cannot split 4 subjects into 5"):
        split_by_title(KnowledgeSet("s", "qa", docs, questions), 5)
