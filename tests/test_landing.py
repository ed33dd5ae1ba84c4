"""The landing folder: complete drops only, content hashes, confinement, contract reports naming rows."""

import json
import os
import time

import pytest

from past.contracts import ContractViolation
from past.errors import DataError
from past.knowledge.format import KnowledgeSet, content_hash, write_knowledge_set
from past.continual.landing import Drop, DropNotReady, LandingError, Pending, drop_folder, inspect_drop, load_drop, scan

DOCS = [{"id": "d1", "title": "ann", "text": "ann was born in kelm ."},
        {"id": "d2", "title": "bob", "text": "bob was born in tras ."}]
QUESTIONS = [{"id": "q1", "doc_id": "d1", "question": "where was ann born ?", "answers": ["kelm"], "split": "eval"},
             {"id": "q2", "doc_id": "d2", "question": "where was bob born ?", "answers": ["tras"], "split": "eval"}]


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def raw_drop(landing, name, docs=DOCS, questions=QUESTIONS, marker="_READY"):
    folder = landing / name
    folder.mkdir(parents=True)
    (folder / "documents.jsonl").write_text(docs if isinstance(docs, str) else jsonl(docs))
    if questions is not None:
        (folder / "questions.jsonl").write_text(jsonl(questions))
    if marker:
        (folder / marker).write_text("")
    return folder


def test_only_drops_with_a_marker_are_complete(tmp_path):
    raw_drop(tmp_path, "copying", marker=None)
    raw_drop(tmp_path, "ready")
    write_knowledge_set(tmp_path / "with-manifest", KnowledgeSet("x", "qa", DOCS, QUESTIONS))
    (tmp_path / ".hidden-copy").mkdir()
    drops, pending = scan(tmp_path)
    assert sorted(d.name for d in drops) == ["ready", "with-manifest"]
    assert [(p.name, p.reason) for p in pending] == [("copying", "no manifest.json or _READY yet")]


def test_content_hash_is_the_knowledge_format_hash_and_ignores_names_and_markers(tmp_path):
    folder = write_knowledge_set(tmp_path / "a", KnowledgeSet("x", "qa", DOCS, QUESTIONS))
    raw_drop(tmp_path, "b")
    a, b = inspect_drop(tmp_path, "a"), inspect_drop(tmp_path, "b")
    assert a.hash == content_hash(folder)
    assert a.hash == b.hash  # same files under another name and marker: the same drop
    (tmp_path / "b" / "documents.jsonl").write_text(jsonl(DOCS[:1]))
    assert inspect_drop(tmp_path, "b").hash != a.hash


def test_young_files_wait_to_settle(tmp_path):
    raw_drop(tmp_path, "fresh")
    result = inspect_drop(tmp_path, "fresh", settle_seconds=30)
    assert isinstance(result, Pending) and result.reason.startswith("settling")
    later = inspect_drop(tmp_path, "fresh", settle_seconds=30, now=time.time() + 31)
    assert isinstance(later, Drop)


def test_manifest_copied_before_its_files_waits_then_is_rejected(tmp_path):
    folder = write_knowledge_set(tmp_path / "m", KnowledgeSet("x", "qa", DOCS, QUESTIONS))
    (folder / "documents.jsonl").write_text(jsonl(DOCS[:1]))  # half-copied: does not match the manifest
    pending = inspect_drop(tmp_path, "m")
    assert isinstance(pending, Pending) and "documents.jsonl" in pending.reason
    drop = inspect_drop(tmp_path, "m", now=time.time() + 120)  # it stays inconsistent: announce, let adapt refuse
    with pytest.raises(DataError, match="documents.jsonl: sha256 .* does not match the manifest"):
        load_drop(drop)


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "", ".hidden", "_tmp", "/abs"])
def test_names_that_leave_the_landing_folder_are_refused(tmp_path, name):
    with pytest.raises(LandingError):
        drop_folder(tmp_path, name)


def test_symlinked_drop_and_symlinked_files_are_refused(tmp_path):
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    landing.mkdir()
    raw_drop(outside, "secret")
    os.symlink(outside / "secret", landing / "link")
    with pytest.raises(LandingError, match="symlink"):
        drop_folder(landing, "link")
    drops, pending = scan(landing)
    assert not drops and "symlink" in pending[0].reason

    folder = raw_drop(landing, "sneaky", questions=None)
    os.symlink(outside / "secret" / "questions.jsonl", folder / "questions.jsonl")
    drop = inspect_drop(landing, "sneaky")
    assert drop.unsafe == ["questions.jsonl (symlink)"] and "questions.jsonl" not in drop.files
    with pytest.raises(DataError, match="refused entries"):
        load_drop(drop)


def test_missing_drop_is_not_ready_only_while_incomplete(tmp_path):
    with pytest.raises(LandingError, match="no such drop"):
        drop_folder(tmp_path, "nothing")
    assert issubclass(DropNotReady, LandingError)


@pytest.mark.parametrize("docs, expectation, rows", [
    ([{"id": "d1", "text": "x"}], "expect_table_columns_to_match_set", []),                      # missing field
    (DOCS + [{"id": "d3", "title": "cy", "text": "  "}], "expect_column_values_to_match_regex", [3]),  # empty doc
    (DOCS + [{"id": "d1", "title": "cy", "text": "cy was born in kelm ."}], "expect_column_values_to_be_unique",
     [1, 3]),                                                                                      # duplicate ids
])
def test_contract_failures_name_file_expectation_and_rows(tmp_path, docs, expectation, rows):
    raw_drop(tmp_path, "bad", docs=docs, questions=None)
    with pytest.raises(ContractViolation) as err:
        load_drop(inspect_drop(tmp_path, "bad"))
    assert err.value.file == str(tmp_path / "bad" / "documents.jsonl")
    failure = next(f for f in err.value.failures if f.expectation == expectation)
    assert failure.rows == rows


def test_non_utf8_names_file_and_row(tmp_path):
    folder = raw_drop(tmp_path, "latin1", docs=jsonl(DOCS), questions=None)
    with open(folder / "documents.jsonl", "ab") as handle:
        handle.write('{"id": "d3", "title": "zoé", "text": "zoé"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1/documents.jsonl: row 3: not valid UTF-8"):
        load_drop(inspect_drop(tmp_path, "latin1"))


def test_questions_must_point_at_documents_of_the_drop(tmp_path):
    questions = QUESTIONS + [{"id": "q3", "doc_id": "d9", "question": "who ?", "answers": ["x"], "split": "eval"}]
    raw_drop(tmp_path, "orphan", questions=questions)
    with pytest.raises(ContractViolation) as err:
        load_drop(inspect_drop(tmp_path, "orphan"))
    assert err.value.file.endswith("orphan/questions.jsonl")
    assert next(f for f in err.value.failures if f.column == "doc_id").rows == [3]


def test_files_changed_after_announcement_are_refused(tmp_path):
    raw_drop(tmp_path, "moving")
    drop = inspect_drop(tmp_path, "moving")
    (tmp_path / "moving" / "documents.jsonl").write_text(jsonl(DOCS[:1]))
    with pytest.raises(DataError, match="changed since the drop was announced"):
        load_drop(drop)


@pytest.mark.reliability(11, 'a drop holding `evil.pkl`', 'refused naming the file; corrected, adapted without force')
def test_stray_files_and_a_wrong_manifest_are_packaging_errors(tmp_path):
    from past.continual.landing import PackagingError

    folder = raw_drop(tmp_path, "stray")
    (folder / "model.pkl").write_bytes(b"\x80\x04.")
    drop = inspect_drop(tmp_path, "stray")
    assert drop.unsafe == ["model.pkl (not part of a drop)"] and "model.pkl" not in drop.files
    with pytest.raises(PackagingError, match=r"refused entries \['model.pkl \(not part of a drop\)'\]"):
        load_drop(drop)
    folder = write_knowledge_set(tmp_path / "m", KnowledgeSet("x", "qa", DOCS, QUESTIONS))
    (folder / "documents.jsonl").write_text(jsonl(DOCS[:1]))
    with pytest.raises(PackagingError, match="does not match the manifest"):
        load_drop(inspect_drop(tmp_path, "m", now=time.time() + 120))


@pytest.mark.reliability(12, 'a drop with one 50 MB document', 'refused naming row and knob, before SFT')
def test_size_limits_name_the_row_and_the_knob(tmp_path):
    big = [dict(DOCS[0]), {**DOCS[1], "text": "word " * 60_000}]
    write_knowledge_set(tmp_path / "big", KnowledgeSet("x", "qa", big, QUESTIONS))
    drop = inspect_drop(tmp_path, "big")
    with pytest.raises(DataError, match=r"documents.jsonl: row 2 \(id .*\): 300,000 characters, over "
                                        r"adapt.max_document_chars = 200,000"):
        load_drop(drop, max_document_chars=200_000)
    with pytest.raises(DataError, match=r"0.3 MB of data, over adapt.max_drop_mb = 0.1"):
        load_drop(drop, max_drop_mb=0.1)
    assert len(load_drop(drop, max_document_chars=400_000).documents) == 2  # within the limits: read as always
