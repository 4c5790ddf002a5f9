"""The image modality: bytes or a file -> RGB PIL image, with the pixel limit checked from the header."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from polyvlm.media.base import MediaError, MediaLimits, Modality, register_modality


def _open(raw: bytes | Path, where: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw)  # reads the header only
    except Image.DecompressionBombError:  # over twice PIL's own limit: refused before our check can run
        raise MediaError("image pixel count is over the decompression-bomb limit", where, "image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise MediaError(f"bytes are not a readable image ({type(e).__name__}: {e})", where, "invalid_image") from None


def _size_ok(im: Any, limits: MediaLimits, where: str) -> tuple[int, int]:
    w, h = im.size
    if w == 0 or h == 0:
        raise MediaError(f"image has zero size ({w}x{h})", where, "media_empty")
    if w * h > limits.max_pixels:
        raise MediaError(f"image is {w}x{h} = {w * h} pixels, over the limit of {limits.max_pixels} "
                         "(decompression bomb guard)", where, "image_too_large")
    return w, h


def probe_image(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> dict:
    """{"size": (w, h)} from the header; the pixel limit is checked; nothing is decoded."""
    limits = limits or MediaLimits()
    with _open(raw, where) as im:
        return {"size": _size_ok(im, limits, where)}


def load_image(raw: bytes | Path, limits: MediaLimits | None = None, where: str = "") -> Any:
    """Decode fully (a truncated file fails here) to an RGB PIL image, refusing oversize images before decoding."""
    limits = limits or MediaLimits()
    try:
        with _open(raw, where) as im:
            _size_ok(im, limits, where)  # from the header, before decoding
            im.load()
            return im.convert("RGB")
    except MediaError:
        raise
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for corrupt or truncated data
        raise MediaError(f"bytes are not a readable image ({type(e).__name__}: {e})", where, "invalid_image") from None


def _url_part(key: str):
    def source(part: dict, where: str) -> str:
        v = part.get(key)
        url = v.get("url") if isinstance(v, dict) else v
        if not isinstance(url, str) or not url:
            raise MediaError(f"{key}.url is missing", f"{where}.{key}", "invalid_value")
        return url

    return source


url_part = _url_part  # shared by the modalities whose content part holds a URL (image_url, video_url)

IMAGE = register_modality(Modality(
    name="image", placeholder="<image>", record_key="image", api_part="image_url", load=load_image,
    probe=probe_image, part_source=_url_part("image_url"), check="load", limits=("max_bytes", "max_pixels"),
    help="an image (PNG, JPEG, WebP, GIF, ...) as RGB",
))
