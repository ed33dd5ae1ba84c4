"""DVC stage `evaluate`: closed-book exact match and F1 on the target's evaluation questions.

Compared: the base; target SFT only; PaST at the configured lambda; a lambda sweep; the oracle (RL on
target questions, what PaST saves); and the control base + lambda v (the skill without the knowledge).
"""

from past import layout
from past.evaluation.backends import closed_book_eval, judge_for
from past.evaluation.report import plot_lambda_sweep
from past.jsonl import write_json_atomic, write_text_atomic
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

    em = {name: s["exact_match"] for name, s in scores.items()}
    write_json_atomic(layout.METRICS / "eval.json", {
        "lambda": lam,
        "questions": len(questions),
        "exact_match": {k: round(v, 4) for k, v in em.items()},
        "f1": {name: round(s["f1"], 4) for name, s in scores.items()},
        "contained": {name: round(s["contained"], 4) for name, s in scores.items()},
        **{key: {name: round(s[key], 4) for name, s in scores.items()}
           for key in ("judge", "call_success") if key in scores["base"]},
        "past_gain_over_target_sft": round(em["past"] - em["target_sft"], 4),
        "past_share_of_oracle": round(em["past"] / em["oracle"], 4) if em["oracle"] else None,
    })
    write_text_atomic(layout.PLOTS / "lambda_sweep.csv",
                      "lambda,exact_match,f1\n" + "".join(f"{r['lambda']},{r['exact_match']},{r['f1']}\n" for r in sweep))
    plot_lambda_sweep(sweep, {"oracle (RL on target)": em["oracle"], "base": em["base"],
                              "control: base + $\\lambda$ v": em["control"]},
                      layout.PLOTS / "lambda_sweep.png", chosen_lambda=lam)
    for name, value in em.items():
        print(f"evaluate: {name:>10}: exact match {value:.3f}")


def _rounded(scores: dict) -> dict:
    return {"exact_match": round(scores["exact_match"], 4), "f1": round(scores["f1"], 4)}


if __name__ == "__main__":
    main()
