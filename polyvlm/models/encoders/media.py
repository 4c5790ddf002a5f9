"""MediaBatch: every non-text input of a batch (image views, audio features, video frames) in placeholder order."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MediaBatch:
    """Media of one sample or batch, each modality in the order of its placeholders (row-major over the batch).

    `pixels` [v, 3, S, S]: image views; image i owns `image_views[i]` consecutive views (1 for `pad`, base +
    tiles for anyres) and was `image_sizes[i]` = (w, h) pixels before preprocessing. `image_langs[i]` is the
    language of the sample image i belongs to (router statistics). `audio` [n_a, mels, T]: log-mel features.
    `video`: per video its frames [f, 3, S, S]. `extra[m]`: per input of a modality added later (polyvlm.media)
    the tensor its `to_tensor` made, for its encoder.
    """

    pixels: torch.Tensor | None = None
    image_views: list[int] = field(default_factory=list)
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    image_langs: list[str | None] = field(default_factory=list)
    audio: torch.Tensor | None = None
    video: list[torch.Tensor] = field(default_factory=list)
    extra: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def of(cls, media: MediaBatch | torch.Tensor | None) -> MediaBatch:
        """A MediaBatch from a plain pixels tensor [n, 3, S, S] (one view per image), or None (empty)."""
        if isinstance(media, MediaBatch):
            return media
        if media is None or media.shape[0] == 0:
            return cls()
        n = media.shape[0]
        return cls(pixels=media, image_views=[1] * n, image_sizes=[(0, 0)] * n, image_langs=[None] * n)

    @property
    def n_images(self) -> int:
        return len(self.image_views)

    @property
    def shape(self) -> torch.Size:
        """The pixels' shape (so code written for a pixels tensor keeps working)."""
        return self.pixels.shape if self.pixels is not None else torch.Size([0])

    def to(self, device: torch.device | str) -> MediaBatch:
        return MediaBatch(
            None if self.pixels is None else self.pixels.to(device), list(self.image_views), list(self.image_sizes),
            list(self.image_langs), None if self.audio is None else self.audio.to(device),
            [v.to(device) for v in self.video], {m: [t.to(device) for t in ts] for m, ts in self.extra.items()},
        )

    @staticmethod
    def merge(items: list[MediaBatch | torch.Tensor]) -> MediaBatch:
        """Concatenate in order (the samples of a batch, or of a packed row): what `collate` calls."""
        parts = [MediaBatch.of(it) for it in items]
        pix = [p.pixels for p in parts if p.pixels is not None]
        aud = [p.audio for p in parts if p.audio is not None]
        extra: dict[str, list[torch.Tensor]] = {}
        for p in parts:
            for m, ts in p.extra.items():
                extra.setdefault(m, []).extend(ts)
        return MediaBatch(
            torch.cat(pix) if pix else None, [v for p in parts for v in p.image_views],
            [s for p in parts for s in p.image_sizes], [lang for p in parts for lang in p.image_langs],
            torch.cat(aud) if aud else None, [v for p in parts for v in p.video], extra,
        )
