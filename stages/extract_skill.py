"""DVC stage `extract_skill`: v = theta_rl_S - theta_sft_S, lambda chosen on held-out source questions, and the
orthogonality diagnostic.

Lambda is chosen on the source's `validation` questions (documents in source SFT, questions never in RL),
scoring sft_K + lambda v for each of `inject.candidates`, and recorded in the skill's provenance as
`recommended_lam`: the target's evaluation questions are never looked at (the evaluate stage's sweep over them
is a report). The paper rests on SFT and RL moving the weights in nearly orthogonal directions:
cos(Delta_SFT_S, v) is reported overall and per weight matrix, next to cos(Delta_SFT_S, Delta_SFT_T) for scale.
"""

from past import steps
from past.evaluation.spec import EvalSpec
from past.files import write_csv_atomic, write_json_atomic
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE
from past.stage import Params, stage
from past.training.refinement import last_round


@stage
def main(params: Params) -> None:
    source, pair = read_knowledge_set(PIPELINE.source), last_round(PIPELINE.skill_rl)
    choice = steps.choose_lambda(EvalSpec.from_params(params), PIPELINE.skill_rl, source, params.skill_rl.rounds,
                                 params.inject.candidates)
    steps.extract(PIPELINE.skill_rl, PIPELINE.skill, steps.skill_provenance(
        params.base.model, PIPELINE.source, params.skill_rl.rounds, choice.lam, params.seed))
    write_json_atomic(PIPELINE.metrics / "lambda_choice.json", choice.metrics())
    rows = choice.rows()
    write_csv_atomic(PIPELINE.plots / "lambda_validation.csv", rows, list(rows[0]))
    print(f"extract_skill: lambda {choice.lam:g} chosen on {choice.questions} validation questions "
          f"({choice.metric} {choice.score:.3f})")
    cosines = steps.orthogonality(PIPELINE.skill, pair.sft, PIPELINE.target_sft, PIPELINE.base)
    write_json_atomic(PIPELINE.metrics / "orthogonality.json", cosines.metrics())
    rows = cosines.rows()
    write_csv_atomic(PIPELINE.plots / "cosine_per_matrix.csv", rows, list(rows[0]))


if __name__ == "__main__":
    main()
