"""Pick the knowledge source named by `prepare.source`: every adapter yields the same sets.

`p0` (what a tiny base is pre-trained on), `source` (SFT + RL once) and `target` (SFT, then evaluated on
split `eval`; split `oracle` feeds only the oracle's RL). A pretrained LLM needs no `p0`: for real
sources it repeats `source`, which keeps the pipeline's layout and the `base` stage's inputs the same.
"""

from __future__ import annotations

from past.config import Params
from past.knowledge.format import KnowledgeSet

SPLITS = {"p0": ["train"], "source": ["train"], "target": ["oracle", "eval"]}


def knowledge_sets(params: Params) -> tuple[dict[str, KnowledgeSet], list[str]]:
    """The sets to write, and the vocabulary the embedded tiny tokenizer would need."""
    prepare = params.prepare
    if prepare.source == "world":
        from past.knowledge.world import build_world, world_knowledge_sets

        world = build_world(prepare.world, params.seed)
        return world_knowledge_sets(world, prepare.world, params.seed), world.vocabulary()
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
    return sets, vocabulary(sets)


def vocabulary(sets: dict[str, KnowledgeSet]) -> list[str]:
    words = set()
    for ks in sets.values():
        for row in ks.documents + ks.questions:
            words.update((row.get("text") or row.get("question", "")).split())
            words.update(w for a in row.get("answers", []) for w in a.split())
    return sorted(words)
