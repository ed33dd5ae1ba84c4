"""Knowledge drops from the embedded world: new people the pipeline's models have never seen.

A drop is what an organisation copies into the landing folder: new documents and, when it has them,
questions for evaluation. For the embedded default, new people are drawn from the world's vocabulary
(names and attribute values the tokenizer knows) with name pairs no population uses, so a drop is new
knowledge for every model of the pipeline. Drop k of a series uses its own slice of the unused names,
so the drops of one world never overlap either.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from past.config import Params, WorldParams
from past.knowledge.format import KnowledgeSet
from past.knowledge.world import ATTRIBUTES, Person, World, documents_for, questions_for


def unused_names(world: World, seed: int) -> list[tuple[str, str]]:
    """Every (first, last) pair no population of `world` uses, in a seeded order."""
    used = {(p.first, p.last) for group in (world.p0, world.source, world.target_oracle, world.target_eval)
            for p in group}
    free = [(f, l) for f in world.first_names for l in world.last_names if (f, l) not in used]
    random.Random(seed).shuffle(free)
    return free


def new_people(world: World, count: int, index: int, seed: int) -> list[Person]:
    """`count` new people for drop number `index` (0, 1, ...): disjoint from the world and other drops."""
    free = unused_names(world, seed)
    start = index * count
    if start + count > len(free):
        raise ValueError(f"the world has {len(free)} unused names: not enough for drop {index} of {count} people")
    rng = random.Random(f"{seed}:drop:{index}")
    return [Person(f"drop{index:03d}-{i:04d}", first, last, {a: rng.choice(world.values[a]) for a in ATTRIBUTES})
            for i, (first, last) in enumerate(free[start:start + count])]


def world_drop(world: World, params: WorldParams, count: int, index: int, seed: int,
               renders: int | None = None) -> KnowledgeSet:
    """A drop of `count` new people: their biographies (documents) and one question per fact (split eval)."""
    people = new_people(world, count, index, seed)
    documents = documents_for(people, renders or params.renders_per_person, params.templates_per_attribute,
                              seed + 1000 + index)
    return KnowledgeSet(f"drop-{index:03d}", "qa", documents, questions_for(people, "eval"))



def land_world_drop(folder: Path, params: Params, people: int, index: int) -> KnowledgeSet:
    """Write drop number `index` of `people` new people into `folder` (inside a landing folder) as a careful
    copy should be made: into a hidden sibling first, manifest last, then one rename, so a watcher never
    sees a half-written drop."""
    from past.knowledge.format import write_knowledge_set
    from past.knowledge.world import build_world

    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} exists: a drop is never written over")
    ks = world_drop(build_world(params.prepare.world, params.seed), params.prepare.world, people, index, params.seed)
    tmp = folder.with_name(f".{folder.name}.copying")
    write_knowledge_set(tmp, ks)
    os.replace(tmp, folder)
    return ks
