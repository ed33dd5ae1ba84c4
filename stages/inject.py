"""DVC stage `inject`: theta_final = theta_sft_T + lambda * v, saved as a loadable model (no RL on T)."""

from past import layout
from past.skills import inject
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    inject(layout.TARGET_SFT, [layout.SKILL], [params.inject.lam], layout.PAST, overwrite=True,
           card={"target_sft": str(layout.TARGET_SFT), "skill": str(layout.SKILL)})


if __name__ == "__main__":
    main()
