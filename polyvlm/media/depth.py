"""The depth modality (ImageBind): a depth / disparity map file (8- or 16-bit PNG, or any one-channel image)
-> a numpy array [h, w] keeping its bit depth (ImageBind scales it to [0, 1] by the pixel type's range)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality
from polyvlm.media.image import probe_image, url_part


def load_depth(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> np.ndarray:
    """Decode to [h, w] (uint8, uint16/int32 for 16-bit PNGs, or float32); an RGB rendering keeps its first
    channel. The pixel limit is checked from the header before decoding."""
    from PIL import Image

    probe_image(raw, limits, where)
    try:
        with Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw) as im:
            im.load()
            arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise MediaError(f"bytes are not a readable depth map ({type(e).__name__}: {e})", where, "invalid_image") from None
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise MediaError(f"depth map has shape {arr.shape}; expected one channel [h, w]", where, "invalid_image")
    return arr


DEPTH = register_modality(Modality(
    name="depth", placeholder="<depth>", record_key="depth", api_part="input_depth", load=load_depth,
    probe=probe_image, part_source=url_part("input_depth"), check="load", limits=("max_bytes", "max_pixels"),
    help="a depth (disparity) map: 8- or 16-bit one-channel PNG (an RGB rendering: its first channel)",
))
