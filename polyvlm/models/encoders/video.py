"""Video: frame counts probed from the container (so placeholder counts are known before decoding), frame
indices at a target fps capped at `frames_upbound` (uniform resampling), decoding with PyAV, and the 2x2
pooling of each frame's token grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from polyvlm.data.records import RecordError


def probe_video(path: str | Path, source: str = "", record_id: str | None = None) -> tuple[int, float]:
    """(frame count, frames per second) from the container metadata (decodes only when it has no count)."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise RecordError(f"video '{Path(path).name}' has no video stream", source, record_id, code="media_unreadable")
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0) or 25.0
            n = int(s.frames or 0)
            if n <= 0:
                n = sum(1 for _ in c.decode(video=0))
    except RecordError:
        raise
    except Exception as e:  # PyAV raises many error types for bad data
        raise RecordError(f"unreadable video '{Path(path).name}': {e}", source, record_id, code="media_unreadable") from None
    if n <= 0:
        raise RecordError(f"video '{Path(path).name}' has no frames", source, record_id, code="media_unreadable")
    return n, fps


def sample_indices(n_frames: int, native_fps: float, fps: float, upbound: int) -> list[int]:
    """Frame indices one every `native_fps / fps` frames; more than `upbound` are uniformly resampled."""
    step = max(native_fps / fps, 1.0) if fps > 0 else 1.0
    idx = [int(round(i * step)) for i in range(int(math.ceil(n_frames / step)))]
    idx = [i for i in idx if i < n_frames] or [0]
    if upbound > 0 and len(idx) > upbound:
        idx = np.linspace(0, n_frames - 1, upbound).round().astype(int).tolist()
    return idx


def read_frames(path: str | Path, indices: list[int], source: str = "", record_id: str | None = None) -> list[Image.Image]:
    """Decode the frames at `indices` (sorted) as RGB images; missing trailing frames repeat the last one."""
    import av

    want = set(indices)
    got: dict[int, Image.Image] = {}
    try:
        with av.open(str(path)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i in want:
                    got[i] = frame.to_image().convert("RGB")
                if i >= indices[-1]:
                    break
    except Exception as e:
        raise RecordError(f"unreadable video '{Path(path).name}': {e}", source, record_id, code="media_unreadable") from None
    if not got:
        raise RecordError(f"video '{Path(path).name}': no frame decoded", source, record_id, code="media_unreadable")
    out, last = [], got[min(got)]
    for i in indices:
        last = got.get(i, last)
        out.append(last)
    return out


def pooled_side(grid: int) -> int:
    """Tokens per side after 2x2 pooling of a grid x grid frame (ceil for odd grids)."""
    return (grid + 1) // 2


def pool_frames(feats: torch.Tensor) -> torch.Tensor:
    """Frame tokens [f, g*g, d] -> [f, ceil(g/2)^2, d] by 2x2 average pooling over the patch grid."""
    f, t, d = feats.shape
    g = math.isqrt(t)
    if g * g != t:
        raise ValueError(f"video frames need a square token grid, got {t} tokens (use model.vision_select=patch)")
    x = feats.transpose(1, 2).reshape(f, d, g, g)
    x = F.avg_pool2d(x, 2, 2, ceil_mode=True)
    return x.flatten(2).transpose(1, 2)
