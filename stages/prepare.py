"""DVC stage `prepare`: build the knowledge sets of `prepare.source` (the synthetic world by default,
or SQuAD, LooGLE, ToolBench) and write one knowledge set per population.

Each set is checked against its data contract (Great Expectations) before it is written.
"""

import json

from past import layout
from past.files import atomic_dir
from past.knowledge.format import write_knowledge_set
from past.knowledge.sources import SPLITS, knowledge_sets
from past.stage import Params, stage


@stage
def main(params: Params) -> None:
    sets, vocabulary = knowledge_sets(params)
    with atomic_dir(layout.WORLD) as out:
        for name, knowledge in sets.items():
            write_knowledge_set(out / name, knowledge, splits=SPLITS[name])
            print(f"prepare: {name}: {len(knowledge.documents)} documents, {len(knowledge.questions)} questions")
        (out / layout.VOCABULARY.name).write_text(json.dumps(vocabulary) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
