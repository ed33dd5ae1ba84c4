"""DVC stage `prepare`: the knowledge sets of `prepare.source` (the synthetic world by default, or SQuAD,
LooGLE, ToolBench), one per population, each checked against its data contract before it is written."""

from past import steps
from past.layout import PIPELINE
from past.stage import Params, stage


@stage(torch=False)
def main(params: Params) -> None:
    steps.prepare(params, PIPELINE.world)


if __name__ == "__main__":
    main()
