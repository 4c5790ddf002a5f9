"""Media: the one place that turns a path, bytes, a data URI or a URL into decoded media, and the `Modality`
registry every other package reads (processor, embedding merge, API protocol, data validation and stats,
terminal chat).

    from polyvlm import media
    img = media.load("image", "cat.png")                                   # PIL RGB
    wave = media.load("audio", b"RIFF...", media.MediaLimits(max_audio_seconds=60))   # float32 (t,) at 16 kHz
    frames = media.load("video", "https://x.org/v.mp4", policy=media.SourcePolicy(allowed_domains=["x.org"]))

Refusals raise `MediaError(reason, where, code, status)`; callers map it to their error type (serve: an
APIError with the same code and status; data: a RecordError with `e.record_code`).

Adding a modality (e.g. smell) is one module here plus its encoder, 4 files in all:

1. `polyvlm/media/smell.py`: write `load(raw: bytes | Path, limits, where) -> decoded` and
   `probe(raw, limits, where) -> dict` (header facts; raise `MediaError` naming `where`), then
   `register_modality(Modality(name="smell", placeholder="<smell>", record_key="smell",
   api_part="input_smell", load=load, probe=probe, part_source=..., to_tensor=..., limits=(...)))`.
2. Import it at the bottom of this file (the list of built-in modalities).
3. Its encoder: a `polyvlm.models.encoders.modality.ModalityEncoder` registered in `ENCODERS` (its
   `tokens_per_input` is the number of placeholder tokens per input), imported at the bottom of
   `polyvlm/models/encoders/__init__.py`.

Records then accept `"smell": "x.bin"`, `<smell>` placeholders are counted by data validation, stats and
the processor, the server accepts `input_smell` content parts, and the terminal chat gets `/smell PATH`; a
model whose recipe names the encoder (`model.encoders: {smell: {model_type: ...}}`) gets the placeholder token,
trains and generates with it (tests/media/test_new_modality.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyvlm.media.base import (
    API_PARTS,
    DEFAULT_MAX_PIXELS,
    MODALITIES,
    PART_MODALITY,
    PLACEHOLDERS,
    RECORD_KEYS,
    MediaError,
    MediaLimits,
    Modality,
    by_part,
    by_record_key,
    get_modality,
    modalities,
    register_modality,
    unregister_modality,
)
from polyvlm.media.source import (
    SourcePolicy,
    decode_base64,
    is_inline,
    parse_data_uri,
    read_bytes,
    read_source,
)


def load(modality: str, ref: str | bytes | Path, limits: MediaLimits | None = None, policy: SourcePolicy | None = None,
         where: str = "") -> Any:
    """Read `ref` (path, bytes, data URI, `base64,<data>`, allowed URL) and decode it as `modality`."""
    m = get_modality(modality)
    return m.load(read_source(ref, policy, where), limits or MediaLimits(), where or _name(ref))


def probe(modality: str, ref: str | bytes | Path, limits: MediaLimits | None = None, policy: SourcePolicy | None = None,
          where: str = "") -> dict:
    """Header facts of `ref` as `modality` (image size, audio seconds, video frames and fps); no full decode."""
    m = get_modality(modality)
    return m.probe(read_source(ref, policy, where), limits or MediaLimits(), where or _name(ref))


def _name(ref: object) -> str:
    if isinstance(ref, bytes):
        return "<bytes>"
    s = str(ref)
    return s[:40] + "..." if s.startswith(("data:", "base64,")) else s


# the built-in modalities; the import order is the registration order (record keys, Parquet columns)
from polyvlm.media import image, audio, video, thermal, depth, imu  # noqa: E402, I001  (new modules are added at the end)

__all__ = [
    "audio", "depth", "image", "imu", "thermal", "video",
    "API_PARTS", "DEFAULT_MAX_PIXELS", "MODALITIES", "PART_MODALITY", "PLACEHOLDERS", "RECORD_KEYS", "MediaError", "MediaLimits",
    "Modality", "SourcePolicy", "by_part", "by_record_key", "decode_base64", "get_modality", "is_inline", "load",
    "modalities", "parse_data_uri", "probe", "read_bytes", "read_source", "register_modality", "unregister_modality",
]
