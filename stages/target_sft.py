"""DVC stage `target_sft`: lightweight SFT of the base on the target's new documents only."""

from past import layout
from past.knowledge.format import read_knowledge_set
from past.stage import Params, stage
from past.training.sft import finetune_folder


@stage
def main(params: Params) -> None:
    texts = [d["text"] for d in read_knowledge_set(layout.TARGET).documents]
    finetune_folder(layout.BASE, texts, params.target_sft, params.seed, layout.TARGET_SFT)


if __name__ == "__main__":
    main()
