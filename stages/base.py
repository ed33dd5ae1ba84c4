"""DVC stage `base`: the base model (the embedded tiny Llama pre-trained on P0, a packaged GGUF LLM, or a hub model)."""

from past import steps
from past.layout import PIPELINE
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    steps.base(params, PIPELINE.world, PIPELINE.base, steps.training_run(params, work=PIPELINE.work("base"), live=PIPELINE.live("base")))


if __name__ == "__main__":
    main()
