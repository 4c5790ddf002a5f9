"""A record's media: references (files under the media root, or inline `data:` URIs) resolved and checked
before training (header facts: image sizes, audio length, video frame counts), and decoded by polyvlm.media,
every refusal a RecordError naming the record and the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyvlm import media
from polyvlm.data.records import Record, RecordError, resolve_media
from polyvlm.media import DEFAULT_MAX_PIXELS, MediaError, MediaLimits

__all__ = ["DEFAULT_MAX_PIXELS", "CheckedMedia", "check_image_bytes", "check_media_file", "check_record_media",
           "data_uri_bytes", "decode_media", "is_data_uri", "load_image", "media_ref", "open_media_bytes"]


def is_data_uri(ref: str) -> bool:
    return ref.startswith("data:")


def data_uri_bytes(ref: str, source: str = "", record_id: str | None = None) -> bytes:
    try:
        return media.parse_data_uri(ref, "data URI")[1]
    except MediaError as e:
        raise RecordError(e.reason, source, record_id, code="media_unreadable") from None


def media_ref(ref: str, root: str | Path, source: str = "", record_id: str | None = None) -> bytes | Path:
    """The bytes of an inline data URI, or the file under `root` (checked not to escape it)."""
    if is_data_uri(ref):
        return data_uri_bytes(ref, source, record_id)
    return resolve_media(root, ref, source, record_id)


def open_media_bytes(ref: str, root: str | Path, source: str = "", record_id: str | None = None) -> bytes:
    """The bytes of one media reference (a path under `root`, checked not to escape it, or a data URI)."""
    got = media_ref(ref, root, source, record_id)
    return got if isinstance(got, bytes) else got.read_bytes()


def _name(src: bytes | Path, ref: str | None = None) -> str:
    if ref is not None:
        return ref[:80]
    return "<inline data>" if isinstance(src, bytes) else src.name


def _record_error(e: MediaError, modality: str, name: str, source: str, record_id: str | None,
                  prefix: str = "unreadable ") -> RecordError:
    return RecordError(f"{prefix}{modality} '{name}': {e.reason}", source, record_id, code=e.record_code)


def decode_media(modality: str, src: bytes | Path, limits: MediaLimits | None = None, source: str = "",
                 record_id: str | None = None, ref: str | None = None, prefix: str = "unreadable ") -> Any:
    """Decode one resolved input of `modality` (polyvlm.media); a refusal is a RecordError naming the record
    and the file (`{prefix}{modality} 'name': reason`)."""
    try:
        return media.get_modality(modality).load(src, limits or MediaLimits(), _name(src, ref))
    except MediaError as e:
        raise _record_error(e, modality, _name(src, ref), source, record_id, prefix) from None


def load_image(ref: str, root: str | Path, source: str = "", record_id: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Open one image as RGB, raising RecordError (media_*) naming the record when it cannot be used."""
    return decode_media("image", media_ref(ref, root, source, record_id), MediaLimits(max_pixels=max_pixels), source,
                        record_id, ref, prefix="")


def check_media_file(modality: str, full: Path | None, data: bytes | None, max_pixels: int) -> tuple[str, str] | None:
    """Check one resolved media file (or inline bytes) the way `data validate` does: a full decode for
    modalities declared `check="load"` (images), headers for the others; `(code, reason)` or None."""
    src: bytes | Path = data if data is not None else full  # type: ignore[assignment]
    if isinstance(src, bytes) and not src:
        return "media_empty", "file is empty (0 bytes)"
    if isinstance(src, Path) and src.stat().st_size == 0:
        return "media_empty", "file is empty (0 bytes)"
    m = media.get_modality(modality)
    try:
        (m.load if m.check == "load" else m.probe)(src, MediaLimits(max_pixels=max_pixels), _name(src))
    except MediaError as e:
        reason = e.reason if e.record_code != "media_unreadable" else f"cannot decode {modality}: {e.reason}"
        return e.record_code, reason
    return None


def check_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str, str] | None:
    """`(code, reason)` when the bytes are not a usable image, else None. Decodes the whole image."""
    return check_media_file("image", None, data, max_pixels)


@dataclass
class CheckedMedia:
    """A record's media after the check before step 1: per modality, each input's resolved source (a file
    or inline bytes) and its header facts (`size` of an image, `frames`/`fps` of a video, `seconds`)."""

    sources: dict[str, list[bytes | Path]] = field(default_factory=dict)
    facts: dict[str, list[dict]] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)


def check_record_media(rec: Record, root: str | Path, limits: MediaLimits | None = None) -> CheckedMedia:
    """Resolve every media reference of `rec` and read its headers (no full decode): a missing, escaping,
    unreadable or oversize input raises RecordError naming the record, the file and the reason."""
    limits = limits or MediaLimits()
    out = CheckedMedia()
    for key, refs in rec.media.items():
        m = media.by_record_key(key)
        if m is None:
            continue
        for ref in refs:
            src = media_ref(ref, root, rec.source, rec.id)
            try:
                facts = m.probe(src, limits, _name(src, ref))
            except MediaError as e:
                raise _record_error(e, m.name, Path(ref).name if not is_data_uri(ref) else "<inline data>",
                                    rec.source, rec.id) from None
            out.sources.setdefault(m.name, []).append(src)
            out.facts.setdefault(m.name, []).append(facts)
            out.refs.setdefault(m.name, []).append(ref)
    return out
