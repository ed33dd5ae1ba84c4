"""One evaluation spec for every score: what changes a score changes its key, and the flows grade as the
pipeline does (the same chat setting, the same max_new_tokens)."""

from pathlib import Path

import yaml

from chat_fixtures import CHAT, QUESTIONS, WORDS
from past.config import SFTParams, TinyModelParams, load_params, validate_params
from past.continual.adaptation import Settings, score
from past.evaluation.spec import EvalSpec
from past.modeling import build_tiny_llama, build_word_tokenizer, save_model
from past.prompting import render_prompts
from past.training.sft import run_sft

ROOT = Path(__file__).resolve().parents[1]


def test_the_key_covers_what_changes_a_score_and_only_that():
    spec = EvalSpec(prompt="question : {question} answer :")
    for change in ({"chat": "off"}, {"max_new_tokens": 3}, {"prompt": "q: {question} a:"}, {"metric": "f1"},
                   {"backend": "vllm"}, {"judge_url": "http://127.0.0.1:1/v1", "judge_model": "m"}):
        assert EvalSpec(**{**spec.__dict__, **change}).key != spec.key, change
    for change in ({"batch_size": 7}, {"vllm_args": ("--enforce-eager",)}, {"judge_cache": "elsewhere.jsonl"}):
        assert EvalSpec(**{**spec.__dict__, **change}).key == spec.key, change


def test_the_spec_is_read_from_params_as_the_pipeline_uses_them(tmp_path):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["chat"], data["evaluate"]["max_new_tokens"] = "off", 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    params = load_params(tmp_path / "params.yaml")
    spec = Settings(tmp_path / "params.yaml", params).spec
    assert (spec.chat, spec.max_new_tokens, spec.prompt) == ("off", 5, params.prompt)
    assert spec == EvalSpec.from_params(params)


def test_the_flows_grade_with_the_chat_setting_of_params(tmp_path):
    """A model that learned to answer inside its chat template: the flows' score follows `chat` in params
    (it used to grade every model through the template, whatever params said)."""
    tokenizer = build_word_tokenizer(WORDS)
    tokenizer.chat_template = CHAT
    model = build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                             tokenizer, seed=0)
    prompts = render_prompts(tokenizer, "question : {question} answer :", QUESTIONS, chat="auto")
    texts = [f"{p} {q['answers'][0]}" for p, q in zip(prompts, QUESTIONS)]
    run_sft(model, tokenizer, texts, SFTParams(steps=80, lr=1e-2, batch_size=2, warmup_ratio=0.0), seed=0)
    folder = save_model(model, tokenizer, tmp_path / "model")
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    scores = {}
    for chat in ("auto", "off"):
        data["chat"] = chat
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
        scores[chat] = score(Settings(tmp_path / "params.yaml", load_params(tmp_path / "params.yaml")),
                             str(folder), QUESTIONS)["exact_match"]
    assert scores["auto"] >= 0.5 and scores["off"] < scores["auto"], scores


def test_evaluate_tensor_parallel_size_reaches_the_vllm_command_line_and_not_the_key(tmp_path):
    from past.evaluation.backends import vllm_server

    venv = tmp_path / "venv"  # the layout vllm_python looks for; nothing is started
    (venv / "lib" / "python3.11" / "site-packages" / "vllm").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages" / "vllm" / "__init__.py").write_text("")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").write_text("")
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["evaluate"].update(backend="vllm", vllm_venv=str(venv), tensor_parallel_size=4, vllm_args=["--enforce-eager"])
    spec = EvalSpec.from_params(validate_params(data))
    command = vllm_server(tmp_path / "model", spec).command
    at = command.index("--tensor-parallel-size")
    assert command[at + 1] == "4" and command[-1] == "--enforce-eager"  # the user's flags come last: they win
    default = EvalSpec.from_params(validate_params({**data, "evaluate": {**data["evaluate"], "tensor_parallel_size": 1}}))
    assert vllm_server(tmp_path / "model", default).command[at + 1] == "1"
    assert spec.key == default.key  # the same answers on 1 GPU or 4
