"""Record layouts other than LLaVA turned into LLaVA dicts: OpenAI `messages`, Parquet/Arrow rows, media blobs.

Everything a reader yields goes through `to_llava_dict`, so validation, statistics and training see one
layout: `{"id", "conversations": [{"from", "value"}], "image"/"audio"/"video", "language", ...}`.
Media given inline (base64, Arrow image structs) become `data:` URIs; `polyvlm.data.media` opens them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from polyvlm.data.records import MEDIA_KEYS, PLACEHOLDERS, RecordError

# Schema metadata key marking a Parquet file written by polyvlm (see `writers.PARQUET_SCHEMA`).
POLYVLM_PARQUET_KEY = b"polyvlm.layout"
POLYVLM_PARQUET_VERSION = b"1"

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
    (b"RIFF", "image/webp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"),
]


def sniff_mime(data: bytes, default: str = "application/octet-stream") -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return "audio/wav" if mime == "image/webp" and data[8:12] == b"WAVE" else mime
    return default


def bytes_to_data_uri(data: bytes, mime: str | None = None) -> str:
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def b64_to_data_uri(b64: str) -> str:
    """A bare base64 string (VLMEvalKit TSV) -> data URI, with the type sniffed from the first bytes."""
    head = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4), validate=False)
    return f"data:{sniff_mime(head, 'image/jpeg')};base64,{b64}"


def _media_value(v: Any) -> Any:
    """Arrow image/audio structs ({bytes, path} or {array, path}) -> a path or a data URI; lists element-wise."""
    if isinstance(v, dict):
        if v.get("bytes"):
            return bytes_to_data_uri(v["bytes"])
        if v.get("path"):
            return v["path"]
        return v
    if isinstance(v, bytes):
        return bytes_to_data_uri(v)
    if isinstance(v, list):
        return [_media_value(x) for x in v]
    return v


def _openai_to_llava(obj: dict) -> dict | RecordError:
    """`{"messages": [{"role", "content": str | [parts]}]}` -> LLaVA dict; media parts become placeholders in place."""
    msgs = obj["messages"]
    out: dict[str, Any] = {k: v for k, v in obj.items() if k != "messages"}
    if not isinstance(msgs, list):
        out["conversations"] = msgs  # validation reports the wrong type
        return out
    media: dict[str, list[str]] = {}
    convs = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            convs.append(m)
            continue
        content = m.get("content")
        if isinstance(content, list):
            pieces = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    pieces.append(str(part.get("text", "")))
                elif kind == "image_url":
                    url = part.get("image_url")
                    url = url.get("url") if isinstance(url, dict) else url
                    media.setdefault("image", []).append(str(url))
                    pieces.append(PLACEHOLDERS["image"])
                elif kind == "input_audio":
                    a = part.get("input_audio") or {}
                    fmt = a.get("format", "wav")
                    media.setdefault("audio", []).append(f"data:audio/{fmt};base64,{a.get('data', '')}")
                    pieces.append(PLACEHOLDERS["audio"])
                elif kind in ("video_url", "video"):
                    url = part.get(kind)
                    url = url.get("url") if isinstance(url, dict) else url
                    media.setdefault("video", []).append(str(url))
                    pieces.append(PLACEHOLDERS["video"])
                else:
                    rid = obj.get("id")
                    return RecordError(f"message {i} content part {j} has unknown type {kind!r} "
                                       "(known: text, image_url, input_audio, video_url)", "",
                                       None if rid is None else str(rid), code="wrong_type")
            content = "\n".join(pieces)
        convs.append({"from": m.get("role"), "value": content})
    out["conversations"] = convs
    for k, paths in media.items():
        out[k] = paths[0] if len(paths) == 1 else paths
    return out


def to_llava_dict(obj: Any) -> Any:
    """Normalise one decoded record to the LLaVA layout (non-dicts pass through for validation to report).

    A record that cannot be expressed in it (an unknown `messages` content part) becomes a RecordError
    without a source; the reader that called this adds the file and line.
    """
    if not isinstance(obj, dict):
        return obj
    if "conversations" not in obj and "messages" in obj:
        return _openai_to_llava(obj)
    return obj


def arrow_row_to_llava(row: dict, polyvlm_layout: bool) -> dict:
    """One Parquet/Arrow row (as from `to_pylist`) -> LLaVA dict."""
    if polyvlm_layout:
        extra = json.loads(row["extra"]) if row.get("extra") else {}
        out: dict[str, Any] = {"id": extra.pop("_id_raw", row["id"])}
        for m in MEDIA_KEYS:
            paths = row.get(m)
            if paths is not None:
                out[m] = list(paths) if extra.pop(f"_{m}_list", False) or len(paths) != 1 else paths[0]
        turns = row["conversations"]
        turn_extra = extra.pop("_turn_extra", None)
        if turn_extra and turns is not None and len(turn_extra) == len(turns):
            turns = [{**t, **x} for t, x in zip(turns, turn_extra)]
        out["conversations"] = turns
        if row.get("language") is not None:
            out["language"] = row["language"]
        out.update(extra)
        return out
    out = {k: v for k, v in row.items() if v is not None}
    for m in MEDIA_KEYS:
        if m in out:
            out[m] = _media_value(out[m])
    return to_llava_dict(out)
