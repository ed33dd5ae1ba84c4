"""DVC stage `source_sft`: SFT of the base on source documents (round 1's subset when refining)."""

from past import steps
from past.knowledge.format import read_knowledge_set
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    steps.source_sft(params, PIPELINE.base, read_knowledge_set(PIPELINE.source), PIPELINE.source_sft,
                     steps.training_run(params, work=PIPELINE.work("source_sft"), live=PIPELINE.live("source_sft")))


if __name__ == "__main__":
    main()
