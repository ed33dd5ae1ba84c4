"""The synthetic knowledge world: seeded, disjoint populations, augmented biographies."""

import random

from past.config import WorldParams
from past.knowledge.world import ATTRIBUTES, build_world, documents_for, questions_for, render_biography

SMALL = WorldParams(p0_people=30, source_people=20, target_oracle_people=10, target_eval_people=10,
                    renders_per_person=5)


def test_same_seed_same_world_other_seed_other_world():
    a, b, c = build_world(SMALL, 1), build_world(SMALL, 1), build_world(SMALL, 2)
    assert a == b
    assert a.p0 != c.p0


def test_populations_are_disjoint_and_sized():
    world = build_world(SMALL, 0)
    groups = [world.p0, world.source, world.target_oracle, world.target_eval]
    assert [len(g) for g in groups] == [30, 20, 10, 10]
    names = [p.name for g in groups for p in g]
    assert len(set(names)) == len(names)
    assert all(set(p.facts) == set(ATTRIBUTES) for g in groups for p in g)


def test_biography_states_every_fact_with_full_name_in_each_sentence():
    world = build_world(SMALL, 0)
    person = world.source[0]
    bio = render_biography(person, random.Random(0), 4)
    sentences = [s for s in bio.split(" .") if s.strip()]
    assert len(sentences) == len(ATTRIBUTES)
    assert all(person.name in s for s in sentences)
    assert all(f" {value} " in f" {bio} " for value in person.facts.values())


def test_renders_differ_in_order_or_wording():
    world = build_world(SMALL, 0)
    docs = documents_for(world.source[:1], 8, 4, seed=0)
    assert len(docs) == 8 and len({d["id"] for d in docs}) == 8
    assert len({d["text"] for d in docs}) >= 6


def test_questions_answer_from_facts_and_all_words_are_in_vocabulary():
    world = build_world(SMALL, 0)
    questions = questions_for(world.target_eval, "eval")
    assert len(questions) == 10 * len(ATTRIBUTES)
    by_id = {q["id"]: q for q in questions}
    person = world.target_eval[3]
    assert by_id[f"{person.id}-city"]["answers"] == [person.facts["city"]]
    vocabulary = set(world.vocabulary())
    texts = [q["question"] for q in questions] + [d["text"] for d in documents_for(world.p0, 3, 4, 0)]
    assert all(w in vocabulary for t in texts for w in t.split())
