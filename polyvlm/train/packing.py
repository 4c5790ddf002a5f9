"""Packing: several samples per row up to `max_length` (best-fit decreasing over known lengths), position
ids restarting per sample so attention stays within each sample, media kept in sample order."""

from __future__ import annotations

import torch

from polyvlm.models.processor import IGNORE


def best_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of at most `capacity` (best-fit decreasing).

    A sample longer than `capacity` gets a bin of its own (the processor already truncated it to max_length).
    Bins keep their samples in ascending index order, so media features stay in input order.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        best = -1
        for b, r in enumerate(room):
            if n <= r and (best < 0 or r < room[best]):
                best = b
        if best < 0:
            bins.append([i])
            room.append(capacity - n)
        else:
            bins[best].append(i)
            room[best] -= n
    return [sorted(b) for b in bins]


def collate_packed(items: list[dict | None], capacity: int, pad_id: int) -> dict:
    """Pack examples into rows -> input_ids / labels / position_ids / segment_ids [rows, s] and pixels.

    `segment_ids` numbers the samples within the whole batch (-1 on padding), for per-sample losses.
    `attention_mask` is None: the language model derives the block-diagonal causal mask from the restarting
    position ids (packed-sequence detection), so no sample attends to another.
    """
    kept = [it for it in items if it is not None]
    bins = best_fit([len(it["input_ids"]) for it in kept], capacity)
    width = max(sum(len(kept[i]["input_ids"]) for i in b) for b in bins)
    rows = len(bins)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    labels = torch.full((rows, width), IGNORE, dtype=torch.long)
    pos = torch.zeros((rows, width), dtype=torch.long)
    seg = torch.full((rows, width), -1, dtype=torch.long)
    pixels, languages = [], []
    k = 0
    for r, b in enumerate(bins):
        at = 0
        for i in b:
            it = kept[i]
            n = len(it["input_ids"])
            ids[r, at : at + n] = torch.tensor(it["input_ids"])
            labels[r, at : at + n] = torch.tensor(it["labels"])
            pos[r, at : at + n] = torch.arange(n)
            seg[r, at : at + n] = k
            languages.append(it["language"])
            if it["pixels"] is not None:
                pixels.append(it["pixels"])
            k += 1
            at += n
        if at < width:  # padding forms its own segment: positions restart, labels ignored
            pos[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "labels": labels, "attention_mask": None, "position_ids": pos, "segment_ids": seg,
            "pixels": torch.cat(pixels) if pixels else None, "languages": languages}
