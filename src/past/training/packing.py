"""Padding-free SFT batches: each micro-batch's sequences packed into a few rows as long as its longest one.

A padded batch computes every row to the length of its longest sequence: a batch of the embedded base's mixture
(biographies beside short question/answer pairs) is 29% padding. Packed, the same sequences share rows, each
keeping its own positions (they restart at 0 within a row): with no attention mask, transformers reads the
restarts as sequence boundaries and keeps attention within each sequence (`masking_utils.
find_packed_sequence_indices`; flash attention reads the same positions), and rotary embeddings see the positions
they would see alone. A sequence's first token is no target (it would be predicted from the one before it), as
in a padded row, where nothing predicts it. So every step trains on the same samples with the same loss as a
padded batch, on fewer computed tokens; only the rounding differs. (TRL's `padding_free` flattens a batch into one
row, which is what flash attention wants; with SDPA or eager attention that row's mask grows with the square of
the batch's tokens.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100  # the label no loss is computed on


def pack(lengths: list[int]) -> list[list[int]]:
    """Rows of sequence indices, each row's lengths summing to at most the longest one: first-fit decreasing
    (a pure function of the lengths: a resumed run packs the same rows)."""
    width = max(lengths)
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:  # no row has room: open one
            row = len(rows)
            rows.append([])
            room.append(width)
        rows[row].append(i)
        room[row] -= lengths[i]
    return rows


@dataclass
class PackingCollator:
    """What SFTTrainer's collator returns (input_ids, labels), packed: rows of `pack`, their free tail filled
    with `pad_token_id` at positions of their own (a sequence nothing attends across), plus position_ids."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        ids = [list(e["input_ids"]) for e in examples]
        labels = [list(e.get("labels", e["input_ids"])) for e in examples]
        rows = pack([len(x) for x in ids])
        width = max(map(len, ids))
        batch = {"input_ids": [], "labels": [], "position_ids": []}
        for row in rows:
            tokens, targets, positions = [], [], []
            for i in row:
                tokens += ids[i]
                targets += [IGNORE] + labels[i][1:]
                positions += range(len(ids[i]))
            free = width - len(tokens)
            batch["input_ids"].append(tokens + [self.pad_token_id] * free)
            batch["labels"].append(targets + [IGNORE] * free)
            batch["position_ids"].append(positions + list(range(free)))
        return {key: torch.tensor(value) for key, value in batch.items()}
