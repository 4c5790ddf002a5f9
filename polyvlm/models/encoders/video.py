"""Video on the model side: the 2x2 pooling of each frame's token grid (sampling and decoding live in
polyvlm.media.video; `probe_video` / `read_frames` here name the record in their errors)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from polyvlm.data.records import RecordError
from polyvlm.media.video import sample_indices

__all__ = ["pool_frames", "pooled_side", "probe_video", "read_frames", "sample_indices"]


def probe_video(path: str | Path, source: str = "", record_id: str | None = None) -> tuple[int, float]:
    """(frame count, frames per second) from the container metadata (polyvlm.media; RecordError when unreadable)."""
    from polyvlm.media import MediaError, probe

    try:
        facts = probe("video", Path(path))
    except MediaError as e:
        raise RecordError(f"unreadable video '{Path(path).name}': {e.reason}", source, record_id, code=e.record_code) from None
    return facts["frames"], facts["fps"]


def read_frames(path: str | Path, indices: list[int], source: str = "", record_id: str | None = None) -> list:
    """Decode the frames at `indices` (by seeking) as RGB images; missing trailing frames repeat the last one."""
    from polyvlm.media import MediaError
    from polyvlm.media.video import read_frames as read

    try:
        return read(Path(path), indices, Path(path).name)
    except MediaError as e:
        raise RecordError(f"unreadable video '{Path(path).name}': {e.reason}", source, record_id, code=e.record_code) from None


def pooled_side(grid: int) -> int:
    """Tokens per side after 2x2 pooling of a grid x grid frame (ceil for odd grids)."""
    return (grid + 1) // 2


def pool_frames(feats: torch.Tensor, mode: str = "average") -> torch.Tensor:
    """Frame tokens [f, g*g, d] -> [f, ceil(g/2)^2, d] over the patch grid: 2x2 average pooling, or (`bilinear`,
    LLaVA-OneVision's mm_spatial_pool_mode) a bilinear resize to ceil(g/2) x ceil(g/2)."""
    f, t, d = feats.shape
    g = math.isqrt(t)
    if g * g != t:
        raise ValueError(f"video frames need a square token grid, got {t} tokens (use model.vision_select=patch)")
    x = feats.transpose(1, 2).reshape(f, d, g, g)
    if mode == "bilinear":
        x = F.interpolate(x, size=(pooled_side(g), pooled_side(g)), mode="bilinear")
    else:
        x = F.avg_pool2d(x, 2, 2, ceil_mode=True)
    return x.flatten(2).transpose(1, 2)
