"""DVC stage `target_sft`: lightweight SFT of the base on the target's new documents only."""

from past import steps
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    target = read_knowledge_set(PIPELINE.target)
    steps.target_sft(params, PIPELINE.base, target, PIPELINE.target_sft,
                     steps.training_run(params, work=PIPELINE.work("target_sft"), live=PIPELINE.live("target_sft")))


if __name__ == "__main__":
    main()
