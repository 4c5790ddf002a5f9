"""Media references: files under an image root or inline `data:` URIs; opening them and checking they decode."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

from polyvlm.data.records import RecordError, resolve_media

# PIL's own decompression-bomb threshold (about 89.5 megapixels) is our default pixel limit.
DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)


def is_data_uri(ref: str) -> bool:
    return ref.startswith("data:")


def data_uri_bytes(ref: str, source: str = "", record_id: str | None = None) -> bytes:
    head, _, payload = ref.partition(",")
    if not head.endswith(";base64"):
        raise RecordError("data URI media must be base64 encoded", source, record_id, code="media_unreadable")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as e:
        raise RecordError(f"data URI is not valid base64 ({e})", source, record_id, code="media_unreadable") from None


def open_media_bytes(ref: str, root: str | Path, source: str = "", record_id: str | None = None) -> bytes:
    """The bytes of one media reference (a path under `root`, checked not to escape it, or a data URI)."""
    if is_data_uri(ref):
        return data_uri_bytes(ref, source, record_id)
    return resolve_media(root, ref, source, record_id).read_bytes()


def load_image(ref: str, root: str | Path, source: str = "", record_id: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Open one image as RGB, raising RecordError (media_*) naming the record when it cannot be used."""
    from PIL import Image

    data = open_media_bytes(ref, root, source, record_id)
    problem = check_image_bytes(data, max_pixels)
    if problem:
        raise RecordError(f"image '{ref[:80]}': {problem[1]}", source, record_id, code=problem[0])
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def check_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, str] | None:
    """`(code, reason)` when the bytes are not a usable image, else None. Decodes the whole image."""
    from PIL import Image

    if not data:
        return "media_empty", "file is empty (0 bytes)"
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, before decoding
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w == 0 or h == 0:
                return "media_empty", f"image has zero size ({w}x{h})"
            if w * h > max_pixels:
                return "media_too_large", f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} (decompression bomb guard)"
            im.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for bad files
        return "media_unreadable", f"cannot decode image: {e}"
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    return None


def check_media_file(modality: str, full: Path | None, data: bytes | None, max_pixels: int) -> tuple[str, str] | None:
    """Check one resolved media file (or inline bytes) of a modality; `(code, reason)` or None."""
    if data is None:
        assert full is not None
        if os.path.getsize(full) == 0:
            return "media_empty", "file is empty (0 bytes)"
        if modality == "image":
            data = full.read_bytes()
    if modality == "image":
        return check_image_bytes(data or b"", max_pixels)
    try:
        if modality == "audio":
            import soundfile

            info = soundfile.info(io.BytesIO(data) if data is not None else str(full))
            if info.frames == 0:
                return "media_empty", "audio has no samples"
        else:
            import av

            with av.open(io.BytesIO(data) if data is not None else str(full)) as c:
                if not c.streams.video:
                    return "media_unreadable", "file has no video stream"
    except Exception as e:
        return "media_unreadable", f"cannot decode {modality}: {e}"
    return None
