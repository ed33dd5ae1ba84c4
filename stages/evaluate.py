"""DVC stage `evaluate`: closed-book exact match, F1 and answer-contained on the target's evaluation questions.

Compared: the base; target SFT only; PaST at the injected lambda (inject.lam, or the one chosen on the source's
validation questions); a lambda sweep (a report: lambda is never chosen on these questions); the oracle (RL on
target questions, what PaST saves); and the control base + lambda v (the skill without the knowledge).
"""

from past import steps
from past.config import METRICS
from past.evaluation.plots import plot_lambda_sweep
from past.evaluation.spec import EvalSpec
from past.files import write_csv_atomic, write_json_atomic
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE as P
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    lam, spec = steps.resolved_lambda(P.skill, params.inject.lam), EvalSpec.from_params(params)
    models = {"base": P.base, "target_sft": P.target_sft, "past": P.past, "oracle": P.oracle}
    result = steps.evaluate(spec, models, P.skill, lam, params.evaluate.lambdas, read_knowledge_set(P.target),
                            P.base, P.target_sft)
    scores, metric = result.scores, spec.metric
    reported = [key for key in METRICS if key in scores["base"]]
    head = {name: s[metric] for name, s in scores.items()}
    write_json_atomic(P.metrics / "eval.json", {
        "lambda": lam,
        "questions": result.questions,
        **{key: {name: round(s[key], 4) for name, s in scores.items()} for key in reported},
        "metric": metric,
        "past_gain_over_target_sft": round(head["past"] - head["target_sft"], 4),
        "past_share_of_oracle": round(head["past"] / head["oracle"], 4) if head["oracle"] else None,
    })
    # chosen_lambda on every row: dvc.yaml's lambda_sweep template draws it as a rule (one CSV, one plot)
    sweep = [{"lambda": row["lambda"], **{key: round(row[key], 4) for key in reported}, "chosen_lambda": lam}
             for row in result.sweep]
    write_csv_atomic(P.plots / "lambda_sweep.csv", sweep, ["lambda", *reported, "chosen_lambda"])
    plot_lambda_sweep(sweep, {"oracle (RL on target)": head["oracle"], "base": head["base"],
                              "control: base + $\\lambda$ v": head["control"]},
                      P.plots / "lambda_sweep.png", chosen_lambda=lam, metric=metric)
    write_json_atomic(P.metrics / "disk.json", steps.disk_usage({
        "base": P.base, "source_sft": P.source_sft, "skill_rl": P.skill_rl, "skill": P.skill,
        "target_sft": P.target_sft, "past": P.past, "oracle": P.oracle}))
    for name, value in head.items():
        print(f"evaluate: {name:>10}: {metric} {value:.3f}")


if __name__ == "__main__":
    main()
