"""DVC stage `inject`: theta_final = theta_sft_T + lambda * v, saved as a loadable model (no RL on T)."""

from past import steps
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    steps.inject(PIPELINE.target_sft, PIPELINE.skill, params.inject.lam, PIPELINE.past,
                 card={"target_sft": str(PIPELINE.target_sft), "skill": str(PIPELINE.skill)})


if __name__ == "__main__":
    main()
