"""Lambda chosen on held-out source questions, never the target's: the split, the choice, and who uses it."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from past import steps
from past.config import Params, PrepareParams, validate_params
from past.errors import DataError
from past.knowledge.format import split_by_title
from past.knowledge.sources import knowledge_sets
from past.skills import SkillError, extract_skill
from past.training.refinement import RoundPair
from skills_fixtures import make_family

ROOT = Path(__file__).resolve().parents[1]


def world_sets(**prepare):
    return knowledge_sets(Params(prepare=PrepareParams(**prepare)))[0]


# ------------------------------------------------------------------------------------------ the split


def test_validation_holds_out_whole_source_people_and_keeps_their_documents():
    held, plain = world_sets(), world_sets(validation_fraction=0.0)
    source = held["source"]
    validation = source.questions_in("validation")
    people = {q["doc_id"] for q in validation}
    assert len(people) == 10 and len(validation) == 10 * 5  # 10 % of the 100 source people, every attribute
    assert not people & {q["doc_id"] for q in source.questions_in("train")}  # RL sees none of their questions
    assert source.documents == plain["source"].documents  # ... but source SFT still learns their biographies
    assert len(source.questions_in("train")) == 90 * 5
    assert [{**q, "split": "train"} for q in source.questions] == plain["source"].questions  # only labels moved
    assert held["target"] == plain["target"] and held["p0"] == plain["p0"]  # the target is not touched


@pytest.mark.parametrize("rounds", [1, 2, 3, 5])
def test_every_refinement_round_holds_validation_questions(rounds):
    source = world_sets()["source"]
    for subset in split_by_title(source, rounds):
        assert subset.questions_in("validation")
    last = split_by_title(source, rounds)[-1]
    assert steps.validation_questions(source, rounds) == last.questions_in("validation")


def test_no_validation_questions_is_refused_naming_the_knob():
    source = world_sets(validation_fraction=0.0)["source"]
    assert {q["split"] for q in source.questions} == {"train"}
    with pytest.raises(DataError, match="prepare.validation_fraction"):
        steps.validation_questions(source, 1)


# ------------------------------------------------------------------------------------------ the choice


class FakeSkill:
    """v: moves a fake model's lambda, so a fake scorer can score by lambda."""

    def apply_to(self, model, scale):
        model["lam"] += scale
        return model


def choose(monkeypatch, curve, candidates, source=None, likelihood=lambda lam: -1.0):
    """choose_lambda with the models and the scorers faked: `curve(lam)` is the score, `likelihood(lam)` the gold
    answers' log-likelihood; returns the choice and every question list the scorer was given."""
    seen = []

    def score(spec, model, questions, tokenizer=None, desc="", tools=None, judge=None):
        seen.append(questions)
        return {"exact_match": curve(round(model["lam"], 6)), "f1": 0.0, "questions": len(questions)}

    monkeypatch.setattr("past.training.refinement.skill_vector", lambda pair: FakeSkill())
    monkeypatch.setattr(steps, "score", score)
    monkeypatch.setattr(steps, "answer_likelihood",
                        lambda spec, model, questions, tokenizer: likelihood(round(model["lam"], 6)))
    monkeypatch.setattr("past.modeling.load_model", lambda folder: {"lam": 0.0})
    monkeypatch.setattr("past.modeling.load_tokenizer", lambda folder: None)
    run = steps.SkillRun(Path("skill_rl"), RoundPair(Path("sft"), Path("rl")))
    spec = steps.EvalSpec(prompt="question : {question} answer :")
    source = source or world_sets()["source"]
    return steps.choose_lambda(spec, run, source, 1, candidates), seen


def test_the_choice_scores_only_the_validation_questions(monkeypatch):
    source = world_sets()["source"]
    choice, seen = choose(monkeypatch, lambda lam: 1 - abs(lam - 1.0), [0.0, 0.5, 1.0, 2.0], source)
    assert seen and all(q == source.questions_in("validation") for q in seen)
    assert all(q["split"] == "validation" for questions in seen for q in questions)
    # what RL trained on does not move the choice: other train questions, the same scores
    changed = type(source)(source.name, source.kind, source.documents,
                           [{**q, "answers": ["zzz"]} if q["split"] == "train" else q for q in source.questions])
    again, _ = choose(monkeypatch, lambda lam: 1 - abs(lam - 1.0), [0.0, 0.5, 1.0, 2.0], changed)
    assert again == choice


def test_the_best_lambda_wins_and_is_reported_per_candidate(monkeypatch):
    choice, _ = choose(monkeypatch, lambda lam: {0.0: 0.2, 0.5: 0.5, 1.0: 0.7, 2.0: 0.4}[lam], [2.0, 0.0, 1.0, 0.5])
    assert choice.lam == 1.0 and choice.score == 0.7 and choice.metric == "exact_match" and choice.questions == 50
    assert [row["lambda"] for row in choice.scores] == [0.0, 0.5, 1.0, 2.0]
    assert choice.metrics() == {"lambda": 1.0, "metric": "exact_match", "questions": 50, "score": 0.7, "tied": 1,
                                "validation": {"0": 0.2, "0.5": 0.5, "1": 0.7, "2": 0.4},
                                "answer_loglik": {"0": -1.0, "0.5": -1.0, "1": -1.0, "2": -1.0}}
    assert choice.rows()[0] == {"lambda": 0.0, "exact_match": 0.2, "f1": 0.0, "answer_loglik": -1.0}


def test_a_saturated_tie_goes_to_the_likeliest_gold_answers(monkeypatch):
    """Exact match 1.0 at three lambdas (the 50 validation questions saturate): the log-likelihood decides, and a
    lower-scoring lambda with a higher likelihood is never chosen over the best score."""
    saturated = {0.0: 0.6, 0.25: 1.0, 0.5: 1.0, 0.75: 1.0, 1.0: 0.9}
    likelihood = {0.0: -2.0, 0.25: -0.4, 0.5: -0.1, 0.75: -0.2, 1.0: -0.01}
    choice, _ = choose(monkeypatch, saturated.get, list(saturated), likelihood=likelihood.get)
    assert choice.lam == 0.5 and choice.tied == 3 and choice.metrics()["tied"] == 3


def test_an_exact_tie_of_both_goes_to_the_smallest_lambda(monkeypatch):
    choice, _ = choose(monkeypatch, lambda lam: 0.6 if lam >= 0.5 else 0.1, [0.0, 0.5, 1.0, 2.0])
    assert choice.lam == 0.5
    choice, _ = choose(monkeypatch, lambda lam: 0.6, [-0.5, 0.5, 1.0])
    assert choice.lam == -0.5  # equal |lambda|: the smaller


@pytest.mark.parametrize("chat", [False, True])
def test_the_answer_likelihood_is_the_gold_tokens_mean_log_probability(chat):
    """Batched with right padding, it equals each question scored alone by a plain forward pass; a model
    trained to say the gold answers finds them likelier."""
    from chat_fixtures import QUESTIONS
    from past.evaluation.likelihood import answer_log_likelihood
    from past.prompting import render_prompts
    from test_chat_and_judge import tiny

    model, tokenizer = tiny(chat)
    template = "question : {question} answer :"
    batched = answer_log_likelihood(model, tokenizer, QUESTIONS, template, batch_size=8, chat="auto")
    alone = []
    for question, text in zip(QUESTIONS, render_prompts(tokenizer, template, QUESTIONS, "auto")):
        separator, special = ("", False) if chat else (" ", True)
        context = tokenizer(text, add_special_tokens=special)["input_ids"]
        ids = context + tokenizer(separator + question["answers"][0], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        log_probs = torch.log_softmax(logits, -1)
        alone.append(sum(log_probs[t - 1, ids[t]].item() for t in range(len(context), len(ids))) /
                     (len(ids) - len(context)))
    assert batched == pytest.approx(sum(alone) / len(alone), abs=1e-5)
    assert batched < 0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):  # teach it the gold answers
        for question, text in zip(QUESTIONS, render_prompts(tokenizer, template, QUESTIONS, "auto")):
            separator, special = ("", False) if chat else (" ", True)
            ids = torch.tensor([tokenizer(text, add_special_tokens=special)["input_ids"] +
                                tokenizer(separator + question["answers"][0], add_special_tokens=False)["input_ids"]])
            model.train()
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step(), optimizer.zero_grad()
    assert answer_log_likelihood(model, tokenizer, QUESTIONS, template, 8) > batched + 1.0


@pytest.mark.parametrize("data, message", [
    ({"inject": {"candidates": []}}, "inject.candidates: must not be empty"),
    ({"inject": {"candidates": [0.5, float("nan")]}}, "inject.candidates[1]: nan is not a finite number"),
    ({"inject": {"lam": "auto"}}, "inject.lam: expected a number or null, got 'auto'"),
    ({"prepare": {"validation_fraction": 0.6}}, "prepare.validation_fraction: 0.6 is above the maximum 0.5"),
])
def test_bad_values_are_refused_naming_the_key(data, message):
    with pytest.raises(Exception, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        validate_params(data)


# ------------------------------------------------------------------------------------------ who uses it


@pytest.fixture(scope="module")
def skill(tmp_path_factory):
    """A skill file whose provenance records lambda 0.75, and its family (target SFT: sft_t)."""
    models = make_family(tmp_path_factory.mktemp("family"), torch.float32)
    path = tmp_path_factory.mktemp("skill") / "skill.safetensors"
    extract_skill(models["rl_s"], models["sft_s"], path, {"recommended_lam": 0.75})
    return path, models


def test_the_recorded_lambda_is_used_unless_pinned(skill):
    path, _ = skill
    assert steps.resolved_lambda(path, None) == 0.75
    assert steps.resolved_lambda(path, 0.5) == 0.5 and steps.resolved_lambda(path, 0.0) == 0.0  # pinned wins


def test_a_skill_without_a_recorded_lambda_needs_a_pin(skill, tmp_path):
    _, models = skill
    bare = extract_skill(models["rl_s"], models["sft_s"], tmp_path / "bare.safetensors", {})
    with pytest.raises(SkillError, match="no recommended_lam.*pin inject.lam"):
        steps.resolved_lambda(bare, None)
    assert steps.resolved_lambda(bare, 1.0) == 1.0


@pytest.mark.parametrize("pinned, expected", [(None, 0.75), (1.5, 1.5)])
def test_the_inject_stage_uses_the_resolved_lambda(skill, tmp_path, monkeypatch, pinned, expected):
    path, models = skill
    (tmp_path / "models/skill").mkdir(parents=True)
    shutil.copy(path, tmp_path / "models/skill/skill.safetensors")
    shutil.copytree(models["sft_t"], tmp_path / "models/target_sft")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"inject": {"lam": pinned}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "stages"))
    sys.modules.pop("inject", None)
    import inject as stage

    stage.main("params.yaml")
    card = json.loads((tmp_path / "models/past/past_provenance.json").read_text())
    assert card["skills"][0]["lambda"] == expected
