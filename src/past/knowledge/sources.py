"""Pick the knowledge source named by `prepare.source`: every adapter yields the same sets.

`p0` (what a tiny base is pre-trained on), `source` (SFT on all its documents; RL on split `train`, lambda chosen
on split `validation`: the questions of `prepare.validation_fraction` of its subjects) and `target` (SFT, then
evaluated on split `eval`; split `oracle` feeds only the oracle's RL). A pretrained LLM needs no `p0`: for real
sources it repeats `source`, which keeps the pipeline's layout and the `base` stage's inputs the same.
"""

from __future__ import annotations

from past.config import Params
from dataclasses import replace

from past.knowledge.format import KnowledgeSet

SPLITS = {"p0": ["train"], "source": ["train", "validation"], "target": ["oracle", "eval"]}


def knowledge_sets(params: Params) -> tuple[dict[str, KnowledgeSet], list[str]]:
    """The sets to write, and the vocabulary the embedded tiny tokenizer would need."""
    prepare = params.prepare
    if prepare.source == "world":
        from past.knowledge.world import build_world, world_knowledge_sets

        world = build_world(prepare.world, params.seed)
        sets = world_knowledge_sets(world, prepare.world, params.seed)
        return with_validation(sets, prepare.validation_fraction), world.vocabulary()
    if prepare.source == "squad":
        from past.knowledge.squad import squad_sets

        s = prepare.squad
        sets = squad_sets(s.root, s.source_passages, s.target_passages, s.oracle_passages, s.source_documents,
                          s.target_documents, s.implication_lists)
    elif prepare.source == "loogle":
        from past.knowledge.loogle import loogle_sets

        lg = prepare.loogle
        sets = loogle_sets(lg.path, lg.source_documents, lg.target_documents, lg.oracle_documents,
                           lg.chunk_words, lg.overlap_words)
    else:
        from past.knowledge.toolbench import toolbench_sets

        tb = prepare.toolbench
        sets = toolbench_sets(tb.path, tb.source_queries, tb.target_queries, tb.oracle_queries)
    p0 = sets["source"]
    sets = {"p0": KnowledgeSet(f"{p0.name}-as-p0", p0.kind, p0.documents, p0.questions, p0.tools), **sets}
    return with_validation(sets, prepare.validation_fraction), vocabulary(sets)


def with_validation(sets: dict[str, KnowledgeSet], fraction: float) -> dict[str, KnowledgeSet]:
    """The sets with `fraction` of the source's subjects (documents sharing a title) held out of RL: their
    questions move to split `validation`, their documents stay (source SFT learns them, as target SFT learns the
    target's). The subjects are evenly spaced in file order, so every refinement round's contiguous subset
    (`split_by_title`) holds some: the last round's are what lambda is chosen on."""
    source = sets["source"]
    titles = list(dict.fromkeys(d["title"] for d in source.documents))
    count = min(max(1, round(fraction * len(titles))), len(titles) - 1) if fraction > 0 else 0
    held = {titles[int((j + 0.5) * len(titles) / count)] for j in range(count)}
    title_of = {d["id"]: d["title"] for d in source.documents}
    questions = [{**q, "split": "validation"} if title_of.get(q["doc_id"]) in held else q for q in source.questions]
    return {**sets, "source": replace(source, questions=questions)}


def vocabulary(sets: dict[str, KnowledgeSet]) -> list[str]:
    words = set()
    for ks in sets.values():
        for row in ks.documents + ks.questions:
            words.update((row.get("text") or row.get("question", "")).split())
            words.update(w for a in row.get("answers", []) for w in a.split())
    return sorted(words)
