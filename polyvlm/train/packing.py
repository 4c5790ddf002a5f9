"""Packing: a micro-batch's samples concatenated into one row with their boundaries (varlen attention), position
ids restarting per sample so attention stays within each sample, media kept in sample order.

One row per micro-batch is the tightest packing there is (no padding at all), so no bin packer is needed: the
micro-batch still holds `train.batch_size` samples, which keeps every optimizer step on the same samples as
the unpacked path, and `model.max_length` caps each sample (a row holds at most batch_size x max_length)."""

from __future__ import annotations

import torch

from polyvlm.models.processor import IGNORE


def collate_varlen(items: list[dict | None]) -> dict:
    """Concatenate examples into ONE row [1, total] with `cu_seq_lens` boundaries, for varlen attention.

    No padding at all; position ids restart per sample; `segment_ids` numbers the samples.
    """
    kept = [it for it in items if it is not None]
    lengths = [len(it["input_ids"]) for it in kept]
    ids = torch.tensor([[t for it in kept for t in it["input_ids"]]])
    labels = torch.tensor([[t for it in kept for t in it["labels"]]])
    # a sample's last token must not learn to predict the next sample's first token
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    labels[0, cu[1:-1].long()] = IGNORE
    pos = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0)
    seg = torch.cat([torch.full((n,), k) for k, n in enumerate(lengths)]).unsqueeze(0)
    pixels = [it["pixels"] for it in kept if it["pixels"] is not None]
    return {"input_ids": ids, "labels": labels, "attention_mask": None, "position_ids": pos, "segment_ids": seg,
            "pixels": torch.cat(pixels) if pixels else None, "languages": [it["language"] for it in kept],
            "attn_kwargs": {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lengths),
                            "max_length_k": max(lengths)}}
