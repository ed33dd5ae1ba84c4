"""DVC stage `prepare`: build the knowledge world and write one knowledge set per population.

Each set is checked against its data contract (Great Expectations) before it is written.
"""

import json

from past import layout
from past.jsonl import atomic_dir
from past.knowledge.format import write_knowledge_set
from past.knowledge.world import build_world, world_knowledge_sets
from past.stage import Params, stage

SPLITS = {"p0": ["train"], "source": ["train"], "target": ["oracle", "eval"]}


@stage
def main(params: Params) -> None:
    world = build_world(params.prepare.world, params.seed)
    sets = world_knowledge_sets(world, params.prepare.world, params.seed)
    with atomic_dir(layout.WORLD) as out:
        for name, knowledge in sets.items():
            write_knowledge_set(out / name, knowledge, splits=SPLITS[name])
            print(f"prepare: {name}: {len(knowledge.documents)} documents, {len(knowledge.questions)} questions")
        (out / layout.VOCABULARY.name).write_text(json.dumps(world.vocabulary()) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
