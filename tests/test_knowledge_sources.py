"""Knowledge adapters (SQuAD/SEAL, LooGLE, ToolBench) into the one knowledge format, and `prepare.source`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from past.config import ConfigError, load_params, validate_params
from past.errors import DataError
from past.evaluation.metrics import score_answers
from past.knowledge.format import read_knowledge_set, split_by_title, write_knowledge_set
from past.knowledge.loogle import chunk_words, loogle_sets, qa_pairs
from past.knowledge.squad import implication_lines, load_passages, passages_to_set, squad_sets
from past.knowledge.toolbench import call_success, function_name, parse_call, toolbench_sets
from past.training.rewards import reward_function

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
SEAL = ROOT.parent / "shared/data/squad-seal"


def test_squad_arms_passage_and_implications():
    passages = load_passages(FIXTURES / "squad_seal_sample.json")
    plain = passages_to_set(passages, "t", "sv", "passage", "eval")
    assert [d["id"] for d in plain.documents] == ["sv0000", "sv0001"]
    assert plain.documents[0]["text"].startswith("Vorn Bridge\nThe Vorn Bridge was opened in 1904")
    assert plain.questions[0] == {"id": "sv0000-q00", "doc_id": "sv0000", "answers": ["Ada Kelm"], "split": "eval",
                                  "question": "Topic: Vorn Bridge\nWho opened the Vorn Bridge?"}
    rich = passages_to_set(passages, "t", "sv", "implications", "eval", implication_lists=1)
    # passage + 3 lines (blank line dropped) for the first, passage + 2 lines for the second
    assert len(rich.documents) == 2 + 3 + 2
    assert rich.documents[1] == {"id": "sv0000-i000", "title": "Vorn Bridge",
                                 "text": "Vorn Bridge\nThe Vorn Bridge opened in 1904."}
    assert len(passages_to_set(passages, "t", "sv", "implications", "eval", implication_lists=2).documents) == 9
    assert rich.questions == plain.questions
    assert implication_lines("1) a\n- b\n\n  3. c ") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="arm"):
        passages_to_set(passages, "t", "sv", "summary", "eval")


@pytest.mark.skipif(not SEAL.exists(), reason=f"the SEAL SQuAD files are not at {SEAL}")
def test_squad_seal_protocol_counts_on_the_real_files():
    sets = squad_sets(SEAL, 0, 0, 3, "implications", "passage", 1)
    source, target = sets["source"], sets["target"]
    assert len(source.questions) == 467 and {q["split"] for q in source.questions} == {"train"}
    assert len(target.questions_in("eval")) == 974
    assert len({q["doc_id"] for q in target.questions_in("eval")}) == 200
    assert len([d for d in target.documents if d["id"].startswith("sv")]) == 200  # passage arm: one each
    oracle_docs = {q["doc_id"] for q in target.questions_in("oracle")}
    assert len(oracle_docs) == 3 and all(d.startswith("so") for d in oracle_docs)
    assert len([d for d in source.documents if "-i" not in d["id"]]) == 100


def test_loogle_chunks_and_points_questions_at_their_evidence(tmp_path):
    assert chunk_words("a b c d e f g", 3, 1) == [(0, "a b c"), (2, "c d e"), (4, "e f g")]
    with pytest.raises(ValueError):
        chunk_words("a b", 2, 2)
    sets = loogle_sets(FIXTURES / "loogle_longdep_sample.jsonl", source=2, target=1, oracle=1, chunk_size=128,
                       overlap=16)
    source, target = sets["source"], sets["target"]
    first = [d for d in source.documents if d["id"].startswith("lg0000")]
    assert len(first) == 6  # 606 words in windows of 128 stepping 112
    assert all(d["text"].startswith("Orlen Treaty\n") and len(d["text"].split()) <= 130 for d in first)
    signed, where = source.questions[:2]
    assert signed["answers"] == ["Mara Vell"] and signed["question"] == "Topic: Orlen Treaty\nWho signed the treaty of Orlen?"
    assert signed["doc_id"] == "lg0000-c002"  # the evidence starts at word 300: third chunk (224..351)
    assert "Mara Vell" in next(d["text"] for d in first if d["id"] == signed["doc_id"])
    assert where["doc_id"] == "lg0000-c000"  # evidence not found: first chunk
    assert [q["split"] for q in target.questions] == ["eval", "oracle"]
    assert [q["answers"] for q in target.questions] == [["a river town"], ["nine days"]]
    for name, ks in sets.items():
        write_knowledge_set(tmp_path / name, ks, splits=["train", "eval", "oracle"])
    with pytest.raises(DataError, match="qa_pairs"):
        qa_pairs({"qa_pairs": "[{'Q': unparsable"}, "row 9")
    with pytest.raises(DataError, match="fewer than"):
        loogle_sets(FIXTURES / "loogle_longdep_sample.jsonl", 3, 1, 1, 128, 16)


def test_toolbench_closed_book_tool_use(tmp_path):
    sets = toolbench_sets(FIXTURES / "toolbench_G1_sample.json", source=2, target=1, oracle=1)
    source, target = sets["source"], sets["target"]
    assert source.kind == "tool"
    assert [t["name"] for t in source.tools] == ["current_weather_for_sky_cast", "daily_forecast_for_sky_cast",
                                                 "search_songs_for_tune_finder"]
    weather = source.tools[0]
    assert weather["parameters"]["required"] == ["city"] and set(weather["parameters"]["properties"]) == {"city", "units"}
    assert "city (string, required): city name" in source.documents[0]["text"]
    assert source.questions[1]["question"] == "Find me songs called Blue Moon."
    # query 13 uses an API the source documents: left out of the target
    assert [(q["answers"], q["split"]) for q in target.questions] == [(["convert_for_fx_rates"], "eval"),
                                                                     (["quote_for_ticker_pro"], "oracle")]
    tools = {t["name"]: t for t in target.tools}
    good = 'convert_for_fx_rates(from="EUR", to="USD", amount=100)'
    assert parse_call("Sure: " + good + " done") == ("convert_for_fx_rates", {"from": "EUR", "to": "USD", "amount": 100})
    assert call_success(good, ["convert_for_fx_rates"], tools) == 1.0
    assert call_success('{"name": "convert_for_fx_rates", "arguments": {"from": "EUR", "to": "USD", "amount": 1}}',
                        ["convert_for_fx_rates"], tools) == 1.0
    assert call_success('convert_for_fx_rates(from="EUR", amount=100)', ["convert_for_fx_rates"], tools) == 0.0
    assert call_success(good.replace("amount", "sum"), ["convert_for_fx_rates"], tools) == 0.0
    assert call_success('quote_for_ticker_pro(symbol="ACME")', ["convert_for_fx_rates"], tools) == 0.0
    assert call_success("I cannot help", ["convert_for_fx_rates"], tools) == 0.0
    assert function_name("Sky Cast", "Current Weather") == "current_weather_for_sky_cast"
    # the same judgement as a GRPO reward and as an evaluation metric
    reward = reward_function("call_success", target.tools)
    assert reward([good, [{"role": "assistant", "content": "quote_for_ticker_pro()"}]],
                  [["convert_for_fx_rates"], ["quote_for_ticker_pro"]]) == [1.0, 0.0]  # symbol is required
    with pytest.raises(ValueError, match="needs the knowledge set's tools"):
        reward_function("call_success")
    scores = score_answers([good, "no call"], target.questions, target.tools)
    assert scores["call_success"] == 0.5 and scores["exact_match"] == 0.0
    assert split_by_title(source, 2)[1].tools == source.tools
    write_knowledge_set(tmp_path / "t", target, splits=["eval", "oracle"])
    again = read_knowledge_set(tmp_path / "t")
    assert again.tools == target.tools and again.kind == "tool"
    manifest = json.loads((tmp_path / "t/manifest.json").read_text())
    assert set(manifest["files"]) == {"documents.jsonl", "questions.jsonl", "tools.jsonl"}


def test_prepare_source_is_checked_and_the_squad_stage_writes_all_sets(tmp_path):
    with pytest.raises(ConfigError, match="prepare.source: 'wiki' is not one of world, squad, loogle, toolbench"):
        validate_params({"prepare": {"source": "wiki"}})
    with pytest.raises(ConfigError, match="prepare.squad.target_documents"):
        validate_params({"prepare": {"squad": {"target_documents": "summary"}}})
    assert load_params(ROOT / "params.yaml").prepare.source == "world"
    root = tmp_path / "seal"
    root.mkdir()
    sample = (FIXTURES / "squad_seal_sample.json").read_text()
    (root / "implications_train.json").write_text(sample)
    (root / "implications_val.json").write_text(sample)
    extra = json.loads(sample)
    extra[0]["context"] = "A different passage about the Vorn ferry."
    (root / "squad_val.json").write_text(json.dumps(extra))
    params = {"prepare": {"source": "squad", "squad": {"root": str(root), "oracle_passages": 1,
                                                        "target_documents": "passage"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, str(ROOT / "stages/prepare.py")], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    target = read_knowledge_set(tmp_path / "data/world/target", validate=True)
    assert len(target.questions_in("eval")) == 3 and len(target.questions_in("oracle")) == 2
    assert len(target.documents) == 3  # passage arm: two passages + one oracle passage
    assert len(read_knowledge_set(tmp_path / "data/world/source").documents) == 2 + 5
    assert (tmp_path / "data/world/p0/manifest.json").exists()
    assert "Vorn" in json.loads((tmp_path / "data/world/vocabulary.json").read_text())


@pytest.mark.parametrize("preset", sorted(p.name for p in (ROOT / "presets").glob("*.yaml")))
def test_every_preset_is_a_valid_params_override(preset):
    from past.pipeline_repo import deep_merge

    raw = deep_merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                     yaml.safe_load((ROOT / "presets" / preset).read_text()))
    params = validate_params(raw)
    assert params.base.model != "tiny"  # a preset is for a real model (on a benchmark or on the embedded world)
    assert params.chat in ("on", "off")  # quoted in YAML: a bare on/off would be a boolean and fail to parse
