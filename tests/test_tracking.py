"""Training metrics through DVCLive (transformers' callback), a folder per stage, rounds side by side."""

import json

from past.config import GRPOParams, SFTParams, TinyModelParams
from past.modeling import build_tiny_llama, build_word_tokenizer, load_model, save_model
from past.training.arguments import TrainingRun
from past.training.grpo import run_grpo
from past.training.sft import run_sft

WORDS = "question answer : ? where was ann bob born kelm tras".split()
QUESTIONS = [{"id": "a", "question": "where was ann born ?", "answers": ["kelm"]},
             {"id": "b", "question": "where was bob born ?", "answers": ["tras"]}]


def tiny():
    tokenizer = build_word_tokenizer(WORDS)
    return build_tiny_llama(TinyModelParams(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                                            max_positions=32), tokenizer, seed=0), tokenizer


def rows(path):
    lines = path.read_text().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_sft_and_grpo_rounds_log_their_curves_without_wall_clock_figures(tmp_path):
    live = tmp_path / "dvclive/skill_rl"
    model, tokenizer = tiny()
    run = TrainingRun(live=live)
    run_sft(model, tokenizer, ["question : where was ann born ? answer : kelm"] * 4,
            SFTParams(steps=4, lr=1e-2, batch_size=2), 0, run.round(1))
    model = load_model(save_model(model, tokenizer, tmp_path / "sft"))  # beta > 0: TRL reloads it as the reference
    grpo = GRPOParams(steps=3, prompts_per_step=2, num_generations=2, max_new_tokens=2, beta=0.1)
    run_grpo(model, tokenizer, QUESTIONS, "question : {question} answer :", grpo, 0, run=run.round(2))
    plots = live / "plots/metrics"
    header, values = rows(plots / "round_2/reward.tsv")
    assert header == ["step", "reward"] and len(values) == 3  # GRPO logs every step
    assert [int(v[0]) for v in values] == sorted(int(v[0]) for v in values)  # round 2 continues the step count
    for name in ("reward_std", "completions/mean_length", "kl", "loss", "grad_norm", "learning_rate"):
        assert (plots / f"round_2/{name}.tsv").is_file(), name
    assert (plots / "round_1/loss.tsv").is_file() and (plots / "round_1/learning_rate.tsv").is_file()
    logged = {str(p.relative_to(plots)) for p in plots.rglob("*.tsv")}
    assert not {p for p in logged if "runtime" in p or "per_second" in p or "step_time" in p}, logged
    summary = json.loads((live / "metrics.json").read_text())
    assert set(summary) >= {"round_1", "round_2"} and "reward" in summary["round_2"]
    assert not list(live.rglob("dvc.yaml")) and not (live / "params.yaml").exists()  # dvc.yaml declares the folder
