"""DVC stage `source_sft`: SFT of the base on source documents (round 1's subset when refining)."""

from past import layout
from past.knowledge.format import read_knowledge_set, split_by_title
from past.stage import Params, stage
from past.training.sft import finetune_folder


@stage
def main(params: Params) -> None:
    first_round = split_by_title(read_knowledge_set(layout.SOURCE), params.skill_rl.rounds)[0]
    texts = [d["text"] for d in first_round.documents]
    finetune_folder(layout.BASE, texts, params.source_sft, params.seed, layout.SOURCE_SFT)


if __name__ == "__main__":
    main()
