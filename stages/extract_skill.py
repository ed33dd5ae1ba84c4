"""DVC stage `extract_skill`: v = theta_rl_S - theta_sft_S, and the orthogonality diagnostic.

The paper rests on SFT and RL moving the weights in nearly orthogonal directions: cos(Delta_SFT_S, v)
is reported overall and per weight matrix, next to cos(Delta_SFT_S, Delta_SFT_T) for scale.
"""

from past import steps
from past.files import write_csv_atomic, write_json_atomic
from past.layout import PIPELINE
from past.stage import Params, stage
from past.training.refinement import last_round


@stage
def main(params: Params) -> None:
    provenance = steps.skill_provenance(params.base.model, PIPELINE.source, params.skill_rl.rounds,
                                        params.inject.lam, params.seed)
    steps.extract(PIPELINE.skill_rl, PIPELINE.skill, provenance)
    cosines = steps.orthogonality(PIPELINE.skill, last_round(PIPELINE.skill_rl).sft, PIPELINE.target_sft,
                                  PIPELINE.base)
    write_json_atomic(PIPELINE.metrics / "orthogonality.json", cosines.metrics())
    rows = cosines.rows()
    write_csv_atomic(PIPELINE.plots / "cosine_per_matrix.csv", rows, list(rows[0]))


if __name__ == "__main__":
    main()
