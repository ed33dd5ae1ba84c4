"""The embedded default: a seeded synthetic world of fictional people and their biographies.

Each person has five single-token attributes. A biography states all five, each with one of several
templates, sentences in random order and the full name in every sentence. Many such renderings per
person are what make a stored fact *extractable* by questions later ("Physics of Language Models
3.1"); with a single fixed biography, closed-book QA transfer is near zero.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from past.config import WorldParams

ATTRIBUTES = ("city", "employer", "year", "university", "hobby")

TEMPLATES = {
    "city": ("{name} was born in {value} .", "{name} came into the world in {value} .",
             "the birthplace of {name} is {value} .", "{name} first saw the light of day in {value} ."),
    "employer": ("{name} works for {value} .", "{name} is employed by {value} .",
                 "the employer of {name} is {value} .", "{name} earns a living at {value} ."),
    "year": ("{name} was born in the year {value} .", "{name} arrived in {value} .",
             "the birth year of {name} is {value} .", "{name} celebrates a birthday from {value} ."),
    "university": ("{name} studied at {value} .", "{name} graduated from {value} .",
                   "the alma mater of {name} is {value} .", "{name} earned a degree at {value} ."),
    "hobby": ("{name} enjoys {value} .", "in free time {name} likes {value} .",
              "the favourite pastime of {name} is {value} .", "{name} spends weekends on {value} ."),
}

QUESTIONS = {
    "city": "where was {name} born ?",
    "employer": "which company does {name} work for ?",
    "year": "in which year was {name} born ?",
    "university": "which university did {name} attend ?",
    "hobby": "what is the hobby of {name} ?",
}

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "nd", "x")


@dataclass(frozen=True)
class Person:
    id: str
    first: str
    last: str
    facts: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class World:
    """Populations of people; names are unique across populations so their knowledge never overlaps."""

    p0: list[Person]
    source: list[Person]
    target_oracle: list[Person]
    target_eval: list[Person]
    values: dict[str, list[str]]
    first_names: list[str]
    last_names: list[str]

    def vocabulary(self) -> list[str]:
        """Every word the world can produce: templates, questions, names and attribute values."""
        words = set(self.first_names) | set(self.last_names)
        for values in self.values.values():
            words.update(values)
        for text in [t for ts in TEMPLATES.values() for t in ts] + list(QUESTIONS.values()):
            words.update(w for w in text.split() if w not in ("{name}", "{value}"))
        return sorted(words)


def build_world(params: WorldParams, seed: int) -> World:
    rng = random.Random(seed)
    sizes = {"city": params.cities, "employer": params.employers, "university": params.universities,
             "hobby": params.hobbies}
    reserved = {w for ts in TEMPLATES.values() for t in ts for w in t.split()}
    reserved |= {w for q in QUESTIONS.values() for w in q.split()}
    words = _unique_words(rng, params.first_names + params.last_names + sum(sizes.values()), reserved)
    first_names, words = words[: params.first_names], words[params.first_names:]
    last_names, words = words[: params.last_names], words[params.last_names:]
    values = {}
    for attribute, size in sizes.items():
        values[attribute], words = words[:size], words[size:]
    values["year"] = [str(1950 + i) for i in range(params.birth_years)]

    counts = [params.p0_people, params.source_people, params.target_oracle_people, params.target_eval_people]
    names = [(f, l) for f in first_names for l in last_names]
    if sum(counts) > len(names):
        raise ValueError(f"prepare.world: {sum(counts)} people need more than "
                         f"{params.first_names} x {params.last_names} distinct names")
    names = rng.sample(names, sum(counts))
    people = [Person(f"person-{i:05d}", first, last, {a: rng.choice(values[a]) for a in ATTRIBUTES})
              for i, (first, last) in enumerate(names)]
    groups, start = [], 0
    for count in counts:
        groups.append(people[start:start + count])
        start += count
    return World(*groups, values=values, first_names=first_names, last_names=last_names)


def render_biography(person: Person, rng: random.Random, templates_per_attribute: int) -> str:
    sentences = [rng.choice(TEMPLATES[a][:templates_per_attribute]).format(name=person.name, value=person.facts[a])
                 for a in ATTRIBUTES]
    rng.shuffle(sentences)
    return " ".join(sentences)


def documents_for(people: list[Person], renders: int, templates_per_attribute: int, seed: int) -> list[dict]:
    """`renders` independently shuffled biographies per person (the SFT augmentation)."""
    rng = random.Random(seed)
    return [{"id": f"{p.id}-r{k:03d}", "title": p.name, "text": render_biography(p, rng, templates_per_attribute)}
            for p in people for k in range(renders)]


def questions_for(people: list[Person], split: str) -> list[dict]:
    return [{"id": f"{p.id}-{a}", "doc_id": f"{p.id}-r000", "question": QUESTIONS[a].format(name=p.name),
             "answers": [p.facts[a]], "split": split}
            for p in people for a in ATTRIBUTES]


def _unique_words(rng: random.Random, count: int, reserved: set[str]) -> list[str]:
    words: list[str] = []
    seen = set(reserved)
    while len(words) < count:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((2, 2, 3))))
        word += rng.choice(_CODAS)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def world_knowledge_sets(world: World, params: WorldParams, seed: int) -> dict[str, "KnowledgeSet"]:
    """The three populations as knowledge sets: p0 (base pre-training), source, target."""
    from past.knowledge.format import KnowledgeSet

    def docs(people, offset):
        return documents_for(people, params.renders_per_person, params.templates_per_attribute, seed + offset)

    target = world.target_oracle + world.target_eval
    return {
        "p0": KnowledgeSet("p0", "qa", docs(world.p0, 1), questions_for(world.p0, "train")),
        "source": KnowledgeSet("source", "qa", docs(world.source, 2), questions_for(world.source, "train")),
        "target": KnowledgeSet("target", "qa", docs(target, 3),
                               questions_for(world.target_oracle, "oracle") + questions_for(world.target_eval, "eval")),
    }
