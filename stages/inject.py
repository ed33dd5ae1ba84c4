"""DVC stage `inject`: theta_final = theta_sft_T + lambda * v, saved as a loadable model (no RL on T).

Lambda: `inject.lam` when set, else the one extract_skill chose on validation questions (the skill's
provenance, `recommended_lam`)."""

from past import steps
from past.layout import PIPELINE
from past.stage import Params, stage


@stage(torch=False)
def main(params: Params) -> None:
    lam = steps.resolved_lambda(PIPELINE.skill, params.inject.lam)
    print(f"inject: lambda {lam:g} ({'inject.lam' if params.inject.lam is not None else 'chosen on validation'})")
    steps.inject(PIPELINE.target_sft, PIPELINE.skill, lam, PIPELINE.past,
                 card={"target_sft": str(PIPELINE.target_sft), "skill": str(PIPELINE.skill)})


if __name__ == "__main__":
    main()
