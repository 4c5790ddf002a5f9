"""Frozen-encoder feature cache (`train.cache_features`): outputs per distinct picture, keyed by pixel content."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import torch

log = logging.getLogger("polyvlm.models")


class FeatureCache:
    """`(features [t, d], summary [d])` of each encoder input view, kept on the CPU up to `max_bytes`.

    Keyed by a digest of the view's pixel values, so it works for any data pipeline and can never serve
    features of a different picture; valid only while the encoder does not change (a frozen encoder).
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.store: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self.bytes = 0
        self.hits = self.misses = 0
        self._full_logged = False

    @staticmethod
    def key(view: torch.Tensor) -> bytes:
        return hashlib.blake2b(view.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()

    def __call__(self, pixels: torch.Tensor, compute: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """pixels [n, 3, H, W] -> (features [n, t, d], summary [n, d]); `compute` runs on the views not cached."""
        keys = [self.key(v) for v in pixels]
        fresh: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}  # computed now (kept even when the cache is full)
        missing: list[int] = []  # first view of each picture not in the cache
        seen: set[bytes] = set()
        for i, k in enumerate(keys):
            if k not in self.store and k not in seen:
                seen.add(k)
                missing.append(i)
        if missing:
            feats, summary = compute(pixels[missing])
            for j, i in enumerate(missing):
                fresh[keys[i]] = (feats[j], summary[j])
                self._keep(keys[i], feats[j], summary[j])
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        dev = pixels.device
        rows = [fresh[k] if k in fresh else self.store[k] for k in keys]
        return (torch.stack([r[0].to(dev, non_blocking=True) for r in rows]),
                torch.stack([r[1].to(dev, non_blocking=True) for r in rows]))

    def _keep(self, key: bytes, feats: torch.Tensor, summary: torch.Tensor) -> None:
        size = feats.numel() * feats.element_size() + summary.numel() * summary.element_size()
        if self.bytes + size > self.max_bytes:
            if not self._full_logged:
                log.warning("feature cache full at %d pictures (%.0f MiB, train.feature_cache_mb): later pictures "
                            "are encoded every time", len(self.store), self.bytes / 2**20)
                self._full_logged = True
            return
        self.store[key] = (feats.detach().cpu().clone(), summary.detach().cpu().clone())
        self.bytes += size

    def summary(self) -> str:
        total = self.hits + self.misses
        return (f"feature cache: {len(self.store)} pictures, {self.bytes / 2**20:.1f} MiB, "
                f"{self.hits}/{total} views served from it ({100 * self.hits / max(total, 1):.0f}%)")
