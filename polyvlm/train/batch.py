"""The typed micro-batch (`Batch`) and the one `collate(samples, packing)`: right-padded rows, or one packed row.

Packing concatenates a micro-batch's samples into one row with their boundaries (varlen attention), position ids
restarting per sample so attention stays within each sample, media kept in sample order. One row per
micro-batch is the tightest packing there is (no padding at all), so no bin packer is needed: the micro-batch
still holds `train.batch_size` samples, which keeps every optimizer step on the same samples as the unpacked
path, and `model.max_length` caps each sample (a row holds at most batch_size x max_length)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from polyvlm.models.encoders.media import MediaBatch
from polyvlm.models.processor import IGNORE, Features


@dataclass
class Batch:
    """One micro-batch. `b` rows of `s` tokens (a packed batch: one row holding every sample).

    `input_ids`, `labels` [b, s] (IGNORE where not supervised); `attention_mask` [b, s] (None when packed);
    `position_ids` [b, s] (None when padded: the model counts them); `segment_ids` [b, s] numbers the samples
    0..n-1 (-1 on padding); `media` every sample's media in placeholder order; `languages` [n] one per sample;
    `attn_kwargs` the sample boundaries of a packed row (`cu_seq_lens_q/k`, `max_length_q/k`) for varlen attention.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    segment_ids: torch.Tensor
    media: MediaBatch | None
    languages: list[str | None]
    attn_kwargs: dict[str, Any] | None = None

    def to(self, device: torch.device | str) -> Batch:
        """The tensors the model reads, on `device` (segment ids stay where they are: metrics read them)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return replace(self, input_ids=move(self.input_ids), labels=move(self.labels),
                       attention_mask=move(self.attention_mask), position_ids=move(self.position_ids),
                       media=None if self.media is None else self.media.to(device))

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments of `PolyVLM.forward`."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "pixels": self.media,
                "labels": self.labels, "position_ids": self.position_ids, "attn_kwargs": self.attn_kwargs}


def collate(samples: list[Features | None], packing: bool = False, pad_id: int = 0) -> Batch:
    """Samples (None: skipped bad records, dropped) -> one Batch: one packed row, or rows right-padded with `pad_id`."""
    kept = [s for s in samples if s is not None]
    if not kept:
        raise ValueError("collate: every sample of the micro-batch was skipped")
    parts = [s.media for s in kept if s.media is not None]
    media = MediaBatch.merge(parts) if parts else None
    langs = [s.language for s in kept]
    return _packed(kept, media, langs) if packing else _padded(kept, media, langs, pad_id)


def _padded(kept: list[Features], media: MediaBatch | None, langs: list[str | None], pad_id: int) -> Batch:
    width = max(len(s.input_ids) for s in kept)
    b = len(kept)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    labels = torch.full((b, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, s in enumerate(kept):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        labels[i, :n] = torch.tensor(s.labels)
        mask[i, :n] = 1
    seg = torch.where(mask.bool(), torch.arange(b).unsqueeze(1), torch.tensor(-1))
    return Batch(ids, labels, mask, None, seg, media, langs)


def _packed(kept: list[Features], media: MediaBatch | None, langs: list[str | None]) -> Batch:
    lengths = [len(s.input_ids) for s in kept]
    ids = torch.tensor([[t for s in kept for t in s.input_ids]])
    labels = torch.tensor([[t for s in kept for t in s.labels]])
    # a sample's last token must not learn to predict the next sample's first token
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    labels[0, cu[1:-1].long()] = IGNORE
    pos = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0)
    seg = torch.cat([torch.full((n,), k) for k, n in enumerate(lengths)]).unsqueeze(0)
    attn = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lengths), "max_length_k": max(lengths)}
    return Batch(ids, labels, None, pos, seg, media, langs, attn)
