"""DVC stage `evaluate`: closed-book exact match, F1 and answer-contained on the target's evaluation questions.

Compared: the base; target SFT only; PaST at the configured lambda; a lambda sweep; the oracle (RL on
target questions, what PaST saves); and the control base + lambda v (the skill without the knowledge).
"""

from past import layout
from past.config import METRICS
from past.evaluation.backends import closed_book_eval, judge_for
from past.evaluation.plots import plot_lambda_sweep
from past.files import write_json_atomic, write_text_atomic
from past.knowledge.format import read_knowledge_set
from past.modeling import load_model, load_tokenizer
from past.skills import SkillVector
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    target = read_knowledge_set(layout.TARGET)
    questions = target.questions_in("eval")
    tokenizer = load_tokenizer(layout.TARGET_SFT)
    skill = SkillVector.load(layout.SKILL)
    lam = params.inject.lam

    judge = judge_for(params)

    def score(model, name):  # a loaded model or a saved folder, through evaluate.backend (hf or vllm)
        return closed_book_eval(model, tokenizer, questions, params, desc=name, judge=judge, tools=target.tools)

    models = {"base": layout.BASE, "target_sft": layout.TARGET_SFT, "past": layout.PAST, "oracle": layout.ORACLE}
    scores = {name: score(folder, name) for name, folder in models.items()}
    scores["control"] = score(skill.apply_to(load_model(layout.BASE), lam), "control")

    sweep, model, applied = [], load_model(layout.TARGET_SFT), 0.0
    for value in sorted(params.evaluate.lambdas):
        skill.apply_to(model, value - applied)  # step the same weights along v instead of reloading
        applied = value
        sweep.append({"lambda": value, **_rounded(score(model, f"lambda={value}"))})

    metric = params.evaluate.metric
    head = {name: s[metric] for name, s in scores.items()}
    write_json_atomic(layout.METRICS / "eval.json", {
        "lambda": lam,
        "questions": len(questions),
        **{key: {name: round(s[key], 4) for name, s in scores.items()} for key in METRICS if key in scores["base"]},
        "metric": metric,
        "past_gain_over_target_sft": round(head["past"] - head["target_sft"], 4),
        "past_share_of_oracle": round(head["past"] / head["oracle"], 4) if head["oracle"] else None,
    })
    columns = [key for key in METRICS if key in sweep[0]]
    write_text_atomic(layout.PLOTS / "lambda_sweep.csv", ",".join(["lambda", *columns]) + "\n" + "".join(
        ",".join(str(r[key]) for key in ["lambda", *columns]) + "\n" for r in sweep))
    plot_lambda_sweep(sweep, {"oracle (RL on target)": head["oracle"], "base": head["base"],
                              "control: base + $\\lambda$ v": head["control"]},
                      layout.PLOTS / "lambda_sweep.png", chosen_lambda=lam, metric=metric)
    for name, value in head.items():
        print(f"evaluate: {name:>10}: {metric} {value:.3f}")


def _rounded(scores: dict) -> dict:
    return {key: round(scores[key], 4) for key in METRICS if key in scores}


if __name__ == "__main__":
    main()
