"""DVC stage `oracle`: GRPO on the target's oracle questions from target SFT: the RL that PaST saves."""

from past import steps
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    steps.oracle(params, PIPELINE.target_sft, read_knowledge_set(PIPELINE.target), PIPELINE.oracle,
                 steps.training_run(params, work=PIPELINE.work("oracle"), live=PIPELINE.live("oracle")))


if __name__ == "__main__":
    main()
